"""The claims as sweep definitions and verdict rules.

Each claim is a row of :data:`CLAIM_ROWS`: ``runs(ctx)`` names the groups of runs it needs
(a configuration and its seeds; the sweep engine trains them, in parallel, resumably) and
``verdict(ctx, groups)`` turns their numbers into the verdict by the rule it states. Both return
plain dicts: claim, verdict, verdict_text, command, columns + rows (the formatted table), and
the raw numbers (groups / data) for results.json and the plots (plots.py).
"""

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..config import preset
from ..errors import DataError
from . import softmax
from .commands import command_for
from .regularisers import (LABEL_SMOOTHING_EFFECT, MAX_NORM_EFFECT, MOMENTUM_EFFECT,
                           committee_runs, committee_verdict)
from .runs import (Group, _acc_cell, _cmd, _median, _net, _seeds_note, _tolerance, pct, pp,
                   secs, time_to)
from .settings import (ACTIVATIONS, AUGMENT_OVERRIDES, AUGMENT_PRESET, AUGMENT_TARGET,
                       AUGMENT_TIME_TARGET, BEST_OVERRIDES, BEST_PRESET, BEST_TARGET, CENTER_TARGET,
                       CENTERS, CLAIMS, CROPS, EFFECTS_FOLDER, FASHION_OVERRIDES, FASHION_PRESET,
                       FASHION_TARGET, FIXED_BATCHES, RAMP_FINAL, RAMP_START, RAMP_TARGETS,
                       SHIFTED_ACTIVATIONS, SHIFTED_DEPTHS, SPEED_MARGIN, TIME_TARGET, VAL_TARGET)


def _one_line(exc):
    """An error's message on one line (a data error lists every place searched, one a line)."""
    return " ".join(str(exc).split())


def hidden100_runs(ctx):
    """One hidden layer of 100 units: fastmlp's default run and the book's preset."""
    quick = dict(epochs=1)
    default, book = ctx.cfg(quick=quick), ctx.cfg(preset("book"), quick=quick)
    return [
        Group(f"default: 784-100-10 {default.activation}, dropout {default.dropout:g}, "
              f"{default.optimizer}", default),
        Group(f"book: 784-100-10 {book.activation}, dropout {book.dropout:g}, "
              f"{book.optimizer}", book, preset_name="book"),
    ]


def hidden100_verdict(ctx, groups):
    claim_half, claim_full = 0.986, 0.978
    rows, met = [], []
    for g in groups:
        m = g["median"]
        ok_half = m["test_accuracy"] >= claim_half - 0.0005       # rounds to 98.6% or more
        ok_full = m["test_accuracy_full"] >= claim_full - 0.002   # "~97.8%": within 0.2 pp
        harder = "first (validation)" if m["val_accuracy"] < m["test_accuracy"] else \
                 "second (test)"
        met.append(ok_half and ok_full)
        g["checks"] = dict(test_half=ok_half, full=ok_full, harder_half=harder)
        rows.append([g["label"], _acc_cell(g, "val_accuracy"), _acc_cell(g, "test_accuracy"),
                     _acc_cell(g, "test_accuracy_full"), harder,
                     f"{g['median']['train_seconds']:.1f} s", _seeds_note(g),
                     _cmd(g["command"])])
    best = groups[0] if met[0] or not met[1] else groups[1]
    m = best["median"]
    harder_all = {g["checks"]["harder_half"] for g in groups}
    harder_text = (f"the {harder_all.pop()} half is the harder one" if len(harder_all) == 1
                   else "the harder half differs between the two networks")
    verdict = "confirmed" if any(met) else (
        "partly confirmed" if any(g["checks"]["test_half"] or g["checks"]["full"]
                                  for g in groups) else "not confirmed")
    text = (f"{best['label'].split(':')[0]}: {pct(m['test_accuracy'])} on the test half "
            f"(claim 98.6%), {pct(m['test_accuracy_full'])} on all 10,000 (claim ~97.8%), "
            f"{pct(m['val_accuracy'])} on the validation half; {harder_text}.")
    return dict(claim=CLAIMS["hidden100"],
                rule="confirmed if a network's median rounds to >= 98.6% on the test half and "
                     "is >= 97.6% on all 10,000",
                verdict=verdict, verdict_text=text, command=best["command"],
                columns=["network", "validation (first 5,000)", "test (last 5,000)",
                         "all 10,000", "harder half", "training time", "seeds", "command"],
                rows=rows, groups=groups)


def crop_runs(ctx):
    quick = dict(hidden=(32,), epochs=1)
    return [Group(f"crop {c}", ctx.cfg(quick=quick, crop=c)) for c in CROPS]


def crop_verdict(ctx, groups):
    base = groups[0]
    rows, ok_acc, ok_time = [], [], []
    for c, g in zip(CROPS, groups):
        m = g["median"]
        diff = m["test_accuracy_full"] - base["median"]["test_accuracy_full"]
        speed = m["samples_per_second"] / base["median"]["samples_per_second"] - 1
        g["checks"] = dict(accuracy_diff=diff, speedup=speed, tolerance=_tolerance(base, g))
        if 1 <= c <= 3:
            ok_acc.append(diff >= -g["checks"]["tolerance"])
            ok_time.append(speed >= SPEED_MARGIN)
        side = math.isqrt(int(m["n_inputs"]))
        rows.append([str(c), f"{side}x{side} = {m['n_inputs']:.0f}", _acc_cell(g),
                     pp(diff) if c else "-", f"{m['samples_per_second'] / 1000:.0f}k",
                     f"{100 * speed:+.0f}%" if c else "-", f"{m['train_seconds']:.1f} s",
                     _cmd(g["command"])])
    verdict = ("confirmed" if all(ok_acc) and all(ok_time) else
               "partly confirmed" if all(ok_acc) or all(ok_time) else "not confirmed")
    g13 = groups[1:4]
    text = (f"crops 1-3 change accuracy by "
            f"{', '.join(pp(g['checks']['accuracy_diff']) for g in g13)} "
            f"({'within' if all(ok_acc) else 'not all within'} the seeds' noise) and training "
            f"speed by {', '.join('%+.0f%%' % (100 * g['checks']['speedup']) for g in g13)} "
            f"({'all' if all(ok_time) else 'not all'} at least {100 * SPEED_MARGIN:.0f}% "
            f"faster) against no crop ({pct(base['median']['test_accuracy_full'])}, "
            f"{base['median']['samples_per_second'] / 1000:.0f}k samples/s).")
    return dict(claim=CLAIMS["crop"],
                rule=f"confirmed if crops 1, 2, 3 all stay within max(0.1 pp, seed spread) of "
                     f"no crop on all 10,000 and train >= {100 * SPEED_MARGIN:.0f}% more "
                     "samples/s",
                verdict=verdict, verdict_text=text, command=groups[2]["command"],
                columns=["crop", "inputs", "all 10,000", "vs crop 0", "samples/s",
                         "speed vs crop 0", "training time", "command"],
                rows=rows, groups=groups, seeds_note=_seeds_note(base))


def center_runs(ctx):
    quick = dict(hidden=(32,), epochs=1)
    return [Group(f"center {c}", ctx.cfg(quick=quick, center=c)) for c in CENTERS]


def center_verdict(ctx, groups):
    rows = [[str(c), str(c * c), _acc_cell(g, "val_accuracy"), _acc_cell(g, "test_accuracy"),
             _acc_cell(g), f"{g['median']['train_seconds']:.1f} s", _cmd(g["command"])]
            for c, g in zip(CENTERS, groups)]
    acc8 = groups[0]["median"]["test_accuracy_full"]
    verdict = "confirmed" if acc8 > CENTER_TARGET else "not confirmed"
    text = (f"the innermost 8x8 (64 pixels) gives {pct(acc8)} on all 10,000 "
            f"({'above' if acc8 > CENTER_TARGET else 'not above'} {pct(CENTER_TARGET, 0)}); "
            + ", ".join(f"{c}x{c}: {pct(g['median']['test_accuracy_full'])}"
                        for c, g in zip(CENTERS[1:], groups[1:])) + ".")
    return dict(claim=CLAIMS["center"],
                rule="confirmed if center 8's median accuracy on all 10,000 is above 80%",
                verdict=verdict, verdict_text=text, command=groups[0]["command"],
                columns=["center", "inputs", "validation", "test half", "all 10,000",
                         "training time", "command"],
                rows=rows, groups=groups, seeds_note=_seeds_note(groups[0]))


def batch_ramp_runs(ctx):
    quick = dict(hidden=(64,), epochs=2)
    base = dict(hidden=(100,), epochs=10)  # the seed's one-hidden-layer network
    ramp = Group(f"ramp {RAMP_START}->{RAMP_FINAL}",
                 ctx.cfg(quick=quick, batch_ramp=RAMP_START, batch_size=RAMP_FINAL, **base))
    return [ramp] + [Group(f"fixed {b}", ctx.cfg(quick=quick, batch_ramp=None, batch_size=b,
                                                 **base)) for b in FIXED_BATCHES]


def batch_ramp_verdict(ctx, groups):
    ramp, fixed = groups[0], groups[1:]
    for g in groups:
        g["time_to"] = {f"{t:.2f}": _median([time_to(r["history"], t) for r in g["runs"]])
                        for t in RAMP_TARGETS}
        g["reached_count"] = {f"{t:.2f}": sum(time_to(r["history"], t) is not None
                                              for r in g["runs"]) for t in RAMP_TARGETS}
    target = next((t for t in RAMP_TARGETS
                   if any(g["time_to"][f"{t:.2f}"] is not None for g in groups)), None)
    rows = []
    for g in groups:
        m = g["median"]
        times = [secs(g["time_to"][f"{t:.2f}"]) + (
                 f" ({g['reached_count'][f'{t:.2f}']}/{len(g['seeds'])})"
                 if len(g["seeds"]) > 1 else "") for t in RAMP_TARGETS]
        rows.append([g["label"], *times, pct(m["val_accuracy"]), _acc_cell(g),
                     f"{m['train_seconds']:.1f} s", _cmd(g["command"])])
    if target is None:
        faster, t_ramp, t_fixed = False, None, [None] * len(fixed)
    else:
        key = f"{target:.2f}"
        t_ramp = ramp["time_to"][key]
        t_fixed = [g["time_to"][key] for g in fixed]
        fastest_fixed = min(math.inf if t is None else t for t in t_fixed)
        faster = t_ramp is not None and t_ramp < fastest_fixed
    best_fixed = max(fixed, key=lambda g: g["median"]["test_accuracy_full"])
    diff = ramp["median"]["test_accuracy_full"] - best_fixed["median"]["test_accuracy_full"]
    no_loss = diff >= -_tolerance(ramp, best_fixed)
    verdict = ("confirmed" if faster and no_loss and target == VAL_TARGET else
               "partly confirmed" if faster or no_loss else "not confirmed")
    if target is None:
        text = f"no configuration reaches {pct(RAMP_TARGETS[-1], 0)} validation, so speed is " \
               "not compared"
    else:
        text = ("" if target == VAL_TARGET else
                f"no configuration's median reaches {pct(VAL_TARGET, 0)} validation; ")
        text += (f"time to {pct(target, 0)} validation: {secs(t_ramp)} with ramp "
                 f"{RAMP_START}->{RAMP_FINAL} vs "
                 + ", ".join(f"{secs(t)} ({g['label']})" for g, t in zip(fixed, t_fixed))
                 + f" ({'faster than all' if faster else 'not faster than all'})")
    text += (f"; final accuracy {pct(ramp['median']['test_accuracy_full'])} vs the best fixed "
             f"{pct(best_fixed['median']['test_accuracy_full'])} ({best_fixed['label']}), "
             f"{pp(diff)} ({'no loss' if no_loss else 'a loss'} beyond the seeds' noise).")
    return dict(claim=CLAIMS["batch_ramp"],
                rule="confirmed if the ramp's median time to 98% validation beats every fixed "
                     "batch size and its accuracy on all 10,000 is within max(0.1 pp, seed "
                     "spread) of the best fixed one; if no median reaches 98%, speed is compared "
                     "at the highest of 97% and 95% that one reaches, and the verdict is at most "
                     "'partly confirmed'",
                verdict=verdict, verdict_text=text, command=ramp["command"],
                speed_target=target,
                columns=["batch"] + [f"time to {pct(t, 0)} val" for t in RAMP_TARGETS]
                        + ["final validation", "final all 10,000", "training time", "command"],
                rows=rows, groups=groups, seeds_note=_seeds_note(ramp))


def _rms_spread(weight_rms):
    """Largest over smallest per-layer weight RMS: 1 means perfectly level across layers."""
    return max(weight_rms) / min(weight_rms)


def activations_runs(ctx):
    quick = dict(hidden=(32, 32, 32), epochs=2)
    # every setting the default (lr 0.05, first epoch at batch 64) but "with dropout": 0.2
    base = dict(hidden=(128, 128, 128), dropout=0.2)
    return [Group(label, ctx.cfg(quick=quick, activation=spec, **base))
            for label, spec in ACTIVATIONS]


def activations_verdict(ctx, groups):
    from ..model import MLP

    for g in groups:
        cfg = g["config"]
        # per epoch, per layer: median over seeds of the weight RMS (epoch 0 = initial weights)
        n_in = int(g["median"]["n_inputs"])
        sizes = (n_in, *cfg["hidden"], 10)
        init = np.median([MLP.create(sizes, cfg["activation"], seed=s,
                                     init=cfg["init"]).weight_rms()
                          for s in g["seeds"]], axis=0)
        hist = np.median([[h["weight_rms"] for h in r["history"]] for r in g["runs"]], axis=0)
        g["weight_rms"] = [list(map(float, init))] + hist.tolist()
        g["val_curve"] = np.median([[h["val_accuracy"] for h in r["history"]]
                                    for r in g["runs"]], axis=0).tolist()
        g["rms_spread"] = _rms_spread(g["weight_rms"][-1])
    relu = groups[1]
    tol = _tolerance(*groups[1:])  # the groups compared: ReLU and the shifted ReLUs
    rows, acc_ok, level_ok = [], [], []
    for g in groups:
        diff = g["median"]["test_accuracy_full"] - relu["median"]["test_accuracy_full"]
        final = g["weight_rms"][-1]
        rows.append([g["label"], _acc_cell(g), pp(diff) if g is not relu else "-",
                     " / ".join(f"{w:.3f}" for w in final), f"{g['rms_spread']:.2f}",
                     f"{g['median']['train_seconds']:.1f} s", _cmd(g["command"])])
        if g["label"].startswith("shifted"):
            acc_ok.append(diff > tol)
            level_ok.append(g["rms_spread"] < relu["rms_spread"])
    verdict = ("confirmed" if all(acc_ok) and all(level_ok) else
               "partly confirmed" if any(acc_ok) or any(level_ok) else "not confirmed")
    shifted = groups[2:]
    text = ("on all 10,000: "
            + ", ".join(f"{g['label']} {pct(g['median']['test_accuracy_full'])}"
                        for g in groups)
            + "; shifted ReLU c=0.5 / c=1 vs ReLU: "
            + " / ".join(pp(g["median"]["test_accuracy_full"]
                            - relu["median"]["test_accuracy_full"]) for g in shifted)
            + f" (better beyond the seeds' noise of {100 * tol:.2f} pp: "
            + " / ".join("yes" if ok else "no" for ok in acc_ok)
            + "); largest/smallest layer weight RMS after training "
            + " / ".join(f"{g['rms_spread']:.2f}" for g in shifted)
            + f" vs ReLU {relu['rms_spread']:.2f} and sigmoid {groups[0]['rms_spread']:.2f} "
            + "(more level than ReLU: " + " / ".join("yes" if ok else "no" for ok in level_ok)
            + ").")
    return dict(claim=CLAIMS["activations"],
                rule="confirmed if both shifted ReLUs beat ReLU's median accuracy on all 10,000 "
                     "by more than max(0.1 pp, the widest seed spread of ReLU's and theirs) "
                     "and end with a smaller "
                     "largest/smallest ratio of per-layer weight RMS",
                verdict=verdict, verdict_text=text, command=groups[2]["command"],
                columns=["activation", "all 10,000", "vs ReLU",
                         "final weight RMS per layer", "largest/smallest", "training time",
                         "command"],
                rows=rows, groups=groups, seeds_note=_seeds_note(relu))


def shifted_depth_runs(ctx):
    """Each activation of SHIFTED_ACTIVATIONS on each network of SHIFTED_DEPTHS, every other
    setting the default."""
    groups = []
    for hidden in SHIFTED_DEPTHS:
        for label, spec in SHIFTED_ACTIVATIONS:
            cfg = ctx.cfg(quick=dict(hidden=(32,) * len(hidden), epochs=1), hidden=hidden,
                          activation=spec)
            groups.append(Group(f"{_net(cfg.hidden)} {label}", cfg))
    return groups


def shifted_depth_verdict(ctx, groups):
    def row(g, diff, good):
        return [g["label"], _acc_cell(g), diff, good, f"{g['median']['train_seconds']:.1f} s",
                _cmd(g["command"])]

    n = len(SHIFTED_ACTIVATIONS)  # groups come depth by depth, ReLU first in each
    rows, checks, parts = [], [], []
    for d in range(0, len(groups), n):
        relu, shifted = groups[d], groups[d + 1:d + n]
        tol = _tolerance(relu, *shifted)
        base = relu["median"]["test_accuracy_full"]
        diffs = [g["median"]["test_accuracy_full"] - base for g in shifted]
        ok = [diff >= -tol for diff in diffs]
        checks += ok
        rows.append(row(relu, "-", "-"))
        for g, diff, good in zip(shifted, diffs, ok):
            g["checks"] = dict(at_least_relu=good)
            rows.append(row(g, pp(diff), "yes" if good else "no"))
        hidden = relu["config"]["hidden"]
        parts.append(f"{len(hidden)} hidden ({_net(hidden)}): ReLU {pct(base)}, "
                     + ", ".join(f"c={spec.split(':')[1]} {pp(diff)}"
                                 for (_, spec), diff in zip(SHIFTED_ACTIVATIONS[1:], diffs))
                     + f" (noise {100 * tol:.2f} pp)")
    verdict = ("confirmed" if all(checks) else
               "partly confirmed" if any(checks) else "not confirmed")
    text = ("on all 10,000, shifted ReLU vs ReLU: " + "; ".join(parts)
            + f"; at least as good within the noise: {sum(checks)} of {len(checks)}.")
    return dict(claim=CLAIMS["shifted_depth"],
                rule="confirmed if, on every network, each shifted ReLU's median accuracy on "
                     "all 10,000 is at least ReLU's less max(0.1 pp, the widest seed spread "
                     "of that network's runs)",
                verdict=verdict, verdict_text=text, command=groups[1]["command"],
                columns=["network", "all 10,000", "vs ReLU", "at least as good",
                         "training time", "command"],
                rows=rows, groups=groups, seeds_note=_seeds_note(groups[0]))


@dataclass(frozen=True)
class Target:
    """A claim that one run reaches an accuracy (and maybe a time): a preset and its target."""

    preset_name: str
    overrides: dict
    quick: dict
    label: str
    target: float
    claim: str
    time_limit: float = None
    one_seed: bool = False  # one run, not the median of the report's seeds

    def runs(self, ctx):
        cfg = ctx.cfg(preset(self.preset_name, **self.overrides), quick=self.quick)
        try:
            ctx.check_data(cfg)
        except DataError as exc:  # a finished result: nothing to run
            return dict(claim=self.claim, verdict="skipped",
                        verdict_text=f"data not available: {_one_line(exc)}",
                        command=command_for(cfg, self.preset_name), rule="", columns=[],
                        rows=[], groups=[])
        return [Group(self.label, cfg, preset_name=self.preset_name,
                      seeds=[0] if self.one_seed else None)]

    def verdict(self, ctx, groups):
        return _target_verdict(groups[0], self.target, self.claim, self.time_limit)


def _target_verdict(g, target, claim, time_limit):
    m = g["median"]
    # the run's time: train() from start to end, less the one-off compilation (cached on disk)
    m["run_seconds"] = m["wall_seconds"] - m["compile_seconds"]
    acc_ok = m["test_accuracy_full"] >= target
    time_ok = time_limit is None or m["run_seconds"] <= time_limit
    g["checks"] = dict(accuracy=acc_ok, time=time_ok)
    if acc_ok and time_ok:
        verdict = "confirmed"
    elif acc_ok or (time_limit is not None and time_ok):
        verdict = "partly confirmed"
    else:
        verdict = "not confirmed"
    text = (f"{pct(m['test_accuracy_full'])} on all 10,000 test images (target "
            f"{pct(target, 1)}: {'met' if acc_ok else 'missed'}) in {m['run_seconds']:.0f} s "
            f"({m['train_seconds']:.0f} s in training steps, the rest evaluation; "
            f"{m['epochs']:.0f} epochs, {m['threads']:.0f} threads; plus "
            f"{m['compile_seconds']:.1f} s compile or cache load; {_seeds_note(g)})")
    if time_limit is not None:
        text += f" (target {time_limit / 60:.0f} min: {'met' if time_ok else 'missed'})"
    text += "."
    rows = [[g["label"], pct(m["val_accuracy"]), pct(m["test_accuracy"]),
             pct(m["test_accuracy_full"]), f"{m['run_seconds']:.1f} s",
             f"{m['train_seconds']:.1f} s", f"{m['samples_per_second'] / 1000:.0f}k",
             _cmd(g["command"])]]
    return dict(claim=claim, rule=(f"confirmed if all 10,000 >= {pct(target, 1)}"
                                   + (f" and the run takes <= {time_limit:.0f} s (wall time of "
                                      "train(): training and per-epoch evaluation, not the "
                                      "one-off compilation)" if time_limit else "")),
                verdict=verdict, verdict_text=text, command=g["command"],
                columns=["network", "validation", "test half", "all 10,000", "run time",
                         "training time", "samples/s", "command"],
                rows=rows, groups=[g])


BEST = Target(BEST_PRESET, BEST_OVERRIDES, dict(hidden=(64,), epochs=1),
              f"preset {BEST_PRESET}", BEST_TARGET, CLAIMS["best"], TIME_TARGET)
AUGMENT = Target(AUGMENT_PRESET, AUGMENT_OVERRIDES, dict(hidden=(64,), epochs=1),
                 f"preset {AUGMENT_PRESET}", AUGMENT_TARGET, CLAIMS["augment"],
                 AUGMENT_TIME_TARGET)
FASHION = Target(FASHION_PRESET, FASHION_OVERRIDES, dict(hidden=(64,), epochs=1),
                 f"preset {FASHION_PRESET} on Fashion-MNIST", FASHION_TARGET, CLAIMS["fashion"],
                 one_seed=True)


@dataclass(frozen=True)
class Claim:
    """A claim's sweep definition and verdict rule (its plot: plots.PLOTS)."""

    runs: Callable       # ctx -> [Group], or a finished result dict (e.g. skipped)
    verdict: Callable    # (ctx, filled groups) -> result dict
    folder: str = None   # where its runs are kept (default: the claim's name); claims that
    #                      share a folder train a run they have in common once


CLAIM_ROWS = {
    "hidden100": Claim(hidden100_runs, hidden100_verdict),
    "crop": Claim(crop_runs, crop_verdict),
    "center": Claim(center_runs, center_verdict),
    "batch_ramp": Claim(batch_ramp_runs, batch_ramp_verdict),
    "softmax": Claim(softmax.softmax_runs, softmax.softmax_verdict),
    "activations": Claim(activations_runs, activations_verdict),
    "shifted_depth": Claim(shifted_depth_runs, shifted_depth_verdict),
    "best": Claim(BEST.runs, BEST.verdict),
    "augment": Claim(AUGMENT.runs, AUGMENT.verdict),
    "fashion": Claim(FASHION.runs, FASHION.verdict),
    "max_norm": Claim(MAX_NORM_EFFECT.runs, MAX_NORM_EFFECT.verdict, EFFECTS_FOLDER),
    "label_smoothing": Claim(LABEL_SMOOTHING_EFFECT.runs, LABEL_SMOOTHING_EFFECT.verdict,
                             EFFECTS_FOLDER),
    "momentum_ramp": Claim(MOMENTUM_EFFECT.runs, MOMENTUM_EFFECT.verdict, EFFECTS_FOLDER),
    "committee": Claim(committee_runs, committee_verdict),
}


def run_claim(row, ctx, name):
    """Define, run (through the sweep engine) and judge one claim."""
    groups = row.runs(ctx)
    if isinstance(groups, dict):
        return groups
    return row.verdict(ctx, ctx.run(row.folder or name, groups))


# name -> function(ctx) -> result: what the command line calls for each experiment
EXPERIMENT_FUNCTIONS = {name: functools.partial(run_claim, row, name=name)
                        for name, row in CLAIM_ROWS.items()}
