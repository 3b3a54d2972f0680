"""The training loop's Python side: ``train(config)`` and what it reports.

The compiled inner loop lives in ``engine.py`` and the settings and input plan it runs with in
``input_plan.py``; this module plans a run (data, network, buffers: :func:`_plan`), walks the
epochs (batch ramp, reshuffle, learning-rate schedule: :func:`_epoch`), evaluates, keeps the
best weights for early stopping, writes checkpoints (checkpoint.py, with the run's
:class:`~fastmlp.checkpoint.RunState`), turns Ctrl-C and a diverging loss into clean stops and
sums the run up (:func:`_finish`).
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

from . import checkpoint, compile_ahead, engine, kernels
from .activations import get_activation
from .augment import parse_augment
# load_model and transform_meta are re-exported: the API has them here
from .checkpoint import (  # noqa: F401
    RunState,
    load_model,
    transform_meta,
)
from .config import TrainConfig
from .errors import ConfigError, DivergenceError, OutputError
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
from .memory import peak_rss_mb
from .model import MLP, check_memory
from .outputs import write_history_csv, write_metrics_json  # noqa: F401  (re-exported)
from .schedules import batch_size_for_epoch, learning_rate, steps_in_epoch
from .threads import one_blas_thread, set_threads

# Samples per call into compiled code: small enough for a lively progress bar and a prompt
# Ctrl-C, large enough that the call's overhead (tens of microseconds) is noise.
CHUNK_SAMPLES = 8192


@dataclass
class Data:
    """What training reads: the splits (uint8) and the input transform fitted on train.

    ``splits`` and ``transform`` may be None (as :meth:`from_arrays` leaves them): ``train``
    then splits and fits them as its config says. ``released``: a run given this data with
    ``release_train_images=True`` freed its training images (it cannot train another run)."""

    dataset: object
    splits: object = None
    transform: object = None
    released: bool = False

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
        return Data(self.dataset, sp, tr, self.released)


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


@dataclass
class _Plan:
    """What a run fixes before its first step (see :func:`_plan`): the data, the network and
    its buffers, how the first layer reads its inputs, and the compile time it took."""

    cfg: TrainConfig
    splits: object
    act: object                    # the hidden activation (activations.Activation)
    model: MLP
    ws: object                     # engine.Workspace, sized for the largest batch
    train_x: np.ndarray            # (N, P) uint8, and train_y (N,) int64
    train_y: np.ndarray
    tr_arrays: tuple               # the input transform as (pixel_index, scale, shift)
    csr: tuple                     # the training inputs as CSR, or engine.NO_CSR
    hyper_for: Callable            # batch size -> engine.Hyper (input_plan.input_plan)
    pixel_map: Optional[np.ndarray]  # engine.pixel_map_arg: None unless --augment
    order: np.ndarray              # the epoch's sample order (N,), reshuffled in place
    lrs: np.ndarray                # the epoch's learning rate per step
    best_params: Optional[np.ndarray]  # the best weights so far, when early stopping
    threads: int
    compile_seconds: float

    def evaluate(self, x, y):
        loss, correct = engine.evaluate(self.model, x, y, batch_size=self.ws.x.shape[0],
                                        workspace=self.ws)
        return loss, correct / max(1, len(x))


def _plan(cfg, data, release):
    """Threads, data, network, buffers and input plan of a run; compiles (or loads from
    Numba's cache) the loop before the clock for training starts. ``release``: the dense
    training images may be freed when no epoch reads them (see :func:`train`)."""
    threads = set_threads(cfg.threads)
    if data is None:  # the run's own data: nothing else reads its training images
        data, release = prepare_data(cfg), True
    if not isinstance(data, Data):
        raise ConfigError(f"data must be a fastmlp.Data (Data.from_arrays(...) or "
                          f"prepare_data(config)), got {type(data).__name__}")
    caller_data, data = data, data.fitted(cfg)
    sp, transform = data.splits, data.transform
    if data.released or len(sp.train_x) != len(sp.train_y):
        raise ConfigError("this Data's training images were freed by the run it was given to "
                          "with release_train_images=True; prepare the data again for "
                          "another run")
    height, width = transform.image_shape
    shift_max = parse_augment(cfg.augment).shift
    if shift_max >= min(height, width):
        raise ConfigError(f"--augment {cfg.augment}: a shift of {shift_max} pixels would move "
                          f"a {height}x{width} image off itself; use a K below "
                          f"{min(height, width)}")
    act = get_activation(cfg.activation)
    sizes = (transform.n_inputs, *cfg.hidden, data.n_classes)
    train_x = np.ascontiguousarray(sp.train_x.reshape(len(sp.train_x), -1))
    train_y = np.ascontiguousarray(sp.train_y, dtype=np.int64)
    N = len(train_x)
    batches = [min(batch_size_for_epoch(e, cfg.batch_size, cfg.batch_ramp), N)
               for e in range(cfg.epochs)]  # each epoch's batch size, as _epoch takes it
    max_batch = max(batches)
    check_memory(sizes, max_batch)
    # On a cold cache the helper that compiles half of the loop (compile_ahead.py) starts now,
    # so that its start-up (imports, a second) overlaps the network and the CSR being built
    hp0 = _hyper(cfg, act, False, threads, width)
    helper = compile_ahead.start_for(engine.moves_images(hp0))
    try:
        model, ws = _network(cfg, act, sizes, transform, max_batch)
        tr_arrays = engine.transform_arrays(model, train_x.shape[1])
        min_batch = batch_size_for_epoch(0, cfg.batch_size, cfg.batch_ramp)
        lrs = np.zeros(steps_in_epoch(N, min_batch), dtype=np.float64)

        # How the first layer reads its inputs, before the loop compiles: then, when every
        # epoch reads the sparse copy and the run may let them go, the dense training images
        # are freed before the compiler's memory comes on top (MNIST: 47 MB off a cold start's
        # peak). The CSR kernels compile (or load) first, on one input, so that images with
        # more inputs than the sparse path takes still go dense (input_plan); compile time too.
        t0 = time.perf_counter()
        kernels.csr_inputs(train_x[:1], tr_arrays[0][:1])
        compile_seconds = time.perf_counter() - t0
        csr, hyper_for = input_plan(cfg, act, train_x, tr_arrays, threads, image_width=width)
        pixel_map = engine.pixel_map_arg(hp0, tr_arrays[0], train_x.shape[1])
        if release and all(hyper_for(b).sparse for b in batches):
            train_x = np.empty((0, train_x.shape[1]), np.uint8)  # the loop's type, no pixels
            sp = _release_train_images(caller_data, data)

        # Compile (or load from Numba's cache) everything, on empty inputs, before the clock
        # for training starts. Argument types do not depend on values: dense serves both.
        t0 = time.perf_counter()
        engine.compile_loop(model, ws, hp0, train_x[:0], train_y, tr_arrays, lrs, helper)
        compile_seconds += time.perf_counter() - t0
        if act.user is not None:  # a user's pair compiles when the activation is made
            compile_seconds += act.user.take_compile_seconds()
    except BaseException:
        compile_ahead.stop(helper)  # compile_loop stops it on every path through it
        raise
    return _Plan(cfg, sp, act, model, ws, train_x, train_y, tr_arrays, csr, hyper_for,
                 pixel_map, np.arange(N, dtype=np.int64), lrs,
                 np.empty_like(model.params) if cfg.early_stop else None, threads,
                 compile_seconds)


def _network(cfg, act, sizes, transform, max_batch):
    """The run's MLP and its workspace for batches of up to ``max_batch`` rows."""
    try:
        model = MLP.create(sizes, act, seed=cfg.seed, init=cfg.init, transform=transform)
        return model, engine.make_workspace(model.sizes, max_batch, model.params.size)
    except MemoryError:
        from .model import training_memory_bytes

        raise ConfigError(f"out of memory allocating the network {'-'.join(map(str, sizes))} "
                          f"at batch {max_batch} (about "
                          f"{training_memory_bytes(sizes, max_batch) / 2**30:,.1f} GB asked); "
                          "use smaller --hidden sizes or --batch-size") from None


def _release_train_images(*datas):
    """Free the dense training images of these Data objects (the caller's and its fitted copy,
    which share them): in their dataset and splits the training images become an empty
    (0, H, W) array, everything else stays. Returns the fitted copy's new splits."""
    from dataclasses import replace

    for d in datas:
        empty = np.empty((0, *d.dataset.train_images.shape[1:]), np.uint8)
        d.dataset = replace(d.dataset, train_images=empty)
        if d.splits is not None:
            d.splits = replace(d.splits, train_x=empty)
        d.released = True
    return datas[-1].splits


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
    plan = _plan(cfg, data, release_train_images)
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
    hp = plan.hyper_for(B)
    t_epoch = time.perf_counter()
    while state.step < steps:
        if interrupt.requested(e, state.step):
            break
        s0 = state.step
        n = min(chunk, steps - s0)
        loss, correct, samples, bad = engine.train_steps(
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
