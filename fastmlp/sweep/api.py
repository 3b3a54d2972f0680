"""``fastmlp.sweep(base, grid, ...)``: plan the runs, skip those already in results.jsonl,
run the rest in a pool, append each record as it arrives, then write the summaries and plots."""

import contextlib
import os
import signal
import threading
import time

from ..config import TrainConfig
from ..errors import ConfigError, OutputError
from ..threads import available_cores
from . import grid as G
from . import lock, store

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


# Memory of one local worker process besides its run's buffers (model.training_memory_bytes):
# the interpreter with NumPy, Numba and the compiled loop, and the prepared MNIST data. Peak
# (VmHWM) after one run of a 784-16-10 network on MNIST, one thread: 245 MB on an AMD EPYC
# (Zen 4), 2 cores, Python 3.11 (worker.run_config in a fresh process).
WORKER_BYTES = 256 * 2**20


def available_memory():
    """Bytes this machine can give new processes (MemAvailable; else its physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def run_bytes(configs):
    """The memory the largest of ``configs`` (dicts) needs to train, by
    model.training_memory_bytes (784 inputs, 10 classes: the largest the data sets have)."""
    from ..model import training_memory_bytes

    need = 0
    for cfg in configs:
        hidden = cfg.get("hidden") or [1]
        batch = max(b for b in (cfg.get("batch_size"), cfg.get("batch_ramp"), 1)
                    if isinstance(b, int))
        need = max(need, training_memory_bytes([784, *hidden, 10], batch))
    return need


def cap_workers(workers, threads, need, cores=None, memory=None):
    """``(workers, note)``: ``workers`` capped at the runs this machine can hold at once, its
    cores divided by ``threads`` per run and its available ``memory`` divided by a worker's
    (WORKER_BYTES + ``need``); ``note`` says so in one line when capped (else None)."""
    cores = cores or available_cores()
    memory = available_memory() if memory is None else memory
    by_cores = max(1, cores // max(1, threads))
    by_memory = max(1, memory // (WORKER_BYTES + need)) if memory else workers
    n = min(workers, by_cores, by_memory)
    if n >= workers:
        return workers, None
    why = (f"{cores} core(s) at {threads} thread(s) per run" if n == by_cores else
           f"{memory / 2**30:.1f} GB of memory available at about "
           f"{(WORKER_BYTES + need) / 2**30:.2f} GB per worker")
    return n, f"note: --workers {workers} capped at {n}: this machine has {why}"


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
          ensemble=False, max_runs=G.MAX_RUNS, on_start=None, on_result=None):
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
    ensemble: also score each configuration's seeds as an ensemble (the mean of their
    probabilities; implies ``save_models``) in the summaries (ensemble.py). max_runs: the most runs a plan may hold (counted before it is built; None: no limit).
    Local workers are capped at what the machine's cores and memory hold at once (the start
    info's ``note`` says so). on_start(info) and on_result(record, progress) report to the
    caller.

    Returns a :class:`~fastmlp.sweep.store.Rows` (a list of the runs' records, plan order).
    Raises ConfigError before anything runs for a grid value that is never valid, and
    :class:`SweepInterrupted` on Ctrl-C or SIGTERM after recording what finished.
    """
    base = base if base is not None else TrainConfig()
    if isinstance(base, dict):
        base = TrainConfig.from_dict({k: G.coerce(k, v)
                                      for k, v in G.merge_keys(base, "base key").items()})
    grid = {k: list(v) for k, v in G.merge_keys(grid or {}, "grid key").items()}
    random = [G.parse_random_arg(r) if isinstance(r, str) else r for r in random]
    names = [r.name for r in random]
    if len(set(names)) < len(names):
        raise ConfigError(f"a random key is given twice ({', '.join(names)}); give each once")
    if threads_per_run is None and base.threads is not None:
        threads_per_run = base.threads
    if dask is not None:
        from .pool import check_address

        check_address(dask)
        n_workers, threads, reason = 0, threads_per_run or 1, "on the Dask cluster"
    else:
        n_workers, threads, reason = default_parallelism(_widest(base, grid), workers,
                                                         threads_per_run)
    if "threads" not in grid and not any(r.name == "threads" for r in random):
        base = base.replace(threads=threads)
    plan = G.expand(base, grid, random, samples, seed, max_runs=max_runs)
    note = None
    if n_workers:
        n_workers, note = cap_workers(n_workers, threads,
                                      run_bytes(cfg for _, cfg, _, err in plan.runs if not err))
    if ensemble and out is None:
        raise ConfigError("an ensemble is made of the runs' saved models: give --out (out=)")
    save = {rid for rid, *_ in plan.runs} if save_models or ensemble else ()
    return run_plan(plan, out=out, workers=n_workers, threads=threads, reason=reason,
                    dask=dask, retry_errors=retry_errors, summaries=True, plots=plots,
                    save=save, note=note, on_start=on_start, on_result=on_result,
                    ensemble=ensemble)


def model_path(out, rid):
    """Where a run's weights are kept with ``save_models`` (or the report's saved runs)."""
    return os.path.join(out, "models", f"{rid}.npz")


def _kind_problem(path, want_dir):
    """Why ``path`` cannot be used as a folder (``want_dir``) or a file, or None."""
    if not os.path.lexists(path):
        return None
    if want_dir and not os.path.isdir(path):
        return "is a file, not a folder"
    if not want_dir and os.path.isdir(path):
        return "is a folder, not a file"
    if not want_dir and not os.path.isfile(path):
        return "is not a regular file (a device or a pipe)"
    return None


def check_outputs(out, files=(), folders=()):
    """Raise ConfigError before any run if ``out`` or one of its ``files`` / ``folders`` (names
    inside it) exists as the other kind, or ``out`` cannot be made."""
    problem = _kind_problem(out, True)
    if problem:
        raise ConfigError(f"--out {out} {problem}; give a folder for the sweep's results")
    for name in files:
        problem = _kind_problem(os.path.join(out, name), False)
        if problem:
            raise ConfigError(f"{os.path.join(out, name)} {problem}; remove it or choose "
                              "another --out")
    for name in folders:
        problem = _kind_problem(os.path.join(out, name), True)
        if problem:
            raise ConfigError(f"{os.path.join(out, name)} {problem}; remove it or choose "
                              "another --out")


def _results_file(out):
    check_outputs(out, [store.RESULTS])
    try:
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, store.RESULTS)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    except OSError as exc:
        raise ConfigError(f"cannot write the sweep's results in {out}: "
                          f"{exc.strerror or exc}; choose another --out") from None
    return path


def _output_error(path, exc, done):
    return OutputError(f"could not write {path} ({exc.strerror or exc}); the {done} run(s) "
                       f"recorded before are kept in {path}: free space and rerun the same "
                       "command to resume")


def make_pool(workers, dask=None):
    """A pool: on the Dask cluster at ``dask``, else ``workers`` local processes (0: this
    process)."""
    from . import pool

    if dask is not None:
        return pool.DaskPool(dask)
    return pool.LocalPool(workers) if workers else pool.SerialPool()


def run_plan(plan, *, out=None, workers=1, threads=1, reason="", dask=None,
             retry_errors=False, summaries=True, plots=True, save=(), pool=None, note=None,
             on_start=None, on_result=None, ensemble=False):
    """Run ``plan`` (a :class:`~fastmlp.sweep.grid.Plan`: its runs' ids, configuration dicts,
    changes and validation errors) as :func:`sweep` does: resumed from ``out/results.jsonl``,
    ``workers`` processes (0: this process) or ``dask``; ``save`` holds the ids whose weights
    are kept (``model_path``; a recorded run whose file is missing runs again). ``pool``: a
    pool to use and leave running (closed only on interruption), else one made and closed
    here. ``ensemble``: the summaries score each configuration's saved models as one. ``out`` is locked for the whole run (lock.py): a second sweep on it stops at once
    naming this one. Returns Rows."""
    if out is None:
        return _run_plan(plan, None, None, workers, threads, reason, dask, retry_errors, summaries,
                         plots, save, pool, note, on_start, on_result, False)
    from .plots import plot_names

    check_outputs(out, [store.RESULTS, "summary.csv", "summary.md", lock.LOCK]
                  + (plot_names(plan.swept) if summaries and plots else []),
                  ["models"] if save else [])
    path = _results_file(out)
    with lock.held(out):
        return _run_plan(plan, out, path, workers, threads, reason, dask, retry_errors, summaries,
                         plots, save, pool, note, on_start, on_result, ensemble)


def _recorded(out, path, retry_errors, save):
    """``(scan, records, saves)``: results.jsonl read (a line of the wrong shape refused), the
    records that count as done (failed ones not with ``retry_errors``; a saved run whose
    weights are missing not), and the weights' paths of the ids in ``save``."""
    scan = store.Scan(path).check() if path else None
    records = dict(scan.records) if scan else {}
    if retry_errors:
        records = {k: r for k, r in records.items() if not r.get("error")}
    if save and out is None:
        raise ConfigError("keeping the runs' weights needs an output folder")
    saves = {rid: model_path(out, rid) for rid in save}
    for rid, p in saves.items():
        if rid in records and not records[rid].get("error") and not os.path.exists(p):
            del records[rid]
    if saves:
        try:
            os.makedirs(os.path.join(out, "models"), exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot make {os.path.join(out, 'models')} "
                              f"({exc.strerror or exc}); choose another --out") from None
    return scan, records, saves


def _write_summaries(rows, out, path, plots):
    """summary.csv, summary.md and the plots; a full disk is an OutputError (exit 1)."""
    try:
        store.write_summaries(rows, out)
        if plots:
            from .plots import write_plots

            rows.plots = write_plots(rows, out)
    except OSError as exc:
        raise OutputError(f"could not write the summaries in {out} ({exc.strerror or exc}); "
                          f"every finished run is kept in {path}: free space and rerun the "
                          "same command to write them") from None


def _run_plan(plan, out, path, workers, threads, reason, dask, retry_errors, summaries, plots,
              save, pool, note, on_start, on_result, ensemble):
    scan, records, saves = _recorded(out, path, retry_errors, save)
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
                try:
                    store.append_record(path, rec)
                except OSError as exc:
                    raise _output_error(path, exc, state["done"]) from None
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
                              reason=reason, dask=dask, path=path,
                              bad_lines=len(scan.torn) if scan else 0,
                              mismatched=scan.mismatched if scan else [], note=note,
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
        if ensemble and interrupted is None:
            from .ensemble import ensemble_scores

            rows.ensembles = ensemble_scores(rows, lambda rid: model_path(out, rid))
        _write_summaries(rows, out, path, plots)
    if interrupted is not None:
        raise SweepInterrupted(rows, interrupted, total)
    return rows
