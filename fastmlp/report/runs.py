"""The report's runs, through the sweep engine: an experiment names its groups of runs (a
configuration and its seeds), the engine trains them in parallel worker processes and keeps
them in ``results.jsonl`` (so a stopped report resumes), and each group comes back with its
runs' numbers and their medians. Also the formatting shared by tables and verdict sentences.
"""

import math
import os
import statistics
from dataclasses import dataclass
from typing import Optional

from ..config import TrainConfig
from ..errors import ConfigError
from .commands import command_for
from .settings import MIN_TOLERANCE, VAL_TARGET

_DATA_FIELDS = ("dataset", "data_dir", "split", "crop", "center", "auto_crop", "normalize")
_RUN_KEYS = ("val_accuracy", "test_accuracy", "test_accuracy_full", "train_seconds",
             "wall_seconds", "compile_seconds", "samples_per_second", "epochs", "n_inputs",
             "threads")
_HISTORY_KEYS = ("epoch", "loss", "train_accuracy", "val_accuracy", "seconds",
                 "samples_per_second", "batch_size", "weight_rms")


class RunFailed(Exception):
    """A run of the experiment failed (its one-line error is the message)."""


@dataclass
class Group:
    """One compared configuration: ``cfg`` trained once per seed (``None``: the report's
    seeds); ``keep_model`` keeps every run's weights (the group's ``"models"``, in the order
    of its seeds)."""

    label: str
    cfg: TrainConfig
    preset_name: Optional[str] = None
    seeds: Optional[list] = None
    keep_model: bool = False


def time_to(history, target=VAL_TARGET):
    """Cumulative training seconds (the per-epoch ``seconds``) until the first epoch whose
    ``val_accuracy`` is at least ``target``; None if no epoch gets there."""
    total = 0.0
    for h in history:
        total += h["seconds"]
        if h["val_accuracy"] >= target:
            return total
    return None


def _median(values):
    """Median with None read as "never" (+inf); returns None when the median is never."""
    vals = [math.inf if v is None else float(v) for v in values]
    m = statistics.median(vals)
    return None if math.isinf(m) else m


class Context:
    """What every experiment needs: mode, seeds, threads, where runs are kept, the worker
    pool (kept across experiments, so workers reuse their data and compiled code), data for
    the parent's own measurements, and a log."""

    def __init__(self, quick=False, seeds=None, log=None, runs_dir=None, workers=None):
        self.quick = quick
        self.n_seeds = seeds if seeds is not None else (1 if quick else 3)
        if self.n_seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {self.n_seeds}")
        self.seeds = list(range(self.n_seeds))
        self.threads = 1 if quick else None
        self.log = log or (lambda msg: None)
        self.runs_dir = runs_dir
        self.workers = workers
        self.pool = None
        self._data = {}
        self.runs_total = 0  # runs asked for, and how many of them the sweep engine found
        self.runs_kept = 0   # already recorded (by an earlier invocation, or by another
        #                      experiment of the same runs folder): not run again

    def cfg(self, base=None, quick=None, **fields):
        """A TrainConfig: ``base`` (default TrainConfig()) with ``fields``, and in quick mode
        also ``quick`` (the scaled-down settings) and one thread."""
        base = base or TrainConfig()
        changes = dict(fields)
        if self.quick:
            changes.update(quick or {})
            changes["threads"] = self.threads
        return base.replace(**changes)

    def data(self, cfg):
        """Prepared data for ``cfg``'s data settings in this process (cached; last two)."""
        from ..training.run_data import prepare_data

        key = tuple(getattr(cfg, f) for f in _DATA_FIELDS)
        if cfg.split != "book":
            key += (cfg.seed,)
        if key not in self._data:
            while len(self._data) >= 2:
                self._data.pop(next(iter(self._data)))
            self._data[key] = prepare_data(cfg)
        return self._data[key]

    def check_data(self, cfg):
        """Raise DataError now if ``cfg``'s data set is not on this machine."""
        from ..data import find_dataset

        if not cfg.download:
            find_dataset(cfg.dataset, cfg.data_dir)

    def _pool(self, workers):
        from ..sweep.api import make_pool

        if self.pool is not None and getattr(self.pool, "n", 0) != workers:
            self.close()
        if self.pool is None:
            self.pool = make_pool(workers)
        return self.pool

    def close(self):
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def run(self, name, groups):
        """Train every group's runs through the sweep engine; returns the group dicts
        (label, command, config, seeds, median, spread, reached, runs). Raises RunFailed if a
        run failed."""
        from ..sweep.api import cap_workers, default_parallelism, model_path, run_bytes, run_plan
        from ..sweep.grid import Plan, run_id

        widest = max(max(g.cfg.hidden) for g in groups)
        fixed = {g.cfg.threads for g in groups} - {None}
        workers, threads, reason = default_parallelism(
            widest, self.workers, fixed.pop() if len(fixed) == 1 else None)
        if workers:  # no more than the cores and the memory hold at once (said in one line)
            workers, note = cap_workers(workers, threads,
                                        run_bytes(g.cfg.to_dict() for g in groups))
            if note:
                self.log("  " + note)
        runs, save, order = [], set(), []
        for g in groups:
            if g.cfg.threads is None:
                g.cfg = g.cfg.replace(threads=threads)
            ids = []
            for seed in (self.seeds if g.seeds is None else g.seeds):
                config = g.cfg.replace(seed=seed).to_dict()
                rid = run_id(config)
                runs.append((rid, config, {"run": g.label, "seed": seed}, None))
                ids.append(rid)
                if g.keep_model:
                    save.add(rid)
            order.append(ids)

        def on_start(info):
            self.runs_kept += info["done"]

        def on_result(rec, progress):
            s, ch = rec["summary"], progress["changes"]
            self.log(f"  [{progress['done']}/{progress['total']}] {ch['run']}, seed "
                     f"{ch['seed']}: " + (f"error: {rec['error']}" if rec["error"] else
                                         f"full test {100 * s['test_accuracy_full']:.2f}%, "
                                         f"{s['train_seconds']:.1f} s training, "
                                         f"{s['wall_seconds']:.1f} s wall"))

        self.log(f"  {len(runs)} runs, {workers or 'no'} worker process(es) x {threads} "
                 f"thread(s) ({reason})")
        self.runs_total += len(runs)
        rows = run_plan(Plan(None, ["run", "seed"], runs), out=os.path.join(self.runs_dir, name),
                        workers=workers, threads=threads, summaries=False, save=save,
                        pool=self._pool(workers), on_start=on_start, on_result=on_result)
        by_id = {r["id"]: r for r in rows}
        out = []
        for g, ids in zip(groups, order):
            recs = [by_id[rid] for rid in ids]
            bad = next((r for r in recs if r["error"]), None)
            if bad is not None:
                raise RunFailed(f"{g.label}, seed {bad['config']['seed']}: {bad['error']}")
            d = _group(g, recs)
            if g.keep_model:  # for the experiment's own measurement (not in results.json)
                from ..training.checkpoint import load_model

                d["models"] = [load_model(model_path(os.path.join(self.runs_dir, name), rid))[0]
                               for rid in ids]
            out.append(d)
        return out


def _run(record, preset_name):
    s = record["summary"]
    cfg = TrainConfig.from_dict({**record["config"],
                                 "hidden": tuple(record["config"]["hidden"])})
    rec = {k: s[k] for k in _RUN_KEYS if k in s}
    rec.update(seed=cfg.seed, command=command_for(cfg, preset_name),
               time_to_val_target=time_to(s["history"]),
               history=[{k: h[k] for k in _HISTORY_KEYS} for h in s["history"]])
    return rec


def _group(g, records):
    runs = [_run(r, g.preset_name) for r in records]
    keys = [k for k in _RUN_KEYS if k in runs[0]] + ["time_to_val_target"]
    median = {k: _median([r[k] for r in runs]) for k in keys}
    spread = {k: (max(r[k] for r in runs) - min(r[k] for r in runs))
              for k in ("val_accuracy", "test_accuracy", "test_accuracy_full")}
    return dict(label=g.label, command=command_for(g.cfg.replace(seed=runs[0]["seed"]),
                                                   g.preset_name),
                config=g.cfg.to_dict(), seeds=[r["seed"] for r in runs], median=median,
                spread=spread, reached=sum(r["time_to_val_target"] is not None for r in runs),
                runs=runs)


# ---------------------------------------------------------------------------------------------
# Formatting helpers (shared by the tables and the verdict sentences)
# ---------------------------------------------------------------------------------------------
def pct(x, digits=2):
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def pp(x):
    return f"{100 * x:+.2f} pp"


def secs(x):
    return "not reached" if x is None else f"{x:.1f} s"


def _seeds_note(group):
    seeds = group["seeds"]
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"median of seeds {','.join(map(str, seeds))} (add --seed N)"


def _acc_cell(group, key="test_accuracy_full"):
    cell = pct(group["median"][key])
    if len(group["seeds"]) > 1:
        cell += f" (±{100 * group['spread'][key] / 2:.2f})"
    return cell


def _tolerance(*groups):
    """The accuracy difference read as "no change": the larger of 0.1 pp and the widest seed
    spread (max - min) of the groups compared."""
    return max([MIN_TOLERANCE] + [g["spread"]["test_accuracy_full"] for g in groups])


def _duration(seconds):
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _cmd(text):
    return f"`{text}`"


def _net(hidden, n_inputs=784):
    # the default data: 784 inputs (no crop), 10 classes
    return f"{n_inputs}-" + "-".join(map(str, hidden)) + "-10"


def _inputs(cfg):
    """The inputs of an MNIST network trained with ``cfg``'s crop."""
    return (28 - 2 * cfg.crop) ** 2


def _epochs(cfg):
    return f"{cfg.epochs} epoch" + ("" if cfg.epochs == 1 else "s")
