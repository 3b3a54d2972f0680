
"""``python -m fastmlp.report``: run the chosen experiments and write the report."""

import argparse
import datetime
import json
import os
import sys
import time

from ..errors import ConfigError, DivergenceError
from ..sweep.api import SweepInterrupted
from .claims import EXPERIMENT_FUNCTIONS
from .render import machine_info, write_report
from .runs import Context, RunFailed
from .settings import CLAIMS, EXPERIMENTS, PLOT_NAMES, TITLES


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m fastmlp.report",
        description="Check the claims fastmlp grew from on real data and write RESULTS.md, "
                    "results.json and plots. The full run trains 125 networks (about an hour on "
                    "two cores).")
    p.add_argument("--quick", action="store_true",
                   help="a tiny version for CI: one seed, 1-2 epochs, small networks, one "
                        "thread (under a minute); its verdicts are not about the claims")
    p.add_argument("--out", default="docs",
                   help="output directory (default: docs); a report never replaces results "
                        "of the other mode there without --replace")
    p.add_argument("--only", default=None,
                   help="comma-separated experiments to run, of: " + ", ".join(EXPERIMENTS)
                        + "; the others' results are kept from OUT/results.json if it was made "
                          "in the same mode")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per compared configuration (default 3, or 1 with --quick); "
                        "the Fashion-MNIST target is one run")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes for the runs (default: as python -m fastmlp.sweep "
                        "picks them for each experiment's widest network)")
    p.add_argument("--runs", metavar="DIR", default=None,
                   help="where the runs are kept and resumed from (default: OUT/runs/MODE-"
                        "VERSION-COMMIT, so other code does not reuse them)")
    p.add_argument("--replace", action="store_true",
                   help="write OUT/RESULTS.md and results.json even where they hold results "
                        "this report would drop: another mode's (a --quick report over the "
                        "full one, or the reverse), or a results.json that cannot be read")
    p.add_argument("--fresh", action="store_true",
                   help="ignore the runs kept from before (they are set aside as "
                        "results.jsonl.old) and train everything again")
    return p


def _runs_dir(args, mode, machine):
    if args.runs:
        return args.runs
    commit = (machine.get("git_commit") or "nogit").replace("-dirty", "")
    return os.path.join(args.out, "runs", f"{mode}-{machine['fastmlp']}-{commit}")


def _set_aside(runs_dir):
    """--fresh: every kept results.jsonl under ``runs_dir`` renamed to results.jsonl.old."""
    for folder, _, files in os.walk(runs_dir):
        if "results.jsonl" in files:
            path = os.path.join(folder, "results.jsonl")
            os.replace(path, path + ".old")


def _read_previous(out):
    """OUT/results.json as a dict, None if there is none, or a ConfigError-worthy reason."""
    path = os.path.join(out, "results.json")
    if not os.path.lexists(path):
        return None, None
    try:
        with open(path, encoding="utf-8") as f:
            prev = json.load(f)
    except (OSError, ValueError) as exc:
        return None, f"{path} cannot be read ({getattr(exc, 'strerror', None) or exc})"
    if not isinstance(prev, dict) or not isinstance(prev.get("experiments"), dict) or \
            prev.get("mode") not in ("quick", "full"):
        return None, f"{path} is not a report's results (no mode and experiments)"
    return prev, None


def check_not_dropping(out, mode, replace):
    """Raise ConfigError, before anything runs, if writing a ``mode`` report into ``out`` would
    drop results it holds that this run does not redo: another mode's, or files it cannot
    read (then it cannot keep what they hold). ``replace`` allows it."""
    from ..sweep.api import check_outputs

    check_outputs(out, ["results.json", "RESULTS.md"] + sorted(PLOT_NAMES.values()), ["runs"])
    if replace:
        return
    prev, problem = _read_previous(out)
    md = os.path.join(out, "RESULTS.md")
    how = "write this report elsewhere with --out DIR, or give --replace to overwrite"
    if problem:
        raise ConfigError(f"{problem}; a report would replace it: {how} it")
    if prev is None and os.path.exists(md):
        raise ConfigError(f"{md} exists without the results.json it is written from; a report "
                          f"would replace it: {how} it")
    if prev is not None and prev["mode"] != mode:
        n = len(prev["experiments"])
        raise ConfigError(f"{os.path.join(out, 'results.json')} holds {prev['mode']}-mode "
                          f"results ({n} experiment(s)); this {mode} report would replace "
                          f"them: {how} them")


def _previous(out, mode):
    """The experiments of OUT/results.json if it was made in ``mode``, each with the commit it
    was run at (older files name it once, for all, in their machine record)."""
    prev, _ = _read_previous(out)
    if prev is None or prev.get("mode") != mode:
        return {}
    commit = (prev.get("machine") or {}).get("git_commit")
    experiments = {n: e for n, e in prev["experiments"].items() if isinstance(e, dict)}
    for e in experiments.values():
        e.setdefault("git_commit", commit)
    return experiments


def main(argv=None):
    args = build_parser().parse_args(argv)
    names = list(EXPERIMENTS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in EXPERIMENTS]
        if unknown or not names:
            raise ConfigError(f"unknown experiment(s) {', '.join(unknown) or '(none)'}; choose "
                              f"from {', '.join(EXPERIMENTS)}")
    mode = "quick" if args.quick else "full"

    def log(msg):
        print(msg, flush=True)

    if args.workers is not None and args.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {args.workers}")
    check_not_dropping(args.out, mode, args.replace)
    machine = machine_info()
    runs_dir = _runs_dir(args, mode, machine)
    if args.fresh:
        _set_aside(runs_dir)
    ctx = Context(quick=args.quick, seeds=args.seeds, log=log, runs_dir=runs_dir,
                  workers=args.workers)
    experiments = _previous(args.out, mode) if args.only else {}
    t_all = time.perf_counter()
    try:
        for name in names:
            log(f"[{name}] {TITLES[name]}")
            t0 = time.perf_counter()
            total0, kept0 = ctx.runs_total, ctx.runs_kept
            try:
                res = EXPERIMENT_FUNCTIONS[name](ctx)
            except (DivergenceError, RunFailed) as exc:  # a measurement too: report it, go on
                what = "a run diverged" if isinstance(exc, DivergenceError) else "a run failed"
                res = dict(claim=CLAIMS[name], verdict="failed",
                           verdict_text=f"{what}: {' '.join(str(exc).split())}", command="",
                           rule="", columns=[], rows=[], groups=[])
            total = ctx.runs_total - total0
            res.update(name=name, mode=mode, seconds=time.perf_counter() - t0, n_runs=total,
                       runs_kept=ctx.runs_kept - kept0,
                       git_commit=machine["git_commit"],
                       cpu=f"{machine['cpu_detail']}, {machine['cores']} cores",
                       date=datetime.datetime.now(datetime.timezone.utc).strftime(
                           "%Y-%m-%d %H:%M UTC"))
            experiments[name] = res
            kept = f", {res['runs_kept']} of {total} runs kept" if res["runs_kept"] else ""
            log(f"[{name}] {res['verdict']}: {res['verdict_text']} ({res['seconds']:.0f} s{kept})")
    except SweepInterrupted as stop:
        print(f"stopped: the finished runs are kept in {runs_dir}; rerun the same command to "
              f"continue ({stop.abandoned} run(s) in progress were stopped)", file=sys.stderr)
        return 130
    finally:
        ctx.close()
    results = dict(report_version=1, mode=mode, seeds=ctx.n_seeds, machine=machine,
                   experiments={n: experiments[n] for n in EXPERIMENTS if n in experiments})
    write_report(results, args.out)
    if not results["plots"]["available"]:
        log(results["plots"]["note"])
    log(f"wrote {os.path.join(args.out, 'RESULTS.md')} and results.json in "
        f"{time.perf_counter() - t_all:.0f} s")
    return 0


