"""Data, everything before the network: IDX files, the MNIST-like data sets, where to find
them, the validation/test split, downloads and the input transform (crop, scaling).

Images stay ``uint8``: MNIST is 55 MB as bytes and 220 MB as float32, so nothing in this
package converts a data set of images to float (float features, ``(N, D)`` float32 from
:func:`dataset_from_arrays`, are the other kind of input and are used as given). The training
loop gathers each batch straight from the ``uint8`` images through an
:class:`fastmlp.data.transforms.InputTransform`.

==============  =================================================================================
idx.py          the IDX file format: :func:`read_idx`, :func:`write_idx` (raw or gzip)
datasets.py     the named data sets (:data:`DATASETS`, one row each) and where a data set is
                found: :func:`search_dirs`, :func:`find_dataset`, :func:`cache_dir`
load.py         a data set in memory: :class:`Dataset`, :func:`load_dataset`,
                :func:`dataset_from_arrays`
splits.py       the validation/test split: :data:`SPLIT_MODES`, :class:`Splits`, :func:`split`
transforms.py   crop, center, auto-crop and scaling, all on uint8: :class:`InputTransform`,
                :func:`make_transform`, :data:`NORMALIZE_MODES`
download.py     checksums and downloads (only into the cache)
==============  =================================================================================

This package's one namespace is ``fastmlp.data``: code outside it imports every name from here
(the modules above are where each one lives). download.py imports this package, so its names
are loaded here on first use.
"""

from __future__ import annotations

from .datasets import (
    BUNDLED_MNIST_DIR,
    DATASETS,
    FILES,
    N_CLASSES,
    DatasetInfo,
    cache_dir,
    default_download_dir,
    find_dataset,
    search_dirs,
)
from .idx import GZIP_MAGIC, read_idx, write_idx
from .load import Dataset, classes_of, dataset_from_arrays, load_dataset
from .splits import SPLIT_MODES, Splits, split
from .transforms import (
    INPUT_KINDS,
    NORMALIZE_MODES,
    InputTransform,
    checked_features,
    feature_transform,
    make_transform,
)

__all__ = [
    "BUNDLED_MNIST_DIR",
    "DATASETS",
    "FILES",
    "GZIP_MAGIC",
    "INPUT_KINDS",
    "NORMALIZE_MODES",
    "N_CLASSES",
    "SPLIT_MODES",
    "Dataset",
    "DatasetInfo",
    "InputTransform",
    "Splits",
    "cache_dir",
    "checked_features",
    "classes_of",
    "dataset_from_arrays",
    "default_download_dir",
    "feature_transform",
    "find_dataset",
    "load_dataset",
    "make_transform",
    "read_idx",
    "search_dirs",
    "split",
    "write_idx",
]

# Checksums and downloads (download.py, which imports this package): loaded on first use
_DOWNLOAD_NAMES = ("content_sha256", "download_dataset", "fetch_url", "verify_checksums")


def __getattr__(name):
    if name in _DOWNLOAD_NAMES:
        from . import download

        return getattr(download, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
