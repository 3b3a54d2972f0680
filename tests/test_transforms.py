"""Tests for fastmlp.data.transforms: pixel selection and scaling, on real MNIST and small arrays.

Tolerances: ``apply`` computes ``u * float32(1/255)`` in float32 while the references divide in
float64, so they agree to float32 rounding (rtol 1e-6). Standardized data has mean 0 and std 1
to 1e-4 on the images the statistics came from.
"""

import json

import numpy as np
import pytest

from fastmlp.data.transforms import InputTransform, make_transform
from fastmlp.errors import ConfigError, DataError

MNIST_AUTO_CROP_INPUTS = 717  # measured: pixels nonzero in at least one MNIST training image


def _unit(x):
    return x.reshape(len(x), -1).astype(np.float64) / 255.0


def test_full_image_is_default(mnist):
    t = make_transform(mnist.train_images)
    assert t.n_inputs == 784 and t.kept_shape == (28, 28) and t.image_shape == (28, 28)
    assert t.description.startswith("full image: 28x28 = 784 inputs")
    np.testing.assert_array_equal(t.pixel_index, np.arange(784))


def test_crop_3_keeps_22x22(mnist):
    t = make_transform(mnist.train_images, crop=3)
    assert t.n_inputs == 484 and t.kept_shape == (22, 22)
    assert t.description.startswith("crop 3: 22x22 = 484 inputs")
    images = mnist.test_images[:500]
    x = t.apply(images)
    assert x.dtype == np.float32 and x.shape == (500, 484) and x.flags.c_contiguous
    np.testing.assert_allclose(x, _unit(images[:, 3:-3, 3:-3]), rtol=1e-6)


def test_center_8_keeps_the_central_8x8(mnist):
    t = make_transform(mnist.train_images, center=8)
    assert t.n_inputs == 64 and t.kept_shape == (8, 8)
    assert t.description.startswith("center 8: 8x8 = 64 inputs")
    images = mnist.test_images[:500]
    np.testing.assert_allclose(t.apply(images), _unit(images[:, 10:18, 10:18]), rtol=1e-6)


def test_center_odd_leftover_puts_extra_row_below_and_column_right():
    images = np.arange(2 * 6 * 9, dtype=np.uint8).reshape(2, 6, 9)
    t = make_transform(images, center=3)  # leftovers 3 and 6: window rows 1..3, cols 3..5
    np.testing.assert_allclose(t.apply(images), _unit(images[:, 1:4, 3:6]), rtol=1e-6)
    t = make_transform(images, center=6)
    np.testing.assert_allclose(t.apply(images), _unit(images[:, 0:6, 1:7]), rtol=1e-6)


def test_auto_crop_on_mnist(mnist):
    t = make_transform(mnist.train_images, auto_crop=True)
    independent = int(np.count_nonzero(mnist.train_images.max(axis=0)))
    assert t.n_inputs == independent == MNIST_AUTO_CROP_INPUTS
    assert t.kept_shape is None
    assert f"{MNIST_AUTO_CROP_INPUTS} inputs" in t.description
    # Dropped pixels are zero in every training image, so nothing a model could use is lost.
    dropped = np.setdiff1d(np.arange(784), t.pixel_index)
    assert not mnist.train_images.reshape(60000, -1)[:, dropped].any()
    assert np.all(np.diff(t.pixel_index) > 0)


def test_auto_crop_after_crop_stays_inside_the_window():
    images = np.zeros((3, 10, 10), dtype=np.uint8)
    images[0, 0, 0] = 9  # outside crop 2: must not come back
    images[1, 4, 5] = 1
    images[2, 7, 2] = 200
    t = make_transform(images, crop=2, auto_crop=True)
    np.testing.assert_array_equal(t.pixel_index, [4 * 10 + 5, 7 * 10 + 2])
    assert t.description.startswith("crop 2, auto crop: 2 of 6x6 pixels")
    t = make_transform(images, center=4, auto_crop=True)
    np.testing.assert_array_equal(t.pixel_index, [45])


def test_crop_too_large_is_a_helpful_error(mnist):
    with pytest.raises(ConfigError) as e:
        make_transform(mnist.train_images, crop=14)
    msg = str(e.value)
    assert "crop 14 leaves no pixels of 28x28 images" in msg
    assert "between 0 and 13" in msg and "2x2" in msg
    make_transform(mnist.train_images[:10], crop=13)  # the largest allowed: 2x2
    with pytest.raises(ConfigError, match="crop -1 is negative"):
        make_transform(mnist.train_images[:10], crop=-1)


def test_limits_on_non_square_images():
    images = np.ones((4, 10, 7), dtype=np.uint8)
    assert make_transform(images, crop=3).kept_shape == (4, 1)
    with pytest.raises(ConfigError, match="between 0 and 3"):
        make_transform(images, crop=4)
    assert make_transform(images, center=7).kept_shape == (7, 7)
    for bad in (0, 8):
        with pytest.raises(ConfigError, match="between 1 and 7"):
            make_transform(images, center=bad)


def test_bad_options():
    images = np.ones((4, 8, 8), dtype=np.uint8)
    with pytest.raises(ConfigError, match="give one of them"):
        make_transform(images, crop=1, center=4)
    with pytest.raises(ConfigError, match="unknown normalize 'zscore'.*unit, standardize"):
        make_transform(images, normalize="zscore")
    with pytest.raises(ConfigError, match="crop must be an integer"):
        make_transform(images, crop=1.5)
    with pytest.raises(ConfigError, match="auto crop keeps no pixel"):
        make_transform(np.zeros((4, 8, 8), dtype=np.uint8), auto_crop=True)
    with pytest.raises(ConfigError, match="std is 0"):
        make_transform(np.full((4, 8, 8), 7, dtype=np.uint8), normalize="standardize")
    with pytest.raises(DataError, match="uint8"):
        make_transform(images.astype(np.float32))


def test_standardize_gives_mean_0_std_1_on_its_training_images(mnist):
    subset = mnist.train_images[::12]  # 5,000 images
    t = make_transform(subset, crop=3, normalize="standardize")
    x = t.apply(subset).astype(np.float64)
    assert abs(x.mean()) < 1e-4 and abs(x.std() - 1.0) < 1e-4
    assert "standardized" in t.description


def test_standardize_on_all_of_mnist_matches_the_well_known_statistics(mnist):
    t = make_transform(mnist.train_images, normalize="standardize")
    std = 1.0 / (255.0 * float(t.scale[0]))
    mean = -float(t.shift[0]) * std
    assert mean == pytest.approx(0.1307, abs=5e-5) and std == pytest.approx(0.3081, abs=5e-5)
    # A random subset is close, not exact. (A strided one, [::10] or [::20], is off by 0.025:
    # the order of MNIST's training file is not random.)
    idx = np.random.default_rng(0).choice(60000, 6000, replace=False)
    x = t.apply(mnist.train_images[idx]).astype(np.float64)
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1.0) < 0.01


def test_batch_gather_formula_matches_apply(mnist):
    """The contract the training loop relies on: x[b, d] = flat[idx[b], pix[d]] * s[d] + t[d]."""
    t = make_transform(mnist.train_images, center=20, auto_crop=True, normalize="standardize")
    flat = mnist.train_images.reshape(60000, -1)
    idx = np.random.default_rng(0).integers(0, 60000, 64)
    x = np.empty((64, t.n_inputs), dtype=np.float32)
    for b in range(64):
        x[b] = flat[idx[b], t.pixel_index] * t.scale + t.shift
    np.testing.assert_array_equal(x, t.apply(mnist.train_images[idx]))
    assert t.pixel_index.dtype == np.int64 and t.scale.dtype == t.shift.dtype == np.float32


def test_apply_accepts_flat_images_and_rejects_others(mnist):
    t = make_transform(mnist.train_images[:100], crop=2)
    images = mnist.test_images[:10]
    np.testing.assert_array_equal(t.apply(images.reshape(10, 784)), t.apply(images))
    with pytest.raises(DataError, match="made for 28x28 images"):
        t.apply(images[:, :20, :20])
    with pytest.raises(DataError, match="uint8"):
        t.apply(images.astype(np.float32))


def test_round_trip_through_npz_and_json(tmp_path, mnist):
    for t in (make_transform(mnist.train_images[:1000], crop=3, normalize="standardize"),
              make_transform(mnist.train_images[:1000], auto_crop=True)):
        np.savez(tmp_path / "ckpt.npz", **{f"input_{k}": v for k, v in t.to_dict().items()})
        with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as f:
            back = InputTransform.from_dict({k[6:]: f[k] for k in f.files})
        from_json = InputTransform.from_dict(
            json.loads(json.dumps({k: v.tolist() for k, v in t.to_dict().items()}))
        )
        for other in (back, from_json):
            assert other.image_shape == t.image_shape and other.kept_shape == t.kept_shape
            assert other.description == t.description
            for name in ("pixel_index", "scale", "shift"):
                np.testing.assert_array_equal(getattr(other, name), getattr(t, name))
                assert getattr(other, name).dtype == getattr(t, name).dtype


def test_invalid_transforms_are_refused():
    ok = dict(image_shape=(4, 4), pixel_index=[0, 15], scale=[1, 1], shift=[0, 0],
              kept_shape=None, description="")
    InputTransform(**ok)
    with pytest.raises(ConfigError, match="must lie in 0..15"):
        InputTransform(**{**ok, "pixel_index": [0, 16]})
    with pytest.raises(ConfigError, match="must both have shape"):
        InputTransform(**{**ok, "scale": [1]})
    with pytest.raises(ConfigError, match="finite"):
        InputTransform(**{**ok, "shift": [0, np.inf]})
    with pytest.raises(ConfigError, match="does not hold 2 inputs"):
        InputTransform(**{**ok, "kept_shape": (2, 2)})
    with pytest.raises(ConfigError, match="missing scale"):
        InputTransform.from_dict({"image_shape": [4, 4], "pixel_index": [0], "shift": [0]})
