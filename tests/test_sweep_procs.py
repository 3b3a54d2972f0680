"""The sweep as a process: kill -9 of its main process then a rerun (every configuration
exactly once, no worker left alive), Ctrl-C and SIGTERM (a clean stop that says what
finished), and a sweep through a Dask scheduler and worker on 127.0.0.1."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import fastmlp
from fastmlp import TrainConfig
from fastmlp.data import BUNDLED_MNIST_DIR
from fastmlp.sweep import store

TINY = dict(hidden=(16,), epochs=2, threads=1, data_dir=str(BUNDLED_MNIST_DIR))
SEEDS = [0, 1, 2, 3, 4, 5]
ARGV = ["--hidden", "16", "--epochs", "2", "--data-dir", str(BUNDLED_MNIST_DIR),
        "--grid", "seed=" + ",".join(map(str, SEEDS)), "--workers", "2",
        "--threads-per-run", "1", "--no-plots"]


def children(pid):
    """Pids whose parent is ``pid`` (from /proc; no psutil)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                out.append(int(name))
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def lines(path):
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def start_sweep(out):
    """The sweep as a process, once its workers run and a first run is recorded; and the
    workers' pids."""
    proc = subprocess.Popen([sys.executable, "-m", "fastmlp.sweep", *ARGV, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(children(proc.pid)) >= 2 and lines(out / "results.jsonl"), 120,
                   "the first finished run")
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc, children(proc.pid)


@pytest.mark.slow
def test_kill_9_then_rerun_gives_every_configuration_exactly_once(tmp_path):
    results = tmp_path / "results.jsonl"
    proc, workers = start_sweep(tmp_path)
    try:
        done_at_kill = len(lines(results))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert 1 <= done_at_kill < len(SEEDS), "the sweep had finished before the kill"
    wait_until(lambda: not any(alive(p) for p in workers), 10, "the workers to die")
    size = results.stat().st_size
    time.sleep(1.0)
    assert results.stat().st_size == size  # nothing writes after the sweep is gone

    recorded = len(lines(results))  # runs in flight at the kill may have landed after the count
    ran = []
    rows = fastmlp.sweep(TrainConfig(**TINY), {"seed": SEEDS}, out=str(tmp_path), workers=0,
                         threads_per_run=1, plots=False,
                         on_result=lambda rec, p: ran.append(rec["config"]["seed"]))
    ids = [json.loads(x)["id"] for x in lines(results)]
    assert len(ids) == len(SEEDS) == len(set(ids)) == len(rows)
    assert sorted(r["config"]["seed"] for r in rows) == SEEDS
    assert len(ran) == len(SEEDS) - recorded  # the rerun ran only the missing ones


@pytest.mark.parametrize("sig", [signal.SIGTERM,
                                 pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
                         ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_ctrl_c_stop_cleanly_and_say_what_finished(tmp_path, sig):
    results = tmp_path / "results.jsonl"
    proc, workers = start_sweep(tmp_path)
    try:
        os.kill(proc.pid, sig)  # a terminal's Ctrl-C is SIGINT
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    n = len(lines(results))
    assert n < len(SEEDS), "the sweep had finished before the signal"
    assert f"stopped: {n} of {len(SEEDS)} runs are finished and recorded in {results}" in err
    assert "Traceback" not in err
    assert (tmp_path / "summary.md").exists()
    records, bad = store.read_records(results)
    assert bad == 0 and all(r["error"] is None for r in records.values())
    wait_until(lambda: not any(alive(p) for p in workers), 10, "the workers to exit")


# --- Dask ------------------------------------------------------------------------------------
def _start(args, log):
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and one single-threaded worker on 127.0.0.1; their address."""
    pytest.importorskip("distributed")
    sched_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "dask.log", "wb")
    procs = []
    try:
        procs.append(_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                             "--port", "0", "--no-dashboard", "--scheduler-file",
                             str(sched_file)], log))
        wait_until(lambda: sched_file.exists() and sched_file.stat().st_size, 60,
                   "the Dask scheduler")
        procs.append(_start(["distributed.cli.dask_worker", "--scheduler-file",
                             str(sched_file), "--host", "127.0.0.1", "--nthreads", "1",
                             "--nworkers", "1", "--no-dashboard"], log))
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for p in procs:  # each in its own session: end it and whatever it started
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        log.close()


@pytest.mark.slow
def test_a_sweep_through_a_dask_cluster_records_and_resumes_like_a_local_one(dask_cluster,
                                                                              tmp_path):
    base = TrainConfig(**{**TINY, "epochs": 1})
    rows = fastmlp.sweep(base, {"seed": [0, 1]}, out=str(tmp_path), dask=dask_cluster,
                         plots=False)
    assert sorted(r["config"]["seed"] for r in rows) == [0, 1]
    assert all(r["error"] is None and r["summary"]["val_accuracy"] > 0.8 for r in rows)
    assert all(r["config"]["threads"] == 1 for r in rows)
    local = fastmlp.sweep(base, {"seed": [1]}, workers=0, threads_per_run=1)
    remote = next(r for r in rows if r["config"]["seed"] == 1)
    assert remote["id"] == local[0]["id"]
    assert remote["summary"]["val_loss"] == local[0]["summary"]["val_loss"]
    assert len(lines(tmp_path / "results.jsonl")) == 2
    assert (tmp_path / "summary.md").exists()
    ran = []
    fastmlp.sweep(base, {"seed": [0, 1]}, out=str(tmp_path), dask=dask_cluster, plots=False,
                  on_result=lambda rec, p: ran.append(rec))
    assert ran == [] and len(lines(tmp_path / "results.jsonl")) == 2  # resumed: nothing to do


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_a_run_is_being_recorded_waits_until_it_is_counted(tmp_path, monkeypatch,
                                                                          sig):
    # a signal right after a record reaches results.jsonl (where the test above can land when
    # the machine is busy): the run must be counted and reported as finished too, not only be
    # in the file
    from fastmlp.sweep.api import SweepInterrupted

    written = store.append_record

    def append_then_signal(path, record):
        written(path, record)
        os.kill(os.getpid(), sig)

    monkeypatch.setattr(store, "append_record", append_then_signal)
    reported = []
    with pytest.raises(SweepInterrupted) as stop:
        fastmlp.sweep(TrainConfig(**{**TINY, "epochs": 1}), {"seed": SEEDS[:2]},
                      out=str(tmp_path), workers=0, threads_per_run=1, plots=False,
                      on_result=lambda rec, progress: reported.append(progress["done"]))
    assert len(lines(tmp_path / "results.jsonl")) == 1
    assert [r["config"]["seed"] for r in stop.value.rows] == SEEDS[:1]
    assert reported == [1]
