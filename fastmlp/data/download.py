"""Checksums and downloads of the named data sets (the table in data/datasets.py).

Checksums are SHA-256 of the *decompressed* IDX bytes (see data/datasets.py's docstring).
Downloads are always verified before anything is written, and are written atomically, only
into fastmlp's own directories (never a user's ``--data-dir``).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import logging
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Callable

from ..errors import DataError
from ..files import atomic_write
from .datasets import FILES, _files_in, _info, default_download_dir
from .idx import _CHUNK, _REDOWNLOAD, GZIP_MAGIC, _open_stream

log = logging.getLogger("fastmlp.data")


def content_sha256(path):
    """SHA-256 (hex) of a file's IDX bytes: after decompression if it is gzip, else of the file."""
    path = Path(path)
    stream, _ = _open_stream(path)
    digest = hashlib.sha256()
    try:
        with stream as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(
            f"{path}: the gzip stream is corrupt or cut short ({e}); {_REDOWNLOAD}"
        ) from e
    return digest.hexdigest()


def _bytes_content_sha256(data):
    """:func:`content_sha256` of bytes in memory; None if they are a corrupt gzip stream."""
    if data[:2] != GZIP_MAGIC:
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as g:  # BytesIO shares `data`
            while chunk := g.read(_CHUNK):
                digest.update(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return None
    return digest.hexdigest()


def verify_checksums(directory, name="mnist"):
    """Check the four files in ``directory`` against the SHA-256 table of data set ``name``.

    Costs one decompression and hash of every file (about 0.3 s for MNIST).

    Returns
    -------
    dict
        Path of each file checked -> its content SHA-256.

    Raises
    ------
    DataError
        Naming every file that is missing or whose hash differs (with expected and actual).
    """
    info = _info(name)
    directory = Path(directory)
    files = _files_in(directory) if directory.is_dir() else dict.fromkeys(FILES)
    problems, digests = [], {}
    for stem, path in files.items():
        if path is None:
            problems.append(f"{directory / stem}[.gz]: missing")
            continue
        digests[path] = actual = content_sha256(path)
        if actual != info.sha256[stem]:
            problems.append(
                f"{path}: SHA-256 mismatch: expected {info.sha256[stem]}, actual {actual}"
            )
    if problems:
        raise DataError(
            f"{name} in {directory} does not match its checksums:\n  "
            + "\n  ".join(problems)
            + "\nDelete the bad files and download them again (--download)."
        )
    return digests


def fetch_url(url, timeout=60.0):
    """GET ``url`` with urllib and return the body as bytes (``file://`` URLs work too)."""
    request = urllib.request.Request(url, headers={"User-Agent": "fastmlp"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def download_dataset(name="mnist", dest_dir=None, *, mirrors=None, fetch: Callable = fetch_url):
    """Download the files of data set ``name`` that ``dest_dir`` lacks, verifying each.

    Each missing file is fetched as ``mirror + file + ".gz"`` from the mirrors in turn until one
    serves bytes whose decompressed SHA-256 matches the table; it is then written atomically
    as ``dest_dir/<file>.gz``. Bytes that do not match are never written. Files already in
    ``dest_dir`` are left alone (check them with :func:`verify_checksums`).

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    dest_dir : str or os.PathLike, optional
        Default: :func:`default_download_dir`. Created if needed.
    mirrors : sequence of str, optional
        Base URLs, each ending in ``/``; default: the data set's public mirrors.
    fetch : callable, optional
        ``fetch(url) -> bytes``; raises ``OSError`` (``urllib.error.URLError`` is one) on
        failure. Default :func:`fetch_url`. Tests pass ``file://`` mirrors or a fake.

    Returns
    -------
    pathlib.Path
        ``dest_dir``.

    Raises
    ------
    DataError
        If a file could not be had from any mirror: names the file and what each mirror did
        (for a checksum mismatch: expected and actual SHA-256).
    """
    info = _info(name)
    dest = Path(dest_dir).expanduser() if dest_dir is not None else default_download_dir(name)
    mirrors = tuple(info.mirrors if mirrors is None else mirrors)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create download directory {dest}: {e}") from e
    for stem, path in _files_in(dest).items():
        if path is not None:
            continue
        target = dest / f"{stem}.gz"
        expected = info.sha256[stem]
        failures = []
        for mirror in mirrors:
            url = f"{mirror}{stem}.gz"
            log.info("downloading %s", url)
            try:
                data = fetch(url)
            except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, timeouts
                failures.append(f"{url}: {e}")
                continue
            actual = _bytes_content_sha256(data)
            if actual is None:
                failures.append(f"{url}: not a valid gzip stream ({len(data)} bytes)")
                continue
            if actual != expected:
                failures.append(
                    f"{url}: SHA-256 mismatch for {stem}: expected {expected}, actual {actual}"
                )
                continue
            if data[:2] != GZIP_MAGIC:  # a mirror that serves the raw file
                target = dest / stem
            try:
                atomic_write(target, lambda f, blob=data: f.write(blob))
            except OSError as e:
                raise DataError(f"cannot write {target}: {e}; free some space or choose "
                                f"another directory (FASTMLP_DATA or --data-dir)") from e
            log.info("verified and saved %s", target)
            break
        else:
            raise DataError(
                f"could not download {target} ({name}); nothing was written for it. Tried:\n  "
                + "\n  ".join(failures or ["no mirrors given"])
                + "\nCheck the network, or put the files in a directory and pass --data-dir."
            )
    return dest
