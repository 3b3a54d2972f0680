"""Property-based tests (hypothesis) of checkpoints: a real checkpoint with arrays dropped,
resized, reshaped or retyped, arrays added, and metadata fields changed, removed or of the wrong
type. The property, for evaluate, predict through the Python API and --resume: either the
checkpoint is still valid and used, or exit code 2 (CheckpointError through the API) with one line
naming the file; never a traceback, never a signal (a crash would take the test worker with it).
Bounded to seconds by max_examples; the model is tiny and its compiled code cached.
"""

import contextlib
import io
import math

import numpy as np
import synthetic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic import TINY

from fastmlp import load_model
from fastmlp.cli import run_main
from fastmlp.errors import CheckpointError
from fastmlp.evaluate import main as evaluate_main
from fastmlp.train import main as train_main
from fastmlp.training import checkpoint

small_ck = synthetic.small_ck  # fixture
small_dir = synthetic.small_dir  # fixture

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

ARRAY_NAMES = ["params", "opt1", "opt2", "best_params", "pixel_index", "scale", "shift"]
META_PATHS = [("sizes",), ("n_classes",), ("activation",), ("activation_builtin",),
              ("transform",), ("transform", "image_shape"), ("transform", "kept_shape"),
              ("transform", "description"), ("config",), ("config", "dataset"),
              ("config", "data_dir"), ("config", "split"), ("config", "seed"),
              ("config", "hidden"), ("config", "activation"), ("state",), ("state", "epoch"),
              ("state", "history"), ("format",)]
ODD = [None, True, -1, 0, 1, 3, 2**40, 1.5, math.nan, math.inf, "", "x", "relu", [], {}, [1],
       [8, 8], [64, 8, 3], [64, 8, 30], [4, 4], [-8, 8], [2**31, 2**31], ["64", 8, 3],
       {"a": 1}, "mnist"]
DTYPES = [np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_, np.complex64,
          np.float32]

array_change = st.tuples(
    st.sampled_from(ARRAY_NAMES + ["extra"]),
    st.sampled_from(["drop", "resize", "retype", "2d", "fill"]),
    st.integers(0, 2000), st.sampled_from(DTYPES),
    st.sampled_from([np.nan, np.inf, -1.0, 1e30, 0.0, 10**6]))
meta_change = st.tuples(st.sampled_from(META_PATHS), st.sampled_from(["remove", "set"]),
                        st.sampled_from(ODD))


def mutate(arrays, meta, array_changes, meta_changes):
    arrays = {k: v.copy() for k, v in arrays.items()}
    for name, how, n, dtype, value in array_changes:
        a = arrays.get(name, np.zeros(3, np.float32))
        if how == "drop":
            arrays.pop(name, None)
        elif how == "resize":
            arrays[name] = np.resize(a, n)
        elif how == "retype":
            arrays[name] = a.astype(dtype)
        elif how == "2d":
            arrays[name] = a.reshape(1, -1)
        else:
            b = a.astype(np.float64)
            b[n % max(1, b.size)] = value
            arrays[name] = b.astype(a.dtype) if np.isfinite(value) or a.dtype.kind == "f" \
                else a
    for path, how, value in meta_changes:
        node = meta
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if how == "remove":
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return arrays, meta


def run(main, argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_main(main, argv)
    return code, err.getvalue()


def assert_valid_or_one_line(code, err, path):
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err


@SETTINGS
@given(arrays=st.lists(array_change, max_size=3), metas=st.lists(meta_change, max_size=3))
def test_mutated_checkpoints_evaluate_or_are_one_line_errors(small_ck, tmp_path_factory,
                                                             arrays, metas):
    import json

    base_arrays, base_meta = checkpoint.load(small_ck)
    a, m = mutate(base_arrays, json.loads(json.dumps(base_meta)), arrays, metas)
    path = tmp_path_factory.mktemp("fuzz") / "ck.npz"
    checkpoint.save(path, a, m)
    code, err = run(evaluate_main, [str(path)])
    assert_valid_or_one_line(code, err, path)
    try:
        model, _ = load_model(path)
    except CheckpointError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        assert code == 2, err  # the command and the API agree
        return
    # a valid model: the command evaluated it, or said in one line why its data does not fit
    probs = model.predict_proba(synthetic.learnable(4)[0])
    assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1, atol=1e-4)


@settings(SETTINGS, max_examples=25)
@given(arrays=st.lists(array_change, max_size=2), metas=st.lists(meta_change, max_size=2))
def test_mutated_checkpoints_resume_or_are_one_line_errors(small_ck, small_dir, tmp_path_factory,
                                                           arrays, metas):
    import json

    base_arrays, base_meta = checkpoint.load(small_ck)
    a, m = mutate(base_arrays, json.loads(json.dumps(base_meta)), arrays, metas)
    path = tmp_path_factory.mktemp("fuzz") / "ck.npz"
    checkpoint.save(path, a, m)
    code, err = run(train_main, ["--resume", str(path), "--data-dir", str(small_dir),
                                 "--epochs", "2", *TINY])
    assert_valid_or_one_line(code, err, path)
