"""The data as a run takes it (:class:`Data`): the data set, its validation/test split and the
input transform fitted on the training images; :func:`prepare_data` makes it from a config."""

from dataclasses import dataclass, replace

import numpy as np

from ..choices.augment import parse_augment
from ..config import TrainConfig, flag_of
from ..data import (
    Splits,
    dataset_from_arrays,
    feature_transform,
    load_dataset,
    make_transform,
    split,
)
from ..errors import ConfigError


@dataclass
class Data:
    """What training reads: the splits (uint8) and the input transform fitted on train.

    ``splits`` and ``transform`` may be None (as :meth:`from_arrays` leaves them): ``train``
    then splits and fits them as its config says. ``released``: a run given this data with
    ``release_train_images=True`` freed its training images (it cannot train another run)."""

    dataset: object
    splits: object = None
    transform: object = None
    released: bool = False

    @property
    def n_classes(self):
        return int(self.dataset.n_classes)

    @classmethod
    def from_arrays(cls, train_x, train_y, test_x, test_y, val_x=None, val_y=None,
                    name="arrays", n_classes=None):
        """Data already in memory: uint8 images ``(N, H, W)`` of any size, or numeric features
        ``(N, D)`` (float32 inside, used as given: scale them first), and integer labels
        ``0..K-1`` (K, 2 to 256, from the training labels). Without ``val_x``/``val_y`` the
        test set is halved into validation and test as ``config.split`` says; with them, the
        test arrays are the test set whole. ``n_classes``: K, when the training labels need
        not hold every class 0..K-1."""
        ds = dataset_from_arrays(train_x, train_y, test_x, test_y, val_x, val_y, name=name,
                                 n_classes=n_classes)
        if ds.val_images is None:
            return cls(ds)
        sp = Splits(ds.train_images, ds.train_labels, ds.val_images, ds.val_labels,
                    ds.test_images, ds.test_labels, ds.test_images, ds.test_labels,
                    mode="given")
        return cls(ds, sp)

    def fitted(self, cfg):
        """This data with its splits and input transform made as ``cfg`` says, where missing."""
        sp = self.splits or split(self.dataset, mode=cfg.split, seed=cfg.seed)
        if self.dataset.features:
            _check_features_config(cfg)
            tr = self.transform or feature_transform(self.dataset.image_shape[0])
            return Data(self.dataset, sp, tr, self.released)
        tr = self.transform or make_transform(sp.train_x, crop=cfg.crop, center=cfg.center,
                                              auto_crop=cfg.auto_crop, normalize=cfg.normalize)
        return Data(self.dataset, sp, tr, self.released)


# The settings that act on images only, and the value that leaves them off: float features are
# taken as given (no pixels to crop, no zero pixels for the sparse path, nothing to shift)
_IMAGE_ONLY = dict(crop=0, center=None, auto_crop=False, normalize="unit")


def _check_features_config(cfg):
    """Refuse, in one line, a setting that means something for images only."""
    changed = [k for k, off in _IMAGE_ONLY.items() if getattr(cfg, k) != off]
    aug = parse_augment(cfg.augment)
    if aug.shift or aug.resamples:
        changed.append("augment")
    if cfg.input_path == "sparse":
        changed.append("input_path")
    if changed:
        raise ConfigError(f"{flag_of(changed[0])} is for uint8 images; these inputs are float "
                          "features, used as given: leave it at its default (scale features "
                          "yourself, e.g. with scikit-learn's StandardScaler)")


def prepare_data(cfg: TrainConfig) -> Data:
    """Load the data set named by ``cfg``, split it and fit the input transform."""
    ds = load_dataset(cfg.dataset, data_dir=cfg.data_dir, download=cfg.download)
    return Data(ds).fitted(cfg)


def release_train_images(*datas):
    """Free the dense training images of these Data objects (the caller's and its fitted copy,
    which share them): in their dataset and splits the training images become an empty
    (0, H, W) array, everything else stays. Returns the fitted copy's new splits."""
    for d in datas:
        images = d.dataset.train_images
        empty = np.empty((0, *images.shape[1:]), images.dtype)
        d.dataset = replace(d.dataset, train_images=empty)
        if d.splits is not None:
            d.splits = replace(d.splits, train_x=empty)
        d.released = True
    return datas[-1].splits
