"""A user activation's element-wise pair, compiled alone, and how the cached loop calls it.

The training loop (loop/steps.py) is compiled once and cached for every activation. A user's
activation does not get a copy of that loop: its two scalar functions ``f`` and ``f'`` are
compiled into two small C callbacks with one fixed signature each,

    forward   void (T *out, T *z, int64 n)            out (n,) = f(z) (n,)
    backward  void (T *dz, T *da, T *z, int64 n)      dz (n,) = da (n,) * f'(z) (n,)

(T = float32 for the loop, float64 on request; ``dz`` may be ``da``: the loop computes in place),
and the built-in activation kernels (_activation.py) call them through their address
(``code == USER``): one indirect call per layer and block of rows, the element loop compiled and
vectorised inside the user's callback. So a new activation costs the compile of its own two
callbacks, not of the loop; the callbacks are cached on disk under the activation's
``cache_key`` (a digest of the user's code, see activations.source_key).

With the JIT off (``NUMBA_DISABLE_JIT=1``) nothing is compiled: :func:`compile_pair` registers
plain Python loops under made-up addresses, and :func:`call_forward` / :func:`call_backward`
look them up.
"""

import itertools
import time
from types import FunctionType
from typing import NamedTuple

import llvmlite.ir as ir
import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .._jit import cfunc, overload

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "UserKernels", "UserPair", "call_backward", "call_forward", "compile_pair",
]

_DTYPES = {np.dtype(np.float32): types.float32, np.dtype(np.float64): types.float64}


# ---------------------------------------------------------------------------------------------
# Calling a pair through its address (the loop side)
# ---------------------------------------------------------------------------------------------
def _flat(*arrays):
    # Numba types of 1-D C-contiguous arrays of one float dtype (what the callbacks take)
    first = arrays[0]
    return (all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C"
                and a.dtype == first.dtype for a in arrays)
            and first.dtype in (types.float32, types.float64))


def _call(builder, context, signature, args):
    # call the callback at address args[0] with the arrays' data pointers and the last one's size
    arrays = [context.make_array(t)(context, builder, v)
              for t, v in zip(signature.args[1:], args[1:])]
    elt = context.get_value_type(signature.args[1].dtype).as_pointer()
    intp = cgutils.intp_t
    fnty = ir.FunctionType(ir.VoidType(), [elt] * len(arrays) + [intp])
    address = context.cast(builder, args[0], signature.args[0], types.intp)
    fn = builder.inttoptr(address, fnty.as_pointer())
    n = cgutils.unpack_tuple(builder, arrays[-1].shape, 1)[0]
    builder.call(fn, [a.data for a in arrays] + [n])
    return context.get_dummy_value()


@intrinsic
def _call_forward(typingctx, fn, out, z):
    # the forward callback at address fn on out (n,), z (n,)
    if not (isinstance(fn, types.Integer) and _flat(out, z)):
        return None
    return types.void(fn, out, z), lambda c, b, s, a: _call(b, c, s, a)


@intrinsic
def _call_backward(typingctx, fn, dz, da, z):
    # the backward callback at address fn on dz (n,), da (n,), z (n,)
    if not (isinstance(fn, types.Integer) and _flat(dz, da, z)):
        return None
    return types.void(fn, dz, da, z), lambda c, b, s, a: _call(b, c, s, a)


_PYTHON_PAIRS = {}  # JIT off: made-up address -> the Python loop it stands for
_NEXT_ADDRESS = itertools.count(1)


def call_forward(fn, out, z):
    """``out (n,) = f(z (n,))`` by the forward callback at address ``fn`` (see the module
    docstring). Compiled callers get the indirect call; with the JIT off, the Python loop."""
    _PYTHON_PAIRS[fn](out, z)


def call_backward(fn, dz, da, z):
    """``dz (n,) = da (n,) * f'(z (n,))`` by the backward callback at address ``fn``."""
    _PYTHON_PAIRS[fn](dz, da, z)


@overload(call_forward)
def _call_forward_impl(fn, out, z):
    def impl(fn, out, z):
        _call_forward(fn, out, z)
    return impl


@overload(call_backward)
def _call_backward_impl(fn, dz, da, z):
    def impl(fn, dz, da, z):
        _call_backward(fn, dz, da, z)
    return impl


# ---------------------------------------------------------------------------------------------
# Compiling a pair (the user side)
# ---------------------------------------------------------------------------------------------
# Templates, compiled with ``_user_fn`` bound to the user's scalar function (f, then f').
def _forward(out_p, z_p, n):
    out = numba.carray(out_p, n)
    z = numba.carray(z_p, n)
    for i in range(n):
        out[i] = _user_fn(z[i])  # noqa: F821 - bound by _compile


def _backward(dz_p, da_p, z_p, n):
    dz = numba.carray(dz_p, n)
    da = numba.carray(da_p, n)
    z = numba.carray(z_p, n)
    for i in range(n):
        dz[i] = da[i] * _user_fn(z[i])  # noqa: F821 - bound by _compile


class UserPair(NamedTuple):
    """A user activation's compiled pair for one dtype: the callbacks' addresses (what the loop
    and the kernels take) and the objects that own the code (kept alive with the pair)."""

    forward: int
    backward: int
    owners: tuple


def _signature(template, t):
    ptr = types.CPointer(t)
    n_arrays = template.__code__.co_argcount - 1
    return types.void(*([ptr] * n_arrays), types.int64)


def _compile(template, scalar_fn, key, t):
    glb = dict(globals(), _user_fn=scalar_fn)
    fn = FunctionType(template.__code__, glb, template.__name__)
    if key is not None:
        # Numba keys its cache by file, qualified name and bytecode, not by the globals a
        # function calls: each user activation needs a name of its own
        fn.__qualname__ = f"{template.__qualname__}__user_{key}"
    return cfunc(_signature(template, t), cache=key is not None)(fn)


def compile_pair(f, df, key, dtype=np.float32):
    """The :class:`UserPair` of scalar functions ``f`` and ``df`` (already jitted, or plain
    Python with the JIT off) for arrays of ``dtype``; cached on disk under ``key`` (None: not
    cached). Raises what Numba raises when a function cannot be compiled."""
    t = _DTYPES[np.dtype(dtype)]
    if numba.config.DISABLE_JIT:
        def forward(out, z):
            for i in range(z.size):
                out[i] = f(z[i])

        def backward(dz, da, z):
            for i in range(z.size):
                dz[i] = da[i] * df(z[i])
        addresses = []
        for loop in (forward, backward):
            address = next(_NEXT_ADDRESS)
            _PYTHON_PAIRS[address] = loop
            addresses.append(address)
        return UserPair(*addresses, owners=(forward, backward))
    cf = _compile(_forward, f, key, t)
    cb = _compile(_backward, df, key, t)
    return UserPair(cf.address, cb.address, owners=(cf, cb))


class UserKernels:
    """A user activation's pairs, compiled per dtype on first use (the loop's float32 pair at
    once, by :func:`custom_activation <fastmlp.custom_activation>`)."""

    def __init__(self, f, df, key):
        self.f, self.df, self.key = f, df, key
        self._pairs = {}
        self._unreported = 0.0  # seconds spent compiling (or loading) pairs, not yet reported

    def pair(self, dtype=np.float32) -> UserPair:
        dtype = np.dtype(dtype)
        if dtype not in self._pairs:
            t0 = time.perf_counter()
            self._pairs[dtype] = compile_pair(self.f, self.df, self.key, dtype)
            self._unreported += time.perf_counter() - t0
        return self._pairs[dtype]

    def take_compile_seconds(self):
        """Seconds spent compiling or loading this activation's pairs since the last call: the
        part of a run's compile time that happened when the activation was made."""
        seconds, self._unreported = self._unreported, 0.0
        return seconds

    def owners(self):
        """Every compiled callback so far (for cache statistics)."""
        return [o for p in self._pairs.values() for o in p.owners]
