"""GEMM with alpha and beta for jitted code: ``out = alpha * a[:, c0:c0 + D].T @ b + beta * out``.

Numba's ``np.dot`` calls BLAS with alpha = 1 and beta = 0, so a plain-SGD weight update took
two passes over the weights: write the gradient ``a.T @ b``, then ``W -= lr * grad``. BLAS can
do both in one: ``W = -lr * a.T @ b + 1 * W``. For the 784-1024-1024-10 network the separate
update pass was 8% of a step.

The call goes to the very BLAS ``np.dot`` uses: Numba's helper ``numba_xxgemm``, which forwards
to SciPy's ``cython_blas`` (so the thread limit of ``fastmlp.threads`` applies, and jitted
functions that use it are cached like any other). Column-major BLAS sees our C-contiguous
(rows, cols) arrays as their transposes, hence the argument order below.

    a    (B, Da) C-contiguous          b    (B, H)  C-contiguous
    out  (D, H)  C-contiguous          alpha, beta  scalars (cast to the arrays' dtype)
    c0           the first of the D columns of ``a`` used (0 and D = Da: all of them)

Columns ``c0 .. c0 + D`` let each training thread update its own block of a weight's rows (see
loop/steps.py): BLAS reads them in place, with the leading dimension Da. With beta = 0 the old
``out`` is not read (as in BLAS: NaN in it does not survive).

``_gemm_tn_cols`` is a plain NumPy function with a Numba ``@overload``: jitted code that calls
it (the training loop) gets the BLAS call, while Python callers, and every caller when the JIT
is off (``NUMBA_DISABLE_JIT=1``, how CI runs the kernel tests in pure Python), get NumPy's
``a.T @ b``. ``gemm_tn`` is the checked wrapper for Python callers; it calls BLAS through the
jitted ``_gemm_tn``.
"""

import llvmlite.ir as ir
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .._jit import jit_kernel, overload

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "_gemm_tn", "_gemm_tn_cols", "gemm_tn",
]

_KIND = {types.float32: ord("s"), types.float64: ord("d")}
_CHAR = ir.IntType(8)
_VOIDP = ir.IntType(8).as_pointer()


def _fits_blas(out, a, b):
    # Numba types of out, a, b that the BLAS call takes: 2-D C-contiguous, one of _KIND's dtypes
    return (all(isinstance(x, types.Array) and x.ndim == 2 and x.layout == "C"
                for x in (out, a, b))
            and out.dtype == a.dtype == b.dtype and out.dtype in _KIND)


@intrinsic
def _xxgemm_tn(typingctx, out, a, c0, b, alpha, beta):
    # status (int32, 0 on success) of numba_xxgemm computing
    # out (D, H) = alpha * a[:, c0:c0 + D].T @ b + beta * out
    if not _fits_blas(out, a, b):
        return None
    sig = types.int32(out, a, c0, b, alpha, beta)

    def codegen(context, builder, signature, args):
        dtype = signature.args[0].dtype
        o, x, y = (context.make_array(signature.args[i])(context, builder, args[i])
                   for i in (0, 1, 3))
        D, H = cgutils.unpack_tuple(builder, o.shape, 2)
        B, Da = cgutils.unpack_tuple(builder, x.shape, 2)
        first = cgutils.get_item_pointer(context, builder, signature.args[1], x,
                                         [ir.Constant(cgutils.intp_t, 0),
                                          context.cast(builder, args[2], signature.args[2],
                                                       types.intp)])
        slots = [cgutils.alloca_once_value(builder, context.cast(builder, v, t, dtype))
                 for v, t in zip(args[4:], signature.args[4:])]
        intp = cgutils.intp_t
        fnty = ir.FunctionType(ir.IntType(32), [_CHAR, _CHAR, _CHAR, intp, intp, intp,
                                                _VOIDP, _VOIDP, intp, _VOIDP, intp, _VOIDP,
                                                _VOIDP, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        # column-major: out.T (H, D) = b.T (H, B) @ a (B, D); b.T is b as stored ('n'),
        # a as stored is a.T column-major (leading dimension Da), so it is transposed back ('t')
        return builder.call(fn, [
            ir.Constant(_CHAR, _KIND[dtype]), ir.Constant(_CHAR, ord("n")),
            ir.Constant(_CHAR, ord("t")), H, D, B,
            builder.bitcast(slots[0], _VOIDP), builder.bitcast(y.data, _VOIDP), H,
            builder.bitcast(first, _VOIDP), Da, builder.bitcast(slots[1], _VOIDP),
            builder.bitcast(o.data, _VOIDP), H])

    return sig, codegen


def _gemm_tn_cols(out, a, c0, b, alpha, beta):
    # out (D, H) = alpha * a[:, c0:c0 + D].T @ b (B, H) + beta * out; a (B, Da), c0 + D <= Da.
    # This plain NumPy version runs when it is called from Python, and everywhere when the JIT
    # is off (NUMBA_DISABLE_JIT=1); jitted callers get the BLAS call of _gemm_tn_cols_blas.
    # As in BLAS: alpha and beta are cast to the arrays' dtype, and beta = 0 does not read out
    # (NaN in it does not survive).
    f = out.dtype.type
    product = f(alpha) * (a[:, c0:c0 + out.shape[0]].T @ b)
    if beta == 0.0:
        out[...] = product
    else:
        out[...] = product + f(beta) * out


@overload(_gemm_tn_cols)
def _gemm_tn_cols_blas(out, a, c0, b, alpha, beta):
    # what jitted code calls for _gemm_tn_cols: one sgemm/dgemm (same arguments, same result)
    if not _fits_blas(out, a, b):
        return None

    def impl(out, a, c0, b, alpha, beta):
        if out.shape[0] == 0 or out.shape[1] == 0:
            return
        if a.shape[0] == 0:  # empty sum: BLAS would skip the beta scaling with k = 0
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    out[i, j] = out[i, j] * beta if beta != 0.0 else 0.0
            return
        if _xxgemm_tn(out, a, c0, b, alpha, beta) != 0:
            raise RuntimeError("BLAS sgemm/dgemm is not available (SciPy's cython_blas)")

    return impl


@jit_kernel
def _gemm_tn(out, a, c0, b, alpha, beta):
    # _gemm_tn_cols compiled, i.e. through BLAS (with the JIT off: the NumPy version)
    _gemm_tn_cols(out, a, c0, b, alpha, beta)


def gemm_tn(out, a, b, alpha=1.0, beta=0.0, c0=0):
    """``out = alpha * a[:, c0:c0 + D].T @ b + beta * out`` in place, by BLAS. ``a`` (B, Da),
    ``b`` (B, H), ``out`` (D, H): C-contiguous arrays of one float dtype; ``c0 + D <= Da`` (by
    default c0 = 0 and D = Da: ``out = alpha * a.T @ b + beta * out``). With ``beta = 0`` the
    old ``out`` is not read."""
    for name, x in (("out", out), ("a", a), ("b", b)):
        if not isinstance(x, np.ndarray) or x.ndim != 2:
            raise ValueError(f"{name} must be a 2-D NumPy array")
        if not x.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name})")
        if x.dtype != out.dtype or x.dtype not in (np.float32, np.float64):
            raise ValueError(f"{name} must be float32 or float64 like out, got {x.dtype.name}")
    c0 = int(c0)
    if (a.shape[0] != b.shape[0] or out.shape[1] != b.shape[1] or c0 < 0
            or c0 + out.shape[0] > a.shape[1]):
        raise ValueError(f"shapes do not fit out = a[:, c0:c0 + D].T @ b: out {out.shape}, "
                         f"a {a.shape}, b {b.shape}, c0 {c0}")
    _gemm_tn(out, a, c0, b, float(alpha), float(beta))
