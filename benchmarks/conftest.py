"""Shared fixtures for the pytest-benchmark files.

Quick mode trains on a few thousand images instead of 60,000 and skips the cold-start probe, so
that the CI smoke run

    python -m pytest benchmarks --benchmark-disable -q

checks every benchmark's validation in well under a minute. It is on with ``--quick`` or
``FASTMLP_BENCH_QUICK=1``, and by default whenever ``--benchmark-disable`` is given (nothing is
timed then); ``FASTMLP_BENCH_QUICK=0`` forces full size. Threads: ``FASTMLP_BENCH_THREADS``
(default 2), set once for Numba, every BLAS, and torch.
"""

import os
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _p in (str(BENCH_DIR), str(REPO_ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

THREADS = int(os.environ.get("FASTMLP_BENCH_THREADS", "2"))


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true",
                     help="fastmlp benchmarks: few samples, no cold start (also "
                          "FASTMLP_BENCH_QUICK=1)")


def is_quick(config):
    """``--quick``, else FASTMLP_BENCH_QUICK (1: quick, 0: full), else quick exactly when
    ``--benchmark-disable`` is given: nothing is timed then, so full-size data buys nothing."""
    if config.getoption("--quick", default=False):
        return True
    env = os.environ.get("FASTMLP_BENCH_QUICK", "").strip()
    if env:
        return env != "0"
    return bool(config.getoption("benchmark_disable", default=False))


@pytest.fixture(scope="session")
def quick(request):
    """True in quick (smoke-test) mode."""
    return is_quick(request.config)


@pytest.fixture(scope="session")
def threads():
    """The thread count, applied to Numba and every BLAS loaded so far (each benchmark also
    applies it to its framework: see runners.set_threads)."""
    from fastmlp.threads import set_threads

    from runners import load_numba_blas

    load_numba_blas()  # else the limit would miss the BLAS Numba loads later
    set_threads(THREADS)
    return THREADS


def _load_mnist(retries=5):
    # fastmlp/data/ may be mid-edit by someone else: retry briefly before failing
    for attempt in range(retries):
        try:
            from fastmlp.data import load_dataset
            return load_dataset("mnist")
        except ImportError:
            if attempt == retries - 1:
                raise
            time.sleep(2.0)


@pytest.fixture(scope="session")
def mnist(threads):
    """Real MNIST, flattened: X (60000, 784) uint8, y int64, Xt (10000, 784), yt."""
    ds = _load_mnist()
    flat = lambda a: np.ascontiguousarray(a.reshape(len(a), -1))  # noqa: E731
    return SimpleNamespace(X=flat(ds.train_images), y=ds.train_labels.astype(np.int64),
                           Xt=flat(ds.test_images), yt=ds.test_labels.astype(np.int64))


@pytest.fixture(scope="session")
def mnist_npy(mnist, tmp_path_factory):
    """The same arrays as .npy files, for ``compare.py`` children."""
    d = tmp_path_factory.mktemp("mnist-npy")
    for name, a in (("train_x", mnist.X), ("train_y", mnist.y), ("test_x", mnist.Xt),
                    ("test_y", mnist.yt)):
        np.save(d / f"{name}.npy", a)
    return d


def pytest_benchmark_update_machine_info(config, machine_info):
    import importlib.metadata as md

    versions = {}
    for pkg in ("numpy", "numba", "scipy", "torch"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    # (nothing tree-specific here: a difference makes --benchmark-compare warn)
    machine_info["fastmlp_bench"] = dict(threads=THREADS, quick=is_quick(config),
                                         python=platform.python_version(), **versions)
