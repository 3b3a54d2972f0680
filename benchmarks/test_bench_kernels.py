"""Each fastmlp kernel next to its NumPy float32 equivalent, for a 784-100-10 network at batch
32, 128 and 600.

Every case is first checked against its float64 twin (``tests/naive.py``, see twins.py) with
rtol 1e-4 / atol 1e-5, then timed. The fastmlp side calls the private ``_kernel`` the training
loop calls (no argument checks), from Python: each call includes Numba's dispatch (~1 us of
type checks), which the compiled loop does not pay; at B=32 that is a visible share. The NumPy
side calls ``numpy_mlp``'s function (the one ``numpy_mlp.train_epoch`` uses).

fastmlp's sparse first layer (MNIST is ~81% zeros; the trainer picks it for such inputs) is
timed in the same groups as the dense first layer when the kernels exist: ``fastmlp-sparse``
for the forward pass, ``fastmlp-sparse-fused`` for the backward pass, which with plain SGD
applies the update as it goes (so it also does the dense side's separate SGD update of that
layer, and still never writes the (784, 100) gradient). Both read the batch's rows of the data
set's CSR in place, so the sparse path has no gather to time (without input dropout).

One group per kernel and batch size, so ``--benchmark-group-by=group`` (the default) prints the
implementations side by side.
"""

from types import SimpleNamespace

import numpy as np
import pytest

import numpy_mlp as nm
import twins
from runners import epoch_order, initial_params

from fastmlp import kernels as K

SIZES = (784, 100, 10)
BATCHES = (32, 128, 600)
IMPLS = ("fastmlp", "numpy")
RTOL, ATOL = 1e-4, 1e-5
DROP = 0.5
KERNELS = ("gather_batch", "dense_forward_784x100", "dense_forward_100x10",
           "dense_backward_784x100", "dense_backward_100x10", "sigmoid_forward",
           "sigmoid_backward", "softmax_xent_forward", "softmax_xent_backward",
           "dropout_forward", "dropout_backward")
SPARSE_IMPL = {"dense_forward_784x100": "fastmlp-sparse",
               "dense_backward_784x100": "fastmlp-sparse-fused"}
SPARSE_KERNELS = ("csr_inputs", "_gather_sparse", "_sparse_dense_forward",
                  "_sparse_dense_backward_params")
HAVE_SPARSE = all(hasattr(K, name) for name in SPARSE_KERNELS)
LR = 0.5
CASES = [(k, impl) for k in KERNELS
         for impl in ("fastmlp",) + ((SPARSE_IMPL[k],) if k in SPARSE_IMPL else ()) + ("numpy",)]

F32 = np.float32
_CASES = {}


def _close(name, got, want):
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=RTOL, atol=ATOL,
                               err_msg=name)


def _inputs(mnist, B):
    rng = np.random.default_rng(B)
    rows = epoch_order(len(mnist.X), 0)[:B]
    x = (mnist.X[rows] / F32(255.0)).astype(F32)
    (W1, b1), (W2, b2) = nm.unflatten(initial_params(SIZES).copy(), SIZES)
    b1[:] = rng.normal(0, 0.1, b1.shape)
    b2[:] = rng.normal(0, 0.1, b2.shape)
    z = (rng.standard_normal((B, 100)) * 4).astype(F32)
    z[0, :4] = (-100.0, 100.0, -88.8, 0.0)   # saturated, overflow edge and zero
    h = twins.activation_forward("sigmoid", z).astype(F32)
    return SimpleNamespace(rng=rng, rows=rows, x=x, W1=W1, b1=b1, W2=W2, b2=b2, z=z, h=h,
                           labels=mnist.y[rows].copy(),
                           logits=(rng.standard_normal((B, 10)) * 3).astype(F32),
                           dout1=(rng.standard_normal((B, 100)) * 0.01).astype(F32),
                           dout2=(rng.standard_normal((B, 10)) * 0.01).astype(F32))


_CSR = {}


def _dataset_csr(mnist):
    # MNIST's training images as CSR (uint8 values), built once as the trainer does
    if "csr" not in _CSR:
        _CSR["csr"] = K.csr_inputs(mnist.X, np.arange(784, dtype=np.int64))
    return _CSR["csr"]


def _add_sparse(c, kernel, B, mnist, d):
    """The ``fastmlp-sparse[-fused]`` implementation of a first-layer kernel."""
    impl = SPARSE_IMPL[kernel]
    src = (d.rows, *_dataset_csr(mnist), np.full(784, 1 / 255, F32), 1.0)
    if kernel == "dense_forward_784x100":
        out = np.empty((B, 100), F32)
        setattr(c, impl, lambda: K._sparse_dense_forward(out, *src, d.W1, d.b1))
        want = twins.dense_forward(d.x, d.W1, d.b1)
        c.checks[impl] = lambda r: _close(kernel, out, want)
        return
    # backward with the fused SGD update: W -= lr * x.T @ dout, b -= lr * sum_b dout, in place
    W, b = d.W1.copy(), d.b1.copy()

    def fused():  # one thread owning every weight row and bias column (loop/steps.py's phase 2)
        K._sparse_dense_backward_params(W, d.dout1, *src, -LR, 0, W.shape[0])
        K._bias_backward(b, d.dout1, -LR, 1.0, 0, b.shape[0])
    setattr(c, impl, fused)
    _, want_dW, want_db = twins.dense_backward(d.dout1, d.x, d.W1)
    want_W, want_b = d.W1 - LR * want_dW, d.b1 - LR * want_db

    def check(r):  # the first call's result; later calls keep updating W and b (timing only)
        _close("weight after fused update", W, want_W)
        _close("bias after fused update", b, want_b)
    c.checks[impl] = check


def make_case(kernel, B, mnist):
    """``SimpleNamespace(<impl>=fn, ..., check=check(impl, result))`` for one kernel."""
    key = (kernel, B)
    if key in _CASES:
        return _CASES[key]
    d = _inputs(mnist, B)
    e = np.empty
    c = SimpleNamespace(checks={})

    if kernel == "gather_batch":
        idx = np.arange(784, dtype=np.int64)
        scale, shift = np.full(784, 1 / 255, F32), np.zeros(784, F32)
        of, on, staging = e((B, 784), F32), e((B, 784), F32), e((B, 784), np.uint8)
        c.fastmlp = lambda: K._gather_batch(of, mnist.X, d.rows, idx, scale, shift)
        c.numpy = lambda: nm.gather_batch(on, staging, mnist.X, d.rows)
        want = twins.gather_batch(mnist.X, d.rows, idx, scale, shift)
        c.check = lambda impl, r: _close(kernel, of if impl == "fastmlp" else on, want)

    elif kernel.startswith("dense_forward"):
        inp, W, b = (d.x, d.W1, d.b1) if kernel.endswith("784x100") else (d.h, d.W2, d.b2)
        of, on = e((B, W.shape[1]), F32), e((B, W.shape[1]), F32)
        c.fastmlp = lambda: K._dense_forward(of, inp, W, b)
        c.numpy = lambda: nm.dense_forward(on, inp, W, b)
        want = twins.dense_forward(inp, W, b)
        c.check = lambda impl, r: _close(kernel, of if impl == "fastmlp" else on, want)

    elif kernel.startswith("dense_backward"):
        first = kernel.endswith("784x100")  # the first layer needs no input gradient
        inp, W, dout = (d.x, d.W1, d.dout1) if first else (d.h, d.W2, d.dout2)
        bufs = {impl: (None if first else e(inp.shape, F32), e(W.shape, F32),
                       e(W.shape[1], F32)) for impl in IMPLS}
        dinp_f, dW_f, db_f = bufs["fastmlp"]

        def fastmlp():
            K._dense_backward_params(dW_f, db_f, dout, inp)
            if not first:
                K._dense_backward_input(dinp_f, dout, W)

        c.fastmlp = fastmlp
        c.numpy = lambda: nm.dense_backward(*bufs["numpy"], dout, inp, W)
        want_dinp, want_dW, want_db = twins.dense_backward(dout, inp, W)

        def check(impl, r):
            dinp, dW, db = bufs[impl]
            _close("dweight", dW, want_dW)
            _close("dbias", db, want_db)
            if dinp is not None:
                _close("dinp", dinp, want_dinp)
        c.check = check

    elif kernel == "sigmoid_forward":
        of, on = e(d.z.shape, F32), e(d.z.shape, F32)
        of_flat, z_flat = of.reshape(-1), d.z.reshape(-1)
        c.fastmlp = lambda: K._activation_forward(of_flat, z_flat, K.SIGMOID, 0.0, 0)
        c.numpy = lambda: nm.sigmoid_forward(on, d.z)
        want = twins.activation_forward("sigmoid", d.z)
        c.check = lambda impl, r: _close(kernel, of if impl == "fastmlp" else on, want)

    elif kernel == "sigmoid_backward":
        da = (d.rng.standard_normal(d.z.shape)).astype(F32)
        of, on, tmp = e(d.z.shape, F32), e(d.z.shape, F32), e(d.z.shape, F32)
        flat = [a.reshape(-1) for a in (of, da, d.z, d.h)]
        c.fastmlp = lambda: K._activation_backward(*flat, K.SIGMOID, 0.0, 0)
        c.numpy = lambda: nm.sigmoid_backward(on, da, d.h, tmp)
        want = twins.activation_backward("sigmoid", da, d.z)
        c.check = lambda impl, r: _close(kernel, of if impl == "fastmlp" else on, want)

    elif kernel == "softmax_xent_forward":
        pf, pn = e(d.logits.shape, F32), e(d.logits.shape, F32)
        c.fastmlp = lambda: K._softmax_xent_forward(pf, d.logits, d.labels)
        c.numpy = lambda: nm.softmax_xent_forward(pn, d.logits, d.labels)
        want_loss, want_p, want_correct = twins.softmax_xent_forward(d.logits, d.labels)

        def check(impl, r):
            _close("probs", pf if impl == "fastmlp" else pn, want_p)
            loss_sum = r[0] if impl == "fastmlp" else r
            _close("loss", loss_sum / B, want_loss)
            if impl == "fastmlp":
                assert r[1] == want_correct
        c.check = check

    elif kernel == "softmax_xent_backward":
        probs = twins.softmax_xent_forward(d.logits, d.labels)[1].astype(F32)
        of, on = e(probs.shape, F32), e(probs.shape, F32)
        c.fastmlp = lambda: K._softmax_xent_backward(of, probs, d.labels, 1.0 / B)
        c.numpy = lambda: nm.softmax_xent_backward(on, probs, d.labels)
        want = twins.softmax_xent_backward(probs, d.labels)
        c.check = lambda impl, r: _close(kernel, of if impl == "fastmlp" else on, want)

    elif kernel == "dropout_forward":
        inp = d.h
        bufs = {impl: (e(inp.shape, F32), e(inp.shape, F32)) for impl in IMPLS}
        of, mf = (a.reshape(-1) for a in bufs["fastmlp"])
        state = K._stream_seed(0, 0, 0, 1)
        rng = np.random.default_rng(1)
        c.fastmlp = lambda: K._dropout_forward(of, mf, inp.reshape(-1), DROP, state)
        c.numpy = lambda: nm.dropout_forward(*bufs["numpy"], inp, DROP, rng)

        def check(impl, r):
            out, mask = bufs[impl]
            assert set(np.unique(mask)) <= {0.0, F32(1 / (1 - DROP))}, "mask values"
            kept = np.mean(mask > 0)
            assert abs(kept - (1 - DROP)) < 5 * np.sqrt(DROP * (1 - DROP) / mask.size), kept
            _close(kernel, out, twins.dropout_forward(inp, mask))
        c.check = check

    elif kernel == "dropout_backward":
        dout = d.rng.standard_normal(d.h.shape).astype(F32)
        mask = ((d.rng.random(d.h.shape) >= DROP) / (1 - DROP)).astype(F32)
        of, on = e(dout.shape, F32), e(dout.shape, F32)
        flat = [a.reshape(-1) for a in (of, dout, mask)]
        c.fastmlp = lambda: K._dropout_backward(*flat)
        c.numpy = lambda: nm.dropout_backward(on, dout, mask)
        want = twins.dropout_backward(dout, mask)
        c.check = lambda impl, r: _close(kernel, of if impl == "fastmlp" else on, want)

    else:  # pragma: no cover
        raise KeyError(kernel)
    if kernel in SPARSE_IMPL and HAVE_SPARSE:
        _add_sparse(c, kernel, B, mnist, d)
        dense_check = c.check
        c.check = lambda impl, r: (c.checks[impl](r) if impl in c.checks
                                   else dense_check(impl, r))
    _CASES[key] = c
    return c


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kernel,impl", CASES, ids=[f"{k}-{i}" for k, i in CASES])
def test_kernel(benchmark, mnist, threads, kernel, impl, batch):
    if impl.startswith("fastmlp-sparse") and not HAVE_SPARSE:
        pytest.skip("this fastmlp has no sparse first layer")
    case = make_case(kernel, batch, mnist)
    fn = getattr(case, impl)
    with np.errstate(over="ignore"):
        result = fn()            # the first call compiles the kernel or loads it from the cache
        case.check(impl, result)
        for _ in range(10):       # warm-up
            fn()
        benchmark.group = f"kernel {kernel} B={batch}"
        benchmark.extra_info.update(validated_against=twins.SOURCE, rtol=RTOL, atol=ATOL)
        benchmark(fn)
