"""What the compiled loop (engine.py) runs with for a config: its ``Hyper`` settings, and the
plan of how its first layer reads the inputs, sparse (nonzero pixels only, from a CSR of the
training images) or dense, decided per epoch's batch size. Both paths give the same results
(except input dropout, which draws its masks per nonzero pixel on the sparse path and per input
on the dense one); the plan picks the one that measured faster, and the dense one where only it
is right (a rotation; a shift with a crop that leaves out pixels nonzero in some image).

The trainer calls :func:`input_plan` once per run; benchmarks call it too, so they time what
training runs.
"""

import numpy as np

from . import kernels
from .augment import parse_augment
from .engine import NO_CSR
from .errors import ConfigError
from .optimizers import HYPERPARAMETERS, OPTIMIZERS
from .schedules import batch_size_for_epoch
from .workspace import Hyper, activation_fields

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
    """The engine's :class:`~fastmlp.workspace.Hyper` for config ``cfg`` and activation
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
        fused=bool(opt.fuses and cfg.weight_decay == 0),  # see engine.py's docstring
        threads=int(threads), shift_max=aug.shift, image_width=int(image_width),
        rotate_max=float(np.deg2rad(aug.rotate)), elastic_max=float(aug.elastic))


def _input_csr(cfg, train_x, tr_arrays):
    """The training inputs as CSR if the sparse first layer applies and pays in some epoch (see
    SPARSE_MAX_*), else ``engine.NO_CSR``. Sparse needs zero pixels to stay zero."""
    idx, _, shift = tr_arrays
    if cfg.input_path == "dense":
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
    ``engine.NO_CSR``) and ``hyper_for(batch) -> Hyper`` for an epoch's batch size, sparse or
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
