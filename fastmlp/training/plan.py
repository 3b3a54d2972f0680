"""A run's plan: where the config stops. :func:`make_plan` fixes what a run needs before its
first step: the data, the network and its buffers, the compiled loop's settings for the config
(:func:`loop_hyper`: its ``Hyper``), and how the first layer reads the inputs
(:func:`input_plan`), sparse (nonzero pixels only, from a CSR of the training images) or dense,
decided per epoch's batch size. Both paths give the same results (except input dropout, which
draws its masks per nonzero pixel on the sparse path and per input on the dense one); the plan
picks the one that measured faster, and the dense one where only it is right (a rotation; a
shift with a crop that leaves out pixels nonzero in some image). The loop below (loop/) never
reads a TrainConfig: it gets arrays and a ``Hyper``.

A run (run.py) calls :func:`make_plan` once; benchmarks call :func:`input_plan` too, so they
time what training runs.
"""

import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .. import kernels
from ..choices.activations import get_activation
from ..choices.augment import parse_augment
from ..choices.optimizers import HYPERPARAMETERS, OPTIMIZERS
from ..choices.schedules import batch_size_for_epoch, steps_in_epoch
from ..config import TrainConfig
from ..errors import ConfigError
from ..loop import warmup
from ..loop.buffers import Hyper, activation_fields, make_workspace
from ..loop.calls import NO_CSR, evaluate, moves_images, pixel_map_arg, transform_arrays
from ..model import MLP, check_memory, training_memory_bytes
from ..threads import set_threads
from .run_data import Data, prepare_data, release_train_images

# When input_path is "auto", an epoch runs the sparse first layer only where it measured
# faster than BLAS on the dense one (2 threads, this project's AMD EPYC Zen 3 machines, AVX2):
# mostly-zero inputs (MNIST: 19% nonzero, Fashion-MNIST: 50%) and a narrow first layer. Up to
# SPARSE_ANY_BATCH_WIDTH units at every batch size (784-100-10: batch 64 220-250k vs 130-190k
# samples/s dense, 128 200-255k vs 145-220k, 256 205-380k vs 210-250k, 600 230-290k vs
# 170-260k: each weight row of 400 bytes stays in L2, and the sparse kernels do a fifth of the
# multiply-adds); wider, up to SPARSE_MAX_WIDTH, only for small batches (784-256-10 at batch
# 128: 97-106k sparse vs 114-131k dense), where BLAS has too few rows to reuse a weight row.
SPARSE_MAX_DENSITY = 0.6
SPARSE_MAX_BATCH = 64
SPARSE_MAX_WIDTH = 256
SPARSE_ANY_BATCH_WIDTH = 128


def sparse_pays(batch, width):
    """Whether the sparse first layer measured faster for this batch size and first-layer width
    (on inputs sparse enough: SPARSE_MAX_DENSITY)."""
    return width <= SPARSE_ANY_BATCH_WIDTH or (width <= SPARSE_MAX_WIDTH
                                               and batch <= SPARSE_MAX_BATCH)


def loop_hyper(cfg, act, sparse, threads, image_width=None):
    """The compiled loop's :class:`~fastmlp.loop.buffers.Hyper` for config ``cfg`` and activation
    ``act``, with the first layer ``sparse`` or dense, on ``threads`` threads; ``image_width``
    (pixels per image row) is needed when ``cfg.augment`` moves the images."""
    opt = OPTIMIZERS[cfg.optimizer]
    aug = parse_augment(cfg.augment)
    if image_width is None:
        if aug.shift or aug.resamples:
            raise ValueError(f"augment {cfg.augment!r} needs image_width (pixels per row)")
        image_width = 1
    kinds = Hyper.__annotations__  # each hyperparameter as the loop's type (float, bool)
    return Hyper(
        **activation_fields(act),
        dropout_input=float(cfg.dropout_input), dropout=float(cfg.dropout),
        weight_decay=float(cfg.weight_decay),
        optimizer=opt.code, **{h: kinds[h](getattr(cfg, h)) for h in HYPERPARAMETERS},
        seed=int(cfg.seed), sparse=bool(sparse),
        fused=bool(opt.fuses and cfg.weight_decay == 0),  # see loop/steps.py's docstring
        threads=int(threads), shift_max=aug.shift, image_width=int(image_width),
        rotate_max=float(np.deg2rad(aug.rotate)), elastic_max=float(aug.elastic),
        label_smoothing=float(cfg.label_smoothing), max_norm=float(cfg.max_norm))


def _input_csr(cfg, train_x, tr_arrays):
    """The training inputs as CSR if the sparse first layer applies and pays in some epoch (see
    SPARSE_MAX_*), else ``loop.calls.NO_CSR``. Sparse needs zero pixels to stay zero."""
    idx, _, shift = tr_arrays
    if cfg.input_path == "dense" or train_x.dtype != np.uint8:  # float features: dense only
        return NO_CSR
    if parse_augment(cfg.augment).resamples:  # sampled bilinearly over every input (config.py
        return NO_CSR                           # refuses --input-path sparse with it)
    smallest = batch_size_for_epoch(0, cfg.batch_size, cfg.batch_ramp)
    if cfg.input_path == "auto" and not sparse_pays(smallest, cfg.hidden[0]):
        return NO_CSR
    if idx.size > kernels.MAX_SPARSE_INPUTS:
        if cfg.input_path == "sparse":
            raise ConfigError(f"--input-path sparse reads at most {kernels.MAX_SPARSE_INPUTS:,} "
                              f"inputs per image, these images have {idx.size:,}; use --crop "
                              "or --input-path auto or dense")
        return NO_CSR
    if np.any(shift != 0):
        if cfg.input_path == "sparse":
            raise ConfigError("--input-path sparse needs zero pixels to stay zero; "
                              "it does not work with --normalize standardize")
        return NO_CSR
    if parse_augment(cfg.augment).shift and not _shift_stays_sparse(train_x, idx):
        if cfg.input_path == "sparse":
            raise ConfigError("--input-path sparse cannot shift these images: the crop leaves "
                              "out pixels that are nonzero in some training image, and a shift "
                              "would move them in; use --auto-crop, no crop, or --input-path "
                              "auto or dense")
        return NO_CSR
    csr = kernels.csr_inputs(train_x, idx)
    density = csr[0][-1] / max(1, train_x.shape[0] * idx.size)
    if cfg.input_path == "auto" and density > SPARSE_MAX_DENSITY:
        return NO_CSR
    return csr


def _shift_stays_sparse(train_x, idx):
    """Whether the sparse path can shift these images: its CSR holds only the kept pixels, so
    a shift there cannot bring in a pixel from outside them (the dense gather reads the whole
    image); that is the same only if no pixel left out is ever nonzero (no crop, auto-crop).
    The moved entries must also stay ascending: the kept pixels in increasing order."""
    if np.any(np.diff(idx) <= 0):
        return False
    outside = np.ones(train_x.shape[1], dtype=bool)
    outside[idx] = False
    return not train_x[:, outside].any()


def input_plan(cfg, act, train_x, tr_arrays, threads, image_width=None):
    """How the first layer reads its inputs: ``(csr, hyper_for)``, the CSR of ``train_x`` (or
    ``NO_CSR``) and ``hyper_for(batch) -> Hyper`` for an epoch's batch size, sparse or
    dense as SPARSE_MAX_* decide (``image_width``: pixels per image row, which ``--augment
    shift`` needs)."""
    csr = _input_csr(cfg, train_x, tr_arrays)
    hp_dense = loop_hyper(cfg, act, sparse=False, threads=threads, image_width=image_width)
    hp_sparse = loop_hyper(cfg, act, sparse=True, threads=threads, image_width=image_width)

    def hyper_for(batch):
        if csr is NO_CSR:
            return hp_dense
        if cfg.input_path == "sparse" or sparse_pays(batch, cfg.hidden[0]):
            return hp_sparse
        return hp_dense

    return csr, hyper_for


@dataclass
class _Plan:
    """What a run fixes before its first step (see :func:`make_plan`): the data, the network and
    its buffers, how the first layer reads its inputs, and the compile time it took."""

    cfg: TrainConfig
    splits: object
    act: object                    # the hidden activation (choices.activations.Activation)
    model: MLP
    ws: object                     # loop.buffers.Workspace, sized for the largest batch
    train_x: np.ndarray            # (N, P) uint8 images or (N, D) float32 features; train_y
                                   # (N,) int64
    train_y: np.ndarray
    tr_arrays: tuple               # the input transform as (pixel_index, scale, shift)
    csr: tuple                     # the training inputs as CSR, or NO_CSR
    hyper_for: Callable            # batch size -> Hyper (input_plan)
    pixel_map: Optional[np.ndarray]  # pixel_map_arg: None unless --augment
    order: np.ndarray              # the epoch's sample order (N,), reshuffled in place
    lrs: np.ndarray                # the epoch's learning rate per step
    best_params: Optional[np.ndarray]  # the best weights so far, when early stopping
    threads: int
    compile_seconds: float

    def evaluate(self, x, y):
        loss, correct = evaluate(self.model, x, y, batch_size=self.ws.x.shape[0],
                                 workspace=self.ws)
        return loss, correct / max(1, len(x))


def make_plan(cfg, data, release):
    """Threads, data, network, buffers and input plan of a run; compiles (or loads from
    Numba's cache) the loop before the clock for training starts. ``release``: the dense
    training images may be freed when no epoch reads them (see ``run.train``)."""
    threads = set_threads(cfg.threads)
    caller_data, data, release = _run_data(cfg, data, release)
    sp, transform = data.splits, data.transform
    width = _image_width(cfg, transform)
    act = get_activation(cfg.activation)
    sizes = (transform.n_inputs, *cfg.hidden, data.n_classes)
    train_x = np.ascontiguousarray(sp.train_x.reshape(len(sp.train_x), -1))
    train_y = np.ascontiguousarray(sp.train_y, dtype=np.int64)
    N = len(train_x)
    batches = [min(batch_size_for_epoch(e, cfg.batch_size, cfg.batch_ramp), N)
               for e in range(cfg.epochs)]  # each epoch's batch size, as run._epoch takes it
    max_batch = max(batches)
    check_memory(sizes, max_batch)
    # On a cold cache the helper that compiles half of the loop (loop/warmup.py) starts now,
    # so that its start-up (imports, a second) overlaps the network and the CSR being built
    hp0 = loop_hyper(cfg, act, False, threads, width)
    features = () if train_x.dtype == np.uint8 else (train_x.dtype,)  # float32 rows
    helper = warmup.start_for(moves_images(hp0), *features)
    try:
        model, ws = _network(cfg, act, sizes, transform, max_batch, threads)
        tr_arrays = transform_arrays(model, train_x.shape[1])
        min_batch = batch_size_for_epoch(0, cfg.batch_size, cfg.batch_ramp)
        lrs = np.zeros(steps_in_epoch(N, min_batch), dtype=np.float64)
        compile_seconds, csr, hyper_for = _first_layer(cfg, act, train_x, tr_arrays, threads,
                                                       width)
        pixel_map = pixel_map_arg(hp0, tr_arrays[0], train_x.shape[1])
        if release and all(hyper_for(b).sparse for b in batches):
            train_x = np.empty((0, train_x.shape[1]), np.uint8)  # the loop's type, no pixels
            sp = release_train_images(caller_data, data)
        # Compile (or load from Numba's cache) everything, on empty inputs, before the clock
        # for training starts. Argument types do not depend on values: dense serves both.
        t0 = time.perf_counter()
        warmup.compile_loop(model, ws, hp0, train_x[:0], train_y, tr_arrays, lrs, helper)
        compile_seconds += time.perf_counter() - t0
        if act.user is not None:  # a user's pair compiles when the activation is made
            compile_seconds += act.user.take_compile_seconds()
    except BaseException:
        warmup.stop(helper)  # compile_loop stops it on every path through it
        raise
    return _Plan(cfg, sp, act, model, ws, train_x, train_y, tr_arrays, csr, hyper_for,
                 pixel_map, np.arange(N, dtype=np.int64), lrs,
                 np.empty_like(model.params) if cfg.early_stop else None, threads,
                 compile_seconds)


def _run_data(cfg, data, release):
    """``(caller's data, its copy fitted to cfg, release)``: a run's own data when ``data`` is
    None (nothing else reads its training images, so they may always be freed), else the
    caller's ``Data``, checked."""
    if data is None:
        data, release = prepare_data(cfg), True
    if not isinstance(data, Data):
        raise ConfigError(f"data must be a fastmlp.Data (Data.from_arrays(...) or "
                          f"prepare_data(config)), got {type(data).__name__}")
    fitted = data.fitted(cfg)
    if fitted.released or len(fitted.splits.train_x) != len(fitted.splits.train_y):
        raise ConfigError("this Data's training images were freed by the run it was given to "
                          "with release_train_images=True; prepare the data again for "
                          "another run")
    return data, fitted, release


def _image_width(cfg, transform):
    """Pixels per image row, after checking that ``--augment``'s shift fits the images."""
    height, width = transform.image_shape
    shift_max = parse_augment(cfg.augment).shift
    if shift_max >= min(height, width):
        fix = (f"use a K below {min(height, width)}" if min(height, width) > 1 else
               "images one pixel across cannot be shifted: drop the shift from --augment")
        raise ConfigError(f"--augment {cfg.augment}: a shift of {shift_max} pixels would move "
                          f"a {height}x{width} image off itself; {fix}")
    return width


def _first_layer(cfg, act, train_x, tr_arrays, threads, width):
    """``(compile seconds, csr, hyper_for)``: how the first layer reads its inputs
    (:func:`input_plan`), decided before the loop compiles: then, when every epoch reads the
    sparse copy and the run may let them go, the dense training images are freed before the
    compiler's memory comes on top (MNIST: 47 MB off a cold start's peak). The CSR kernels
    compile (or load) first, on one input, so that images with more inputs than the sparse
    path takes still go dense; their compile time is counted."""
    t0 = time.perf_counter()
    if train_x.dtype == np.uint8:  # float features never go sparse
        kernels.csr_inputs(train_x[:1], tr_arrays[0][:1])
    compile_seconds = time.perf_counter() - t0
    csr, hyper_for = input_plan(cfg, act, train_x, tr_arrays, threads, image_width=width)
    return compile_seconds, csr, hyper_for


def _network(cfg, act, sizes, transform, max_batch, threads):
    """The run's MLP and its workspace for batches of up to ``max_batch`` rows (and, with
    --max-norm, its buffers for ``threads`` threads)."""
    try:
        model = MLP.create(sizes, act, seed=cfg.seed, init=cfg.init, transform=transform)
        return model, make_workspace(model.sizes, max_batch, model.params.size,
                                     norm_threads=threads if cfg.max_norm > 0 else 0)
    except MemoryError:
        raise ConfigError(f"out of memory allocating the network {'-'.join(map(str, sizes))} "
                          f"at batch {max_batch} (about "
                          f"{training_memory_bytes(sizes, max_batch) / 2**30:,.1f} GB asked); "
                          "use smaller --hidden sizes or --batch-size") from None
