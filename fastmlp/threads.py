"""Thread control from one call: Numba's threads and every BLAS library's threads."""

import os

import numba
from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

from .errors import ConfigError

_LIMITER = None
_CONTROLLER = None


def available_cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def set_threads(n=None):
    """Use ``n`` threads in Numba and in every loaded BLAS (OpenBLAS, MKL, ...); ``None`` means
    all available cores. Returns the number really used: ``n``, capped at the threads Numba
    can run (``NUMBA_NUM_THREADS``, by default the machine's cores)."""
    global _LIMITER
    # Numba's np.dot calls SciPy's BLAS, which is otherwise first loaded by the first compile or
    # cache load, after the limit below: load it now so the limit reaches it.
    import scipy.linalg.cython_blas  # noqa: F401

    if n is None:
        n = available_cores()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"threads must be a positive whole number, got {n!r}")
    used = min(n, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(used)
    _LIMITER = threadpool_limits(limits=used)
    return numba.get_num_threads()


def blas_info():
    """What threadpoolctl sees: a list of dicts (library, version, threads, architecture)."""
    return [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture",
                                   "filepath")} for d in threadpool_info()]


def one_blas_thread():
    """Context manager: every BLAS at one thread inside, restored after.

    The training threads split each step's work between them (loop/steps.py) and call BLAS on their
    own blocks. A threaded BLAS inside would start workers that spin after each call on the
    cores those threads need (with the former OpenMP sparse kernels, a second hidden layer at
    batch 64 fell from 230k to 6k samples/s on 2 cores). So training and evaluation run with
    every BLAS at one thread; BLAS keeps the caller's setting outside."""
    global _CONTROLLER
    if _CONTROLLER is None:
        import scipy.linalg.cython_blas  # noqa: F401  (loaded, so the controller sees it)

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")
