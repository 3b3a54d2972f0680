"""Atomic file writes: a file is either the old one or the complete new one, never partial.

The temporary file is ``.<name>.<pid>-<random>.tmp`` beside the target. A save killed mid-write
(kill -9, power cut) leaves it behind; the next write to the same target removes every such file
whose process is gone, so they never pile up. :func:`check_writable` tells, before any long
work, whether a write to a path can succeed at all.
"""

import contextlib
import os
import tempfile

from .errors import ConfigError


def _temp_prefix(path):
    return "." + os.path.basename(path) + "."


def remove_stale_temps(path):
    """Remove the temporary files that killed writes to ``path`` left behind: those named for
    ``path`` whose writing process no longer runs. Returns the paths removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid_text = name[len(prefix):-len(".tmp")].partition("-")[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))
            removed.append(os.path.join(folder, name))
    return removed


def _alive(pid):
    if pid == os.getpid():
        return True  # another write of this process may be under way (a thread)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, flush and fsync it, rename it
    onto ``path`` and fsync the folder. On any error the temporary file is removed and ``path``
    is left as it was. Stale temporary files of killed earlier writes to ``path`` are removed
    first."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}-", suffix=".tmp",
                               dir=folder)
    try:
        os.fchmod(fd, _new_file_mode(path))  # mkstemp's 0600 would hide the file from others
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX only)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _new_file_mode(path):
    """The mode ``path`` gets: the one it has if it exists, else what ``open`` would give a new
    file under this process's umask (0644 under the usual 022)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        pass
    umask = os.umask(0o022)  # read it (there is no other portable way), and put it back
    os.umask(umask)
    return 0o666 & ~umask


def check_writable(path, flag):
    """Raise ConfigError (naming ``flag``) unless ``path`` can be written atomically: its folder
    exists and accepts a new file, and ``path`` is not a directory. Creates and removes one
    empty temporary file to find out (permissions alone do not tell: read-only mounts, ACLs).
    """
    path = os.fspath(path)
    if not path or "\0" in path:
        raise ConfigError(f"{flag}: {'the path is empty' if not path else 'a path holds no NUL'}"
                          "; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ConfigError(f"{flag} {path} is a directory; give a file path, e.g. "
                          f"{os.path.join(path, 'out')}")
    if os.path.exists(path) and not os.path.isfile(path):  # a rename would replace the node
        raise ConfigError(f"{flag} {path} is not a regular file (a device or a pipe); give a "
                          "file path")
    if not os.path.isdir(folder):
        what = "is not a directory" if os.path.exists(folder) else "does not exist"
        raise ConfigError(f"{flag} {path}: its folder {folder} {what}; create it first or "
                          f"choose another path")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ConfigError(f"{flag} {path} exists and is not writable; choose another path")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}-", suffix=".tmp",
                                   dir=folder)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write into {folder} "
                          f"({exc.strerror or exc}); choose another path") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file (existing or not): the same inode, or the
    same real path (symbolic links and ``..`` resolved)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(outputs, inputs=(), overwrite=False, allow_same=()):
    """Before any long work, every output of a command: ``outputs`` are ``(flag, path,
    is_ours, kind)`` (``is_ours(path)``: the existing file is ``kind``, one fastmlp wrote for
    this purpose, e.g. "a fastmlp checkpoint" for ``--save``), ``inputs`` ``(flag, path)``. Raises ConfigError naming the
    flags unless each output can be written (:func:`check_writable`), is no other output and no
    input (except the ``(output flag, input flag)`` pairs in ``allow_same``, such as --save onto
    the checkpoint --resume continues), and replaces an existing file only if ``is_ours`` says
    it is of its kind, or with ``overwrite``."""
    outputs = [(f, os.fspath(p), ours, kind) for f, p, ours, kind in outputs if p is not None]
    inputs = [(f, os.fspath(p)) for f, p in inputs if p is not None]
    for i, (flag, path, is_ours, kind) in enumerate(outputs):
        check_writable(path, flag)
        for other, other_path, _, _ in outputs[:i]:
            if _same_file(path, other_path):
                raise ConfigError(f"{other} and {flag} both name {path}; give each output its "
                                  "own file")
        for other, other_path in inputs:
            if (flag, other) not in allow_same and _same_file(path, other_path):
                raise ConfigError(f"{flag} {path} is the {other} file this command reads; "
                                  "writing it would destroy it: choose another path")
        if os.path.exists(path) and not overwrite and not is_ours(path):
            raise ConfigError(f"{flag} {path} exists and is not {kind}; refusing to overwrite "
                              "it: choose another path, or add --overwrite to replace it")
