"""The Python calls into the compiled loop (steps.py): :func:`train_steps` runs a chunk of
training steps and :func:`evaluate` a forward pass over images, each on its threads with BLAS
held to one thread inside each; and the arguments of calls that compile them without running
a step (:func:`warmup_args`, :func:`evaluate_warmup_args`; warmup.py).

A ``model`` here is anything with an MLP's ``sizes``, ``params``, ``layout``, ``activation``
and ``transform`` (model.py); this layer never imports it.
"""

import numba
import numpy as np

from .. import kernels as K
from ..threads import one_blas_thread
from .buffers import MAX_THREADS, Hyper, activation_fields, make_workspace
from .steps import _evaluate_worker, _train_worker


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
    """The Hyper an evaluation needs: only the activation matters (no dropout, dense input)."""
    return Hyper(**activation_fields(activation))


def evaluate(model, images_flat, labels=None, batch_size=1000, pred_out=None, probs_out=None,
             workspace=None, threads=None):
    """Forward pass over ``images_flat`` (N, P) uint8 (float32 features for a model trained
    on them). Returns ``(mean loss, n_correct)`` when labels are given (else ``(nan, 0)``);
    fills ``pred_out`` (N,) / ``probs_out`` (N, K). ``threads`` (default: Numba's thread
    count, see fastmlp.threads) split the images."""
    if images_flat.ndim != 2:  # (N, rows, cols): an empty batch's -1 would not resolve
        images_flat = images_flat.reshape(len(images_flat), int(np.prod(images_flat.shape[1:])))
    images_flat = np.ascontiguousarray(images_flat)
    N = len(images_flat)
    idx, scale, shift = transform_arrays(model, images_flat.shape[1])
    _check_evaluate_args(model, images_flat, labels, idx, scale, shift, pred_out, probs_out)
    T = max(1, min(threads or numba.get_num_threads(), N, MAX_THREADS))
    batch = max(1, min(batch_size, N))
    ws = workspace
    if ws is None or ws.x.shape[0] < max(batch, T):
        ws = make_workspace(model.sizes, max(batch, T), model.params.size)
    pred = pred_out if pred_out is not None else np.empty(N, dtype=np.int64)
    want = probs_out is not None
    probs = probs_out if want else np.empty((1, 1), dtype=np.float32)
    if labels is None:
        labs = np.empty(0, dtype=np.int64)
    else:
        labs = np.ascontiguousarray(labels, dtype=np.int64)
    if N == 0:
        return float("nan"), 0
    with one_blas_thread():  # the threads share the work; BLAS inside each runs on one
        K.run_workers(_evaluate_worker, T, pred, probs, model.params, ws, model.layout,
                      eval_hyper(model.activation), images_flat, labs, idx, scale, shift, batch,
                      want)
    if labels is None:
        return float("nan"), 0
    return float(ws.part[:T, 0].sum()) / N, int(ws.part[:T, 1].sum())


def _check_evaluate_args(model, images, labels, idx, scale, shift, pred_out, probs_out):
    """What ``_evaluate_worker`` indexes, checked before it runs (ValueError otherwise): the
    parameters hold every layer of ``model.layout``, one pixel index, scale and shift per input
    of the first layer, each pixel index inside the images' rows, labels 0..K-1, outputs of
    N rows."""
    N, P = images.shape
    D, K = int(model.layout[0][2]), int(model.layout[-1][3])
    _, b, _, H = (int(v) for v in model.layout[-1])
    kind = np.float32 if getattr(model.transform, "inputs", "images") == "features" else np.uint8
    if images.dtype != kind:  # uint8 images, or float32 features for a model trained on them
        raise ValueError(f"images must be {np.dtype(kind).name}, got {images.dtype}")
    if model.params.dtype != np.float32 or model.params.size != b + H:
        raise ValueError(f"parameters: {model.params.size} float32, {b + H} expected")
    if idx.shape != (D,) or scale.shape != (D,) or shift.shape != (D,):
        raise ValueError(f"the input transform has {idx.shape[0]} pixel indices, "
                         f"{scale.shape[0]} scales and {shift.shape[0]} shifts; the first "
                         f"layer takes {D} inputs")
    if D and (idx.min() < 0 or idx.max() >= P):
        raise ValueError(f"the input transform reads pixels up to {int(idx.max())}, the images "
                         f"have {P}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (N,) or (N and (labels.min() < 0 or labels.max() >= K)):
            raise ValueError(f"labels must be ({N},) classes 0..{K - 1}")
    if pred_out is not None and (pred_out.shape != (N,) or pred_out.dtype != np.int64):
        raise ValueError(f"pred_out must be ({N},) int64")
    if probs_out is not None and (probs_out.shape != (N, K) or probs_out.dtype != np.float32):
        raise ValueError(f"probs_out must be ({N}, {K}) float32")


NO_CSR = (np.zeros(1, np.int64), np.zeros(0, np.uint16), np.zeros(0, np.uint8))
NO_PIXEL_MAP = np.zeros(0, np.int64)  # input_of_pixel when images rotate or bend, unshifted


def moves_images(hp):
    """Whether ``hp`` augments (shifts, rotates or distorts the images): only then does the
    loop take an ``input_of_pixel`` array (else None, and it compiles without those kernels)."""
    return hp.shift_max > 0 or hp.rotate_max > 0.0 or hp.elastic_max > 0.0


def pixel_map_arg(hp, pixel_index, n_pixels):
    """The loop's ``input_of_pixel`` for ``hp``: the transform's inverse map when it shifts,
    NO_PIXEL_MAP when it only rotates or distorts, None when it moves no image."""
    if hp.shift_max > 0:
        return K.input_of_pixel(pixel_index, n_pixels)
    return NO_PIXEL_MAP if moves_images(hp) else None


def train_steps(model, ws, hp, images_flat, labels, order, transform, batch, first_step,
                n_steps, lrs, epoch, t0, csr=NO_CSR, input_of_pixel=None):
    """Run ``n_steps`` training steps inside compiled code on ``hp.threads`` threads; see
    ``_train_worker``. ``csr`` is ``kernels.csr_inputs(images_flat, pixel_index)`` when
    ``hp.sparse``; ``input_of_pixel`` is :func:`pixel_map_arg` (None unless ``hp`` moves the
    images). Returns ``(loss sum, correct, samples, bad_step)``."""
    idx, scale, shift = transform
    T = max(1, min(int(hp.threads), MAX_THREADS))
    if images_flat.shape[0] != labels.shape[0] and not hp.sparse:
        raise ValueError(f"the dense first layer reads the images: {images_flat.shape[0]} "
                         f"images for {labels.shape[0]} labels (a run that freed them, "
                         "release_train_images, trains on the sparse path only)")
    if hp.max_norm > 0.0 and ws.norms.shape[0] < T:
        raise ValueError(f"max_norm needs the workspace's norm buffers for {T} threads: "
                         f"make_workspace(..., norm_threads={T})")
    if (input_of_pixel is None) == moves_images(hp):
        raise ValueError("input_of_pixel must be pixel_map_arg(hp, ...): an array exactly when "
                         "hp shifts, rotates or distorts the images, else None")
    if hp.shift_max > 0 and (input_of_pixel.shape[0] != images_flat.shape[1]
                             or images_flat.shape[1] % hp.image_width):
        raise ValueError("a shift needs input_of_pixel (P,) and image_width dividing P")
    if (hp.rotate_max > 0.0 or hp.elastic_max > 0.0) and (
            hp.sparse or images_flat.shape[1] % hp.image_width):
        raise ValueError("a rotation or elastic distortion needs the dense first layer and "
                         "image_width dividing P")
    with one_blas_thread():  # the threads share the work; BLAS inside each runs on one
        loss, correct, samples, bad = K.run_workers(
            _train_worker, T, K.new_state(), model.params, ws, model.layout, hp, images_flat,
            labels, order, idx, scale, shift, input_of_pixel, *csr, batch, first_step, n_steps, lrs,
            epoch, t0)
    return float(loss), int(correct), int(samples), int(bad)


def evaluate_warmup_args(model, ws, hp, images_flat, transform):
    """The arguments of an ``_evaluate_worker`` call that compiles it (or loads it from the cache)
    for evaluations of ``model`` with ``hp`` (:func:`eval_hyper`) on images like ``images_flat``
    (N, P) uint8, without evaluating anything: no images."""
    idx, scale, shift = transform
    return (0, 1, np.empty(0, np.int64), np.empty((1, 1), np.float32), model.params, ws,
            model.layout, hp, images_flat[:0], np.empty(0, np.int64), idx, scale, shift, 1, False)


def warmup_args(model, ws, hp, images_flat, labels, transform, lrs):
    """The arguments of a ``_train_worker`` call that compiles it (or loads it from the cache)
    for training ``model`` with ``hp`` on images like ``images_flat``, without a step. Their
    types depend only on whether ``hp`` moves the images (:func:`moves_images`)."""
    idx, scale, shift = transform
    return (0, 1, K.new_state(), model.params, ws, model.layout, hp, images_flat, labels,
            np.zeros(1, np.int64), idx, scale, shift,
            NO_PIXEL_MAP if moves_images(hp) else None, *NO_CSR, 1, 0, 0, lrs, 0, 0)
