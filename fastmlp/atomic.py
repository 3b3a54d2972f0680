"""Atomic file writes: a file is either the old one or the complete new one, never partial."""

import contextlib
import os
import tempfile


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, flush and fsync it, rename it
    onto ``path`` and fsync the folder. On any error the temporary file is removed and ``path``
    is left as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
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
