"""One sweep at a time per output folder: ``OUT/sweep.lock``.

A second sweep (or report) started on a folder in use does not wait: it stops at once with one
line naming the holder (pid, host, start time). Waiting would hold a terminal for as long as
the first sweep runs (hours) to do nothing: every run it would have trained is by then in
``results.jsonl``, so rerunning the command afterwards resumes at no cost.

How: the holder keeps an exclusive ``flock`` on the file for its lifetime and writes who it is
into it. The kernel drops a flock when its process dies, however it dies (kill -9 included), so
on the same machine a free flock means the holder is gone and its lock is taken over. Across
machines (a shared ``--out`` on NFS) a flock is only as good as the file system's lock support,
so a lock written by another host is never taken over automatically: the message says to delete
the file if that sweep is no longer running. Dask changes nothing here: only the sweep's main
process, on the machine it was started on, writes the folder. The holder removes the file when
it ends; a reader that opened a file being removed notices (the path no longer leads to the
file it locked) and tries again.
"""

import contextlib
import datetime
import errno
import json
import os
import socket

from ..errors import ConfigError

LOCK = "sweep.lock"


def _start_time(pid):
    """The kernel's start time of process ``pid`` (clock ticks since boot), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(info):
    """Whether the process a lock of this host names still runs (the same process: its start
    time matches, so a reused pid is not mistaken for it)."""
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = info.get("proc_start")
    return started is None or _start_time(pid) in (None, started)


def _read(fd):
    try:
        data = os.pread(fd, 4096, 0)
        info = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {"unreadable": True}
    return info if isinstance(info, dict) else {"unreadable": True}


def _who(info):
    if info.get("unreadable") or not info:
        return "its holder is not recorded (yet)"
    return (f"pid {info.get('pid')} on host {info.get('host')}, started "
            f"{info.get('started')}")


def _refuse(folder, path, info, other_host):
    if other_host:
        raise ConfigError(f"{folder} is locked by a sweep on another machine ({_who(info)}); "
                          f"if it is no longer running, delete {path} and rerun; else wait "
                          "for it or choose another --out")
    raise ConfigError(f"{folder} is in use by another sweep ({_who(info)}); wait for it to "
                      "finish (rerunning the same command then resumes) or choose another "
                      "--out")


def acquire(folder):
    """Lock ``folder`` for this process; returns what :func:`release` takes. Raises
    ConfigError naming the holder if another live sweep holds it."""
    path = os.path.join(folder, LOCK)
    host = socket.gethostname()
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot create the sweep's lock file {path} "
                              f"({exc.strerror or exc}); choose another --out") from None
        flocked = True
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read(fd)
            os.close(fd)
            _refuse(folder, path, info, info.get("host") not in (None, host))
        except (OSError, ImportError) as exc:  # no flock here (some network file systems)
            if getattr(exc, "errno", errno.ENOLCK) not in (errno.ENOLCK, errno.EOPNOTSUPP,
                                                          errno.ENOSYS, None):
                os.close(fd)
                raise ConfigError(f"cannot lock {path} ({exc}); choose another --out") \
                    from None
            flocked = False
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # removed by its holder between our open and our lock: again
            os.close(fd)
            continue
        info = _read(fd)
        if info:
            other = info.get("host") != host
            if other or info.get("unreadable") or (not flocked and _alive(info)):
                os.close(fd)
                _refuse(folder, path, info, other)
        mine = dict(pid=os.getpid(), host=host, proc_start=_start_time(os.getpid()),
                    started=datetime.datetime.now(datetime.timezone.utc).strftime(
                        "%Y-%m-%d %H:%M:%S UTC"))
        data = (json.dumps(mine) + "\n").encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            raise ConfigError(f"cannot write the sweep's lock file {path} "
                              f"({exc.strerror or exc}); choose another --out") from None
        return fd, path


def release(lock):
    """Remove the lock file and drop the lock."""
    fd, path = lock
    with contextlib.suppress(OSError):
        os.unlink(path)
    with contextlib.suppress(OSError):
        os.close(fd)


@contextlib.contextmanager
def held(folder):
    """``with held(folder):`` this process alone writes ``folder``'s sweep."""
    lock = acquire(folder)
    try:
        yield lock[1]
    finally:
        release(lock)
