"""The training loop on several threads (loop/steps.py, kernels/_sync.py): each step's rows
and each layer's parameter blocks split between threads must give the one-thread step, on
every path."""

import numpy as np
import pytest

from fastmlp.config import TrainConfig
from fastmlp.loop import buffers, calls
from fastmlp.model import MLP
from fastmlp.training import plan


@pytest.fixture(scope="module")
def arrays(mnist):
    X = np.ascontiguousarray(mnist.train_images[:4000].reshape(4000, -1))
    y = np.ascontiguousarray(mnist.train_labels[:4000], dtype=np.int64)
    return X, y


def run(arrays, threads, steps=12, batch=50, **settings):
    X, y = arrays
    cfg = TrainConfig(**{**dict(hidden=(32, 16), batch_ramp=None, batch_size=batch, lr=0.05,
                                dropout=0.2, threads=threads), **settings})
    model = MLP.create((X.shape[1], *cfg.hidden, 10), cfg.activation, seed=3)
    tr = calls.transform_arrays(model, X.shape[1])
    csr, hyper_for = plan.input_plan(cfg, model.activation, X, tr, threads)
    hp = hyper_for(batch)
    ws = buffers.make_workspace(model.sizes, batch, model.params.size)
    order = np.random.default_rng(1).permutation(len(X)).astype(np.int64)
    lrs = np.full(steps, cfg.lr)
    loss, correct, n, bad = calls.train_steps(model, ws, hp, X, y, order, tr, batch, 0, steps,
                                              lrs, 0, 0, csr=csr)
    assert bad == -1 and n == steps * batch
    return model, loss, correct, hp


PATHS = {
    "dense sgd (fused)": dict(optimizer="sgd", input_path="dense"),
    "sparse sgd (fused)": dict(optimizer="sgd", input_path="sparse"),
    "dense momentum": dict(optimizer="momentum", input_path="dense"),
    "sparse momentum + input dropout": dict(optimizer="momentum", input_path="sparse",
                                            dropout_input=0.2),
    "dense adam + input dropout + decay": dict(optimizer="adam", lr=0.002, input_path="dense",
                                               dropout_input=0.2, weight_decay=1e-3),
    "sparse sgd + decay (unfused)": dict(optimizer="sgd", input_path="sparse",
                                         weight_decay=1e-3),
}


@pytest.mark.parametrize("path", PATHS)
def test_threads_take_the_one_thread_steps(arrays, path):
    one, loss1, correct1, hp = run(arrays, 1, **PATHS[path])
    assert hp.sparse == (PATHS[path]["input_path"] == "sparse")
    start = MLP.create(one.sizes, one.activation, seed=3)
    assert np.abs(one.params - start.params).max() > 1e-3       # the steps moved the weights
    for threads in (2, 3):
        many, loss, correct, _ = run(arrays, threads, **PATHS[path])
        # same masks, same math; only BLAS's blocking of smaller matrices may round differently
        # (Adam divides by sqrt(v): a last-bit difference in a tiny gradient moves a weight by
        # up to ~lr * 1e-3)
        atol = 1e-5 if PATHS[path]["optimizer"] == "adam" else 1e-6
        np.testing.assert_allclose(many.params, one.params, rtol=1e-5, atol=atol)
        assert loss == pytest.approx(loss1, rel=1e-5) and correct == correct1


def test_a_batch_smaller_than_the_threads(arrays):
    # the last batch of an epoch can have fewer rows than threads: a thread with none waits
    one, *_ = run(arrays, 1, steps=5, batch=2, optimizer="momentum")
    many, *_ = run(arrays, 3, steps=5, batch=2, optimizer="momentum")
    np.testing.assert_allclose(many.params, one.params, rtol=1e-5, atol=1e-6)


def test_same_threads_same_weights_bit_for_bit(arrays):
    a, *_ = run(arrays, 2, optimizer="momentum", input_path="sparse", dropout_input=0.1)
    b, *_ = run(arrays, 2, optimizer="momentum", input_path="sparse", dropout_input=0.1)
    np.testing.assert_array_equal(a.params, b.params)


def test_evaluation_splits_the_images_between_threads(arrays):
    X, y = arrays
    model, *_ = run(arrays, 1, optimizer="sgd")
    probs = {}
    results = {}
    for threads in (1, 2, 3):
        pred = np.full(len(X), -1, np.int64)
        probs[threads] = np.full((len(X), 10), np.nan, np.float32)
        loss, correct = calls.evaluate(model, X, y, batch_size=256, pred_out=pred,
                                       probs_out=probs[threads], threads=threads)
        results[threads] = (loss, correct, pred)
    for threads in (2, 3):
        np.testing.assert_array_equal(results[threads][2], results[1][2])
        np.testing.assert_allclose(probs[threads], probs[1], rtol=1e-5, atol=1e-7)
        assert results[threads][1] == results[1][1] == (results[1][2] == y).sum()
        assert results[threads][0] == pytest.approx(results[1][0], rel=1e-6)


@pytest.mark.parametrize("triple, instruction", [("x86_64-unknown-linux-gnu", "pause"),
                                                 ("aarch64-unknown-linux-gnu", "yield"),
                                                 ("riscv64-unknown-linux-gnu", None)])
def test_the_spin_wait_hint_compiles_for_each_cpu_to_its_own_instruction(triple, instruction):
    """The barrier's hint is the target's own: x86's pause compiled for aarch64 made LLVM abort
    the training loop's compile there. Each target's IR is compiled by LLVM for that target."""
    import llvmlite.binding as llvm
    import llvmlite.ir as ir

    from fastmlp.kernels._sync import spin_hint

    hint = spin_hint(triple)
    assert (hint is None) == (instruction is None)
    if hint is None:
        return
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    module = ir.Module(name="spin")
    module.triple = triple
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), []), name="spin")
    builder = ir.IRBuilder(fn.append_basic_block())
    name, arg = hint
    i32 = ir.IntType(32)
    callee = ir.Function(module, ir.FunctionType(ir.VoidType(), [i32] if arg is not None else []),
                         name=name)
    builder.call(callee, [ir.Constant(i32, arg)] if arg is not None else [])
    builder.ret_void()
    machine = llvm.Target.from_triple(triple).create_target_machine()
    asm = machine.emit_assembly(llvm.parse_assembly(str(module)))
    assert instruction in asm.split(), asm
