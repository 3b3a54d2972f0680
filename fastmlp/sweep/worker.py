"""Running one configuration: in a local worker process, on a Dask worker, or in this process.

A process keeps the data it prepared for the last data setting (and the raw data set) and
reuses them for the next run with the same setting; ``train(cfg, data=...)`` gives the same
result as ``train(cfg)``.
"""

import dataclasses
import json
import threading

from ..errors import FastMLPError
from .store import _default

# What prepare_data(cfg) reads; the stratified split also depends on the seed.
DATA_FIELDS = ("dataset", "data_dir", "download", "split", "crop", "center", "auto_crop",
               "normalize")
_CACHE = {"key": None, "data": None}
_LOCK = threading.Lock()  # a Dask worker may run tasks in several threads


def data_key(config):
    """What decides a configuration dict's prepared data (runs with equal keys share it)."""
    key = tuple(str(config.get(f)) for f in DATA_FIELDS)
    return key + ((config.get("seed"),) if config.get("split") != "book" else ())


def data_for(cfg):
    """Prepared data for ``cfg``, reused while the data setting stays the same."""
    from ..training.run_data import prepare_data

    key = data_key(cfg.to_dict())
    with _LOCK:
        if _CACHE["key"] != key:
            _CACHE.update(key=None, data=None)  # free the old arrays before loading new ones
            _CACHE.update(key=key, data=prepare_data(cfg))
        return _CACHE["data"]


def one_line(exc):
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, FastMLPError) else f"{type(exc).__name__}: {text}"


def run_config(rid, config, save=None):
    """Train ``config`` (a TrainConfig dict) and return its results.jsonl record; ``save``: a
    checkpoint path for its weights. A failure is a record with the one-line error; an
    interrupted run has ``"interrupted": True``."""
    from ..config import TrainConfig
    from ..training.run import train

    record = {"id": rid, "config": config, "summary": None, "error": None}
    try:
        cfg = TrainConfig.from_dict(config)
        result = train(cfg, data=data_for(cfg), save=save)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a failed run is a row, and the sweep goes on
        record["error"] = one_line(exc)
        return record
    if result.stopped == "interrupted":
        record["interrupted"] = True
    record["summary"] = json.loads(json.dumps(result.summary, default=_default))
    return record


def warm(config):
    """Load (or compile) every compiled function a run of ``config`` calls, with one short run
    on a few images, so that workers started after this one find Numba's cache filled."""
    from ..config import TrainConfig
    from ..training.run import train
    from ..training.run_data import Data

    cfg = TrainConfig.from_dict(config)
    data = data_for(cfg)
    sp = data.splits
    tiny = dataclasses.replace(
        sp, train_x=sp.train_x[:64], train_y=sp.train_y[:64], val_x=sp.val_x[:16],
        val_y=sp.val_y[:16], test_x=sp.test_x[:16], test_y=sp.test_y[:16],
        test_full_x=sp.test_full_x[:16], test_full_y=sp.test_full_y[:16])
    train(cfg.replace(epochs=1, early_stop=None, batch_ramp=None, batch_size=16),
          data=Data(data.dataset, tiny, data.transform))
