"""The compiled training loop: many SGD steps per call, all inside Numba.

Python-level overhead per step (a dozen calls, argument checks) is what makes frameworks slow at
small batches; here one call runs a whole chunk of steps (gather from uint8 images, forward,
fused softmax + cross-entropy, backward, update) and returns only the chunk's statistics. The
caller (``trainer.py``) chooses chunk sizes so progress bars and Ctrl-C stay responsive.

Buffers (allocated once by :class:`Workspace`, sized for the largest batch):

    x      (Bmax, D0)      the gathered, scaled input batch, and y (Bmax,) its labels
    bptr, bidx, bval       on the sparse path with input dropout: the batch's surviving
                           entries as CSR (uint8 values), and iota (Bmax,) = 0, 1, 2, ...
    xd     (Bmax, D0)      the input after dropout, and xmask its mask
    z, h   (Bmax, sum H)   per layer: pre-activation z_l and f(z_l) (logits and probs for the last)
    a      (Bmax, sum H)   per layer: f(z_l) after dropout, and mask its mask
    d0, d1 (Bmax, max H)   ping-pong gradient buffers
    grads  (P,)            gradients, laid out like the parameters
    opt1, opt2 (P,)        optimizer state (momentum velocity; Adam's two moments)

The sparse input path (``Hyper.sparse``): the training images arrive as CSR (see
``kernels.csr_inputs``) and the first layer visits only nonzero inputs, reading the batch's rows
of that CSR in place (with input dropout, from a per-step copy of the surviving entries). The
first layer's source travels as one tuple ``src = (rows, ptr, idx, val, scale, factor)``.

Plain SGD without weight decay (``Hyper.fused``): each layer's update is applied while its
weight gradient is computed (by BLAS with beta = 1 on dense layers, see ``gemm.py``; inside the
sparse kernel on the sparse first layer), so no weight gradient is written or read.

User activations: the loop calls the activation kernels through two module globals,
``_act_forward`` and ``_act_backward``. For a built-in activation those are the cached kernels of
kernels.py. For a user's :class:`~fastmlp.activations.Activation`, :func:`_specialised` compiles
the very same Python source again with those two names bound to the user's kernels, so user code
runs inside the loop at full speed, with no second copy of the loop to keep in sync; that copy is
cached on disk under the activation's ``cache_key``.
"""

import types
from typing import NamedTuple

import numba
import numpy as np

from . import kernels as K
from ._jit import jit, jit_uncached
from .threads import one_blas_thread

# Numba does not start its thread pool when it loads, from the cache, a function that merely
# contains a parallel kernel (numba issue #8578): the cached loop then calls a null pointer.
# Starting the pool when this module loads makes every cached function safe to call.
numba.get_num_threads()

_act_forward = K._activation_forward
_act_backward = K._activation_backward

SGD, MOMENTUM, ADAM = 0, 1, 2


class Workspace(NamedTuple):
    """Every buffer one training run needs, allocated once (see the module docstring)."""

    x: np.ndarray
    y: np.ndarray
    bptr: np.ndarray
    bidx: np.ndarray
    bval: np.ndarray
    iota: np.ndarray
    xd: np.ndarray
    xmask: np.ndarray
    z: np.ndarray
    h: np.ndarray
    a: np.ndarray
    mask: np.ndarray
    d0: np.ndarray
    d1: np.ndarray
    grads: np.ndarray
    opt1: np.ndarray
    opt2: np.ndarray
    act_offsets: np.ndarray


def make_workspace(sizes, max_batch, n_params):
    """Allocate the buffers for layer ``sizes`` and batches of up to ``max_batch`` rows."""
    D0 = sizes[0]
    hs = np.array(sizes[1:], dtype=np.int64)
    total = int(hs.sum()) * max_batch
    offsets = np.zeros(len(hs), dtype=np.int64)
    offsets[1:] = np.cumsum(hs[:-1] * max_batch)
    widest = int(max(sizes))
    f32 = np.float32
    return Workspace(
        x=np.zeros((max_batch, D0), f32), y=np.zeros(max_batch, np.int64),
        bptr=np.zeros(max_batch + 1, np.int64), bidx=np.zeros(max_batch * D0, np.int32),
        bval=np.zeros(max_batch * D0, np.uint8), iota=np.arange(max_batch, dtype=np.int64),
        xd=np.zeros((max_batch, D0), f32),
        xmask=np.zeros((max_batch, D0), f32),
        z=np.zeros(total, f32), h=np.zeros(total, f32), a=np.zeros(total, f32),
        mask=np.zeros(total, f32),
        d0=np.zeros(max_batch * widest, f32), d1=np.zeros(max_batch * widest, f32),
        grads=np.zeros(n_params, f32), opt1=np.zeros(n_params, f32),
        opt2=np.zeros(n_params, f32), act_offsets=offsets)


class Hyper(NamedTuple):
    """Scalar settings of the training loop (floats as float64, flags as int64)."""

    act_code: int
    act_param: float
    dropout_input: float
    dropout: float
    weight_decay: float
    optimizer: int
    momentum: float
    nesterov: bool
    beta1: float
    beta2: float
    eps: float
    seed: int
    sparse: bool = False
    fused: bool = False
    threads: int = 1


@jit
def _view(buf, offset, rows, cols):
    # (rows, cols) C-contiguous view of the flat buffer starting at offset
    return buf[offset:offset + rows * cols].reshape((rows, cols))


@jit
def _forward(ws, params, layout, b, hp, epoch, step, src):
    # Forward pass of b rows already gathered into ws.x, or if hp.sparse read through src (see
    # the module docstring).
    # Dropout masks come from stream (epoch, step, layer). Evaluation passes an hp with zero
    # dropout rates and sparse off. Returns the last layer's index.
    L = layout.shape[0]
    D0 = layout[0, 2]
    inp = _view(ws.x.ravel(), 0, b, D0)
    sparse = hp.sparse
    if hp.dropout_input > 0.0 and not sparse:
        xd = _view(ws.xd.ravel(), 0, b, D0)
        K._dropout_forward(xd.ravel(), _view(ws.xmask.ravel(), 0, b, D0).ravel(), inp.ravel(),
                           hp.dropout_input, K._stream_seed(hp.seed, epoch, step, 0))
        inp = xd
    for l in range(L):
        w_off, b_off, D, H = layout[l, 0], layout[l, 1], layout[l, 2], layout[l, 3]
        off = ws.act_offsets[l]
        z = _view(ws.z, off, b, H)
        if l == 0 and sparse:
            rows, ptr, idx, val, scale, factor = src
            K._sparse_dense_forward(z, rows, ptr, idx, val, scale, factor,
                                    _view(params, w_off, D, H), params[b_off:b_off + H])
        else:
            K._dense_forward(z, inp, _view(params, w_off, D, H), params[b_off:b_off + H])
        if l == L - 1:
            break
        h = _view(ws.h, off, b, H)
        _act_forward(h.ravel(), z.ravel(), hp.act_code, hp.act_param)
        if hp.dropout > 0.0:
            a = _view(ws.a, off, b, H)
            K._dropout_forward(a.ravel(), _view(ws.mask, off, b, H).ravel(), h.ravel(),
                               hp.dropout, K._stream_seed(hp.seed, epoch, step, l + 1))
            inp = a
        else:
            inp = h
    return L - 1


@jit
def _backward(ws, params, layout, b, hp, lr, src):
    # Backward pass from the logits' gradient already in ws.d0; fills ws.grads, or with
    # hp.fused (plain SGD, no weight decay) applies the SGD step with learning rate lr to each
    # layer as its gradient is computed (after the layer's input gradient, which needs the old
    # weights), so no weight gradient is ever written.
    L = layout.shape[0]
    D0 = layout[0, 2]
    cur = ws.d0
    other = ws.d1
    for l in range(L - 1, -1, -1):
        w_off, b_off, D, H = layout[l, 0], layout[l, 1], layout[l, 2], layout[l, 3]
        dout = _view(cur, 0, b, H)
        weight = _view(params, w_off, D, H)
        bias = params[b_off:b_off + H]
        if l == 0:
            if hp.dropout_input > 0.0:
                inp = _view(ws.xd.ravel(), 0, b, D0)
            else:
                inp = _view(ws.x.ravel(), 0, b, D0)
        else:
            prev = ws.act_offsets[l - 1]
            if hp.dropout > 0.0:
                inp = _view(ws.a, prev, b, D)
            else:
                inp = _view(ws.h, prev, b, D)
            dinp = _view(other, 0, b, D)
            K._dense_backward_input(dinp, dout, weight)
            if hp.dropout > 0.0:
                K._dropout_backward(dinp.ravel(), dinp.ravel(), _view(ws.mask, prev, b, D).ravel())
            _act_backward(dinp.ravel(), dinp.ravel(), _view(ws.z, prev, b, D).ravel(),
                          _view(ws.h, prev, b, D).ravel(), hp.act_code, hp.act_param)
        if hp.fused:
            if l == 0 and hp.sparse:
                rows, ptr, idx, val, scale, factor = src
                K._sparse_dense_backward_params(weight, bias, dout, rows, ptr, idx, val, scale,
                                                factor, -lr, hp.threads)
            else:
                K._dense_backward_sgd(weight, bias, dout, inp, lr)
        else:
            dweight = _view(ws.grads, w_off, D, H)
            dbias = ws.grads[b_off:b_off + H]
            if l == 0 and hp.sparse:
                dweight[:] = 0.0
                dbias[:] = 0.0
                rows, ptr, idx, val, scale, factor = src
                K._sparse_dense_backward_params(dweight, dbias, dout, rows, ptr, idx, val, scale,
                                                factor, 1.0, hp.threads)
            else:
                K._dense_backward_params(dweight, dbias, dout, inp)
            if hp.weight_decay > 0.0:
                K._add_weight_decay(dweight.ravel(), weight.ravel(), hp.weight_decay)
        cur, other = other, cur


@jit
def _update(params, ws, layout, hp, lr, t):
    # the optimizer step from ws.grads (nothing left to do when _backward applied it: hp.fused)
    if hp.fused:
        return
    if hp.optimizer == SGD:
        K._sgd_update(params, ws.grads, lr)
    elif hp.optimizer == MOMENTUM:
        K._momentum_update(params, ws.opt1, ws.grads, lr, hp.momentum, hp.nesterov)
    else:
        K._adam_update(params, ws.opt1, ws.opt2, ws.grads, lr, hp.beta1, hp.beta2, hp.eps, t)


@jit
def _train_steps(params, ws, layout, hp, images, labels, order, pixel_index, scale, shift,
                 csr_ptr, csr_idx, csr_val, batch, first_step, n_steps, lrs, epoch, t0):
    # Runs steps first_step .. first_step + n_steps - 1 of an epoch whose sample order is
    # `order` (N,), batches of `batch` rows (the last one may be shorter), learning rate lrs[s].
    # t0 counts the optimizer steps before this call (Adam's bias correction). On the sparse
    # path the images come as CSR (csr_ptr, csr_idx, csr_val) and `images` is not read.
    # Returns (loss sum, correct, samples, bad_step): bad_step >= 0 is the step whose loss was
    # not finite; training stops there, before that step's update.
    N = order.shape[0]
    L = layout.shape[0]
    Kc = layout[L - 1, 3]
    loss_sum = 0.0
    correct = 0
    samples = 0
    for s in range(first_step, first_step + n_steps):
        start = s * batch
        b = min(batch, N - start)
        if b <= 0:
            break
        rows = order[start:start + b]
        src = (rows, csr_ptr, csr_idx, csr_val, scale, 1.0)
        if hp.sparse and hp.dropout_input > 0.0:
            K._gather_sparse(ws.bptr, ws.bidx, ws.bval, csr_ptr, csr_idx, csr_val, rows,
                             hp.dropout_input, K._stream_seed(hp.seed, epoch, s, 0))
            src = (ws.iota[:b], ws.bptr, ws.bidx, ws.bval, scale, 1.0 / (1.0 - hp.dropout_input))
        elif not hp.sparse:
            K._gather_batch(_view(ws.x.ravel(), 0, b, layout[0, 2]), images, rows,
                            pixel_index, scale, shift)
        y = ws.y[:b]
        for i in range(b):
            y[i] = labels[rows[i]]
        last = _forward(ws, params, layout, b, hp, epoch, s, src)
        off = ws.act_offsets[last]
        probs = _view(ws.h, off, b, Kc)
        loss, ok = K._softmax_xent_forward(probs, _view(ws.z, off, b, Kc), y)
        if not np.isfinite(loss):
            return loss_sum, correct, samples, s
        loss_sum += loss
        correct += ok
        samples += b
        K._softmax_xent_backward(_view(ws.d0, 0, b, Kc), probs, y, 1.0 / b)
        _backward(ws, params, layout, b, hp, lrs[s], src)
        _update(params, ws, layout, hp, lrs[s], t0 + s - first_step + 1)
    return loss_sum, correct, samples, -1


@jit
def _evaluate(pred, probs_out, params, ws, layout, hp, images, labels, pixel_index, scale,
              shift, batch, want_probs):
    # Forward pass over all N images (N, P) uint8 in batches, with hp from eval_hyper (no
    # dropout, dense input); writes pred (N,) and, if want_probs, probs_out (N, K).
    # Returns (loss sum, correct); labels may be empty.
    N = images.shape[0]
    L = layout.shape[0]
    Kc = layout[L - 1, 3]
    have_labels = labels.shape[0] == N
    loss_sum = 0.0
    correct = 0
    rows = np.empty(batch, dtype=np.int64)
    for start in range(0, N, batch):
        b = min(batch, N - start)
        for i in range(b):
            rows[i] = start + i
        K._gather_batch(_view(ws.x.ravel(), 0, b, layout[0, 2]), images, rows[:b],
                        pixel_index, scale, shift)
        src = (rows[:b], ws.bptr, ws.bidx, ws.bval, scale, 1.0)  # not read: hp is dense
        last = _forward(ws, params, layout, b, hp, start, start, src)
        off = ws.act_offsets[last]
        probs = _view(ws.h, off, b, Kc)
        if have_labels:
            loss, ok = K._softmax_xent_forward(probs, _view(ws.z, off, b, Kc),
                                               labels[start:start + b])
            loss_sum += loss
            correct += ok
        else:  # no labels: probabilities only, scored against class 0
            ws.y[:b] = 0
            K._softmax_xent_forward(probs, _view(ws.z, off, b, Kc), ws.y[:b])
        for i in range(b):
            best = 0
            for k in range(1, Kc):
                if probs[i, k] > probs[i, best]:
                    best = k
            pred[start + i] = best
            if want_probs:
                for k in range(Kc):
                    probs_out[start + i, k] = probs[i, k]
    return loss_sum, correct


# ---------------------------------------------------------------------------------------------
# Specialisation for user activations
# ---------------------------------------------------------------------------------------------
_SPECIALISED = {}
_LOOP_FUNCTIONS = ("_forward", "_backward", "_train_steps", "_evaluate")


def _specialised(activation):
    """``(train_steps, evaluate)`` compiled for ``activation``: the cached module functions for a
    built-in, or the same source compiled again with the user's kernels bound (see module doc).
    The copies are cached on disk under names carrying ``activation.cache_key`` (a digest of the
    user's functions and their file): Numba keys its cache by a function's file, name and
    bytecode, not by the globals it calls, so each user activation needs names of its own."""
    if activation.builtin:
        return _train_steps, _evaluate
    key = id(activation.kernels)
    if key not in _SPECIALISED:
        glb = dict(globals())
        glb["_act_forward"] = activation.kernels.forward
        glb["_act_backward"] = activation.kernels.backward
        tag = activation.cache_key
        for name in _LOOP_FUNCTIONS:  # callers after callees, so each sees the new ones
            py = globals()[name].py_func
            fn = types.FunctionType(py.__code__, glb, py.__name__, py.__defaults__,
                                    py.__closure__)
            if tag is None:
                glb[name] = jit_uncached(fn)
            else:
                fn.__qualname__ = f"{py.__qualname__}__user_{tag}"
                glb[name] = jit(fn)
        _SPECIALISED[key] = (glb["_train_steps"], glb["_evaluate"], activation.kernels)
    return _SPECIALISED[key][:2]


# ---------------------------------------------------------------------------------------------
# Python-side entry points
# ---------------------------------------------------------------------------------------------
def transform_arrays(model, n_pixels):
    """``(pixel_index, scale, shift)`` of the model's input transform (identity and /255 when
    the model has none)."""
    t = model.transform
    if t is None:
        idx = np.arange(n_pixels, dtype=np.int64)
        return idx, np.full(n_pixels, 1 / 255, np.float32), np.zeros(n_pixels, np.float32)
    return (np.ascontiguousarray(t.pixel_index, dtype=np.int64),
            np.ascontiguousarray(t.scale, dtype=np.float32),
            np.ascontiguousarray(t.shift, dtype=np.float32))


def eval_hyper(activation):
    """The Hyper an evaluation needs (only the activation matters)."""
    return Hyper(int(activation.code), float(activation.param), 0.0, 0.0, 0.0, SGD, 0.0, False,
                 0.9, 0.999, 1e-8, 0)


def evaluate(model, images_flat, labels=None, batch_size=1000, pred_out=None, probs_out=None,
             workspace=None):
    """Forward pass over ``images_flat`` (N, P) uint8. Returns ``(mean loss, n_correct)`` when
    labels are given (else ``(nan, 0)``); fills ``pred_out`` (N,) / ``probs_out`` (N, K)."""
    images_flat = np.ascontiguousarray(images_flat.reshape(len(images_flat), -1))
    N = len(images_flat)
    batch = max(1, min(batch_size, N))
    ws = workspace
    if ws is None or ws.x.shape[0] < batch:
        ws = make_workspace(model.sizes, batch, model.params.size)
    idx, scale, shift = transform_arrays(model, images_flat.shape[1])
    pred = pred_out if pred_out is not None else np.empty(N, dtype=np.int64)
    want = probs_out is not None
    probs = probs_out if want else np.empty((1, 1), dtype=np.float32)
    if labels is None:
        labs = np.empty(0, dtype=np.int64)
    else:
        labs = np.ascontiguousarray(labels, dtype=np.int64)
    if N == 0:
        return float("nan"), 0
    _, evaluate_fn = _specialised(model.activation)
    loss, correct = evaluate_fn(pred, probs, model.params, ws, model.layout,
                                eval_hyper(model.activation), images_flat, labs, idx, scale,
                                shift, batch, want)
    if labels is None:
        return float("nan"), 0
    return loss / N, int(correct)


NO_CSR = (np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.uint8))


def train_steps(model, ws, hp, images_flat, labels, order, transform, batch, first_step,
                n_steps, lrs, epoch, t0, csr=NO_CSR):
    """Run ``n_steps`` training steps inside compiled code; see ``_train_steps``. ``csr`` is
    ``kernels.csr_inputs(images_flat, pixel_index)`` when ``hp.sparse``."""
    train_fn, _ = _specialised(model.activation)
    idx, scale, shift = transform
    args = (model.params, ws, model.layout, hp, images_flat, labels, order, idx, scale, shift,
            *csr, batch, first_step, n_steps, lrs, epoch, t0)
    if hp.sparse and hp.threads > 1:
        with one_blas_thread():  # the parallel sparse kernels need the other core
            loss, correct, samples, bad = train_fn(*args)
    else:
        loss, correct, samples, bad = train_fn(*args)
    return float(loss), int(correct), int(samples), int(bad)
