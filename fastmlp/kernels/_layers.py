"""The layers' kernels: the input gather (uint8 images or float32 features -> float batch,
crop and scaling), the
training images as CSR and the sparse first layer that reads them, and the dense layers
(forward and backward, BLAS through Numba's ``np.dot`` and _gemm.py). Shapes use the legend in
``kernels/__init__.py``."""


import numpy as np

from .._jit import jit, jit_kernel
from ._checks import _check_array, _check_float, _check_gather, _check_shape
from ._dropout import _U64, _row_seed
from ._prefetch_hint import LINE, _prefetch

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "MAX_SPARSE_INPUTS", "PREFETCH_ROWS", "_bias_backward", "_dense_backward_input",
    "_dense_backward_params", "_dense_forward", "_gather_batch", "_gather_sparse", "_lower_bound",
    "_sparse_dense_backward_params", "_sparse_dense_forward", "csr_inputs", "dense_backward",
    "dense_forward", "gather_batch",
]


# ---------------------------------------------------------------------------------------------
# Input gather: uint8 images -> float32 batch, applying crop (pixel index map) and scaling.
# Float features (N, D) float32 take the same kernel (a second Numba specialisation, compiled
# the first time features are trained) with the identity map, scale 1 and shift 0: the window
# copy below, x * 1 + 0 = x exactly.
# ---------------------------------------------------------------------------------------------
@jit_kernel
def _gather_batch(out, images, rows, pixel_index, scale, shift):
    # out (B, D) float; images (N, P) uint8 or float32; rows (B,) int64; pixel_index, scale,
    # shift (D,)
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

    ``out`` (B, D) float32/float64, ``images`` (N, P) uint8 (or float32 features), ``rows``
    (B,) int64 indices into
    ``images``, ``pixel_index`` (D,) int64 indices into a flattened image, ``scale``/``shift`` (D,)
    of ``out``'s dtype. The data set stays uint8; only the batch becomes float.
    """
    _check_gather(out, images, rows, pixel_index, scale, shift)
    _gather_batch(out, images, rows, pixel_index, scale, shift)


# ---------------------------------------------------------------------------------------------
# Sparse input path. An MNIST image is ~80% zero pixels, so the first layer's work shrinks 5x if
# it visits only nonzero inputs. The training set is stored once as CSR (row pointers, input
# indices as uint16 and uint8 values: 3 bytes per nonzero, 27 MB for MNIST's training images
# instead of 45 with int32 indices), and the first layer's forward pass and weight gradient
# read the batch's rows straight from it: input b of the batch is CSR row rows[b], and entry j
# is worth val[j] * scale[idx[j]] * factor. Only input dropout needs a per-step copy
# (_gather_sparse keeps the surviving entries; factor = 1/(1-rate)). Reading in place instead of
# copying the batch first made batch-32 epochs ~20% faster. Valid when a zero pixel maps to a
# zero input (shift == 0).
# ---------------------------------------------------------------------------------------------
MAX_SPARSE_INPUTS = 65536  # inputs a uint16 CSR index can name; more take the dense path


@jit_kernel
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


@jit_kernel
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
    idx (nnz,) uint16 input indices, val (nnz,) uint8)``; at most MAX_SPARSE_INPUTS inputs."""
    _check_array("images", images, 2, np.uint8)
    _check_array("pixel_index", pixel_index, 1, np.int64)
    if pixel_index.shape[0] > MAX_SPARSE_INPUTS:
        raise ValueError(f"csr_inputs: {pixel_index.shape[0]} inputs, more than the "
                         f"{MAX_SPARSE_INPUTS} a uint16 index can name")
    counts = np.empty(images.shape[0], dtype=np.int64)
    _csr_count(counts, images, pixel_index)
    ptr = np.zeros(images.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    idx = np.empty(ptr[-1], dtype=np.uint16)
    val = np.empty(ptr[-1], dtype=np.uint8)
    _csr_fill(idx, val, ptr, images, pixel_index)
    return ptr, idx, val


@jit_kernel
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


PREFETCH_ROWS = 4  # how many CSR rows ahead the sparse kernels ask for (see _prefetch_hint.py)


@jit
def _prefetch_row(ptr, idx, val, r):
    # start loading CSR row r's entries: one hint per cache line of idx (uint16) and of val
    for j in range(ptr[r], ptr[r + 1], LINE // 2):
        _prefetch(idx, j)
    for j in range(ptr[r], ptr[r + 1], LINE):
        _prefetch(val, j)


@jit
def _prefetch_ahead(ptr, idx, val, rows, b):
    # called before batch row b of rows (B,) is read: asks for row b + PREFETCH_ROWS, and at
    # b = 0 for the first rows as well
    B = rows.shape[0]
    if b == 0:
        for i in range(min(PREFETCH_ROWS, B)):
            _prefetch_row(ptr, idx, val, rows[i])
    if b + PREFETCH_ROWS < B:
        _prefetch_row(ptr, idx, val, rows[b + PREFETCH_ROWS])


@jit_kernel
def _sparse_dense_forward(out, rows, ptr, idx, val, scale, factor, weight, bias):
    # out (B, H) = X @ weight (D, H) + bias (H,), X (B, D) sparse: X[b] is CSR row rows[b] of
    # (ptr, idx, val), entry j worth val[j] * scale[idx[j]] * factor (see the section comment).
    # Eight inputs per pass over the output row: eight weight rows in, one output row in and
    # out (the output row's loads and stores are what a pass costs beyond its FMAs). On the
    # Zen 5 machine, one core, random MNIST batches of 16-300 rows, H = 32-128: 1.10-1.17x the
    # four-per-pass kernel this replaced; 12 and 16 per pass were slower than 8 (benchmarks/
    # README). A training thread passes its block of the batch's rows (loop/steps.py).
    B, H = out.shape
    f = weight.dtype.type(factor)  # a float64 factor would promote every row update
    for b in range(B):
        _prefetch_ahead(ptr, idx, val, rows, b)
        o = out[b]
        for h in range(H):
            o[h] = bias[h]
        j = ptr[rows[b]]
        end = ptr[rows[b] + 1]
        while j + 8 <= end:
            d0, d1, d2, d3 = idx[j], idx[j + 1], idx[j + 2], idx[j + 3]
            d4, d5, d6, d7 = idx[j + 4], idx[j + 5], idx[j + 6], idx[j + 7]
            v0 = val[j] * scale[d0] * f
            v1 = val[j + 1] * scale[d1] * f
            v2 = val[j + 2] * scale[d2] * f
            v3 = val[j + 3] * scale[d3] * f
            v4 = val[j + 4] * scale[d4] * f
            v5 = val[j + 5] * scale[d5] * f
            v6 = val[j + 6] * scale[d6] * f
            v7 = val[j + 7] * scale[d7] * f
            w0, w1, w2, w3 = weight[d0], weight[d1], weight[d2], weight[d3]
            w4, w5, w6, w7 = weight[d4], weight[d5], weight[d6], weight[d7]
            for h in range(H):
                o[h] += (v0 * w0[h] + v1 * w1[h] + v2 * w2[h] + v3 * w3[h]
                         + v4 * w4[h] + v5 * w5[h] + v6 * w6[h] + v7 * w7[h])
            j += 8
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


@jit_kernel
def _sparse_dense_backward_params(dweight, dout, rows, ptr, idx, val, scale, factor, alpha,
                                  d0, d1):
    # dweight[d0:d1] (rows of (D, H)) += alpha * (X.T @ dout (B, H))[d0:d1]; X as in
    # _sparse_dense_forward, each CSR row's inputs ascending (as csr_inputs builds them). With
    # alpha = 1 into a zeroed buffer this is the gradient; with alpha = -lr into the weight
    # itself it is plain SGD's update, fused (the first layer needs no dinp). Each training
    # thread owns its rows [d0, d1) of the weight, so no two threads write the same row; a
    # binary search finds each CSR row's stretch of them (no branch per entry). Two entries
    # (two distinct weight rows, the inputs ascending) per pass over the dout row, which shares
    # its loads: 1.19-1.24x on this kernel alone at B = 32-600 against one entry per pass, and
    # faster than four per pass (Zen 4, MNIST batches, benchmarks/README); each weight element
    # gets the same additions in the same order either way. The bias: _bias_backward.
    B, H = dout.shape
    a = dweight.dtype.type(alpha)  # a float64 scalar would turn every row update into float64
    af = a * dweight.dtype.type(factor)
    for b in range(B):
        _prefetch_ahead(ptr, idx, val, rows, b)
        g = dout[b]
        start = ptr[rows[b]]
        end = ptr[rows[b] + 1]
        j = _lower_bound(idx, start, end, d0)
        last = _lower_bound(idx, j, end, d1)
        while j + 2 <= last:
            da, db = idx[j], idx[j + 1]
            va = af * (val[j] * scale[da])
            vb = af * (val[j + 1] * scale[db])
            wa, wb = dweight[da], dweight[db]
            for h in range(H):
                gh = g[h]
                wa[h] += va * gh
                wb[h] += vb * gh
            j += 2
        if j < last:
            d = idx[j]
            v = af * (val[j] * scale[d])
            w = dweight[d]
            for h in range(H):
                w[h] += v * g[h]


# ---------------------------------------------------------------------------------------------
# Dense layer
# ---------------------------------------------------------------------------------------------
@jit_kernel
def _dense_forward(out, inp, weight, bias):
    # out (B, H) = inp (B, D) @ weight (D, H) + bias (H,)
    np.dot(inp, weight, out)
    B, H = out.shape
    for b in range(B):
        for h in range(H):
            out[b, h] += bias[h]


@jit_kernel
def _dense_backward_params(dweight, dbias, dout, inp):
    # dweight (D, H) = inp.T (D, B) @ dout (B, H); dbias (H,) = sum_b dout (B, H). Overwrites.
    np.dot(inp.T, dout, dweight)
    B, H = dout.shape
    for h in range(H):
        dbias[h] = 0.0
    for b in range(B):
        for h in range(H):
            dbias[h] += dout[b, h]


@jit_kernel
def _dense_backward_input(dinp, dout, weight):
    # dinp (B, D) = dout (B, H) @ weight.T (H, D). Overwrites.
    np.dot(dout, weight.T, dinp)


@jit_kernel
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

