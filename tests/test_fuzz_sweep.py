"""Property-based tests (hypothesis) of what a sweep reads from files: sweep files (arbitrary
TOML-ish tables with values of the wrong type, odd values, unknown keys, bytes that are not
UTF-8) and results.jsonl (lines with fields dropped, retyped, ids changed, configs edited).

The property, as in test_fuzz.py: no traceback; either the input is valid (exit 0), or exit
code 2 with one line that names the file (or the key it holds that is wrong). Nothing trains:
``worker.run_config`` returns a made-up record, and every pool is this process (no worker
processes, no Dask). Bounded to seconds: max_examples, derandomized.
"""

import contextlib
import io
import json
import math
import os
import tempfile
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastmlp.cli import run_main
from fastmlp.data import BUNDLED_MNIST_DIR
from fastmlp.sweep import pool, store
from fastmlp.sweep.command import main as sweep_main

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
BASE = ["--hidden", "8", "--epochs", "1", "--threads", "1", "--data-dir",
        str(BUNDLED_MNIST_DIR), "--no-plots", "--quiet"]


def fake_run(rid, config, save=None):
    history = [dict(epoch=1, loss=0.3, train_accuracy=0.9, val_loss=0.3, val_accuracy=0.9,
                    seconds=0.5, samples_per_second=1e5, batch_size=32, lr=0.1,
                    weight_rms=[1.0], input_path="dense")]
    summary = dict(val_accuracy=0.9, test_accuracy=0.9, test_accuracy_full=0.9,
                   train_seconds=0.5, samples_per_second=1e5, history=history)
    return {"id": rid, "config": config, "summary": summary, "error": None}


@contextlib.contextmanager
def no_training():
    """Runs are made up and every pool is this process."""
    with mock.patch("fastmlp.sweep.worker.run_config", side_effect=fake_run), \
            mock.patch("fastmlp.sweep.api.make_pool", lambda *a, **k: pool.SerialPool()):
        yield


def cli(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = run_main(sweep_main, argv)
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()


def assert_valid_or_named(code, err, names):
    assert "Traceback" not in err, err
    if code == 0:
        return
    assert code == 2, (code, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert any(n and n in err for n in names), (names, err)


# ---------------------------------------------------------------------------------------------
# sweep files
# ---------------------------------------------------------------------------------------------
ODD_STRINGS = ["nan", "inf", "-1", "0", "1", "0.5", "", " ", "abc", "1,2", "100/50", "0:1",
               "0.01:0.3:log", "1:0", "nan:1", "0:inf", "-inf:0", "none", "true", "relu",
               "mnist", "/", "no/such/dir", "a\x00b", "é", "tcp://127.0.0.1:8786",
               "tcp://:x"]
KEYS = ["lr", "epochs", "hidden", "batch-size", "batch_size", "dropout", "seed", "crop",
        "center", "activation", "nesterov", "optimizer", "schedule", "batch_ramp", "threads",
        "preset", "samples", "out", "workers", "threads_per_run", "dask", "nope", "--lr",
        "augment"]
TABLES = ["base", "grid", "random", "sweep"]

scalars = (st.integers(-3, 3) | st.sampled_from([2**31, 10**20, -10**20])
           | st.floats(allow_nan=True, allow_infinity=True, width=32) | st.booleans()
           | st.sampled_from(ODD_STRINGS))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(KEYS), inner, max_size=2),
                      max_leaves=6)
tables = st.dictionaries(st.sampled_from(KEYS), values, max_size=4)
docs = st.dictionaries(st.sampled_from(TABLES + ["other"]), tables | values, max_size=4)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")) \
            if not math.isfinite(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string (JSON's escapes are TOML's)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def toml(doc):
    """``doc`` as TOML: plain values first, then each table under its header."""
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict)]
    for name, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{name}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _names(path, doc):
    keys = {k for t in doc.values() if isinstance(t, dict) for k in t}
    return [str(path)] + [k.strip().lstrip("-").replace("-", "_") for k in keys] + \
        [k.strip() for k in keys]


def test_sweep_files_are_named_errors_or_valid():
    @SETTINGS
    @given(docs, st.sampled_from([None, b"\xff\xfe", b"\x00", b"[base]\n"]))
    def check(doc, prefix):
        with tempfile.TemporaryDirectory() as d, contextlib.chdir(d), no_training():
            path = os.path.join(d, "s.toml")
            with open(path, "wb") as f:
                f.write((prefix or b"") + toml(doc).encode())
            code, err = cli(BASE + ["--file", path, "--out", os.path.join(d, "o")])
            assert_valid_or_named(code, err, _names(path, doc))

    check()


def test_a_sweep_file_of_random_bytes_is_a_named_error_or_valid():
    @settings(SETTINGS, max_examples=40)
    @given(st.binary(max_size=60))
    def check(data):
        with tempfile.TemporaryDirectory() as d, no_training():
            path = os.path.join(d, "s.toml")
            with open(path, "wb") as f:
                f.write(data)
            code, err = cli(BASE + ["--file", path, "--out", os.path.join(d, "o")])
            assert_valid_or_named(code, err, [path])

    check()


# ---------------------------------------------------------------------------------------------
# results.jsonl
# ---------------------------------------------------------------------------------------------
ARGV = BASE + ["--grid", "seed=0,1,2", "--workers", "0"]
odd = (st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from([10**30, "x", "", []])
       | st.floats(allow_nan=True, allow_infinity=True) | st.lists(st.integers(), max_size=2)
       | st.dictionaries(st.sampled_from(["id", "a"]), st.integers(), max_size=2))

# where a mutation lands: a top-level field, a summary field, a config field, an epoch's field
WHERE = st.sampled_from([("id",), ("config",), ("summary",), ("error",), ("other",),
                         ("summary", "val_accuracy"), ("summary", "train_seconds"),
                         ("summary", "history"), ("summary", "samples_per_second"),
                         ("config", "lr"), ("config", "seed"), ("config", "hidden"),
                         ("summary", "history", 0, "seconds"),
                         ("summary", "history", 0, "val_accuracy")])
mutation = st.tuples(st.integers(0, 2), WHERE,
                     st.sampled_from(["drop", "set", "id-hex", "id-of-other"]), odd)


def _mutate(recs, m):
    line, where, how, value = m
    rec = recs[line]
    if how == "id-hex":
        rec["id"] = "0123456789abcdef"
        return
    if how == "id-of-other":
        rec["id"] = recs[(line + 1) % len(recs)]["id"]
        return
    target = rec
    for key in where[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            return
    if not isinstance(target, (dict, list)):
        return
    try:
        if how == "drop":
            del target[where[-1]]
        else:
            target[where[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass


def _lines(recs, junk):
    text = "".join(json.dumps(r) + "\n" for r in recs)
    return text + junk


def test_results_jsonl_lines_mutated_are_named_errors_or_rerun():
    with tempfile.TemporaryDirectory() as d, no_training():
        out = os.path.join(d, "o")
        assert cli(ARGV + ["--out", out])[0] == 0
        path = os.path.join(out, "results.jsonl")
        with open(path) as f:
            good = [json.loads(x) for x in f]

    @SETTINGS
    @given(st.lists(mutation, min_size=1, max_size=3),
           st.sampled_from(["", "{", "[]\n", "5\n", '"x"\n', "null\n", "{}\n", "\xff\n"]))
    def check(mutations, junk):
        recs = json.loads(json.dumps(good))
        for m in mutations:
            _mutate(recs, m)
        with tempfile.TemporaryDirectory() as d, no_training():
            out = os.path.join(d, "o")
            os.mkdir(out)
            path = os.path.join(out, "results.jsonl")
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(_lines(recs, junk))
            code, err = cli(ARGV + ["--out", out])
            assert_valid_or_named(code, err, [path])
            if code == 0:  # what was used is what the runs gave: every line now read is whole
                scan = store.Scan(path)
                assert scan.malformed == []
                assert sorted(r["config"]["seed"] for r in scan.records.values()) == [0, 1, 2]

    check()
