"""IDX files: the format MNIST-like data sets ship in, read and written as ``uint8`` arrays.

IDX format (LeCun): two zero bytes, one element-type byte (only ``0x08``, unsigned byte, is
supported), one byte with the number of dimensions ``n``, then ``n`` big-endian uint32 sizes, then
``prod(sizes)`` elements in C order, and nothing after them. Files may be gzip-compressed;
compression is recognised by the gzip magic bytes, not by the file name.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import atomic_write

GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_IDX_TYPES = {  # element-type byte -> name, for error messages
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
_CHUNK = 1 << 20  # bytes per read: small enough that gzip never holds a second full copy
_REDOWNLOAD = "delete it and download it again (load_dataset(..., download=True) or --download)"
_REPLACE = "replace it with an intact copy"


def _describe_type(code):
    return f"0x{code:02X} ({_IDX_TYPES.get(code, 'unknown type')})"


def _read_exact(f, n):
    """Read up to ``n`` bytes, looping over short reads; fewer only at end of stream."""
    parts = []
    while n > 0:
        part = f.read(n)
        if not part:
            break
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _open_stream(path, fix=_REDOWNLOAD):
    """Open ``path`` for reading its IDX bytes: through gzip if it starts with the gzip magic.
    ``fix`` ends the error messages: what the user can do about a damaged file."""
    path = Path(path)
    try:
        compressed = _is_gzip(path)
        if not compressed and path.suffix == ".gz":
            raise DataError(
                f"{path}: the name ends in .gz but the file is not gzip-compressed (it does not "
                f"start with the gzip bytes 1f 8b); it is damaged or misnamed: {fix}"
            )
        return (gzip.open(path, "rb") if compressed else open(path, "rb", buffering=0)), compressed
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise DataError(f"{path}: cannot open: {getattr(e, 'strerror', None) or e}") from e


def read_idx(path, *, fix=None):
    """Read an IDX file (raw or gzip-compressed) into a ``uint8`` array.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Gzip compression is detected from the first two bytes (``1f 8b``), whatever
        the name; a file named ``*.gz`` that is not gzip is an error.
    fix : str, optional
        How the user can repair a damaged file, the end of every error message. Default:
        replace it with an intact copy (only a file fastmlp can download says to download it).

    Returns
    -------
    numpy.ndarray
        ``uint8``, shape = the dimensions in the header: ``(N, rows, cols)`` for images,
        ``(N,)`` for labels. C-contiguous, writeable, and owning its memory: the bytes are
        decompressed straight into it in 1 MiB pieces, so reading MNIST's 47 MB of training
        images needs 47 MB plus a few MiB, not the two or three copies that
        ``np.frombuffer(gzip.decompress(...))`` makes along the way.

    Raises
    ------
    DataError
        If the file cannot be opened, is not gzip though named ``.gz``, is a corrupt or cut
        gzip stream, does not start with two zero bytes, has an element type other than
        ``0x08`` (unsigned byte), or its length differs from header + ``prod(dims)`` bytes
        (truncated, or trailing bytes). The message names the file, the problem and a fix.
    """
    path = Path(path)
    fix = fix or _REPLACE
    stream, compressed = _open_stream(path, fix)
    where = "decompressed " if compressed else ""
    try:
        with stream as f:
            dims, header_size = _read_header(f, path, where, fix)
            return _read_body(f, path, dims, header_size, compressed, fix)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(
            f"{path}: the gzip stream is corrupt or cut short ({e}); {fix}"
        ) from e
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}") from e


def _read_header(f, path, where, fix):
    """Read and check the IDX header from the open stream ``f``: two zero bytes, the unsigned
    byte type, a nonzero number of dimensions and all their sizes. Returns (dims, header_size)."""
    head = _read_exact(f, 4)
    if len(head) < 4:
        raise DataError(
            f"{path}: too short to be an IDX file: {len(head)} {where}bytes, the header "
            f"alone needs at least 4; the file is truncated: {fix}"
        )
    if head[0] != 0 or head[1] != 0:
        raise DataError(
            f"{path}: not an IDX file: it starts with bytes {head[0]:02x} {head[1]:02x}, "
            f"an IDX file starts with 00 00 (is it the right file, and {where or 'not '}"
            f"compressed?); {fix}"
        )
    if head[2] != _UBYTE:
        raise DataError(
            f"{path}: IDX element type {_describe_type(head[2])} is not supported; fastmlp "
            f"reads only 0x08 (unsigned byte), the type of MNIST-like images and labels"
        )
    ndim = head[3]
    if ndim == 0:
        raise DataError(f"{path}: the IDX header gives 0 dimensions; {fix}")
    dims_bytes = _read_exact(f, 4 * ndim)
    header_size = 4 + 4 * ndim
    if len(dims_bytes) < 4 * ndim:
        raise DataError(
            f"{path}: truncated: expected at least {header_size} {where}bytes of header "
            f"for {ndim} dimensions, found {4 + len(dims_bytes)}; {fix}"
        )
    return tuple(int(d) for d in np.frombuffer(dims_bytes, dtype=">u4")), header_size


def _read_body(f, path, dims, header_size, compressed, fix):
    """Read the ``prod(dims)`` bytes after the header into a new ``uint8`` array of shape
    ``dims``; the file must hold exactly that many, not fewer and not more."""
    where = "decompressed " if compressed else ""
    n_data = math.prod(dims)
    expected = header_size + n_data
    shape_text = "x".join(map(str, dims))
    if not compressed:
        size = os.fstat(f.fileno()).st_size
        if size != expected:
            _raise_length(path, expected, size, header_size, shape_text, "", fix)
    elif n_data > 1100 * os.path.getsize(path):  # deflate expands at most ~1032x
        raise DataError(
            f"{path}: the header claims {shape_text} = {n_data} bytes, more than this "
            f"{os.path.getsize(path)}-byte gzip file can hold; it is damaged: {fix}"
        )
    try:
        out = np.empty(dims, dtype=np.uint8)
    except MemoryError:
        raise DataError(f"{path}: the header claims {shape_text} = {n_data:,} bytes, "
                        f"more memory than this machine can give; {fix}") from None
    view = memoryview(out.reshape(-1))
    filled = 0
    while filled < n_data:
        got = f.readinto(view[filled:filled + _CHUNK])
        if not got:
            break
        filled += got
    if filled < n_data:
        _raise_length(path, expected, header_size + filled, header_size, shape_text, where, fix)
    extra = 0
    while chunk := f.read(_CHUNK):
        extra += len(chunk)
    if extra:
        _raise_length(path, expected, expected + extra, header_size, shape_text, where, fix)
    return out


def _raise_length(path, expected, found, header_size, shape_text, where, fix):
    problem = "truncated" if found < expected else f"{found - expected} bytes of trailing data"
    raise DataError(
        f"{path}: {problem}: expected {expected} {where}bytes ({header_size}-byte header + "
        f"{shape_text} elements), found {found}; {fix}"
    )


def write_idx(path, array):
    """Write a ``uint8`` array as an IDX file, atomically; gzip-compressed if ``path`` ends in .gz.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its directory must exist. Gzip output is reproducible (mtime 0).
    array : numpy.ndarray
        ``uint8``, 1 to 255 dimensions, each below 2**32.

    Raises
    ------
    ValueError
        If ``array`` is not ``uint8`` or its shape cannot be written in an IDX header.
    OSError
        If the file cannot be written (nothing is left behind).
    """
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx: needs a uint8 array, got {array.dtype}")
    if not 1 <= array.ndim <= 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"write_idx: shape {array.shape} does not fit an IDX header")
    header = bytes([0, 0, _UBYTE, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    data = np.ascontiguousarray(array)

    def write(f):
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=f, mtime=0) as g:
                g.write(header)
                g.write(memoryview(data.reshape(-1)))
        else:
            f.write(header)
            f.write(memoryview(data.reshape(-1)))

    atomic_write(path, write)
