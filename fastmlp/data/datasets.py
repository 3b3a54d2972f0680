"""The named data sets (one row each in :data:`DATASETS`) and where a data set is found.

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
but :func:`fastmlp.data.download.verify_checksums` checks any directory on request. Checksums and
downloads are in data/download.py; their names are reachable from :mod:`fastmlp.data` too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, DataError

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four standard file names, without ``.gz``: training images and labels, test images and
labels."""

BUNDLED_MNIST_DIR = Path(__file__).resolve().parent.parent / "bundled" / "mnist"


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
