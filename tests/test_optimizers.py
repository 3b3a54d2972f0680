"""The optimizer table (fastmlp/choices/optimizers.py): every row is a complete optimizer.

Each row's kernel is compared to its naive twin in test_kernels.py; here each row is checked
as the training loop runs it: the loop's branch on the row's code calls the row's kernel with
the row's hyperparameters and state buffers (one step through ``calls.train_steps`` equals the
twin applied to the gradient the step computed, over a few steps so the state carries), the
fused SGD step equals the unfused one, and a checkpoint holds and restores exactly the row's
state.
"""

import dataclasses
import inspect

import naive
import numpy as np
import pytest
from synthetic import learnable

from fastmlp.kernels import _update
from fastmlp.choices.activations import get_activation
from fastmlp.choices.optimizers import HYPERPARAMETERS, OPTIMIZERS, STATE_BUFFERS
from fastmlp.config import OPTIMIZERS as CHOICES
from fastmlp.config import TrainConfig
from fastmlp.loop import buffers, calls
from fastmlp.loop.buffers import Hyper
from fastmlp.model import MLP
from fastmlp.training import checkpoint
from fastmlp.training.plan import loop_hyper
from fastmlp.training.run import train
from fastmlp.training.run_data import Data

ROWS = list(OPTIMIZERS)
# hyperparameters away from their defaults, so a value passed to the wrong argument shows
HYPER = dict(momentum=0.8, nesterov=True, beta1=0.8, beta2=0.99, eps=1e-6)
# float32 kernel vs float64 twin on the same float32 inputs: |kernel - twin| <= ATOL + RTOL |twin|
RTOL, ATOL = 1e-4, 1e-6


def twin_of(row):
    return getattr(naive, row.kernel.__name__.lstrip("_"))


@pytest.mark.parametrize("name", ROWS)
def test_every_row_has_a_kernel_a_twin_and_fields_for_its_hyperparameters(name):
    row = OPTIMIZERS[name]
    assert row.name == name and CHOICES == tuple(OPTIMIZERS)
    assert getattr(_update, row.kernel.__name__) is row.kernel
    # kernel(params, *state, grads, lr, *hyper[, t]), and the twin takes the same arguments
    n_args = 1 + len(row.state) + 2 + len(row.hyper) + row.takes_step
    assert len(inspect.signature(row.kernel.py_func).parameters) == n_args
    assert len(inspect.signature(twin_of(row)).parameters) == n_args
    assert len(row.state) <= len(STATE_BUFFERS)
    config_fields = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    for h in row.hyper:
        assert h in HYPERPARAMETERS
        assert config_fields[h] is Hyper.__annotations__[h], h  # same name, same type
    assert len({r.code for r in OPTIMIZERS.values()}) == len(OPTIMIZERS)


def _setup(name, weight_decay, n=96, batch=32):
    x, y = learnable(n, k=3, shape=(6, 6), seed=5)
    X = np.ascontiguousarray(x.reshape(n, -1))
    y = y.astype(np.int64)
    cfg = TrainConfig(hidden=(7,), optimizer=name, weight_decay=weight_decay, dropout=0.0,
                      threads=1, input_path="dense", **HYPER)
    act = get_activation(cfg.activation)
    model = MLP.create((X.shape[1], 7, 3), act, seed=2)
    ws = buffers.make_workspace(model.sizes, batch, model.params.size)
    tr = calls.transform_arrays(model, X.shape[1])
    return cfg, act, model, ws, X, y, tr


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2], ids=["no-decay", "decay"])
@pytest.mark.parametrize("name", ROWS)
def test_each_engine_step_is_its_rows_twin_on_the_steps_gradient(name, weight_decay):
    row = OPTIMIZERS[name]
    cfg, act, model, ws, X, y, tr = _setup(name, weight_decay)
    hp = loop_hyper(cfg, act, sparse=False, threads=1)
    assert hp.optimizer == row.code
    assert hp.fused == (row.fuses and weight_decay == 0)
    # a fused step writes no gradient: a twin run of the unfused step gives it
    shadow = MLP(model.sizes, act, model.params.copy()) if hp.fused else None
    ws2 = buffers.make_workspace(model.sizes, 32, model.params.size) if hp.fused else None
    order = np.arange(len(X), dtype=np.int64)
    lrs = np.array([0.1, 0.05, 0.02])
    for s in range(3):
        before = model.params.astype(np.float64)
        state = [getattr(ws, b).astype(np.float64) for b in STATE_BUFFERS[:len(row.state)]]
        _, _, samples, bad = calls.train_steps(model, ws, hp, X, y, order, tr, 32, s, 1, lrs,
                                               0, s)
        assert samples == 32 and bad == -1
        if hp.fused:
            calls.train_steps(shadow, ws2, hp._replace(fused=False), X, y, order, tr, 32, s,
                              1, lrs, 0, s)
            grads = ws2.grads.astype(np.float64)
            shadow.params[:] = model.params  # both go on from the fused step's weights
        else:
            grads = ws.grads.astype(np.float64)
        assert np.any(grads != 0)
        args = [getattr(cfg, h) for h in row.hyper] + ([s + 1] if row.takes_step else [])
        out = twin_of(row)(before, *state, grads, lrs[s], *args)
        out = out if isinstance(out, tuple) else (out,)
        np.testing.assert_allclose(model.params, out[0], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{name} params, step {s + 1}")
        for buf, want in zip(STATE_BUFFERS, out[1:]):
            np.testing.assert_allclose(getattr(ws, buf), want, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name} {buf}, step {s + 1}")
        for buf in STATE_BUFFERS[len(row.state):]:  # what the row does not use stays zero
            np.testing.assert_array_equal(getattr(ws, buf), 0.0)


def _data(n_train=300):
    tx, ty = learnable(n_train, k=3, shape=(8, 8), seed=1)
    vx, vy = learnable(60, k=3, shape=(8, 8), seed=2)
    return Data.from_arrays(tx, ty, vx, vy)


@pytest.mark.parametrize("name", ROWS)
def test_a_checkpoint_holds_and_restores_exactly_the_rows_state(name, tmp_path, monkeypatch):
    row = OPTIMIZERS[name]
    monkeypatch.setattr("fastmlp.training.run.CHUNK_SAMPLES", 64)  # chunks of 2 steps at batch 32
    cfg = TrainConfig(hidden=(8,), epochs=2, batch_size=32, batch_ramp=None, optimizer=name,
                      lr=0.05 if name != "adam" else 0.005, threads=1, seed=4, **HYPER)
    data = _data()
    whole = train(cfg, data=data)
    ck = tmp_path / "ck.npz"
    part = train(cfg, data=data, should_stop=lambda e, s: e == 1 and s >= 4,
                 interrupt_save=str(ck))
    assert part.stopped == "interrupted"
    arrays, meta = checkpoint.load(ck)
    assert set(STATE_BUFFERS) <= set(arrays)
    for i, buf in enumerate(STATE_BUFFERS):  # the row's state is saved, the rest is zero
        assert np.any(arrays[buf] != 0) == (i < len(row.state)), buf
    state = meta["state"]
    assert list(state) == list(checkpoint.RunState().to_dict())
    assert (state["epoch"], state["step"], state["t"]) == (1, 4, 10 + 4)
    rest = train(cfg, data=data, resume=str(ck))
    np.testing.assert_array_equal(rest.model.params, whole.model.params)
    assert [h["loss"] for h in rest.history] == [h["loss"] for h in whole.history]


def test_run_state_keeps_the_checkpoint_format_old_runs_resume_from():
    # meta["state"] as checkpoints have written it since format fastmlp-checkpoint-1: these
    # keys, in this order; resumed_state refuses a checkpoint whose keys differ
    fresh = checkpoint.RunState().to_dict()
    assert list(fresh) == ["epoch", "step", "t", "loss_sum", "correct", "samples", "seconds",
                           "best_val", "best_epoch", "since_best", "history"]
    assert fresh["best_val"] == -1.0 and fresh["history"] == []
    saved = dict(fresh, epoch=1, t=10, history=[dict(
        epoch=1, loss=0.5, train_accuracy=0.8, val_loss=0.6, val_accuracy=0.7, seconds=1.0,
        samples_per_second=1.0, batch_size=32, lr=0.1, weight_rms=[1.0])])
    back = checkpoint.RunState(**checkpoint.resumed_state({"state": saved}, fresh, "ck", 2))
    assert back.to_dict() == saved
