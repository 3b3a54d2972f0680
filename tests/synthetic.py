"""Small synthetic data sets that are not MNIST-shaped (for unit and command-line tests).

``learnable`` makes K classes of H x W uint8 images whose class is a bright bar at a
class-specific row band, plus noise: a tiny MLP separates them well, so an accuracy bar on them
means something, and a run over a few hundred images takes well under a second.
"""

from pathlib import Path

import numpy as np

from fastmlp.data import FILES, write_idx


def learnable(n, k=3, shape=(8, 8), seed=0):
    """``(images (n, H, W) uint8, labels (n,) uint8)``, classes 0..k-1 in turn."""
    rng = np.random.default_rng(seed)
    h, w = shape
    labels = (np.arange(n) % k).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 60, (n, h, w)).astype(np.uint8)
    band = max(1, h // k)
    for i, c in enumerate(labels):
        top = min(int(c) * band, h - band)
        images[i, top:top + band, :] = rng.integers(180, 256, (band, w))
    return images, labels


def write_idx_dir(directory, n_train=300, n_test=90, k=3, shape=(8, 8), names=FILES):
    """Write a learnable data set as four IDX files named ``names`` (in FILES order) into
    ``directory``; returns ``(train_x, train_y, test_x, test_y)``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    train = learnable(n_train, k, shape, seed=1)
    test = learnable(n_test, k, shape, seed=2)
    arrays = (*train, *test)
    for name, array in zip(names, arrays):
        write_idx(directory / name, array)
    return arrays
