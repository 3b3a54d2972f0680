"""Naive twins: plain NumPy float64 versions of every kernel in ``fastmlp/kernels/``.

Written the obvious way, for reading rather than speed. Each function takes arrays, casts them to
float64 and *returns* its results (nothing is written in place), so a test can compare a kernel's
``out`` buffers with the twin's return values. Conventions at kinks follow the kernels: a
derivative takes its "right-hand" branch only where ``x`` is strictly above the kink.
"""

import math

import numpy as np

GELU_K = math.sqrt(2.0 / math.pi)
GELU_A = 0.044715


def _f64(*arrays):
    """The arrays as float64."""
    out = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    return out if len(out) > 1 else out[0]


# --------------------------------------------------------------------------------------------
# Input gather
# --------------------------------------------------------------------------------------------
def gather_batch(images, rows, pixel_index, scale, shift):
    """``out[b, d] = images[rows[b], pixel_index[d]] * scale[d] + shift[d]``, float64 (B, D)."""
    scale, shift = _f64(scale, shift)
    picked = images[np.asarray(rows)][:, np.asarray(pixel_index)].astype(np.float64)
    return picked * scale + shift


def shift_image(img, dy, dx):
    """An (H, W) image translated by (dy, dx): out[r, c] = img[r - dy, c - dx], 0 where that
    falls outside the image (what --augment shift draws for each training image)."""
    H, W = img.shape
    out = np.zeros_like(img)
    out[max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        img[max(-dy, 0):H - max(dy, 0), max(-dx, 0):W - max(dx, 0)]
    return out


def exp_clamped(x):
    """exp(x) with x clamped to [-87, 88], float32's range (what kernels._exp computes)."""
    return np.exp(np.clip(_f64(x), -87.0, 88.0))


# --------------------------------------------------------------------------------------------
# Sparse input path: images as CSR, a batch of CSR rows, a dense layer over CSR input
# --------------------------------------------------------------------------------------------
def csr_inputs(images, pixel_index):
    """``(ptr (N+1,), idx, val)``: the nonzero entries of ``images[:, pixel_index]``, row by row,
    in input order."""
    kept = np.asarray(images)[:, np.asarray(pixel_index)]
    counts = (kept != 0).sum(axis=1)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    rows, cols = np.nonzero(kept)          # row-major: each row's inputs in increasing order
    return ptr, cols, kept[rows, cols]


def csr_to_dense(ptr, idx, val, D):
    """The (rows, D) float64 matrix that CSR ``(ptr, idx, val)`` stands for."""
    ptr = np.asarray(ptr)
    out = np.zeros((len(ptr) - 1, D))
    for b in range(len(ptr) - 1):
        out[b, idx[ptr[b]:ptr[b + 1]]] = val[ptr[b]:ptr[b + 1]]
    return out


def gather_sparse(ptr, idx, val, rows, scale, rate=0.0, state=0, row0=0):
    """Batch CSR ``(bptr, bidx, bval)`` of data-set rows ``rows``, values scaled by scale[idx].
    With rate > 0 the entries of batch row b, in order, take the draws of :func:`uniform16`
    from ``row_seed(state, row0 + b)``; an entry whose draw is below round(rate * 65536) is
    dropped, a kept one multiplied by 1/(1 - rate)."""
    ptr, scale = np.asarray(ptr), _f64(scale)
    picked = [np.arange(ptr[r], ptr[r + 1]) for r in rows]
    counts = np.array([len(p) for p in picked], dtype=np.int64)
    js = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    keep = np.ones(len(js), dtype=bool)
    factor = 1.0
    if rate > 0:
        draws = [uniform16(row_seed(state, row0 + b), len(p)) for b, p in enumerate(picked)]
        keep = (np.concatenate(draws) if draws else np.zeros(0)) >= int(rate * 65536.0 + 0.5)
        factor = 1.0 / (1.0 - rate)
    row_of = np.repeat(np.arange(len(rows)), counts)
    bptr = np.concatenate([[0], np.cumsum(np.bincount(row_of[keep], minlength=len(rows)))])
    bidx = np.asarray(idx)[js[keep]]
    bval = np.asarray(val)[js[keep]] * scale[bidx] * factor
    return bptr.astype(np.int64), bidx, bval


def sparse_dense_backward_params(dweight, dbias, dout, bptr, bidx, bval, alpha):
    """``(dweight + alpha X.T @ dout, dbias + alpha sum_b dout)`` with X the CSR batch."""
    dweight, dbias, dout = _f64(dweight, dbias, dout)
    X = csr_to_dense(bptr, bidx, bval, dweight.shape[0])
    return dweight + alpha * X.T @ dout, dbias + alpha * dout.sum(axis=0)


# --------------------------------------------------------------------------------------------
# Dense layer
# --------------------------------------------------------------------------------------------
def dense_forward(inp, weight, bias):
    """``inp (B, D) @ weight (D, H) + bias (H,)`` -> (B, H)."""
    inp, weight, bias = _f64(inp, weight, bias)
    return inp @ weight + bias


def dense_backward(dout, inp, weight):
    """Gradients ``(dinp (B, D), dweight (D, H), dbias (H,))`` of a dense layer from dout (B, H)."""
    dout, inp, weight = _f64(dout, inp, weight)
    return dout @ weight.T, inp.T @ dout, dout.sum(axis=0)


# --------------------------------------------------------------------------------------------
# Activations: f(x, p) and f'(x, p), element-wise. p is the activation's parameter (unused by
# those that take none).
# --------------------------------------------------------------------------------------------
def identity(x, p=0.0):
    """x."""
    return _f64(x).copy()


def identity_derivative(x, p=0.0):
    """1."""
    return np.ones_like(_f64(x))


def sigmoid(x, p=0.0):
    """1 / (1 + exp(-x)), evaluated with exp(-|x|) so it never overflows."""
    x = _f64(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_derivative(x, p=0.0):
    """s (1 - s)."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x, p=0.0):
    """tanh(x)."""
    return np.tanh(_f64(x))


def tanh_derivative(x, p=0.0):
    """1 - tanh(x)^2."""
    return 1.0 - np.tanh(_f64(x)) ** 2


def relu(x, p=0.0):
    """max(0, x)."""
    return np.maximum(_f64(x), 0.0)


def relu_derivative(x, p=0.0):
    """1 where x > 0, else 0."""
    return (_f64(x) > 0).astype(np.float64)


def leaky_relu(x, a=0.01):
    """x if x > 0 else a x."""
    x = _f64(x)
    return np.where(x > 0, x, a * x)


def leaky_relu_derivative(x, a=0.01):
    """1 where x > 0, else a."""
    return np.where(_f64(x) > 0, 1.0, a)


def shifted_relu(x, c=1.0):
    """max(-c, x): the unit can go down to -c. (Not relu(x - c).)"""
    return np.maximum(_f64(x), -c)


def shifted_relu_derivative(x, c=1.0):
    """1 where x > -c, else 0."""
    return (_f64(x) > -c).astype(np.float64)


def elu(x, a=1.0):
    """x if x > 0 else a (exp(x) - 1)."""
    x = _f64(x)
    return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0)))


def elu_derivative(x, a=1.0):
    """1 where x > 0, else a exp(x)."""
    x = _f64(x)
    return np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0.0)))


def softplus(x, p=0.0):
    """log(1 + exp(x)), as logaddexp(0, x)."""
    return np.logaddexp(0.0, _f64(x))


def softplus_derivative(x, p=0.0):
    """sigmoid(x)."""
    return sigmoid(x)


def gelu(x, p=0.0):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    x = _f64(x)
    return 0.5 * x * (1.0 + np.tanh(GELU_K * (x + GELU_A * x ** 3)))


def gelu_derivative(x, p=0.0):
    """d/dx of the tanh-form GELU: 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 a x^2)."""
    x = _f64(x)
    t = np.tanh(GELU_K * (x + GELU_A * x ** 3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_A * x * x)


# name -> (f, f'), each called as f(x, param)
ACTIVATIONS = {
    "identity": (identity, identity_derivative),
    "sigmoid": (sigmoid, sigmoid_derivative),
    "tanh": (tanh, tanh_derivative),
    "relu": (relu, relu_derivative),
    "leaky_relu": (leaky_relu, leaky_relu_derivative),
    "shifted_relu": (shifted_relu, shifted_relu_derivative),
    "elu": (elu, elu_derivative),
    "softplus": (softplus, softplus_derivative),
    "gelu": (gelu, gelu_derivative),
}


def activation_forward(name, z, p=0.0):
    """f(z) for the built-in activation ``name`` with parameter p."""
    return ACTIVATIONS[name][0](z, p)


def activation_backward(name, da, z, p=0.0):
    """da * f'(z)."""
    return _f64(da) * ACTIVATIONS[name][1](z, p)


# --------------------------------------------------------------------------------------------
# Softmax + cross-entropy
# --------------------------------------------------------------------------------------------
def softmax(logits):
    """Row-wise softmax, each row's max subtracted first."""
    z = _f64(logits)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(logits):
    """Row-wise log-softmax via log-sum-exp."""
    z = _f64(logits)
    m = z.max(axis=1, keepdims=True)
    return z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))


def smoothed_targets(labels, K, smoothing=0.0):
    """(B, K) targets: ``(1 - smoothing) * onehot(labels) + smoothing / K``."""
    labels = np.asarray(labels)
    q = np.full((len(labels), K), smoothing / K)
    q[np.arange(len(labels)), labels] += 1.0 - smoothing
    return q


def softmax_xent_forward(logits, labels, smoothing=0.0):
    """``(mean loss, probs (B, K), n_correct)``; mean over rows of -sum_k q_k log softmax_k,
    q the smoothed targets (one-hot for smoothing 0: -log softmax[label]); B = 0 gives
    ``(0.0, empty, 0)``."""
    logits = _f64(logits)
    labels = np.asarray(labels)
    B = logits.shape[0]
    if B == 0:
        return 0.0, np.zeros_like(logits), 0
    logp = log_softmax(logits)
    if smoothing:
        loss = -(smoothed_targets(labels, logits.shape[1], smoothing) * logp).sum(axis=1).mean()
    else:
        loss = -logp[np.arange(B), labels].mean()
    n_correct = int((logits.argmax(axis=1) == labels).sum())
    return float(loss), softmax(logits), n_correct


def softmax_xent_backward(probs, labels, smoothing=0.0):
    """Gradient of the mean loss w.r.t. the logits: ``(probs - q) / B``, q the smoothed
    targets (``onehot(labels)`` for smoothing 0)."""
    probs = _f64(probs)
    B, K = probs.shape
    return (probs - smoothed_targets(labels, K, smoothing)) / max(B, 1)


# --------------------------------------------------------------------------------------------
# Dropout. The random bits, in plain Python integers: splitmix64 for stream seeds, then
# xorshift64* whose 64-bit outputs are cut into four 16-bit draws, low bits first.
# --------------------------------------------------------------------------------------------
_M64 = (1 << 64) - 1


def splitmix64(x):
    """One splitmix64 step on a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def stream_seed(seed, a, b, c):
    """The 64-bit state of stream (a, b, c) of ``seed``."""
    s = splitmix64(seed & _M64)
    for part in (a, b, c):
        s = splitmix64(s ^ (part & _M64))
    return s


def row_seed(state, row):
    """The state of batch row ``row`` of a dropout mask whose stream state is ``state``."""
    return splitmix64((int(state) ^ row) & _M64)


def dropout_mask_rows(rows, cols, rate, state, row0=0):
    """The (rows, cols) mask the training loop draws: row r from ``row_seed(state, row0 + r)``."""
    return np.stack([dropout_mask(cols, rate, row_seed(state, row0 + r)) for r in range(rows)])


def uniform16(state, n):
    """n draws in 0..65535 from xorshift64* started at ``state | 1``."""
    x = (int(state) | 1) & _M64
    draws = []
    while len(draws) < n:
        x ^= x >> 12
        x ^= (x << 25) & _M64
        x ^= x >> 27
        r = (x * 0x2545F4914F6CDD1D) & _M64
        draws += [(r >> (16 * j)) & 0xFFFF for j in range(4)]
    return np.array(draws[:n], dtype=np.int64)


def dropout_mask(n, rate, state):
    """The dropout mask of n elements: 0 where the draw is below round(rate * 65536), else
    1 / (1 - rate)."""
    return np.where(uniform16(state, n) >= int(rate * 65536.0 + 0.5), 1.0 / (1.0 - rate), 0.0)


def dropout_forward(inp, mask):
    """inp * mask."""
    return _f64(inp) * _f64(mask)


def dropout_backward(dout, mask):
    """dout * mask."""
    return _f64(dout) * _f64(mask)


# --------------------------------------------------------------------------------------------
# Parameter updates: each returns the new state, leaving its inputs alone
# --------------------------------------------------------------------------------------------
def sgd_update(params, grads, lr):
    """params - lr grads."""
    params, grads = _f64(params, grads)
    return params - lr * grads


def momentum_update(params, velocity, grads, lr, mu, nesterov):
    """``v = mu v + g``; params - lr v, or (Nesterov) params - lr (g + mu v). -> (params, v)."""
    params, velocity, grads = _f64(params, velocity, grads)
    v = mu * velocity + grads
    step = grads + mu * v if nesterov else v
    return params - lr * step, v


def adam_update(params, m, v, grads, lr, beta1, beta2, eps, t):
    """Adam with bias correction at 1-based step t. Returns (params, m, v)."""
    params, m, v, grads = _f64(params, m, v, grads)
    m = beta1 * m + (1.0 - beta1) * grads
    v = beta2 * v + (1.0 - beta2) * grads ** 2
    m_hat = m / (1.0 - beta1 ** t)
    v_hat = v / (1.0 - beta2 ** t)
    return params - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def add_weight_decay(grads, params, wd):
    """grads + wd params: the gradient of 0.5 wd |w|^2 added."""
    grads, params = _f64(grads, params)
    return grads + wd * params


def max_norm(weights, c):
    """weights (D, H) with each column (a unit's incoming weights) of norm above c rescaled to
    norm c; the others unchanged."""
    w = _f64(weights)
    norms = np.sqrt((w ** 2).sum(axis=0))
    return w * np.where(norms > c, c / np.where(norms > 0, norms, 1.0), 1.0)
