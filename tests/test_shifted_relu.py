"""Shifted ReLU, max(-c, x), trains out of the box: the default settings keep deep shifted-ReLU
networks from the collapse they fell into with the old batch ramp (batch 20 at the full
learning rate), and it then trains as well as ReLU.

Why it collapsed: a unit at its floor emits -c, not 0, so for the next layer every floored unit
is a constant input of -c and moves that layer's common offset like one more bias; with a
hundred floored units the offset moves ~100 c^2 times faster than a bias would. At batch 20 and
lr 0.05 (momentum 0.9) the offset overshot and pushed whole layers below their floor, where the
gradient is 0 for good: 98% of a second layer's unit outputs at the floor after 409 steps for
c = 1 (ReLU: 78%), and 784-128-128-128-10 at chance. A first epoch at batch 64 keeps the step
per sample small enough; neither Xavier init, warm-up nor dropping units to -c instead of 0 did.
"""

import numpy as np
import pytest

from fastmlp import TrainConfig, train
from fastmlp.training.run_data import prepare_data


@pytest.fixture(scope="module")
def data():
    return prepare_data(TrainConfig())


def floored_fraction(model, images, c):
    """Per hidden layer, the fraction of (image, unit) outputs at the floor -c, float64."""
    a = images.reshape(len(images), -1).astype(np.float64) / 255.0
    out = []
    for l in range(model.n_layers - 1):
        z = a @ model.weight(l).astype(np.float64) + model.bias(l)
        out.append(float(np.mean(z <= -c)))
        a = np.maximum(z, -c)
    return out


def test_deep_shifted_relu_does_not_collapse_in_its_first_epoch(data):
    # 3 hidden layers, c = 1, dropout 0.2, one epoch, every other setting the default. With the
    # old default ramp (first epoch at batch 20) this reached 11% (chance); now > 93%, and its
    # deepest layer is not pushed to the floor wholesale.
    cfg = TrainConfig(hidden=(128, 128, 128), activation="shifted_relu:1", dropout=0.2,
                      epochs=1, threads=1, seed=1)
    r = train(cfg, data=data)
    assert r.summary["val_accuracy"] > 0.93, r.summary["val_accuracy"]
    floored = floored_fraction(r.model, data.splits.train_x[:2000], 1.0)
    assert max(floored) < 0.95, floored


@pytest.mark.parametrize("hidden", [(256, 128)])
def test_shifted_relu_trains_as_well_as_relu_with_the_defaults(data, hidden):
    # The network for one epoch (dropout 0.2): shifted ReLU, c = 0.5 and 1, within
    # 1 point of ReLU's validation accuracy (the old defaults: 91.0% for c = 1 vs 95.3%).
    cfg = TrainConfig(hidden=hidden, dropout=0.2, epochs=1, threads=1, seed=1)
    relu = train(cfg.replace(activation="relu"), data=data).summary["val_accuracy"]
    for c in (0.5, 1.0):
        acc = train(cfg.replace(activation=f"shifted_relu:{c:g}"), data=data)
        assert acc.summary["val_accuracy"] > relu - 0.01, (c, acc.summary["val_accuracy"], relu)


@pytest.mark.slow
@pytest.mark.parametrize("hidden", [(100,), (256, 128), (128, 128, 128)])
def test_shifted_relu_matches_relu_over_the_default_run(data, hidden):
    # The default 12 epochs, median of seeds 0-2: shifted ReLU (c = 0.5 and 1) within 0.5 points
    # of ReLU on all 10,000 test images, for 1 to 3 hidden layers.
    def median_full(activation):
        return np.median([train(TrainConfig(hidden=hidden, activation=activation, seed=s,
                                            threads=1), data=data).summary["test_accuracy_full"]
                          for s in range(3)])

    relu = median_full("relu")
    for c in (0.5, 1.0):
        assert median_full(f"shifted_relu:{c:g}") > relu - 0.005, (hidden, c)
