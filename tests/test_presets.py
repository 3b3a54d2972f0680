"""The book preset against the book's own algorithm, its init scheme's statistics, and (marked
slow) the accuracy it promises.

The book (Perrotta, *Programming Machine Learning*, ch. 15, final test) trains 784-100-10 with
a sigmoid hidden layer and a softmax, every weight and bias drawn N(0, 1/(D+1)), inputs
standardized by one mean and one std of the training pixels, plain mini-batch gradient descent
at lr 1 on batches of 256 (the last one shorter), mean cross-entropy. The reference below does
exactly that in float64, on the same sample order as fastmlp's trainer.
"""

import dataclasses
import itertools

import naive
import numpy as np
import pytest

from fastmlp import TrainConfig
from fastmlp.config import PRESETS, preset
from fastmlp.errors import ConfigError
from fastmlp.model import MLP
from fastmlp.train import build_parser, config_from_args
from fastmlp.training.run import train
from fastmlp.training.run_data import Data, prepare_data

# float32 training vs a float64 reference over 8 steps at lr 1: differences grow from float32
# rounding (~1e-7 relative per operation) through the steps; 2e-4 absolute on weights of
# magnitude ~0.04-0.1 leaves room for that and still catches a wrong step (a missing /B,
# another lr, input scale or optimizer each move some weight by >= 1e-2).
PARAM_ATOL = 2e-4


def book_reference(params, layout, x_std, y, order, B, lr, epochs):
    """The book's training loop, float64: forward, backward and update per batch of ``B`` rows
    of ``order[e]`` (the last batch shorter), mean cross-entropy, plain GD with step ``lr``."""
    p = params.astype(np.float64).copy()
    (w1, b1, D, H), (w2, b2, _, K) = layout
    for e in range(epochs):
        for start in range(0, len(order[e]), B):
            rows = order[e][start:start + B]
            X, Y = x_std[rows], y[rows]
            W1, c1 = p[w1:w1 + D * H].reshape(D, H), p[b1:b1 + H]
            W2, c2 = p[w2:w2 + H * K].reshape(H, K), p[b2:b2 + K]
            h = naive.sigmoid(naive.dense_forward(X, W1, c1))
            _, probs, _ = naive.softmax_xent_forward(naive.dense_forward(h, W2, c2), Y)
            d2 = naive.softmax_xent_backward(probs, Y)
            dh, gW2, gc2 = naive.dense_backward(d2, h, W2)
            _, gW1, gc1 = naive.dense_backward(dh * h * (1 - h), X, W1)
            for off, g in ((w1, gW1), (b1, gc1), (w2, gW2), (b2, gc2)):
                p[off:off + g.size] -= lr * g.ravel()
    return p


def test_book_preset_trains_as_the_books_code_does(mnist):
    cfg = preset("book", epochs=2, threads=1, seed=3)
    data = prepare_data(cfg)
    n = 1000                               # 3 batches of 256 and a short one of 232 per epoch
    sp = dataclasses.replace(data.splits, train_x=data.splits.train_x[:n],
                             train_y=data.splits.train_y[:n])
    result = train(cfg, data=Data(data.dataset, sp, data.transform))

    # the book's standardization: one mean and std over all training pixels (all 60,000)
    u = mnist.train_images.reshape(len(mnist.train_images), -1).astype(np.float64)
    x_std = (u[:n] - u.mean()) / u.std()
    start = MLP.create(result.model.sizes, "sigmoid", seed=cfg.seed, init="book")
    # fastmlp reshuffles every epoch (the book keeps file order): the same seeded orders here
    order = [np.random.default_rng([cfg.seed, e]).permutation(n) for e in range(cfg.epochs)]
    expected = book_reference(start.params, start.layout, x_std, sp.train_y.astype(np.int64),
                              order, B=256, lr=1.0, epochs=cfg.epochs)
    assert np.max(np.abs(expected - start.params)) > 100 * PARAM_ATOL   # it did learn
    np.testing.assert_allclose(result.model.params, expected, rtol=0, atol=PARAM_ATOL)


@pytest.mark.parametrize("scheme", ["book", "he", "xavier"])
def test_init_schemes_draw_the_stated_statistics(scheme):
    # Layers wide enough that the sample std of each weight matrix is within 1% (>= 60k draws:
    # standard error 0.3%) and of each bias within 10% (>= 1,000 draws: 2.2%) of the stated std.
    sizes = (30, 2000, 1000, 10)
    m = MLP.create(sizes, "relu", seed=0, init=scheme)
    for l, (D, H) in enumerate(itertools.pairwise(sizes)):
        last = l == len(sizes) - 2
        stated = {"book": np.sqrt(1 / (D + 1)), "xavier": np.sqrt(2 / (D + H)),
                  "he": np.sqrt(2 / (D + H)) if last else np.sqrt(2 / D)}[scheme]
        w = m.weight(l).astype(np.float64)
        assert abs(w.mean()) < 4 * stated / np.sqrt(w.size)
        assert w.std() == pytest.approx(stated, rel=0.01), (scheme, l)
        b = m.bias(l).astype(np.float64)
        if scheme == "book":               # the bias is one more input row: drawn alike
            if H >= 1000:
                assert b.std() == pytest.approx(stated, rel=0.10), l
            assert np.all(b != 0)
        else:
            assert np.all(b == 0)


def test_init_book_on_the_command_line_and_unknown_schemes_rejected():
    assert config_from_args(build_parser().parse_args(["--init", "book"])).init == "book"
    assert TrainConfig(init="book").init == "book"
    with pytest.raises(ConfigError, match="unknown init 'lecun'.*book"):
        TrainConfig(init="lecun")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--init", "lecun"])


def test_book_preset_is_not_moved_by_the_defaults():
    # Every setting the recipe fixes is pinned in the preset's row, so a change of TrainConfig's
    # defaults (a crop, a batch ramp, dropout...) cannot leak into the book's run.
    pinned = ("hidden", "activation", "init", "normalize", "crop", "center", "auto_crop",
              "split", "optimizer", "lr", "batch_size", "batch_ramp", "lr_scale_batch",
              "schedule", "warmup", "weight_decay", "dropout", "dropout_input", "epochs")
    assert set(pinned) <= set(PRESETS["book"])


@pytest.mark.slow
def test_book_preset_reaches_986_on_the_test_half():
    # The target: >= 98.6% on the last 5,000 test images, median of seeds 0, 1, 2.
    cfg = preset("book", threads=1)
    data = prepare_data(cfg)
    accs = [train(cfg.replace(seed=s), data=data).summary["test_accuracy"] for s in range(3)]
    assert np.median(accs) >= 0.986, accs
