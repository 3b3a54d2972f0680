"""Issue 34's claims about regularisers: max-norm, label smoothing and the momentum ramp, each
alone against the same runs without it on the default and a wide network (:class:`Effect`), and
a committee of independently seeded networks against its members. Rows of claims.CLAIM_ROWS,
as every claim is."""

from dataclasses import dataclass

from ..config import preset
from .runs import (Group, _acc_cell, _cmd, _epochs, _inputs, _median, _net, _seeds_note,
                   _tolerance, pct, pp)
from .settings import (BEST_TARGET, CLAIMS, COMMITTEE_EPOCHS, COMMITTEE_PRESET, COMMITTEE_SIZE,
                       LABEL_SMOOTHING, MAX_NORM, MIN_TOLERANCE, MOMENTUM_FINAL, TIME_TARGET,
                       WIDE_EPOCHS, WIDE_PRESET)


@dataclass(frozen=True)
class Effect:
    """A claim that one setting makes training better: on each network (the default one and a
    wide one), the run with ``fields`` against the same run without them."""

    name: str
    base_label: str     # the run without the setting, e.g. "none"
    label: str          # the run with it, e.g. "max-norm 2"
    fields: dict

    @staticmethod
    def networks(ctx):
        """``[(network, config, preset name)]``: the default network and preset strong's with
        its epochs cut (settings.WIDE_EPOCHS)."""
        default = ctx.cfg(quick=dict(hidden=(32,), epochs=1))
        wide = ctx.cfg(preset(WIDE_PRESET, epochs=WIDE_EPOCHS),
                       quick=dict(hidden=(64, 64), epochs=1))
        return [(f"{_net(default.hidden)} (default)", default, None),
                (f"{_net(wide.hidden, _inputs(wide))} (preset {WIDE_PRESET}, "
                 f"{_epochs(wide)}; {wide.crop}-pixel crop)", wide, WIDE_PRESET)]

    def runs(self, ctx):
        groups = []
        for net, cfg, preset_name in self.networks(ctx):
            groups += [Group(f"{net}: {self.base_label}", cfg, preset_name=preset_name),
                       Group(f"{net}: {self.label}", cfg.replace(**self.fields),
                             preset_name=preset_name)]
        return groups

    def verdict(self, ctx, groups):
        rows, better, parts = [], [], []
        for base, g in zip(groups[::2], groups[1::2]):
            diff = g["median"]["test_accuracy_full"] - base["median"]["test_accuracy_full"]
            tol = _tolerance(base, g)
            effect = "better" if diff > tol else "worse" if diff < -tol else "within the noise"
            g["checks"] = dict(accuracy_diff=diff, tolerance=tol, effect=effect)
            better.append(effect == "better")
            net = base["label"].rsplit(":", 1)[0]
            for h, cells in ((base, ["-", "-"]), (g, [pp(diff), effect])):
                rows.append([net, h["label"].rsplit(": ", 1)[1], _acc_cell(h), *cells,
                             f"{h['median']['train_seconds']:.1f} s", _cmd(h["command"])])
            parts.append(f"{net.split(' ')[0]}: {self.base_label} "
                         f"{pct(base['median']['test_accuracy_full'])}, {self.label} {pp(diff)} "
                         f"(noise {100 * tol:.2f} pp: {effect})")
        verdict = ("confirmed" if all(better) else
                   "partly confirmed" if any(better) else "not confirmed")
        text = f"on all 10,000, {self.label} vs {self.base_label}: " + "; ".join(parts) + "."
        return dict(claim=CLAIMS[self.name],
                    rule=f"confirmed if on both networks the median accuracy on all 10,000 with "
                         f"{self.label} beats the one with {self.base_label} by more than "
                         "max(0.1 pp, the wider seed spread of the two); partly confirmed if on "
                         "one network",
                    verdict=verdict, verdict_text=text, command=groups[1]["command"],
                    columns=["network", "setting", "all 10,000", f"vs {self.base_label}",
                             "effect", "training time", "command"],
                    rows=rows, groups=groups, seeds_note=_seeds_note(groups[0]))


MAX_NORM_EFFECT = Effect("max_norm", "none", f"max-norm {MAX_NORM:g}", dict(max_norm=MAX_NORM))
LABEL_SMOOTHING_EFFECT = Effect("label_smoothing", "none", f"label smoothing {LABEL_SMOOTHING:g}",
                                dict(label_smoothing=LABEL_SMOOTHING))
MOMENTUM_EFFECT = Effect("momentum_ramp", "momentum 0.9", f"momentum 0.9 -> {MOMENTUM_FINAL:g}",
                         dict(momentum_final=MOMENTUM_FINAL))


def committee_runs(ctx):
    """COMMITTEE_SIZE runs of one configuration, seeds 0, 1, ..., their weights kept."""
    cfg = ctx.cfg(preset(COMMITTEE_PRESET, epochs=COMMITTEE_EPOCHS),
                  quick=dict(hidden=(32,), epochs=1))
    return [Group(f"{_net(cfg.hidden, _inputs(cfg))} (preset {COMMITTEE_PRESET}, "
                  f"{_epochs(cfg)})", cfg,
                  preset_name=COMMITTEE_PRESET, seeds=list(range(COMMITTEE_SIZE)),
                  keep_model=True)]


def committee_verdict(ctx, groups):
    """The members' mean probabilities (fastmlp.Ensemble) on all 10,000 test images, against
    each member; the members' run times added up (trained one after another)."""
    from ..config import TrainConfig
    from ..model import Ensemble

    g = groups[0]
    models = g.pop("models")
    cfg = TrainConfig.from_dict({**g["config"], "hidden": tuple(g["config"]["hidden"])})
    sp = ctx.data(cfg).splits
    committee = Ensemble(models)
    acc = committee.accuracy(sp.test_full_x, sp.test_full_y)
    members = [r["test_accuracy_full"] for r in g["runs"]]
    times = [r["wall_seconds"] - r["compile_seconds"] for r in g["runs"]]
    total = sum(times)
    best, median = max(members), _median(members)
    beats_best = acc - best > MIN_TOLERANCE
    beats_median = acc - median > _tolerance(g)
    in_time, at_target = total <= TIME_TARGET, acc >= BEST_TARGET
    g["committee"] = dict(val_accuracy=committee.accuracy(sp.val_x, sp.val_y),
                          test_accuracy=committee.accuracy(sp.test_x, sp.test_y),
                          test_accuracy_full=acc, run_seconds=times, total_run_seconds=total,
                          beats_best=beats_best, beats_median=beats_median,
                          within_time_target=in_time, at_target=at_target)
    verdict = ("confirmed" if beats_best else "partly confirmed" if beats_median else
               "not confirmed")
    text = (f"{g['label']}: the committee of seeds {', '.join(map(str, g['seeds']))} gives "
            f"{pct(acc)} on all 10,000 against its members' "
            f"{', '.join(pct(a) for a in members)} (best {pp(acc - best)}, median "
            f"{pp(acc - median)}); the members took {total:.0f} s of run time one after another "
            f"({', '.join(f'{t:.0f}' for t in times)} s; within {TIME_TARGET / 60:.0f} minutes: "
            f"{'yes' if in_time else 'no'}; {pct(BEST_TARGET, 1)} target: "
            f"{'met' if at_target else 'missed'}).")
    rows = [[f"seed {r['seed']}", pct(r["val_accuracy"]), pct(r["test_accuracy"]),
             pct(r["test_accuracy_full"]), "-", f"{t:.1f} s", _cmd(r["command"])]
            for r, t in zip(g["runs"], times)]
    saved = " ".join(f"m{s}.npz" for s in g["seeds"])
    rows.append([f"committee of the {len(members)}", pct(g["committee"]["val_accuracy"]),
                 pct(g["committee"]["test_accuracy"]), pct(acc), pp(acc - best),
                 f"{total:.1f} s in all",
                 f"`{g['command']} --seed N --save mN.npz` (N = "
                 f"{', '.join(map(str, g['seeds']))}), then `python -m fastmlp.evaluate "
                 f"{saved}`"])
    return dict(claim=CLAIMS["committee"],
                rule="confirmed if the committee's accuracy on all 10,000 beats its best "
                     "member's by more than 0.1 pp; partly confirmed if it beats the members' "
                     "median by more than max(0.1 pp, their spread). Run time: train()'s wall "
                     "time less the one-off compilation, as for the best MLP",
                verdict=verdict, verdict_text=text, command=g["command"],
                columns=["run", "validation", "test half", "all 10,000", "vs best member",
                         "run time", "command"],
                rows=rows, groups=groups)
