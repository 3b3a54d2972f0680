"""A run's output files: the summary as strict JSON and the per-epoch history as CSV, each
written atomically (files.py)."""

import csv
import io
import json
import math
import os

import numpy as np

from ..files import atomic_write


def write_metrics_json(path, summary):
    """The summary as strict JSON: NaN and infinities (an empty split's loss) become null."""
    text = json.dumps(_finite_json(summary), indent=2, allow_nan=False)
    atomic_write(path, lambda f: f.write(text.encode()))


def _finite_json(o):
    """``o`` with NumPy scalars and arrays as Python values and non-finite floats as None."""
    if isinstance(o, dict):
        return {str(k): _finite_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, np.ndarray)):
        return [_finite_json(v) for v in (o.tolist() if isinstance(o, np.ndarray) else o)]
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (np.integer, int)):
        return int(o)
    if isinstance(o, (np.floating, float)):
        return float(o) if math.isfinite(o) else None
    return o


_MAX_OURS_BYTES = 64 * 2**20  # a metrics file or history this large was not written by fastmlp
_METRICS_KEYS = {"test_accuracy", "val_accuracy", "epochs", "config", "history"}
HISTORY_HEADER = "epoch,loss,train_accuracy,"


def _head(path, n):
    try:
        if os.path.getsize(path) > _MAX_OURS_BYTES:
            return None
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return None


def is_metrics_json(path):
    """Whether ``path`` holds a summary :func:`write_metrics_json` wrote (so --metrics-json may
    replace it)."""
    blob = _head(path, _MAX_OURS_BYTES)
    try:
        summary = json.loads(blob) if blob is not None else None
    except (ValueError, RecursionError):
        return False
    return isinstance(summary, dict) and _METRICS_KEYS <= set(summary)


def is_history_csv(path):
    """Whether ``path`` holds a history :func:`write_history_csv` wrote (or is empty)."""
    head = _head(path, len(HISTORY_HEADER))
    return head is not None and (head == b"" or head.decode("latin-1") == HISTORY_HEADER)


def write_history_csv(path, history):
    buf = io.StringIO()
    if history:
        n_layers = len(history[0]["weight_rms"])
        keys = [k for k in history[0] if k != "weight_rms"]
        w = csv.writer(buf)
        w.writerow(keys + [f"weight_rms_{l + 1}" for l in range(n_layers)])
        for h in history:
            w.writerow([h[k] for k in keys] + list(h["weight_rms"]))
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))
