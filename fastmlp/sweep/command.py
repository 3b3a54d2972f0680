"""``python -m fastmlp.sweep``: the command line over :func:`fastmlp.sweep.api.sweep`."""

import argparse
import os
import sys

from ..errors import ConfigError
from . import grid as G
from .api import SMALL_MAX_WIDTH

_PER_RUN = ("save", "resume", "metrics_json", "history_csv")
_LIST_HELP = ("values are separated by commas; the layers of one hidden value by '/': "
              "--grid hidden=100,256/128 is (100,) and (256,128)")


def build_parser():
    from ..train import build_parser as train_parser

    p = train_parser()
    p.prog = "python -m fastmlp.sweep"
    p.description = (
        "Train many configurations, in parallel, and tabulate them. Every train flag sets the "
        "base configuration; each --grid KEY=V1,V2,... sweeps a TrainConfig field (flag or "
        "field spelling: batch-size or batch_size); the runs are the cross product, times "
        "--samples random points of the --random keys. " + _LIST_HELP + ". Results go to "
        "OUT/results.jsonl as runs finish; rerunning the same command resumes.")
    g = p.add_argument_group("sweep")
    g.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                   help="a swept field and its values; repeat for more fields. " + _LIST_HELP)
    g.add_argument("--random", action="append", metavar="KEY=LOW:HIGH[:log]",
                   help="sample KEY uniformly (log-uniformly with :log) in [LOW, HIGH]; whole "
                        "numbers for integer fields")
    g.add_argument("--samples", type=int, help="random points (each run at every grid point)")
    g.add_argument("--sweep-seed", type=int, help="seed of the random points (default 0)")
    g.add_argument("--file", metavar="TOML",
                   help="a sweep file with [base], [grid], [random] and [sweep] tables; flags "
                        "given here override it")
    g.add_argument("--out", metavar="DIR", help="folder of results.jsonl, summary.csv, "
                   "summary.md and plots (required, here or in the file's [sweep])")
    g.add_argument("--workers", type=int,
                   help="local worker processes; 0 runs in this process (default: see "
                        "--threads-per-run)")
    g.add_argument("--threads-per-run", type=int,
                   help="threads of each run (default: 1 per run and a worker per core for "
                        f"hidden layers <= {SMALL_MAX_WIDTH} wide, else 1 worker with every "
                        "core)")
    g.add_argument("--dask", metavar="ADDRESS",
                   help="send the runs to this dask.distributed scheduler (tcp://host:8786)")
    g.add_argument("--retry-errors", action="store_true",
                   help="on resume, run the failed runs again")
    g.add_argument("--save-models", action="store_true",
                   help="keep every run's final weights in OUT/models/<id>.npz (a checkpoint: "
                        "python -m fastmlp.evaluate reads it)")
    g.add_argument("--ensemble", action="store_true",
                   help="also score each configuration's seeds as an ensemble (the mean of "
                        "their probabilities) in the summaries; keeps the models as "
                        "--save-models does")
    g.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    g.add_argument("--max-runs", type=int, metavar="N",
                   help=f"refuse a plan of more than N runs, counted before it is built "
                        f"(default {G.MAX_RUNS:,})")
    return p


_SWEEP_DESTS = ("grid", "random", "samples", "sweep_seed", "file", "out", "workers",
                "threads_per_run", "dask", "retry_errors", "save_models", "ensemble", "no_plots",
                "max_runs")


def parse(argv):
    """``(base TrainConfig, grid, random specs, options dict, quiet)`` from the command line."""
    from ..train import config_from_args

    args = build_parser().parse_args(argv)
    opts = vars(args)
    for dest in _PER_RUN:
        if dest in opts:
            raise ConfigError(f"--{dest.replace('_', '-')} is per run; a sweep writes every "
                              "run's metrics to OUT/results.jsonl")
    doc = G.load_sweep_file(opts["file"]) if "file" in opts else \
        {"base": {}, "grid": {}, "random": {}, "sweep": {}}
    train_opts = {k: v for k, v in opts.items() if k not in _SWEEP_DESTS}
    for key, value in G.merge_keys(doc["base"], "[base] key", ("preset",)).items():
        train_opts.setdefault(key, value if key == "preset" else G.coerce(key, value))
    base = config_from_args(argparse.Namespace(**train_opts))
    grid = {k: [G.coerce(k, v) for v in vs]
            for k, vs in G.merge_keys(doc["grid"], "[grid] key").items()}
    given = {}  # a flag's key replaces the file's; a key twice among the flags is refused
    for text in opts.get("grid", []):
        name, values = G.parse_grid_arg(text)
        if name in given:
            raise ConfigError(f"--grid {name} is given twice (--grid {given[name]!r} and "
                              f"--grid {text!r}); give each key once with all its values")
        given[name] = text
        grid[name] = values
    rnd = dict(doc["random"])
    samples = opts.get("samples", rnd.pop("samples", 0))
    seed = opts.get("sweep_seed", rnd.pop("seed", 0))
    random = {}
    for key, spec in G.merge_keys(rnd, "[random] key").items():
        r = G.parse_random_arg(f"{key}={spec}")
        random[r.name] = r
    given.clear()
    for text in opts.get("random", []):
        r = G.parse_random_arg(text)
        if r.name in given:
            raise ConfigError(f"--random {r.name} is given twice (--random {given[r.name]!r} "
                              f"and --random {text!r}); give each key once")
        given[r.name] = text
        random[r.name] = r
    sw = doc["sweep"]
    out = opts.get("out", sw.get("out"))
    if out is None:
        raise ConfigError("give --out DIR: the folder for the sweep's results")
    options = dict(random=list(random.values()), samples=samples, seed=seed, out=out,
                   workers=opts.get("workers", sw.get("workers")),
                   threads_per_run=opts.get("threads_per_run", sw.get("threads_per_run")),
                   dask=opts.get("dask", sw.get("dask")),
                   retry_errors=opts.get("retry_errors", False),
                   save_models=opts.get("save_models", False),
                   ensemble=opts.get("ensemble", False),
                   plots=not opts.get("no_plots", False),
                   max_runs=opts.get("max_runs", sw.get("max_runs", G.MAX_RUNS)))
    for key, low in (("workers", 0), ("threads_per_run", 1), ("samples", 0),
                     ("max_runs", 1)):
        v = options[key]
        if v is not None and (not G.is_whole(v) or v < low):
            raise ConfigError(f"--{key.replace('_', '-')} must be a whole number >= "
                              f"{low}, got {v!r}")
    return base, grid, options, opts.get("quiet", False)


def _duration(seconds):
    seconds = round(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _changes_text(changes):
    return " ".join(f"{k}={G.format_value(v)}" for k, v in changes.items()) or "(base)"


def main(argv=None):
    from .api import SweepInterrupted, sweep
    from .store import METRICS

    base, grid, options, quiet = parse(argv)
    width = [1]

    def log(msg):
        if not quiet:
            print(msg, flush=True)

    def on_start(info):
        width[0] = len(str(info["total"]))
        if info.get("note"):
            log(info["note"])
        where = (f"on the Dask cluster at {info['dask']}, {info['threads']} thread(s) per run"
                 if info["dask"] else
                 f"in this process, {info['threads']} thread(s) per run" if not info["workers"]
                 else
                 f"{info['workers']} worker(s) x {info['threads']} thread(s) per run "
                 f"({info['reason']}; change with --workers/--threads-per-run)")
        log(f"sweep: {info['total']} runs, {info['pending']} to do"
            + (f", {info['done']} already in {info['path']}" if info["done"] else "")
            + (f", {info['invalid']} invalid combinations recorded as errors"
               if info["invalid"] else "") + f"; {where}")
        if info["bad_lines"]:
            log(f"note: skipped {info['bad_lines']} unreadable line(s) in {info['path']} "
                "(a torn write); their runs run again")
        if info.get("mismatched"):
            lines = ", ".join(map(str, info["mismatched"]))
            log(f"note: {info['path']} line(s) {lines}: the id is not the hash of the config "
                "(edited by hand?); not used (a run no other line records runs again)")

    def on_result(rec, progress):
        n = f"[{progress['done']:{width[0]}d}/{progress['total']}]"
        what = _changes_text(progress["changes"])
        if rec.get("error"):
            line = f"{n} {what}: error: {rec['error']}"
        else:
            s = rec["summary"]
            accs = "  ".join(f"{name} {100 * s[key]:.2f}%" for name, key in METRICS)
            line = f"{n} {what}: {accs}  {s['train_seconds']:.1f} s"
        if progress["eta"] is not None and progress["done"] < progress["total"]:
            line += f"  (about {_duration(progress['eta'])} left)"
        log(line)

    try:
        rows = sweep(base, grid, on_start=on_start, on_result=on_result, **options)
    except SweepInterrupted as stop:
        out = options["out"]
        print(f"stopped: {len(stop.rows)} of {stop.total} runs are finished and recorded in "
              f"{os.path.join(out, 'results.jsonl')}; {stop.abandoned} run(s) in progress were "
              "stopped. Rerun the same command to do the rest.", file=sys.stderr)
        return 130
    from .store import summary_markdown

    print(summary_markdown(rows), end="")
    out = options["out"]
    files = ["results.jsonl", "summary.csv", "summary.md"]
    files += [os.path.basename(p) for p in getattr(rows, "plots", [])]
    failed = sum(bool(r.get("error")) for r in rows)
    print(f"{len(rows)} runs ({failed} failed); wrote {', '.join(files)} in {out}")
    return 0
