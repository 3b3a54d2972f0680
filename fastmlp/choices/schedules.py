"""Learning-rate schedules, the momentum ramp and the batch-size ramp, as plain functions of the
epoch and step."""

import math

from ..errors import ConfigError

SCHEDULES = ("constant", "step", "cosine")


def batch_size_for_epoch(epoch, batch_size, ramp_start=None):
    """Batch size of 0-based ``epoch``: ``ramp_start`` doubled each epoch until ``batch_size``
    (then constant); ``batch_size`` throughout without a ramp."""
    if not ramp_start:
        return batch_size
    return min(batch_size, ramp_start * (2 ** min(epoch, 62)))


def steps_in_epoch(n_samples, batch):
    return -(-n_samples // batch)


def learning_rate(cfg, epoch, step, steps_per_epoch, batch):
    """Learning rate at ``step`` of 0-based ``epoch`` for a :class:`~fastmlp.config.TrainConfig`.

    ``progress`` is the fraction of training done, in epochs (fractional within an epoch), so
    schedules are smooth across the batch ramp's changing number of steps per epoch.
    """
    progress = epoch + step / max(1, steps_per_epoch)
    lr = cfg.lr
    if cfg.lr_scale_batch:
        lr *= batch / cfg.batch_size
    if cfg.schedule == "step":
        lr *= cfg.lr_gamma ** int(progress // cfg.lr_step)
    elif cfg.schedule == "cosine":
        span = max(cfg.epochs - cfg.warmup, 1e-9)
        t = min(max(progress - cfg.warmup, 0.0) / span, 1.0)
        lr *= cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    elif cfg.schedule != "constant":
        raise ConfigError(f"unknown schedule {cfg.schedule!r}; choose {', '.join(SCHEDULES)}")
    if cfg.warmup > 0 and progress < cfg.warmup:
        lr *= (progress + 1 / max(1, steps_per_epoch)) / cfg.warmup
    return lr


def momentum_for_epoch(cfg, epoch):
    """Momentum of 0-based ``epoch``: ``cfg.momentum`` throughout, or with
    ``cfg.momentum_final`` set, a linear ramp from ``cfg.momentum`` in the first epoch to
    ``cfg.momentum_final`` in the last (after Srivastava et al. 2014, who raise it over
    training). Each epoch's steps use its value."""
    if cfg.momentum_final is None or cfg.epochs <= 1:
        return cfg.momentum if cfg.momentum_final is None else cfg.momentum_final
    t = min(max(epoch / (cfg.epochs - 1), 0.0), 1.0)
    return cfg.momentum + (cfg.momentum_final - cfg.momentum) * t
