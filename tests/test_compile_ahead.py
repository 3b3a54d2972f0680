"""A cold start's second process (loop/warmup.py): it compiles the two big pieces of a step and
the evaluation worker for exactly the argument types the loop calls them with, so the main
process's cold compile loads them from the cache; it says when the two pieces are ready, the
main process waits for that only when it comes to one of them; and it starts only when the
cache is cold."""

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from fastmlp import _jit
from fastmlp.choices.activations import get_activation
from fastmlp.loop import buffers, calls, steps, warmup
from fastmlp.threads import available_cores
from fastmlp.model import MLP
from fastmlp.training import plan, run, run_data

# all of it is about compiling: with the JIT off there is no helper and nothing to compile
pytestmark = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="the JIT is off")

# warmup.compile_loop on a tiny run, starting its helper itself as the benchmark runner does
# (plan.make_plan starts it earlier, warmup.start_for, and passes it in; with argv[1]
# "alone" no helper: the test ran one already), then the cache statistics of the workers and
# the pieces: [hits, misses], whether a helper is left running, and which augmentation kernels
# were compiled.
PROBE = '''
import json, sys
import numpy as np
from fastmlp import kernels
from fastmlp.choices.activations import get_activation
from fastmlp.config import TrainConfig
from fastmlp.model import MLP
from fastmlp.loop import buffers, calls, steps, warmup
from fastmlp.training import plan

helpers = []
real_start = warmup.start
warmup.start = lambda args: helpers.append(real_start(args)) or helpers[-1]
if sys.argv[1] == "alone":
    warmup.start = lambda train_args: None
act = get_activation("relu")
model = MLP.create((16, 8, 3), act, seed=0, init="auto")
ws = buffers.make_workspace(model.sizes, 8, model.params.size)
hp = plan.loop_hyper(TrainConfig(hidden=(8,)), act, False, 1)
X = np.zeros((4, 16), np.uint8)
warmup.compile_loop(model, ws, hp, X, np.zeros(4, np.int64), calls.transform_arrays(model, 16),
                    np.zeros(4))
stats = lambda fn: [sum(fn.stats.cache_hits.values()), sum(fn.stats.cache_misses.values())]
print(json.dumps(dict(loss_backward=stats(steps._rows_loss_backward),
                      update=stats(steps._update_block), forward=stats(steps._rows_forward),
                      evaluate=stats(steps._evaluate_worker), train=stats(steps._train_worker),
                      helpers=[h is not None and h.poll() for h in helpers],
                      augment=[len(f.signatures) for f in (kernels._gather_warped,
                               kernels._gather_shifted, kernels._shift_sparse)])))
'''


def _run(args, cache_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir),
           "PYTHONPATH": str(Path(_jit.PACKAGE_DIR).parent)}
    run = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


# Slow (about a minute each): cold compiles in fresh processes with an empty cache of their own;
# CI runs them with -m slow.
@pytest.mark.slow
def test_the_loop_loads_what_the_helper_compiled(tmp_path):
    _run(["-m", "fastmlp.loop.warmup"], tmp_path)   # by hand: all of it, nothing beside it
    stats = json.loads(_run(["-c", PROBE, "alone"], tmp_path).strip().splitlines()[-1])
    # loaded from the helper's cache entries (one hit each), nothing compiled again but the
    # training worker itself
    # a loop that moves no image has no augmentation kernel compiled into it (loop/steps.py)
    assert stats == {"loss_backward": [1, 0], "update": [1, 0], "forward": [1, 0],
                     "evaluate": [1, 0], "train": [0, 1], "helpers": [], "augment": [0, 0, 0]}


@pytest.mark.slow
def test_a_cold_start_shares_the_work_with_its_helper(tmp_path):
    if available_cores() < 2:
        pytest.skip("the helper starts only with two or more cores")
    stats = json.loads(_run(["-c", PROBE, "beside"], tmp_path).strip().splitlines()[-1])
    # this process compiled the training worker and the forward pass; the two pieces and the
    # evaluation worker came from the helper; the helper has exited (0)
    assert stats == {"loss_backward": [1, 0], "update": [1, 0], "forward": [0, 1],
                     "evaluate": [1, 0], "train": [0, 1], "helpers": [0], "augment": [0, 0, 0]}


# everything a loop compiles, in one process with an empty cache (the helper's share by hand,
# then the training worker), and fastmlp's jitted functions that Numba compiled more than once
ONCE_PROBE = '''
import gc, json
import numpy as np
from numba.core.registry import CPUDispatcher
from fastmlp.choices.activations import get_activation
from fastmlp.config import TrainConfig
from fastmlp.model import MLP
from fastmlp.loop import buffers, calls, warmup
from fastmlp.training import plan

warmup.main([])
act = get_activation("relu")
model = MLP.create((16, 8, 3), act, seed=0, init="auto")
ws = buffers.make_workspace(model.sizes, 8, model.params.size)
hp = plan.loop_hyper(TrainConfig(hidden=(8,)), act, False, 1)
warmup.compile_loop(model, ws, hp, np.zeros((4, 16), np.uint8), np.zeros(4, np.int64),
                    calls.transform_arrays(model, 16), np.zeros(4), helper=None)
print(json.dumps(sorted(f"{d.py_func.__name__}: {len(d.overloads)}" for d in gc.get_objects()
                        if isinstance(d, CPUDispatcher) and len(d.overloads) > 1
                        and d.py_func.__module__.startswith("fastmlp"))))
'''


@pytest.mark.slow
def test_a_cold_compile_compiles_every_function_once(tmp_path):
    # a constant int passed to a jitted function is typed Literal[int] and compiles it again
    # (dropout_kernels.INPUT_STREAM): 0.1-0.3 s of a cold start each
    assert json.loads(_run(["-c", ONCE_PROBE], tmp_path).strip().splitlines()[-1]) == []


def _compile_loop(monkeypatch):
    """warmup.compile_loop on a tiny network; returns the arguments it asked warmup.start
    about (those of the training worker)."""
    asked = []
    real_start = warmup.start
    model = MLP.create((16, 8, 3), get_activation("relu"), seed=0, init="auto")
    ws = buffers.make_workspace(model.sizes, 8, model.params.size)
    with monkeypatch.context() as m:
        m.setattr(warmup, "start", lambda args: asked.append(args) or real_start(args))
        warmup.compile_loop(model, ws, calls.eval_hyper(model.activation),
                            np.zeros((4, 16), np.uint8), np.zeros(4, np.int64),
                            calls.transform_arrays(model, 16), np.zeros(4))
    return asked[0]


def test_no_helper_starts_when_the_loop_is_cached(monkeypatch):
    args = _compile_loop(monkeypatch)
    assert warmup._cached(steps._train_worker, args)
    started = []
    monkeypatch.setattr(warmup.subprocess, "Popen", lambda *a, **k: started.append(a))
    assert warmup.start(args) is None and started == []
    # with other argument types (float64 parameters) nothing is cached: a helper would start
    other = list(args)
    other[3] = args[3].astype(np.float64)
    assert not warmup._cached(steps._train_worker, tuple(other))
    warmup.start(tuple(other))
    assert len(started) == (1 if available_cores() >= 2 else 0)


# A stand-in helper: writes READY after a moment, then runs until its stdin is closed.
FAKE_HELPER = ("import sys, time; time.sleep(0.3); sys.stdout.buffer.write(%r); "
               "sys.stdout.flush(); sys.stdin.read()" % warmup.READY)


def test_the_main_process_waits_for_the_pieces_once_then_lets_the_helper_go(monkeypatch):
    _compile_loop(monkeypatch)   # the loop and its pieces are compiled (or cached) here
    helper = subprocess.Popen([sys.executable, "-c", FAKE_HELPER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        (piece, args), (update, update_args) = warmup._ahead_calls()[0]
        assert piece is steps._rows_loss_backward and update is steps._update_block
        with warmup.pieces_from(helper):
            assert "compile" in vars(piece) and "compile" in vars(update)
            assert helper.poll() is None
            piece.compile(warmup._signature(args))   # waits for READY, reading it
            # READY was read, not left to come: nothing arrives on its stdout in the next second
            assert not select.select([helper.stdout], [], [], 1.0)[0]
            update.compile(warmup._signature(update_args))   # no second wait
        # the hooks are gone; closing stdin lets the helper end
        assert "compile" not in vars(piece) and "compile" not in vars(update)
        assert helper.poll() is None
        warmup.done_with_training_worker(helper)
        warmup.wait(helper, timeout=30)
        assert helper.returncode == 0
    finally:
        warmup.stop(helper)


def test_the_helper_takes_the_forward_pass_from_the_main_process(monkeypatch):
    # warmup._hold_back on a stand-in for steps._rows_forward: its compile waits until
    # the cache has it (here: the fourth look) while the main process keeps the pipe open...
    fn = numba.njit(lambda x: x + 1)
    looks = []
    monkeypatch.setattr(warmup, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(warmup, "_cached_signature",
                        lambda d, sig: d is fn and (looks.append(sig) or len(looks) >= 4))
    read_end, write_end = os.pipe()
    with os.fdopen(read_end) as stdin, os.fdopen(write_end, "w") as main_side:
        warmup._hold_back(fn, stdin)
        try:
            fn.compile((numba.int64,))
            assert len(looks) == 4 and fn(1) == 2
            # ...and not at all once the main process has closed it (done with the loop)
            main_side.close()
            looks.clear()
            fn.compile((numba.float64,))
            assert len(looks) == 1 and fn(1.5) == 2.5
        finally:
            del fn.compile


def test_a_helper_that_says_anything_but_ready_is_stopped():
    # READY is the only line the helper's stdout carries (it sends the rest to stderr); anything
    # else means something went wrong there: stop it and compile here
    helper = subprocess.Popen([sys.executable, "-c",
                               "import sys; sys.stdout.write('[cache] x\\n'); sys.stdout.flush(); "
                               "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        warmup._wait_ready(helper, timeout=30)
        assert helper.poll() is not None and helper.stdout.closed
    finally:
        warmup.stop(helper)


def test_the_hooks_go_even_when_the_training_workers_compile_fails():
    helper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with pytest.raises(RuntimeError, match="a compile error"):
            with warmup.pieces_from(helper):
                assert "compile" in vars(steps._rows_loss_backward)
                raise RuntimeError("a compile error")
        assert "compile" not in vars(steps._rows_loss_backward)
        assert "compile" not in vars(steps._update_block)
    finally:
        warmup.stop(helper)
    assert helper.poll() is not None and helper.stdin.closed


@pytest.mark.parametrize("augment", ["none", "shift:2", "rotate:10"])
def test_the_helper_started_before_a_run_has_its_network_asks_about_that_runs_loop(augment):
    # plan.make_plan starts the helper from a tiny stand-in (warmup.start_for): its
    # argument types must be those compile_loop then compiles the real run's loop for
    from fastmlp.config import TrainConfig

    cfg = TrainConfig(hidden=(100, 30), dropout=0.2, optimizer="adam", augment=augment)
    act = get_activation(cfg.activation)
    model = MLP.create((784, 100, 30, 10), act, seed=0, init="auto")
    ws = buffers.make_workspace(model.sizes, 128, model.params.size)
    hp = plan.loop_hyper(cfg, act, False, 2, 28)
    real = calls.warmup_args(model, ws, hp, np.zeros((0, 784), np.uint8),
                             np.zeros(60000, np.int64), calls.transform_arrays(model, 784),
                             np.zeros(1875))
    tiny = warmup.tiny_train_args(calls.moves_images(hp))
    assert warmup._signature(tiny) == warmup._signature(real)
    assert warmup._signature(warmup.tiny_train_args(not calls.moves_images(hp))) \
        != warmup._signature(real)
    # and the evaluation worker the helper compiles is the one compile_loop then asks for
    real_eval = calls.evaluate_warmup_args(model, ws, calls.eval_hyper(act),
                                           np.zeros((0, 784), np.uint8),
                                           calls.transform_arrays(model, 784))
    dispatcher, helper_eval = warmup._ahead_calls()[1]
    assert dispatcher is steps._evaluate_worker
    assert warmup._signature(helper_eval) == warmup._signature(real_eval)


def test_a_run_refused_after_its_helper_started_stops_the_helper(monkeypatch, mnist):
    from fastmlp.config import TrainConfig
    from fastmlp.errors import ConfigError

    helpers = []

    def start_for(moves_images):  # a stand-in helper that would run for a minute
        helpers.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        return helpers[-1]

    monkeypatch.setattr(warmup, "start_for", start_for)
    # images of more inputs than the sparse path reads: refused by input_plan, after the start
    big = np.zeros((64, 257, 256), np.uint8)
    big[:, :28, :28] = mnist.train_images[:64]
    data = run_data.Data.from_arrays(big, mnist.train_labels[:64], big[:20],
                                     mnist.train_labels[:20])
    with pytest.raises(ConfigError, match="reads at most 65,536 inputs"):
        run.train(TrainConfig(hidden=(8,), epochs=1, input_path="sparse", threads=1),
                  data=data)
    assert len(helpers) == 1 and helpers[0].poll() is not None  # stopped, not left running
