"""``python -m fastmlp.report --quick``: the whole report on real MNIST, scaled down.

One quick report (about 30 s on two cores) is shared by the module: every claim has a summary
row with a command and numbers, results.json holds every number, each command parses back into
its run's configuration, verdicts follow from the numbers by their stated rules, and the softmax
demonstration shows the batch-max softmax failing where fastmlp's kernel stays finite.
"""

import json
import math
import shlex
import shutil
import statistics
import sys

import numpy as np
import pytest

from fastmlp import kernels, report
from fastmlp.cli import run_main
from fastmlp.config import TrainConfig, preset
from fastmlp.errors import DivergenceError
from fastmlp.train import build_parser, config_from_args

VERDICTS = {"confirmed", "partly confirmed", "not confirmed", "skipped", "failed"}
PREFIX = "python -m fastmlp.train"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert run_main(report.main, ["--quick", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    md = (out / "RESULTS.md").read_text()
    return out, results, md


def _config_of(command):
    """The TrainConfig a `python -m fastmlp.train ...` command line trains."""
    assert command.startswith(PREFIX)
    return config_from_args(build_parser().parse_args(shlex.split(command[len(PREFIX):])))


def _groups(results):
    for name, e in results["experiments"].items():
        for g in e.get("groups", []):
            yield name, g


# ---------------------------------------------------------------------------------------------
# RESULTS.md
# ---------------------------------------------------------------------------------------------
def test_machine_line_and_quick_mode_banner(quick):
    _, results, md = quick
    first = md.splitlines()[2]
    assert first.startswith("Machine: ") and "cores" in first and "fastmlp 0.1.0" in first
    assert results["machine"]["cpu"] and results["machine"]["cores"] >= 1
    assert "Quick mode" in md and results["mode"] == "quick" and results["seeds"] == 1


def test_every_claim_has_a_summary_row_with_command_numbers_and_verdict(quick):
    _, results, md = quick
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    for name in report.EXPERIMENTS:
        e = results["experiments"][name]
        row = next(r for r in rows if r.startswith(f"| {report.CLAIMS[name]} |"))
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        claim, measured, verdict, command = cells
        assert verdict == f"**{e['verdict']}**" and e["verdict"] in VERDICTS
        assert command.startswith(f"`{PREFIX}")
        if e["verdict"] != "skipped":
            assert any(ch.isdigit() for ch in measured) and "%" in measured
            # a section with a table whose every row has a train command
            assert e["rows"] and all(any(PREFIX in c for c in r) for r in e["rows"])
            assert f"**Verdict: {e['verdict']}.**" in md


def test_plots_are_written_and_linked_when_matplotlib_is_there(quick):
    out, results, md = quick
    if not report.matplotlib_available():
        assert results["plots"]["available"] is False and "matplotlib" in md
        return
    files = results["plots"]["files"]
    assert set(files) == set(report.PLOTS)
    for name in files.values():
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in md


# ---------------------------------------------------------------------------------------------
# results.json
# ---------------------------------------------------------------------------------------------
def test_results_json_has_every_experiment_and_run_numbers(quick):
    _, results, _ = quick
    assert set(results) >= {"mode", "seeds", "machine", "experiments", "plots"}
    assert list(results["experiments"]) == list(report.EXPERIMENTS)
    for name, e in results["experiments"].items():
        assert set(e) >= {"claim", "verdict", "verdict_text", "command", "rows", "groups",
                          "seconds", "date"}, name
    n_runs = 0
    for name, g in _groups(results):
        assert set(g) >= {"label", "command", "config", "seeds", "median", "runs"}
        for r in g["runs"]:
            n_runs += 1
            for key in ("val_accuracy", "test_accuracy", "test_accuracy_full", "wall_seconds",
                        "train_seconds", "samples_per_second"):
                assert 0 <= r[key] and math.isfinite(r[key]), (name, key)
            assert 0.1 < r["test_accuracy_full"] <= 1 and r["wall_seconds"] >= r["train_seconds"]
            assert len(r["history"]) == r["epochs"] and r["history"][0]["weight_rms"]
            assert r["command"].startswith(PREFIX)
        # one seed in quick mode: the median is that run's number
        assert g["median"]["test_accuracy_full"] == statistics.median(
            r["test_accuracy_full"] for r in g["runs"])
    assert n_runs >= 20


def test_every_command_reproduces_its_runs_configuration(quick):
    _, results, _ = quick
    for name, g in _groups(results):
        cfg = TrainConfig.from_dict({**g["config"], "hidden": tuple(g["config"]["hidden"])})
        assert _config_of(g["command"]) == cfg, (name, g["command"])
        for r in g["runs"]:
            assert _config_of(r["command"]) == cfg.replace(seed=r["seed"])
        assert cfg.threads == 1  # quick mode leaves a core free


# ---------------------------------------------------------------------------------------------
# Verdicts recomputed from results.json by each section's stated rule
# ---------------------------------------------------------------------------------------------
def test_center_verdict_follows_the_numbers(quick):
    _, results, _ = quick
    e = results["experiments"]["center"]
    g8 = next(g for g in e["groups"] if g["config"]["center"] == 8)
    acc = g8["median"]["test_accuracy_full"]
    assert e["verdict"] == ("confirmed" if acc > report.CENTER_TARGET else "not confirmed")
    assert f"{100 * acc:.2f}%" in e["verdict_text"]


def test_best_and_fashion_verdicts_follow_the_numbers(quick):
    _, results, _ = quick
    best = results["experiments"]["best"]
    m = best["groups"][0]["median"]
    acc_ok = m["test_accuracy_full"] >= report.BEST_TARGET
    assert m["run_seconds"] == pytest.approx(m["wall_seconds"] - m["compile_seconds"])
    time_ok = m["run_seconds"] <= report.TIME_TARGET
    want = ("confirmed" if acc_ok and time_ok else
            "partly confirmed" if acc_ok or time_ok else "not confirmed")
    assert best["verdict"] == want
    assert ("met" if acc_ok else "missed") in best["verdict_text"]
    fashion = results["experiments"]["fashion"]
    if fashion["verdict"] != "skipped":
        acc = fashion["groups"][0]["median"]["test_accuracy_full"]
        assert fashion["verdict"] == ("confirmed" if acc >= report.FASHION_TARGET
                                      else "not confirmed")
        assert _config_of(fashion["command"]).dataset == "fashion-mnist"


def test_hidden100_verdict_and_harder_half_follow_the_numbers(quick):
    _, results, _ = quick
    e = results["experiments"]["hidden100"]
    met = []
    for g in e["groups"]:
        m = g["median"]
        met.append(m["test_accuracy"] >= 0.9855 and m["test_accuracy_full"] >= 0.976)
        harder = "first" if m["val_accuracy"] < m["test_accuracy"] else "second"
        assert g["checks"]["harder_half"].startswith(harder)
    assert (e["verdict"] == "confirmed") == any(met)
    assert _config_of(e["groups"][1]["command"]).activation == "sigmoid"  # the book preset


def test_crop_verdict_follows_the_numbers(quick):
    _, results, _ = quick
    e = results["experiments"]["crop"]
    base = e["groups"][0]["median"]
    acc_ok, time_ok = [], []
    for g in e["groups"][1:4]:
        m = g["median"]
        tol = max(report.MIN_TOLERANCE, g["spread"]["test_accuracy_full"],
                  e["groups"][0]["spread"]["test_accuracy_full"])
        acc_ok.append(m["test_accuracy_full"] - base["test_accuracy_full"] >= -tol)
        time_ok.append(m["samples_per_second"] / base["samples_per_second"] - 1
                       >= report.SPEED_MARGIN)
    want = ("confirmed" if all(acc_ok) and all(time_ok) else
            "partly confirmed" if all(acc_ok) or all(time_ok) else "not confirmed")
    assert e["verdict"] == want


def test_shifted_depth_compares_at_the_defaults_and_its_verdict_follows_the_numbers(quick):
    _, results, _ = quick
    e = results["experiments"]["shifted_depth"]
    n = len(report.SHIFTED_ACTIVATIONS)
    assert len(e["groups"]) == n * len(report.SHIFTED_DEPTHS)
    default = TrainConfig()
    ok = []
    for d, depth in enumerate(report.SHIFTED_DEPTHS):
        groups = e["groups"][d * n:(d + 1) * n]
        assert [g["config"]["activation"] for g in groups] == [
            spec for _, spec in report.SHIFTED_ACTIVATIONS]
        for g in groups:
            cfg = _config_of(g["command"])
            # the depth as the row says (quick mode narrows the layers) and every setting but
            # hidden, activation and the quick ones the default
            assert len(cfg.hidden) == len(depth)
            assert cfg.replace(hidden=default.hidden, activation=default.activation,
                               epochs=default.epochs, threads=default.threads) == default
        relu = groups[0]
        tol = max([report.MIN_TOLERANCE] + [g["spread"]["test_accuracy_full"] for g in groups])
        for g in groups[1:]:
            good = (g["median"]["test_accuracy_full"]
                    - relu["median"]["test_accuracy_full"] >= -tol)
            assert g["checks"]["at_least_relu"] == good
            ok.append(good)
    assert e["verdict"] == ("confirmed" if all(ok) else
                            "partly confirmed" if any(ok) else "not confirmed")
    assert f"{sum(ok)} of {len(ok)}" in e["verdict_text"]


def test_batch_ramp_times_come_from_the_history(quick):
    _, results, _ = quick
    e = results["experiments"]["batch_ramp"]
    for g in e["groups"]:
        for t in report.RAMP_TARGETS:
            want = statistics.median(
                math.inf if report.time_to(r["history"], t) is None
                else report.time_to(r["history"], t) for r in g["runs"])
            got = g["time_to"][f"{t:.2f}"]
            assert (got is None and math.isinf(want)) or got == pytest.approx(want)
    if e["speed_target"] != report.VAL_TARGET:
        assert e["verdict"] != "confirmed"


def test_activations_report_weight_rms_per_layer_per_epoch(quick):
    _, results, _ = quick
    e = results["experiments"]["activations"]
    assert [g["config"]["activation"] for g in e["groups"]] == [
        spec for _, spec in report.ACTIVATIONS]
    for g in e["groups"]:
        assert len(g["config"]["hidden"]) == 3 and g["config"]["dropout"] > 0
        rms = np.array(g["weight_rms"])
        assert rms.shape == (g["runs"][0]["epochs"] + 1, 4) and (rms > 0).all()
        assert g["rms_spread"] == pytest.approx(rms[-1].max() / rms[-1].min())


# ---------------------------------------------------------------------------------------------
# The softmax demonstration
# ---------------------------------------------------------------------------------------------
def test_softmax_demo_shows_batch_max_failing_and_the_kernel_finite(quick):
    _, results, _ = quick
    e = results["experiments"]["softmax"]
    d = e["data"]
    scales = d["scales"]
    assert [s["scale"] for s in scales] == list(report.SOFTMAX_SCALES)
    assert all(s["fused_fail_fraction"] == 0 for s in scales)
    assert scales[-1]["naive_fail_fraction"] > 0
    assert scales[-1]["naive_rows_0_over_0"] + scales[-1]["naive_rows_log_0"] > 0
    ex = d["example"]
    assert not math.isfinite(float(ex["naive_loss"])) and math.isfinite(ex["fused_loss"])
    assert ex["spread"] > report.FLOAT32_EXP_UNDERFLOW or ex["rows_log_0"] > 0
    # with no row near underflow both compute the same loss (partial underflow, at larger
    # scales, can leave the batch-max loss finite but inexact)
    assert scales[0]["naive_fail_fraction"] > 0 or \
        scales[0]["max_relative_difference_when_finite"] < 1e-5
    # dropout widens the spread of logits within a batch
    spreads = d["spreads"]
    assert len(spreads["training (dropout on)"]) == d["n_batches"]
    first = d["first_failing_scale"]
    want = ("confirmed" if first == 1 else "partly confirmed" if first else "not confirmed")
    assert e["verdict"] == want


def test_naive_twin_agrees_with_the_kernel_until_a_row_underflows():
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((64, 10)) * 5).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    naive, probs, zero_rows, log_zero = report.naive_softmax_xent(logits, labels)
    assert naive == pytest.approx(report.fused_softmax_xent(logits, labels), rel=1e-5)
    assert zero_rows == log_zero == 0 and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    logits[0] += 200.0  # one row far above the others: every other row underflows
    naive, _, zero_rows, _ = report.naive_softmax_xent(logits, labels)
    assert math.isnan(naive) and zero_rows == 63
    assert math.isfinite(report.fused_softmax_xent(logits, labels))
    probs = np.empty_like(logits)
    kernels.softmax_xent_forward(probs, logits, labels.astype(np.int64))
    assert np.isfinite(probs).all()


# ---------------------------------------------------------------------------------------------
# Command line: --only keeps earlier results, no matplotlib is not a crash, bad names are errors
# ---------------------------------------------------------------------------------------------
def test_only_reruns_some_and_keeps_the_rest_without_matplotlib(quick, tmp_path, monkeypatch):
    out, before, _ = quick
    shutil.copy(out / "results.json", tmp_path / "results.json")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert not report.matplotlib_available()
    assert run_main(report.main, ["--quick", "--out", str(tmp_path), "--only", "softmax"]) == 0
    after = json.loads((tmp_path / "results.json").read_text())
    assert list(after["experiments"]) == list(report.EXPERIMENTS)
    assert after["experiments"]["crop"] == before["experiments"]["crop"]
    assert after["experiments"]["softmax"]["date"] >= before["experiments"]["softmax"]["date"]
    assert after["plots"]["available"] is False
    assert not list(tmp_path.glob("*.png"))
    assert "matplotlib is not installed" in (tmp_path / "RESULTS.md").read_text()


def test_a_rerun_over_kept_runs_says_they_were_kept(quick, tmp_path):
    # The first report ran every run itself; a rerun of one experiment over the same runs
    # directory trains nothing, and its seconds must not read as the experiment's cost.
    out, before, _ = quick
    shared = {"label_smoothing", "momentum_ramp"}  # find the max-norm section's runs (below)
    assert all(e.get("runs_kept") == 0 for name, e in before["experiments"].items()
               if name not in shared)
    shutil.copy(out / "results.json", tmp_path / "results.json")
    shutil.copytree(out / "runs", tmp_path / "runs")
    assert run_main(report.main, ["--quick", "--out", str(tmp_path), "--only", "center"]) == 0
    e = json.loads((tmp_path / "results.json").read_text())["experiments"]["center"]
    n = len(report.CENTERS)
    assert e["n_runs"] == e["runs_kept"] == n
    assert (f"{n} of its {n} runs were already recorded at that commit"
            in (tmp_path / "RESULTS.md").read_text())


def test_a_diverging_experiment_is_reported_and_the_others_go_on(tmp_path, monkeypatch):
    def diverge(ctx):
        raise DivergenceError("training diverged: the loss became NaN at epoch 1, step 3")

    monkeypatch.setitem(report.EXPERIMENT_FUNCTIONS, "crop", diverge)
    assert run_main(report.main, ["--quick", "--out", str(tmp_path), "--only", "crop"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["experiments"]["crop"]["verdict"] == "failed"
    md = (tmp_path / "RESULTS.md").read_text()
    assert "**failed**" in md and "diverged" in md and "not run in this report" in md


def test_unknown_experiment_is_a_one_line_error(capsys, tmp_path):
    assert run_main(report.main, ["--quick", "--out", str(tmp_path), "--only", "nope"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_time_to_reads_cumulative_seconds():
    hist = [dict(seconds=2.0, val_accuracy=0.95), dict(seconds=1.5, val_accuracy=0.981),
            dict(seconds=1.0, val_accuracy=0.99)]
    assert report.time_to(hist, 0.98) == 3.5
    assert report.time_to(hist, 0.995) is None


@pytest.mark.parametrize("cfg,name", [
    (TrainConfig(), None),
    (TrainConfig(hidden=(512, 512), batch_ramp=None, batch_size=20, threads=1), None),
    (TrainConfig(center=8, activation="shifted_relu:1", lr=1e-3, nesterov=True), None),
    (preset("strong", dataset="fashion-mnist"), "strong"),
    (preset("book", epochs=1), "book"),
])
def test_command_lines_parse_back_to_the_config(cfg, name):
    command = report.command_for(cfg, name)
    assert _config_of(command) == cfg
    assert ("--preset" in command) == (name is not None)


def test_a_missing_data_set_is_a_skipped_claim_whose_summary_row_stays_one_line(
        tmp_path, monkeypatch):
    """Without Fashion-MNIST (hidden here, not deleted) its claim is skipped, and the data
    error's several lines (every place searched) must not break the Markdown table."""
    import dataclasses

    from fastmlp import data

    info = data.DATASETS["fashion-mnist"]
    monkeypatch.setitem(data.DATASETS, "fashion-mnist",
                        dataclasses.replace(info, fallback_dir=tmp_path / "no-fashion"))
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))
    out = tmp_path / "report"
    assert run_main(report.main, ["--quick", "--only", "fashion", "--out", str(out)]) == 0
    e = json.loads((out / "results.json").read_text())["experiments"]["fashion"]
    assert e["verdict"] == "skipped" and "no-fashion" in e["verdict_text"]
    md = (out / "RESULTS.md").read_text()
    row = next(r for r in md.splitlines() if r.startswith(f"| {report.CLAIMS['fashion']} |"))
    cells = [c.strip() for c in row.strip("|").split(" | ")]
    assert len(cells) == 4, row
    assert "no-fashion" in cells[1] and cells[2] == "**skipped**"
    assert cells[3].startswith(f"`{PREFIX}") and "--dataset fashion-mnist" in cells[3]


def test_a_rerun_resumes_from_the_kept_runs_and_fresh_trains_again(quick, tmp_path, capsys,
                                                                    monkeypatch):
    """The runs go through the sweep engine: a second report over the same OUT trains nothing
    and finds the same numbers; --fresh sets the kept runs aside and trains again."""
    out, before, _ = quick
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the plots are another test's job
    shutil.copytree(out / "runs", tmp_path / "runs")
    shutil.copy(out / "results.json", tmp_path / "results.json")
    capsys.readouterr()
    argv = ["--quick", "--out", str(tmp_path), "--only", "center,crop"]
    assert run_main(report.main, argv) == 0
    log = capsys.readouterr().out
    assert "  [1/" not in log  # no run trained: every one was kept
    after = json.loads((tmp_path / "results.json").read_text())
    for name in ("center", "crop"):
        assert [g["median"] for g in after["experiments"][name]["groups"]] == \
            [g["median"] for g in before["experiments"][name]["groups"]]
    # --fresh on the cheapest experiment (centers: tiny inputs, a 32-unit layer)
    n = sum(len(g["runs"]) for g in before["experiments"]["center"]["groups"])
    assert n >= 2
    assert run_main(report.main, argv[:-1] + ["center", "--fresh"]) == 0
    log = capsys.readouterr().out
    assert f"  [{n}/{n}] " in log  # every one of its runs trained again
    assert list(tmp_path.glob("runs/*/center/results.jsonl.old"))


def test_a_report_of_runs_from_two_commits_says_so_and_names_each_sections_commit(quick):
    # --only reruns some experiments and keeps the others: the header must not name one commit
    # for all of them, and each section says which commit ran it
    results = json.loads(json.dumps(quick[1]))  # a copy
    assert all(e["git_commit"] == results["machine"]["git_commit"]
               for e in results["experiments"].values())  # each run records its commit
    names = list(results["experiments"])
    for i, name in enumerate(names):
        results["experiments"][name]["git_commit"] = "aaaaaaa" if i % 2 else "bbbbbbb"
    md = report.render_markdown(results)
    header = md.splitlines()[2]
    assert "different commits: git aaaaaaa, git bbbbbbb" in header
    assert md.count("run at git aaaaaaa") == len(names) // 2
    for name in names:
        results["experiments"][name]["git_commit"] = "ccccccc"
    results["machine"]["git_commit"] = "ccccccc"
    assert "(git ccccccc)" in report.render_markdown(results).splitlines()[2]


# ---------------------------------------------------------------------------------------------
# A report never drops results it does not redo (issue 30): a quick report over the full one
# ---------------------------------------------------------------------------------------------
REPO_DOCS = __import__("pathlib").Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture
def full_docs(tmp_path, monkeypatch):
    """A copy of the repository's full-mode docs/RESULTS.md and results.json in tmp_path/docs,
    the working directory; experiments fail at once instead of training."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("RESULTS.md", "results.json"):
        shutil.copy(REPO_DOCS / name, docs / name)
    assert json.loads((docs / "results.json").read_text())["mode"] == "full"

    def diverge(ctx):
        raise DivergenceError("training diverged (a stand-in: nothing trains in this test)")

    for name in report.EXPERIMENTS:
        monkeypatch.setitem(report.EXPERIMENT_FUNCTIONS, name, diverge)
    monkeypatch.chdir(tmp_path)
    return docs


def _files(docs):
    return {p.name: p.read_bytes() for p in docs.iterdir() if p.is_file()}


def test_a_quick_report_never_replaces_the_full_one_without_being_told(full_docs, capsys):
    before = _files(full_docs)
    assert run_main(report.main, ["--quick", "--only", "center"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    n = len(json.loads((full_docs / "results.json").read_text())["experiments"])
    assert f"docs/results.json holds full-mode results ({n} experiment(s))" in err
    assert "--out DIR" in err and "--replace" in err
    assert _files(full_docs) == before  # 211 lines of full results still there
    assert not (full_docs / "runs").exists()  # refused before anything ran


def test_a_quick_report_elsewhere_or_with_replace_is_written(full_docs, tmp_path):
    before = _files(full_docs)
    assert run_main(report.main, ["--quick", "--only", "center", "--out",
                                  str(tmp_path / "quick")]) == 0
    assert json.loads((tmp_path / "quick" / "results.json").read_text())["mode"] == "quick"
    assert _files(full_docs) == before
    assert run_main(report.main, ["--quick", "--only", "center", "--replace"]) == 0
    assert json.loads((full_docs / "results.json").read_text())["mode"] == "quick"


@pytest.mark.parametrize("spoil, words", [
    (lambda d: (d / "results.json").write_text("{not json"), "cannot be read"),
    (lambda d: (d / "results.json").write_text("[1, 2]"), "is not a report's results"),
    (lambda d: (d / "results.json").unlink(), "exists without the results.json"),
])
def test_results_a_report_cannot_read_are_not_overwritten(full_docs, capsys, spoil, words):
    spoil(full_docs)
    before = _files(full_docs)
    assert run_main(report.main, ["--only", "center"]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert _files(full_docs) == before


def test_a_full_report_with_only_keeps_the_other_sections_of_the_full_one(full_docs):
    before = json.loads((full_docs / "results.json").read_text())
    assert run_main(report.main, ["--only", "center"]) == 0
    after = json.loads((full_docs / "results.json").read_text())
    assert after["experiments"]["crop"] == before["experiments"]["crop"]
    assert after["experiments"]["center"]["verdict"] == "failed"


def test_a_report_output_that_is_a_folder_is_refused_before_anything_runs(tmp_path, capsys,
                                                                          monkeypatch):
    (tmp_path / "RESULTS.md").mkdir()
    monkeypatch.setitem(report.EXPERIMENT_FUNCTIONS, "center",
                        lambda ctx: pytest.fail("an experiment ran"))
    assert run_main(report.main, ["--quick", "--only", "center", "--out", str(tmp_path)]) == 2
    assert "RESULTS.md is a folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Issue 34: max-norm, label smoothing and the momentum ramp, each alone; a committee
# ---------------------------------------------------------------------------------------------
EFFECTS = {"max_norm": dict(max_norm=report.MAX_NORM),
           "label_smoothing": dict(label_smoothing=report.LABEL_SMOOTHING),
           "momentum_ramp": dict(momentum_final=report.MOMENTUM_FINAL)}


@pytest.mark.parametrize("name", list(EFFECTS))
def test_each_effect_changes_one_setting_on_the_default_and_the_wide_network(quick, name):
    _, results, md = quick
    e = results["experiments"][name]
    section = md.split(f". {report.TITLES[name]}\n", 1)[1].split("\n## ", 1)[0]
    assert f"*Setup:* {report.NOTES[name]}." in section
    groups = e["groups"]
    assert len(groups) == 4
    nets = [(TrainConfig(), None),
            (preset(report.WIDE_PRESET, epochs=report.WIDE_EPOCHS), report.WIDE_PRESET)]
    quick_fields = dict(hidden=None, epochs=None, threads=None)  # what quick mode scales down
    for (want, preset_name), base, g in zip(nets, groups[::2], groups[1::2]):
        cfg_base, cfg = _config_of(base["command"]), _config_of(g["command"])
        assert cfg == cfg_base.replace(**EFFECTS[name])  # the one setting, nothing else
        assert cfg_base.replace(**{k: getattr(want, k) for k in quick_fields}) == want
        assert ("--preset" in base["command"]) == (preset_name is not None)


@pytest.mark.parametrize("name", list(EFFECTS))
def test_each_effects_verdict_follows_the_numbers(quick, name):
    _, results, _ = quick
    e = results["experiments"][name]
    better = []
    for base, g in zip(e["groups"][::2], e["groups"][1::2]):
        diff = g["median"]["test_accuracy_full"] - base["median"]["test_accuracy_full"]
        tol = max(report.MIN_TOLERANCE, base["spread"]["test_accuracy_full"],
                  g["spread"]["test_accuracy_full"])
        want = "better" if diff > tol else "worse" if diff < -tol else "within the noise"
        assert g["checks"]["effect"] == want
        assert f"{100 * diff:+.2f} pp (noise {100 * tol:.2f} pp: {want})" in e["verdict_text"]
        better.append(want == "better")
    assert e["verdict"] == ("confirmed" if all(better) else
                            "partly confirmed" if any(better) else "not confirmed")


def _effect_group(label, acc, spread):
    return dict(label=label, command=PREFIX, seeds=[0, 1, 2], runs=[],
                median=dict(test_accuracy_full=acc, train_seconds=1.0),
                spread=dict(test_accuracy_full=spread))


@pytest.mark.parametrize("diffs, spread, effects, verdict", [
    ((0.003, 0.002), 0.001, ("better", "better"), "confirmed"),
    ((0.003, 0.0005), 0.0, ("better", "within the noise"), "partly confirmed"),
    ((0.003, 0.003), 0.004, ("within the noise", "within the noise"), "not confirmed"),
    ((-0.002, 0.0), 0.0, ("worse", "within the noise"), "not confirmed"),
])
def test_an_effects_verdict_rule_on_every_branch(diffs, spread, effects, verdict):
    # better / worse only beyond max(0.1 pp, the wider seed spread); confirmed on both networks
    groups = []
    for net, diff in zip(("784-100-10", "576-1024-1024-10"), diffs):
        groups += [_effect_group(f"{net}: none", 0.98, 0.0),
                   _effect_group(f"{net}: max-norm 2", 0.98 + diff, spread)]
    res = report.claims.MAX_NORM_EFFECT.verdict(None, groups)
    assert tuple(g["checks"]["effect"] for g in groups[1::2]) == effects
    assert res["verdict"] == verdict
    assert [r[4] for r in res["rows"][1::2]] == list(effects)


def test_the_effects_share_the_runs_without_any_setting(quick):
    # the runs without max-norm, smoothing or a ramp are one set of runs, trained once
    _, results, md = quick
    exps = [results["experiments"][name] for name in EFFECTS]
    bases = [[(r["command"], r["test_accuracy_full"]) for g in e["groups"][::2]
              for r in g["runs"]] for e in exps]
    assert bases[0] == bases[1] == bases[2]
    assert exps[0]["runs_kept"] == 0
    assert exps[1]["runs_kept"] == exps[2]["runs_kept"] == len(bases[0])
    assert md.count("runs were already recorded at that commit") == 2


def test_the_committee_is_the_mean_of_its_members_probabilities(quick):
    from fastmlp import load_model
    from fastmlp.data import load_dataset
    from fastmlp.sweep.api import model_path
    from fastmlp.sweep.grid import run_id

    out, results, _ = quick
    e = results["experiments"]["committee"]
    g, = e["groups"]
    assert g["seeds"] == list(range(report.COMMITTEE_SIZE))
    cfg = _config_of(g["command"])
    assert cfg.replace(hidden=(1024, 1024), epochs=report.COMMITTEE_EPOCHS, threads=None) == \
        preset(report.COMMITTEE_PRESET, epochs=report.COMMITTEE_EPOCHS)
    ds = load_dataset("mnist")
    images, labels = ds.test_images, ds.test_labels.astype(np.int64)
    folder, = out.glob("runs/*/committee")
    probs = []
    for r in g["runs"]:
        model, _ = load_model(model_path(str(folder), run_id(cfg.replace(seed=r["seed"])
                                                             .to_dict())))
        p = model.predict_proba(images).astype(np.float64)
        assert np.mean(p.argmax(axis=1) == labels) == pytest.approx(r["test_accuracy_full"])
        probs.append(p)
    acc = float(np.mean(np.mean(probs, axis=0).argmax(axis=1) == labels))
    c = g["committee"]
    assert c["test_accuracy_full"] == pytest.approx(acc)
    members = [r["test_accuracy_full"] for r in g["runs"]]
    assert c["total_run_seconds"] == pytest.approx(
        sum(r["wall_seconds"] - r["compile_seconds"] for r in g["runs"]))
    beats_best = acc - max(members) > report.MIN_TOLERANCE
    beats_median = acc - statistics.median(members) > max(
        report.MIN_TOLERANCE, max(members) - min(members))
    assert e["verdict"] == ("confirmed" if beats_best else
                            "partly confirmed" if beats_median else "not confirmed")
    assert ("within 5 minutes: yes" if c["total_run_seconds"] <= report.TIME_TARGET
            else "within 5 minutes: no") in e["verdict_text"]


def test_each_new_section_names_its_cpu_and_older_ones_are_left_as_they_were(quick):
    _, results, md = quick
    cpu = results["machine"]["cpu_detail"]
    assert cpu.startswith(results["machine"]["cpu"]) and "LLVM " in cpu
    for name in report.EXPERIMENTS:
        assert results["experiments"][name]["cpu"] == \
            f"{cpu}, {results['machine']['cores']} cores"
    assert md.count(f"UTC on an {cpu}, {results['machine']['cores']} cores") == \
        len(report.EXPERIMENTS)
    old = json.loads(json.dumps(results))  # sections from before the report recorded the CPU
    for e in old["experiments"].values():
        del e["cpu"]
    assert f"on an {cpu}" not in report.render_markdown(old)
    # the header says so when some sections name their CPU and others do not
    assert "Sections that name no CPU" not in md + report.render_markdown(old)
    for e in list(old["experiments"].values())[1:]:
        e["cpu"] = "a CPU"
    assert "Sections that name no CPU were run before" in report.render_markdown(old)
