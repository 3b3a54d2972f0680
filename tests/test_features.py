"""Float features (issue 33): float32 rows ``(N, D)`` through the image loop's dense first layer.

The loop's steps on features are compared with the float64 twins of tests/naive.py, step by
step, as the image steps are (test_optimizers.py, test_sparse.py); the gather takes a feature
row as it is; ``Data.from_arrays`` takes features and refuses what makes no sense for them in
one line; a real run on scikit-learn's digits (its 0-16 values as float features) learns,
checkpoints with its input kind and predicts from the checkpoint; checkpoints from before
features still load as images.
"""

import naive
import numpy as np
import pytest
from sklearn.datasets import load_digits

from fastmlp import Data, TrainConfig, kernels, train
from fastmlp.choices.activations import get_activation
from fastmlp.data import InputTransform, feature_transform
from fastmlp.errors import ConfigError, DataError
from fastmlp.loop import buffers, calls
from fastmlp.model import MLP
from fastmlp.training import checkpoint
from fastmlp.training.plan import loop_hyper

RTOL, ATOL = 1e-4, 1e-6  # float32 loop vs float64 twin on the same float32 inputs


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits: (1797, 64) float features (0..16 scaled to mean 0, std 1 with the
    training rows' statistics), labels 0..9, in a seeded random order (the file is ordered by
    groups of writers: its last third is harder than the rest); the first 1200 rows train."""
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    mean, std = X[:1200].mean(axis=0), X[:1200].std(axis=0) + 1e-9
    return ((X - mean) / std).astype(np.float32), y.astype(np.int64)


def _twin_step(params, layout, x, y, act, p, lr):
    """One plain-SGD step of the float64 twin: forward through every layer (activation ``act``
    with parameter ``p`` on hidden layers), softmax cross-entropy, backward, update. Returns
    the new parameters and the batch's mean loss."""
    params = params.astype(np.float64).copy()
    W = [params[w:w + D * H].reshape(D, H) for w, _, D, H in layout]
    b = [params[o:o + H] for _, o, _, H in layout]
    zs, hs = [], [np.asarray(x, np.float64)]
    for l in range(len(layout)):
        zs.append(naive.dense_forward(hs[-1], W[l], b[l]))
        if l < len(layout) - 1:
            hs.append(naive.activation_forward(act, zs[-1], p))
    loss, probs, _ = naive.softmax_xent_forward(zs[-1], y)
    dz = naive.softmax_xent_backward(probs, y)
    grads = []
    for l in range(len(layout) - 1, -1, -1):
        dinp, dW, db = naive.dense_backward(dz, hs[l], W[l])
        grads.append((l, dW, db))
        if l:
            dz = naive.activation_backward(act, dinp, zs[l - 1], p)
    for l, dW, db in grads:
        W[l] -= lr * dW
        b[l] -= lr * db
    return params, loss


@pytest.mark.parametrize("threads", [1, 2])
def test_each_step_on_features_is_the_float64_twins_step(digits, threads):
    X, y = digits
    X, y = np.ascontiguousarray(X[:96]), y[:96]
    cfg = TrainConfig(hidden=(12, 8), activation="tanh", optimizer="sgd", dropout=0.0,
                      threads=threads, input_path="dense")
    act = get_activation(cfg.activation)
    model = MLP.create((64, 12, 8, 10), act, seed=3, transform=feature_transform(64))
    ws = buffers.make_workspace(model.sizes, 32, model.params.size)
    tr = calls.transform_arrays(model, 64)
    hp = loop_hyper(cfg, act, sparse=False, threads=threads)
    order = np.random.default_rng(0).permutation(96).astype(np.int64)
    lrs = np.array([0.5, 0.2, 0.1])
    for s in range(3):
        rows = order[32 * s:32 * (s + 1)]
        want, want_loss = _twin_step(model.params, model.layout, X[rows], y[rows], "tanh",
                                     0.0, lrs[s])
        loss, _, samples, bad = calls.train_steps(model, ws, hp, X, y, order, tr, 32, s, 1,
                                                  lrs, 0, s)
        assert samples == 32 and bad == -1
        np.testing.assert_allclose(loss / 32, want_loss, rtol=RTOL)
        np.testing.assert_allclose(model.params, want, rtol=RTOL, atol=ATOL,
                                   err_msg=f"step {s + 1}")


def test_the_gather_takes_a_feature_row_as_it_is(digits):
    X = np.ascontiguousarray(digits[0][:50])
    rows = np.array([7, 0, 49, 7], dtype=np.int64)
    t = feature_transform(64)
    out = np.full((4, 64), np.nan, np.float32)
    kernels.gather_batch(out, X, rows, t.pixel_index, t.scale, t.shift)
    np.testing.assert_array_equal(out, X[rows])  # x * 1 + 0: exact
    # and any index map and scaling, as its twin
    idx = np.arange(63, -1, -2, dtype=np.int64)
    scale = np.linspace(0.5, 2, 32, dtype=np.float32)
    shift = np.linspace(-1, 1, 32, dtype=np.float32)
    out = np.empty((4, 32), np.float32)
    kernels.gather_batch(out, X, rows, idx, scale, shift)
    np.testing.assert_allclose(out, naive.gather_batch(X, rows, idx, scale, shift), rtol=1e-6)


def test_digits_as_features_learn_checkpoint_and_predict_from_the_checkpoint(digits, tmp_path):
    X, y = digits
    data = Data.from_arrays(X[:1200], y[:1200], X[1200:], y[1200:])
    path = tmp_path / "digits.npz"
    r = train(TrainConfig(hidden=(64,), epochs=15, batch_size=32, batch_ramp=None, threads=2,
                          dropout=0.1), data=data, save=str(path))
    s = r.summary
    assert s["input_path"] == "dense" and s["n_inputs"] == 64 and s["n_classes"] == 10
    assert s["test_accuracy_full"] >= 0.95  # chance 0.1; measured 0.97
    model, meta = checkpoint.load_model(path)
    assert meta["transform"]["inputs"] == "features" and model.transform.inputs == "features"
    np.testing.assert_array_equal(model.predict(X[1200:]), r.model.predict(X[1200:]))
    assert model.accuracy(X[1200:].astype(np.float64), y[1200:]) == s["test_accuracy_full"]
    with pytest.raises(DataError, match="63 features per row, the model expects 64"):
        model.predict(X[:5, :63])


def test_a_features_run_asks_the_compile_helper_about_the_loop_it_compiles(digits, monkeypatch):
    # plan.make_plan asks warmup.start whether the training worker is cached for a tiny
    # stand-in of the run's argument types (and starts the helper if not): for features, the
    # float32 loop, which the run then compiles (or loads); uint8 images would ask about
    # another loop and start a helper for nothing on every cold features run
    from fastmlp.loop import warmup
    from fastmlp.loop.steps import _train_worker

    asked = []
    monkeypatch.setattr(warmup, "start", lambda args: asked.append(args))
    X, y = digits
    train(TrainConfig(hidden=(8,), epochs=1, threads=1),
          data=Data.from_arrays(X[:100], y[:100], X[100:140], y[100:140]))
    (args,) = asked
    assert args[7].dtype == np.float32 and warmup._cached(_train_worker, args)


def test_a_checkpoint_from_before_features_loads_as_images():
    t = checkpoint.transform_from_meta(
        dict(image_shape=[4, 4], kept_shape=[4, 4], description="full image"),
        dict(pixel_index=np.arange(16), scale=np.full(16, 1 / 255), shift=np.zeros(16)))
    assert t.inputs == "images"
    assert InputTransform.from_dict(feature_transform(5).to_dict()).inputs == "features"


@pytest.mark.parametrize("change, words", [
    (dict(train_x=np.full((10, 3), np.nan)), ["train_x", "finite"]),
    (dict(test_x=np.full((4, 3), 1e39)), ["test_x", "finite"]),
    (dict(train_x=np.zeros((10, 3, 2), np.float32)), ["train_x", "uint8 images", "(N, D)"]),
    (dict(test_x=np.zeros((4, 3), np.uint8)), ["test_x", "uint8 images", "one kind"]),
    (dict(test_x=np.zeros((4, 5))), ["test_x", "train_x"]),
    (dict(train_x=np.array([["a", "b", "c"]] * 10)), ["train_x", "real numbers"]),
])
def test_from_arrays_refuses_bad_features_naming_them(change, words):
    arrays = dict(train_x=np.random.default_rng(0).normal(size=(10, 3)),
                  train_y=np.arange(10) % 2, test_x=np.zeros((4, 3)), test_y=np.arange(4) % 2)
    arrays.update(change)
    with pytest.raises(DataError) as e:
        Data.from_arrays(**arrays)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_integer_and_float64_features_become_float32_features():
    x = np.arange(30).reshape(10, 3)
    d = Data.from_arrays(x, np.arange(10) % 2, x[:4] * 0.5, np.arange(4) % 2)
    assert d.dataset.features and d.dataset.train_images.dtype == np.float32
    np.testing.assert_array_equal(d.dataset.test_images, (x[:4] * 0.5).astype(np.float32))


@pytest.mark.parametrize("setting, flag", [
    (dict(crop=1), "--crop"), (dict(center=2), "--center"), (dict(auto_crop=True), "--auto-crop"),
    (dict(normalize="standardize"), "--normalize"), (dict(augment="shift:1"), "--augment"),
    (dict(input_path="sparse"), "--input-path"),
])
def test_settings_for_images_only_are_refused_on_features_in_one_line(digits, setting, flag):
    X, y = digits
    data = Data.from_arrays(X[:100], y[:100], X[100:140], y[100:140])
    with pytest.raises(ConfigError) as e:
        train(TrainConfig(hidden=(8,), epochs=1, **setting), data=data)
    assert str(e.value).startswith(flag) and "float features" in str(e.value)
    assert "\n" not in str(e.value)
