"""``fastmlp.sweep(base, grid, ...)``: plan the runs, skip those already in results.jsonl,
run the rest in a pool, append each record as it arrives, then write the summaries and plots."""

import contextlib
import os
import signal
import threading
import time

from ..config import TrainConfig
from ..errors import ConfigError
from ..threads import available_cores
from . import grid as G
from . import store

# Default workers x threads per run (issue 13, to be measured on the 2-core machine): networks
# whose widest hidden layer is at most this wide run one per core with one thread each; wider
# ones (memory-bound, parallel kernels pay) run one at a time with every core.
SMALL_MAX_WIDTH = 256


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the sweep; ``rows`` holds every run finished so far
    (recorded in results.jsonl), ``abandoned`` the number of runs in progress that were
    stopped (they run again on resume)."""

    def __init__(self, rows, abandoned, total):
        super().__init__("sweep stopped")
        self.rows, self.abandoned, self.total = rows, abandoned, total


def default_parallelism(widest, workers=None, threads=None, cores=None):
    """``(workers, threads_per_run, reason)`` for a sweep whose widest hidden layer is
    ``widest``; either number given is kept and the other fills the cores."""
    cores = cores or available_cores()
    if workers is not None and threads is not None:
        return workers, threads, "as given"
    if workers is not None:
        return workers, max(1, cores // max(1, workers)), "threads fill the cores"
    if threads is not None:
        return max(1, cores // threads), threads, "workers fill the cores"
    if widest <= SMALL_MAX_WIDTH:
        return cores, 1, f"default for hidden layers <= {SMALL_MAX_WIDTH} wide"
    return 1, cores, f"default for hidden layers > {SMALL_MAX_WIDTH} wide"


def _widest(base, grid):
    sizes = [max(base.hidden)]
    for v in grid.get("hidden", ()):
        sizes.append(max(G.coerce("hidden", v)))
    return max(sizes)


def _by_data_setting(jobs):
    """``jobs`` with runs of the same data setting together (first appearance order), so a
    worker, which keeps the data of its last setting, reloads it as rarely as possible."""
    from .worker import data_key

    first = {}
    for job in jobs:
        first.setdefault(data_key(job[1]), len(first))
    return sorted(jobs, key=lambda job: first[data_key(job[1])])


class _Signals:
    """SIGTERM and Ctrl-C raise KeyboardInterrupt (``ignore=False``), or both are ignored
    (``ignore=True``, while the workers are being stopped). Within :meth:`held` a signal waits
    until the block is done, so that a run is both in results.jsonl and counted, or neither."""

    def __init__(self, ignore=False):
        self.ignore = ignore
        self.previous = {}
        self.holding = False
        self.pending = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if sig == signal.SIGINT and not self.ignore and \
                        signal.getsignal(sig) is not signal.default_int_handler:
                    continue  # Ctrl-C ignored (a background job) or the host's own: left so
                self.previous[sig] = signal.signal(
                    sig, signal.SIG_IGN if self.ignore else self._raise)
        return self

    def _raise(self, signum, frame):
        if self.holding:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self):
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


def sweep(base=None, grid=None, *, random=(), samples=0, seed=0, out=None, workers=None,
          threads_per_run=None, dask=None, retry_errors=False, plots=True, save_models=False,
          on_start=None, on_result=None):
    """Run ``base`` (a TrainConfig or a dict of its fields; default ``TrainConfig()``) over the
    cross product of ``grid`` ({field: [values]}, fields or flag spellings, values as Python
    objects or as flag text) times ``samples`` random points of ``random`` (RandomSpec or
    "KEY=LOW:HIGH[:log]" strings, seeded by ``seed``).

    out: a folder for results.jsonl (resumed: runs already there are skipped, failed ones too
    unless ``retry_errors``), summary.csv, summary.md and plots; ``None`` keeps everything in
    memory. workers: local processes (0 runs in this process); threads_per_run: threads of each
    run (default from :func:`default_parallelism`, or ``base.threads`` if set). dask: the
    address of a dask.distributed scheduler to send the runs to instead. save_models: keep
    each run's final weights in ``out/models/<id>.npz`` (a checkpoint, for load_model).
    on_start(info) and on_result(record, progress) report to the caller.

    Returns a :class:`~fastmlp.sweep.store.Rows` (a list of the runs' records, plan order).
    Raises ConfigError before anything runs for a grid value that is never valid, and
    :class:`SweepInterrupted` on Ctrl-C or SIGTERM after recording what finished.
    """
    base = base if base is not None else TrainConfig()
    if isinstance(base, dict):
        base = TrainConfig.from_dict({G.field_name(k): G.coerce(G.field_name(k), v)
                                      for k, v in base.items()})
    grid = {G.field_name(k): list(v) for k, v in (grid or {}).items()}
    random = [G.parse_random_arg(r) if isinstance(r, str) else r for r in random]
    if threads_per_run is None and base.threads is not None:
        threads_per_run = base.threads
    if dask is not None:
        n_workers, threads, reason = 0, threads_per_run or 1, "on the Dask cluster"
    else:
        n_workers, threads, reason = default_parallelism(_widest(base, grid), workers,
                                                         threads_per_run)
    if "threads" not in grid and not any(r.name == "threads" for r in random):
        base = base.replace(threads=threads)
    plan = G.expand(base, grid, random, samples, seed)
    save = {rid for rid, *_ in plan.runs} if save_models else ()
    return run_plan(plan, out=out, workers=n_workers, threads=threads, reason=reason,
                    dask=dask, retry_errors=retry_errors, summaries=True, plots=plots,
                    save=save, on_start=on_start, on_result=on_result)


def model_path(out, rid):
    """Where a run's weights are kept with ``save_models`` (or the report's saved runs)."""
    return os.path.join(out, "models", f"{rid}.npz")


def _results_file(out):
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out} is a file; give a folder for the sweep's results")
    try:
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, store.RESULTS)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    except OSError as exc:
        raise ConfigError(f"cannot write the sweep's results in {out}: "
                          f"{exc.strerror}; choose another --out") from None
    return path


def make_pool(workers, dask=None):
    """A pool: on the Dask cluster at ``dask``, else ``workers`` local processes (0: this
    process)."""
    from . import pool

    if dask is not None:
        return pool.DaskPool(dask)
    return pool.LocalPool(workers) if workers else pool.SerialPool()


def run_plan(plan, *, out=None, workers=1, threads=1, reason="", dask=None,
             retry_errors=False, summaries=True, plots=True, save=(), pool=None,
             on_start=None, on_result=None):
    """Run ``plan`` (a :class:`~fastmlp.sweep.grid.Plan`: its runs' ids, configuration dicts,
    changes and validation errors) as :func:`sweep` does: resumed from ``out/results.jsonl``,
    ``workers`` processes (0: this process) or ``dask``; ``save`` holds the ids whose weights
    are kept (``model_path``; a recorded run whose file is missing runs again). ``pool``: a
    pool to use and leave running (closed only on interruption), else one made and closed
    here. Returns Rows."""
    path = _results_file(out) if out is not None else None
    records, bad = store.read_records(path) if path else ({}, 0)
    if retry_errors:
        records = {k: r for k, r in records.items() if not r.get("error")}
    if save and out is None:
        raise ConfigError("keeping the runs' weights needs an output folder")
    saves = {rid: model_path(out, rid) for rid in save}
    for rid, p in saves.items():
        if rid in records and not records[rid].get("error") and not os.path.exists(p):
            del records[rid]
    if saves:
        os.makedirs(os.path.join(out, "models"), exist_ok=True)
    plan_ids = {rid for rid, *_ in plan.runs}
    done_before = sum(rid in records for rid in plan_ids)
    pending = [(rid, cfg, saves.get(rid)) for rid, cfg, _, err in plan.runs
               if rid not in records and not err]
    pending = _by_data_setting(pending)
    invalid = [(rid, cfg, err) for rid, cfg, _, err in plan.runs if rid not in records and err]
    changes = {rid: ch for rid, _, ch, _ in plan.runs}
    total = len(plan.runs)
    state = {"done": done_before, "ran": 0, "t0": time.monotonic()}

    def record(rec, ran=True):
        rec.pop("interrupted", None)
        with signals.held():  # in the file, the rows and the progress, or in none of them
            if path is not None:
                store.append_record(path, rec)
            records[rec["id"]] = rec
            state["done"] += 1
            state["ran"] += ran
            if on_result is not None:
                left = total - state["done"]
                eta = ((time.monotonic() - state["t0"]) / state["ran"] * left) \
                    if state["ran"] else None
                on_result(rec, dict(done=state["done"], total=total,
                                    changes=changes[rec["id"]], eta=eta))

    own = pool is None
    if own:  # first, so that an unreachable cluster is refused before anything is printed
        pool = make_pool(workers, dask)
    interrupted = None
    signals = _Signals()
    try:
        with signals:
            if on_start is not None:
                on_start(dict(total=total, pending=len(pending), done=done_before,
                              invalid=len(invalid), workers=workers, threads=threads,
                              reason=reason, dask=dask, path=path, bad_lines=bad,
                              swept=plan.swept))
            for rid, cfg, err in invalid:
                record({"id": rid, "config": cfg, "summary": None, "error": err}, ran=False)
            state["t0"] = time.monotonic()
            pool.run(pending, record, warm_config=pending[0][1] if pending else None)
    except KeyboardInterrupt:
        interrupted = pool.running()
    finally:
        if own or interrupted is not None:
            with _Signals(ignore=True):
                pool.close()
    rows = store.Rows([records[rid] for rid, *_ in plan.runs if rid in records], plan.swept)
    if out is not None and rows and summaries:
        store.write_summaries(rows, out)
        if plots:
            from .plots import write_plots

            rows.plots = write_plots(rows, out)
    if interrupted is not None:
        raise SweepInterrupted(rows, interrupted, total)
    return rows
