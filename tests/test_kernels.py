"""Every kernel in fastmlp/kernels/ against its plain-NumPy float64 twin in tests/naive.py,
on ordinary, extreme and degenerate inputs, in float32 and float64; gradients against central
finite differences; dropout statistics; input validation; activation specs and user activations.
"""

import math
import sys
import textwrap

import naive
import numba
import numpy as np
import pytest

from fastmlp import kernels as K
from fastmlp.choices.activations import (
    BUILTINS,
    Activation,
    custom_activation,
    get_activation,
)
from fastmlp.errors import ConfigError

DTYPES = [np.float32, np.float64]

if numba.config.DISABLE_JIT:
    # The kernels run as Python (CI's second run): NumPy's scalars warn where compiled code
    # wraps around (the uint64 random bits) or overflows to inf (exp of -1e4 in softplus')
    # silently; the results are the same.
    pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in:RuntimeWarning")

# Kernel vs float64 twin: |kernel - twin| <= ATOL + RTOL * |twin| (or * a stated scale).
# float32: unit roundoff 6e-8, amplified by exp/log and short sums -> 1e-4 relative; the absolute
# part covers results near 0 (e.g. sigmoid'(10) = 4.5e-5 from 1 - a with a rounded to float32).
# float64: unit roundoff 1.1e-16; 1e-6 relative leaves room for fastmath reassociation and BLAS.
RTOL_F32, ATOL_F32 = 1e-4, 1e-5
RTOL_F64, ATOL_F64 = 1e-6, 1e-10
TOL = {np.float32: (RTOL_F32, ATOL_F32), np.float64: (RTOL_F64, ATOL_F64)}

# Finite differences (float64, central): step FD_STEP, error ~ FD_STEP^2 * f''' + eps |f| / FD_STEP
# ~ 1e-10. Checked as |analytic - numeric| / max(|analytic|, |numeric|, FD_FLOOR) < FD_RTOL, so
# gradients below FD_FLOOR are held to an absolute FD_RTOL * FD_FLOOR = 1e-9.
FD_STEP = 1e-5
FD_RTOL = 1e-6
FD_FLOOR = 1e-3


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def assert_close(actual, desired, dtype, scale=None, what=""):
    """Kernel output vs twin within TOL[dtype]; ``scale`` replaces |desired| in the relative
    part (e.g. |inp| @ |weight| for a dot product, whose error is relative to its terms)."""
    rtol, atol = TOL[dtype]
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    if desired.ndim == 0:
        desired = np.broadcast_to(desired, actual.shape)
    assert actual.shape == desired.shape, f"{what}: shape {actual.shape} != {desired.shape}"
    scale = np.abs(desired) if scale is None else np.asarray(scale, dtype=np.float64)
    ok = np.abs(actual - desired) <= atol + rtol * scale  # NaN compares False: counted as bad
    if not ok.all():
        i = np.unravel_index(np.argmin(np.where(ok, np.inf, -np.abs(actual - desired))), ok.shape)
        raise AssertionError(f"{what}: {np.size(ok) - ok.sum()} of {ok.size} entries off; e.g. "
                             f"at {i}: kernel {actual[i]!r}, twin {desired[i]!r}")


def assert_fd_close(analytic, numeric, what=""):
    """Analytic vs finite-difference gradient: relative error < FD_RTOL (floored, see top)."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    denom = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), FD_FLOOR)
    err = np.abs(analytic - numeric) / denom
    worst = int(np.argmax(np.nan_to_num(err, nan=np.inf))) if err.size else 0
    assert err.size == 0 or (np.isfinite(err).all() and err.max() < FD_RTOL), (
        f"{what}: max relative error {err.max():.3g} at flat index {worst}: "
        f"analytic {analytic.flat[worst]!r}, numeric {numeric.flat[worst]!r}")


def fd_gradient(loss, x, indices=None, step=FD_STEP):
    """Central differences of scalar ``loss()`` w.r.t. entries of ``x`` (perturbed in place and
    restored). The step actually taken, (x + h) - (x - h), is what we divide by."""
    flat = x.reshape(-1)
    indices = range(flat.size) if indices is None else indices
    grad = np.zeros(flat.size)
    for i in indices:
        x0 = flat[i]
        flat[i] = x0 + step
        up, xp = loss(), flat[i]
        flat[i] = x0 - step
        down, xm = loss(), flat[i]
        flat[i] = x0
        grad[i] = (up - down) / (xp - xm)
    return grad.reshape(x.shape)


def kink(spec):
    """Where a built-in activation's derivative jumps (None if it is smooth)."""
    act = get_activation(spec)
    if act.name in ("relu", "leaky_relu", "elu"):
        return 0.0
    if act.name == "shifted_relu":
        return -act.param
    return None


# Built-in activations with a spread of parameters (defaults included).
ACT_SPECS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "leaky_relu:0.2",
             "shifted_relu", "shifted_relu:0.5", "shifted_relu:0", "elu", "elu:0.5",
             "softplus", "gelu"]


# --------------------------------------------------------------------------------------------
# gather_batch
# --------------------------------------------------------------------------------------------
def check_gather_batch(dtype, B, pixel_index):
    rng = np.random.default_rng(0)
    N, P = 7, 28
    images = rng.integers(0, 256, (N, P), dtype=np.uint8)
    images[0] = 0          # extreme pixel values
    images[1] = 255
    rows = rng.integers(0, N, B).astype(np.int64)
    if B:
        rows[0] = 1
    pixel_index = np.asarray(pixel_index, dtype=np.int64)
    D = len(pixel_index)
    scale = rng.normal(size=D).astype(dtype) / 255
    shift = rng.normal(size=D).astype(dtype)
    out = np.full((B, D), np.nan, dtype=dtype)
    K.gather_batch(out, images, rows, pixel_index, scale, shift)
    assert_close(out, naive.gather_batch(images, rows, pixel_index, scale, shift), dtype,
                 what="gather_batch")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,D", [(5, 9), (1, 9), (0, 9), (4, 0)], ids=["ordinary", "B=1", "B=0",
                                                                        "D=0"])
def test_gather_batch(dtype, B, D):
    check_gather_batch(dtype, B, np.random.default_rng(1).permutation(28)[:D])


# Pixel maps of a 4 x 7 image (P = 28): the kernel copies slice by slice when the kept pixels form
# a window (rows of w consecutive pixels, a fixed stride apart: no crop, a crop, one column), and
# falls back to pixel by pixel when they only nearly do
CROP = [r * 7 + c for r in (1, 2, 3) for c in (2, 3, 4, 5)]
PIXEL_MAPS = {"all pixels": list(range(28)), "crop": CROP, "one column": [3, 10, 17, 24],
              "crop, last pixel off": CROP[:-1] + [0],
              "crop, rows unevenly spaced": [r * 7 + c for r in (0, 1, 3) for c in (2, 3, 4, 5)]}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pixels", PIXEL_MAPS)
def test_gather_batch_windows(dtype, pixels):
    check_gather_batch(dtype, 5, PIXEL_MAPS[pixels])


# --------------------------------------------------------------------------------------------
# _exp: the vectorisable exp behind sigmoid
# --------------------------------------------------------------------------------------------
EXP_RTOL = 1e-8   # its docstring: degree-7 Taylor on |r| <= ln(2)/2, error below 1e-8 relative


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_matches_twin(dtype):
    x = np.concatenate([np.linspace(-87, 88, 701), np.linspace(-1, 1, 101),
                        [0.0, -0.0, 1e-30, 88.7, -88.7, -100.0, 100.0, 1e4, -1e4,
                         np.inf, -np.inf]]).astype(dtype)
    got = np.array([K._exp(v) for v in x])
    assert np.isfinite(got).all()   # clamped to [-87, 88]: never overflows float32
    np.testing.assert_allclose(got, naive.exp_clamped(x), rtol=EXP_RTOL, atol=0)
    assert math.isnan(K._exp(dtype(np.nan)))


# --------------------------------------------------------------------------------------------
# Sparse input path: CSR images, batch gather (with input dropout), dense layer over CSR
# --------------------------------------------------------------------------------------------
def sparse_images(N=9, P=40, seed=14):
    """uint8 images ~75% zero, plus one all-zero and one all-nonzero image."""
    rng = np.random.default_rng(seed)
    images = rng.integers(1, 256, (N, P)).astype(np.uint8)
    images[rng.random((N, P)) < 0.75] = 0
    images[0] = 0
    images[1] = rng.integers(1, 256, P)
    pixel_index = rng.permutation(P)[:P - 7].astype(np.int64)   # a crop, in scrambled order
    return images, pixel_index


@pytest.mark.parametrize("N", [9, 1, 0])
def test_csr_inputs(N):
    images, pixel_index = sparse_images()
    images = np.ascontiguousarray(images[:N])
    ptr, idx, val = K.csr_inputs(images, pixel_index)
    ref_ptr, ref_idx, ref_val = naive.csr_inputs(images, pixel_index)
    assert (ptr.dtype, idx.dtype, val.dtype) == (np.int64, np.uint16, np.uint8)
    np.testing.assert_array_equal(ptr, ref_ptr)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val)
    np.testing.assert_array_equal(naive.csr_to_dense(ptr, idx, val, len(pixel_index)),
                                  images[:, pixel_index])


def gather_sparse_buffers(B, D):
    return np.full(B + 1, -1, np.int64), np.full(B * D, 65535, np.uint16), np.zeros(B * D, np.uint8)


@pytest.mark.parametrize("row0", [0, 5])
@pytest.mark.parametrize("rate", [0.3, 0.9])
def test_gather_sparse_input_dropout_matches_twin(rate, row0):
    images, pixel_index = sparse_images()
    D = len(pixel_index)
    ptr, idx, val = K.csr_inputs(images, pixel_index)
    rows = np.array([1, 3, 0, 1, 8, 5, 2], dtype=np.int64)
    state = K._stream_seed(5, 1, 2, 0)
    bptr, bidx, bval = gather_sparse_buffers(len(rows), D)
    K._gather_sparse(bptr, bidx, bval, ptr, idx, val, rows, rate, np.uint64(state), row0)
    # the twin scales by scale * 1/(1-rate); the kernel copies the raw uint8 survivors
    ref_ptr, ref_idx, ref_val = naive.gather_sparse(ptr, idx, val, rows, np.ones(D), rate, state,
                                                    row0)
    n = ref_ptr[-1]
    assert 0 < n < ptr[rows + 1].sum() - ptr[rows].sum()   # some entries dropped, some kept
    np.testing.assert_array_equal(bptr, ref_ptr)
    np.testing.assert_array_equal(bidx[:n], ref_idx)
    np.testing.assert_allclose(bval[:n] / (1.0 - rate), ref_val, rtol=1e-12)
    # each row draws from its own seed: a block of rows starting at row0 + 3 keeps exactly the
    # entries those rows keep in the whole batch, as a thread building its block does
    bptr2, bidx2, bval2 = gather_sparse_buffers(len(rows) - 3, D)
    K._gather_sparse(bptr2, bidx2, bval2, ptr, idx, val, rows[3:], rate, np.uint64(state),
                     row0 + 3)
    np.testing.assert_array_equal(bidx2[:bptr2[-1]], bidx[bptr[3]:n])


def csr_batch(B, D, nnz_per_row, dtype, seed=16):
    """A CSR batch whose rows hold the given numbers of entries (distinct inputs, sorted)."""
    rng = np.random.default_rng(seed)
    bptr = np.concatenate([[0], np.cumsum(nnz_per_row)]).astype(np.int64)
    bidx = np.concatenate([np.sort(rng.choice(D, k, replace=False)) for k in nnz_per_row]
                          + [np.zeros(0)]).astype(np.uint16)
    bval = rng.normal(size=bptr[-1]).astype(dtype)
    return bptr, bidx, bval


def csr_source(nnz_per_row, D, dtype, value_dtype):
    """What the sparse kernels read: ``(rows, ptr, idx, val, scale, factor)`` with the CSR rows
    in shuffled order and one repeated (as batch rows index a data set), values float or uint8,
    a per-input scale and a factor; and the dense float64 X (B, D) they stand for."""
    rng = np.random.default_rng(19)
    ptr, idx, val = csr_batch(len(nnz_per_row), D, nnz_per_row, np.float64)
    if value_dtype == np.uint8:
        val = rng.integers(1, 256, size=len(val)).astype(np.uint8)
    else:
        val = val.astype(value_dtype)
    rows = rng.permutation(len(nnz_per_row)).astype(np.int64)
    if len(rows) > 1:
        rows[-1] = rows[0]
    scale = rng.uniform(0.5, 2.0, D).astype(dtype) / dtype(255)
    factor = 1.25
    X = naive.csr_to_dense(ptr, idx, val.astype(np.float64) * scale[idx] * factor, D)[rows]
    return (rows, ptr, idx, val, scale, factor), X


# rows of 0..23 entries: the forward kernel's 8-at-a-time loop once and twice, with tails of 0,
# 1 and 7 entries (each long row twice: csr_source repeats one row in place of another), and
# the update kernel's 2-at-a-time loop and its tail
SPARSE_ROWS = {"mixed": [0, 1, 3, 4, 5, 8, 9, 12], "long": [16, 16, 17, 17, 23, 23],
               "one-row": [6], "B=0": []}
VALUE_DTYPES = {"uint8 values": np.uint8, "float values": None}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("values", VALUE_DTYPES)
@pytest.mark.parametrize("case", SPARSE_ROWS)
def test_sparse_dense_forward(case, values, dtype):
    D, H = 24, 5
    nnz = SPARSE_ROWS[case]
    src, X = csr_source(nnz, D, dtype, VALUE_DTYPES[values] or dtype)
    rng = np.random.default_rng(17)
    weight = rng.normal(size=(D, H)).astype(dtype)
    bias = rng.normal(size=H).astype(dtype)
    out = np.full((len(nnz), H), np.nan, dtype=dtype)
    K._sparse_dense_forward(out, *src, weight, bias)
    assert_close(out, naive.dense_forward(X, weight, bias), dtype,
                 scale=np.abs(X) @ np.abs(weight.astype(np.float64)) + np.abs(bias),
                 what="sparse dense_forward")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("values", VALUE_DTYPES)
@pytest.mark.parametrize("T", [1, 2, 3, 16])
@pytest.mark.parametrize("alpha", [1.0, -0.1], ids=["gradient", "fused-sgd"])
def test_sparse_dense_backward_params(alpha, T, values, dtype):
    D, H = 12, 5
    nnz = SPARSE_ROWS["mixed"]
    src, X = csr_source(nnz, D, dtype, VALUE_DTYPES[values] or dtype)
    rng = np.random.default_rng(18)
    dout = rng.normal(size=(len(nnz), H)).astype(dtype)
    if alpha == 1.0:   # the gradient, into zeroed buffers
        dweight, dbias = np.zeros((D, H), dtype), np.zeros(H, dtype)
    else:              # plain SGD fused: alpha = -lr, into the weight and bias themselves
        dweight, dbias = rng.normal(size=(D, H)).astype(dtype), rng.normal(size=H).astype(dtype)
    dense_ptr = np.arange(0, X.size + 1, D, dtype=np.int64)
    dense_idx = np.tile(np.arange(D, dtype=np.uint16), len(nnz))
    ref_w, ref_b = naive.sparse_dense_backward_params(dweight, dbias, dout, dense_ptr, dense_idx,
                                                      X.ravel(), alpha)
    # T threads: thread t owns weight rows [D*t/T, D*(t+1)/T) and bias columns [H*t/T, ...)
    for t in range(T):
        K._sparse_dense_backward_params(dweight, dout, *src, alpha, D * t // T, D * (t + 1) // T)
        K._bias_backward(dbias, dout, alpha, 1.0, H * t // T, H * (t + 1) // T)
    a_dout = np.abs(dout.astype(np.float64))
    assert_close(dweight, ref_w, dtype, scale=np.abs(ref_w) + np.abs(X.T) @ a_dout, what="dweight")
    assert_close(dbias, ref_b, dtype, scale=np.abs(ref_b) + a_dout.sum(axis=0), what="dbias")
    if alpha == 1.0:   # and it is the dense layer's gradient
        _, dw_dense, db_dense = naive.dense_backward(dout, X, np.zeros((D, H)))
        assert_close(dweight, dw_dense, dtype, scale=np.abs(X.T) @ a_dout, what="vs dense")


def test_prefetch_is_a_cpu_prefetch_hint_and_reads_nothing():
    # the sparse kernels' hint (fastmlp/kernels/_prefetch_hint.py) must reach the machine code as
    # a prefetch instruction; as Python (JIT off) it is a no-op
    from fastmlp.kernels import _prefetch

    def touch(a, i):
        _prefetch(a, i)
        return a[0]

    a = np.arange(40, dtype=np.int32)
    if numba.config.DISABLE_JIT:
        assert touch(a, 39) == 0
        return
    fn = numba.njit(touch)
    assert fn(a, 39) == 0
    asm = next(iter(fn.inspect_asm().values()))
    assert "prefetcht0" in asm


# --------------------------------------------------------------------------------------------
# GEMM with alpha and beta, and the dense layer's fused SGD step built on it
# --------------------------------------------------------------------------------------------
# kernels/_gemm.py's two ways: BLAS (what jitted code, the training loop, gets; gemm_tn calls
# it) and the plain NumPy function that Python callers and a run with the JIT off get
GEMM_PATHS = {"blas": lambda out, a, c0, b, alpha, beta: K.gemm_tn(out, a, b, alpha, beta, c0),
              "numpy": K._gemm_tn_cols}


@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B, D, H", [(6, 7, 5), (1, 3, 1), (0, 4, 2), (64, 33, 17)])
@pytest.mark.parametrize("alpha, beta", [(1.0, 0.0), (-0.1, 1.0), (0.5, -2.0)])
def test_gemm_tn(alpha, beta, B, D, H, dtype, path):
    rng = np.random.default_rng(B * 100 + D)
    a, b = rng.normal(size=(B, D)).astype(dtype), rng.normal(size=(B, H)).astype(dtype)
    out = rng.normal(size=(D, H)).astype(dtype)
    a64, b64, out64 = (x.astype(np.float64) for x in (a, b, out))
    want = alpha * a64.T @ b64 + beta * out64
    if beta == 0.0:
        out[:] = np.nan   # beta = 0 must not read out
    GEMM_PATHS[path](out, a, 0, b, alpha, beta)
    assert_close(out, want, dtype, scale=abs(alpha) * np.abs(a64.T) @ np.abs(b64)
                 + abs(beta) * np.abs(out64), what="gemm_tn")


def test_gemm_tn_refuses_what_blas_would_misread():
    gemm_tn = K.gemm_tn
    f = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        gemm_tn(f, np.zeros((4, 6), np.float32)[:, ::2], np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="float32 or float64 like out"):
        gemm_tn(f, np.zeros((4, 3)), np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="shapes do not fit"):
        gemm_tn(f, np.zeros((4, 3), np.float32), np.zeros((5, 2), np.float32))


@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("T", [1, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_backward_sgd_is_one_sgd_step(dtype, T, path):
    # plain SGD fused into the gradient GEMM (beta = 1) as the loop's phase 2 applies it:
    # T threads, each on its block of the weight's rows (columns d0.. of inp) and of the bias's
    rng = np.random.default_rng(21)
    B, D, H, lr = 9, 7, 5, 0.3
    inp, dout = rng.normal(size=(B, D)).astype(dtype), rng.normal(size=(B, H)).astype(dtype)
    W, bias = rng.normal(size=(D, H)).astype(dtype), rng.normal(size=H).astype(dtype)
    _, dW, db = naive.dense_backward(dout, inp, W)
    want_W, want_b = W - lr * dW, bias - lr * db
    for t in range(T):
        d0, d1 = D * t // T, D * (t + 1) // T
        GEMM_PATHS[path](W[d0:d1], inp, d0, dout, -lr, 1.0)
        K._bias_backward(bias, dout, -lr, 1.0, H * t // T, H * (t + 1) // T)
    assert_close(W, want_W, dtype, scale=np.abs(want_W) + lr * np.abs(inp.T) @ np.abs(dout),
                 what="weight")
    assert_close(bias, want_b, dtype, scale=np.abs(want_b) + lr * np.abs(dout).sum(0),
                 what="bias")


# --------------------------------------------------------------------------------------------
# Dense layer
# --------------------------------------------------------------------------------------------
DENSE_CASES = {"ordinary": (6, 7, 5, 1.0), "B=1": (1, 7, 5, 1.0), "B=0": (0, 7, 5, 1.0),
               "large": (4, 7, 5, 1e4), "H=1": (3, 4, 1, 1.0)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", DENSE_CASES)
def test_dense_forward_backward(dtype, case):
    B, D, H, magnitude = DENSE_CASES[case]
    rng = np.random.default_rng(1)
    inp = (rng.normal(size=(B, D)) * magnitude).astype(dtype)
    weight = rng.normal(size=(D, H)).astype(dtype)
    bias = (rng.normal(size=H) * magnitude).astype(dtype)
    dout = (rng.normal(size=(B, H)) * magnitude).astype(dtype)

    out = np.full((B, H), np.nan, dtype=dtype)
    K.dense_forward(out, inp, weight, bias)
    # a sum of products is accurate relative to its terms, not to its (possibly cancelled) value
    assert_close(out, naive.dense_forward(inp, weight, bias), dtype,
                 scale=np.abs(inp).astype(np.float64) @ np.abs(weight) + np.abs(bias),
                 what="dense_forward")

    dinp = np.full((B, D), np.nan, dtype=dtype)
    dweight = np.full((D, H), np.nan, dtype=dtype)   # the kernel must overwrite, not accumulate
    dbias = np.full(H, np.nan, dtype=dtype)
    K.dense_backward(dinp, dweight, dbias, dout, inp, weight)
    ref_dinp, ref_dweight, ref_dbias = naive.dense_backward(dout, inp, weight)
    a_dout, a_inp, a_w = (np.abs(x).astype(np.float64) for x in (dout, inp, weight))
    assert_close(dinp, ref_dinp, dtype, scale=a_dout @ a_w.T, what="dinp")
    assert_close(dweight, ref_dweight, dtype, scale=a_inp.T @ a_dout, what="dweight")
    assert_close(dbias, ref_dbias, dtype, scale=a_dout.sum(axis=0), what="dbias")

    # the first layer passes dinp=None: parameters' gradients only
    dweight2 = np.full((D, H), np.nan, dtype=dtype)
    dbias2 = np.full(H, np.nan, dtype=dtype)
    K.dense_backward(None, dweight2, dbias2, dout, inp, weight)
    np.testing.assert_array_equal(dweight2, dweight)
    np.testing.assert_array_equal(dbias2, dbias)


def test_dense_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    B, D, H = 3, 4, 5
    inp, weight, bias = rng.normal(size=(B, D)), rng.normal(size=(D, H)), rng.normal(size=H)
    G = rng.normal(size=(B, H))   # loss = sum(G * dense(inp)), so dout = G
    out = np.empty((B, H))

    def loss():
        K.dense_forward(out, inp, weight, bias)
        return float(np.sum(G * out))

    dinp, dweight, dbias = np.empty((B, D)), np.empty((D, H)), np.empty(H)
    K.dense_backward(dinp, dweight, dbias, G, inp, weight)
    assert_fd_close(dweight, fd_gradient(loss, weight), "dweight")
    assert_fd_close(dbias, fd_gradient(loss, bias), "dbias")
    assert_fd_close(dinp, fd_gradient(loss, inp), "dinp")


# --------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------
def activation_inputs(spec, dtype):
    """An ordinary grid plus the extremes: +-1e4, +-100, +-88 (float32 exp's edge), 0, tiny
    values, and exactly the kink."""
    extremes = [1e4, -1e4, 100.0, -100.0, 88.0, -88.0, 88.7, -88.7, 0.0, 1e-30, -1e-30]
    k = kink(spec)
    if k is not None:
        k = dtype(k)
        extremes += [k, np.nextafter(k, dtype(np.inf)), np.nextafter(k, dtype(-np.inf))]
    return np.concatenate([np.linspace(-6, 6, 49), extremes]).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", ACT_SPECS)
def test_activation_matches_twin(spec, dtype):
    act = get_activation(spec)
    z = activation_inputs(spec, dtype)
    rng = np.random.default_rng(3)
    da = rng.normal(size=z.shape).astype(dtype)
    a = np.full_like(z, np.nan)
    K.activation_forward(a, z, act)
    assert np.isfinite(a).all(), f"{spec}: non-finite output at z={z[~np.isfinite(a)]}"
    assert_close(a, naive.activation_forward(act.name, z, act.param), dtype, what=f"{spec} f")
    dz = np.full_like(z, np.nan)
    K.activation_backward(dz, da, z, a, act)
    assert np.isfinite(dz).all(), f"{spec}: non-finite gradient at z={z[~np.isfinite(dz)]}"
    assert_close(dz, naive.activation_backward(act.name, da, z, act.param), dtype,
                 what=f"{spec} f'")


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_on_matrices_and_empty(dtype):
    act = get_activation("gelu")
    z = np.random.default_rng(4).normal(size=(3, 5)).astype(dtype)
    a = np.empty_like(z)
    K.activation_forward(a, z, act)
    assert_close(a, naive.gelu(z), dtype, what="gelu (3, 5)")
    dz = np.empty_like(z)
    K.activation_backward(dz, np.ones_like(z), z, a, act)
    assert_close(dz, naive.gelu_derivative(z), dtype, what="gelu' (3, 5)")
    empty = np.empty((0, 5), dtype=dtype)
    K.activation_forward(empty.copy(), empty, act)
    K.activation_backward(empty.copy(), empty, empty, empty, act)


def smooth_points(spec, n=60, seed=5):
    """Random float64 points in [-4, 4], none within 1e-3 of the activation's kink."""
    z = np.random.default_rng(seed).uniform(-4, 4, n)
    k = kink(spec)
    return z if k is None else z[np.abs(z - k) > 1e-3]


@pytest.mark.parametrize("spec", ACT_SPECS)
def test_activation_backward_matches_finite_differences(spec):
    act = get_activation(spec)
    z = smooth_points(spec)
    a, dz = np.empty_like(z), np.empty_like(z)
    K.activation_forward(a, z, act)
    K.activation_backward(dz, np.ones_like(z), z, a, act)
    # element-wise, so every entry can be perturbed at once
    up, down = np.empty_like(z), np.empty_like(z)
    zp, zm = z + FD_STEP, z - FD_STEP
    K.activation_forward(up, zp, act)
    K.activation_forward(down, zm, act)
    assert_fd_close(dz, (up - down) / (zp - zm), f"{spec} backward")


@pytest.mark.parametrize("dtype", DTYPES)
def test_shifted_relu_is_max_minus_c_not_relu_shifted(dtype):
    act = get_activation("shifted_relu:1")
    z = np.array([0.5, -0.5, -1.0, -3.0, 2.0], dtype=dtype)
    a = np.empty_like(z)
    K.activation_forward(a, z, act)
    np.testing.assert_array_equal(a, np.array([0.5, -0.5, -1.0, -1.0, 2.0], dtype=dtype))
    assert a[0] != max(0.0, 0.5 - 1.0)  # relu(x - c) would give 0 at x = 0.5
    dz = np.empty_like(z)
    K.activation_backward(dz, np.ones_like(z), z, a, act)
    np.testing.assert_array_equal(dz, np.array([1, 1, 0, 0, 1], dtype=dtype))  # 0 at x = -c


# --------------------------------------------------------------------------------------------
# Fused softmax + cross-entropy
# --------------------------------------------------------------------------------------------
def xent_case(name, dtype):
    rng = np.random.default_rng(6)
    K_ = 10
    if name == "ordinary":
        logits = rng.normal(size=(6, K_)) * 3
    elif name == "plus-minus-1e4":
        logits = rng.choice([-1e4, 1e4], size=(6, K_)) + rng.normal(size=(6, K_))
    elif name == "all-equal":
        logits = np.full((4, K_), 7.5)
    elif name == "one-sample":
        logits = rng.normal(size=(1, K_))
    elif name == "empty":
        logits = np.zeros((0, K_))
    elif name == "huge-spread":
        logits = rng.normal(size=(4, K_))
        logits[:, 0], logits[:, 1] = 1e4, -1e4
    elif name == "rows-far-apart":   # the seed's failure: one row ~ +1000, another ~ 0
        logits = rng.normal(size=(2, K_))
        logits[0] += 1000.0
    labels = rng.integers(0, K_, logits.shape[0])
    if name == "huge-spread":
        labels[:2] = 1          # the very unlikely class: loss 2e4
    return np.ascontiguousarray(logits, dtype=dtype), labels.astype(np.int64)


XENT_CASES = ["ordinary", "plus-minus-1e4", "all-equal", "one-sample", "empty", "huge-spread",
              "rows-far-apart"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", XENT_CASES)
def test_softmax_xent_matches_twin(case, dtype):
    logits, labels = xent_case(case, dtype)
    probs = np.full_like(logits, np.nan)
    loss, correct = K.softmax_xent_forward(probs, logits, labels)
    ref_loss, ref_probs, ref_correct = naive.softmax_xent_forward(logits, labels)
    assert math.isfinite(loss)
    assert_close(loss, ref_loss, dtype, what="mean loss")
    assert_close(probs, ref_probs, dtype, what="probs")
    assert correct == ref_correct and isinstance(correct, int)
    if logits.shape[0]:
        assert_close(probs.sum(axis=1), 1.0, dtype, what="rows of probs sum to 1")
    dlogits = np.full_like(logits, np.nan)
    K.softmax_xent_backward(dlogits, probs, labels)
    if logits.shape[0]:
        assert_close(dlogits, naive.softmax_xent_backward(ref_probs, labels), dtype,
                     what="dlogits")


def test_softmax_xent_exact_values():
    """All-equal rows: p = 1/K, loss = log K, argmax is the first class. Empty batch: (0.0, 0)."""
    logits = np.full((3, 4), -2.0)
    labels = np.array([0, 0, 2])
    probs = np.empty_like(logits)
    loss, correct = K.softmax_xent_forward(probs, logits, labels)
    assert loss == pytest.approx(math.log(4), rel=1e-15)
    np.testing.assert_allclose(probs, 0.25, rtol=1e-15)
    assert correct == 2   # a tie goes to the first class, as np.argmax
    empty = np.zeros((0, 4))
    assert K.softmax_xent_forward(empty.copy(), empty, np.zeros(0, np.int64)) == (0.0, 0)
    K.softmax_xent_backward(empty.copy(), empty, np.zeros(0, np.int64))


@pytest.mark.parametrize("case", ["ordinary", "one-sample", "rows-far-apart", "all-equal"])
def test_softmax_xent_gradient_matches_finite_differences(case):
    logits, labels = xent_case(case, np.float64)
    probs = np.empty_like(logits)

    def loss():
        return K.softmax_xent_forward(probs, logits, labels)[0]

    loss()
    dlogits = np.empty_like(logits)
    K.softmax_xent_backward(dlogits, probs, labels)
    assert_fd_close(dlogits, fd_gradient(loss, logits), f"dlogits ({case})")


def batch_max_softmax_xent(logits, labels):
    """The seed's bug, kept here to show it: ONE max for the whole batch instead of each row's."""
    z = logits - logits.max()
    e = np.exp(z)
    probs = e / e.sum(axis=1, keepdims=True)
    return -np.mean(np.log(probs[np.arange(len(labels)), labels]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_failure_batch_max_softmax_gives_nan_kernel_does_not(dtype):
    logits = np.zeros((2, 10), dtype=dtype)
    logits[0] = 1000.0 + np.arange(10)         # row 0 ~ +1000
    logits[1] = np.linspace(-1, 1, 10)         # row 1 ~ 0: exp(row1 - 1000) underflows to 0
    labels = np.array([9, 3])
    with np.errstate(all="ignore"):
        assert not np.isfinite(batch_max_softmax_xent(logits, labels))  # 0/0 -> NaN
    probs = np.empty_like(logits)
    loss, correct = K.softmax_xent_forward(probs, logits, labels)
    ref = -np.mean(naive.log_softmax(logits)[np.arange(2), labels])   # float64 log-sum-exp
    assert math.isfinite(loss)
    assert_close(loss, ref, dtype, what="loss")
    assert correct == 1
    dlogits = np.empty_like(logits)
    K.softmax_xent_backward(dlogits, probs, labels)
    assert np.isfinite(dlogits).all()
    assert_close(dlogits, naive.softmax_xent_backward(naive.softmax(logits), labels), dtype,
                 what="dlogits")
    if dtype is np.float64:
        # Logits ~1000 make the computed loss uncertain by ~ulp(1000) = 1e-13 absolute (fastmath
        # may reassociate the row shift), i.e. 1e-13 / h in the difference quotient: use a
        # larger step, h = 1e-3 (truncation error ~h^2 * third derivative ~ 1e-7 relative here).
        logits64 = logits.copy()
        fd = fd_gradient(lambda: K.softmax_xent_forward(probs, logits64, labels)[0], logits64,
                         step=1e-3)
        assert_fd_close(dlogits, fd, "dlogits on the seed's batch")


# --------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------
def draw_mask(shape, rate, seed=7, stream=(0, 0, 0), dtype=np.float64):
    """The mask the public dropout_forward draws for (seed, stream)."""
    inp = np.ones(shape, dtype=dtype)
    out, mask = np.empty_like(inp), np.empty_like(inp)
    K.dropout_forward(out, mask, inp, rate, seed, stream)
    return mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(7,), (1,), (0,), (5, 13)])
def test_dropout_values_and_backward(shape, rate, dtype):
    rng = np.random.default_rng(8)
    inp = rng.normal(size=shape).astype(dtype)
    out = np.full_like(inp, np.nan)
    mask = np.full_like(inp, np.nan)
    K.dropout_forward(out, mask, inp, rate, seed=3, stream=(1, 2, 3))
    keep = dtype(1.0 / (1.0 - rate))
    assert np.all((mask == 0) | (mask == keep)), np.unique(mask)
    # float64: exactly inp * mask. float32: the kernel scales by the float64 1/(1 - rate) and
    # rounds once, so out may differ from inp * float32(mask) in the last bit.
    if dtype is np.float64:
        np.testing.assert_array_equal(out, naive.dropout_forward(inp, mask))
    else:
        assert_close(out, naive.dropout_forward(inp, mask), dtype, what="dropout out")
    dout = rng.normal(size=shape).astype(dtype)
    dinp = np.full_like(inp, np.nan)
    K.dropout_backward(dinp, dout, mask)
    np.testing.assert_array_equal(dinp, naive.dropout_backward(dout, mask).astype(dtype))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_fraction_is_rate(rate, jit_off):
    """Over 2^20 draws (2^16 in pure Python) the fraction dropped is within 5 sigma of the rate,
    overall, in each of the four 16-bit lanes of one 64-bit draw, and for pairs of neighbours
    (independence)."""
    n = 1 << (16 if jit_off else 20)
    dropped = draw_mask((n,), rate, seed=7, stream=(4, 5, 6)) == 0

    def check(frac, p, count, what):
        sigma = math.sqrt(p * (1 - p) / count)
        assert abs(frac - p) < 5 * sigma + 1 / 65536, f"{what}: {frac} vs {p} (sigma {sigma})"

    check(dropped.mean(), rate, n, "all")
    for lane in range(4):
        check(dropped[lane::4].mean(), rate, n // 4, f"lane {lane}")
    check((dropped[0::2] & dropped[1::2]).mean(), rate * rate, n // 2, "both of a pair")


def test_dropout_streams():
    a = draw_mask((1000,), 0.5, seed=31, stream=(2, 3, 4))
    np.testing.assert_array_equal(a, draw_mask((1000,), 0.5, seed=31, stream=(2, 3, 4)))
    for other in [dict(seed=32, stream=(2, 3, 4)), dict(seed=31, stream=(3, 3, 4)),
                  dict(seed=31, stream=(2, 4, 4)), dict(seed=31, stream=(2, 3, 5)),
                  dict(seed=31, stream=(4, 3, 2))]:
        b = draw_mask((1000,), 0.5, **other)
        assert (a != b).mean() > 0.3, other   # unrelated masks differ in ~half the places
    # element i's draw depends only on (seed, stream, i): a shorter array is a prefix
    np.testing.assert_array_equal(draw_mask((7,), 0.5, seed=31, stream=(2, 3, 4)), a[:7])


STREAMS = [(0, (0, 0, 0)), (1, (0, 0, 0)), (7, (4, 5, 6)), (2**40, (9, 100000, 3))]


@pytest.mark.parametrize("seed,stream", STREAMS)
def test_dropout_bits_match_twin(seed, stream):
    """The training loop's path (loop/steps.py: a uint64 state, in compiled code) draws exactly the
    mask of the plain-Python splitmix64 + xorshift64* twin."""
    state = K._stream_seed(seed, *stream)
    assert state == naive.stream_seed(seed, *stream)
    x = np.ones(1001)
    mask = np.empty_like(x)
    K._dropout_forward(np.empty_like(x), mask, x, 0.3, np.uint64(state))
    np.testing.assert_array_equal(mask, naive.dropout_mask(x.size, 0.3, state))


# Regression: the public wrapper once passed the state as a Python int, which Numba types int64:
# a state >= 2**63 (half of all seeds and streams) raised OverflowError, and a smaller one ran an
# int64 variant of xorshift, drawing another mask than the training loop.
@pytest.mark.parametrize("seed", [0, 1], ids=["state<2**63", "state>=2**63"])
def test_dropout_wrapper_draws_the_training_loops_mask(seed):
    mask = draw_mask((1000,), 0.5, seed=seed, stream=(0, 0, 0))
    np.testing.assert_array_equal(mask, naive.dropout_mask(1000, 0.5,
                                                           naive.stream_seed(seed, 0, 0, 0)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_rate_zero_keeps_everything(dtype):
    inp = np.random.default_rng(9).normal(size=(4, 9)).astype(dtype)
    out, mask = np.empty_like(inp), np.empty_like(inp)
    K.dropout_forward(out, mask, inp, 0.0, seed=0)
    np.testing.assert_array_equal(mask, 1.0)
    np.testing.assert_array_equal(out, inp)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_rate_out_of_range(rate):
    inp = np.ones(4)
    with pytest.raises(ValueError, match=r"dropout rate must be in \[0, 1\)"):
        K.dropout_forward(np.empty_like(inp), np.empty_like(inp), inp, rate, seed=0)


# --------------------------------------------------------------------------------------------
# A whole network, composed from the public kernels: 2 hidden layers, input and hidden dropout
# --------------------------------------------------------------------------------------------
NET_SIZES = (12, 10, 7, 5)   # D, H1, H2, K
NET_B = 8
NET_RATES = (0.2, 0.5, 0.5)  # dropout on the input, after hidden layer 1, after hidden layer 2


def net_forward(params, x, labels, act, masks):
    """Mean loss and cached activations; ``masks`` fixed, applied by multiplication."""
    W1, b1, W2, b2, W3, b3 = params
    h0 = x * masks[0]
    z1 = np.empty((NET_B, W1.shape[1]))
    K.dense_forward(z1, h0, W1, b1)
    a1 = np.empty_like(z1)
    K.activation_forward(a1, z1, act)
    h1 = a1 * masks[1]
    z2 = np.empty((NET_B, W2.shape[1]))
    K.dense_forward(z2, h1, W2, b2)
    a2 = np.empty_like(z2)
    K.activation_forward(a2, z2, act)
    h2 = a2 * masks[2]
    logits = np.empty((NET_B, W3.shape[1]))
    K.dense_forward(logits, h2, W3, b3)
    probs = np.empty_like(logits)
    loss, _ = K.softmax_xent_forward(probs, logits, labels)
    return loss, (h0, z1, a1, h1, z2, a2, h2, probs)


def net_backward(params, labels, act, masks, cache):
    """Gradients of the mean loss w.r.t. (W1, b1, W2, b2, W3, b3), all through the kernels."""
    W1, b1, W2, b2, W3, b3 = params
    h0, z1, a1, h1, z2, a2, h2, probs = cache
    grads = [np.empty_like(p) for p in params]
    dlogits = np.empty_like(probs)
    K.softmax_xent_backward(dlogits, probs, labels)
    dh2 = np.empty_like(h2)
    K.dense_backward(dh2, grads[4], grads[5], dlogits, h2, W3)
    da2, dz2 = np.empty_like(a2), np.empty_like(z2)
    K.dropout_backward(da2, dh2, masks[2])
    K.activation_backward(dz2, da2, z2, a2, act)
    dh1 = np.empty_like(h1)
    K.dense_backward(dh1, grads[2], grads[3], dz2, h1, W2)
    da1, dz1 = np.empty_like(a1), np.empty_like(z1)
    K.dropout_backward(da1, dh1, masks[1])
    K.activation_backward(dz1, da1, z1, a1, act)
    K.dense_backward(None, grads[0], grads[1], dz1, h0, W1)
    return grads


@pytest.mark.parametrize("spec", ["tanh", "gelu", "shifted_relu:0.5", "leaky_relu:0.1"])
def test_network_gradients_match_finite_differences(spec):
    act = get_activation(spec)
    rng = np.random.default_rng(10)
    params = []
    for d, h in zip(NET_SIZES[:-1], NET_SIZES[1:]):
        params += [rng.normal(size=(d, h)) / math.sqrt(d), rng.normal(size=h) * 0.3]
    x = rng.normal(size=(NET_B, NET_SIZES[0]))
    labels = rng.integers(0, NET_SIZES[-1], NET_B)

    # draw the masks once, with the dropout kernel, in a plain forward pass...
    masks, h = [], x
    for layer, rate in enumerate(NET_RATES):
        out, mask = np.empty_like(h), np.empty_like(h)
        K.dropout_forward(out, mask, h, rate, seed=7, stream=(0, 0, layer))
        masks.append(mask)
        if layer < 2:
            z = np.empty((NET_B, NET_SIZES[layer + 1]))
            K.dense_forward(z, out, params[2 * layer], params[2 * layer + 1])
            h = np.empty_like(z)
            K.activation_forward(h, z, act)
    assert all((m == 0).any() and (m != 0).any() for m in masks)   # dropout really happens
    # ... then reuse them by multiplication while perturbing
    loss, cache = net_forward(params, x, labels, act, masks)
    assert math.isfinite(loss)
    k = kink(spec)
    if k is not None:
        # no pre-activation so close to the kink that a perturbation could cross it: a step of
        # FD_STEP moves a pre-activation by about FD_STEP * (1 + max |layer input|) < 1e-4
        margin = FD_STEP * (1 + max(np.abs(cache[0]).max(), np.abs(cache[3]).max()))
        assert margin < 1e-4
        assert min(np.abs(cache[1] - k).min(), np.abs(cache[4] - k).min()) > 1e-4
    grads = net_backward(params, labels, act, masks, cache)

    def mean_loss():
        return net_forward(params, x, labels, act, masks)[0]

    names = ["W1", "b1", "W2", "b2", "W3", "b3"]
    for name, p, g in zip(names, params, grads):
        idx = rng.choice(p.size, size=min(p.size, 40), replace=False)   # a random subset
        numeric = fd_gradient(mean_loss, p, idx)
        assert_fd_close(g.reshape(-1)[idx], numeric.reshape(-1)[idx], f"{spec}: d{name}")
        assert np.any(g != 0), name


# --------------------------------------------------------------------------------------------
# Parameter updates (private kernels on flat buffers) over several steps
# --------------------------------------------------------------------------------------------
N_STEPS = 5


def update_data(dtype, n=50, seed=12):
    rng = np.random.default_rng(seed)
    params = rng.normal(size=n).astype(dtype)
    grads = [rng.normal(size=n).astype(dtype) for _ in range(N_STEPS)]
    for g in grads:
        g[:3] = 0.0                      # zero gradients: no movement, no 0/0 in Adam
        g[3] *= 1e4                      # and a large one
    return params, grads


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_update(dtype):
    params, grads = update_data(dtype)
    ref = params.astype(np.float64)
    for g in grads:
        K._sgd_update(params, g, 0.05)
        ref = naive.sgd_update(ref, g, 0.05)
        assert_close(params, ref, dtype, what="sgd params")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_update(dtype, nesterov):
    params, grads = update_data(dtype)
    velocity = np.zeros_like(params)
    ref_p, ref_v = params.astype(np.float64), np.zeros(params.size)
    for g in grads:
        K._momentum_update(params, velocity, g, 0.05, 0.9, nesterov)
        ref_p, ref_v = naive.momentum_update(ref_p, ref_v, g, 0.05, 0.9, nesterov)
        assert_close(velocity, ref_v, dtype, what="velocity")
        assert_close(params, ref_p, dtype, what="momentum params")


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_update(dtype):
    params, grads = update_data(dtype)
    m, v = np.zeros_like(params), np.zeros_like(params)
    ref = (params.astype(np.float64), np.zeros(params.size), np.zeros(params.size))
    for t, g in enumerate(grads, start=1):
        K._adam_update(params, m, v, g, 1e-2, 0.9, 0.999, 1e-8, t)
        ref = naive.adam_update(*ref, g, 1e-2, 0.9, 0.999, 1e-8, t)
        assert_close(m, ref[1], dtype, what=f"adam m, step {t}")
        assert_close(v, ref[2], dtype, what=f"adam v, step {t}")
        assert_close(params, ref[0], dtype, what=f"adam params, step {t}")
    np.testing.assert_array_equal(m[:3], 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_weight_decay(dtype):
    params, grads = update_data(dtype)
    g = grads[0].copy()
    K._add_weight_decay(g, params, 5e-4)
    assert_close(g, naive.add_weight_decay(grads[0], params, 5e-4), dtype, what="weight decay")


# --------------------------------------------------------------------------------------------
# Input validation: ValueError naming the problem
# --------------------------------------------------------------------------------------------
def _f(*shape, dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


_LABELS = np.zeros(3, np.int64)
_RELU = get_activation("relu")
_IMAGES = np.zeros((4, 10), np.uint8)
_IDX = np.arange(3, dtype=np.int64)

BAD_CALLS = {
    "logits float16": (lambda: K.softmax_xent_forward(_f(3, 4, dtype=np.float16),
                                                      _f(3, 4, dtype=np.float16), _LABELS),
                       "logits must be float32 or float64"),
    "logits 1-D": (lambda: K.softmax_xent_forward(_f(4), _f(4), _LABELS),
                   "logits must have 2 dimension"),
    "probs dtype": (lambda: K.softmax_xent_forward(_f(3, 4, dtype=np.float32), _f(3, 4), _LABELS),
                    "probs must have dtype float64"),
    "probs shape": (lambda: K.softmax_xent_forward(_f(3, 5), _f(3, 4), _LABELS),
                    r"probs has shape \(3, 5\), expected \(3, 4\)"),
    "label too big": (lambda: K.softmax_xent_forward(_f(3, 4), _f(3, 4), np.array([0, 4, 1])),
                      r"class indices in 0\.\.3"),
    "label negative": (lambda: K.softmax_xent_forward(_f(3, 4), _f(3, 4), np.array([0, -1, 1])),
                       r"class indices in 0\.\.3"),
    "labels one-hot": (lambda: K.softmax_xent_forward(_f(3, 4), _f(3, 4), np.eye(4)[[0, 1, 2]]),
                       "not one-hot"),
    "labels one-hot int": (lambda: K.softmax_xent_forward(
        _f(3, 4), _f(3, 4), np.eye(4, dtype=np.int64)[[0, 1, 2]]), "not one-hot"),
    "labels float": (lambda: K.softmax_xent_forward(_f(3, 4), _f(3, 4), np.zeros(3)),
                     "integer array"),
    "labels length": (lambda: K.softmax_xent_forward(_f(3, 4), _f(3, 4), np.zeros(2, np.int64)),
                      "labels has shape"),
    "dlogits shape": (lambda: K.softmax_xent_backward(_f(3, 5), _f(3, 4), _LABELS),
                      "dlogits has shape"),
    "backward label range": (lambda: K.softmax_xent_backward(_f(3, 4), _f(3, 4),
                                                             np.array([0, 9, 1])),
                             r"class indices in 0\.\.3"),
    "dense inp int": (lambda: K.dense_forward(_f(2, 3), np.zeros((2, 4), np.int64), _f(4, 3),
                                              _f(3)), "inp must be float32 or float64"),
    "dense weight dtype": (lambda: K.dense_forward(_f(2, 3), _f(2, 4),
                                                   _f(4, 3, dtype=np.float32), _f(3)),
                           "weight must have dtype float64"),
    "dense weight shape": (lambda: K.dense_forward(_f(2, 3), _f(2, 4), _f(5, 3), _f(3)),
                           r"weight must be \(D, H\) = \(4, H\)"),
    "dense bias shape": (lambda: K.dense_forward(_f(2, 3), _f(2, 4), _f(4, 3), _f(4)),
                         "bias has shape"),
    "dense out shape": (lambda: K.dense_forward(_f(3, 3), _f(2, 4), _f(4, 3), _f(3)),
                        "out has shape"),
    "dense inp non-contiguous": (lambda: K.dense_forward(_f(2, 3), _f(2, 8)[:, ::2], _f(4, 3),
                                                         _f(3)), "inp must be C-contiguous"),
    "dense weight Fortran": (lambda: K.dense_forward(_f(2, 3), _f(2, 4), np.asfortranarray(
        _f(4, 3)), _f(3)), "weight must be C-contiguous"),
    "dense dweight shape": (lambda: K.dense_backward(_f(2, 4), _f(3, 4), _f(3), _f(2, 3),
                                                     _f(2, 4), _f(4, 3)), "dweight has shape"),
    "dense dinp shape": (lambda: K.dense_backward(_f(2, 5), _f(4, 3), _f(3), _f(2, 3),
                                                  _f(2, 4), _f(4, 3)), "dinp has shape"),
    "activation z float16": (lambda: K.activation_forward(_f(3), _f(3, dtype=np.float16),
                                                          _RELU), "z must be float32 or float64"),
    "activation out shape": (lambda: K.activation_forward(_f(4), _f(3), _RELU),
                             r"out has shape \(4,\), expected \(3,\)"),
    "activation out dtype": (lambda: K.activation_forward(_f(3, dtype=np.float32), _f(3), _RELU),
                             "out must have dtype float64"),
    "activation non-contiguous": (lambda: K.activation_forward(_f(3), _f(6)[::2], _RELU),
                                  "z must be C-contiguous"),
    "activation_backward a shape": (lambda: K.activation_backward(_f(3), _f(3), _f(3), _f(2),
                                                                  _RELU), "a has shape"),
    "dropout mask dtype": (lambda: K.dropout_forward(_f(3), _f(3, dtype=np.float32), _f(3), 0.5,
                                                     0), "mask must have dtype float64"),
    "dropout_backward shape": (lambda: K.dropout_backward(_f(3), _f(3), _f(4)),
                               "mask has shape"),
    "gather images dtype": (lambda: K.gather_batch(_f(2, 3), _f(4, 10), np.zeros(2, np.int64),
                                                   _IDX, _f(3), _f(3)),
                            "images must have dtype uint8"),
    "gather rows dtype": (lambda: K.gather_batch(_f(2, 3), _IMAGES, np.zeros(2, np.int32), _IDX,
                                                 _f(3), _f(3)), "rows must have dtype int64"),
    "gather rows range": (lambda: K.gather_batch(_f(2, 3), _IMAGES, np.array([0, 4]), _IDX,
                                                 _f(3), _f(3)),
                          r"rows must index images \(0\.\.3\)"),
    "gather pixel range": (lambda: K.gather_batch(_f(2, 3), _IMAGES, np.zeros(2, np.int64),
                                                  np.array([0, 1, 10]), _f(3), _f(3)),
                           r"pixel_index must index a flattened image \(0\.\.9\)"),
    "gather scale dtype": (lambda: K.gather_batch(_f(2, 3), _IMAGES, np.zeros(2, np.int64), _IDX,
                                                  _f(3, dtype=np.float32), _f(3)),
                           "scale must have dtype float64"),
    "gather shift shape": (lambda: K.gather_batch(_f(2, 3), _IMAGES, np.zeros(2, np.int64), _IDX,
                                                  _f(3), _f(4)), "shift has shape"),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_public_wrappers_reject_bad_input(case):
    call, message = BAD_CALLS[case]
    with pytest.raises(ValueError, match=message):
        call()


# Regression: _check_elementwise once read first.ndim before checking that it was an array.
@pytest.mark.parametrize("call", [
    lambda: K.activation_forward(_f(3), [0.0, 1.0, 2.0], _RELU),
    lambda: K.dropout_forward(_f(3), _f(3), [0.0, 1.0, 2.0], 0.5, 0),
    lambda: K.dropout_backward(_f(3), [0.0, 1.0, 2.0], _f(3)),
], ids=["activation_forward", "dropout_forward", "dropout_backward"])
def test_elementwise_wrappers_reject_a_list(call):
    with pytest.raises(ValueError, match="must be a NumPy array"):
        call()


# --------------------------------------------------------------------------------------------
# Activation specs
# --------------------------------------------------------------------------------------------
def test_get_activation_specs():
    act = get_activation("shifted_relu:0.5")
    assert (act.name, act.code, act.param, act.init, str(act)) == (
        "shifted_relu", K.SHIFTED_RELU, 0.5, "he", "shifted_relu:0.5")
    assert get_activation("shifted_relu").param == 1.0
    assert get_activation(" leaky_relu ").param == 0.01
    assert get_activation("elu:2").param == 2.0
    assert get_activation("tanh").init == "xavier"
    assert get_activation(act) is act


@pytest.mark.parametrize("spec,message", [
    ("relu:1", "takes no parameter"),
    ("sigmoid:0.5", "takes no parameter"),
    ("leaky_relu:abc", "is not a number"),
    ("shifted_relu:-1", "c >= 0"),
    ("", "must be a name"),
    (None, "must be a name"),
])
def test_get_activation_rejects(spec, message):
    with pytest.raises(ConfigError, match=message):
        get_activation(spec)


@pytest.mark.parametrize("spec", ["shifted_relu:nan", "leaky_relu:inf", "elu:-inf"])
def test_get_activation_rejects_non_finite_parameter(spec):
    with pytest.raises(ConfigError, match="is not a number"):
        get_activation(spec)


def test_get_activation_unknown_lists_the_names():
    with pytest.raises(ConfigError, match="unknown activation 'nope'") as info:
        get_activation("nope")
    for name in BUILTINS:
        assert name in str(info.value)


# --------------------------------------------------------------------------------------------
# User-written activations
# --------------------------------------------------------------------------------------------
def swish(x):
    """x sigmoid(x): a user's activation, in scalar Python for Numba."""
    return x / (1.0 + math.exp(-x))


def swish_derivative(x):
    """Its derivative."""
    s = 1.0 / (1.0 + math.exp(-x))
    return s + x * s * (1.0 - s)


def swish_twin(x):
    """NumPy float64 swish and its derivative."""
    x = np.asarray(x, dtype=np.float64)
    s = naive.sigmoid(x)
    return x * s, s + x * s * (1.0 - s)


@pytest.fixture(scope="module")
def swish_act():
    return custom_activation(swish, swish_derivative, name="swish")


def test_custom_activation_is_a_user_activation(swish_act):
    assert isinstance(swish_act, Activation)
    assert (swish_act.name, swish_act.builtin, swish_act.init) == ("swish", False, "he")
    assert get_activation(swish_act) is swish_act


@pytest.mark.parametrize("dtype", DTYPES)
def test_custom_activation_matches_twin(swish_act, dtype):
    z = np.concatenate([np.linspace(-6, 6, 25), [0.0, 30.0, -30.0]]).astype(dtype)
    da = np.random.default_rng(13).normal(size=z.shape).astype(dtype)
    a, dz = np.empty_like(z), np.empty_like(z)
    K.activation_forward(a, z, swish_act)
    K.activation_backward(dz, da, z, a, swish_act)
    f, df = swish_twin(z)
    assert_close(a, f, dtype, what="swish")
    assert_close(dz, da * df, dtype, what="swish'")


def test_custom_activation_matches_finite_differences(swish_act):
    z = smooth_points("tanh")
    a, dz = np.empty_like(z), np.empty_like(z)
    K.activation_forward(a, z, swish_act)
    K.activation_backward(dz, np.ones_like(z), z, a, swish_act)
    up, down = np.empty_like(z), np.empty_like(z)
    zp, zm = z + FD_STEP, z - FD_STEP
    K.activation_forward(up, zp, swish_act)
    K.activation_forward(down, zm, swish_act)
    assert_fd_close(dz, (up - down) / (zp - zm), "swish backward")


def test_custom_activation_backward_in_place_as_the_loop_calls_it(swish_act):
    # the training loop passes one buffer as da and dz (steps._rows_loss_backward)
    z = np.linspace(-5, 5, 37).astype(np.float32)
    da = np.random.default_rng(3).normal(size=z.shape).astype(np.float32)
    expected = da * swish_twin(z)[1]
    a = np.empty_like(z)
    K.activation_forward(a, z, swish_act)
    K.activation_backward(da, da, z, a, swish_act)
    assert_close(da, expected, np.float32, what="swish' in place")


def test_custom_activation_compiles_its_pair_once_and_a_user_code_needs_one(swish_act):
    again = custom_activation(swish, swish_derivative, name="swish")
    assert again.user is swish_act.user and again.addresses() == swish_act.addresses()
    assert all(swish_act.addresses()) and Activation("relu", K.RELU, 0.0, "he").addresses() \
        == (0, 0)
    # the kernels would call address 0: refused where the Activation is made
    with pytest.raises(ConfigError, match="needs its compiled pair; make it with "
                                          r"custom_activation\(f, df\)"):
        Activation("mine", K.USER, 0.0, "he")


class _Box:
    """A plain Python class: Numba cannot create its instances in nopython mode."""


def boxed(x):
    _Box()
    return x


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="NUMBA_DISABLE_JIT=1: nothing compiles")
def test_custom_activation_numba_cannot_compile():
    with pytest.raises(ConfigError, match=r"activation 'boxed' cannot be compiled by Numba") \
            as info:
        custom_activation(boxed, swish_derivative)
    assert "plain scalar functions" in str(info.value)


def test_custom_activation_rejects_non_functions():
    with pytest.raises(ConfigError, match="needs two functions"):
        custom_activation(swish, 3.0)
    with pytest.raises(ConfigError, match="init must be 'he' or 'xavier'"):
        custom_activation(swish, swish_derivative, init="lecun")


USER_MODULE = textwrap.dedent("""
    import math
    from fastmlp.choices.activations import custom_activation

    def swish(x):
        return x / (1.0 + math.exp(-x))

    def swish_derivative(x):
        s = 1.0 / (1.0 + math.exp(-x))
        return s + x * s * (1.0 - s)

    def lonely(x):
        return x

    SWISH = custom_activation(swish, swish_derivative, name="swish-object", init="xavier")
""")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = "fastmlp_test_user_acts"
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)   # and removed again afterwards
    yield name
    sys.modules.pop(name, None)


def test_user_activation_from_module(user_module):
    by_function = get_activation(f"{user_module}:swish")
    by_object = get_activation(f"{user_module}:SWISH")
    assert not by_function.builtin and str(by_function) == f"{user_module}:swish"
    assert by_object is sys.modules[user_module].SWISH and by_object.init == "xavier"
    z = np.linspace(-5, 5, 11)
    f, df = swish_twin(z)
    for act in (by_function, by_object):
        a, dz = np.empty_like(z), np.empty_like(z)
        K.activation_forward(a, z, act)
        K.activation_backward(dz, np.ones_like(z), z, a, act)
        assert_close(a, f, np.float64, what=f"{act} f")
        assert_close(dz, df, np.float64, what=f"{act} f'")


@pytest.mark.parametrize("attr,message", [
    ("missing", "has no 'missing'"),
    ("lonely", "'lonely_derivative'"),
    ("swish:2", "takes no parameter"),
])
def test_user_activation_module_errors(user_module, attr, message):
    with pytest.raises(ConfigError, match=message):
        get_activation(f"{user_module}:{attr}")


def test_user_activation_module_missing():
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module_xyz'"):
        get_activation("no_such_module_xyz:f")
