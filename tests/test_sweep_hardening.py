"""A hostile user's sweeps (issue 30): plans that would run away, two sweeps on one folder,
files of the wrong shape, a full disk, odd addresses and output paths. Each is one line and
exit code 2 (1 for a full disk, as train), never a traceback, and nothing runs that should not.

Nothing trains: ``worker.run_config`` is replaced by :func:`fake_run`, which returns the record
a run would (the sweep's own code around it, reading, writing, locking, is real).
"""

import contextlib
import errno
import io
import json
import os
import socket
import subprocess
import sys
from unittest import mock

import pytest

import fastmlp
from fastmlp import TrainConfig
from fastmlp.cli import run_main
from fastmlp.data import BUNDLED_MNIST_DIR
from fastmlp.errors import ConfigError
from fastmlp.sweep import grid as G
from fastmlp.sweep import store
from fastmlp.sweep.command import main as sweep_main

BASE = ["--hidden", "8", "--epochs", "1", "--threads", "1", "--data-dir",
        str(BUNDLED_MNIST_DIR), "--workers", "0", "--no-plots", "--quiet"]


def fake_run(rid, config, save=None):
    """The record a run of ``config`` returns, without training (the accuracy follows the
    seed, so that rows differ)."""
    acc = 0.9 + 0.001 * config.get("seed", 0)
    history = [dict(epoch=1, loss=0.3, train_accuracy=acc, val_loss=0.3, val_accuracy=acc,
                    seconds=0.5, samples_per_second=1e5, batch_size=32, lr=0.1,
                    weight_rms=[1.0], input_path="dense")]
    summary = dict(val_accuracy=acc, test_accuracy=acc, test_accuracy_full=acc,
                   train_seconds=0.5, samples_per_second=1e5, history=history)
    return {"id": rid, "config": config, "summary": summary, "error": None}


@pytest.fixture
def runs():
    """The ids fake_run was called with, in order."""
    called = []

    def run(rid, config, save=None):
        called.append(rid)
        return fake_run(rid, config, save)

    with mock.patch("fastmlp.sweep.worker.run_config", side_effect=run):
        yield called


def cli(argv):
    """(exit code, stdout, stderr) of the sweep command."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run_main(sweep_main, argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def one_line_error(code, err, *words, exit_code=2):
    assert "Traceback" not in err, err
    assert code == exit_code, (code, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)


# --- plans that run away --------------------------------------------------------------------
def test_a_million_run_grid_is_refused_before_one_run_is_built(runs, tmp_path):
    values = ",".join(str(i) for i in range(100))
    argv = BASE + ["--grid", f"seed={values}", "--grid", f"crop={values}", "--grid",
                   f"batch-ramp={values}", "--out", str(tmp_path / "s")]
    with mock.patch.object(G, "run_id", side_effect=AssertionError("built a run")):
        code, _, err = cli(argv)
    one_line_error(code, err, "1,000,000 runs", "100 seed x 100 crop x 100 batch_ramp",
                   "--max-runs 1000000")
    assert runs == []


def test_a_hundred_million_random_samples_are_refused_before_one_is_drawn(runs, tmp_path):
    argv = BASE + ["--random", "lr=0.01:0.3:log", "--samples", "100000000", "--grid",
                   "seed=0,1", "--out", str(tmp_path / "s")]
    real, drawn = G.RandomSpec.sample, []

    def sample(self, rng):  # parsing the spec draws one point to check the field is numeric
        drawn.append(1)
        assert len(drawn) <= 1, "the plan was drawn"
        return real(self, rng)

    with mock.patch.object(G.RandomSpec, "sample", sample), \
            mock.patch.object(G, "run_id", side_effect=AssertionError("built a run")):
        code, _, err = cli(argv)
    one_line_error(code, err, "200,000,000 runs", "--max-runs")


def test_max_runs_is_the_limit_and_raises_it(runs, tmp_path):
    argv = BASE + ["--grid", "seed=0,1,2", "--grid", "crop=0,1", "--out", str(tmp_path / "s")]
    code, _, err = cli(argv + ["--max-runs", "5"])
    one_line_error(code, err, "6 runs", "limit of 5")
    code, out, err = cli(argv + ["--max-runs", "6"])
    assert code == 0, err
    assert len(runs) == 6


def test_samples_without_random_keys_is_refused_not_a_silent_loop(tmp_path):
    code, _, err = cli(BASE + ["--samples", "100000000", "--out", str(tmp_path / "s")])
    one_line_error(code, err, "--samples", "--random")


def test_the_plan_is_drawn_lazily_one_point_at_a_time():
    # iter_runs yields its first run before the later random points are drawn
    drawn = []
    spec = G.RandomSpec("lr", 0.01, 0.3, True)
    real = G.RandomSpec.sample

    def sample(self, rng):
        drawn.append(1)
        return real(self, rng)

    with mock.patch.object(G.RandomSpec, "sample", sample):
        runs = G.iter_runs(TrainConfig(hidden=(8,)), {}, [spec], samples=10**9, seed=0)
        first = next(runs)
    assert first[3] is None and len(drawn) == 1


def test_workers_are_capped_at_the_cores_and_the_memory_and_it_is_said():
    from fastmlp.sweep.api import WORKER_BYTES, cap_workers

    assert cap_workers(1000, 1, 10**6, cores=2, memory=64 * 2**30)[0] == 2
    assert cap_workers(1000, 2, 10**6, cores=8, memory=64 * 2**30)[0] == 4
    n, note = cap_workers(8, 1, 2**30, cores=64, memory=3 * 2**30)
    assert n == 3 * 2**30 // (WORKER_BYTES + 2**30) == 2
    assert note.startswith("note: --workers 8 capped at 2") and "memory" in note
    assert cap_workers(2, 1, 10**6, cores=2, memory=64 * 2**30) == (2, None)


def test_workers_1000_start_no_more_processes_than_the_cores(runs, tmp_path):
    from fastmlp.sweep import api, pool
    from fastmlp.threads import available_cores

    made = []

    def make_pool(workers, dask=None):
        made.append(workers)
        return pool.SerialPool()

    argv = [a for a in BASE if a not in ("--quiet",)]
    argv[argv.index("--workers") + 1] = "1000"
    with mock.patch.object(api, "make_pool", make_pool):
        code, out, err = cli(argv + ["--grid", "seed=" + ",".join(map(str, range(20))),
                                     "--out", str(tmp_path / "s")])
    assert code == 0, err
    assert made == [min(1000, available_cores())]
    if available_cores() < 1000:
        assert f"note: --workers 1000 capped at {made[0]}: this machine has" in out


# --- one sweep per folder -------------------------------------------------------------------
def test_a_second_sweep_on_a_folder_in_use_stops_at_once_naming_the_first(tmp_path):
    out = str(tmp_path / "s")
    argv = BASE + ["--grid", "seed=0,1", "--out", out]
    second, trained = [], []

    def run(rid, config, save=None):
        trained.append(rid)
        if not second:  # while the first sweep holds the folder, a second starts on it
            second.append(cli(argv))
        return fake_run(rid, config, save)

    with mock.patch("fastmlp.sweep.worker.run_config", side_effect=run):
        code, _, err = cli(argv)
    assert code == 0, err
    code2, _, err2 = second[0]
    one_line_error(code2, err2, "in use by another sweep", f"pid {os.getpid()}",
                   f"host {socket.gethostname()}", "started 20")
    assert len(trained) == 2  # the two runs, once each: the second sweep trained nothing
    assert not os.path.exists(os.path.join(out, "sweep.lock"))  # released


def test_a_stale_lock_of_a_dead_process_on_this_host_is_taken_over(runs, tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "sweep.lock").write_text(json.dumps(dict(pid=dead.pid, host=socket.gethostname(),
                                                    started="2026-01-01 00:00:00 UTC")))
    code, _, err = cli(BASE + ["--grid", "seed=0,1", "--out", str(out)])
    assert code == 0, err
    assert len(runs) == 2 and not (out / "sweep.lock").exists()


def test_a_lock_from_another_machine_is_never_taken_over(runs, tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "sweep.lock").write_text(json.dumps(dict(pid=1234, host="elsewhere.example",
                                                    started="2026-01-01 00:00:00 UTC")))
    code, _, err = cli(BASE + ["--grid", "seed=0,1", "--out", str(out)])
    one_line_error(code, err, "another machine", "pid 1234 on host elsewhere.example",
                   f"delete {out / 'sweep.lock'}")
    assert runs == [] and (out / "sweep.lock").exists()


def test_a_killed_holder_s_lock_is_free_again(runs, tmp_path):
    # a real holder in another process, killed with SIGKILL: its flock goes with it
    out = tmp_path / "s"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from fastmlp.sweep import lock; "
         f"lock.acquire({str(out)!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = cli(BASE + ["--grid", "seed=0", "--out", str(out)])
        one_line_error(code, err, f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    code, _, err = cli(BASE + ["--grid", "seed=0", "--out", str(out)])
    assert code == 0, err
    assert len(runs) == 1


# --- files and values of the wrong type -----------------------------------------------------
@pytest.mark.parametrize("text, words", [
    (b"[grid]\nhidden = [[100.5]]\n", ["[grid] hidden", "whole"]),
    (b"[grid]\nhidden = [100.5]\n", ["[grid] hidden", "whole"]),
    (b"[base]\nhidden = [64.9]\n", ["[base] hidden", "whole"]),
    (b"[base]\nepochs = 2.0\n", ["[base] epochs", "whole number", "write 2"]),
    (b"[grid]\nepochs = [2.5]\n", ["[grid] epochs", "whole number"]),
    (b"[grid]\nepochs = [true]\n", ["[grid] epochs", "whole number"]),
    (b"[grid]\nlr = [{a = 1}]\n", ["[grid] lr", "a number"]),
    (b"[grid]\nactivation = [1]\n", ["[grid] activation", "string"]),
    (b"[grid]\nlr = 0.1\n", ["[grid] lr", "list"]),
    (b"[base]\nnesterov = 1\n", ["[base] nesterov", "true or false"]),
    (b"[base]\npreset = 3\n", ["[base] preset"]),
    (b"grid = 5\n", ["grid must be a table"]),
    (b"base = [1, 2]\n", ["base must be a table"]),
    (b"[random]\nlr = 5\nsamples = 2\n", ["[random] lr", "LOW:HIGH"]),
    (b'[random]\nlr = "0.1:0.2"\nsamples = "x"\n', ["[random] samples"]),
    (b'[random]\nlr = "0.1:0.2"\nsamples = 2.5\n', ["[random] samples"]),
    (b'[random]\nlr = "0:inf"\nsamples = 2\n', ["lr=0:inf", "finite"]),
    (b'[random]\nlr = "nan:1"\nsamples = 2\n', ["finite"]),
    (b"[sweep]\nworkers = true\n", ["[sweep] workers"]),
    (b"[sweep]\nworkers = -1\n", ["[sweep] workers"]),
    (b"[sweep]\nthreads_per_run = 1.5\n", ["[sweep] threads_per_run"]),
    (b"[sweep]\ndask = 8786\n", ["[sweep] dask"]),
    (b"[sweep]\nout = 5\n", ["[sweep] out"]),
    (b"[sweep]\nspeed = 5\n", ["[sweep] key 'speed'"]),
    (b"[grid]\nbatch-size = [8]\nbatch_size = [16]\n", ["batch_size is given twice"]),
    (b'[base]\nepochs = "\xff"\n', ["not UTF-8"]),
    (b"\xfe\xff[grid]\n", ["not UTF-8"]),
    (b"[grid\n", ["not valid TOML"]),
])
def test_a_sweep_file_value_of_the_wrong_type_is_one_line_naming_file_and_key(
        runs, tmp_path, text, words):
    f = tmp_path / "s.toml"
    f.write_bytes(text)
    code, _, err = cli(BASE + ["--file", str(f), "--out", str(tmp_path / "o")])
    one_line_error(code, err, str(f) if b"inf" not in text else "", *words)
    assert runs == []


@pytest.mark.parametrize("args, words", [
    (["--grid", "batch-size=8,16", "--grid", "batch_size=32"], ["batch_size is given twice"]),
    (["--grid", "lr=0.1", "--grid", "lr=0.2"], ["lr is given twice"]),
    (["--random", "lr=0.1:0.2", "--random", "lr=0.3:0.4", "--samples", "2"],
     ["lr is given twice"]),
    (["--random", "lr=0:inf", "--samples", "2"], ["--random", "finite"]),
    (["--random", "lr=-inf:1", "--samples", "2"], ["--random", "finite"]),
    (["--random", "lr=nan:0.1", "--samples", "2"], ["--random", "finite"]),
    (["--random", "seed=-1e308:1e308", "--samples", "2"], ["--random", "finite"]),
    (["--random", "lr=1e400:1e401", "--samples", "2"], ["--random", "finite"]),
])
def test_a_repeated_key_or_an_infinite_bound_is_refused_not_the_last_kept(runs, tmp_path,
                                                                          args, words):
    code, _, err = cli(BASE + args + ["--out", str(tmp_path / "o")])
    one_line_error(code, err, *words)
    assert runs == []


def test_the_python_api_refuses_two_spellings_of_one_key_and_float_layer_sizes():
    with pytest.raises(ConfigError, match="batch_size is given twice"):
        fastmlp.sweep(TrainConfig(hidden=(8,)), {"batch-size": [8], "batch_size": [16]})
    with pytest.raises(ConfigError, match="whole layer sizes"):
        fastmlp.sweep(TrainConfig(hidden=(8,)), {"hidden": [[100.7]]})
    with pytest.raises(ConfigError, match="epochs is given twice"):
        fastmlp.sweep({"epochs": 1, "--epochs": 2}, {"seed": [0]})


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:notaport", "nonsense", "tcp://:8786",
                                     "tcp://host:0", "tcp://host:70000", "ftp://host:8786",
                                     "tcp://ho st:8786", ""])
def test_a_malformed_dask_address_is_one_line(runs, tmp_path, address):
    code, _, err = cli(BASE + ["--grid", "seed=0", "--dask", address, "--out",
                               str(tmp_path / "o")])
    one_line_error(code, err, "--dask", "tcp://HOST:PORT")
    assert runs == []


# --- outputs that exist as the other kind ---------------------------------------------------
@pytest.mark.parametrize("make, extra, words", [
    (lambda o: o.write_text("x"), [], ["is a file, not a folder"]),
    (lambda o: (o.mkdir(), (o / "summary.md").mkdir()), [], ["summary.md is a folder"]),
    (lambda o: (o.mkdir(), (o / "summary.csv").mkdir()), [], ["summary.csv is a folder"]),
    (lambda o: (o.mkdir(), (o / "results.jsonl").mkdir()), [], ["results.jsonl is a folder"]),
    (lambda o: (o.mkdir(), (o / "sweep.lock").mkdir()), [], ["sweep.lock is a folder"]),
    (lambda o: (o.mkdir(), (o / "models").write_text("x")), ["--save-models"],
     ["models is a file"]),
    (lambda o: (o.mkdir(), (o / "plot_crop.png").mkdir()), ["--grid", "crop=0,1"],
     ["plot_crop.png is a folder"]),
])
def test_an_output_that_exists_as_the_other_kind_is_refused_before_any_run(
        runs, tmp_path, make, extra, words):
    out = tmp_path / "o"
    make(out)
    argv = [a for a in BASE if a != "--no-plots"] + ["--grid", "seed=0"] + extra
    code, _, err = cli(argv + ["--out", str(out)])
    one_line_error(code, err, *words)
    assert runs == []


# --- a full disk ----------------------------------------------------------------------------
def test_a_full_disk_during_a_sweep_is_exit_1_keeping_the_runs_done(runs, tmp_path):
    out = tmp_path / "o"
    real = store.append_record
    calls = []

    def append(path, rec):
        calls.append(rec["id"])
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, rec)

    with mock.patch.object(store, "append_record", append):
        code, _, err = cli(BASE + ["--grid", "seed=0,1,2,3", "--out", str(out)])
    one_line_error(code, err, "No space left on device", "the 2 run(s) recorded before",
                   "rerun", exit_code=1)
    records, bad = store.read_records(out / "results.jsonl")
    assert list(records) == calls[:2] and bad == 0
    assert not (out / "sweep.lock").exists()
    code, _, err = cli(BASE + ["--grid", "seed=0,1,2,3", "--out", str(out)])  # resumes
    assert code == 0, err
    assert runs == calls[:3] + [calls[2], runs[-1]] and len(set(runs)) == 4


def test_a_full_disk_while_writing_the_summaries_is_exit_1(runs, tmp_path):
    with mock.patch.object(store, "atomic_write",
                           side_effect=OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))):
        code, _, err = cli(BASE + ["--grid", "seed=0,1", "--out", str(tmp_path / "o")])
    one_line_error(code, err, "summaries", "No space left on device", exit_code=1)
    assert len(store.read_records(tmp_path / "o" / "results.jsonl")[0]) == 2


# --- results.jsonl edited by hand -----------------------------------------------------------
def _sweep_once(tmp_path, runs):
    out = tmp_path / "o"
    argv = BASE + ["--grid", "seed=0,1", "--out", str(out)]
    code, _, err = cli(argv)
    assert code == 0, err
    runs.clear()
    path = out / "results.jsonl"
    return argv, path, [json.loads(x) for x in path.read_text().splitlines()]


def _write(path, recs):
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


@pytest.mark.parametrize("edit, words", [
    (lambda r: r.update(id=5), ["its id must be a string"]),
    (lambda r: r.update(id=["a"]), ["its id must be a string"]),
    (lambda r: r.update(config=[1, 2]), ["its config must be a table"]),
    (lambda r: r["summary"].pop("val_accuracy"), ["no number for val_accuracy"]),
    (lambda r: r["summary"].update(train_seconds="fast"), ["no number for train_seconds"]),
    (lambda r: r.update(summary=None), ["needs a summary"]),
    (lambda r: r.update(error=3), ["its error must be a string"]),
    (lambda r: r["summary"].update(history=[{"epoch": 1}]), ["history"]),
    (lambda r: r.pop("config"), ["it has no config"]),
])
def test_a_results_line_of_the_wrong_shape_is_one_line_naming_the_file_and_line(
        runs, tmp_path, edit, words):
    argv, path, recs = _sweep_once(tmp_path, runs)
    edit(recs[1])
    _write(path, recs)
    code, _, err = cli(argv)
    one_line_error(code, err, f"{path} line 2", *words)
    assert runs == []


def test_a_results_line_whose_config_was_edited_but_not_its_id_is_said_and_run_again(
        runs, tmp_path):
    argv, path, recs = _sweep_once(tmp_path, runs)
    recs[1]["config"]["lr"] = 0.5  # a hand edit: the summary no longer belongs to this id
    recs[1]["summary"]["val_accuracy"] = 0.999
    _write(path, recs)
    code, out, err = cli([a for a in argv if a != "--quiet"])
    assert code == 0, err
    assert f"note: {path} line(s) 2: the id is not the hash of the config" in out
    assert runs == [recs[1]["id"]]  # that run again, not the edited line's numbers
    records, bad = store.read_records(path)
    assert records[recs[1]["id"]]["config"]["lr"] != 0.5 and bad == 1
    assert "99.90" not in (path.parent / "summary.md").read_text()
