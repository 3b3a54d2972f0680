"""Label smoothing, the max-norm constraint and the momentum ramp (issue 34).

Each kernel against its naive float64 twin (tests/naive.py) and label smoothing's gradient
against finite differences; then each as the training loop runs it: one step of the loop with
max-norm equals the same step without it followed by the twin's clip (every optimizer, fused
and not, one and two threads), the loop's loss with smoothing equals the twin's on the same
logits, and the settings are rows of the config table (flag, validation, sweep key).
"""

import math
import subprocess
import sys

import naive
import numpy as np
import pytest
from synthetic import learnable
from test_kernels import (DTYPES, XENT_CASES, assert_close, assert_fd_close, fd_gradient,
                          xent_case)

from fastmlp import kernels as K
from fastmlp.choices.activations import get_activation
from fastmlp.choices.optimizers import OPTIMIZERS
from fastmlp.choices.schedules import momentum_for_epoch
from fastmlp.config import TrainConfig
from fastmlp.errors import ConfigError
from fastmlp.loop import buffers, calls
from fastmlp.model import MLP
from fastmlp.sweep import grid
from fastmlp.training.plan import loop_hyper
from fastmlp.training.run import train
from fastmlp.training.run_data import Data

SMOOTHINGS = [0.0, 0.1, 0.5, 0.99]


# --------------------------------------------------------------------------------------------
# Label smoothing: the fused softmax + cross-entropy with smoothed targets
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", XENT_CASES)
def test_smoothed_xent_matches_twin(case, dtype, smoothing):
    logits, labels = xent_case(case, dtype)
    probs = np.full_like(logits, np.nan)
    loss, correct = K.softmax_xent_forward(probs, logits, labels, smoothing)
    ref_loss, ref_probs, ref_correct = naive.softmax_xent_forward(logits, labels, smoothing)
    assert math.isfinite(loss)  # stable on extreme logits, as without smoothing
    # the smoothed loss sums every shifted logit: its float32 error is relative to their size
    scale = np.abs(logits).mean() if logits.size else None
    assert_close(loss, ref_loss, dtype, scale=scale, what="mean loss")
    assert_close(probs, ref_probs, dtype, what="probs")
    assert correct == ref_correct
    dlogits = np.full_like(logits, np.nan)
    K.softmax_xent_backward(dlogits, probs, labels, smoothing)
    if logits.shape[0]:
        assert_close(dlogits, naive.softmax_xent_backward(ref_probs, labels, smoothing), dtype,
                     what="dlogits")
        # the targets sum to 1, so each row of the gradient sums to 0
        assert_close(dlogits.sum(axis=1), 0.0, dtype, what="rows of dlogits sum to 0")


@pytest.mark.parametrize("smoothing", [0.1, 0.5])
@pytest.mark.parametrize("case", ["ordinary", "one-sample", "rows-far-apart", "all-equal"])
def test_smoothed_xent_gradient_matches_finite_differences(case, smoothing):
    logits, labels = xent_case(case, np.float64)
    probs = np.empty_like(logits)

    def loss():
        return K.softmax_xent_forward(probs, logits, labels, smoothing)[0]

    loss()
    dlogits = np.empty_like(logits)
    K.softmax_xent_backward(dlogits, probs, labels, smoothing)
    assert_fd_close(dlogits, fd_gradient(loss, logits), f"dlogits ({case}, e={smoothing})")


def test_smoothing_exact_values_and_bad_values():
    # all-equal logits: p = 1/K is the smoothed target too, so the loss is log K at any e
    logits = np.full((2, 4), 3.0)
    labels = np.array([1, 3])
    probs = np.empty_like(logits)
    assert K.softmax_xent_forward(probs, logits, labels, 0.3)[0] == pytest.approx(math.log(4))
    # a confident right answer costs more with smoothing (the target is not one-hot)
    sure = np.array([[20.0, 0.0, 0.0, 0.0]])
    plain = K.softmax_xent_forward(np.empty_like(sure), sure, np.array([0]))[0]
    smooth = K.softmax_xent_forward(np.empty_like(sure), sure, np.array([0]), 0.2)[0]
    assert plain < 1e-8 and smooth == pytest.approx(0.2 * 3 / 4 * 20.0, rel=1e-6)
    for bad in (-0.1, 1.0, float("nan"), "0.1"):
        with pytest.raises(ValueError, match="smoothing"):
            K.softmax_xent_forward(probs, logits, labels, bad)
        with pytest.raises(ValueError, match="smoothing"):
            K.softmax_xent_backward(probs.copy(), probs, labels, bad)


# --------------------------------------------------------------------------------------------
# Max-norm: the kernels and their public wrapper
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 5), (1, 3), (300, 1), (0, 4)])
def test_max_norm_matches_twin(shape, dtype):
    rng = np.random.default_rng(3)
    w = rng.normal(size=shape).astype(dtype)
    if shape[0]:
        w[:, 0] *= 10.0  # far above c
        w[:, -1] *= 1e-3  # far below c
    c = float(np.median(np.linalg.norm(w, axis=0))) if shape[0] else 1.0
    want = naive.max_norm(w, c)
    before = w.copy()
    n = K.max_norm(w, c)
    assert_close(w, want, dtype, what="weights")
    norms = np.linalg.norm(w.astype(np.float64), axis=0)
    assert np.all(norms <= c * (1 + 1e-6))
    kept = np.linalg.norm(before.astype(np.float64), axis=0) <= c
    np.testing.assert_array_equal(w[:, kept], before[:, kept])  # untouched, bit for bit
    assert n == int((~kept).sum())


def test_max_norm_refuses_bad_input():
    w = np.ones((3, 2))
    for bad in (0.0, -1.0, float("inf"), float("nan"), None):
        with pytest.raises(ValueError, match="positive finite"):
            K.max_norm(w, bad)
    with pytest.raises(ValueError):
        K.max_norm(np.ones(3), 1.0)
    with pytest.raises(ValueError):
        K.max_norm(np.ones((3, 2), np.int64), 1.0)


# --------------------------------------------------------------------------------------------
# In the training loop
# --------------------------------------------------------------------------------------------
def _setup(optimizer, threads, batch=32, n=96, hidden=(9, 7)):
    x, y = learnable(n, k=3, shape=(6, 6), seed=5)
    X = np.ascontiguousarray(x.reshape(n, -1))
    cfg = TrainConfig(hidden=hidden, optimizer=optimizer, dropout=0.0, threads=threads,
                      input_path="dense", momentum=0.8)
    act = get_activation(cfg.activation)
    model = MLP.create((X.shape[1], *hidden, 3), act, seed=2)
    ws = buffers.make_workspace(model.sizes, batch, model.params.size, norm_threads=threads)
    return cfg, act, model, ws, X, y.astype(np.int64), calls.transform_arrays(model, X.shape[1])


def _weights(model):
    return [model.params[w:w + D * H].reshape(D, H) for w, _, D, H in model.layout]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name, fused", [(name, False) for name in OPTIMIZERS] + [
    (name, True) for name, row in OPTIMIZERS.items() if row.fuses])  # fused: inside the GEMM
@pytest.mark.parametrize("hidden", [(9, 7), (700,)], ids=["two-layers", "wide"])
def test_each_loop_step_with_max_norm_is_the_step_then_the_twins_clip(name, fused, threads,
                                                                      hidden):
    # wide: 700 units are updated 5 rows at a time (steps.CLIP_CHUNK), the last piece shorter
    cfg, act, model, ws, X, y, tr = _setup(name, threads, hidden=hidden)
    free = MLP(model.sizes, act, model.params.copy())
    ws_free = buffers.make_workspace(model.sizes, 32, model.params.size)
    hp = loop_hyper(cfg, act, sparse=False, threads=threads)._replace(fused=fused)
    order = np.arange(len(X), dtype=np.int64)
    lrs = np.array([0.5, 0.3, 0.2])
    # c: below some units' norms and above others' (init norms are about 1.4)
    c = float(np.median(np.concatenate([np.linalg.norm(w, axis=0) for w in _weights(model)])))
    clipped = 0
    for s in range(3):
        calls.train_steps(model, ws, hp._replace(max_norm=c), X, y, order, tr, 32, s, 1, lrs,
                          0, s)
        calls.train_steps(free, ws_free, hp, X, y, order, tr, 32, s, 1, lrs, 0, s)
        for w, w_free in zip(_weights(model), _weights(free)):
            want = naive.max_norm(w_free, c)
            clipped += int((np.linalg.norm(w_free.astype(np.float64), axis=0) > c).sum())
            np.testing.assert_allclose(w, want, rtol=1e-5, atol=1e-7)
            w_free[:] = w  # both go on from the clipped weights
        biases = [model.params[b:b + H] for _, b, _, H in model.layout]
        for b, b_free in zip(biases, [free.params[b:b + H] for _, b, _, H in free.layout]):
            np.testing.assert_array_equal(b, b_free)  # biases are not constrained
        if name != "sgd":
            ws_free.opt1[:], ws_free.opt2[:] = ws.opt1, ws.opt2
    assert clipped > 0


def test_max_norm_needs_its_buffers_for_every_thread():
    cfg, act, model, _, X, y, tr = _setup("momentum", 2)
    ws = buffers.make_workspace(model.sizes, 32, model.params.size)  # no norm buffers
    hp = loop_hyper(cfg, act, sparse=False, threads=2)._replace(max_norm=1.0)
    with pytest.raises(ValueError, match="norm_threads=2"):
        calls.train_steps(model, ws, hp, X, y, np.arange(len(X)), tr, 32, 0, 1,
                          np.array([0.1]), 0, 0)


def test_loop_loss_and_gradient_with_label_smoothing_are_the_twins():
    cfg, act, model, ws, X, y, tr = _setup("sgd", 1, hidden=(8,))
    hp = loop_hyper(cfg.replace(label_smoothing=0.2), act, sparse=False, threads=1)
    hp = hp._replace(fused=False)
    probs = np.empty((32, 3), np.float32)
    calls.evaluate(model, X[:32], probs_out=probs)  # the forward pass, before the step
    logits = np.log(probs.astype(np.float64))  # softmax(log p) = p: the same targets' loss
    order = np.arange(len(X), dtype=np.int64)
    loss, _, _, _ = calls.train_steps(model, ws, hp, X, y, order, tr, 32, 0, 1,
                                      np.array([0.1]), 0, 0)
    want, _, _ = naive.softmax_xent_forward(logits, y[:32], 0.2)
    assert loss / 32 == pytest.approx(want, rel=1e-5)
    # the output bias's gradient is the column sum of (p - q) / B
    _, b_off, _, H = model.layout[-1]
    np.testing.assert_allclose(ws.grads[b_off:b_off + H],
                               naive.softmax_xent_backward(probs, y[:32], 0.2).sum(axis=0),
                               rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------------------------
# The settings: rows of the config table; the momentum ramp
# --------------------------------------------------------------------------------------------
def test_momentum_ramp_goes_from_momentum_to_final_over_the_epochs():
    cfg = TrainConfig(momentum=0.5, momentum_final=0.9, epochs=5)
    assert [momentum_for_epoch(cfg, e) for e in range(5)] == pytest.approx(
        [0.5, 0.6, 0.7, 0.8, 0.9])
    assert momentum_for_epoch(cfg.replace(momentum_final=None), 3) == 0.5
    assert momentum_for_epoch(cfg.replace(epochs=1), 0) == 0.9


def test_the_momentum_ramp_reaches_the_loop():
    tx, ty = learnable(200, k=3, shape=(8, 8), seed=1)
    vx, vy = learnable(60, k=3, shape=(8, 8), seed=2)
    data = Data.from_arrays(tx, ty, vx, vy)
    cfg = TrainConfig(hidden=(8,), epochs=2, threads=1, momentum=0.5)
    same = train(cfg.replace(momentum_final=0.5), data=data).model.params
    np.testing.assert_array_equal(same, train(cfg, data=data).model.params)
    # momentum 0.5 in epoch 0 either way, then 0.95 in the last: only epoch 1 differs
    ramped = train(cfg.replace(momentum_final=0.95), data=data)
    assert not np.array_equal(ramped.model.params, same)
    constant = train(cfg.replace(momentum=0.95), data=data)
    assert not np.array_equal(ramped.model.params, constant.model.params)


@pytest.mark.parametrize("field, flag, good, bad", [
    ("max_norm", "--max-norm", 3.0, -1.0),
    ("label_smoothing", "--label-smoothing", 0.1, 1.0),
    ("momentum_final", "--momentum-final", 0.99, 1.0),
])
def test_each_setting_is_a_row_flag_validation_and_sweep_key(field, flag, good, bad):
    assert grid.field_name(flag.lstrip("-")) == field
    assert getattr(TrainConfig.from_dict({field: good}), field) == good
    with pytest.raises(ConfigError, match=flag):
        TrainConfig(**{field: bad})
    cfg = TrainConfig(**{field: good})
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # a checkpoint's config round-trips


def test_bad_values_on_the_command_line_are_one_line_errors():
    r = subprocess.run([sys.executable, "-m", "fastmlp.train", "--max-norm", "-2"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "--max-norm" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
