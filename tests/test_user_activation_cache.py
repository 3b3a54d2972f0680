"""A user activation compiles only its own pair of callbacks (kernels/_user_activation.py),
cached under a digest of the user's code: the training loop is the built-ins' cached one for
every activation, a later process with the same functions loads the pair, and an edit to their
file compiles the pair anew, never the loop."""

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from fastmlp import _jit
from fastmlp.choices.activations import source_key

USER_MODULE = '''
import math
from fastmlp.choices.activations import custom_activation

SLOPE = {slope}  # run {tag}


def soft(x):
    return x / (1.0 + math.exp(-SLOPE * x))


def soft_derivative(x):
    s = 1.0 / (1.0 + math.exp(-SLOPE * x))
    return s + SLOPE * x * s * (1.0 - s)


ACT = custom_activation(soft, soft_derivative, name="soft")
'''

# One training chunk and one evaluation through the engine, as run.train calls them; prints
# the cache statistics of the loop's dispatchers (hits, misses) and of the user's compiled
# callbacks (hits: loaded from disk), and a checksum of the trained weights.
PROBE = '''
import json, sys
import numpy as np
from fastmlp.choices.activations import get_activation
from fastmlp.config import TrainConfig
from fastmlp.model import MLP
from fastmlp.loop import buffers, calls, steps
from fastmlp.training import plan

act = get_activation("{module}:ACT")
cfg = TrainConfig(hidden=(8,), activation="{module}:ACT", optimizer="sgd", batch_ramp=None,
                  dropout=0.0, lr=0.1, schedule="constant", threads=1)
rng = np.random.default_rng(0)
X = rng.integers(0, 256, size=(32, 16), dtype=np.uint8)
y = rng.integers(0, 3, size=32).astype(np.int64)
model = MLP.create((16, 8, 3), act, seed=0, init="auto")
train_fn, eval_fn = steps._train_worker, steps._evaluate_worker
if {train}:
    ws = buffers.make_workspace(model.sizes, 8, model.params.size)
    hp = plan.loop_hyper(cfg, act, False, 1)
    lrs = np.full(4, 0.1)
    calls.train_steps(model, ws, hp, X, y, np.arange(32), calls.transform_arrays(model, 16),
                      8, 0, 4, lrs, 0, 0)
loss, _ = calls.evaluate(model, X, y)
stats = lambda fn: [sum(fn.stats.cache_hits.values()), sum(fn.stats.cache_misses.values())]
print(json.dumps(dict(key=act.cache_key, train=stats(train_fn), evaluate=stats(eval_fn),
                      callbacks=[c.cache_hits for c in act.user.owners()], loss=loss,
                      params=float(np.abs(model.params.astype(np.float64)).sum()))))
'''


def _probe(folder, module, train):
    script = PROBE.format(module=module, train=train)
    env_path = f"{folder}:{Path(_jit.PACKAGE_DIR).parent}"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": env_path}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def user_folder(tmp_path):
    yield tmp_path
    # the compiled pairs live beside fastmlp's own cache (``__pycache__`` or
    # NUMBA_CACHE_DIR): remove this test's entries, which no later run can use
    for key_file in tmp_path.glob("*.key"):
        key = key_file.read_text()
        for root in [Path(_jit.PACKAGE_DIR) / "__pycache__",
                     *([Path(p) for p in [__import__("os").environ.get("NUMBA_CACHE_DIR")]
                        if p])]:
            for f in root.rglob(f"*__user_{key}*"):
                f.unlink()


# Slow-marked (about 7 s): three fresh processes, each importing Numba and loading the cached
# loop; CI runs it with -m slow.
@pytest.mark.slow
def test_user_pair_is_cached_an_edit_compiles_it_anew_and_the_loop_never(user_folder):
    module = f"user_acts_{uuid.uuid4().hex[:8]}"
    path = user_folder / f"{module}.py"
    path.write_text(USER_MODULE.format(slope=1.0, tag=uuid.uuid4().hex))
    first = _probe(user_folder, module, train=True)
    (user_folder / "first.key").write_text(first["key"])
    assert first["callbacks"] == [0, 0]                                # the pair compiled ...
    second = _probe(user_folder, module, train=True)
    assert second["key"] == first["key"]
    assert second["callbacks"] == [1, 1]                               # ... then loaded
    assert second["train"] == [1, 0] and second["evaluate"] == [1, 0]  # the loop: loaded
    assert second["loss"] == first["loss"] and second["params"] == first["params"]
    # an edit to a constant the functions read: a new key, the pair compiled, the loop loaded
    path.write_text(USER_MODULE.format(slope=2.0, tag=uuid.uuid4().hex))
    third = _probe(user_folder, module, train=True)
    (user_folder / "third.key").write_text(third["key"])
    assert third["key"] != first["key"] and third["callbacks"] == [0, 0]
    assert third["train"] == [1, 0] and third["evaluate"] == [1, 0]
    assert third["loss"] != first["loss"]


def _module_from(tmp_path, name, text):
    import importlib.util
    f = tmp_path / f"{name}.py"
    f.write_text(textwrap.dedent(text))
    spec = importlib.util.spec_from_file_location(name, f)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return f, m


def test_source_key_follows_code_file_and_closure(tmp_path):
    text = """
    K = 1.0
    def f(x):
        return K * x
    def df(x):
        return K
    """
    f1, a = _module_from(tmp_path, "ka", text)
    _, b = _module_from(tmp_path, "kb", text)
    assert source_key(a.f, a.df) == source_key(b.f, b.df) is not None  # same code, same file
    assert source_key(a.f, a.df) != source_key(a.df, a.f)
    _, c = _module_from(tmp_path, "kc", text.replace("K = 1.0", "K = 2.0"))
    assert source_key(c.f, c.df) != source_key(a.f, a.df)               # a constant edited
    _, d = _module_from(tmp_path, "kd", text + "\n    def unrelated():\n        pass\n")
    assert source_key(d.f, d.df) != source_key(a.f, a.df)               # any edit to the file

    def make(c):
        return lambda x: c * x
    assert source_key(make(1.0), a.df) != source_key(make(2.0), a.df)  # numbers in a closure
    assert source_key(make(object()), a.df) is None                    # other closures: no key
    ns = {}
    exec("def g(x):\n    return x\n", ns)                               # no source file
    assert source_key(ns["g"], a.df) is None
