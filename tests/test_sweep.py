"""Sweeps in this process and with local workers, on real MNIST: grid parsing and refusals,
stable ids, results.jsonl (atomic lines, torn last line), error rows, resume, and results equal
to running each configuration alone. Runs whose assertions are equalities and bookkeeping train
on the slice of real MNIST in conftest.py (``mnist_slice_dir``); the error-row test, which
asserts an accuracy, on all of it."""

import json
import statistics
import subprocess
import sys

import pytest

import fastmlp
from fastmlp import TrainConfig, train
from fastmlp.cli import run_main
from fastmlp.data import BUNDLED_MNIST_DIR, load_dataset, split
from fastmlp.data.transforms import make_transform
from fastmlp.errors import ConfigError
from fastmlp.sweep import grid as G
from fastmlp.sweep import store
from fastmlp.sweep.command import main as sweep_main
from fastmlp.sweep.command import parse
from fastmlp.training.run_data import Data

# Tiny real runs: the full 60,000 training images, one epoch of a 16-unit layer, one thread.
TINY = dict(hidden=(16,), epochs=1, threads=1, data_dir=str(BUNDLED_MNIST_DIR))
TINY_FLAGS = ["--hidden", "16", "--epochs", "1", "--data-dir", str(BUNDLED_MNIST_DIR)]


@pytest.fixture(scope="module")
def tiny(mnist_slice_dir):
    """TINY and TINY_FLAGS, on the MNIST slice."""
    d = str(mnist_slice_dir)
    return {**TINY, "data_dir": d}, TINY_FLAGS[:4] + ["--data-dir", d]


@pytest.fixture(scope="module")
def mnist_slice(mnist_slice_dir):
    return load_dataset("mnist", data_dir=mnist_slice_dir)


def sweep_cli(argv, capsys):
    code = run_main(sweep_main, argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- grid specs ------------------------------------------------------------------------------
def test_grid_values_convert_like_the_train_flags_and_lists_use_slashes():
    assert G.parse_grid_arg("hidden=100,256/128") == ("hidden", [(100,), (256, 128)])
    assert G.parse_grid_arg("--batch-size=32,64") == ("batch_size", [32, 64])
    assert G.parse_grid_arg("lr=0.1,1e-2") == ("lr", [0.1, 0.01])
    assert G.parse_grid_arg("batch_ramp=0,20") == ("batch_ramp", [None, 20])  # 0 = none
    assert G.parse_grid_arg("center=none,8") == ("center", [None, 8])
    assert G.parse_grid_arg("nesterov=true,false") == ("nesterov", [True, False])
    assert G.parse_grid_arg("activation=relu,shifted_relu:0.5") == (
        "activation", ["relu", "shifted_relu:0.5"])
    assert G.parse_grid_arg("beta2=0.99") == ("beta2", [0.99])  # a field without a flag


@pytest.mark.parametrize("text, words", [
    ("foo=1,2", "unknown sweep key 'foo'"),
    ("crop=a", "crop='a' is not a valid value"),
    ("optimizer=sgd,rmsprop", "choose one of"),
    ("crop", "expected KEY=V1,V2"),
    ("nesterov=maybe", "expected true or false"),
])
def test_bad_grid_specs_are_refused_with_one_line(text, words):
    with pytest.raises(ConfigError, match=words) as e:
        G.parse_grid_arg(text)
    assert "\n" not in str(e.value)


def test_a_value_never_valid_is_refused_before_any_run_and_the_cli_exits_2(tmp_path, capsys):
    with pytest.raises(ConfigError, match="batch_size=0 is invalid in every run"):
        G.expand(TrainConfig(**TINY), {"batch_size": [0, 32]})
    code, out, err = sweep_cli(TINY_FLAGS + ["--grid", "batch-size=0,32", "--out",
                                             str(tmp_path / "s")], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("error: grid value batch_size=0")
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_a_combination_invalid_only_together_is_an_error_row_not_a_refusal():
    # batch_ramp 64 fits batch 128 and ramp 20 fits batch 32; only (64, 32) is invalid.
    plan = G.expand(TrainConfig(**TINY), {"batch_ramp": [20, 64], "batch_size": [32, 128]})
    errors = [(ch, err) for _, _, ch, err in plan.runs if err]
    assert errors == [({"batch_ramp": 64, "batch_size": 32},
                       "--batch-ramp 64 is larger than --batch-size 32; the ramp starts small "
                       "and doubles up to the batch size")]
    assert len(plan.runs) == 4


def test_random_samples_are_seeded_in_range_and_whole_for_int_fields():
    lr = G.parse_random_arg("lr=0.001:0.5:log")
    crop = G.parse_random_arg("crop=0:4")
    a = G.expand(TrainConfig(**TINY), {"seed": [0, 1]}, [lr, crop], samples=5, seed=7)
    b = G.expand(TrainConfig(**TINY), {"seed": [0, 1]}, [lr, crop], samples=5, seed=7)
    assert [r[0] for r in a.runs] == [r[0] for r in b.runs] and len(a.runs) == 10
    lrs = {cfg["lr"] for _, cfg, _, _ in a.runs}
    assert len(lrs) == 5 and all(0.001 <= x <= 0.5 for x in lrs)
    assert all(isinstance(cfg["crop"], int) and 0 <= cfg["crop"] <= 4 for _, cfg, _, _ in a.runs)
    c = G.expand(TrainConfig(**TINY), {}, [lr], samples=5, seed=8)
    assert {cfg["lr"] for _, cfg, _, _ in c.runs} != lrs
    for bad in ("lr=0.5:0.1", "lr=0:1:log", "activation=0:1", "lr=1:2:ln"):
        with pytest.raises(ConfigError):
            G.parse_random_arg(bad)


def test_run_ids_hash_the_full_config_stably():
    cfg = TrainConfig(**TINY).to_dict()
    rid = G.run_id(cfg)
    assert G.run_id(dict(reversed(list(cfg.items())))) == rid   # key order does not matter
    assert G.run_id({**cfg, "seed": 1}) != rid and G.run_id({**cfg, "threads": 2}) != rid
    code = ("import json, sys; from fastmlp.sweep.grid import run_id; "
            "print(run_id(json.loads(sys.argv[1])))")
    fresh = subprocess.run([sys.executable, "-c", code, json.dumps(cfg)], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert fresh == rid  # the same in another interpreter (no hash randomisation)


def test_sweep_file_and_flags_combine(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[base]\nhidden = [16]\nepochs = 1\nbatch-size = 64\npreset = "book"\n'
                 '[grid]\ncrop = [0, 2]\nhidden = [[16], "8/4"]\n'
                 '[random]\nlr = "0.01:0.3:log"\nsamples = 2\n[sweep]\nout = "o"\nworkers = 1\n')
    base, grid, opts, _ = parse(["--file", str(f), "--epochs", "2", "--grid", "seed=0,1"])
    assert base.epochs == 2 and base.batch_size == 64 and base.activation == "sigmoid"
    assert grid == {"crop": [0, 2], "hidden": [(16,), (8, 4)], "seed": [0, 1]}
    assert [r.name for r in opts["random"]] == ["lr"] and opts["samples"] == 2
    assert opts["out"] == "o" and opts["workers"] == 1
    (tmp_path / "bad.toml").write_text("[grid]\ncrop = 0\n")
    with pytest.raises(ConfigError, match="must be a list"):
        parse(["--file", str(tmp_path / "bad.toml"), "--out", "o"])
    with pytest.raises(ConfigError, match="--save is per run"):
        parse(["--save", "x.npz", "--out", "o"])


# --- results.jsonl --------------------------------------------------------------------------
def _error_record(config):
    return {"id": G.run_id(config), "config": config, "summary": None, "error": "failed"}


def test_torn_last_line_is_skipped_and_the_next_append_starts_a_fresh_line(tmp_path):
    path = tmp_path / "results.jsonl"
    a, c = _error_record({"seed": 0}), _error_record({"seed": 2})
    store.append_record(path, a)
    with open(path, "ab") as f:  # a write cut short by kill -9 or power loss
        f.write(b'{"id": "b", "config": {"hid')
    records, bad = store.read_records(path)
    assert list(records) == [a["id"]] and bad == 1
    store.append_record(path, c)
    records, bad = store.read_records(path)
    assert list(records) == [a["id"], c["id"]] and bad == 1


def test_grouped_summary_is_median_and_half_range_sorted_by_validation():
    def rec(crop, seed, val):
        s = dict(val_accuracy=val, test_accuracy=val - 0.01, test_accuracy_full=val - 0.005,
                 train_seconds=10.0 + seed, samples_per_second=1000.0 * (seed + 1))
        return {"id": f"{crop}-{seed}", "config": {"crop": crop, "seed": seed},
                "summary": s, "error": None}

    vals = {0: [0.95, 0.97, 0.96], 2: [0.98, 0.90, 0.99]}
    rows = store.Rows([rec(c, s, v) for c in vals for s, v in enumerate(vals[c])],
                      ["crop", "seed"])
    rows.append({"id": "x", "config": {"crop": 4, "seed": 0}, "summary": None, "error": "boom"})
    g = rows.grouped()
    assert [x["crop"] for x in g] == ["2", "0", "4"]  # medians 0.98, 0.96, none
    by = {x["crop"]: x for x in g}
    assert by["2"]["val_median"] == statistics.median(vals[2])
    assert by["2"]["val_halfrange"] == pytest.approx((0.99 - 0.90) / 2)
    assert by["0"]["train_seconds_median"] == 11.0 and by["0"]["seeds"] == 3
    assert by["4"]["seeds"] == 0 and by["4"]["errors"] == 1 and by["4"]["error"] == "boom"
    md = store.summary_markdown(rows)
    assert "| 2 | 3 | 98.00 ± 4.50 |" in md and "(1 failed: boom)" in md


# --- running ---------------------------------------------------------------------------------
def _alone(mnist, cfg):
    """``cfg`` trained by itself, in this process, from ``mnist`` (a loaded Dataset)."""
    sp = split(mnist, mode=cfg.split, seed=cfg.seed)
    tr = make_transform(sp.train_x, crop=cfg.crop, center=cfg.center, auto_crop=cfg.auto_crop,
                        normalize=cfg.normalize)
    return train(cfg, data=Data(mnist, sp, tr)).summary


SAME = ("val_accuracy", "val_loss", "test_accuracy", "test_accuracy_full")


def test_worker_results_equal_running_each_configuration_alone(tiny, mnist_slice, tmp_path):
    grid = {"crop": [0, 2], "seed": [0, 1]}
    rows = fastmlp.sweep(TrainConfig(**tiny[0]), grid, out=str(tmp_path), workers=2,
                         threads_per_run=1, plots=False)
    assert len(rows) == 4 and not any(r["error"] for r in rows)
    assert {(r["config"]["crop"], r["config"]["seed"]) for r in rows} == \
        {(0, 0), (0, 1), (2, 0), (2, 1)}
    for r in rows:
        alone = _alone(mnist_slice, TrainConfig.from_dict(r["config"]))
        assert r["config"]["threads"] == 1 and r["summary"]["threads"] == 1
        for key in SAME:
            assert r["summary"][key] == alone[key], (r["config"], key)
        assert r["summary"]["history"][0]["weight_rms"] == alone["history"][0]["weight_rms"]
    # the two crops really are different runs (the comparison above can tell them apart)
    assert len({r["summary"]["val_loss"] for r in rows}) == 4
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["id"] for x in lines) == sorted(r["id"] for r in rows)
    csv_text = (tmp_path / "summary.csv").read_text().splitlines()
    assert csv_text[0].startswith("crop,seeds,errors,val_median,val_halfrange")
    assert len(csv_text) == 3  # two configurations, seeds grouped


def test_resume_runs_only_what_results_jsonl_lacks(tiny, tmp_path):
    seen = []
    kw = dict(out=str(tmp_path), workers=0, plots=False,
              on_result=lambda rec, progress: seen.append(rec["config"]["seed"]))
    first = fastmlp.sweep(TrainConfig(**tiny[0]), {"seed": [0, 1]}, **kw)
    assert sorted(seen) == [0, 1]
    seen.clear()
    again = fastmlp.sweep(TrainConfig(**tiny[0]), {"seed": [0, 1, 2]}, **kw)
    assert seen == [2]  # only the new one ran
    assert [r["summary"]["val_loss"] for r in again[:2]] == \
        [r["summary"]["val_loss"] for r in first]
    ids = [json.loads(x)["id"] for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(ids) == 3 == len(set(ids))


def test_a_failing_run_is_an_error_row_and_the_sweep_goes_on(tmp_path, capsys):
    missing = tmp_path / "no-such-data"
    code, out, err = sweep_cli(TINY_FLAGS[:4] + [
        "--threads", "1", "--workers", "0", "--grid",
        f"data-dir={BUNDLED_MNIST_DIR},{missing}", "--out", str(tmp_path / "s"), "--no-plots"],
        capsys)
    assert code == 0, err
    records, _ = store.read_records(tmp_path / "s" / "results.jsonl")
    by_dir = {r["config"]["data_dir"]: r for r in records.values()}
    bad, good = by_dir[str(missing)], by_dir[str(BUNDLED_MNIST_DIR)]
    assert bad["summary"] is None and str(missing) in bad["error"] and "\n" not in bad["error"]
    assert good["error"] is None and good["summary"]["val_accuracy"] > 0.8
    assert f"error: {bad['error']}" in out
    assert "2 runs (1 failed)" in out
    assert "1 failed:" in (tmp_path / "s" / "summary.md").read_text()


def test_rows_to_csv_and_to_frame(tiny, tmp_path):
    rows = fastmlp.sweep(TrainConfig(**tiny[0]), {"seed": [0, 1]}, workers=0)
    lines = rows.to_csv(tmp_path / "runs.csv").splitlines()
    assert lines[0] == ("id,seed,val_accuracy,test_accuracy,test_accuracy_full,train_seconds,"
                        "samples_per_second,error")
    assert (tmp_path / "runs.csv").read_text().splitlines() == lines and len(lines) == 3
    assert float(lines[1].split(",")[2]) == rows[0]["summary"]["val_accuracy"]
    pd = pytest.importorskip("pandas")
    frame = rows.to_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame["seed"]) == ["0", "1"]


def test_saved_models_hold_each_runs_weights_and_a_missing_one_runs_again(tiny, tmp_path,
                                                                          capsys):
    from fastmlp.training.checkpoint import load_model

    argv = tiny[1] + ["--threads", "1", "--workers", "0", "--grid", "seed=0,1",
                         "--save-models", "--no-plots", "--out", str(tmp_path)]
    assert sweep_cli(argv, capsys)[0] == 0
    records, _ = store.read_records(tmp_path / "results.jsonl")
    for rid, rec in records.items():
        model, meta = load_model(tmp_path / "models" / f"{rid}.npz")
        assert meta["config"] == rec["config"]
        assert model.weight_rms() == rec["summary"]["history"][-1]["weight_rms"]
    gone = next(iter(records))
    (tmp_path / "models" / f"{gone}.npz").unlink()
    code, out, _ = sweep_cli(argv, capsys)
    assert code == 0 and "2 runs, 1 to do, 1 already in" in out
    assert (tmp_path / "models" / f"{gone}.npz").exists()
