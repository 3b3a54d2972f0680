"""Sweeps: many training runs over a grid (and random samples) of TrainConfig values, in
parallel worker processes or on a Dask cluster, resumable, tabulated and plotted.

``python -m fastmlp.sweep --grid crop=0,2 --grid seed=0,1,2 --out runs/crop`` from the command
line; ``fastmlp.sweep(base, {"crop": [0, 2], "seed": [0, 1, 2]}, out="runs/crop")`` from Python
(``fastmlp.sweep`` is both this package and that function).

Layout: grid.py (keys, values, random specs, sweep files, the runs and their ids, counted before
they are built) -> worker.py (one run, data reused) -> pool.py (local processes, Dask, serial)
-> store.py (results.jsonl, its lines checked, rows, summaries) -> plots.py -> lock.py (one
sweep per output folder) -> api.py (``sweep()``) -> command.py (the command line).
"""

import sys
import types

from .api import SweepInterrupted, default_parallelism, sweep
from .store import Rows, read_records

__all__ = ["Rows", "SweepInterrupted", "default_parallelism", "read_records", "sweep"]


class _CallableModule(types.ModuleType):
    """``fastmlp.sweep`` is both this package and :func:`fastmlp.sweep.api.sweep`: importing a
    subpackage makes it an attribute of its parent, which would shadow the function. Calling
    the package calls the function."""

    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
