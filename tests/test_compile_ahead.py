"""A cold start's second process (compile_ahead.py): it compiles the two big pieces of a step for
exactly the argument types the training loop calls them with, so the loop's own cold compile
loads them from the cache; and it starts only when the cache is cold."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastmlp import _jit, compile_ahead, engine
from fastmlp.activations import get_activation
from fastmlp.model import MLP

# engine.compile_loop as trainer._plan calls it, its own helper kept out (the test started one
# already), then the cache statistics of the two functions the helper compiles: [hits, misses].
PROBE = '''
import json
import numpy as np
from fastmlp import compile_ahead, engine, trainer
from fastmlp.activations import get_activation
from fastmlp.config import TrainConfig
from fastmlp.model import MLP

compile_ahead.start = lambda train_args: None
act = get_activation("relu")
model = MLP.create((16, 8, 3), act, seed=0, init="auto")
ws = engine.make_workspace(model.sizes, 8, model.params.size)
hp = trainer._hyper(TrainConfig(hidden=(8,)), act, False, 1)
X = np.zeros((4, 16), np.uint8)
engine.compile_loop(model, ws, hp, X, np.zeros(4, np.int64), engine.transform_arrays(model, 16),
                    np.zeros(4))
stats = lambda fn: [sum(fn.stats.cache_hits.values()), sum(fn.stats.cache_misses.values())]
print(json.dumps(dict(loss_backward=stats(engine._rows_loss_backward),
                      update=stats(engine._update_block))))
'''


def _run(args, cache_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir),
           "PYTHONPATH": str(Path(_jit.PACKAGE_DIR).parent)}
    run = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


# Slow (about a minute): two cold compiles in fresh processes with an empty cache of their own;
# CI runs it with -m slow.
@pytest.mark.slow
def test_the_loop_loads_what_the_helper_compiled(tmp_path):
    _run(["-m", "fastmlp.compile_ahead"], tmp_path)
    stats = json.loads(_run(["-c", PROBE], tmp_path).strip().splitlines()[-1])
    # loaded from the helper's cache entries (one hit each), nothing compiled again
    assert stats == {"loss_backward": [1, 0], "update": [1, 0]}


def _compile_loop(monkeypatch):
    """engine.compile_loop on a tiny network; returns the arguments it asked compile_ahead.start
    about (those of the training worker)."""
    asked = []
    real_start = compile_ahead.start
    model = MLP.create((16, 8, 3), get_activation("relu"), seed=0, init="auto")
    ws = engine.make_workspace(model.sizes, 8, model.params.size)
    with monkeypatch.context() as m:
        m.setattr(compile_ahead, "start", lambda args: asked.append(args) or real_start(args))
        engine.compile_loop(model, ws, engine.eval_hyper(model.activation),
                            np.zeros((4, 16), np.uint8), np.zeros(4, np.int64),
                            engine.transform_arrays(model, 16), np.zeros(4))
    return asked[0]


def test_no_helper_starts_when_the_loop_is_cached(monkeypatch):
    args = _compile_loop(monkeypatch)
    assert compile_ahead._cached(engine._train_worker, args)
    started = []
    monkeypatch.setattr(compile_ahead.subprocess, "Popen", lambda *a, **k: started.append(a))
    assert compile_ahead.start(args) is None and started == []
    # with other argument types (float64 parameters) nothing is cached: a helper would start
    other = list(args)
    other[3] = args[3].astype(np.float64)
    assert not compile_ahead._cached(engine._train_worker, tuple(other))
    compile_ahead.start(tuple(other))
    assert len(started) == (1 if compile_ahead._cores() >= 2 else 0)
