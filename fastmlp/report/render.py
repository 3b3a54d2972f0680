"""The machine line, results.json and RESULTS.md, from the experiments' result dicts."""

import datetime
import json
import math
import os
import platform
import subprocess

import numpy as np

from .. import __version__
from ..files import atomic_write
from .plots import write_plots
from .runs import _duration
from .settings import CLAIMS, EXPERIMENTS, NOTES, TITLES


def machine_info():
    """CPU model, cores, versions, git commit and date of this run."""
    import numba

    from ..threads import available_cores

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = None
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, timeout=5,
                             capture_output=True, text=True)
        if rev.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                   cwd=here, timeout=5, capture_output=True, text=True)
            commit = rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return dict(cpu=cpu, cpu_detail=_cpu_detail(cpu), cores=os.cpu_count(),
                available_cores=available_cores(),
                platform=platform.platform(), python=platform.python_version(),
                numpy=np.__version__, numba=numba.__version__, fastmlp=__version__,
                git_commit=commit,
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def _cpu_detail(cpu):
    """``cpu`` (the model name, which reads "AMD EPYC" on every Zen) as a reader can place it:
    with LLVM's name for the host CPU (what Numba compiles for: znver4 is a Zen 4) and whether
    it has AVX-512, e.g. "AMD EPYC Zen 4 (LLVM znver4, AVX-512)"."""
    import llvmlite.binding as llvm

    name = llvm.get_host_cpu_name()
    features = llvm.get_host_cpu_features()
    wide = ("AVX-512" if features.get("avx512f") else "AVX2" if features.get("avx2") else
            "no AVX2")
    zen = f" Zen {name[len('znver'):]}" if name.startswith("znver") else ""
    return f"{cpu}{zen} (LLVM {name}, {wide})"


def machine_line(m, experiments=None):
    """The header's machine line; when the experiments were run at different commits (a
    report rerun with --only keeps the others' results), it says so instead of naming one."""
    commits = {e.get("git_commit") for e in (experiments or {}).values()} - {None}
    if len(commits) > 1:
        commit = (" (sections run at different commits: " + ", ".join(
            f"git {c}" for c in sorted(commits)) + "; each section names its own)")
    else:
        commit = f" (git {m['git_commit']})" if m.get("git_commit") else ""
    return (f"Machine: {m.get('cpu_detail', m['cpu'])}, {m['cores']} cores "
            f"({m['available_cores']} available), "
            f"{m['platform']}; Python {m['python']}, NumPy {m['numpy']}, Numba {m['numba']}; "
            f"fastmlp {m['fastmlp']}{commit}; {m['date']}." + _cpu_note(experiments))


def _cpu_note(experiments):
    """Said when only some sections name their CPU: the others were run before the report
    recorded it, maybe on another machine than the one above."""
    named = [bool(e.get("cpu")) for e in (experiments or {}).values()]
    if any(named) and not all(named):
        return (" Sections that name no CPU were run before the report recorded it, not "
                "necessarily on this one.")
    return ""


def _finite(o):
    """``o`` with numpy scalars made plain and non-finite floats made None (JSON has no NaN)."""
    if isinstance(o, dict):
        return {str(k): _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    return o


def _cell(text):
    """``text`` as one Markdown table cell: one line, its pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(results):
    """RESULTS.md from the results dict (what results.json holds)."""
    exps = results["experiments"]
    quick = results["mode"] == "quick"
    lines = ["# fastmlp: the claims, measured", "",
             machine_line(results["machine"], results.get("experiments")), ""]
    if quick:
        lines += ["**Quick mode** (`--quick`): one seed, one or two epochs, small networks, one "
                  "thread. It checks that the report runs; its verdicts are about these "
                  "scaled-down runs, **not** about the claims. Run `python -m fastmlp.report` "
                  "for the real measurements.", ""]
    total = sum(e.get("seconds", 0.0) for e in exps.values())
    lines += ["Each claim from the experiments fastmlp grew from (the book *Programming Machine "
              "Learning*) was run on the real data with fastmlp. A verdict is computed from "
              "the numbers by the rule stated under each section, never written by hand. "
              "Accuracies are on the book's split: validation = the first 5,000 MNIST test "
              "images, test half = the last 5,000, and all 10,000. Where several seeds ran, "
              "numbers are medians and ± is half the range over seeds. Every row gives the "
              "`python -m fastmlp.train` command of its run (seed 0; add `--seed N` for the "
              "others).", "",
              f"Regenerate everything (this file, `results.json`, the plots): "
              f"`python -m fastmlp.report` ({_duration(total)} for these experiments; "
              f"`--only NAME,...` "
              f"reruns some experiments and keeps the others' results; `--quick` for a "
              f"smoke test).", ""]
    plots = results.get("plots", {})
    if not plots.get("available", False):
        lines += [f"*Plots: {plots.get('note', 'not drawn')}.*", ""]
    lines += ["## Summary", "", "| claim | measured | verdict | command |", "|---|---|---|---|"]
    for name in EXPERIMENTS:
        e = exps.get(name)
        if e is None:
            lines.append(f"| {CLAIMS[name]} | not run in this report (`--only`) | not run | |")
            continue
        command = f"`{e['command']}`" if e["command"] else ""
        lines.append(f"| {_cell(e['claim'])} | {_cell(e['verdict_text'])} | "
                     f"**{e['verdict']}** | {command} |")
    for i, name in enumerate(EXPERIMENTS, 1):
        e = exps.get(name)
        if e is None:
            continue
        lines += ["", f"## {i}. {TITLES[name]}", "",
                  f"**Claim:** {e['claim']}.", "",
                  f"**Verdict: {e['verdict']}.** {e['verdict_text']}", ""]
        if e.get("rule"):
            lines += [f"*Rule:* {e['rule']}.", ""]
        if name in NOTES:
            lines += [f"*Setup:* {NOTES[name]}.", ""]
        if e.get("seeds_note"):
            lines += [f"*Seeds:* {e['seeds_note']}.", ""]
        if e.get("mode") and e["mode"] != results["mode"]:
            lines += [f"*(measured in {e['mode']} mode on {e.get('date', '?')})*", ""]
        if e["rows"]:
            lines += ["| " + " | ".join(e["columns"]) + " |",
                      "|" + "---|" * len(e["columns"])]
            lines += ["| " + " | ".join(r) + " |" for r in e["rows"]]
            lines.append("")
        if name in plots.get("files", {}):
            lines += [f"![{TITLES[name]}]({plots['files'][name]})", ""]
        where = (f", run at git {e['git_commit']} on {e.get('date', '?')}"
                 if e.get("git_commit") else "")
        if e.get("cpu"):  # sections run before the report recorded it name none
            where += f" on an {e['cpu']}"
        kept = (f"; {e['runs_kept']} of its {e['n_runs']} runs were already recorded at that "
                "commit (by an earlier invocation, or by another section sharing them), not run "
                "again" if e.get("runs_kept") else "")
        lines.append(f"*{e.get('seconds', 0):.0f} s for this experiment{where}{kept}.*")
    return "\n".join(lines) + "\n"


def write_report(results, out):
    os.makedirs(out, exist_ok=True)
    write_plots(results, out)
    clean = _finite(results)
    text = json.dumps(clean, indent=1, allow_nan=False)
    atomic_write(os.path.join(out, "results.json"), lambda f: f.write(text.encode()))
    md = render_markdown(clean)
    atomic_write(os.path.join(out, "RESULTS.md"), lambda f: f.write(md.encode()))
    return clean
