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


def coerce(name, value):
    """A value from Python or a TOML file as the field's type (strings parse like flags)."""
    if isinstance(value, str):
        return parse_value(name, value)
    if name in LIST_FIELDS:
        return tuple(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    if isinstance(FIELDS[name].default, float) and isinstance(value, int) \
            and not isinstance(value, bool):
        return float(value)
    return value


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
    log = len(parts) == 3
    if not low < high or (log and low <= 0):
        raise ConfigError(f"--random {text!r}: need LOW < HIGH (and LOW > 0 with :log)")
    spec = RandomSpec(name, low, high, log)
    spec.sample(np.random.default_rng(0))  # refuses non-numeric fields now
    return spec


def run_id(config):
    """Stable id of a run: the hash of its full configuration dict as sorted JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass
class Plan:
    """The runs of a sweep: ``runs`` is a list of ``(id, config dict, changes, error)`` in
    order; a run whose combination fails validation carries the settings tried and its error
    (it is recorded, never run)."""

    base: TrainConfig
    swept: list
    runs: list


def expand(base, grid, random=(), samples=0, seed=0):
    """The runs of ``base`` x the cross product of ``grid`` ({field: [values]}) x ``samples``
    random points of the ``random`` specs (seeded by ``seed``). Raises ConfigError (before
    anything runs) for a grid value that is invalid in every combination it appears in."""
    if isinstance(base, dict):
        base = TrainConfig.from_dict({k: coerce(k, v) for k, v in base.items()})
    grid = {field_name(k): [coerce(field_name(k), v) for v in vs] for k, vs in grid.items()}
    for k, vs in grid.items():
        if not vs:
            raise ConfigError(f"grid key {k} has no values")
    random = list(random)
    if random and samples < 1:
        raise ConfigError("--random needs --samples N (N >= 1)")
    both = set(grid) & {r.name for r in random}
    if both:
        raise ConfigError(f"{', '.join(sorted(both))} is both in the grid and random; "
                          "give it once")
    rng = np.random.default_rng(seed)
    points = [{r.name: r.sample(rng) for r in random} for _ in range(samples)] or [{}]
    keys = list(grid)
    runs, seen, ok_values, first_error = [], set(), set(), {}
    for point in points:
        for combo in itertools.product(*(grid[k] for k in keys)):
            changes = {**dict(zip(keys, combo)), **point}
            try:
                cfg = base.replace(**changes).to_dict()
            except ConfigError as exc:
                for k, v in zip(keys, combo):
                    first_error.setdefault((k, repr(v)), str(exc))
                tried = {**base.to_dict(), **_jsonable(changes)}
                runs.append((run_id(tried), tried, changes, str(exc)))
                continue
            for k, v in zip(keys, combo):
                ok_values.add((k, repr(v)))
            rid = run_id(cfg)
            if rid not in seen:  # the same run twice (e.g. a repeated grid value) runs once
                seen.add(rid)
                runs.append((rid, cfg, changes, None))
    for (k, v), msg in first_error.items():
        if (k, v) not in ok_values:
            raise ConfigError(f"grid value {k}={v} is invalid in every run: {msg}")
    swept = [k for k in keys] + [r.name for r in random]
    return Plan(base, swept, runs)


def _jsonable(changes):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}


def load_sweep_file(path):
    """A TOML sweep file: ``[base]`` train settings (``preset`` too), ``[grid]`` lists,
    ``[random]`` ``KEY = "LOW:HIGH[:log]"`` plus ``samples``/``seed``, ``[sweep]`` workers,
    threads_per_run, out. Returns a dict of those four tables."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read sweep file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep file {path} is not valid TOML: {exc}") from None
    unknown = set(doc) - {"base", "grid", "random", "sweep"}
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown tables {', '.join(sorted(unknown))}; "
                          "use [base], [grid], [random], [sweep]")
    for table in ("grid",):
        for k, v in doc.get(table, {}).items():
            if not isinstance(v, list):
                raise ConfigError(f"sweep file {path}: [grid] {k} must be a list of values")
    return {t: dict(doc.get(t, {})) for t in ("base", "grid", "random", "sweep")}


def format_value(v):
    """A value as the sweep's command line spells it (``256/128`` for a list)."""
    if isinstance(v, (list, tuple)):
        return "/".join(map(str, v))
    return f"{v:g}" if isinstance(v, float) else str(v)
