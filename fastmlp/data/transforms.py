"""Input transforms: which pixels a model sees, and how their bytes become numbers.

A transform is a pixel index map plus a per-input affine map, worked out once from the training
images, all on ``uint8`` (nothing converts the data set to float). The training loop gathers a
batch straight from the ``uint8`` images into a float32 buffer::

    x[b, d] = images_flat[idx[b], pixel_index[d]] * scale[d] + shift[d]

with ``images_flat = images.reshape(n, rows * cols)``. :meth:`InputTransform.apply` is the same
formula in plain NumPy, for small sets, tests and prediction.

Which pixels (in this order):

1. a window: ``crop=N`` drops ``N`` pixels at every border (28x28 -> ``28-2N`` square), or
   ``center=K`` keeps the ``K x K`` innermost pixels; not both. Default: the whole image.
2. ``auto_crop=True`` then keeps, inside that window, the pixels that are nonzero in at least
   one training image (717 of MNIST's 784). The kept pixels are no longer a rectangle, so
   ``kept_shape`` is None.

How they are scaled: ``normalize="unit"`` maps bytes to ``[0, 1]`` (``u / 255``);
``"standardize"`` maps them to ``(u / 255 - mean) / std``, with one mean and one std over all
kept pixels of all training images, computed exactly from integer sums.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError

__all__ = ["INPUT_KINDS", "NORMALIZE_MODES", "InputTransform", "feature_transform",
           "make_transform"]

NORMALIZE_MODES = ("unit", "standardize")
# What a model's rows are: uint8 images (pixels gathered, cropped and scaled as below), or
# float32 features taken as given (any count, already scaled: :func:`feature_transform`)
INPUT_KINDS = ("images", "features")

_STATS_CHUNK = 1024  # images per chunk when summing pixels: a few MB of temporaries


@dataclass(frozen=True, eq=False, repr=False)
class InputTransform:
    """Which pixels of a ``rows x cols`` image become the model's inputs, and how they are scaled.

    Input ``d`` of an image ``u`` (``uint8``, flattened) is
    ``u[pixel_index[d]] * scale[d] + shift[d]``, computed in float32.

    Attributes
    ----------
    image_shape : tuple of int
        ``(rows, cols)`` of the source images.
    pixel_index : numpy.ndarray
        ``(D,)`` int64, flat indices into ``rows * cols``, in row-major order.
    scale, shift : numpy.ndarray
        ``(D,)`` float32 each.
    kept_shape : tuple of int or None
        ``(h, w)`` when the kept pixels form a rectangle (crop, center, none), so that inputs
        can be shown as an image; None after ``auto_crop``.
    description : str
        One line for logs and reports, e.g. ``"crop 3: 22x22 = 484 inputs, unit scale"``.
    inputs : {"images", "features"}
        ``"features"``: the rows are float32 features ``(n, D)``, taken as given (image_shape
        ``(1, D)``, every input kept, scale 1, shift 0; see :func:`feature_transform`).

    The arrays are made C-contiguous with the dtypes above; treat them as read-only (they stay
    writeable so that Numba functions with pinned signatures accept them).
    """

    image_shape: tuple
    pixel_index: np.ndarray
    scale: np.ndarray
    shift: np.ndarray
    kept_shape: tuple | None
    description: str
    inputs: str = "images"

    def __post_init__(self):
        rows, cols = (int(v) for v in self.image_shape)
        index = np.ascontiguousarray(self.pixel_index, dtype=np.int64)
        scale = np.ascontiguousarray(self.scale, dtype=np.float32)
        shift = np.ascontiguousarray(self.shift, dtype=np.float32)
        n = index.size
        if rows < 1 or cols < 1:
            raise ConfigError(f"InputTransform: image_shape {self.image_shape} is empty")
        if index.ndim != 1 or n == 0:
            raise ConfigError(f"InputTransform: pixel_index must be 1-D and non-empty, got "
                              f"shape {index.shape}")
        if index.min() < 0 or index.max() >= rows * cols:
            raise ConfigError(f"InputTransform: pixel_index must lie in 0..{rows * cols - 1} "
                              f"for {rows}x{cols} images")
        if scale.shape != (n,) or shift.shape != (n,):
            raise ConfigError(f"InputTransform: scale {scale.shape} and shift {shift.shape} must "
                              f"both have shape ({n},), like pixel_index")
        if not (np.isfinite(scale).all() and np.isfinite(shift).all()):
            raise ConfigError("InputTransform: scale and shift must be finite")
        kept = None if self.kept_shape is None else tuple(int(v) for v in self.kept_shape)
        if kept is not None and (len(kept) != 2 or kept[0] * kept[1] != n):
            raise ConfigError(f"InputTransform: kept_shape {kept} does not hold {n} inputs")
        object.__setattr__(self, "image_shape", (rows, cols))
        object.__setattr__(self, "pixel_index", index)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "shift", shift)
        object.__setattr__(self, "kept_shape", kept)
        object.__setattr__(self, "description", str(self.description))
        if self.inputs not in INPUT_KINDS:
            raise ConfigError(f"InputTransform: inputs must be one of {', '.join(INPUT_KINDS)}, "
                              f"got {self.inputs!r}")

    def __repr__(self):
        return (f"InputTransform({self.image_shape[0]}x{self.image_shape[1]} -> "
                f"{self.n_inputs} inputs: {self.description!r})")

    @property
    def n_inputs(self):
        """``D``, the number of inputs of the model's first layer."""
        return self.pixel_index.size

    def apply(self, images):
        """Transform ``uint8`` images into a float32 input matrix.

        Parameters
        ----------
        images : numpy.ndarray
            ``(n, rows, cols)`` or ``(n, rows * cols)`` uint8.

        Returns
        -------
        numpy.ndarray
            ``(n, D)`` float32, C-contiguous; row ``b`` is
            ``images[b].ravel()[pixel_index] * scale + shift``.

        Raises
        ------
        DataError
            If the images are not uint8 or not of this transform's ``image_shape``.
        """
        images = np.asarray(images)
        rows, cols = self.image_shape
        if self.inputs == "features":
            return checked_features(images, "transform", cols)
        if images.dtype != np.uint8:
            raise DataError(f"transform: expected uint8 images, got {images.dtype}")
        if images.ndim == 3 and images.shape[1:] == (rows, cols):
            flat = images.reshape(len(images), rows * cols)
        elif images.ndim == 2 and images.shape[1] == rows * cols:
            flat = images
        else:
            raise DataError(
                f"transform: made for {rows}x{cols} images, got an array of shape "
                f"{images.shape}; the model was trained on a different data set"
            )
        out = np.empty((len(flat), self.n_inputs), dtype=np.float32)
        np.multiply(np.take(flat, self.pixel_index, axis=1), self.scale, out=out)
        out += self.shift
        return out

    def to_dict(self):
        """The transform as a dict of NumPy arrays, e.g. to store in an ``.npz`` checkpoint.

        Every value is an array (``kept_shape`` None becomes an empty array, ``description`` a
        0-d string array), so ``np.savez(f, **{"input_" + k: v ...})`` works with
        ``allow_pickle=False``. :meth:`from_dict` reads it back.
        """
        return {
            "image_shape": np.array(self.image_shape, dtype=np.int64),
            "pixel_index": self.pixel_index,
            "scale": self.scale,
            "shift": self.shift,
            "kept_shape": np.array(self.kept_shape or (), dtype=np.int64),
            "description": np.array(self.description),
            "inputs": np.array(self.inputs),
        }

    @classmethod
    def from_dict(cls, d):
        """Rebuild a transform from :meth:`to_dict`'s output (arrays, or plain lists from JSON).

        Raises
        ------
        ConfigError
            If a key is missing or the values do not make a valid transform.
        """
        missing = [k for k in ("image_shape", "pixel_index", "scale", "shift") if k not in d]
        if missing:
            raise ConfigError(f"InputTransform.from_dict: missing {', '.join(missing)}")
        kept = d.get("kept_shape")
        kept = None if kept is None or np.size(kept) == 0 else tuple(np.asarray(kept).tolist())
        return cls(
            image_shape=tuple(np.asarray(d["image_shape"]).tolist()),
            pixel_index=np.asarray(d["pixel_index"]),
            scale=np.asarray(d["scale"]),
            shift=np.asarray(d["shift"]),
            kept_shape=kept,
            description=str(np.asarray(d.get("description", ""))),
            inputs=str(np.asarray(d.get("inputs", "images"))),
        )


def feature_transform(n_features):
    """The transform of float features ``(n, D)``: every input kept, as given (scale 1, shift
    0: the gather's ``x * 1 + 0`` is ``x`` exactly). Features are scaled by their user (a
    ``StandardScaler``, say); crops, auto-crop and standardize are for images."""
    d = int(n_features)
    if d < 1:
        raise DataError(f"features: need at least one feature per row, got {d}")
    return InputTransform(image_shape=(1, d), pixel_index=np.arange(d, dtype=np.int64),
                          scale=np.ones(d, np.float32), shift=np.zeros(d, np.float32),
                          kept_shape=None, description=f"{d} float features, as given",
                          inputs="features")


def checked_features(x, where, n_features=None):
    """``x`` as C-contiguous float32 features ``(n, D)``: any real dtype but uint8 images'
    (bool and integers too), 2-D, finite (also after the cast: float64 beyond float32's range
    is refused), ``D == n_features`` if given. Raises DataError naming ``where``."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: features must be real numbers, got {x.dtype}")
    if x.ndim != 2:
        raise DataError(f"{where}: features must be a 2-D array (n samples, n features), got "
                        f"shape {x.shape}")
    if n_features is not None and x.shape[1] != n_features:
        raise DataError(f"{where}: {x.shape[1]} features per row, the model expects "
                        f"{n_features}")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(out).all():
        raise DataError(f"{where}: features must be finite float32 values (no NaN, no "
                        "infinity, none beyond +-3.4e38); clean or rescale them")
    return out


def _window(rows, cols, crop, center):
    """(top, left, h, w, text) of the rectangle kept by ``crop`` or ``center``."""
    smallest = min(rows, cols)
    if center is not None:
        if crop:
            raise ConfigError(
                f"crop {crop} and center {center} both choose a window; give one of them"
            )
        if isinstance(center, bool) or not isinstance(center, (int, np.integer)):
            raise ConfigError(f"center must be an integer, got {center!r}")
        if not 1 <= center <= smallest:
            raise ConfigError(
                f"center {center} is not possible for {rows}x{cols} images: it must be between "
                f"1 and {smallest}"
            )
        # An odd leftover puts the extra row below and the extra column to the right.
        return (rows - center) // 2, (cols - center) // 2, center, center, f"center {center}"
    if isinstance(crop, bool) or not isinstance(crop, (int, np.integer)):
        raise ConfigError(f"crop must be an integer, got {crop!r}")
    largest = (smallest - 1) // 2
    if not 0 <= crop <= largest:
        problem = "is negative" if crop < 0 else f"leaves no pixels of {rows}x{cols} images"
        raise ConfigError(
            f"crop {crop} {problem}: crop removes that many pixels from every border, so it "
            f"must be between 0 and {largest} (crop {largest} leaves "
            f"{rows - 2 * largest}x{cols - 2 * largest}); or use center K to keep K x K pixels"
        )
    text = f"crop {crop}" if crop else "full image"
    return crop, crop, rows - 2 * crop, cols - 2 * crop, text


def _pixel_stats(flat, pixel_index):
    """Exact (count, sum, sum of squares) of the bytes at ``pixel_index`` over all images."""
    total = total_sq = 0
    for start in range(0, len(flat), _STATS_CHUNK):
        part = np.take(flat[start:start + _STATS_CHUNK], pixel_index, axis=1)
        total += int(part.sum(dtype=np.uint64))
        total_sq += int(np.square(part, dtype=np.uint32).sum(dtype=np.uint64))
    return len(flat) * pixel_index.size, total, total_sq


def _checked_images(train_images):
    """``train_images`` as an array, checked to be non-empty ``(N, rows, cols)`` uint8."""
    train_images = np.asarray(train_images)
    if train_images.dtype != np.uint8 or train_images.ndim != 3 or train_images.size == 0:
        raise DataError(
            f"make_transform: expected non-empty (N, rows, cols) uint8 training images, got "
            f"{train_images.dtype} of shape {train_images.shape}"
        )
    return train_images


def _auto_crop(train_images, pixel_index, top, left, h, w, text):
    """The pixels of the ``h x w`` window at (top, left) that are nonzero in some training
    image, and the description's words for them; ``text`` names the window."""
    seen = np.any(train_images[:, top:top + h, left:left + w], axis=0).ravel()
    if not seen.any():
        raise ConfigError(
            f"auto crop keeps no pixel: every training image is all zeros in the "
            f"{h}x{w} window ({text}); drop auto crop or check the data"
        )
    pixel_index = pixel_index[seen]
    return pixel_index, (f", auto crop: {pixel_index.size} of {h}x{w} pixels (nonzero in some "
                         f"training image) = {pixel_index.size} inputs")


def _scaling(train_images, pixel_index, normalize):
    """(scale, shift, description's words) of the affine map: ``u / 255`` for "unit", or
    exact standardization over the kept pixels of every training image."""
    if normalize == "unit":
        return 1.0 / 255.0, 0.0, ", unit scale (u/255)"
    n, rows, cols = train_images.shape
    flat = train_images.reshape(n, rows * cols)
    count, total, total_sq = _pixel_stats(flat, pixel_index)
    var_num = count * total_sq - total * total  # count**2 * variance of the bytes, exact
    if var_num == 0:
        raise ConfigError(
            f"normalize 'standardize': every kept training pixel has the value "
            f"{total // count}, so the std is 0; use normalize 'unit'"
        )
    mean = total / count / 255.0
    std = math.sqrt(var_num) / count / 255.0
    return (1.0 / (255.0 * std), -mean / std,
            f", standardized (mean {mean:.4f}, std {std:.4f} on the 0-1 scale)")


def make_transform(train_images, crop=0, center=None, auto_crop=False, normalize="unit"):
    """Work out an input transform from the training images.

    Pass the training images only: the auto-crop mask and the standardization statistics
    are properties of the training data, and computing them on validation or test images
    would leak those into the model.

    Parameters
    ----------
    train_images : numpy.ndarray
        ``(N, rows, cols)`` uint8.
    crop : int
        Pixels removed from every border, ``0 <= crop < min(rows, cols) / 2``.
    center : int, optional
        Keep the ``center x center`` innermost pixels, ``1 <= center <= min(rows, cols)``; the
        window starts at row ``(rows - center) // 2`` and column ``(cols - center) // 2``, so
        an odd leftover leaves the extra row below and the extra column to the right.
        Excludes ``crop``.
    auto_crop : bool
        Then keep only the pixels of the window that are nonzero in at least one training image.
    normalize : {"unit", "standardize"}
        ``"unit"``: ``u / 255``. ``"standardize"``: ``(u / 255 - mean) / std`` with a single
        mean and std over every kept pixel of every training image.

    Returns
    -------
    InputTransform

    Raises
    ------
    ConfigError
        For a crop or center that does not fit the images (the message gives the allowed
        range), crop and center together, an unknown ``normalize``, an auto-crop that keeps
        no pixel, or standardizing pixels that are all equal.
    DataError
        If ``train_images`` is not a non-empty ``(N, rows, cols)`` uint8 array.
    """
    train_images = _checked_images(train_images)
    if normalize not in NORMALIZE_MODES:
        raise ConfigError(
            f"unknown normalize {normalize!r}; choose one of: {', '.join(NORMALIZE_MODES)}"
        )
    rows, cols = train_images.shape[1:]
    top, left, h, w, text = _window(rows, cols, crop, center)
    grid = np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)
    pixel_index = grid[top:top + h, left:left + w].ravel()
    kept_shape = (h, w)
    if auto_crop:
        pixel_index, kept_text = _auto_crop(train_images, pixel_index, top, left, h, w, text)
        kept_shape = None
        text += kept_text
    else:
        text += f": {h}x{w} = {h * w} inputs"
    d = pixel_index.size
    scale, shift, scale_text = _scaling(train_images, pixel_index, normalize)
    text += scale_text
    return InputTransform(
        image_shape=(rows, cols),
        pixel_index=pixel_index,
        scale=np.full(d, scale, dtype=np.float32),
        shift=np.full(d, shift, dtype=np.float32),
        kept_shape=kept_shape,
        description=text,
    )
