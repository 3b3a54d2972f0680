"""A cold start's compile split over two cores: a second process compiles part of the training
loop into Numba's on-disk cache while this one compiles the rest.

Numba compiles in one thread per process (it holds a global compiler lock), so a cold start
(an empty cache: the first run, or after an edit to a kernel) used one core of two. When
no training loop is cached for a run's argument types, a run's plan (training/plan.py)
starts ``python -m fastmlp.loop.warmup`` (:func:`start_for`, before it builds the network and the
CSR, so that the helper's imports overlap them; :func:`compile_loop` starts it itself when
not given one), which compiles, for the very argument types the loop calls them with (none of
them depends on a value, a size or the activation; they are rebuilt here from a tiny network):

1. the two largest pieces of a step, ``_rows_loss_backward`` and ``_update_block`` (with the
   kernels they call), then says so (a line on its stdout), while this process compiles the
   training worker's other pieces (the gathers, the forward pass) and then waits for that line
   when Numba comes to one of the two (:func:`pieces_from`), loading them from the cache
   instead of compiling them;
2. the evaluation worker, while this process finishes the training worker (its own code: the
   pieces and kernels it calls through their addresses are compiled on their own, _jit.py).
   The forward pass they share is compiled once: the helper waits for this process to put it
   in the cache (or to say, by closing the helper's stdin, that it is done) before it comes to
   it. (The two small kernels that turn the training images into CSR, ``kernels.csr_inputs``,
   the plan compiles before the loop, so that the CSR is built before the compiler's memory
   comes on top.)

Nothing depends on the helper: if it fails, is slow or the types ever differ, this process
compiles what is missing itself, as before. It is started only on a cold cache, with two or
more cores, and with the JIT on.
"""

import contextlib
import os
import select
import subprocess
import sys
import time
from typing import NamedTuple

import numba
import numpy as np

from .. import kernels as K
from .._jit import PACKAGE_DIR
from ..threads import available_cores
from . import calls
from .buffers import Hyper, make_layout, make_workspace
from .steps import (
    _evaluate_worker,
    _rows_forward,
    _rows_loss_backward,
    _train_worker,
    _update_block,
)

# how long a cold start waits for the helper, at each of its waits (for the two pieces, for the
# evaluation worker; the helper for the forward pass), before compiling what is left itself
WAIT_SECONDS = 120.0
# the line the helper writes when the training worker's two pieces are in the cache
READY = b"ready\n"
# the helper's argument when a main process runs beside it (and talks to it through its pipes)
BESIDE_MAIN = "--beside-main"
# the helper's argument when the run's inputs are float32 features (not uint8 images)
FEATURES = "--features"
# how often the helper looks whether the forward pass is in the cache yet
POLL_SECONDS = 0.05


def _ahead_calls(inputs=np.uint8):
    """``([(dispatcher, args)], (dispatcher, args))``: the two pieces the helper compiles first,
    with arguments of the types ``_train_worker`` passes (see its calls of these two
    functions; they never see the inputs), and the evaluation worker with the arguments
    :func:`compile_loop` gives it, for ``inputs`` (uint8 images or float32 features)."""
    model, ws, hp = _tiny_run()
    rows = np.zeros(1, np.int64)[0:0]  # a slice of the epoch's order
    scale = np.zeros(model.sizes[0], np.float32)
    images = np.zeros((0, model.sizes[0]), inputs)
    transform = calls.transform_arrays(model, model.sizes[0])
    return [
        # (ws, params, layout, last, r0, r1, b, hp)
        (_rows_loss_backward, (ws, model.params, model.layout, 0, 0, 0, 0, hp)),
        # (t, T, ws, params, layout, b, rows, hp, lr, step_t, csr_ptr, csr_idx, csr_val, scale)
        (_update_block, (0, 1, ws, model.params, model.layout, 0, rows, hp, 0.0, 0,
                         *calls.NO_CSR, scale)),
    ], (_evaluate_worker, calls.evaluate_warmup_args(model, ws, hp, images, transform))


class _TinyModel(NamedTuple):
    """What the loop's calls read of a network (model.py's MLP), for a tiny one."""

    sizes: tuple
    params: np.ndarray
    layout: np.ndarray
    transform: object = None


def _tiny_run(moves_images=False):
    """A tiny network (4-3-2), its workspace and a plain-SGD Hyper with a built-in activation
    (moving the images or not): the argument types of every run's loop, without its data or
    its size (a Hyper's fields have the same types whatever their values)."""
    layout, n_params = make_layout((4, 3, 2))
    model = _TinyModel((4, 3, 2), np.zeros(n_params, np.float32), layout)
    ws = make_workspace(model.sizes, 2, n_params)
    hp = Hyper(act_code=K.RELU, act_param=0.0, shift_max=1 if moves_images else 0)
    return model, ws, hp


def start_for(moves_images, inputs=np.uint8):
    """:func:`start` for the training worker of a run whose loop moves its images or not (the
    only thing about a run its argument types depend on; ``calls.moves_images``), before that
    run has its network and inputs: the helper's own start-up (imports, about a second) then
    overlaps this process's preparations. Returns the helper or None; hand it to
    :func:`compile_loop`, or :func:`stop` it."""
    return start(tiny_train_args(moves_images, inputs))


def tiny_train_args(moves_images, inputs=np.uint8):
    """``calls.warmup_args`` of :func:`_tiny_run`: of the types of every run's training worker
    that moves its images or not."""
    model, ws, hp = _tiny_run(moves_images)
    images = np.zeros((0, model.sizes[0]), inputs)  # uint8 images or float32 features
    return calls.warmup_args(model, ws, hp, images, np.zeros(0, np.int64),
                             calls.transform_arrays(model, model.sizes[0]), np.zeros(1))


def _signature(args):
    return tuple(numba.typeof(a) for a in args)


def _cached(dispatcher, args):
    """Whether Numba's cache holds ``dispatcher`` compiled for ``args``' types, read from its
    index without loading anything. True when that cannot be told (then no helper starts)."""
    return _cached_signature(dispatcher, _signature(args))


def _cached_signature(dispatcher, signature):
    try:
        cache = dispatcher._cache
        key = cache._index_key(tuple(signature), dispatcher.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # Numba's internals changed: behave as before
        return True


def start(train_args):
    """Start the helper process if the training worker is not cached for ``train_args`` (and
    there are two cores and the JIT is on); returns it, or None."""
    if numba.config.DISABLE_JIT or available_cores() < 2 or _cached(_train_worker, train_args):
        return None
    parent = os.path.dirname(PACKAGE_DIR)  # the folder the fastmlp package is in
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (parent, env.get("PYTHONPATH")) if p)
    try:
        features = [FEATURES] if train_args[7].dtype == np.float32 else []  # the inputs
        return subprocess.Popen([sys.executable, "-m", __name__, BESIDE_MAIN, *features],
                                env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None


def _wait_ready(helper, timeout=WAIT_SECONDS):
    # until the helper has written READY; if it exits, writes anything else, times out or its
    # pipe cannot be waited on (select on a pipe: not on Windows), it is stopped and this
    # process compiles what is missing itself
    try:
        if select.select([helper.stdout], [], [], timeout)[0]:
            if helper.stdout.readline() == READY:
                return
    except (OSError, ValueError):
        pass
    stop(helper)


def _compile_after(dispatcher, wait):
    """Make Numba call ``wait(sig)`` before it compiles ``dispatcher`` (or loads it from the
    cache): Numba asks a dispatcher's own ``compile`` for every signature a caller needs, so an
    instance attribute of that name comes first; remove it to undo."""

    def compile(sig):
        wait(sig)
        return type(dispatcher).compile(dispatcher, sig)

    dispatcher.compile = compile


@contextlib.contextmanager
def pieces_from(helper):
    """While the training worker compiles: the first time Numba comes to one of the helper's two
    pieces, wait until the helper has them in the cache (Numba then loads them from it)."""
    if helper is None:
        yield
        return
    pieces = (_rows_loss_backward, _update_block)
    waited = []

    def wait_once(sig):
        if not waited:
            waited.append(True)
            _wait_ready(helper)

    try:
        for piece in pieces:
            _compile_after(piece, wait_once)
        yield
    finally:
        for piece in pieces:
            vars(piece).pop("compile", None)


def _close(pipe):
    if pipe is not None and not pipe.closed:
        try:
            pipe.close()
        except OSError:
            pass


def done_with_training_worker(helper):
    """Tell the helper (by closing its stdin) that the training worker is compiled: whatever of
    the forward pass is not in the cache by now, the helper compiles itself."""
    if helper is not None:
        _close(helper.stdin)


def wait(helper, timeout=WAIT_SECONDS):
    """Wait for the helper (None: nothing to wait for); stop it if it takes longer than
    ``timeout``. Whatever it did not finish is compiled by the caller."""
    if helper is None:
        return
    try:
        helper.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(helper)


def stop(helper):
    """Stop the helper if it is still running (it was slow, or the caller was interrupted) and
    close its pipes; every path through :func:`compile_loop` ends here."""
    if helper is None:
        return
    if helper.poll() is None:
        helper.kill()
        helper.wait()
    _close(helper.stdin)
    _close(helper.stdout)


_START_HELPER = object()  # compile_loop's default: start the helper there if it is needed


def compile_loop(model, ws, hp, images_flat, labels, transform, lrs, helper=_START_HELPER):
    """Compile (or load from Numba's cache) the training and evaluation workers for these
    argument types, without training: a call with no steps and one with no images. Argument
    types do not depend on values (nor on the activation), so a dense ``hp`` serves both paths.
    On a cold cache a second process compiles part of both meanwhile (see the module
    docstring: the training worker's two largest pieces, then the evaluation worker, while this
    process compiles the training worker's other pieces and then the worker itself).
    ``helper``: that process, when the caller started it earlier (:func:`start_for`; None:
    there is none), else it is started here if the cache is cold; either way it is stopped
    here."""
    train_args = calls.warmup_args(model, ws, hp, images_flat, labels, transform, lrs)
    if helper is _START_HELPER:
        helper = start(train_args)
    try:
        with pieces_from(helper):
            _train_worker(*train_args)
        done_with_training_worker(helper)
        wait(helper)
        _evaluate_worker(*calls.evaluate_warmup_args(
            model, ws, calls.eval_hyper(model.activation), images_flat, transform))
    finally:
        stop(helper)


def _hold_back(dispatcher, stdin):
    """In the helper: hold back compiling ``dispatcher`` (the forward pass) until the main
    process has put it in the cache (it compiles it for the training worker) or has closed
    ``stdin`` (it is done with the training worker), or WAIT_SECONDS have passed."""

    def until_cached(sig):
        give_up = time.monotonic() + WAIT_SECONDS
        try:
            while not _cached_signature(dispatcher, sig) and time.monotonic() < give_up:
                if select.select([stdin], [], [], POLL_SECONDS)[0]:
                    break  # stdin closed: the main process is done with the training worker
        except (OSError, ValueError):  # stdin cannot be waited on: compile it here
            pass

    _compile_after(dispatcher, until_cached)


def main(argv):
    """Compile the helper's pieces; ``[BESIDE_MAIN]``: as the helper of a main process (say
    READY on stdout, take the forward pass from its cache), else all of it here; with
    FEATURES, the evaluation worker for float32 features (else uint8 images)."""
    beside_main = argv[:1] == [BESIDE_MAIN]
    if beside_main:
        # stdout is the channel to the main process and carries READY alone: whatever else
        # would print there (Numba's debug output, say) goes to stderr (which it discards)
        channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    pieces, (evaluate, args) = _ahead_calls(np.float32 if FEATURES in argv else np.uint8)
    for dispatcher, piece_args in pieces:
        dispatcher.compile(_signature(piece_args))
    if beside_main:
        try:
            channel.write(READY)
            channel.close()
        except OSError:  # the main process has gone
            return
        _hold_back(_rows_forward, sys.stdin)
    evaluate.compile(_signature(args))


if __name__ == "__main__":
    main(sys.argv[1:])
