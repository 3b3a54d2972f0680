"""Run a sweep file one run at a time, each run under its own exclusive hold of a lock file.

    python benchmarks/sweeps/locked.py FILE.toml [--lock /work/cpu.lock] [-- SWEEP FLAGS]

On a shared machine a sweep of several minutes per run should not hold the CPU for all its
runs at once: this runs ``python -m fastmlp.sweep --file FILE`` once per grid point (the point
given as ``--grid KEY=VALUE`` flags, each run under ``flock -x LOCK`` when --lock is given, so
its wall time is measured alone), then once more for the whole grid, which finds every run in
results.jsonl and only writes the summary table. Rerunning resumes, as the sweep does.
Random points ([random]) are not supported: grids only. Flags after ``--`` go to every sweep
call (``-- --save-models`` keeps each run's weights for benchmarks/sweeps/ensemble.py).
"""

import argparse
import itertools
import json
import os
import subprocess
import sys

from fastmlp.sweep.grid import format_value, load_sweep_file


def _done(out, keys, values):
    """Whether OUT/results.jsonl holds a finished run with these grid values (the rest of its
    settings are the file's base, which the sweep itself checks: this only saves a lock turn)."""
    try:
        with open(os.path.join(out, "results.jsonl")) as f:
            lines = f.readlines()
    except OSError:
        return False
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not rec.get("error") and all(
                format_value(rec["config"].get(k.replace("-", "_"))) == format_value(v)
                for k, v in zip(keys, values)):
            return True
    return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file")
    p.add_argument("--lock", help="lock file held exclusively (flock -x) during each run")
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    doc = load_sweep_file(args.file)
    if doc["random"]:
        sys.exit("locked.py: grids only; this file has [random] keys")
    keys = list(doc["grid"])
    sweep = [sys.executable, "-m", "fastmlp.sweep", "--file", args.file, "--no-plots", *extra]
    for values in itertools.product(*(doc["grid"][k] for k in keys)):
        point = [a for k, v in zip(keys, values) for a in ("--grid", f"{k}={format_value(v)}")]
        if _done(doc["sweep"].get("out", ""), keys, values):
            continue
        lock = ["flock", "-x", args.lock] if args.lock else []
        print(" ".join(point), flush=True)
        subprocess.run(lock + sweep + point, check=True)
    missing = [v for v in itertools.product(*(doc["grid"][k] for k in keys))
               if not _done(doc["sweep"].get("out", ""), keys, v)]
    if missing:  # never train outside the lock: the file changed, or a run failed
        sys.exit(f"locked.py: {len(missing)} run(s) not done; rerun to do them")
    subprocess.run(sweep, check=True)


if __name__ == "__main__":
    main()
