"""A sweep's results on disk: ``results.jsonl`` (one line per finished run, appended
atomically) and the rows read back from it, with their per-run and seed-grouped tables.

Each line is ``{"id", "config", "summary", "error"}``, written by one ``os.write`` of the whole
line on a file opened with ``O_APPEND`` and then fsynced, so a killed sweep leaves at most one
torn last line; reading skips a line that does not parse, and the next append starts on a fresh
line.
"""

import csv
import errno
import io
import json
import math
import os
import statistics

import numpy as np

from ..files import atomic_write

RESULTS = "results.jsonl"
METRICS = (("val", "val_accuracy"), ("test", "test_accuracy"),
           ("test_full", "test_accuracy_full"))
TIMES = (("train_seconds", "train_seconds"), ("samples_per_second", "samples_per_second"))


def _default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o).__name__)


def append_record(path, record):
    """Append ``record`` as one JSON line: a single write with O_APPEND, then fsync."""
    line = json.dumps(record, default=_default, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:  # a torn last line (killed mid-write) must not swallow this one
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    line = "\n" + line
        data = line.encode()
        written = os.write(fd, data)
        if written != len(data):  # a full disk can cut a write short
            raise OSError(errno.ENOSPC, f"short write to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)


# What a finished run's summary must hold to be tabulated, plotted and reported: numbers for
# these keys, and a history of epoch records with numbers for HISTORY_KEYS.
SUMMARY_KEYS = tuple(key for _, key in METRICS + TIMES)
HISTORY_KEYS = ("epoch", "loss", "train_accuracy", "val_accuracy", "seconds",
                "samples_per_second", "batch_size")


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def record_problem(rec):
    """What is wrong with the shape of a results.jsonl record, in words, or None: an ``id``
    string, a ``config`` table, an ``error`` (a string, or null for a finished run whose
    ``summary`` table holds numbers for SUMMARY_KEYS and a ``history`` list of epoch tables)."""
    if not isinstance(rec, dict):
        return f"a line must be a JSON object, got {type(rec).__name__}"
    missing = [k for k in ("id", "config", "summary", "error") if k not in rec]
    if missing:
        return f"it has no {', '.join(missing)}"
    if not isinstance(rec["id"], str):
        return f"its id must be a string, got {rec['id']!r}"
    if not isinstance(rec["config"], dict):
        return f"its config must be a table of settings, got {type(rec['config']).__name__}"
    if rec["error"] is not None:
        if not isinstance(rec["error"], str):
            return f"its error must be a string or null, got {rec['error']!r}"
        return None
    s = rec["summary"]
    if not isinstance(s, dict):
        return f"a run without an error needs a summary table, got {s!r}"
    bad = [k for k in SUMMARY_KEYS if not _number(s.get(k))]
    if bad:
        return f"its summary has no number for {', '.join(bad)}"
    history = s.get("history", [])
    if not isinstance(history, list) or not all(
            isinstance(h, dict) and all(_number(h.get(k)) for k in HISTORY_KEYS)
            for h in history):
        return f"its summary's history must be a list of epochs with {', '.join(HISTORY_KEYS)}"
    return None


class Scan:
    """What ``results.jsonl`` holds: ``records`` by id (the first good line of each id),
    ``torn`` (line numbers that are not JSON: a write cut short), ``mismatched`` (line numbers
    whose id is not the hash of their config: edited; not used, so their runs run again) and
    ``malformed`` ((line number, problem) of JSON lines of the wrong shape)."""

    def __init__(self, path):
        from .grid import run_id

        self.path, self.records = path, {}
        self.torn, self.mismatched, self.malformed = [], [], []
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return
        except OSError as exc:
            from ..errors import ConfigError

            raise ConfigError(f"cannot read {path} ({exc.strerror or exc}); choose another "
                              "--out") from None
        with f:
            for number, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except ValueError:
                    self.torn.append(number)
                    continue
                problem = record_problem(rec)
                if problem is not None:
                    self.malformed.append((number, problem))
                elif _id_of(rec, run_id) != rec["id"]:
                    self.mismatched.append(number)
                else:
                    self.records.setdefault(rec["id"], rec)

    def check(self):
        """Raise ConfigError naming the first malformed line (file and line number)."""
        if self.malformed:
            from ..errors import ConfigError

            number, problem = self.malformed[0]
            more = (f" (and {len(self.malformed) - 1} more line(s))"
                    if len(self.malformed) > 1 else "")
            raise ConfigError(f"{self.path} line {number}: {problem}{more}; fix or delete "
                              "the line (its run then runs again)")
        return self


def _id_of(rec, run_id):
    try:
        return run_id(rec["config"])
    except (TypeError, ValueError):  # a config that is no JSON (cannot come from a file)
        return None


def read_records(path):
    """The records of ``path`` by id (the first good line of duplicates), skipping lines that
    do not parse (a torn last line), lines of the wrong shape and lines whose id is not their
    config's. Returns ``(records, n_skipped_lines)``."""
    scan = Scan(path)
    return scan.records, len(scan.torn) + len(scan.mismatched) + len(scan.malformed)


def _value_text(v):
    if isinstance(v, (list, tuple)):
        return "/".join(map(str, v))
    if isinstance(v, float):
        return f"{v:g}"
    return "" if v is None else str(v)


def _spread(values):
    """Median and half the range of ``values`` (NaN for none)."""
    if not values:
        return float("nan"), float("nan")
    return float(statistics.median(values)), (max(values) - min(values)) / 2.0


class Rows(list):
    """The runs of a sweep, in plan order: each a dict ``{"id", "config", "summary", "error"}``
    (``summary`` is the run's metrics JSON, history included; ``None`` for a failed run).
    ``swept`` names the swept fields."""

    def __init__(self, rows=(), swept=()):
        super().__init__(rows)
        self.swept = list(swept)

    def table(self):
        """One flat dict per run: id, the swept values, accuracies, seconds, error."""
        out = []
        for r in self:
            s = r.get("summary") or {}
            cfg = r.get("config") or {}
            row = {"id": r["id"]}
            row.update({k: _value_text(cfg.get(k)) for k in self.swept})
            row.update({key: s.get(key) for _, key in METRICS + TIMES})
            row["error"] = r.get("error") or ""
            out.append(row)
        return out

    def to_csv(self, path=None):
        """The per-run table as CSV text; also written atomically to ``path`` if given."""
        return _csv(self.table(), path)

    def to_frame(self):
        """The per-run table as a pandas DataFrame (pandas is optional)."""
        try:
            import pandas as pd
        except ModuleNotFoundError:
            raise ModuleNotFoundError("to_frame() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.table())

    def grouped(self):
        """One dict per configuration with the seeds grouped: the swept values (seed aside),
        ``seeds``, ``errors``, and ``<metric>_median`` / ``<metric>_halfrange`` for val, test,
        test_full, train_seconds and samples_per_second; sorted by validation median, best
        first (configurations with no finished run last)."""
        keys = [k for k in self.swept if k != "seed"]
        groups = {}
        for r in self:
            groups.setdefault(group_key(r.get("config")), []).append(r)
        ensembles = getattr(self, "ensembles", None)
        out = []
        for gkey, runs in groups.items():
            cfg = runs[0].get("config") or {}
            ok = [r["summary"] for r in runs if not r.get("error") and r.get("summary")]
            g = {k: _value_text(cfg.get(k)) for k in keys}
            g["seeds"] = len(ok)
            g["errors"] = len(runs) - len(ok)
            for name, key in METRICS + TIMES:
                g[f"{name}_median"], g[f"{name}_halfrange"] = _spread([s[key] for s in ok])
            g["error"] = next((r["error"] for r in runs if r.get("error")), "")
            if ensembles is not None:  # the mean of the seeds' probabilities (ensemble.py)
                e = ensembles.get(gkey) or {}
                g["ensemble_members"] = e.get("members", 0)
                for name, _ in METRICS:
                    g[f"ensemble_{name}"] = e.get(name, float("nan"))
            out.append(g)
        out.sort(key=lambda g: float("inf") if math.isnan(g["val_median"]) else -g["val_median"])
        return out


def group_key(config):
    """The key of a run's configuration with its seed left out: runs that differ only in their
    seed share it (one row of the seed-grouped table, one ensemble)."""
    cfg = dict(config or {})
    cfg.pop("seed", None)
    return json.dumps(cfg, sort_keys=True, default=_default)


def _csv(table, path=None):
    buf = io.StringIO()
    if table:
        w = csv.DictWriter(buf, fieldnames=list(table[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(table)
    text = buf.getvalue()
    if path is not None:
        atomic_write(path, lambda f: f.write(text.encode()))
    return text


def summary_markdown(rows):
    """The seed-grouped table as Markdown: accuracies as median ± half-range (percent)."""
    groups = rows.grouped()
    keys = [k for k in rows.swept if k != "seed"]
    ensembles = getattr(rows, "ensembles", None) is not None
    head = keys + ["seeds", "val %", "test %", "test full %"] + (
        ["ensemble of", "ens. val %", "ens. test %", "ens. test full %"] if ensembles else []
    ) + ["train s", "samples/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in groups:
        cells = [g[k] for k in keys] + [str(g["seeds"])]
        for name, _ in METRICS:
            m, h = g[f"{name}_median"], g[f"{name}_halfrange"]
            cells.append("—" if math.isnan(m) else f"{100 * m:.2f} ± {100 * h:.2f}")
        if ensembles:
            cells.append(str(g["ensemble_members"]))
            for name, _ in METRICS:
                v = g[f"ensemble_{name}"]
                cells.append("—" if math.isnan(v) else f"{100 * v:.2f}")
        t, sps = g["train_seconds_median"], g["samples_per_second_median"]
        cells.append("—" if math.isnan(t) else f"{t:.1f}")
        cells.append("—" if math.isnan(sps) else f"{sps / 1000:.0f}k")
        if g["errors"]:
            cells[-1] += f" ({g['errors']} failed: {g['error']})"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summaries(rows, out):
    """summary.csv and summary.md in ``out`` (atomically). Returns their paths."""
    csv_path = os.path.join(out, "summary.csv")
    md_path = os.path.join(out, "summary.md")
    _csv(rows.grouped(), csv_path)
    text = summary_markdown(rows)
    atomic_write(md_path, lambda f: f.write(text.encode()))
    return csv_path, md_path
