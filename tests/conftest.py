"""Shared fixtures: the real data sets, each loaded once per test session (~0.3 s for MNIST)."""

from pathlib import Path

import numba
import pytest

from fastmlp.data import BUNDLED_MNIST_DIR, DATASETS, load_dataset

FASHION_DIR = DATASETS["fashion-mnist"].fallback_dir


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
