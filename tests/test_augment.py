"""--augment shift:K, rotate:DEG, elastic:PX: each training image moved by a random whole-pixel
offset, rotated and bent by a smooth random field inside the gather.

The kernels are checked against a NumPy shift of the same offsets and SciPy's bilinear sampling
of the same angles and fields, on real MNIST images through every kind of input transform;
training is checked for the same steps on the sparse and dense first layer, for reproducibility
per seed and across a resume, and for its error messages."""

import naive
import numpy as np
import pytest

from fastmlp import kernels as K
from fastmlp.choices.augment import parse_augment
from fastmlp.config import TrainConfig
from fastmlp.data.transforms import make_transform
from fastmlp.errors import ConfigError
from fastmlp.loop import buffers, calls
from fastmlp.training import plan
from fastmlp.training.run import train
from fastmlp.training.run_data import Data

shift_image = naive.shift_image


def test_reference_shift_moves_a_pixel_where_it_says():
    img = np.zeros((5, 7), np.uint8)
    img[2, 3] = 9
    assert shift_image(img, 1, -2)[3, 1] == 9 and shift_image(img, 1, -2).sum() == 9
    assert shift_image(img, 3, 0).sum() == 0  # moved off the image


TRANSFORMS = [dict(), dict(crop=3), dict(center=12), dict(auto_crop=True),
              dict(crop=2, normalize="standardize")]


@pytest.mark.parametrize("kw", TRANSFORMS, ids=lambda kw: ",".join(kw) or "none")
@pytest.mark.parametrize("k", [1, 3])
def test_gather_shifted_is_the_numpy_shift_of_the_same_offsets(mnist, kw, k):
    images = mnist.train_images[:2000]
    tr = make_transform(images, **kw)
    X = images.reshape(len(images), -1)
    rows = np.arange(40, 104, dtype=np.int64)
    seed, epoch, step, row0 = 3, 2, 7, 5
    out = np.full((len(rows), tr.n_inputs), np.nan, np.float32)
    K.gather_shifted(out, X, rows, tr.pixel_index, tr.scale, tr.shift, 28, k, seed, epoch,
                     step, row0=row0)
    offsets = K.shift_offsets(seed, epoch, step, len(rows), k, row0=row0)
    assert np.abs(offsets).max() <= k and len({tuple(o) for o in offsets}) > 4
    ref = np.stack([shift_image(images[r], dy, dx).ravel()[tr.pixel_index]
                    for r, (dy, dx) in zip(rows, offsets)])
    np.testing.assert_allclose(out, ref * tr.scale.astype(np.float64) + tr.shift, rtol=1e-6,
                               atol=1e-6)
    assert not np.array_equal(ref, X[rows][:, tr.pixel_index])  # the images did move


def rotate_reference(img, dy, dx, degrees):
    """SciPy's bilinear affine map, as independent reference: out(p) = img(R(-a)(p - t - c) + c),
    0 outside the image (mode grid-constant)."""
    from scipy import ndimage

    a = np.deg2rad(degrees)
    m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    c = (np.array(img.shape) - 1) / 2.0
    offset = c - m @ (np.array([dy, dx]) + c)
    return ndimage.affine_transform(img.astype(np.float64), m, offset=offset, order=1,
                                    mode="grid-constant", cval=0.0)


def warp_reference(img, dy, dx, degrees, nodes):
    """SciPy's bilinear sampling at out(p) = img(R(-a)(p - t - c) + c + e(p)), e the elastic
    field: ``nodes`` (2, G, G) interpolated bilinearly by SciPy over the image (node i at row
    i * (H - 1) / (G - 1)); 0 outside the image."""
    from scipy import ndimage

    H, W = img.shape
    G = nodes.shape[1]
    r, c = np.mgrid[0:H, 0:W].astype(np.float64)
    a = np.deg2rad(degrees)
    y = r - dy - (H - 1) / 2
    x = c - dx - (W - 1) / 2
    sy = np.cos(a) * y - np.sin(a) * x + (H - 1) / 2
    sx = np.sin(a) * y + np.cos(a) * x + (W - 1) / 2
    at = [r * (G - 1) / (H - 1), c * (G - 1) / (W - 1)]
    sy += ndimage.map_coordinates(nodes[0], at, order=1)
    sx += ndimage.map_coordinates(nodes[1], at, order=1)
    return ndimage.map_coordinates(img.astype(np.float64), [sy, sx], order=1,
                                   mode="grid-constant", cval=0.0)


def test_warp_reference_without_a_field_is_the_rotation_reference(mnist):
    img = mnist.train_images[7]
    np.testing.assert_allclose(warp_reference(img, 1, -2, 12.0, np.zeros((2, 5, 5))),
                               rotate_reference(img, 1, -2, 12.0), atol=1e-9)
    moved = warp_reference(img, 0, 0, 0.0, np.stack([np.full((5, 5), 2.0), np.zeros((5, 5))]))
    np.testing.assert_allclose(moved, shift_image(img, -2, 0), atol=1e-9)  # e = +2 rows: up


@pytest.mark.parametrize("kw", [dict(), dict(crop=2), dict(crop=2, normalize="standardize")],
                         ids=["none", "crop", "standardize"])
@pytest.mark.parametrize("k, deg, elastic", [(0, 15.0, 0.0), (2, 15.0, 0.0), (0, 0.0, 3.0),
                                             (2, 10.0, 2.0)])
def test_gather_warped_is_scipys_bilinear_sampling_of_the_same_draws(mnist, kw, k, deg,
                                                                     elastic):
    images = mnist.train_images[:2000]
    tr = make_transform(images, **kw)
    X = images.reshape(len(images), -1)
    rows = np.arange(200, 248, dtype=np.int64)
    seed, epoch, step, row0 = 8, 1, 4, 3
    out = np.full((len(rows), tr.n_inputs), np.nan, np.float32)
    K.gather_warped(out, X, rows, tr.pixel_index, tr.scale, tr.shift, 28, k, deg, elastic,
                    seed, epoch, step, row0=row0)
    angles = (K.rotation_angles(seed, epoch, step, len(rows), deg, row0=row0) if deg
              else np.zeros(len(rows)))
    offsets = (K.shift_offsets(seed, epoch, step, len(rows), k, row0=row0) if k
               else np.zeros((len(rows), 2), np.int64))
    nodes = K.elastic_nodes(seed, epoch, step, len(rows), elastic, row0=row0)
    if deg:
        assert np.abs(angles).max() <= deg and np.abs(angles).max() > deg / 2
    assert np.abs(nodes).max() <= elastic and (elastic == 0 or np.abs(nodes).max() > elastic / 2)
    ref = np.stack([warp_reference(images[r], dy, dx, a, e).ravel()[tr.pixel_index]
                    for r, (dy, dx), a, e in zip(rows, offsets, angles, nodes)])
    np.testing.assert_allclose(out, ref * tr.scale + tr.shift, rtol=1e-5,
                               atol=1e-4 * np.abs(tr.scale).max() * 255)
    assert not np.allclose(out, X[rows][:, tr.pixel_index] * tr.scale + tr.shift)  # moved


def test_elastic_fields_are_uniform_reproducible_new_each_step_and_their_own_draw():
    e = K.elastic_nodes(2, 3, 4, 2000, 2.0)
    assert e.shape == (2000, 2, K.ELASTIC_NODES, K.ELASTIC_NODES)
    assert -2.0 <= e.min() < -1.99 and 1.99 < e.max() < 2.0
    counts = np.histogram(e, bins=10, range=(-2, 2))[0]
    assert counts.min() > 0.95 * e.size / 10 and counts.max() < 1.05 * e.size / 10
    np.testing.assert_array_equal(e, K.elastic_nodes(2, 3, 4, 2000, 2.0))
    assert np.mean(e != K.elastic_nodes(2, 3, 5, 2000, 2.0)) > 0.99
    flat = e.reshape(2000, -1)  # every node and component its own draw, and not the angle's
    c = np.corrcoef(np.column_stack([flat, K.rotation_angles(2, 3, 4, 2000, 10.0),
                                     K.shift_offsets(2, 3, 4, 2000, 2)]).T)
    assert np.abs(c - np.eye(len(c))).max() < 0.1


def test_rotation_angles_are_uniform_reproducible_and_new_each_step():
    a = K.rotation_angles(2, 3, 4, 20000, 10.0)
    assert -10.0 <= a.min() < -9.9 and 9.9 < a.max() <= 10.0
    counts = np.histogram(a, bins=10, range=(-10, 10))[0]
    assert counts.min() > 0.9 * 2000 and counts.max() < 1.1 * 2000
    np.testing.assert_array_equal(a, K.rotation_angles(2, 3, 4, 20000, 10.0))
    assert np.mean(a != K.rotation_angles(2, 3, 5, 20000, 10.0)) > 0.99
    offsets = K.shift_offsets(2, 3, 4, 20000, 2)
    assert np.corrcoef(a, offsets[:, 0])[0, 1] ** 2 < 1e-3  # angle and offset independent


def test_offsets_are_uniform_reproducible_and_new_each_step():
    k = 2
    a = K.shift_offsets(11, 4, 9, 20000, k)
    assert a.min() == -k and a.max() == k
    counts = np.bincount((a[:, 0] + k) * (2 * k + 1) + a[:, 1] + k, minlength=(2 * k + 1) ** 2)
    assert counts.min() > 0.8 * 20000 / 25 and counts.max() < 1.2 * 20000 / 25
    assert np.corrcoef(a[:, 0], a[:, 1])[0, 1] ** 2 < 1e-3  # dy and dx independent
    np.testing.assert_array_equal(a, K.shift_offsets(11, 4, 9, 20000, k))
    for other in ((12, 4, 9), (11, 5, 9), (11, 4, 10)):
        assert (K.shift_offsets(*other, 20000, k) != a).any(axis=1).mean() > 0.9
    # a block of rows gets the same offsets as those rows of the whole batch (thread split)
    np.testing.assert_array_equal(K.shift_offsets(11, 4, 9, 50, k, row0=100), a[100:150])


@pytest.mark.parametrize("kw", [dict(), dict(crop=2), dict(auto_crop=True)],
                         ids=["none", "crop", "auto_crop"])
@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_shift_sparse_is_the_dense_shifted_gather(mnist, kw, rate):
    # the sparse path: the batch's CSR entries (after input dropout's copy) moved in place must
    # be the dense shifted gather of the same images (with the same dropout mask applied)
    images = mnist.train_images[:500]
    tr = make_transform(images, **kw)
    X = images.reshape(len(images), -1)
    ptr, idx, val = K.csr_inputs(X, tr.pixel_index)
    rows = np.arange(100, 164, dtype=np.int64)
    B, D = len(rows), tr.n_inputs
    seed, epoch, step, k = 5, 1, 3, 3
    state = np.uint64(K._stream_seed(seed, epoch, step, 0))
    aug = np.uint64(K._stream_seed(seed, epoch, step, K.AUGMENT_STREAM))
    bptr, bidx, bval = np.zeros(B + 1, np.int64), np.zeros(B * D, np.uint16), np.zeros(B * D,
                                                                                          np.uint8)
    K._gather_sparse(bptr, bidx, bval, ptr, idx, val, rows, rate, state, 0)
    unshifted = naive.csr_to_dense(bptr, bidx, bval, D)
    K._shift_sparse(bptr, bidx, bval, tr.pixel_index, K.input_of_pixel(tr.pixel_index, 784), 28,
                    k, aug, 0)
    n = bptr[-1]
    for b in range(B):  # still ascending within each row, as the sparse kernels need
        assert np.all(np.diff(bidx[bptr[b]:bptr[b + 1]].astype(np.int64)) > 0)  # no wrap
    got = naive.csr_to_dense(bptr, bidx, bval[:n], D)
    offsets = K.shift_offsets(seed, epoch, step, B, k)
    # reference: the kept (undropped) pixels of each image, as a full image, moved
    ref = np.zeros((B, D))
    for b, (dy, dx) in enumerate(offsets):
        full = np.zeros(784)
        full[tr.pixel_index] = unshifted[b]
        ref[b] = shift_image(full.reshape(28, 28), dy, dx).ravel()[tr.pixel_index]
    np.testing.assert_array_equal(got, ref)
    assert not np.array_equal(got, unshifted)


@pytest.fixture(scope="module")
def small_mnist(mnist):
    """3,000 real training images and 1,000 test images: enough for steps to differ."""
    return Data.from_arrays(mnist.train_images[:3000], mnist.train_labels[:3000],
                            mnist.test_images[:1000], mnist.test_labels[:1000])


@pytest.mark.parametrize("threads, kept", [(1, {}), (2, {}), (2, dict(auto_crop=True))])
def test_sparse_and_dense_first_layer_train_alike_with_a_shift(small_mnist, threads, kept):
    base = dict(hidden=(32,), epochs=1, batch_size=64, batch_ramp=None, augment="shift:2",
                dropout=0.0, optimizer="sgd", lr=0.1, threads=threads, seed=4, **kept)
    got = {p: train(TrainConfig(**base, input_path=p), data=small_mnist).model.params
           for p in ("sparse", "dense")}
    np.testing.assert_allclose(got["sparse"], got["dense"], rtol=1e-4, atol=2e-5)
    plain = train(TrainConfig(**{**base, "augment": "none"}, input_path="dense"),
                  data=small_mnist).model.params
    assert np.abs(plain - got["dense"]).max() > 1e-2  # the shift changed what was learnt


@pytest.mark.parametrize("spec", ["shift:2", "shift:1+rotate:5+elastic:2"])
def test_a_moved_run_repeats_per_seed_and_resumes_to_the_same_weights(small_mnist, tmp_path,
                                                                       monkeypatch, spec):
    cfg = TrainConfig(hidden=(24,), epochs=2, batch_size=128, batch_ramp=32, augment=spec,
                      dropout=0.1, threads=2, seed=9)
    a = train(cfg, data=small_mnist).model.params
    np.testing.assert_array_equal(a, train(cfg, data=small_mnist).model.params)
    other = train(cfg.replace(seed=10), data=small_mnist).model.params
    assert np.abs(other - a).max() > 1e-2
    ck = str(tmp_path / "half.npz")
    monkeypatch.setattr("fastmlp.training.run.CHUNK_SAMPLES", 256)  # stop in the middle of epoch 2
    first = train(cfg, data=small_mnist, save=ck, should_stop=lambda e, s: e == 1 and s >= 3)
    assert first.stopped == "interrupted"
    resumed = train(cfg, data=small_mnist, resume=ck).model.params
    np.testing.assert_allclose(resumed, a, rtol=1e-5, atol=1e-6)


def test_a_crop_that_leaves_out_nonzero_pixels_shifts_on_the_dense_first_layer(small_mnist):
    # the sparse path's CSR holds only the kept pixels, so it could not bring in the pixels a
    # shift moves into the crop's window: with such a crop (MNIST's 2-pixel border is nonzero in
    # some images) auto runs dense and --input-path sparse is refused before training
    from fastmlp.choices.activations import get_activation

    X = small_mnist.dataset.train_images.reshape(3000, -1)
    assert X.reshape(-1, 28, 28)[:, :2].any()  # the border is not blank in every image
    act = get_activation("relu")
    for kept, sparse in ((dict(crop=2), False), (dict(center=20), False), ({}, True),
                         (dict(auto_crop=True), True)):
        cfg = TrainConfig(hidden=(32,), augment="shift:2", activation="relu", **kept)
        t = small_mnist.fitted(cfg).transform
        tr = (t.pixel_index.astype(np.int64), t.scale, t.shift)
        _, hyper_for = plan.input_plan(cfg, act, X, tr, 1, image_width=28)
        assert hyper_for(64).sparse is sparse, kept
        if not sparse:
            with pytest.raises(ConfigError, match="cannot shift these images"):
                plan.input_plan(cfg.replace(input_path="sparse"), act, X, tr, 1,
                                image_width=28)
        plain = cfg.replace(augment="none")  # without a shift the crop runs sparse as before
        assert plan.input_plan(plain, act, X, tr, 1)[1](64).sparse
    with pytest.raises(ValueError, match="needs image_width"):
        plan.input_plan(cfg, act, X, tr, 1)


@pytest.mark.parametrize("spec, words", [
    ("shift", "1..8"), ("shift:0", "1..8"), ("shift:9", "1..8"), ("shift:two", "1..8"),
    ("turn:2", "choose none, shift:K, rotate:DEG, elastic:PX"), ("elastic:7", "0.5..6"),
    ("elastic:0.4", "0.5..6"), ("elastic:nan", "0.5..6"), ("none:1", "no parameter"),
    ("", "choose none"), ("rotate:0", "1..45"), ("rotate:nan", "1..45"), ("rotate:50", "1..45"),
    ("shift:1+shift:2", "given twice"), ("none+rotate:5", "cannot be combined"),
    ("shift:2,rotate:5", "1..8")])
def test_a_bad_augment_spec_is_one_line_naming_the_choices(spec, words):
    with pytest.raises(ConfigError) as e:
        TrainConfig(augment=spec)
    msg = str(e.value)
    assert "--augment" in msg and "\n" not in msg and words in msg


def test_a_rotation_runs_the_dense_first_layer(small_mnist):
    from fastmlp.choices.activations import get_activation

    X = small_mnist.dataset.train_images.reshape(3000, -1)
    tr = (np.arange(784), np.full(784, 1 / 255, np.float32), np.zeros(784, np.float32))
    cfg = TrainConfig(hidden=(32,), augment="shift:1+rotate:10")
    act = get_activation(cfg.activation)
    csr, hyper_for = plan.input_plan(cfg, act, X, tr, 1, image_width=28)
    assert not hyper_for(128).sparse and hyper_for(128).rotate_max > 0
    assert plan.input_plan(cfg.replace(augment="shift:1"), act, X, tr, 1, 28)[1](128).sparse
    for spec in ("shift:1+rotate:10", "elastic:2"):
        hp = plan.input_plan(cfg.replace(augment=spec), act, X, tr, 1, 28)[1](128)
        assert not hp.sparse and hp.elastic_max == (2.0 if "elastic" in spec else 0.0)
        with pytest.raises(ConfigError, match="cannot rotate or distort"):
            cfg.replace(augment=spec, input_path="sparse")


def test_a_shift_too_large_for_the_image_is_refused_before_training(mnist):
    rng = np.random.default_rng(0)
    tiny = Data.from_arrays(rng.integers(0, 255, (60, 4, 4), dtype=np.uint8),
                            np.arange(60) % 3, rng.integers(0, 255, (20, 4, 4), dtype=np.uint8),
                            np.arange(20) % 3)
    with pytest.raises(ConfigError, match="4x4 image"):
        train(TrainConfig(augment="shift:4", epochs=1, hidden=(4,)), data=tiny)


def test_command_line_augment_flag(capsys):
    from fastmlp.train import build_parser, config_from_args

    cfg = config_from_args(build_parser().parse_args(["--augment", "shift:2"]))
    assert cfg.augment == "shift:2"
    assert "augment" in build_parser().format_help()


@pytest.mark.parametrize("input_path, rotate, elastic, kept", [
    ("dense", 0, 0, dict(crop=2)), ("sparse", 0, 0, dict(auto_crop=True)),
    ("dense", 12, 0, dict(crop=2)), ("dense", 0, 2.5, dict(crop=2))])
@pytest.mark.parametrize("threads", [1, 2])
def test_one_engine_step_sees_the_images_moved_by_that_steps_offsets(small_mnist, input_path,
                                                                     rotate, elastic, kept,
                                                                     threads):
    # One step (lr 0) at (epoch 2, step 5): its loss is the float64 forward pass of the batch's
    # images moved by shift_offsets(seed, 2, 5): the loop draws the offsets of that very step.
    from fastmlp.model import MLP

    B, k, seed, epoch, step = 32, 3, 7, 2, 5
    data = small_mnist.fitted(TrainConfig(**kept))
    cfg = TrainConfig(hidden=(16,), batch_size=B, batch_ramp=None, dropout=0.0, **kept,
                      optimizer="sgd", threads=threads, input_path=input_path,
                      activation="sigmoid", seed=seed,
                      augment=f"shift:{k}" + (f"+rotate:{rotate}" if rotate else "")
                      + (f"+elastic:{elastic}" if elastic else ""))
    images = data.splits.train_x
    X = np.ascontiguousarray(images.reshape(len(images), -1))
    y = np.ascontiguousarray(data.splits.train_y, dtype=np.int64)
    model = MLP.create((data.transform.n_inputs, 16, 10), "sigmoid", seed=0,
                       transform=data.transform)
    tr = calls.transform_arrays(model, X.shape[1])
    csr, hyper_for = plan.input_plan(cfg, model.activation, X, tr, threads, image_width=28)
    hp = hyper_for(B)
    assert hp.sparse == (input_path == "sparse") and hp.shift_max == k
    assert hp.rotate_max == pytest.approx(np.deg2rad(rotate)) and hp.elastic_max == elastic
    ws = buffers.make_workspace(model.sizes, B, model.params.size)
    order = np.random.default_rng(0).permutation(len(X)).astype(np.int64)
    loss, _, n, bad = calls.train_steps(model, ws, hp, X, y, order, tr, B, step, 1,
                                        np.zeros(step + 1), epoch, 0, csr=csr,
                                        input_of_pixel=K.input_of_pixel(tr[0], X.shape[1]))
    assert n == B and bad == -1
    rows = order[step * B:(step + 1) * B]
    offsets = K.shift_offsets(seed, epoch, step, B, k)
    angles = K.rotation_angles(seed, epoch, step, B, rotate) if rotate else np.zeros(B)
    nodes = K.elastic_nodes(seed, epoch, step, B, elastic)
    move = (lambda img, dy, dx, a, e: warp_reference(img, dy, dx, a, e)) if rotate or elastic \
        else (lambda img, dy, dx, a, e: shift_image(img, dy, dx))
    x = np.stack([move(images[r], dy, dx, a, e).ravel()[tr[0]]
                  for r, (dy, dx), a, e in zip(rows, offsets, angles, nodes)]) \
        * tr[1].astype(np.float64)
    W1, b1, W2, b2 = model.weight(0), model.bias(0), model.weight(1), model.bias(1)
    h = naive.activation_forward("sigmoid", naive.dense_forward(x, W1, b1))
    want, _, _ = naive.softmax_xent_forward(naive.dense_forward(h, W2, b2), y[rows])
    assert loss / B == pytest.approx(want, rel=1e-5)
    x0 = X[rows][:, tr[0]] * tr[1].astype(np.float64)  # the same batch unmoved: another loss
    h0 = naive.activation_forward("sigmoid", naive.dense_forward(x0, W1, b1))
    assert naive.softmax_xent_forward(naive.dense_forward(h0, W2, b2), y[rows])[0] != \
        pytest.approx(want, rel=1e-4)
    # the map must come exactly when the images move: without it this loop is compiled with no
    # augmentation kernels (loop/steps.py), so a moving hp with None would train on still images
    with pytest.raises(ValueError, match="input_of_pixel must be pixel_map_arg"):
        calls.train_steps(model, ws, hp, X, y, order, tr, B, step, 1, np.zeros(step + 1),
                          epoch, 0, csr=csr)
    still = hp._replace(shift_max=0, rotate_max=0.0, elastic_max=0.0)
    with pytest.raises(ValueError, match="input_of_pixel must be pixel_map_arg"):
        calls.train_steps(model, ws, still, X, y, order, tr, B, step, 1, np.zeros(step + 1),
                          epoch, 0, csr=csr, input_of_pixel=calls.NO_PIXEL_MAP)


def test_every_preset_has_its_help_line_and_shifted_trains_on_shifts():
    from fastmlp.config import PRESET_NOTES, PRESETS, preset
    from fastmlp.train import build_parser

    assert list(PRESET_NOTES) == list(PRESETS)
    text = " ".join(build_parser().format_help().split())
    assert all(f"{name}: {' '.join(note.split())}" in text for name, note in PRESET_NOTES.items())
    assert preset("shifted").augment == "shift:2"
    assert preset("shifted").hidden == preset("strong").hidden == preset("distorted").hidden
    assert parse_augment(preset("distorted").augment).resamples


def test_gather_shifted_refuses_what_would_read_outside_the_images():
    images = np.zeros((4, 36), np.uint8)
    out = np.zeros((2, 3), np.float32)
    ok = dict(rows=np.array([0, 3]), pixel_index=np.array([0, 7, 35]),
              scale=np.ones(3, np.float32), shift=np.zeros(3, np.float32))
    K.gather_shifted(out, images, *ok.values(), 6, 1, 0, 0, 0)
    for change, words in ((dict(rows=np.array([0, 4])), "rows must index"),
                          (dict(pixel_index=np.array([0, 7, 36])), "pixel_index must index"),
                          (dict(scale=np.ones(3)), "scale")):
        with pytest.raises(ValueError, match=words):
            K.gather_shifted(out, images, *{**ok, **change}.values(), 6, 1, 0, 0, 0)
    with pytest.raises(ValueError, match="does not divide"):
        K.gather_shifted(out, images, *ok.values(), 5, 1, 0, 0, 0)
