"""A sweep against the same runs one after another (issue 13's benchmark; not a test).

    python benchmarks/sweep_vs_serial.py                 # the 12 runs of the issue
    python benchmarks/sweep_vs_serial.py --workers 1 --threads-per-run 2
    python benchmarks/sweep_vs_serial.py --quick         # 4 tiny runs: checks the script works

The 12 runs: the default network with ``crop=0,2`` x ``activation=relu,shifted_relu:0.5`` x
``seed=0,1,2``. First ``fastmlp.sweep`` runs them (workers and threads per run as the sweep
picks them, or as given), then the same 12 configurations run one after another as
``python -m fastmlp.train --threads 2`` processes. Both must finish every run without an
error (validated before anything is reported); the script prints both wall times (the sweep's
includes starting its workers and warming Numba's cache; the serial one includes each process's
start-up, as a user running them by hand would see), their ratio, and peak memory:

- one run: the largest ``peak_rss_mb`` (the process's VmHWM) among the serial runs;
- the sweep: this process's VmHWM (the sweep's main process) plus, for each worker, the
  largest ``ru_maxrss`` of this process's waited-for children (``RUSAGE_CHILDREN``, read after
  the sweep and before the serial runs start: the largest worker). That sum is an upper bound
  of the sweep's simultaneous total (every worker counted at the largest one's peak).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import fastmlp
from fastmlp import TrainConfig
from fastmlp.memory import peak_rss_mb

GRID = {"crop": [0, 2], "activation": ["relu", "shifted_relu:0.5"], "seed": [0, 1, 2]}
QUICK = dict(base={"hidden": (16,), "epochs": 1}, seeds=[0])


def train_argv(cfg, threads):
    argv = ["--crop", str(cfg["crop"]), "--activation", cfg["activation"], "--seed",
            str(cfg["seed"]), "--threads", str(threads)]
    if cfg["hidden"] != list(TrainConfig().hidden):
        argv += ["--hidden", ",".join(map(str, cfg["hidden"]))]
    if cfg["epochs"] != TrainConfig().epochs:
        argv += ["--epochs", str(cfg["epochs"])]
    return argv


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="4 tiny runs, to check the script")
    p.add_argument("--workers", type=int, help="the sweep's workers (default: its own)")
    p.add_argument("--threads-per-run", type=int, help="the sweep's threads per run")
    p.add_argument("--serial-threads", type=int, default=2, help="threads of each serial run")
    args = p.parse_args()
    grid = dict(GRID)
    base = TrainConfig()
    if args.quick:
        base = TrainConfig(**QUICK["base"])
        grid["seed"] = QUICK["seeds"]

    with tempfile.TemporaryDirectory() as tmp:
        info = {}
        t0 = time.perf_counter()
        rows = fastmlp.sweep(base, grid, out=os.path.join(tmp, "sweep"), workers=args.workers,
                             threads_per_run=args.threads_per_run, plots=False,
                             on_start=info.update)
        sweep_wall = time.perf_counter() - t0
        worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        parent_peak = peak_rss_mb()
        failed = [r for r in rows if r["error"]]
        if failed or len(rows) != len(grid["crop"]) * len(grid["activation"]) * len(grid["seed"]):
            sys.exit(f"sweep failed: {len(rows)} rows, errors: {[r['error'] for r in failed]}")

        serial, t0 = [], time.perf_counter()
        for i, r in enumerate(rows):
            path = os.path.join(tmp, f"serial{i}.json")
            subprocess.run([sys.executable, "-m", "fastmlp.train", "--quiet", "--metrics-json",
                            path, *train_argv(r["config"], args.serial_threads)], check=True,
                           stdout=subprocess.DEVNULL)
            with open(path) as f:
                serial.append(json.load(f))
        serial_wall = time.perf_counter() - t0

    one_run = max(s["peak_rss_mb"] for s in serial)
    sweep_total = parent_peak + info["workers"] * worker_peak
    acc = statistics.median(r["summary"]["test_accuracy_full"] for r in rows)
    acc_serial = statistics.median(s["test_accuracy_full"] for s in serial)
    print(f"{len(rows)} runs; sweep: {info['workers']} workers x {info['threads']} threads "
          f"({info['reason']}); serial: python -m fastmlp.train --threads "
          f"{args.serial_threads}, one after another")
    print(f"median full-test accuracy: sweep {100 * acc:.2f}%, serial {100 * acc_serial:.2f}%")
    print(f"wall: sweep {sweep_wall:.1f} s, serial {serial_wall:.1f} s, serial / sweep = "
          f"{serial_wall / sweep_wall:.2f}x (issue 13 asks >= 1.6x)")
    print(f"peak memory: one run {one_run:.0f} MB (largest VmHWM of the serial runs); sweep "
          f"{sweep_total:.0f} MB = main process {parent_peak:.0f} MB + {info['workers']} x "
          f"largest worker {worker_peak:.0f} MB (ru_maxrss), {sweep_total / one_run:.2f}x one "
          "run (issue 13 asks <= 2x)")


if __name__ == "__main__":
    main()
