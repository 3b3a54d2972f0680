"""What the compiled training loop (steps.py) reads besides the parameters: where each layer
lives in the flat parameter buffer (:func:`make_layout`), its buffers, allocated once per run
(:class:`Workspace`, described in steps.py's docstring), and its scalar settings
(:class:`Hyper`)."""

from typing import NamedTuple

import numpy as np

from ..errors import ConfigError
from ..kernels import SGD

MAX_THREADS = 64  # rows of Workspace.part: threads that can share one training step


def make_layout(sizes):
    """``layout`` (L, 4) int64 rows ``(w_off, b_off, D, H)`` for layer sizes ``(D0, H1, ..., K)``,
    and the total number of parameters."""
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ConfigError(f"layer sizes must be two or more positive numbers, got {list(sizes)}")
    sizes = [int(s) for s in sizes]
    n_params = sum(D * H + H for D, H in zip(sizes[:-1], sizes[1:]))
    if n_params >= 2**40:  # 4 TB of float32: beyond any machine, and near int64 offsets
        raise ConfigError(f"layer sizes {sizes} need {n_params:,} parameters "
                          f"({4 * n_params / 2**30:,.1f} GB); use smaller --hidden sizes")
    rows = []
    offset = 0
    for D, H in zip(sizes[:-1], sizes[1:]):
        rows.append((offset, offset + D * H, D, H))
        offset += D * H + H
    return np.array(rows, dtype=np.int64), offset


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
    dz: np.ndarray
    grads: np.ndarray
    opt1: np.ndarray
    opt2: np.ndarray
    act_offsets: np.ndarray
    part: np.ndarray
    norms: np.ndarray
    factors: np.ndarray


def make_workspace(sizes, max_batch, n_params, norm_threads=0):
    """Allocate the buffers for layer ``sizes`` and batches of up to ``max_batch`` rows; with
    ``norm_threads`` > 0 also the max-norm constraint's (for that many threads): norms (T, sum H)
    float64, each thread's share of every unit's squared incoming norm, and factors (T, sum H)
    float32, each thread's copy of every unit's rescaling factor (steps.py, _clip_block)."""
    D0 = sizes[0]
    hs = np.array(sizes[1:], dtype=np.int64)
    total = int(hs.sum()) * max_batch
    offsets = np.zeros(len(hs), dtype=np.int64)
    offsets[1:] = np.cumsum(hs[:-1] * max_batch)
    f32 = np.float32
    return Workspace(
        x=np.zeros((max_batch, D0), f32), y=np.zeros(max_batch, np.int64),
        bptr=np.zeros(max_batch + MAX_THREADS, np.int64),
        bidx=np.zeros(max_batch * D0, np.uint16),
        bval=np.zeros(max_batch * D0, np.uint8), iota=np.arange(max_batch, dtype=np.int64),
        xd=np.zeros((max_batch, D0), f32),
        xmask=np.zeros((max_batch, D0), f32),
        z=np.zeros(total, f32), h=np.zeros(total, f32), a=np.zeros(total, f32),
        mask=np.zeros(total, f32),
        dz=np.zeros(total, f32), grads=np.zeros(n_params, f32), opt1=np.zeros(n_params, f32),
        opt2=np.zeros(n_params, f32), act_offsets=offsets,
        part=np.zeros((MAX_THREADS, 2), np.float64),
        norms=np.zeros((norm_threads, int(hs.sum())), np.float64),
        factors=np.zeros((norm_threads, int(hs.sum())), f32))


class Hyper(NamedTuple):
    """Scalar settings of the training loop (floats as float64, flags as bool, ints as int64).

    Build it by keyword: ``Hyper(**activation_fields(act), optimizer=..., ...)``; what is
    left out keeps its default (an evaluation needs only the activation, see
    ``calls.eval_hyper``; training fills every field from its config, see
    ``training.plan.loop_hyper``). The field order is Numba's tuple layout, not a call order."""

    # the hidden activation (choices/activations.py): its kernel code and parameter, and for a
    # user's activation the addresses of its compiled float32 pair (kernels/_user_activation.py;
    # else 0)
    act_code: int
    act_param: float
    act_forward: int = 0
    act_backward: int = 0
    # regularisation: dropout rates of the input and of the hidden layers; L2 on the weights
    dropout_input: float = 0.0
    dropout: float = 0.0
    weight_decay: float = 0.0
    # the optimizer (choices/optimizers.py): its row's code, then every row's hyperparameters (each
    # row reads its own: momentum, nesterov; beta1, beta2, eps)
    optimizer: int = SGD
    momentum: float = 0.0
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    # the run: seed of dropout masks and augmentation draws (with epoch and step)
    seed: int = 0
    # how the loop runs (same results either way, but for input dropout's masks): the sparse
    # first layer (training/plan.py); the optimizer step fused into the weight-gradient GEMM
    # (plain SGD without weight decay); threads sharing each step
    sparse: bool = False
    fused: bool = False
    threads: int = 1
    # augmentation: each training image moved up to shift_max pixels, rotated up to rotate_max
    # radians and distorted by an elastic field of up to elastic_max pixels (the last two on the
    # dense path only); image_width is pixels per image row
    shift_max: int = 0
    image_width: int = 1
    rotate_max: float = 0.0
    elastic_max: float = 0.0
    # the loss's label smoothing (kernels/_loss.py); the max-norm constraint: after each update
    # every unit's incoming weight vector (a column of its layer's (D, H) weights, every layer)
    # is rescaled to norm <= max_norm (0: off; steps.py, _clip_block)
    label_smoothing: float = 0.0
    max_norm: float = 0.0


def activation_fields(activation):
    """Hyper's four fields for the hidden ``activation`` (an activations.Activation), by name:
    its code and parameter, and its compiled pair's addresses (0 for a built-in)."""
    forward, backward = activation.addresses()
    return dict(act_code=int(activation.code), act_param=float(activation.param),
                act_forward=forward, act_backward=backward)
