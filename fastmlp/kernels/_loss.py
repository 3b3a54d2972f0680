"""The fused softmax + cross-entropy pair, row-stable. Shapes: (B, K) logits and probabilities,
(B,) integer labels; the dimension legend is in __init__.py.

Label smoothing (``smoothing`` = e, TrainConfig's label_smoothing): the target of each row is
q = (1 - e) * onehot(label) + e / K instead of onehot(label) (Szegedy et al. 2016), so the loss
is -sum_k q_k log p_k and its gradient (p - q) / B; e = 0 is the plain cross-entropy."""

import math

import numpy as np

from .._jit import jit_kernel
from ._activation import _exp_inplace
from ._checks import _check_array, _check_float, _check_shape

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "_softmax_xent_backward", "_softmax_xent_forward", "softmax_xent_backward",
    "softmax_xent_forward",
]


# ---------------------------------------------------------------------------------------------
# Fused softmax + cross-entropy. Each row's max is subtracted (never the batch's), so exp never
# overflows and the row's largest term is exactly 1: the sum is >= 1 and its log is finite.
# ---------------------------------------------------------------------------------------------
@jit_kernel
def _softmax_xent_forward(probs, logits, labels, smoothing=0.0):
    # probs (B, K) = softmax(logits (B, K)) row by row; labels (B,) int class indices.
    # Returns (sum over rows of -sum_k q_k log p_k, number of rows whose argmax equals the
    # label), q the row's target: onehot(label) smoothed by `smoothing` (the module docstring).
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
    #    taken from the shifted logits, not log(probs): exact even where probabilities underflow.
    #    Smoothed: -sum_k q_k log p_k = log(sum) - (1 - e) * (shifted logit of the label)
    #    - e / K * (sum of the shifted logits), as exact (sum_k q_k = 1)
    keep = 1.0 - smoothing
    spread = smoothing / K
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
        if smoothing > 0.0:
            shifted = 0.0
            for k in range(K):
                shifted += logits[b, k] - row_max
            loss += math.log(total) - keep * (logits[b, y] - row_max) - spread * shifted
        else:
            loss += math.log(total) - (logits[b, y] - row_max)
    return loss, correct


@jit_kernel
def _softmax_xent_backward(dlogits, probs, labels, scale, smoothing=0.0):
    # dlogits (B, K) = (probs (B, K) - q) * scale, q = onehot(labels (B,)) smoothed by
    # `smoothing` (the module docstring); scale is 1/B for a mean loss
    B, K = probs.shape
    if K == 0:
        return
    off = smoothing / K * scale  # float64, as scale: with smoothing 0 the same values as before
    hit = (1.0 - smoothing) * scale
    for b in range(B):
        for k in range(K):
            dlogits[b, k] = probs[b, k] * scale - off
        dlogits[b, labels[b]] -= hit


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


def _check_smoothing(smoothing):
    if not (isinstance(smoothing, (int, float, np.floating)) and 0.0 <= smoothing < 1.0):
        raise ValueError(f"smoothing must be a number in [0, 1), got {smoothing!r}")
    return float(smoothing)


def softmax_xent_forward(probs, logits, labels, smoothing=0.0):
    """Row-stable softmax and mean cross-entropy in one pass.

    probs (B, K) is written; logits (B, K); labels (B,) integer class indices; ``smoothing``
    in [0, 1) the label smoothing (targets (1 - smoothing) * onehot + smoothing / K).
    Returns ``(mean_loss, n_correct)``; a zero-row batch gives ``(0.0, 0)``.
    """
    _check_xent(probs, logits, labels)
    smoothing = _check_smoothing(smoothing)
    loss, correct = _softmax_xent_forward(probs, logits, labels, smoothing)
    B = logits.shape[0]
    return (loss / B if B else 0.0), int(correct)


def softmax_xent_backward(dlogits, probs, labels, smoothing=0.0):
    """Gradient of the mean loss: ``dlogits = (probs - q) / B``, from the forward's
    probabilities, q = onehot(labels) smoothed by ``smoothing`` (as the forward). dlogits and
    probs (B, K), labels (B,)."""
    _check_xent(probs, probs, labels)
    smoothing = _check_smoothing(smoothing)
    _check_array("dlogits", dlogits, 2, probs.dtype)
    _check_shape("dlogits", dlogits, probs.shape)
    B = probs.shape[0]
    if B:
        _softmax_xent_backward(dlogits, probs, labels, 1.0 / B, smoothing)
