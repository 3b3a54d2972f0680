"""The training loop's Python side: ``train(config)`` and what it reports.

The compiled inner loop lives in ``engine.py``; this module prepares data and buffers, walks
the epochs (batch ramp, reshuffle, learning-rate schedule), evaluates, keeps the best weights for
early stopping, writes checkpoints, and turns Ctrl-C and a diverging loss into clean stops.
Nothing here prints: progress reaches the caller through the ``on_epoch`` / ``on_progress``
callbacks (the command line in ``train.py`` prints them).
"""

import os
import resource
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

from . import checkpoint, engine, kernels
from .activations import get_activation
from .augment import parse_augment
from .checkpoint import load_model  # noqa: F401  (re-exported: the API has it here)
from .config import TrainConfig
from .errors import CheckpointError, ConfigError, DivergenceError, OutputError
from .input_plan import (  # noqa: F401  (re-exported: benchmarks and tests call them here)
    SPARSE_ANY_BATCH_WIDTH,
    SPARSE_MAX_BATCH,
    SPARSE_MAX_DENSITY,
    SPARSE_MAX_WIDTH,
    _input_csr,
    input_plan,
    sparse_pays,
)
from .input_plan import loop_hyper as _hyper
from .model import MLP, check_memory
from .outputs import write_history_csv, write_metrics_json  # noqa: F401  (re-exported)
from .schedules import batch_size_for_epoch, learning_rate, steps_in_epoch
from .threads import one_blas_thread, set_threads

# Samples per call into compiled code: small enough for a lively progress bar and a prompt
# Ctrl-C, large enough that the call's overhead (tens of microseconds) is noise.
CHUNK_SAMPLES = 8192


def peak_rss_mb():
    """Peak resident memory of this process so far, in MB: VmHWM on Linux (ru_maxrss there
    carries a parent's peak across fork and exec), ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class Data:
    """What training reads: the splits (uint8) and the input transform fitted on train.

    ``splits`` and ``transform`` may be None (as :meth:`from_arrays` leaves them): ``train``
    then splits and fits them as its config says."""

    dataset: object
    splits: object = None
    transform: object = None

    @property
    def n_classes(self):
        return int(self.dataset.n_classes)

    @classmethod
    def from_arrays(cls, train_x, train_y, test_x, test_y, val_x=None, val_y=None,
                    name="arrays"):
        """Data already in memory: uint8 images ``(N, H, W)`` of any size and integer labels
        ``0..K-1`` (K, 2 to 256, from the training labels). Without ``val_x``/``val_y`` the
        test set is halved into validation and test as ``config.split`` says; with them, the
        test arrays are the test set whole."""
        from .data import Splits, dataset_from_arrays

        ds = dataset_from_arrays(train_x, train_y, test_x, test_y, val_x, val_y, name=name)
        if ds.val_images is None:
            return cls(ds)
        sp = Splits(ds.train_images, ds.train_labels, ds.val_images, ds.val_labels,
                    ds.test_images, ds.test_labels, ds.test_images, ds.test_labels,
                    mode="given")
        return cls(ds, sp)

    def fitted(self, cfg):
        """This data with its splits and input transform made as ``cfg`` says, where missing."""
        from .data import split
        from .transforms import make_transform

        sp = self.splits or split(self.dataset, mode=cfg.split, seed=cfg.seed)
        tr = self.transform or make_transform(sp.train_x, crop=cfg.crop, center=cfg.center,
                                              auto_crop=cfg.auto_crop, normalize=cfg.normalize)
        return Data(self.dataset, sp, tr)


def prepare_data(cfg: TrainConfig) -> Data:
    """Load the data set named by ``cfg``, split it and fit the input transform."""
    from .data import load_dataset

    ds = load_dataset(cfg.dataset, data_dir=cfg.data_dir, download=cfg.download)
    return Data(ds).fitted(cfg)


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


def _check_resume(cfg, model, meta, path):
    want = {"sizes": list(model.sizes), "activation": str(model.activation)}
    have = {"sizes": meta.get("sizes"), "activation": meta.get("activation")}
    for key in want:
        if want[key] != have[key]:
            raise CheckpointError(
                f"checkpoint {path} is for a different network ({key} {have[key]}, this run "
                f"asks for {want[key]}); resume with the original settings or train anew")


def train(cfg: TrainConfig, *, data: Optional[Data] = None, save: Optional[str] = None,
          resume: Optional[str] = None, on_epoch: Optional[Callable] = None,
          on_progress: Optional[Callable] = None,
          should_stop: Optional[Callable] = None,
          interrupt_save: Optional[str] = None, overwrite: bool = False) -> TrainResult:
    """Train an MLP as ``cfg`` says and return a :class:`TrainResult`.

    data: prepared data (default: ``prepare_data(cfg)``). save: checkpoint path, written
    atomically after every epoch and on interruption. resume: a checkpoint to continue from
    (same network; the run then ends with the same weights as an uninterrupted one).
    on_epoch(record): after each epoch. on_progress(epoch, samples_done, samples_total): within
    an epoch. should_stop(epoch, step) -> bool: checked between chunks, like Ctrl-C.
    interrupt_save: where an interrupted run saves its checkpoint when ``save`` is not given
    (by default it then saves nothing; the command line passes a path). overwrite: let ``save``
    replace an existing file that is not a fastmlp checkpoint (refused otherwise).
    """
    t_start = time.perf_counter()
    if not isinstance(cfg, TrainConfig):
        raise ConfigError(f"train needs a TrainConfig, got {type(cfg).__name__}")
    if save:
        checkpoint.check_target(save, overwrite=overwrite)
    threads = set_threads(cfg.threads)
    if data is None:
        data = prepare_data(cfg)
    if not isinstance(data, Data):
        raise ConfigError(f"data must be a fastmlp.Data (Data.from_arrays(...) or "
                          f"prepare_data(config)), got {type(data).__name__}")
    data = data.fitted(cfg)
    sp, transform = data.splits, data.transform
    height, width = transform.image_shape
    shift_max = parse_augment(cfg.augment)
    if shift_max >= min(height, width):
        raise ConfigError(f"--augment {cfg.augment}: a shift of {shift_max} pixels would move "
                          f"a {height}x{width} image off itself; use a K below "
                          f"{min(height, width)}")
    act = get_activation(cfg.activation)
    sizes = (transform.n_inputs, *cfg.hidden, data.n_classes)
    train_x = np.ascontiguousarray(sp.train_x.reshape(len(sp.train_x), -1))
    train_y = np.ascontiguousarray(sp.train_y, dtype=np.int64)
    N = len(train_x)
    max_batch = max(batch_size_for_epoch(e, cfg.batch_size, cfg.batch_ramp)
                    for e in range(cfg.epochs))
    max_batch = min(max_batch, N)
    check_memory(sizes, max_batch)
    try:
        model = MLP.create(sizes, act, seed=cfg.seed, init=cfg.init, transform=transform)
        ws = engine.make_workspace(model.sizes, max_batch, model.params.size)
    except MemoryError:
        from .model import training_memory_bytes

        raise ConfigError(f"out of memory allocating the network {'-'.join(map(str, sizes))} "
                          f"at batch {max_batch} (about "
                          f"{training_memory_bytes(sizes, max_batch) / 2**30:,.1f} GB asked); "
                          "use smaller --hidden sizes or --batch-size") from None
    tr_arrays = engine.transform_arrays(model, train_x.shape[1])
    order = np.arange(N, dtype=np.int64)
    min_batch = batch_size_for_epoch(0, cfg.batch_size, cfg.batch_ramp)
    lrs = np.zeros(steps_in_epoch(N, min_batch), dtype=np.float64)

    # Compile (or load from Numba's cache) everything, on empty inputs, before the clock for
    # training starts. Argument types do not depend on values, so dense warm-up serves both.
    t0 = time.perf_counter()
    kernels.csr_inputs(train_x[:1], tr_arrays[0])
    engine.compile_loop(model, ws, _hyper(cfg, act, False, threads), train_x, train_y,
                        tr_arrays, lrs)
    compile_seconds = time.perf_counter() - t0

    csr, hyper_for = input_plan(cfg, act, train_x, tr_arrays, threads, image_width=width)
    pixel_map = (kernels.input_of_pixel(tr_arrays[0], train_x.shape[1]) if shift_max
                 else engine.NO_PIXEL_MAP)
    best_params = np.empty_like(model.params) if cfg.early_stop else None

    # run state (saved in checkpoints)
    state = dict(epoch=0, step=0, t=0, loss_sum=0.0, correct=0, samples=0, seconds=0.0,
                 best_val=-1.0, best_epoch=0, since_best=0, history=[])
    if resume:
        arrays, meta = checkpoint.load(resume)
        _check_resume(cfg, model, meta, resume)
        try:
            model.params[:] = arrays["params"]
            ws.opt1[:] = arrays["opt1"]
            ws.opt2[:] = arrays["opt2"]
            if best_params is not None:
                best_params[:] = arrays.get("best_params", model.params)
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {resume} is missing or has malformed arrays "
                                  f"({exc}); use another checkpoint") from None
        state.update(checkpoint.resumed_state(meta, state, resume, cfg.epochs))
    saved = []  # checkpoints this run has written

    def evaluate(x, y):
        loss, correct = engine.evaluate(model, x, y, batch_size=ws.x.shape[0], workspace=ws)
        return loss, correct / max(1, len(x))

    def save_checkpoint(path):
        arrays = dict(params=model.params, opt1=ws.opt1, opt2=ws.opt2,
                      pixel_index=tr_arrays[0], scale=tr_arrays[1], shift=tr_arrays[2])
        if best_params is not None:
            arrays["best_params"] = best_params
        meta = dict(config=cfg.to_dict(), sizes=list(model.sizes),
                    activation=str(model.activation), activation_builtin=act.builtin,
                    n_classes=int(model.sizes[-1]), transform=transform_meta(transform),
                    state=state)
        try:
            checkpoint.save(path, arrays, meta)
        except OSError as exc:
            kept = (f"it still holds this run's epoch {saved[-1]}" if saved and path == save
                    else "it is left as it was" if os.path.exists(path) else "nothing written")
            raise OutputError(f"could not write the checkpoint {path} "
                              f"({exc.strerror or exc}); {kept}") from None
        saved.append(state["epoch"])

    stopped = "completed"
    history = state["history"]
    # BLAS at one thread for the whole run, not chunk by chunk: each time its thread count goes
    # back up, OpenBLAS wakes workers that spin for milliseconds on the cores the training
    # threads need (2-thread steps measured 330k samples/s held at one, 175-260k toggled)
    with _Interrupt(should_stop) as interrupt, one_blas_thread():
        while state["epoch"] < cfg.epochs:
            e = state["epoch"]
            B = min(batch_size_for_epoch(e, cfg.batch_size, cfg.batch_ramp), N)
            steps = steps_in_epoch(N, B)
            order[:] = np.arange(N)
            np.random.default_rng([cfg.seed, e]).shuffle(order)
            for s in range(steps):
                lrs[s] = learning_rate(cfg, e, s, steps, B)
            chunk = max(1, CHUNK_SAMPLES // B)
            hp = hyper_for(B)
            t_epoch = time.perf_counter()
            while state["step"] < steps:
                if interrupt.requested(e, state["step"]):
                    break
                s0 = state["step"]
                n = min(chunk, steps - s0)
                loss, correct, samples, bad = engine.train_steps(
                    model, ws, hp, train_x, train_y, order, tr_arrays, B, s0, n, lrs, e,
                    state["t"], csr, pixel_map)
                state["loss_sum"] += loss
                state["correct"] += correct
                state["samples"] += samples
                done = n if bad < 0 else bad - s0
                state["t"] += done
                state["step"] += done
                if bad >= 0:
                    last = (history[-1]["loss"] if history and state["samples"] == 0 else
                            state["loss_sum"] / max(1, state["samples"]))
                    raise DivergenceError(
                        f"training diverged: the loss became NaN or infinite at epoch {e + 1}, "
                        f"step {bad + 1} (learning rate {lrs[bad]:.4g}); the last finite mean "
                        f"loss was {last:.4g}. Lower the learning rate (--lr) or use a "
                        "schedule with warm-up" + _last_good(save, saved, resume))
                if on_progress is not None:
                    on_progress(e, min(state["step"] * B, N), N)
            state["seconds"] += time.perf_counter() - t_epoch
            if state["step"] < steps:
                stopped = "interrupted"
                break
            val_loss, val_acc = evaluate(sp.val_x, sp.val_y)
            record = dict(epoch=e + 1, loss=state["loss_sum"] / max(1, state["samples"]),
                          train_accuracy=state["correct"] / max(1, state["samples"]),
                          val_loss=val_loss, val_accuracy=val_acc, seconds=state["seconds"],
                          samples_per_second=state["samples"] / max(1e-9, state["seconds"]),
                          batch_size=B, lr=float(lrs[0]), weight_rms=model.weight_rms(),
                          input_path="sparse" if hp.sparse else "dense")
            history.append(record)
            state.update(epoch=e + 1, step=0, loss_sum=0.0, correct=0, samples=0, seconds=0.0)
            if cfg.early_stop:
                if val_acc > state["best_val"]:
                    state.update(best_val=val_acc, best_epoch=e + 1, since_best=0)
                    best_params[:] = model.params
                else:
                    state["since_best"] += 1
            if save:
                save_checkpoint(save)
            if on_epoch is not None:
                on_epoch(record)
            if cfg.early_stop and state["since_best"] >= cfg.early_stop:
                stopped = "early_stop"
                break

    checkpoint_path = None
    if stopped == "interrupted" and (save or interrupt_save):
        checkpoint_path = save or interrupt_save
        try:
            if not save:
                checkpoint.check_target(checkpoint_path, "checkpoint", overwrite=False)
            save_checkpoint(checkpoint_path)
        except (ConfigError, OutputError) as exc:
            raise OutputError(f"interrupted in epoch {state['epoch'] + 1}, but no checkpoint "
                              f"was saved: tried {os.path.abspath(checkpoint_path)}: {exc}; "
                              "nothing of this run is kept") from None
    elif save:
        checkpoint_path = save
    if cfg.early_stop and state["best_epoch"] > 0 and stopped != "interrupted":
        model.params[:] = best_params

    summary = _summary(cfg, model, history, evaluate, sp, compile_seconds, threads, state,
                       time.perf_counter() - t_start)
    summary["stopped"] = stopped
    paths = sorted({h["input_path"] for h in history if "input_path" in h}, reverse=True)
    summary["input_path"] = "+".join(paths) or "dense"
    return TrainResult(model, history, summary, stopped, checkpoint_path,
                       interrupt.signum if stopped == "interrupted" else None)


def _last_good(save, saved, resume):
    """The end of a divergence message: which checkpoint holds the last good weights, only if
    one really does."""
    if save and saved:
        return f"; the last good checkpoint is {save} (epoch {saved[-1]})"
    if save and resume and os.path.exists(save) and os.path.samefile(save, resume):
        return f"; {save} still holds the checkpoint this run resumed from"
    return "; no checkpoint was written" if save else ""


def transform_meta(t):
    return dict(image_shape=list(t.image_shape),
                kept_shape=list(t.kept_shape) if t.kept_shape is not None else None,
                description=t.description)


def _summary(cfg, model, history, evaluate, sp, compile_seconds, threads, state, wall):
    val_loss, val_acc = evaluate(sp.val_x, sp.val_y)
    _, test_acc = evaluate(sp.test_x, sp.test_y)
    _, full_acc = evaluate(sp.test_full_x, sp.test_full_y)
    rates = [h["samples_per_second"] for h in history[1:]] or \
            [h["samples_per_second"] for h in history]
    return dict(
        val_accuracy=val_acc, val_loss=val_loss, test_accuracy=test_acc,
        test_accuracy_full=full_acc, epochs=len(history),
        best_epoch=state["best_epoch"] or len(history),
        train_seconds=float(sum(h["seconds"] for h in history)),
        wall_seconds=wall,
        samples_per_second=float(np.median(rates)) if rates else 0.0,
        compile_seconds=compile_seconds, peak_rss_mb=peak_rss_mb(),
        n_inputs=int(model.sizes[0]), hidden=list(cfg.hidden), activation=str(model.activation),
        n_classes=int(model.sizes[-1]), n_train=len(sp.train_x), n_val=len(sp.val_x),
        n_test=len(sp.test_x), n_test_full=len(sp.test_full_x), split=sp.mode,
        seed=cfg.seed, threads=threads, config=cfg.to_dict(), history=history)
