"""A run: ``train(config)`` walks the epochs and reports.

The run is planned first (plan.py: data, network, buffers, how the first layer reads its
inputs, the compiled loop loaded or compiled); then this module walks the epochs (batch ramp,
reshuffle, learning-rate schedule: :func:`_epoch`), each in chunks of steps inside the compiled
loop (loop/), evaluates, keeps the best weights for early stopping, writes checkpoints
(checkpoint.py, with the run's :class:`~fastmlp.training.checkpoint.RunState`), turns Ctrl-C and
a diverging loss into clean stops and sums the run up (:func:`_finish`).
Nothing here prints: progress reaches the caller through the ``on_epoch`` / ``on_progress``
callbacks (the command line in ``train.py`` prints them).
"""

import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

from ..choices.schedules import (batch_size_for_epoch, learning_rate, momentum_for_epoch,
                                 steps_in_epoch)
from ..config import TrainConfig
from ..errors import ConfigError, DivergenceError, OutputError
from ..loop.calls import train_steps
from ..memory import peak_rss_mb
from ..model import MLP
from ..threads import one_blas_thread
from . import checkpoint
from .checkpoint import RunState
from .plan import make_plan
from .run_data import Data

# Samples per call into compiled code: small enough for a lively progress bar and a prompt
# Ctrl-C, large enough that the call's overhead (tens of microseconds) is noise.
CHUNK_SAMPLES = 8192


@dataclass
class TrainResult:
    """The trained model (best weights when early stopping), the per-epoch history, the final
    summary (see ``summary`` keys in the README) and how the run ended."""

    model: MLP
    history: List[dict]
    summary: dict
    stopped: str = "completed"     # completed, early_stop, interrupted
    checkpoint_path: Optional[str] = None
    signal: Optional[int] = None   # the signal that interrupted the run (SIGINT, SIGTERM, ...)


# Signals that stop a run the way Ctrl-C does (finish the chunk, save, exit): a job scheduler's
# SIGTERM and a closed terminal's SIGHUP must not lose the run either.
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, n))


class _Interrupt:
    """Turns STOP_SIGNALS into a flag checked between chunks of steps (main thread only)."""

    def __init__(self, should_stop):
        self.flag = False
        self.signum = None
        self.should_stop = should_stop
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.flag and self.signum is not None:  # a second signal: the user really wants out
            raise KeyboardInterrupt
        self.flag = True
        self.signum = signum

    def requested(self, epoch, step):
        if not self.flag and self.should_stop is not None and self.should_stop(epoch, step):
            self.flag = True
        return self.flag

    def __exit__(self, *exc):
        for sig, previous in self.previous.items():
            signal.signal(sig, previous)
        return False


class _Checkpoints:
    """Writes a run's checkpoints and remembers the epochs it saved, so messages can say which
    file holds the last good weights."""

    def __init__(self, plan, save, resume):
        self.plan, self.save, self.resume = plan, save, resume
        self.saved = []  # epochs of the checkpoints this run has written to `save`

    def write(self, path, state):
        p = self.plan
        try:
            checkpoint.save_run(path, p.cfg, p.model, p.act, p.ws, p.tr_arrays, p.best_params,
                                state)
        except OSError as exc:
            kept = (f"it still holds this run's epoch {self.saved[-1]}"
                    if self.saved and path == self.save
                    else "it is left as it was" if os.path.exists(path) else "nothing written")
            raise OutputError(f"could not write the checkpoint {path} "
                              f"({exc.strerror or exc}); {kept}") from None
        self.saved.append(state.epoch)

    def last_good(self):
        """The end of a divergence message: which checkpoint holds the last good weights, only
        if one really does."""
        save, resume = self.save, self.resume
        if save and self.saved:
            return f"; the last good checkpoint is {save} (epoch {self.saved[-1]})"
        if save and resume and os.path.exists(save) and os.path.samefile(save, resume):
            return f"; {save} still holds the checkpoint this run resumed from"
        return "; no checkpoint was written" if save else ""


def train(cfg: TrainConfig, *, data: Optional[Data] = None, save: Optional[str] = None,
          resume: Optional[str] = None, on_epoch: Optional[Callable] = None,
          on_progress: Optional[Callable] = None,
          should_stop: Optional[Callable] = None,
          interrupt_save: Optional[str] = None, overwrite: bool = False,
          release_train_images: bool = False) -> TrainResult:
    """Train an MLP as ``cfg`` says and return a :class:`TrainResult`.

    data: prepared data (default: ``prepare_data(cfg)``). save: checkpoint path, written
    atomically after every epoch and on interruption. resume: a checkpoint to continue from
    (same network; the run then ends with the same weights as an uninterrupted one).
    on_epoch(record): after each epoch. on_progress(epoch, samples_done, samples_total): within
    an epoch. should_stop(epoch, step) -> bool: checked between chunks, like Ctrl-C.
    interrupt_save: where an interrupted run saves its checkpoint when ``save`` is not given
    (by default it then saves nothing; the command line passes a path). overwrite: let ``save``
    replace an existing file that is not a fastmlp checkpoint (refused otherwise).
    release_train_images: when every epoch reads the sparse copy of the training images (the
    default network on MNIST does), free ``data``'s dense ones before the loop compiles (47 MB
    of MNIST, for a machine with little memory); ``data`` then cannot train another run
    (``data.released``), even if this one fails after it started (a ``resume`` checkpoint that
    does not fit, say). A run that prepares its own data (``data=None``) always may.
    """
    t_start = time.perf_counter()
    if not isinstance(cfg, TrainConfig):
        raise ConfigError(f"train needs a TrainConfig, got {type(cfg).__name__}")
    if save:
        checkpoint.check_target(save, overwrite=overwrite)
    plan = make_plan(cfg, data, release_train_images)
    state = (checkpoint.load_run(resume, plan.model, plan.ws, plan.best_params, cfg.epochs)
             if resume else RunState())
    checkpoints = _Checkpoints(plan, save, resume)
    stopped = "completed"
    # BLAS at one thread for the whole run, not chunk by chunk: each time its thread count goes
    # back up, OpenBLAS wakes workers that spin for milliseconds on the cores the training
    # threads need (2-thread steps measured 330k samples/s held at one, 175-260k toggled)
    with _Interrupt(should_stop) as interrupt, one_blas_thread():
        while state.epoch < cfg.epochs:
            record = _epoch(plan, state, interrupt, on_progress, checkpoints)
            if record is None:
                stopped = "interrupted"
                break
            if save:
                checkpoints.write(save, state)
            if on_epoch is not None:
                on_epoch(record)
            if cfg.early_stop and state.since_best >= cfg.early_stop:
                stopped = "early_stop"
                break
    return _finish(plan, state, stopped, checkpoints, interrupt_save,
                   interrupt.signum if stopped == "interrupted" else None, t_start)


def _epoch(plan, state, interrupt, on_progress, checkpoints):
    """Run epoch ``state.epoch`` from step ``state.step`` on, in chunks of steps; returns the
    epoch's record (appended to ``state.history``), or None when interrupted."""
    cfg, model, N = plan.cfg, plan.model, len(plan.train_y)
    e = state.epoch
    B = min(batch_size_for_epoch(e, cfg.batch_size, cfg.batch_ramp), N)
    steps = steps_in_epoch(N, B)
    plan.order[:] = np.arange(N)
    np.random.default_rng([cfg.seed, e]).shuffle(plan.order)
    for s in range(steps):
        plan.lrs[s] = learning_rate(cfg, e, s, steps, B)
    chunk = max(1, CHUNK_SAMPLES // B)
    hp = plan.hyper_for(B)._replace(momentum=float(momentum_for_epoch(cfg, e)))
    t_epoch = time.perf_counter()
    while state.step < steps:
        if interrupt.requested(e, state.step):
            break
        s0 = state.step
        n = min(chunk, steps - s0)
        loss, correct, samples, bad = train_steps(
            model, plan.ws, hp, plan.train_x, plan.train_y, plan.order, plan.tr_arrays, B, s0,
            n, plan.lrs, e, state.t, plan.csr, plan.pixel_map)
        state.loss_sum += loss
        state.correct += correct
        state.samples += samples
        done = n if bad < 0 else bad - s0
        state.t += done
        state.step += done
        if bad >= 0:
            last = (state.history[-1]["loss"] if state.history and state.samples == 0 else
                    state.loss_sum / max(1, state.samples))
            raise DivergenceError(
                f"training diverged: the loss became NaN or infinite at epoch {e + 1}, "
                f"step {bad + 1} (learning rate {plan.lrs[bad]:.4g}); the last finite mean "
                f"loss was {last:.4g}. Lower the learning rate (--lr) or use a "
                "schedule with warm-up" + checkpoints.last_good())
        if on_progress is not None:
            on_progress(e, min(state.step * B, N), N)
    state.seconds += time.perf_counter() - t_epoch
    if state.step < steps:
        return None
    val_loss, val_acc = plan.evaluate(plan.splits.val_x, plan.splits.val_y)
    record = dict(epoch=e + 1, loss=state.loss_sum / max(1, state.samples),
                  train_accuracy=state.correct / max(1, state.samples),
                  val_loss=val_loss, val_accuracy=val_acc, seconds=state.seconds,
                  samples_per_second=state.samples / max(1e-9, state.seconds),
                  batch_size=B, lr=float(plan.lrs[0]), weight_rms=model.weight_rms(),
                  input_path="sparse" if hp.sparse else "dense")
    state.history.append(record)
    state.epoch, state.step = e + 1, 0
    state.loss_sum, state.correct, state.samples, state.seconds = 0.0, 0, 0, 0.0
    if cfg.early_stop:
        if val_acc > state.best_val:
            state.best_val, state.best_epoch, state.since_best = val_acc, e + 1, 0
            plan.best_params[:] = model.params
        else:
            state.since_best += 1
    return record


def _finish(plan, state, stopped, checkpoints, interrupt_save, signum, t_start):
    """The end of a run: an interrupted run's checkpoint, the best weights back when early
    stopping, the final evaluation and summary."""
    cfg, save = plan.cfg, checkpoints.save
    checkpoint_path = None
    if stopped == "interrupted" and (save or interrupt_save):
        checkpoint_path = save or interrupt_save
        try:
            if not save:
                checkpoint.check_target(checkpoint_path, "checkpoint", overwrite=False)
            checkpoints.write(checkpoint_path, state)
        except (ConfigError, OutputError) as exc:
            raise OutputError(f"interrupted in epoch {state.epoch + 1}, but no checkpoint "
                              f"was saved: tried {os.path.abspath(checkpoint_path)}: {exc}; "
                              "nothing of this run is kept") from None
    elif save:
        checkpoint_path = save
    if cfg.early_stop and state.best_epoch > 0 and stopped != "interrupted":
        plan.model.params[:] = plan.best_params

    summary = _summary(plan, state, time.perf_counter() - t_start)
    summary["stopped"] = stopped
    paths = sorted({h["input_path"] for h in state.history if "input_path" in h}, reverse=True)
    summary["input_path"] = "+".join(paths) or "dense"
    return TrainResult(plan.model, state.history, summary, stopped, checkpoint_path, signum)


def _summary(plan, state, wall):
    cfg, model, sp, history = plan.cfg, plan.model, plan.splits, state.history
    val_loss, val_acc = plan.evaluate(sp.val_x, sp.val_y)
    _, test_acc = plan.evaluate(sp.test_x, sp.test_y)
    _, full_acc = plan.evaluate(sp.test_full_x, sp.test_full_y)
    rates = [h["samples_per_second"] for h in history[1:]] or \
            [h["samples_per_second"] for h in history]
    return dict(
        val_accuracy=val_acc, val_loss=val_loss, test_accuracy=test_acc,
        test_accuracy_full=full_acc, epochs=len(history),
        best_epoch=state.best_epoch or len(history),
        train_seconds=float(sum(h["seconds"] for h in history)),
        wall_seconds=wall,
        samples_per_second=float(np.median(rates)) if rates else 0.0,
        compile_seconds=plan.compile_seconds, peak_rss_mb=peak_rss_mb(),
        n_inputs=int(model.sizes[0]), hidden=list(cfg.hidden), activation=str(model.activation),
        n_classes=int(model.sizes[-1]), n_train=len(plan.train_y), n_val=len(sp.val_x),
        n_test=len(sp.test_x), n_test_full=len(sp.test_full_x), split=sp.mode,
        seed=cfg.seed, threads=plan.threads, config=cfg.to_dict(), history=history)
