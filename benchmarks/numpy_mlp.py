"""The baseline: fastmlp's network and training step written in plain NumPy, float32.

What a careful NumPy user would write: buffers made once per epoch and filled with ``out=``
arguments, one Python loop over mini-batches, no tricks beyond that. Same network and step as
fastmlp's engine with ``--preset book`` settings (sigmoid hidden layers, softmax output, mean
cross-entropy, plain SGD, no dropout):

    gather uint8 rows -> float32 / 255 -> [dense -> sigmoid] * (L-1) -> dense -> softmax xent
    -> backward -> params -= lr * grads

Dimension letters as in fastmlp/kernels/__init__.py: B batch, D inputs of a layer, H its
outputs, K classes, N images. Parameters use fastmlp's flat layout
(``fastmlp.loop.buffers.make_layout``): for each layer its weight (D, H) then its bias (H,), so
the same initial vector feeds every framework.

Also here: :func:`reference_step`, a float64 version of one training step written the obvious
way (no buffers, no ``out=``), which every benchmark uses to validate its implementation's first
step before timing anything.
"""

import numpy as np

from fastmlp.choices.schedules import steps_in_epoch

F32 = np.float32


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------
def n_params(sizes):
    """Length of the flat parameter vector of a network with layer ``sizes`` (D0, H1, ..., K)."""
    return sum(D * H + H for D, H in zip(sizes[:-1], sizes[1:]))


def unflatten(flat, sizes):
    """``[(W (D, H), b (H,)), ...]``: views into ``flat`` laid out like fastmlp's parameters."""
    if flat.shape != (n_params(sizes),):
        raise ValueError(f"flat parameters have shape {flat.shape}, sizes {list(sizes)} need "
                         f"({n_params(sizes)},)")
    params, off = [], 0
    for D, H in zip(sizes[:-1], sizes[1:]):
        W = flat[off:off + D * H].reshape(D, H)
        off += D * H
        params.append((W, flat[off:off + H]))
        off += H
    return params


def init_params(sizes, seed=0):
    """A flat float32 vector: Xavier-normal weights, zero biases (fastmlp's sigmoid init)."""
    flat = np.zeros(n_params(sizes), F32)
    rng = np.random.default_rng(seed)
    for W, _ in unflatten(flat, sizes):
        D, H = W.shape
        W[:] = rng.standard_normal((D, H), dtype=F32) * F32(np.sqrt(2.0 / (D + H)))
    return flat


# ---------------------------------------------------------------------------------------------
# Kernels (each writes into buffers it is given; also timed one by one in test_bench_kernels)
# ---------------------------------------------------------------------------------------------
def gather_batch(out, staging, images, rows):
    # out (B, D) float32 = images[rows] (N, D) uint8 / 255; staging (B, D) uint8 scratch
    np.take(images, rows, axis=0, out=staging)
    np.multiply(staging, F32(1.0 / 255.0), out=out)


def dense_forward(out, inp, W, b):
    # out (B, H) = inp (B, D) @ W (D, H) + b (H,)
    np.dot(inp, W, out=out)
    out += b


def dense_backward(dinp, dW, db, dout, inp, W):
    # dW (D, H) = inp.T @ dout (B, H); db (H,) = sum_b dout; dinp (B, D) = dout @ W.T (or None)
    np.dot(inp.T, dout, out=dW)
    np.sum(dout, axis=0, out=db)
    if dinp is not None:
        np.dot(dout, W.T, out=dinp)


def sigmoid_forward(out, z):
    # out (B, H) = 1 / (1 + exp(-z)); exp overflows to inf for z < -88, giving exactly 0
    np.negative(z, out=out)
    np.exp(out, out=out)
    out += F32(1.0)
    np.reciprocal(out, out=out)


def sigmoid_backward(dz, da, h, tmp):
    # dz (B, H) = da * h * (1 - h), h = sigmoid(z) from the forward pass; tmp (B, H) scratch
    np.subtract(F32(1.0), h, out=tmp)
    tmp *= h
    np.multiply(da, tmp, out=dz)


def softmax_xent_forward(probs, logits, labels):
    # probs (B, K) = row-stable softmax(logits (B, K)); returns sum over rows of -log p[label]
    B = logits.shape[0]
    np.subtract(logits, logits.max(axis=1, keepdims=True), out=probs)
    picked = probs[np.arange(B), labels]          # shifted logit of the true class
    np.exp(probs, out=probs)
    total = probs.sum(axis=1, keepdims=True)
    probs /= total
    return float(np.log(total).sum(dtype=np.float64) - picked.sum(dtype=np.float64))


def softmax_xent_backward(dlogits, probs, labels):
    # dlogits (B, K) = (probs - onehot(labels)) / B
    B = probs.shape[0]
    scale = F32(1.0 / B)
    np.multiply(probs, scale, out=dlogits)
    dlogits[np.arange(B), labels] -= scale


def dropout_forward(out, mask, inp, rate, rng):
    # out (B, H) = inp * mask; mask 0 with probability rate, else 1 / (1 - rate)
    rng.random(out=mask, dtype=F32)
    np.greater_equal(mask, F32(rate), out=mask, casting="unsafe")
    mask *= F32(1.0 / (1.0 - rate))
    np.multiply(inp, mask, out=out)


def dropout_backward(dinp, dout, mask):
    # dinp (B, H) = dout * mask
    np.multiply(dout, mask, out=dinp)


def sgd_update(param, grad, lr):
    # param (any shape) -= lr * grad; scales the gradient buffer in place
    grad *= F32(lr)
    param -= grad


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def sizes_of(params):
    """Layer sizes (D0, H1, ..., K) of ``params = [(W, b), ...]``."""
    return (params[0][0].shape[0], *(W.shape[1] for W, _ in params))


class Buffers:
    """Every per-batch array one epoch needs, for batches of up to ``batch`` rows."""

    def __init__(self, sizes, batch):
        self.staging = np.empty((batch, sizes[0]), np.uint8)
        self.x = np.empty((batch, sizes[0]), F32)
        self.z = [np.empty((batch, H), F32) for H in sizes[1:]]   # pre-activations, logits
        self.h = [np.empty((batch, H), F32) for H in sizes[1:]]   # activations, probs
        self.d = [np.empty((batch, H), F32) for H in sizes[1:]]   # gradients w.r.t. z
        self.tmp = np.empty((batch, max(sizes[1:])), F32)
        self.grads = [(np.empty((D, H), F32), np.empty(H, F32))
                      for D, H in zip(sizes[:-1], sizes[1:])]


def train_step(params, bufs, X_u8_flat, y, rows, lr):
    """One SGD step on ``rows``; returns the batch's summed loss (before the update)."""
    b = len(rows)
    L = len(params)
    x = bufs.x[:b]
    gather_batch(x, bufs.staging[:b], X_u8_flat, rows)
    labels = y[rows]
    inp = x
    for l, (W, bias) in enumerate(params):
        z = bufs.z[l][:b]
        dense_forward(z, inp, W, bias)
        if l < L - 1:
            inp = bufs.h[l][:b]
            sigmoid_forward(inp, z)
    probs = bufs.h[L - 1][:b]
    loss = softmax_xent_forward(probs, bufs.z[L - 1][:b], labels)
    softmax_xent_backward(bufs.d[L - 1][:b], probs, labels)
    for l in range(L - 1, -1, -1):
        dout = bufs.d[l][:b]
        dW, db = bufs.grads[l]
        inp = bufs.h[l - 1][:b] if l > 0 else x
        dinp = bufs.d[l - 1][:b] if l > 0 else None
        dense_backward(dinp, dW, db, dout, inp, params[l][0])
        if l > 0:
            sigmoid_backward(dinp, dinp, inp, bufs.tmp[:b, :inp.shape[1]])
    for (W, bias), (dW, db) in zip(params, bufs.grads):
        sgd_update(W, dW, lr)
        sgd_update(bias, db, lr)
    return loss


def train_epoch(params, X_u8_flat, y, batch, lr, order, bufs=None, n_steps=None):
    """One epoch of plain mini-batch SGD over ``order`` (N,) int64; the last batch may be short.

    params: ``[(W (D, H), b (H,)), ...]`` float32, updated in place (:func:`unflatten` makes
    them from a flat vector). X_u8_flat (N, D0) uint8, y (N,) int64. ``bufs``: a
    :class:`Buffers` to reuse (default: made here, once per epoch). ``n_steps`` stops early.
    Returns ``(loss sum, samples)``.
    """
    if bufs is None:
        bufs = Buffers(sizes_of(params), batch)
    N = len(order)
    steps = steps_in_epoch(N, batch)
    if n_steps is not None:
        steps = min(n_steps, steps)
    loss_sum, samples = 0.0, 0
    with np.errstate(over="ignore"):  # sigmoid's exp(-z) -> inf for z < -88 gives 0, as meant
        for s in range(steps):
            rows = order[s * batch:(s + 1) * batch]
            loss_sum += train_step(params, bufs, X_u8_flat, y, rows, lr)
            samples += len(rows)
    return loss_sum, samples


def predict(params, X_u8_flat, batch=1000):
    """Predicted classes (N,) of uint8 images (N, D0)."""
    pred = np.empty(len(X_u8_flat), np.int64)
    with np.errstate(over="ignore"):
        for start in range(0, len(X_u8_flat), batch):
            a = X_u8_flat[start:start + batch].astype(F32) / F32(255.0)
            for l, (W, b) in enumerate(params):
                a = a @ W + b
                if l < len(params) - 1:
                    a = 1.0 / (1.0 + np.exp(-a))
            pred[start:start + len(a)] = a.argmax(axis=1)
    return pred


def accuracy(params, X_u8_flat, y):
    """Fraction of images whose predicted class is the label."""
    return float((predict(params, X_u8_flat) == y).mean())


# ---------------------------------------------------------------------------------------------
# Float64 reference for validation
# ---------------------------------------------------------------------------------------------
def reference_step(flat_params, sizes, x_u8, labels, lr):
    """One plain-SGD step in float64, written the obvious way.

    flat_params (P,) in fastmlp's layout (any float dtype), x_u8 (B, D0) uint8, labels (B,).
    Returns ``(mean loss before the step, flat parameters after it (P,) float64)``.
    """
    layers = [(W.astype(np.float64), b.astype(np.float64))
              for W, b in unflatten(np.asarray(flat_params), sizes)]
    B = len(labels)
    acts = [x_u8.astype(np.float64) / 255.0]
    for l, (W, b) in enumerate(layers):
        z = acts[-1] @ W + b
        if l < len(layers) - 1:
            z = 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))
        acts.append(z)
    logits = acts[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(B), labels].mean()
    d = np.exp(logp)
    d[np.arange(B), labels] -= 1.0
    d /= B
    new = []
    for l in range(len(layers) - 1, -1, -1):
        W, b = layers[l]
        inp = acts[l]
        new.append((W - lr * inp.T @ d, b - lr * d.sum(axis=0)))
        if l > 0:
            d = (d @ W.T) * inp * (1.0 - inp)
    flat = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in reversed(new)])
    return float(loss), flat
