"""A data set in memory (:class:`Dataset`): read from its IDX files, or made from arrays.

Images stay ``uint8`` (float features, ``(N, D)`` float32, come only from arrays); the checks
here are those every consumer relies on: images ``(N, rows, cols)``, as many labels as images,
train and test images of one size, test labels among the training classes (K = the largest
training label + 1, 2 to 256).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from .datasets import (
    DATASETS,
    FILES,
    N_CLASSES,
    _info,
    default_download_dir,
    find_dataset,
)
from .idx import _REDOWNLOAD, read_idx
from .transforms import checked_features

log = logging.getLogger("fastmlp.data")


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
        """``(rows, cols)`` of every image (``(D,)`` for float features)."""
        return self.train_images.shape[1:]

    @property
    def features(self):
        """Whether the rows are float32 features ``(N, D)`` rather than uint8 images."""
        return self.train_images.dtype == np.float32

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
                        name="arrays", n_classes=None):
    """A :class:`Dataset` from arrays in memory: images ``(N, H, W)`` uint8 of any size, or
    float features ``(N, D)`` of any real dtype (kept as float32, finite, used as given), labels
    ``(N,)`` of whole numbers ``0..K-1`` (K from the training labels, 2 to 256). ``val_x`` and
    ``val_y`` (both or neither) are an explicit validation set. ``n_classes``: K given (2 to
    256), when the training labels need not hold every class (an incremental fit's rows).
    Raises DataError naming the argument at fault."""
    if (val_x is None) != (val_y is None):
        raise DataError("from_arrays: give both val_x and val_y, or neither")
    parts = [("train_x", train_x, "train_y", train_y), ("test_x", test_x, "test_y", test_y)]
    if val_x is not None:
        parts.append(("val_x", val_x, "val_y", val_y))
    out = []
    features = np.asarray(train_x).dtype != np.uint8
    for xname, x, yname, y in parts:
        x, y = np.asarray(x), np.asarray(y)
        if features:  # float features (any count, already scaled): float32 (N, D)
            if x.dtype == np.uint8:
                raise DataError(f"from_arrays: {xname} is uint8 images but train_x holds "
                                f"{np.asarray(train_x).dtype} features; give one kind")
            if x.ndim != 2:
                raise DataError(f"from_arrays: {xname} must be uint8 images (N, H, W) or "
                                f"numeric features (N, D), got {x.dtype} of shape {x.shape}")
            x = checked_features(x, f"from_arrays: {xname}")[:, None, :]  # (N, 1, D) view
        if y.dtype.kind not in "ui" or (y.size and (y.min() < 0 or y.max() > 255)):
            raise DataError(f"from_arrays: {yname} must hold whole-number classes 0..255, got "
                            f"{y.dtype}" + (f" from {y.min()} to {y.max()}" if y.size and
                                            y.dtype.kind in "ui" else ""))
        _check_pair(x, y, xname, yname, None, "check the arrays")
        x = x[:, 0, :] if features else x
        out += [np.ascontiguousarray(x), np.ascontiguousarray(y, dtype=np.uint8)]
    if n_classes is None:
        k = classes_of(out[1], "train_y")
    else:
        k = int(n_classes)
        if not 2 <= k <= 256:
            raise DataError(f"from_arrays: n_classes must be 2..256, got {n_classes}")
        _check_pair(out[0] if not features else out[0][:, None, :], out[1], "train_x",
                    "train_y", k, "check the arrays")
    for i, yname in ((3, "test_y"), (5, "val_y")):
        if i < len(out):
            x = out[i - 1][:, None, :] if features else out[i - 1]
            _check_pair(x, out[i], yname[:-1] + "x", yname, k, "check the arrays")
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
    name = info.name
    if data_dir is not None and name in DATASETS and (
            n_classes != 10 or train_x.shape[1:] != (28, 28)):
        # Files that are not the named set (--dataset defaults to mnist) go by their folder's
        # name: a 3-class 8x8 set is not "mnist".
        name = paths[0].parent.name or source
    log.info("loaded %s from %s", name, source)
    return Dataset(name, source, train_x, train_y, test_x, test_y, n_classes)
