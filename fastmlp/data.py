"""Data: IDX files, the MNIST-like data sets, where to find them, and the validation/test split.

Everything here stays ``uint8``: MNIST is 55 MB as bytes and 220 MB as float32, so nothing in
this module converts a data set to float. The training loop gathers each batch straight from the
``uint8`` images through an :class:`fastmlp.transforms.InputTransform`.

IDX format (LeCun): two zero bytes, one element-type byte (only ``0x08``, unsigned byte, is
supported), one byte with the number of dimensions ``n``, then ``n`` big-endian uint32 sizes, then
``prod(sizes)`` elements in C order, and nothing after them. Files may be gzip-compressed;
compression is recognised by the gzip magic bytes, not by the file name.

Where a data set is looked for (first complete directory wins):

==================  =======================================================================
``data_dir``        if given, the only place looked at (an explicit choice is never silently
                    replaced by another copy)
``$FASTMLP_DATA``   ``$FASTMLP_DATA/<name>``
cache               ``$XDG_CACHE_HOME/fastmlp/<name>``, else ``~/.cache/fastmlp/<name>``
fallback            MNIST: the copy bundled in the package (``fastmlp/bundled/mnist``);
                    Fashion-MNIST: ``/usr/share/datasets/fashion-mnist`` (Debian package
                    ``dataset-fashion-mnist``)
==================  =======================================================================

A directory counts when it holds the four standard files, each either raw or ``.gz`` (the raw
file is preferred when both exist: it reads faster).

Checksums are SHA-256 of the *decompressed* IDX bytes, so that they hold whatever gzip produced
the ``.gz`` (Debian's Fashion-MNIST files are recompressed: their ``.gz`` hashes differ from the
upstream ones while their contents are identical) and for files a user has decompressed.
Downloads are always verified; files found on disk are not (that would cost ~0.3 s per load),
but :func:`verify_checksums` checks any directory on request. Checksums and downloads are in
download.py; their names are reachable from this module too.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = [
    "BUNDLED_MNIST_DIR",
    "DATASETS",
    "DatasetInfo",
    "FILES",
    "Dataset",
    "Splits",
    "cache_dir",
    "default_download_dir",
    "find_dataset",
    "load_dataset",
    "read_idx",
    "search_dirs",
    "split",
    "write_idx",
]

# Checksums and downloads live in download.py (which imports this module); their names stay
# reachable here, loaded on first use.
_DOWNLOAD_NAMES = ("content_sha256", "download_dataset", "fetch_url", "verify_checksums")


def __getattr__(name):
    if name in _DOWNLOAD_NAMES:
        from . import download

        return getattr(download, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------------------------

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
            dims = tuple(int(d) for d in np.frombuffer(dims_bytes, dtype=">u4"))
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
                _raise_length(path, expected, header_size + filled, header_size, shape_text, where,
                              fix)
            extra = 0
            while chunk := f.read(_CHUNK):
                extra += len(chunk)
            if extra:
                _raise_length(path, expected, expected + extra, header_size, shape_text, where,
                              fix)
            return out
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(
            f"{path}: the gzip stream is corrupt or cut short ({e}); {fix}"
        ) from e
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}") from e


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


# ---------------------------------------------------------------------------------------------
# Known data sets
# ---------------------------------------------------------------------------------------------

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four standard file names, without ``.gz``: training images and labels, test images and
labels."""

BUNDLED_MNIST_DIR = Path(__file__).resolve().parent / "bundled" / "mnist"


@dataclass(frozen=True)
class DatasetInfo:
    """What fastmlp knows about a named data set.

    ``sha256`` holds the SHA-256 of each file's decompressed IDX bytes; ``gz_sha256`` that of
    the distributed ``.gz`` files where one copy is canonical (MNIST: the bundled files). Mirrors
    are base URLs, tried in order; each file is fetched from ``mirror + name + ".gz"``.
    """

    name: str
    mirrors: tuple
    sha256: dict
    fallback_dir: Path | None
    install_hint: str = ""
    gz_sha256: dict = field(default_factory=dict)


DATASETS = {
    "mnist": DatasetInfo(
        name="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        sha256=dict(zip(FILES, (  # in FILES order
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ))),
        gz_sha256=dict(zip(FILES, (  # in FILES order
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ))),
        fallback_dir=BUNDLED_MNIST_DIR,
        install_hint="reinstall fastmlp (its bundled MNIST copy is missing)",
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        # Computed from Debian's dataset-fashion-mnist files. Debian recompressed the .gz files
        # (their MD5s differ from upstream's), but the decompressed bytes are upstream's: these
        # hashes match published ones for the raw files. Upstream .gz MD5s, for reference:
        # 8d4fb7e6c68d591d4c3dfef9ec88bf0d 25c81989df183df01b3e8a0aad5dffbe
        # bef4ecab320f06d8554ea6380940ec79 bb300cfdad3c16e7a12a480ee83cd310 (in FILES order).
        sha256=dict(zip(FILES, (  # in FILES order
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ))),
        fallback_dir=Path("/usr/share/datasets/fashion-mnist"),
        install_hint="apt-get install dataset-fashion-mnist (Debian/Ubuntu)",
    ),
}
"""The named data sets :func:`load_dataset` knows, by name."""

N_CLASSES = 10


def _info(name, data_dir=None):
    """The :class:`DatasetInfo` of ``name``. With ``data_dir`` given, any name is accepted for an
    MNIST-like set in that directory (no checksums, mirrors or fallback)."""
    if isinstance(name, str) and name in DATASETS:
        return DATASETS[name]
    if isinstance(name, str) and name and data_dir is not None:
        return DatasetInfo(name=name, mirrors=(), sha256={}, fallback_dir=None)
    known = ", ".join(sorted(DATASETS))
    raise ConfigError(
        f"unknown data set {name!r}; known data sets: {known} (any other MNIST-like set in IDX "
        f"files can be read from a directory given with --data-dir)"
    )


def cache_dir(name):
    """The per-user cache directory for data set ``name``: ``$XDG_CACHE_HOME/fastmlp/<name>``,
    or ``~/.cache/fastmlp/<name>`` when ``XDG_CACHE_HOME`` is unset, empty or relative."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "fastmlp" / name


def _env_dir(name):
    base = os.environ.get("FASTMLP_DATA", "")
    return Path(base).expanduser() / name if base else None


def search_dirs(name="mnist", data_dir=None):
    """The directories searched for data set ``name``, in order (see the module docstring).

    With ``data_dir`` given, that directory alone.
    """
    info = _info(name, data_dir)
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    dirs = [_env_dir(name), cache_dir(name), info.fallback_dir]
    return [d for d in dirs if d is not None]


def _standard_stem(filename):
    """The standard name (one of :data:`FILES`) a file name stands for, or None. Besides the
    standard names, common variants count: any case, ``.idx3-ubyte`` for ``-idx3-ubyte``
    (``train-images.idx3-ubyte``), ``_`` for ``-``."""
    name = filename.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    name = name.replace("_", "-").replace(".idx", "-idx")
    return name if name in FILES else None


def _files_in(directory):
    """Map each standard file name to its path in ``directory`` (the standard spelling before a
    variant, raw before .gz), or to None."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        names = []
    found = dict.fromkeys(FILES)
    rank = {}
    for filename in names:
        stem = _standard_stem(filename)
        path = Path(directory) / filename
        if stem is None or not path.is_file():
            continue
        order = (not filename.startswith(stem), filename.lower().endswith(".gz"), filename)
        if found[stem] is None or order < rank[stem]:
            found[stem], rank[stem] = path, order
    return found


def _dir_status(directory):
    """(files or None, why not) for one searched directory."""
    if not directory.exists():
        return None, "does not exist"
    if not directory.is_dir():
        return None, "is not a directory"
    files = _files_in(directory)
    missing = [stem for stem, p in files.items() if p is None]
    if len(missing) == len(FILES):
        return None, "holds none of the four files; it holds " + _listing(directory)
    if missing:
        present = [p.name for p in files.values() if p is not None]
        return None, (f"has {', '.join(present)} but is missing "
                      + ", ".join(f"{m}[.gz]" for m in missing))
    return files, ""


def _listing(directory, limit=12):
    """What ``directory`` holds, for an error message: up to ``limit`` names."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        return f"nothing readable ({e.strerror or e})"
    if not names:
        return "nothing (it is empty)"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _not_found_message(info, report, data_dir):
    places = "\n".join(f"  - {d}: {why}" for d, why in report)
    fixes = [
        "pass --data-dir DIR (data_dir=DIR) for a directory holding "
        + ", ".join(f"{s}[.gz]" for s in FILES),
    ]
    if data_dir is None:
        fixes.append(f"set FASTMLP_DATA=DIR and put the files in DIR/{info.name}")
    if info.install_hint and data_dir is None:
        fixes.append(info.install_hint)
    if info.mirrors and data_dir is None:
        fixes.append(f"add --download (download=True) to fetch them from {info.mirrors[0]} "
                     "into the cache")
    return (
        f"data set {info.name!r} not found; searched:\n{places}\nTo fix, any of:\n"
        + "\n".join(f"  - {f}" for f in fixes)
    )


def find_dataset(name="mnist", data_dir=None):
    """Find the directory that holds data set ``name``, without reading it.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    data_dir : str or os.PathLike, optional
        If given, the only directory looked at.

    Returns
    -------
    dict
        Each of :data:`FILES` mapped to its path (raw file preferred over ``.gz``).

    Raises
    ------
    ConfigError
        For an unknown ``name`` without ``data_dir``.
    DataError
        If no searched directory holds all four files; lists every place and why it did not
        count, and the ways to fix it.
    """
    info = _info(name, data_dir)
    report = []
    for directory in search_dirs(name, data_dir):
        files, why = _dir_status(directory)
        if files is not None:
            return files
        report.append((directory, why))
    raise DataError(_not_found_message(info, report, data_dir))


def default_download_dir(name):
    """Where downloads go by default: ``$FASTMLP_DATA/<name>`` if set, else :func:`cache_dir`."""
    return _env_dir(name) or cache_dir(name)



# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """An MNIST-like data set in memory, all ``uint8``.

    Attributes
    ----------
    name : str
    source : str
        The directory the files were read from.
    train_images : numpy.ndarray
        ``(N, rows, cols)`` uint8.
    train_labels : numpy.ndarray
        ``(N,)`` uint8, values in ``0 .. n_classes - 1``.
    test_images, test_labels : numpy.ndarray
        The same for the test set.
    n_classes : int
    """

    name: str
    source: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    n_classes: int = N_CLASSES
    val_images: np.ndarray | None = None
    val_labels: np.ndarray | None = None

    @property
    def image_shape(self):
        """``(rows, cols)`` of every image."""
        return self.train_images.shape[1:]

    def __repr__(self):
        return (
            f"Dataset(name={self.name!r}, source={self.source!r}, "
            f"train={self.train_images.shape}, test={self.test_images.shape}, "
            f"n_classes={self.n_classes})"
        )


def _check_pair(images, labels, image_path, label_path, n_classes, fix=_REDOWNLOAD):
    if images.ndim != 3:
        raise DataError(
            f"{image_path}: expected images with 3 dimensions (N, rows, cols), found shape "
            f"{images.shape}; is this an image file?"
        )
    if labels.ndim != 1:
        raise DataError(
            f"{label_path}: expected labels with 1 dimension (N,), found shape {labels.shape}; "
            f"is this a label file?"
        )
    if len(images) != len(labels):
        raise DataError(
            f"image/label count mismatch: {image_path} holds {len(images)} images but "
            f"{label_path} holds {len(labels)} labels; one of them is from another data set "
            f"or damaged: {fix}"
        )
    if len(images) == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise DataError(
            f"{image_path}: holds no samples (shape {images.shape}); a data set needs images "
            f"with pixels in every file: {fix}"
        )
    if n_classes is not None and labels.size and labels.max() >= n_classes:
        bad = int(np.flatnonzero(labels >= n_classes)[0])
        raise DataError(
            f"{label_path}: label {labels[bad]} at index {bad} is not a class of the training "
            f"labels (0..{n_classes - 1}); {fix}"
        )


def classes_of(labels, where):
    """K, the number of classes: the largest training label + 1, which must give 2..256."""
    k = int(labels.max()) + 1 if labels.size else 0
    if k < 2:
        raise DataError(f"{where}: the training labels hold {k} class(es); a classifier needs "
                        f"labels of at least 2 classes (0..K-1, K <= 256)")
    return k


def dataset_from_arrays(train_x, train_y, test_x, test_y, val_x=None, val_y=None,
                        name="arrays"):
    """A :class:`Dataset` from arrays in memory: images ``(N, H, W)`` uint8 of any size, labels
    ``(N,)`` of whole numbers ``0..K-1`` (K from the training labels, 2 to 256). ``val_x`` and
    ``val_y`` (both or neither) are an explicit validation set. Raises DataError naming the
    argument at fault."""
    if (val_x is None) != (val_y is None):
        raise DataError("from_arrays: give both val_x and val_y, or neither")
    parts = [("train_x", train_x, "train_y", train_y), ("test_x", test_x, "test_y", test_y)]
    if val_x is not None:
        parts.append(("val_x", val_x, "val_y", val_y))
    out = []
    for xname, x, yname, y in parts:
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype != np.uint8:
            raise DataError(f"from_arrays: {xname} must be uint8 pixels (0..255), got "
                            f"{x.dtype}; convert with np.clip(x, 0, 255).astype(np.uint8)")
        if y.dtype.kind not in "ui" or (y.size and (y.min() < 0 or y.max() > 255)):
            raise DataError(f"from_arrays: {yname} must hold whole-number classes 0..255, got "
                            f"{y.dtype}" + (f" from {y.min()} to {y.max()}" if y.size and
                                            y.dtype.kind in "ui" else ""))
        _check_pair(x, y, xname, yname, None, "check the arrays")
        out += [np.ascontiguousarray(x), np.ascontiguousarray(y, dtype=np.uint8)]
    k = classes_of(out[1], "train_y")
    for i, yname in ((3, "test_y"), (5, "val_y")):
        if i < len(out):
            _check_pair(out[i - 1], out[i], yname[:-1] + "x", yname, k, "check the arrays")
            if out[i - 1].shape[1:] != out[0].shape[1:]:
                raise DataError(f"from_arrays: {yname[:-1]}x holds {out[i - 1].shape[1:]} "
                                f"images but train_x holds {out[0].shape[1:]}")
    if len(out[2]) < (1 if val_x is not None else 2):
        raise DataError(f"from_arrays: test_x holds {len(out[2])} images; it needs at least "
                        + ("1" if val_x is not None else "2 (halved into validation and test)"))
    val = (out[4], out[5]) if val_x is not None else (None, None)
    return Dataset(str(name), "arrays in memory", *out[:4], k, *val)


def load_dataset(name="mnist", data_dir=None, download=False):
    """Load an MNIST-like data set as ``uint8`` arrays.

    Parameters
    ----------
    name : str
        ``"mnist"`` or ``"fashion-mnist"``; with ``data_dir``, any name (it then only labels an
        MNIST-like set of 10 classes: no checksums, no download).
    data_dir : str or os.PathLike, optional
        A directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each raw or ``.gz``. If
        given, it is the only place looked at. Otherwise: ``$FASTMLP_DATA/<name>``, the cache
        dir (:func:`cache_dir`), then MNIST's bundled copy or Debian's Fashion-MNIST.
    download : bool
        If the data set is not found, download the missing files (verified by SHA-256) into
        :func:`default_download_dir` and load from there. Never into ``data_dir``: a user's
        directory is never filled with another data set's files.

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError
        For an unknown ``name`` without ``data_dir`` (listing the known ones), or
        ``download=True`` for a name fastmlp has no mirrors for.
    DataError
        If the data set is not found (listing every place searched and how to fix it), a file is
        damaged (see :func:`read_idx`), image and label counts differ, train and test images
        differ in size, a file holds no samples, or a test label is not a training class.
        The number of classes K is the largest training label + 1 (2 to 256).
    """
    info = _info(name, data_dir)
    try:
        files = find_dataset(name, data_dir)
    except DataError as exc:
        if not download:
            raise
        if data_dir is not None:
            raise DataError(f"{exc}\n--download fills only fastmlp's cache, never a --data-dir "
                            "(your files would be mixed with downloaded ones): complete the "
                            "directory, or drop --data-dir to use the cache") from None
        if not info.mirrors:
            raise ConfigError(
                f"cannot download data set {name!r}: fastmlp knows where to download only "
                f"{', '.join(sorted(DATASETS))}"
            ) from None
        from .download import download_dataset

        dest = default_download_dir(name)
        download_dataset(name, dest)
        files = find_dataset(name, dest)
    # Only a known data set in fastmlp's own places can be had again by downloading it.
    fix = _REDOWNLOAD if data_dir is None and info.mirrors else (
        f"replace it with an intact copy ({info.install_hint})" if data_dir is None
        else "replace it with an intact copy of your data")
    train_x, train_y, test_x, test_y = (read_idx(files[stem], fix=fix) for stem in FILES)
    paths = [files[stem] for stem in FILES]
    _check_pair(train_x, train_y, paths[0], paths[1], None, fix)
    n_classes = classes_of(train_y, paths[1])
    _check_pair(test_x, test_y, paths[2], paths[3], n_classes, fix)
    if len(test_x) < 2:
        raise DataError(f"{paths[2]}: holds {len(test_x)} test image(s); at least 2 are needed "
                        "(halved into validation and test)")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(
            f"{paths[0]} holds {train_x.shape[1]}x{train_x.shape[2]} images but {paths[2]} holds "
            f"{test_x.shape[1]}x{test_x.shape[2]}; the files come from different data sets"
        )
    source = str(paths[0].parent)
    log.info("loaded %s from %s", info.name, source)
    return Dataset(info.name, source, train_x, train_y, test_x, test_y, n_classes)


# ---------------------------------------------------------------------------------------------
# Validation / test split
# ---------------------------------------------------------------------------------------------

SPLIT_MODES = ("book", "stratified")


@dataclass(frozen=True, eq=False)
class Splits:
    """Training, validation and test arrays (``uint8``), from :func:`split`.

    ``test_full_x``/``test_full_y`` are always the whole official test set, so that results can
    be reported on it as well as on the held-out half (``test_x``/``test_y``).
    """

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    test_full_x: np.ndarray
    test_full_y: np.ndarray
    mode: str = "book"


def split(dataset, mode="book", seed=0):
    """Split a data set's official test set into validation and test halves.

    The training set is used whole. Model selection (early stopping, picking hyperparameters)
    must look at the validation half only; the test half is touched once, at the end.

    Parameters
    ----------
    dataset : Dataset
    mode : {"book", "stratified"}
        ``"book"``: validation = the first half of the test set (the first 5,000 of MNIST's
        10,000), test = the second half. This is the classic fixed split; note that the two
        halves of MNIST's test set come from different parts of NIST's original data and are
        *not* equally difficult, so an error rate on one half is not an estimate for the other:
        results are reported on the test half and on the full 10,000 (``test_full_*``).
        All arrays are views, nothing is copied.
        ``"stratified"``: a seeded random split of the test set in which every class is divided
        evenly between the halves (a class with an odd count puts its extra image alternately in
        validation and test, validation first, in class order). Indices are kept in increasing
        order. The halves are copies (7.8 MB for MNIST).
    seed : int
        Seed of ``numpy.random.default_rng`` for ``"stratified"``; ignored by ``"book"``.

    Returns
    -------
    Splits

    Raises
    ------
    ConfigError
        For an unknown ``mode``, or a test set with fewer than 2 images.
    """
    x, y = dataset.test_images, dataset.test_labels
    n = len(y)
    if n < 2:
        raise ConfigError(f"cannot split a test set of {n} images into validation and test")
    if mode == "book":
        half = n // 2
        val_x, val_y, test_x, test_y = x[:half], y[:half], x[half:], y[half:]
    elif mode == "stratified":
        rng = np.random.default_rng(seed)
        val_parts, test_parts = [], []
        extra_to_val = True
        for c in range(dataset.n_classes):
            members = rng.permutation(np.flatnonzero(y == c))
            k = len(members) // 2
            if len(members) % 2:
                k += extra_to_val
                extra_to_val = not extra_to_val
            val_parts.append(members[:k])
            test_parts.append(members[k:])
        val_idx = np.sort(np.concatenate(val_parts))
        test_idx = np.sort(np.concatenate(test_parts))
        val_x, val_y, test_x, test_y = x[val_idx], y[val_idx], x[test_idx], y[test_idx]
    else:
        raise ConfigError(f"unknown split mode {mode!r}; known modes: {', '.join(SPLIT_MODES)}")
    return Splits(
        train_x=dataset.train_images,
        train_y=dataset.train_labels,
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_y=test_y,
        test_full_x=x,
        test_full_y=y,
        mode=mode,
    )
