"""The sparse input path: CSR storage of the training images, the per-step copy input
dropout needs, and the first layer's forward pass and gradient over nonzero inputs only, read
in place. Each is checked against the dense twin in tests/naive.py, and a whole training run on
the sparse path against the same run on the dense path. Training runs read the slice of real
MNIST in conftest.py (``mnist_slice_dir``): what they assert is equality of the two paths and
the path ``auto`` picks, which MNIST's own pixels decide."""

import naive
import numpy as np
import pytest

from fastmlp import TrainConfig, train
from fastmlp import kernels as K
from fastmlp.errors import ConfigError
from fastmlp.loop import buffers, calls
from fastmlp.training import plan
from fastmlp.training.run_data import prepare_data

RTOL32, ATOL32 = 1e-4, 1e-5   # float32 kernel vs float64 twin


@pytest.fixture
def sparse_images():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (50, 36), dtype=np.uint8)
    imgs[rng.random(imgs.shape) < 0.7] = 0
    imgs[3] = 0                      # an all-zero image: an empty CSR row
    return imgs


def test_csr_inputs_hold_exactly_the_nonzero_kept_pixels(sparse_images):
    pix = np.array([0, 5, 7, 8, 20, 35, 1], dtype=np.int64)
    ptr, idx, val = K.csr_inputs(sparse_images, pix)
    dense = np.zeros((len(sparse_images), len(pix)))
    for i in range(len(sparse_images)):
        dense[i, idx[ptr[i]:ptr[i + 1]]] = val[ptr[i]:ptr[i + 1]]
    np.testing.assert_array_equal(dense, sparse_images[:, pix])
    assert ptr[-1] == np.count_nonzero(sparse_images[:, pix]) and ptr[4] == ptr[3]


def test_gather_sparse_keeps_every_entry_at_rate_zero(sparse_images):
    # the copy the kernels read when input dropout is on, with nothing dropped: the same rows
    pix = np.arange(36, dtype=np.int64)
    ptr, idx, val = K.csr_inputs(sparse_images, pix)
    rows = np.array([3, 7, 7, 0, 49], dtype=np.int64)
    bptr = np.zeros(6, np.int64)
    bidx = np.zeros(5 * 36, np.uint16)
    bval = np.zeros(5 * 36, np.uint8)
    K._gather_sparse(bptr, bidx, bval, ptr, idx, val, rows, 0.0, np.uint64(1), 0)
    np.testing.assert_array_equal(naive.csr_to_dense(bptr, bidx, bval, 36), sparse_images[rows])


def test_gather_sparse_input_dropout_drops_at_the_rate():
    imgs = np.full((200, 100), 255, dtype=np.uint8)
    ptr, idx, val = K.csr_inputs(imgs, np.arange(100, dtype=np.int64))
    rows = np.arange(200, dtype=np.int64)
    bptr = np.zeros(201, np.int64)
    bidx = np.zeros(20000, np.uint16)
    bval = np.zeros(20000, np.uint8)
    rate = 0.3
    K._gather_sparse(bptr, bidx, bval, ptr, idx, val, rows, rate, np.uint64(42), 0)
    kept = bptr[-1]
    sigma = np.sqrt(20000 * rate * (1 - rate))
    assert abs((20000 - kept) - 20000 * rate) < 5 * sigma
    np.testing.assert_array_equal(bval[:kept], 255)   # copied raw: the kernels rescale
    first = bidx[:kept].copy()
    K._gather_sparse(bptr, bidx, bval, ptr, idx, val, rows, rate, np.uint64(42), 0)
    np.testing.assert_array_equal(bidx[:kept], first)   # same seed, same mask


@pytest.mark.parametrize("H", [1, 7, 100])
def test_sparse_forward_and_gradient_match_the_dense_twins(sparse_images, H):
    # the kernels read the data set's CSR in place through the batch's row indices: the same
    # as the dense gather of those rows (with a per-pixel scale) through the dense twins
    rng = np.random.default_rng(H)
    pix = np.arange(36, dtype=np.int64)
    scale = np.linspace(0.5, 2.0, 36).astype(np.float32) / 255
    ptr, idx, val = K.csr_inputs(sparse_images, pix)
    rows = rng.integers(0, 50, 9).astype(np.int64)
    rows[0] = 3                                      # include the empty row
    rows[1] = rows[2]                                # and a repeated one
    B = len(rows)
    x = naive.gather_batch(sparse_images, rows, pix, scale, np.zeros(36))
    src = (rows, ptr, idx, val, scale, 1.0)
    W = rng.standard_normal((36, H)).astype(np.float32)
    bias = rng.standard_normal(H).astype(np.float32)
    out = np.zeros((B, H), np.float32)
    K._sparse_dense_forward(out, *src, W, bias)
    np.testing.assert_allclose(out, naive.dense_forward(x, W, bias), rtol=RTOL32, atol=ATOL32)

    dout = rng.standard_normal((B, H)).astype(np.float32)
    _, dW_ref, db_ref = naive.dense_backward(dout, x, W)
    dW = np.zeros_like(W)
    db = np.zeros_like(bias)
    for t in range(3):  # three threads' blocks of rows of dW and columns of db
        K._sparse_dense_backward_params(dW, dout, *src, 1.0, 36 * t // 3, 36 * (t + 1) // 3)
        K._bias_backward(db, dout, 1.0, 0.0, H * t // 3, H * (t + 1) // 3)
    np.testing.assert_allclose(dW, dW_ref, rtol=RTOL32, atol=ATOL32)
    np.testing.assert_allclose(db, db_ref, rtol=RTOL32, atol=ATOL32)
    # alpha = -lr applied to the parameters themselves is one SGD step
    W2, b2 = W.copy(), bias.copy()
    K._sparse_dense_backward_params(W2, dout, *src, -0.1, 0, 36)
    K._bias_backward(b2, dout, -0.1, 1.0, 0, H)
    np.testing.assert_allclose(W2, W - 0.1 * dW_ref, rtol=RTOL32, atol=ATOL32)
    np.testing.assert_allclose(b2, bias - 0.1 * db_ref, rtol=RTOL32, atol=ATOL32)


@pytest.mark.parametrize("optimizer, weight_decay", [("sgd", 0.0), ("sgd", 1e-4),
                                                     ("momentum", 0.0), ("adam", 0.0)])
def test_sparse_and_dense_paths_train_the_same_network(mnist_data, optimizer, weight_decay):
    # Same math, different summation order: after a short run (hidden dropout on, input
    # dropout off, which the two paths draw differently) the weights agree to float32 rounding
    # growth, and far closer than two seeds would.
    cfg = TrainConfig(hidden=(32,), epochs=1, batch_size=64, batch_ramp=None,
                      optimizer=optimizer, weight_decay=weight_decay, dropout=0.2,
                      lr=0.05 if optimizer != "adam" else 0.001, threads=1)
    sparse = train(cfg.replace(input_path="sparse"), data=mnist_data)
    dense = train(cfg.replace(input_path="dense"), data=mnist_data)
    assert sparse.summary["input_path"] == "sparse" and dense.summary["input_path"] == "dense"
    diff = np.abs(sparse.model.params - dense.model.params).max()
    other = train(cfg.replace(input_path="dense", seed=1), data=mnist_data)
    assert diff < 2e-3 < np.abs(other.model.params - dense.model.params).max()
    assert abs(sparse.summary["test_accuracy"] - dense.summary["test_accuracy"]) < 0.005


def test_auto_picks_sparse_for_mnist_and_dense_when_zero_is_not_zero(mnist_data,
                                                                     mnist_slice_dir):
    cfg = TrainConfig(hidden=(8,), epochs=1, threads=1, data_dir=str(mnist_slice_dir))
    assert train(cfg, data=mnist_data).summary["input_path"] == "sparse"
    std = cfg.replace(normalize="standardize")
    std_data = prepare_data(std)
    assert train(std, data=std_data).summary["input_path"] == "dense"
    with pytest.raises(ConfigError, match="zero pixels to stay zero"):
        train(std.replace(input_path="sparse"), data=std_data)


@pytest.mark.parametrize("hidden, batch, sparse", [(100, 600, True), (200, 32, True),
                                                  (200, 600, False), (300, 32, False)])
def test_auto_runs_a_narrow_first_layer_sparse_at_any_batch(mnist_data, hidden, batch, sparse):
    # the measured rule (plan.sparse_pays): up to 128 units at every batch size, up to 256
    # only for batches up to 64, dense beyond; input_plan applies it per epoch's batch size
    from fastmlp.model import MLP

    X = np.ascontiguousarray(mnist_data.splits.train_x.reshape(len(mnist_data.splits.train_x), -1))
    cfg = TrainConfig(hidden=(hidden,), batch_size=batch, batch_ramp=None, threads=1)
    model = MLP.create((X.shape[1], hidden, 10), cfg.activation, transform=mnist_data.transform)
    tr = calls.transform_arrays(model, X.shape[1])
    _, hyper_for = plan.input_plan(cfg, model.activation, X, tr, 1)
    assert hyper_for(batch).sparse is sparse


def test_images_with_more_inputs_than_a_uint16_index_names_go_dense():
    # the CSR's input indices are uint16 (3 bytes per nonzero instead of 5): 65,536 inputs at
    # most; auto then picks the dense path, and --input-path sparse is refused in one line
    from fastmlp.choices.activations import get_activation

    act = get_activation("sigmoid")
    cfg = TrainConfig(hidden=(8,), batch_size=32, batch_ramp=None, threads=1)
    for n_inputs, sparse in ((K.MAX_SPARSE_INPUTS, True), (K.MAX_SPARSE_INPUTS + 1, False)):
        X = np.zeros((4, n_inputs), np.uint8)
        X[:, -1] = 9  # the last input: index 65535 must fit
        tr = (np.arange(n_inputs, dtype=np.int64), np.full(n_inputs, 1 / 255, np.float32),
              np.zeros(n_inputs, np.float32))
        csr, hyper_for = plan.input_plan(cfg, act, X, tr, 1)
        assert hyper_for(32).sparse is sparse
        if sparse:
            assert csr[1].dtype == np.uint16 and csr[1].max() == K.MAX_SPARSE_INPUTS - 1
        else:
            assert csr is calls.NO_CSR
            with pytest.raises(ConfigError, match="at most 65,536 inputs per image"):
                plan.input_plan(cfg.replace(input_path="sparse"), act, X, tr, 1)
            with pytest.raises(ValueError, match="uint16"):
                K.csr_inputs(X, tr[0])


def test_a_run_on_images_with_more_inputs_than_the_sparse_path_takes_goes_dense():
    # 257 x 256 = 65,792 mostly-zero inputs: sparse would pay, but its uint16 index cannot name
    # them all; the run trains dense, and --input-path sparse is refused before any work
    from fastmlp import Data

    rng = np.random.default_rng(2)

    def images(n):
        return ((rng.random((n, 257, 256)) < 0.1) * 200).astype(np.uint8)

    data = Data.from_arrays(images(16), np.arange(16) % 2, images(8), np.arange(8) % 2)
    cfg = TrainConfig(hidden=(4,), epochs=1, batch_size=8, batch_ramp=None, threads=1)
    assert train(cfg, data=data).summary["input_path"] == "dense"
    with pytest.raises(ConfigError, match="at most 65,536 inputs per image"):
        train(cfg.replace(input_path="sparse"), data=data)


@pytest.fixture(scope="module")
def mnist_data(mnist_slice_dir):
    return prepare_data(TrainConfig(data_dir=str(mnist_slice_dir)))


@pytest.mark.parametrize("input_path", ["dense", "sparse"])
def test_fused_sgd_is_the_same_step_as_gradients_then_update(mnist_data, input_path):
    # Plain SGD is applied inside the backward pass (hp.fused: BLAS with beta = 1 on dense
    # layers, the sparse kernel on the first layer), after each layer's input gradient. It must
    # be the step the gradient buffer + _sgd_update path takes, up to summation order.
    from fastmlp.model import MLP

    cfg = TrainConfig(hidden=(32, 16), batch_size=64, batch_ramp=None, dropout=0.2,
                      dropout_input=0.0, optimizer="sgd", lr=0.1, threads=1,
                      input_path=input_path)
    X = np.ascontiguousarray(mnist_data.splits.train_x.reshape(len(mnist_data.splits.train_x), -1))
    y = np.ascontiguousarray(mnist_data.splits.train_y, dtype=np.int64)
    sizes = (mnist_data.transform.n_inputs, *cfg.hidden, mnist_data.n_classes)
    start = MLP.create(sizes, cfg.activation, seed=0, transform=mnist_data.transform)
    results = {}
    for fused in (True, False):
        model = MLP.create(sizes, cfg.activation, seed=0, transform=mnist_data.transform)
        tr = calls.transform_arrays(model, X.shape[1])
        csr, hyper_for = plan.input_plan(cfg, model.activation, X, tr, 1)
        hp = hyper_for(64)._replace(fused=fused)
        assert hp.sparse == (input_path == "sparse")
        ws = buffers.make_workspace(model.sizes, 64, model.params.size)
        order = np.arange(len(X), dtype=np.int64)
        calls.train_steps(model, ws, hp, X, y, order, tr, 64, 0, 20, np.full(20, 0.1), 0, 0,
                          csr=csr)
        results[fused] = model.params.copy()
    assert np.abs(results[False] - start.params).max() > 1e-2    # 20 steps moved the weights
    np.testing.assert_allclose(results[True], results[False], rtol=1e-4, atol=2e-6)  # ... alike


def test_sparse_input_dropout_step_is_the_dense_twin_on_the_same_mask(mnist_data):
    # One step (lr 0) of the engine on the sparse path with input dropout: its loss is the
    # float64 forward pass of the batch with exactly the entries _gather_sparse keeps for this
    # (seed, epoch, step), each scaled by 1/(1-rate) -- the factor the engine must pass on.
    from fastmlp.model import MLP

    rate, B = 0.4, 32
    cfg = TrainConfig(hidden=(16,), batch_size=B, batch_ramp=None, dropout=0.0,
                      dropout_input=rate, optimizer="sgd", threads=1, input_path="sparse",
                      activation="sigmoid", seed=7)
    X = np.ascontiguousarray(mnist_data.splits.train_x.reshape(len(mnist_data.splits.train_x), -1))
    y = np.ascontiguousarray(mnist_data.splits.train_y, dtype=np.int64)
    sizes = (mnist_data.transform.n_inputs, 16, mnist_data.n_classes)
    model = MLP.create(sizes, "sigmoid", seed=0, transform=mnist_data.transform)
    tr = calls.transform_arrays(model, X.shape[1])
    csr, hyper_for = plan.input_plan(cfg, model.activation, X, tr, 1)
    hp = hyper_for(B)
    assert hp.sparse and hp.dropout_input == rate
    ws = buffers.make_workspace(model.sizes, B, model.params.size)
    order = np.random.default_rng(0).permutation(len(X)).astype(np.int64)
    epoch, step = 2, 5
    loss, _, n, bad = calls.train_steps(model, ws, hp, X, y, order, tr, B, step, 1,
                                        np.zeros(step + 1), epoch, 0, csr=csr)
    assert n == B and bad == -1

    rows = order[step * B:(step + 1) * B]
    bptr, bidx = np.zeros(B + 1, np.int64), np.zeros(B * 784, np.uint16)
    bval = np.zeros(B * 784, np.uint8)
    seed = np.uint64(K._stream_seed(7, epoch, step, 0))
    K._gather_sparse(bptr, bidx, bval, *csr, rows, rate, seed, 0)
    kept = bval[:bptr[-1]] * tr[1][bidx[:bptr[-1]]].astype(np.float64) / (1 - rate)
    x = naive.csr_to_dense(bptr, bidx, kept, len(tr[0]))
    assert 0 < np.count_nonzero(x) < np.count_nonzero(X[rows][:, tr[0]])
    W1, b1, W2, b2 = model.weight(0), model.bias(0), model.weight(1), model.bias(1)
    h = naive.activation_forward("sigmoid", naive.dense_forward(x, W1, b1))
    want, _, _ = naive.softmax_xent_forward(naive.dense_forward(h, W2, b2), y[rows])
    assert loss / B == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("sparse", [True, False])
def test_training_chunks_run_blas_at_one_thread(monkeypatch, sparse):
    # The training threads split each step's work between them (loop/steps.py), and each calls BLAS
    # on its own blocks: a threaded BLAS inside would start spinning workers on the cores the
    # threads need (with OpenMP's sparse kernels: 230k -> 6k samples/s at batch 64). So training
    # chunks run with every BLAS at one thread, restored afterwards.
    from threadpoolctl import threadpool_info

    from fastmlp.model import MLP
    from fastmlp.threads import set_threads

    def blas_threads():
        return {d["filepath"]: d["num_threads"] for d in threadpool_info()
                if d["user_api"] == "blas"}

    set_threads(2)
    try:
        seen = []
        monkeypatch.setattr(calls, "_train_worker",
                            lambda *a: seen.append(blas_threads()) or (0.0, 0, 0, -1))
        model = MLP.create((4, 3, 2), "sigmoid")
        hp = calls.eval_hyper(model.activation)._replace(sparse=sparse, threads=2)
        before = blas_threads()
        assert before and set(before.values()) == {2}
        calls.train_steps(model, None, hp, np.zeros((1, 4), np.uint8), np.zeros(1, np.int64),
                          np.zeros(1, np.int64), calls.transform_arrays(model, 4), 1, 0, 1,
                          np.zeros(1), 0, 0)
        assert len(seen) == 2 and all(set(s.values()) == {1} for s in seen)  # both threads
        assert blas_threads() == before
    finally:
        set_threads(1)
