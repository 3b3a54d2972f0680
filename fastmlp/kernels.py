"""Numba kernels: the numerical heart of fastmlp.

Dimension legend, used in every shape line below:
    B  batch size (rows of every activation matrix)
    D  inputs of a layer (784 for a full MNIST image, fewer after a crop)
    H  outputs (units) of a layer
    K  classes (the last layer's H)
    N  images in a data set, P pixels per image (rows * cols)

Conventions (after llm.c): kernels come in forward/backward pairs; arguments are outputs first,
then inputs, then parameters; gradient buffers are named ``d<name>``. Every kernel writes into
buffers the caller allocated once; no kernel allocates. Matrices are C-contiguous; a weight matrix
is stored (D, H) so that the forward pass is ``out = inp @ weight`` (one BLAS call; Numba's
``np.dot`` calls the BLAS that SciPy ships).

Each public function checks dtypes, shapes and contiguity and raises ``ValueError`` naming the
problem; the private ``_name`` kernel it calls only computes, and is what the training loop
(``engine.py``) calls directly inside compiled code.
"""

import math

import numpy as np

from ._jit import jit
from .gemm import _gemm_tn

# ---------------------------------------------------------------------------------------------
# Activation codes. A hidden layer's activation is an integer code plus one float parameter, so
# that one compiled (and cached) kernel serves every built-in activation; see activations.py.
# ---------------------------------------------------------------------------------------------
IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SHIFTED_RELU, ELU, SOFTPLUS, GELU = range(9)

_GELU_K = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715

# exp(x) = 2**n * exp(r) with n = round(x / ln 2) and |r| <= ln(2) / 2: 2**n from this table,
# exp(r) from its Taylor series to degree 7 (error below 1e-8 relative, under float32's
# resolution). Unlike a libm call, this loop vectorises: sigmoid is 3x faster with it.
_POW2 = np.array([2.0 ** k for k in range(-127, 128)], dtype=np.float32)
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


@jit(inline="always")
def _exp(x):
    # exp(x) for x in float32's range; arguments are clamped to [-87, 88] (exp(88) < float32 max)
    if x != x:  # NaN stays NaN (and must not index the table)
        return x
    x = min(max(x, -87.0), 88.0)
    n = math.floor(x * _LOG2E + 0.5)
    r = x - n * _LN2
    p = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (
        1.0 / 120 + r * (1.0 / 720 + r * (1.0 / 5040)))))))
    return _POW2[int(n) + 127] * p


@jit
def _exp_inplace(x):
    # x (N,) = exp(x), element-wise with _exp. A separate function on a 1-D array on purpose:
    # the same loop over a raveled 2-D array inside a bigger kernel did not vectorise.
    for i in range(x.shape[0]):
        x[i] = _exp(x[i])


# ---------------------------------------------------------------------------------------------
# Validation helpers (Python side only)
# ---------------------------------------------------------------------------------------------
def _check_array(name, a, ndim, dtype=None):
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {a.shape}")
    if dtype is not None and a.dtype != dtype:
        raise ValueError(f"{name} must have dtype {np.dtype(dtype).name}, got {a.dtype.name}; "
                         f"convert it with .astype(np.{np.dtype(dtype).name})")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name})")


def _check_float(name, a, ndim, dtype=None):
    _check_array(name, a, ndim, dtype)
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {a.dtype.name}")


def _check_shape(name, a, shape):
    if a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}, expected {tuple(shape)}")


# ---------------------------------------------------------------------------------------------
# Input gather: uint8 images -> float32 batch, applying crop (pixel index map) and scaling
# ---------------------------------------------------------------------------------------------
@jit
def _gather_batch(out, images, rows, pixel_index, scale, shift):
    # out (B, D) float; images (N, P) uint8; rows (B,) int64; pixel_index, scale, shift (D,)
    B, D = out.shape
    if D == 0:
        return
    # When the kept pixels form a window (rows of w consecutive pixels, `stride` apart: no
    # crop, a crop or a center) each row is copied slice to slice, which vectorises: 5x faster
    # without a crop, 1.6x with one, than the indirect loop that auto-crop's map needs.
    # (Indexing with a computed offset instead of slices did not vectorise: measured slower.)
    p0 = pixel_index[0]
    w = 1
    while w < D and pixel_index[w] == p0 + w:
        w += 1
    stride = pixel_index[w] - p0 if w < D else w
    window = D % w == 0
    if window:
        for d in range(D):
            if pixel_index[d] != p0 + (d // w) * stride + d % w:
                window = False
                break
    if window:
        for b in range(B):
            img = images[rows[b]]
            o = out[b]
            for r in range(D // w):
                src = img[p0 + r * stride:p0 + r * stride + w]
                dst = o[r * w:(r + 1) * w]
                sc = scale[r * w:(r + 1) * w]
                sh = shift[r * w:(r + 1) * w]
                for k in range(w):
                    dst[k] = src[k] * sc[k] + sh[k]
    else:
        for b in range(B):
            img = images[rows[b]]
            for d in range(D):
                out[b, d] = img[pixel_index[d]] * scale[d] + shift[d]


def gather_batch(out, images, rows, pixel_index, scale, shift):
    """Fill ``out[b, d] = images[rows[b], pixel_index[d]] * scale[d] + shift[d]``.

    ``out`` (B, D) float32/float64, ``images`` (N, P) uint8, ``rows`` (B,) int64 indices into
    ``images``, ``pixel_index`` (D,) int64 indices into a flattened image, ``scale``/``shift`` (D,)
    of ``out``'s dtype. The data set stays uint8; only the batch becomes float.
    """
    _check_float("out", out, 2)
    _check_array("images", images, 2, np.uint8)
    _check_array("rows", rows, 1, np.int64)
    _check_array("pixel_index", pixel_index, 1, np.int64)
    _check_array("scale", scale, 1, out.dtype)
    _check_array("shift", shift, 1, out.dtype)
    B, D = out.shape
    _check_shape("rows", rows, (B,))
    for name, a in (("pixel_index", pixel_index), ("scale", scale), ("shift", shift)):
        _check_shape(name, a, (D,))
    if B and (rows.min() < 0 or rows.max() >= images.shape[0]):
        raise ValueError(f"rows must index images (0..{images.shape[0] - 1})")
    if D and (pixel_index.min() < 0 or pixel_index.max() >= images.shape[1]):
        raise ValueError(f"pixel_index must index a flattened image (0..{images.shape[1] - 1})")
    _gather_batch(out, images, rows, pixel_index, scale, shift)


# ---------------------------------------------------------------------------------------------
# Sparse input path. An MNIST image is ~80% zero pixels, so the first layer's work shrinks 5x if
# it visits only nonzero inputs. The training set is stored once as CSR (row pointers, input
# indices, uint8 values; 5 bytes per nonzero), and the first layer's forward pass and weight
# gradient read the batch's rows straight from it: input b of the batch is CSR row rows[b], and
# entry j is worth val[j] * scale[idx[j]] * factor. Only input dropout needs a per-step copy
# (_gather_sparse keeps the surviving entries; factor = 1/(1-rate)). Reading in place instead of
# copying the batch first made batch-32 epochs ~20% faster. Valid when a zero pixel maps to a
# zero input (shift == 0).
# ---------------------------------------------------------------------------------------------
@jit
def _csr_count(counts, images, pixel_index):
    # counts (N,) = number of nonzero kept pixels of each image (N, P) uint8
    N = images.shape[0]
    D = pixel_index.shape[0]
    for i in range(N):
        img = images[i]
        c = 0
        for d in range(D):
            if img[pixel_index[d]] != 0:
                c += 1
        counts[i] = c


@jit
def _csr_fill(idx, val, ptr, images, pixel_index):
    # idx (nnz,) input index d, val (nnz,) uint8 pixel, of image i at ptr[i]:ptr[i + 1]
    N = images.shape[0]
    D = pixel_index.shape[0]
    for i in range(N):
        img = images[i]
        j = ptr[i]
        for d in range(D):
            u = img[pixel_index[d]]
            if u != 0:
                idx[j] = d
                val[j] = u
                j += 1


def csr_inputs(images, pixel_index):
    """The nonzero kept pixels of ``images`` (N, P) uint8 as CSR: ``(ptr (N+1,) int64,
    idx (nnz,) int32 input indices, val (nnz,) uint8)``."""
    _check_array("images", images, 2, np.uint8)
    _check_array("pixel_index", pixel_index, 1, np.int64)
    counts = np.empty(images.shape[0], dtype=np.int64)
    _csr_count(counts, images, pixel_index)
    ptr = np.zeros(images.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    idx = np.empty(ptr[-1], dtype=np.int32)
    val = np.empty(ptr[-1], dtype=np.uint8)
    _csr_fill(idx, val, ptr, images, pixel_index)
    return ptr, idx, val


@jit
def _gather_sparse(bptr, bidx, bval, ptr, idx, val, rows, rate, state, row0):
    # Input dropout on the sparse path: batch CSR row b (bptr (B+1,), bidx, bval) holds the
    # entries of data-set row rows[b] (ptr, idx, val) that survive; each is dropped with
    # probability rate, with random bits as in _dropout_forward from the seed
    # _row_seed(state, row0 + b) of its batch row, so a thread can build any block of rows.
    # Values are copied unscaled: the kernels below apply scale and factor = 1/(1-rate).
    B = rows.shape[0]
    n = 0
    threshold = int(rate * 65536.0 + 0.5)
    for b in range(B):
        bptr[b] = n
        x = _row_seed(state, row0 + b) | _U64(1)
        r = _U64(0)
        k = 4
        for j in range(ptr[rows[b]], ptr[rows[b] + 1]):
            if k == 4:
                x ^= x >> _U64(12)
                x ^= x << _U64(25)
                x ^= x >> _U64(27)
                r = x * _U64(0x2545F4914F6CDD1D)
                k = 0
            u = int((r >> _U64(16 * k)) & _U64(0xFFFF))
            k += 1
            if u >= threshold:
                bidx[n] = idx[j]
                bval[n] = val[j]
                n += 1
    bptr[B] = n


@jit
def _sparse_dense_forward(out, rows, ptr, idx, val, scale, factor, weight, bias):
    # out (B, H) = X @ weight (D, H) + bias (H,), X (B, D) sparse: X[b] is CSR row rows[b] of
    # (ptr, idx, val), entry j worth val[j] * scale[idx[j]] * factor (see the section comment).
    # Four inputs per pass over the output row: four weight rows in, one output row in and out.
    # A training thread passes its block of the batch's rows (engine.py).
    B, H = out.shape
    f = weight.dtype.type(factor)  # a float64 factor would promote every row update
    for b in range(B):
        o = out[b]
        for h in range(H):
            o[h] = bias[h]
        j = ptr[rows[b]]
        end = ptr[rows[b] + 1]
        while j + 4 <= end:
            d0, d1, d2, d3 = idx[j], idx[j + 1], idx[j + 2], idx[j + 3]
            v0 = val[j] * scale[d0] * f
            v1 = val[j + 1] * scale[d1] * f
            v2 = val[j + 2] * scale[d2] * f
            v3 = val[j + 3] * scale[d3] * f
            w0, w1, w2, w3 = weight[d0], weight[d1], weight[d2], weight[d3]
            for h in range(H):
                o[h] += v0 * w0[h] + v1 * w1[h] + v2 * w2[h] + v3 * w3[h]
            j += 4
        while j < end:
            d0 = idx[j]
            v0 = val[j] * scale[d0] * f
            w0 = weight[d0]
            for h in range(H):
                o[h] += v0 * w0[h]
            j += 1


@jit
def _lower_bound(idx, lo, hi, d):
    # the first j in [lo, hi) with idx[j] >= d (hi if none); idx[lo:hi] ascending
    while lo < hi:
        mid = (lo + hi) >> 1
        if idx[mid] < d:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def _sparse_dense_backward_params(dweight, dout, rows, ptr, idx, val, scale, factor, alpha,
                                  d0, d1):
    # dweight[d0:d1] (rows of (D, H)) += alpha * (X.T @ dout (B, H))[d0:d1]; X as in
    # _sparse_dense_forward, each CSR row's inputs ascending (as csr_inputs builds them). With
    # alpha = 1 into a zeroed buffer this is the gradient; with alpha = -lr into the weight
    # itself it is plain SGD's update, fused (the first layer needs no dinp). Each training
    # thread owns its rows [d0, d1) of the weight, so no two threads write the same row; a
    # binary search finds each CSR row's stretch of them (no branch per entry). The bias:
    # _bias_backward.
    B, H = dout.shape
    a = dweight.dtype.type(alpha)  # a float64 scalar would turn every row update into float64
    af = a * dweight.dtype.type(factor)
    for b in range(B):
        g = dout[b]
        start = ptr[rows[b]]
        end = ptr[rows[b] + 1]
        j = _lower_bound(idx, start, end, d0)
        stop = _lower_bound(idx, j, end, d1)
        for j in range(j, stop):
            d = idx[j]
            v = af * (val[j] * scale[d])
            w = dweight[d]
            for h in range(H):
                w[h] += v * g[h]


# ---------------------------------------------------------------------------------------------
# Dense layer
# ---------------------------------------------------------------------------------------------
@jit
def _dense_forward(out, inp, weight, bias):
    # out (B, H) = inp (B, D) @ weight (D, H) + bias (H,)
    np.dot(inp, weight, out)
    B, H = out.shape
    for b in range(B):
        for h in range(H):
            out[b, h] += bias[h]


@jit
def _dense_backward_params(dweight, dbias, dout, inp):
    # dweight (D, H) = inp.T (D, B) @ dout (B, H); dbias (H,) = sum_b dout (B, H). Overwrites.
    np.dot(inp.T, dout, dweight)
    B, H = dout.shape
    for h in range(H):
        dbias[h] = 0.0
    for b in range(B):
        for h in range(H):
            dbias[h] += dout[b, h]


@jit
def _dense_backward_sgd(weight, bias, dout, inp, lr):
    # Plain SGD's step fused with the weight gradient, which is never written out:
    # weight (D, H) -= lr * inp (B, D).T @ dout (B, H) in one BLAS call (beta = 1), and
    # bias (H,) -= lr * sum_b dout. Saves a write and two reads of (D, H) per step.
    _gemm_tn(weight, inp, dout, -lr, 1.0)
    B, H = dout.shape
    a = bias.dtype.type(lr)
    for b in range(B):
        for h in range(H):
            bias[h] -= a * dout[b, h]


@jit
def _dense_backward_input(dinp, dout, weight):
    # dinp (B, D) = dout (B, H) @ weight.T (H, D). Overwrites.
    np.dot(dout, weight.T, dinp)


@jit
def _bias_backward(dbias, dout, alpha, beta, h0, h1):
    # dbias[h] = beta * dbias[h] + alpha * sum_b dout[b, h] (dout (B, H)) for h in [h0, h1):
    # the bias gradient (alpha 1, beta 0), or plain SGD's bias step applied to the bias itself
    # (alpha -lr, beta 1). Each training thread owns a block [h0, h1) of the columns.
    B = dout.shape[0]
    a = dbias.dtype.type(alpha)
    c = dbias.dtype.type(beta)
    for h in range(h0, h1):
        dbias[h] *= c
    for b in range(B):
        g = dout[b]
        for h in range(h0, h1):
            dbias[h] += a * g[h]


def _check_dense(out, inp, weight, bias):
    _check_float("inp", inp, 2)
    dt = inp.dtype
    _check_array("weight", weight, 2, dt)
    _check_array("bias", bias, 1, dt)
    _check_array("out", out, 2, dt)
    B, D = inp.shape
    if weight.shape[0] != D:
        raise ValueError(f"weight has shape {weight.shape} but inp has {D} columns; "
                         f"weight must be (D, H) = ({D}, H)")
    H = weight.shape[1]
    _check_shape("bias", bias, (H,))
    _check_shape("out", out, (B, H))


def dense_forward(out, inp, weight, bias):
    """``out = inp @ weight + bias``: out (B, H), inp (B, D), weight (D, H), bias (H,)."""
    _check_dense(out, inp, weight, bias)
    _dense_forward(out, inp, weight, bias)


def dense_backward(dinp, dweight, dbias, dout, inp, weight):
    """Gradients of a dense layer; overwrites (does not accumulate into) its outputs.

    dinp (B, D) or None (the first layer needs no input gradient), dweight (D, H), dbias (H,),
    from dout (B, H), inp (B, D), weight (D, H).
    """
    _check_dense(dout, inp, weight, dbias)
    _check_array("dweight", dweight, 2, inp.dtype)
    _check_shape("dweight", dweight, weight.shape)
    _dense_backward_params(dweight, dbias, dout, inp)
    if dinp is not None:
        _check_array("dinp", dinp, 2, inp.dtype)
        _check_shape("dinp", dinp, inp.shape)
        _dense_backward_input(dinp, dout, weight)


# ---------------------------------------------------------------------------------------------
# Activations (element-wise, on flat views). One kernel for all built-ins: the branch on `code`
# sits outside each loop, so every loop is a plain vectorisable loop.
# ---------------------------------------------------------------------------------------------
@jit
def _activation_forward(out, z, code, p):
    # out (n,) = f(z (n,)); for a (B, H) matrix pass .ravel() views
    n = z.size
    if code == IDENTITY:
        for i in range(n):
            out[i] = z[i]
    elif code == SIGMOID:
        for i in range(n):
            out[i] = 1.0 / (1.0 + _exp(-z[i]))
    elif code == TANH:
        for i in range(n):
            out[i] = math.tanh(z[i])
    elif code == RELU:
        for i in range(n):
            out[i] = max(z[i], 0.0)
    elif code == LEAKY_RELU:
        for i in range(n):
            x = z[i]
            out[i] = x if x > 0.0 else p * x
    elif code == SHIFTED_RELU:
        c = -p
        for i in range(n):
            out[i] = max(z[i], c)
    elif code == ELU:
        for i in range(n):
            x = z[i]
            out[i] = x if x > 0.0 else p * math.expm1(x)
    elif code == SOFTPLUS:
        for i in range(n):
            x = z[i]
            out[i] = max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    elif code == GELU:
        for i in range(n):
            x = z[i]
            out[i] = 0.5 * x * (1.0 + math.tanh(_GELU_K * (x + _GELU_A * x * x * x)))


@jit
def _activation_backward(dz, da, z, a, code, p):
    # dz (n,) = da (n,) * f'(z) ; a = f(z) (n,) is the forward output, reused where cheaper
    n = z.size
    if code == IDENTITY:
        for i in range(n):
            dz[i] = da[i]
    elif code == SIGMOID:
        for i in range(n):
            dz[i] = da[i] * a[i] * (1.0 - a[i])
    elif code == TANH:
        for i in range(n):
            dz[i] = da[i] * (1.0 - a[i] * a[i])
    elif code == RELU:
        for i in range(n):
            dz[i] = da[i] if z[i] > 0.0 else 0.0
    elif code == LEAKY_RELU:
        for i in range(n):
            dz[i] = da[i] if z[i] > 0.0 else p * da[i]
    elif code == SHIFTED_RELU:
        c = -p
        for i in range(n):
            dz[i] = da[i] if z[i] > c else 0.0
    elif code == ELU:
        for i in range(n):
            dz[i] = da[i] if z[i] > 0.0 else da[i] * (a[i] + p)
    elif code == SOFTPLUS:
        for i in range(n):
            dz[i] = da[i] / (1.0 + math.exp(-z[i]))
    elif code == GELU:
        for i in range(n):
            x = z[i]
            t = math.tanh(_GELU_K * (x + _GELU_A * x * x * x))
            dt = (1.0 - t * t) * _GELU_K * (1.0 + 3.0 * _GELU_A * x * x)
            dz[i] = da[i] * (0.5 * (1.0 + t) + 0.5 * x * dt)


def _check_elementwise(**arrays):
    first_name, first = next(iter(arrays.items()))
    if not isinstance(first, np.ndarray):
        raise ValueError(f"{first_name} must be a NumPy array, got {type(first).__name__}")
    _check_float(first_name, first, first.ndim)
    for name, a in arrays.items():
        _check_array(name, a, first.ndim, first.dtype)
        _check_shape(name, a, first.shape)


def activation_forward(out, z, activation):
    """``out = f(z)`` for an :class:`~fastmlp.activations.Activation`; any shape, same for both."""
    _check_elementwise(z=z, out=out)
    activation.kernels.forward(out.reshape(-1), z.reshape(-1), activation.code, activation.param)


def activation_backward(dz, da, z, a, activation):
    """``dz = da * f'(z)``; ``a = f(z)`` from the forward pass. All the same shape."""
    _check_elementwise(z=z, dz=dz, da=da, a=a)
    activation.kernels.backward(dz.reshape(-1), da.reshape(-1), z.reshape(-1), a.reshape(-1),
                                activation.code, activation.param)


# ---------------------------------------------------------------------------------------------
# Fused softmax + cross-entropy. Each row's max is subtracted (never the batch's), so exp never
# overflows and the row's largest term is exactly 1: the sum is >= 1 and its log is finite.
# ---------------------------------------------------------------------------------------------
@jit
def _softmax_xent_forward(probs, logits, labels):
    # probs (B, K) = softmax(logits (B, K)) row by row; labels (B,) int class indices.
    # Returns (sum over rows of -log p[label], number of rows whose argmax equals the label).
    B, K = logits.shape
    loss = 0.0
    correct = 0
    if K == 0:
        return loss, correct
    # Three passes, so that the exponentials run as one flat loop over all B*K entries, which
    # vectorises (row by row, 10 classes are too few): 5x faster than libm's exp per entry.
    # 1. probs = logits - the row's max (in the logits' own dtype; a float64 max would promote
    #    every entry), and the argmax
    for b in range(B):
        row_max = logits[b, 0]
        best = 0
        for k in range(1, K):
            if logits[b, k] > row_max:
                row_max = logits[b, k]
                best = k
        for k in range(K):
            probs[b, k] = logits[b, k] - row_max
        if best == labels[b]:
            correct += 1
    # 2. exp of every entry (all <= 0, so nothing overflows; the table exp, < 1e-8 relative)
    _exp_inplace(probs.ravel())
    # 3. normalise each row; the loss -log p[label] = log(sum) - (shifted logit of the label) is
    #    taken from the shifted logits, not log(probs): exact even where probabilities underflow
    for b in range(B):
        total = 0.0
        for k in range(K):
            total += probs[b, k]
        row_max = logits[b, 0]
        for k in range(1, K):
            row_max = max(row_max, logits[b, k])
        y = labels[b]
        inv = 1.0 / total
        for k in range(K):
            probs[b, k] *= inv
        loss += math.log(total) - (logits[b, y] - row_max)
    return loss, correct


@jit
def _softmax_xent_backward(dlogits, probs, labels, scale):
    # dlogits (B, K) = (probs (B, K) - onehot(labels (B,))) * scale ; scale is 1/B for a mean loss
    B, K = probs.shape
    for b in range(B):
        for k in range(K):
            dlogits[b, k] = probs[b, k] * scale
        dlogits[b, labels[b]] -= scale


def _check_xent(probs, logits, labels):
    _check_float("logits", logits, 2)
    _check_array("probs", probs, 2, logits.dtype)
    _check_shape("probs", probs, logits.shape)
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError("labels must be a 1-D integer array of class indices (not one-hot)")
    _check_shape("labels", labels, (logits.shape[0],))
    K = logits.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= K):
        raise ValueError(f"labels must be class indices in 0..{K - 1}")


def softmax_xent_forward(probs, logits, labels):
    """Row-stable softmax and mean cross-entropy in one pass.

    probs (B, K) is written; logits (B, K); labels (B,) integer class indices.
    Returns ``(mean_loss, n_correct)``; a zero-row batch gives ``(0.0, 0)``.
    """
    _check_xent(probs, logits, labels)
    loss, correct = _softmax_xent_forward(probs, logits, labels)
    B = logits.shape[0]
    return (loss / B if B else 0.0), int(correct)


def softmax_xent_backward(dlogits, probs, labels):
    """Gradient of the mean loss: ``dlogits = (probs - onehot(labels)) / B``, from the forward's
    probabilities. dlogits and probs (B, K), labels (B,)."""
    _check_xent(probs, probs, labels)
    _check_array("dlogits", dlogits, 2, probs.dtype)
    _check_shape("dlogits", dlogits, probs.shape)
    B = probs.shape[0]
    if B:
        _softmax_xent_backward(dlogits, probs, labels, 1.0 / B)


# ---------------------------------------------------------------------------------------------
# Inverted dropout with a counter-based generator: the mask of (seed, stream) is the same
# whatever ran before it, so runs repeat exactly and a resumed run draws the same masks.
# ---------------------------------------------------------------------------------------------
_U64 = np.uint64


@jit
def _splitmix64(x):
    x = x + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


@jit
def _stream_seed(seed, a, b, c):
    # A 64-bit seed for stream (a, b, c) of `seed`, e.g. (epoch, step, layer).
    s = _splitmix64(_U64(seed))
    s = _splitmix64(s ^ _U64(a))
    s = _splitmix64(s ^ _U64(b))
    return _splitmix64(s ^ _U64(c))


@jit
def _row_seed(state, row):
    # the 64-bit seed of row `row` of a batch whose stream seed is `state`: each row of a
    # dropout mask has its own, so any thread can draw any block of rows
    return _splitmix64(state ^ _U64(row))


@jit
def _dropout_forward(out, mask, inp, rate, state):
    # out (n,) = inp (n,) * mask (n,); mask[i] = 0 with probability `rate`, else 1/(1-rate).
    # Randomness: xorshift64* from `state` (a 64-bit seed), 16 bits per element.
    n = inp.size
    threshold = int(rate * 65536.0 + 0.5)
    keep = 1.0 / (1.0 - rate)
    x = state | _U64(1)
    i = 0
    while i < n:
        x ^= x >> _U64(12)
        x ^= x << _U64(25)
        x ^= x >> _U64(27)
        r = x * _U64(0x2545F4914F6CDD1D)
        for j in range(4):
            if i + j < n:
                u = int((r >> _U64(16 * j)) & _U64(0xFFFF))
                m = keep if u >= threshold else 0.0
                mask[i + j] = m
                out[i + j] = inp[i + j] * m
        i += 4


@jit
def _dropout_backward(dinp, dout, mask):
    # dinp (n,) = dout (n,) * mask (n,)
    for i in range(dout.size):
        dinp[i] = dout[i] * mask[i]


def _check_rate(rate):
    if not (0.0 <= rate < 1.0):
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")


def dropout_forward(out, mask, inp, rate, seed, stream=(0, 0, 0)):
    """Inverted dropout: ``out = inp * mask``, mask 0 with probability ``rate`` else
    ``1 / (1 - rate)``. All arrays the same shape; ``seed`` and ``stream`` (three non-negative
    ints, e.g. epoch, step, layer) fix the mask. Rates are resolved to 1/65536."""
    _check_rate(rate)
    _check_elementwise(inp=inp, out=out, mask=mask)
    # Numba returns the uint64 seed as a Python int; pass it back as uint64 so this draws the
    # same mask as the training loop (an int64 would overflow or take another code path).
    state = np.uint64(_stream_seed(seed, *stream))
    _dropout_forward(out.reshape(-1), mask.reshape(-1), inp.reshape(-1), float(rate), state)


def dropout_backward(dinp, dout, mask):
    """``dinp = dout * mask`` with the mask of the forward pass."""
    _check_elementwise(dout=dout, dinp=dinp, mask=mask)
    _dropout_backward(dinp.reshape(-1), dout.reshape(-1), mask.reshape(-1))


# ---------------------------------------------------------------------------------------------
# Parameter updates, on the flat parameter and gradient buffers (views of one allocation)
# ---------------------------------------------------------------------------------------------
@jit
def _sgd_update(params, grads, lr):
    # params (P,) -= lr * grads (P,). Scalars are cast to the arrays' dtype throughout: a
    # float64 scalar would make a float32 loop convert every element to float64 and back.
    step = params.dtype.type(lr)
    for i in range(params.size):
        params[i] -= step * grads[i]


@jit
def _momentum_update(params, velocity, grads, lr, mu, nesterov):
    # velocity (P,) = mu * velocity + grads; params -= lr * (velocity, or grads + mu * velocity)
    lr = params.dtype.type(lr)
    mu = params.dtype.type(mu)
    for i in range(params.size):
        v = mu * velocity[i] + grads[i]
        velocity[i] = v
        if nesterov:
            params[i] -= lr * (grads[i] + mu * v)
        else:
            params[i] -= lr * v


@jit
def _adam_update(params, m, v, grads, lr, beta1, beta2, eps, t):
    # Adam (Kingma & Ba) with bias correction; t is the 1-based step count
    f = params.dtype.type
    c1 = f(1.0 / (1.0 - beta1 ** t))
    c2 = f(1.0 / (1.0 - beta2 ** t))
    one = f(1.0)
    lr, beta1, beta2, eps = f(lr), f(beta1), f(beta2), f(eps)
    for i in range(params.size):
        g = grads[i]
        mi = beta1 * m[i] + (one - beta1) * g
        vi = beta2 * v[i] + (one - beta2) * g * g
        m[i] = mi
        v[i] = vi
        params[i] -= lr * (mi * c1) / (math.sqrt(vi * c2) + eps)


@jit
def _add_weight_decay(grads, params, wd):
    # grads (n,) += wd * params (n,): the gradient of 0.5 * wd * |w|^2, for weight matrices only
    wd = params.dtype.type(wd)
    for i in range(params.size):
        grads[i] += wd * params[i]
