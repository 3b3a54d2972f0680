"""Argument checks for the kernels' public wrappers (Python side only): each raises ValueError
naming the array and what it must be, so a wrong dtype or shape never reaches compiled code."""

import numpy as np

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "_check_array", "_check_elementwise", "_check_float", "_check_gather", "_check_shape",
]


def _check_array(name, a, ndim, dtype=None):
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {a.shape}")
    if dtype is not None and a.dtype != dtype:
        raise ValueError(f"{name} must have dtype {np.dtype(dtype).name}, got {a.dtype.name}; "
                         f"convert it with .astype(np.{np.dtype(dtype).name})")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name})")


def _check_float(name, a, ndim, dtype=None):
    _check_array(name, a, ndim, dtype)
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {a.dtype.name}")


def _check_shape(name, a, shape):
    if a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}, expected {tuple(shape)}")


def _check_elementwise(**arrays):
    first_name, first = next(iter(arrays.items()))
    if not isinstance(first, np.ndarray):
        raise ValueError(f"{first_name} must be a NumPy array, got {type(first).__name__}")
    _check_float(first_name, first, first.ndim)
    for name, a in arrays.items():
        _check_array(name, a, first.ndim, first.dtype)
        _check_shape(name, a, first.shape)


def _check_gather(out, images, rows, pixel_index, scale, shift):
    """The arguments of a batch gather: out (B, D) float, images (N, P) uint8 (or float32
    features), rows (B,) int64 indexing images, pixel_index (D,) int64 indexing a flattened
    image, scale and shift (D,) of out's dtype."""
    _check_float("out", out, 2)
    _check_array("images", images, 2, np.float32 if images.dtype == np.float32 else np.uint8)
    _check_array("rows", rows, 1, np.int64)
    _check_array("pixel_index", pixel_index, 1, np.int64)
    _check_array("scale", scale, 1, out.dtype)
    _check_array("shift", shift, 1, out.dtype)
    B, D = out.shape
    _check_shape("rows", rows, (B,))
    for name, a in (("pixel_index", pixel_index), ("scale", scale), ("shift", shift)):
        _check_shape(name, a, (D,))
    if B and (rows.min() < 0 or rows.max() >= images.shape[0]):
        raise ValueError(f"rows must index images (0..{images.shape[0] - 1})")
    if D and (pixel_index.min() < 0 or pixel_index.max() >= images.shape[1]):
        raise ValueError(f"pixel_index must index a flattened image (0..{images.shape[1] - 1})")
