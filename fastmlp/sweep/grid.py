"""What a sweep runs: grid and random specs parsed into TrainConfig values, the runs they
expand to, and each run's stable id.

A grid key is a TrainConfig field, spelled as its flag (``batch-size``, ``--batch-size``) or as
the field (``batch_size``). Values are converted exactly as the train flag converts them.
Values are separated by commas; inside one value of a list field (``hidden``) layers are
separated by ``/``: ``hidden=100,256/128`` is two values, ``(100,)`` and ``(256, 128)``.
"""

import argparse
import dataclasses
import hashlib
import itertools
import json
import math
import typing
from typing import Optional

import numpy as np

from ..config import FIELD_FLAGS, TrainConfig, parse_of
from ..errors import ConfigError

FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
# tuple-valued fields: layers separated by "/" in a value
LIST_FIELDS = tuple(n for n, f in FIELDS.items() if typing.get_origin(f.type) is tuple)
_BY_FLAG = {flag: name for name, flag in FIELD_FLAGS.items()}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def field_name(key):
    """The TrainConfig field for ``key`` (flag or field spelling), or a ConfigError."""
    bare = key.strip().lstrip("-")
    name = _BY_FLAG.get("--" + bare, bare)
    if name not in FIELDS:
        raise ConfigError(f"unknown sweep key {key!r}; use a TrainConfig field or its train "
                          "flag (see python -m fastmlp.train --help), e.g. lr or batch-size")
    return name


def parse_value(name, text):
    """One value of field ``name`` from its text, converted as the train flag converts it."""
    text = text.strip()
    if name in LIST_FIELDS:
        text = text.replace("/", ",")
    if FIELDS[name].type in (bool, "bool"):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{name}={text!r}: expected true or false")
    convert = parse_of(name)
    if text.lower() == "none" and type(None) in typing.get_args(FIELDS[name].type):
        return None  # an Optional field (a string field's "none" is that string)
    try:
        value = (convert or str)(text)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
        raise ConfigError(f"{name}={text!r} is not a valid value ({exc})") from None
    choices = FIELDS[name].metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{name}={text!r}: choose one of {', '.join(map(str, choices))}")
    return value


def _kind(name):
    """(base type, optional) of field ``name``'s annotation."""
    tp = FIELDS[name].type
    if typing.get_origin(tp) is typing.Union:
        return next(a for a in typing.get_args(tp) if a is not type(None)), True
    return tp, False


def is_whole(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def coerce(name, value):
    """A value from Python or a TOML file as the field's type (strings parse like flags).
    Raises ConfigError for a value of the wrong type: a float for a whole-number field is
    refused, 2.0 too (never truncated: write 2), as TrainConfig refuses it."""
    if isinstance(value, str):
        return parse_value(name, value)
    if name in LIST_FIELDS:
        sizes = list(value) if isinstance(value, (list, tuple)) else [value]
        if not sizes or not all(is_whole(v) for v in sizes):
            raise ConfigError(f"{name} must be whole layer sizes such as [256, 128] or "
                              f'"256/128", got {value!r}')
        return tuple(int(v) for v in sizes)
    tp, optional = _kind(name)
    if value is None and optional:
        return None
    if tp is bool and isinstance(value, (bool, np.bool_)):
        return bool(value)
    if tp is int and is_whole(value):
        return int(value)
    if tp is float and (is_whole(value) or isinstance(value, (float, np.floating))):
        return float(value)
    what = {bool: "true or false", int: "a whole number", float: "a number",
            str: "a string"}.get(tp, str(tp))
    hint = f" (write {int(value)})" if tp is int and isinstance(value, float) and \
        math.isfinite(value) and value == int(value) else ""
    raise ConfigError(f"{name} must be {what}{' or none' if optional else ''}, got {value!r} "
                      f"({type(value).__name__}){hint}")


def parse_grid_arg(text):
    """``KEY=V1,V2,...`` -> ``(field, [values])``."""
    key, sep, values = text.partition("=")
    if not sep or not values.strip():
        raise ConfigError(f"--grid {text!r}: expected KEY=V1,V2,... such as lr=0.02,0.05 "
                          "or hidden=100,256/128")
    name = field_name(key)
    return name, [parse_value(name, v) for v in values.split(",") if v.strip()]


@dataclasses.dataclass(frozen=True)
class RandomSpec:
    """``KEY=LOW:HIGH[:log]``: uniform (or log-uniform) in [LOW, HIGH]; whole numbers for int
    fields."""

    name: str
    low: float
    high: float
    log: bool = False

    def sample(self, rng):
        kind = _NUMERIC.get(FIELDS[self.name].type)
        if kind is None:
            raise ConfigError(f"--random {self.name}: only numeric fields can be sampled; "
                              "use --grid for the others")
        lo, hi = (math.log(self.low), math.log(self.high)) if self.log else (self.low, self.high)
        x = rng.uniform(lo, hi)
        x = math.exp(x) if self.log else x
        if kind is int:
            return round(x)
        return float(f"{x:.4g}")  # readable, and the same text (and id) on every rerun


_NUMERIC = {int: int, float: float, Optional[int]: int}


def parse_random_arg(text):
    key, sep, rng = text.partition("=")
    parts = rng.split(":")
    if not sep or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise ConfigError(f"--random {text!r}: expected KEY=LOW:HIGH or KEY=LOW:HIGH:log, "
                          "e.g. lr=0.01:0.3:log")
    name = field_name(key)
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(f"--random {text!r}: LOW and HIGH must be numbers") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(f"--random {text!r}: LOW and HIGH must be finite numbers (no nan "
                          "or inf)")
    log = len(parts) == 3
    if not math.isfinite(high - low):
        raise ConfigError(f"--random {text!r}: HIGH - LOW must be a finite number")
    if not low < high or (log and low <= 0):
        raise ConfigError(f"--random {text!r}: need LOW < HIGH (and LOW > 0 with :log)")
    spec = RandomSpec(name, low, high, log)
    spec.sample(np.random.default_rng(0))  # refuses non-numeric fields now
    return spec


def run_id(config):
    """Stable id of a run: the hash of its full configuration dict as sorted JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Runs a sweep plans without being told otherwise (--max-runs raises it): far more than a
# sweep on one machine finishes (a run of the smallest network takes about a second), few
# enough that the plan's configuration dicts stay within tens of megabytes.
MAX_RUNS = 10_000


@dataclasses.dataclass
class Plan:
    """The runs of a sweep: ``runs`` is a list of ``(id, config dict, changes, error)`` in
    order; a run whose combination fails validation carries the settings tried and its error
    (it is recorded, never run)."""

    base: TrainConfig
    swept: list
    runs: list


def count_runs(grid, random=(), samples=0):
    """How many runs ``grid`` x ``samples`` random points make (before duplicates are
    merged), from the number of values of each key: nothing is built."""
    n = math.prod(len(vs) for vs in grid.values())
    return n * (samples if list(random) else 1)


def _size_text(grid, random, samples):
    parts = [f"{len(vs)} {k}" for k, vs in grid.items()]
    if list(random):
        parts.append(f"{samples:,} random samples")
    return " x ".join(parts)


def check_size(grid, random=(), samples=0, max_runs=MAX_RUNS):
    """Raise ConfigError if the plan would hold more than ``max_runs`` runs (counted, not
    built)."""
    n = count_runs(grid, random, samples)
    if max_runs is not None and n > max_runs:
        raise ConfigError(f"the sweep would plan {n:,} runs ({_size_text(grid, random, samples)}"
                          f"), more than the limit of {max_runs:,}; narrow the grid or "
                          f"--samples, or raise the limit with --max-runs {n}")
    return n


def _points(random, samples, seed):
    """The random points, drawn one at a time (seeded: the same points on every rerun)."""
    if not random:
        yield {}
        return
    rng = np.random.default_rng(seed)
    for _ in range(samples):
        yield {r.name: r.sample(rng) for r in random}


def iter_runs(base, grid, random=(), samples=0, seed=0):
    """The runs of the plan, generated lazily: ``(id, config, changes, error)``, with
    duplicates (the same configuration twice) given once."""
    keys, seen = list(grid), set()
    for point in _points(list(random), samples, seed):
        for combo in itertools.product(*(grid[k] for k in keys)):
            changes = {**dict(zip(keys, combo)), **point}
            try:
                cfg = base.replace(**changes).to_dict()
            except ConfigError as exc:
                tried = {**base.to_dict(), **_jsonable(changes)}
                yield run_id(tried), tried, changes, str(exc)
                continue
            rid = run_id(cfg)
            if rid not in seen:  # the same run twice (e.g. a repeated grid value) runs once
                seen.add(rid)
                yield rid, cfg, changes, None


def expand(base, grid, random=(), samples=0, seed=0, max_runs=MAX_RUNS):
    """The runs of ``base`` x the cross product of ``grid`` ({field: [values]}) x ``samples``
    random points of the ``random`` specs (seeded by ``seed``). Raises ConfigError (before
    anything runs, and before the plan is built if it would exceed ``max_runs``) for a grid
    value that is invalid in every combination it appears in."""
    if isinstance(base, dict):
        base = TrainConfig.from_dict({k: coerce(k, v) for k, v in base.items()})
    grid = merge_keys(grid, "grid key")
    grid = {k: [coerce(k, v) for v in vs] for k, vs in grid.items()}
    for k, vs in grid.items():
        if not vs:
            raise ConfigError(f"grid key {k} has no values")
    random = list(random)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise ConfigError(f"--samples must be a whole number >= 0, got {samples!r}")
    if random and samples < 1:
        raise ConfigError("--random needs --samples N (N >= 1)")
    if samples and not random:
        raise ConfigError(f"--samples {samples} needs --random KEY=LOW:HIGH[:log] (the keys "
                          "to sample)")
    both = set(grid) & {r.name for r in random}
    if both:
        raise ConfigError(f"{', '.join(sorted(both))} is both in the grid and random; "
                          "give it once")
    check_size(grid, random, samples, max_runs)
    keys = list(grid)
    runs, ok_values, first_error = [], set(), {}
    for run in iter_runs(base, grid, random, samples, seed):
        runs.append(run)
        changes, err = run[2], run[3]
        for k in keys:
            if err is None:
                ok_values.add((k, repr(changes[k])))
            else:
                first_error.setdefault((k, repr(changes[k])), err)
    for (k, v), msg in first_error.items():
        if (k, v) not in ok_values:
            raise ConfigError(f"grid value {k}={v} is invalid in every run: {msg}")
    swept = [k for k in keys] + [r.name for r in random]
    return Plan(base, swept, runs)


def merge_keys(table, what, extra=()):
    """``table`` ({key: value}) keyed by field names; ConfigError if two keys name the same
    field (``batch-size`` and ``batch_size``, or one given twice)."""
    out, spelled = {}, {}
    for key, value in table.items():
        name = key if key in extra else field_name(key)
        if name in out:
            raise ConfigError(f"{what} {name} is given twice (as {spelled[name]!r} and "
                              f"{key!r}); give each key once")
        out[name], spelled[name] = value, key
    return out


def _jsonable(changes):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}


_SWEEP_KEYS = {"out": "a folder path (a string)", "workers": "a whole number >= 0",
               "threads_per_run": "a whole number >= 1", "dask": "an address (a string)",
               "max_runs": "a whole number >= 1"}


def _check_sweep_table(table):
    for key, value in table.items():
        if key not in _SWEEP_KEYS:
            raise ConfigError(f"unknown [sweep] key {key!r}; use "
                              f"{', '.join(sorted(_SWEEP_KEYS))}")
        want = _SWEEP_KEYS[key]
        ok = isinstance(value, str) if "string" in want else \
            is_whole(value) and value >= (0 if key == "workers" else 1)
        if not ok:
            raise ConfigError(f"[sweep] {key} must be {want}, got {value!r}")


def _in_table(table, key, value):
    try:
        coerce(key, value)
    except ConfigError as exc:
        raise ConfigError(f"[{table}] {exc}") from None


def _check_tables(doc):
    """Every value of the four tables of a sweep file has the type its key takes."""
    for name in ("base", "grid", "random", "sweep"):
        if not isinstance(doc.get(name, {}), dict):
            raise ConfigError(f"{name} must be a table ([{name}] with KEY = VALUE lines), got "
                              f"{doc[name]!r}")
    base = dict(doc.get("base", {}))
    preset = base.pop("preset", None)
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(f"[base] preset must be a preset's name (a string), got {preset!r}")
    for key, value in merge_keys(base, "[base] key").items():
        _in_table("base", key, value)
    for key, values in merge_keys(doc.get("grid", {}), "[grid] key").items():
        if not isinstance(values, list):
            raise ConfigError(f"[grid] {key} must be a list of values, e.g. {key} = [a, b]")
        for v in values:
            _in_table("grid", key, v)
    rnd = dict(doc.get("random", {}))
    for key in ("samples", "seed"):
        if key in rnd and not (is_whole(rnd[key]) and rnd[key] >= 0):
            raise ConfigError(f"[random] {key} must be a whole number >= 0, got {rnd[key]!r}")
        rnd.pop(key, None)
    for key, spec in merge_keys(rnd, "[random] key").items():
        if not isinstance(spec, str):
            raise ConfigError(f'[random] {key} must be a string "LOW:HIGH" or "LOW:HIGH:log", '
                              f"got {spec!r}")
        parse_random_arg(f"{key}={spec}")
    _check_sweep_table(doc.get("sweep", {}))


def load_sweep_file(path):
    """A TOML sweep file: ``[base]`` train settings (``preset`` too), ``[grid]`` lists,
    ``[random]`` ``KEY = "LOW:HIGH[:log]"`` plus ``samples``/``seed``, ``[sweep]`` workers,
    threads_per_run, out, dask, max_runs. Returns a dict of those four tables; every value is
    checked for its type here (a ConfigError names the file, the table and the key)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            doc = tomllib.loads(f.read().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read sweep file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"sweep file {path} is not UTF-8 text (byte {exc.start}); save it as "
                          "UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep file {path} is not valid TOML: {exc}") from None
    unknown = set(doc) - {"base", "grid", "random", "sweep"}
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown tables {', '.join(sorted(unknown))}; "
                          "use [base], [grid], [random], [sweep]")
    try:
        _check_tables(doc)
    except ConfigError as exc:
        raise ConfigError(f"sweep file {path}: {exc}") from None
    return {t: dict(doc.get(t, {})) for t in ("base", "grid", "random", "sweep")}


def format_value(v):
    """A value as the sweep's command line spells it (``256/128`` for a list)."""
    if isinstance(v, (list, tuple)):
        return "/".join(map(str, v))
    return f"{v:g}" if isinstance(v, float) else str(v)
