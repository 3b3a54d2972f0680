"""A cold start's compile split over two cores: a second process compiles part of the training
loop into Numba's on-disk cache while this one compiles the rest.

Numba compiles in one thread per process (it holds a global compiler lock), so a cold start
(an empty cache: the first run, or after an edit to a kernel) used one core of two. When
``engine.compile_loop`` finds no cached training loop for its argument types, it starts
``python -m fastmlp.compile_ahead``, which compiles the two largest pieces of a step,
``engine._rows_loss_backward`` and ``engine._update_block``, for the very argument types the
training loop calls them with (none of those types depends on a value, a size or the
activation; they are rebuilt here from a tiny network). Meanwhile this process compiles the
evaluation worker and with it the forward pass; then it waits for the helper and compiles the
training worker, whose two big callees Numba now loads from the cache instead of compiling.

Nothing depends on the helper: if it fails, is slow or the types ever differ, this process
compiles what is missing itself, as before. It is started only on a cold cache, with two or
more cores, and with the JIT on.
"""

import os
import subprocess
import sys

import numba
import numpy as np

from . import engine

# how long a cold start waits for the helper before compiling what is left itself
WAIT_SECONDS = 120.0


def _ahead_calls():
    """``[(dispatcher, args)]``: what the helper compiles, with arguments of the types
    ``engine._train_worker`` passes (see its calls of these two functions)."""
    from .activations import get_activation
    from .config import TrainConfig
    from .input_plan import loop_hyper
    from .model import MLP

    model = MLP.create((4, 3, 2), get_activation("relu"), seed=0, init="auto")
    ws = engine.make_workspace(model.sizes, 2, model.params.size)
    hp = loop_hyper(TrainConfig(), model.activation, False, 1)
    rows = np.zeros(1, np.int64)[0:0]  # a slice of the epoch's order
    scale = np.zeros(model.sizes[0], np.float32)
    return [
        # (ws, params, layout, last, r0, r1, b, hp)
        (engine._rows_loss_backward, (ws, model.params, model.layout, 0, 0, 0, 0, hp)),
        # (t, T, ws, params, layout, b, rows, hp, lr, step_t, csr_ptr, csr_idx, csr_val, scale)
        (engine._update_block, (0, 1, ws, model.params, model.layout, 0, rows, hp, 0.0, 0,
                                *engine.NO_CSR, scale)),
    ]


def _signature(args):
    return tuple(numba.typeof(a) for a in args)


def _cached(dispatcher, args):
    """Whether Numba's cache holds ``dispatcher`` compiled for ``args``' types, read from its
    index without loading anything. True when that cannot be told (then no helper starts)."""
    try:
        cache = dispatcher._cache
        key = cache._index_key(_signature(args), dispatcher.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # Numba's internals changed: behave as before
        return True


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def start(train_args):
    """Start the helper process if the training worker is not cached for ``train_args`` (and
    there are two cores and the JIT is on); returns it, or None."""
    if numba.config.DISABLE_JIT or _cores() < 2 or _cached(engine._train_worker, train_args):
        return None
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (parent, env.get("PYTHONPATH")) if p)
    try:
        return subprocess.Popen([sys.executable, "-m", "fastmlp.compile_ahead"], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None


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
    """Stop the helper if it is still running (the caller was interrupted)."""
    if helper is not None and helper.poll() is None:
        helper.kill()
        helper.wait()


def main():
    for dispatcher, args in _ahead_calls():
        dispatcher.compile(_signature(args))


if __name__ == "__main__":
    main()
