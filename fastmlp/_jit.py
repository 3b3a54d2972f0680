"""The one place where fastmlp decides how Numba compiles its kernels.

Every jitted function in the package is made with :func:`jit` (or :func:`jit_uncached` for code
that is specialised at run time, such as user-written activations, which Numba cannot cache).

- ``fastmath``: reassociation, contraction (FMA), reciprocal and signed-zero freedom, so that
  loops vectorise. ``nnan`` and ``ninf`` are deliberately left out: the training loop checks
  for NaN/inf losses and that check must stay meaningful.
- ``cache=True``: compiled machine code is stored next to the source (``__pycache__``), so only
  the first run ever pays the compile time. Set ``NUMBA_CACHE_DIR`` to move it.
- ``error_model="numpy"``: division by zero gives inf/NaN instead of raising, as in NumPy, and
  saves the checks in inner loops.
- No ``parallel=True``: the heavy lifting is BLAS (multi-threaded on its own); the element-wise
  kernels are cheaper than a parallel region's start-up at the batch sizes fastmlp trains with.
"""

import numba

FASTMATH = frozenset({"nsz", "arcp", "contract", "reassoc"})

_OPTIONS = dict(fastmath=set(FASTMATH), error_model="numpy", nogil=True)


def jit(func=None, **overrides):
    """``numba.njit`` with fastmlp's options and on-disk caching."""
    options = dict(_OPTIONS, cache=True, **overrides)
    if func is None:
        return numba.njit(**options)
    return numba.njit(**options)(func)


def jit_uncached(func=None, **overrides):
    """Like :func:`jit` but not cached: for functions built at run time (closures)."""
    options = dict(_OPTIONS, cache=False, **overrides)
    if func is None:
        return numba.njit(**options)
    return numba.njit(**options)(func)
