"""Small synthetic data sets that are not MNIST-shaped (for unit and command-line tests).

``learnable`` makes K classes of H x W uint8 images whose class is a bright bar at a
class-specific row band, plus noise: a tiny MLP separates them well, so an accuracy bar on them
means something, and a run over a few hundred images takes well under a second.
"""

from pathlib import Path

import numpy as np
import pytest

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


# Fixtures and helpers the command-line tests share (import them by name: pytest finds them).
TINY = ["--hidden", "8", "--threads", "1", "--batch-ramp", "0", "--batch-size", "32",
        "--quiet"]


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    """A learnable 8x8, 3-class data set as four IDX files (300 train, 90 test)."""
    d = tmp_path_factory.mktemp("small")
    write_idx_dir(d)
    return d


@pytest.fixture(scope="module")
def small_ck(small_dir, tmp_path_factory):
    """A checkpoint of one epoch on ``small_dir`` (built-in activation)."""
    from fastmlp.cli import run_main
    from fastmlp.train import main

    ck = tmp_path_factory.mktemp("ck") / "ck.npz"
    assert run_main(main, ["--data-dir", str(small_dir), "--epochs", "1", "--save", str(ck),
                           *TINY]) == 0
    return ck


def cli(main, argv, capsys):
    """(exit code, stdout, stderr) of a command's ``main(argv)`` run as the command line runs
    it."""
    from fastmlp.cli import run_main

    code = run_main(main, argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err):
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err
