"""Where runs execute: local worker processes (``LocalPool``), a Dask cluster (``DaskPool``)
or this process (``SerialPool``). A job is ``(id, config dict, checkpoint path or None)``.
Every pool only returns records: the sweep's main process alone writes ``results.jsonl``, so no
worker can write after the sweep is gone.

Local workers are started with 'spawn' (forking a process whose Numba/OpenMP threads already
run is unsafe), in their own session (a terminal's Ctrl-C reaches the sweep, which stops them),
and die with the sweep: the kernel kills them when it dies (PR_SET_PDEATHSIG on Linux), a
watchdog thread exits when their parent changes, and they exit when their pipe closes.
"""

import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import wait

from . import worker

_POLL_SECONDS = 0.5


def _die_with_parent(parent_pid):
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _worker_main(conn, parent_pid):
    os.setsid()
    _die_with_parent(parent_pid)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        kind = msg[0]
        if kind == "stop":
            return
        if kind == "warm":
            try:
                worker.warm(msg[1])
                conn.send(("warmed", None))
            except Exception as exc:  # the real run will report it as its error
                conn.send(("warmed", worker.one_line(exc)))
        elif kind == "run":
            try:
                conn.send(("done", worker.run_config(*msg[1:])))
            except (BrokenPipeError, OSError):
                return


class SerialPool:
    """Runs in this process, one after another (``workers=0``; also the reference)."""

    current = 0

    def run(self, jobs, on_record, warm_config=None):
        for rid, config, save in jobs:
            self.current = 1
            rec = worker.run_config(rid, config, save)
            if rec.pop("interrupted", False):
                raise KeyboardInterrupt
            self.current = 0
            on_record(rec)

    def running(self):
        return self.current

    def close(self):
        pass


class LocalPool:
    """``workers`` processes on this machine, one run at a time each."""

    def __init__(self, workers):
        self.n = workers
        self.ctx = multiprocessing.get_context("spawn")
        self.procs = {}   # conn -> (process, job or None)

    def _start(self):
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=_worker_main, args=(child, os.getpid()), daemon=True,
                             name="fastmlp-sweep-worker")
        p.start()
        child.close()
        self.procs[parent] = (p, None)
        return parent

    def running(self):
        return sum(job is not None for _, job in self.procs.values())

    def run(self, jobs, on_record, warm_config=None):
        """Run ``jobs``, calling ``on_record`` for each; workers already started (by an
        earlier call) are reused, with their data and compiled code."""
        jobs = list(jobs)
        if not jobs:
            return
        if not self.procs and warm_config is not None:
            first = self._start()  # fill Numba's cache once, before the others start
            first.send(("warm", warm_config))
            while not first.poll(_POLL_SECONDS):
                if not self.procs[first][0].is_alive():
                    break
            if first.poll(0):
                first.recv()
        while len(self.procs) < min(self.n, len(jobs)):
            self._start()
        queue = list(reversed(jobs))
        for conn in list(self.procs):
            self._give(conn, queue)
        while self.running():
            for conn in wait(list(self.procs)):
                p, job = self.procs[conn]
                try:
                    _, rec = conn.recv()
                except (EOFError, OSError):
                    p.join(5)
                    del self.procs[conn]
                    if job is not None:
                        on_record({"id": job[0], "config": job[1], "summary": None,
                                   "error": f"the worker process died (exit code {p.exitcode})"
                                            " during this run"})
                    if queue:
                        self._give(self._start(), queue)
                    continue
                self.procs[conn] = (p, None)
                on_record(rec)
                self._give(conn, queue)

    def _give(self, conn, queue):
        p, _ = self.procs[conn]
        if queue:
            job = queue.pop()
            conn.send(("run", *job))
            self.procs[conn] = (p, job)

    def close(self):
        """Stop every worker (a run in progress is abandoned) and wait for them to exit."""
        for conn, (p, job) in list(self.procs.items()):
            if job is None:
                try:
                    conn.send(("stop",))
                except OSError:
                    pass
            else:
                p.terminate()
        deadline = time.monotonic() + 10
        for conn, (p, _) in list(self.procs.items()):
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(5)
            conn.close()
        self.procs.clear()


_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def check_address(address):
    """Raise ConfigError unless ``address`` looks like a scheduler's: [SCHEME://]HOST:PORT
    (SCHEME one of tcp, tls, ...; PORT 1..65535)."""
    from ..errors import ConfigError

    def bad(why):
        raise ConfigError(f"--dask {address!r} is not a scheduler address ({why}); give "
                          "tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786")

    if not isinstance(address, str) or not address.strip():
        bad("it is empty")
    if any(c.isspace() for c in address) or "\0" in address:
        bad("it holds spaces or control characters")
    scheme, sep, rest = address.rpartition("://")
    if sep and scheme not in _SCHEMES:
        bad(f"unknown scheme {scheme!r}; use one of {', '.join(_SCHEMES)}")
    if scheme == "inproc":
        return
    host, colon, port = rest.rpartition(":")
    if not colon or not host.strip("[]"):
        bad("no HOST:PORT")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        bad(f"the port {port!r} is not a number in 1..65535")


class DaskPool:
    """Runs as tasks on an existing dask.distributed cluster; records come back here."""

    def __init__(self, address, timeout=30):
        try:
            from distributed import Client
        except ModuleNotFoundError:
            from ..errors import ConfigError

            raise ConfigError('--dask needs dask.distributed: pip install "fastmlp[dask]"') \
                from None
        check_address(address)
        try:
            self.client = Client(address, timeout=timeout)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            from ..errors import ConfigError

            raise ConfigError(f"cannot reach the Dask scheduler at {address} ({exc}); start "
                              "one with `dask scheduler` or check the address") from None
        self.futures = []

    def running(self):
        return sum(not f.done() for f in self.futures)

    def run(self, jobs, on_record, warm_config=None):
        from distributed import as_completed

        by_key = {}
        for rid, config, save in jobs:
            if save is not None:
                from ..errors import ConfigError

                raise ConfigError("keeping the runs' weights is not supported with --dask")
            fut = self.client.submit(worker.run_config, rid, config, key=f"fastmlp-run-{rid}",
                                     pure=False)
            by_key[fut.key] = (rid, config)
            self.futures.append(fut)
        for fut in as_completed(self.futures):
            rid, config = by_key[fut.key]
            try:
                rec = fut.result()
            except Exception as exc:  # the task itself failed (e.g. its worker died)
                rec = {"id": rid, "config": config, "summary": None,
                       "error": worker.one_line(exc)}
            rec.pop("interrupted", None)
            on_record(rec)

    def close(self):
        for f in self.futures:
            if not f.done():
                f.cancel()
        self.client.close()
