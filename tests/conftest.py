"""Shared fixtures: the real data sets, each loaded once per test session (~0.3 s for MNIST),
and a smaller slice of real MNIST for tests whose assertions hold on any MNIST-like data."""

from pathlib import Path

import numba
import pytest

from fastmlp.data import BUNDLED_MNIST_DIR, DATASETS, FILES, load_dataset, write_idx

FASHION_DIR = DATASETS["fashion-mnist"].fallback_dir

# Training images in the MNIST slice: enough that an epoch at batch 32 spans several chunks of
# compiled steps (training.run.CHUNK_SAMPLES), so a stop can land in the middle of one.
SLICE_TRAIN = 20000


@pytest.fixture(scope="session")
def mnist():
    """MNIST from the copy bundled in the package (never a user's cache or $FASTMLP_DATA)."""
    return load_dataset("mnist", data_dir=BUNDLED_MNIST_DIR)


@pytest.fixture(scope="session")
def fashion_mnist():
    """Fashion-MNIST from Debian's package ``dataset-fashion-mnist``; skipped if not installed."""
    if not Path(FASHION_DIR).is_dir():
        pytest.skip(f"{FASHION_DIR} is missing: apt-get install dataset-fashion-mnist")
    return load_dataset("fashion-mnist", data_dir=FASHION_DIR)


@pytest.fixture(scope="session")
def jit_off():
    """True with NUMBA_DISABLE_JIT=1 (how CI runs tests/test_kernels.py a second time): the kernels
    run as plain Python, so a test with a large input shrinks it and keeps its assertions."""
    return bool(numba.config.DISABLE_JIT)


@pytest.fixture(scope="session")
def mnist_slice_dir(mnist, tmp_path_factory):
    """Real MNIST, smaller: the first SLICE_TRAIN training images and the whole 10,000-image
    test set, as four raw IDX files (for command-line tests that train and then read the data
    again: evaluate, resume)."""
    d = tmp_path_factory.mktemp("mnist-slice")
    arrays = (mnist.train_images[:SLICE_TRAIN], mnist.train_labels[:SLICE_TRAIN],
              mnist.test_images, mnist.test_labels)
    for name, array in zip(FILES, arrays):
        write_idx(d / name, array)
    return d
