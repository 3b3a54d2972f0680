"""One training epoch: fastmlp's engine, plain NumPy and (when installed) PyTorch, side by side.

For each configuration in ``runners.CONFIGS`` (784-100-10 at batch 32, 128, 600; 784-1024-1024-10
at batch 128; plain SGD, sigmoid, lr 0.5) and each framework (fastmlp as its trainer runs it,
fastmlp with the dense first layer forced, NumPy, torch): validate the first step against the
float64 reference, then time full epochs from the same initial weights (``benchmark.pedantic``: one
warm-up epoch, then ``ROUNDS`` timed ones, weights reset before each). In full mode the trained
model must then clear the configuration's test-accuracy bar. Quick mode trains on a few thousand
images and checks only that the loss stays finite.

All frameworks run in this one process, one after another; ``compare.py`` is the careful
comparison (a fresh process each, interleaved, with peak memory).

``test_runner_matches_trainer`` (not a benchmark) checks that the fastmlp runner timed here is
what ``fastmlp.train`` runs: same input path, same epoch loss, same weights after one epoch.
"""

import numpy as np
import pytest

from runners import ALL_FRAMEWORKS, CONFIGS, INSTALL, SEED, FastmlpRunner, \
    available_frameworks, epoch_order, initial_params, make_runner, set_threads, \
    validate_first_step

ROUNDS = 3


def quick_samples(cfg):
    wide = max(cfg.sizes[1:-1]) >= 1000
    return 8 * cfg.batch if wide else max(2048, 8 * cfg.batch)


@pytest.mark.parametrize("framework", ALL_FRAMEWORKS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_epoch(benchmark, mnist, quick, threads, config, framework):
    if not available_frameworks((framework,)):
        pytest.skip(f"{framework} is not installed ({INSTALL[framework]})")
    set_threads(framework, threads)
    cfg = CONFIGS[config]
    n = quick_samples(cfg) if quick else len(mnist.X)
    X, y = mnist.X[:n], mnist.y[:n]
    runner = make_runner(framework, cfg, initial_params(cfg.sizes), X, y)
    order = epoch_order(n, 0)
    check = validate_first_step(runner, X, y, order)

    benchmark.group = f"epoch {config}"
    benchmark.extra_info.update(samples=n, first_step_loss_diff=check["dloss"],
                                first_step_param_diff=check["dparams"])
    with np.errstate(over="ignore"):
        loss, samples = benchmark.pedantic(runner.train_epoch, args=(order,),
                                           setup=runner.reset, rounds=ROUNDS, warmup_rounds=1)
    assert samples == n and np.isfinite(loss), (samples, loss)
    if benchmark.stats is not None:
        benchmark.extra_info["samples_per_second"] = n / benchmark.stats.stats.median
    if n == 60000:
        acc = runner.accuracy(mnist.Xt, mnist.yt)
        benchmark.extra_info["test_accuracy"] = acc
        assert acc >= cfg.min_accuracy, f"test accuracy {acc:.4f} < {cfg.min_accuracy}"


def test_runner_matches_trainer(mnist, quick, threads):
    import dataclasses

    from fastmlp import TrainConfig, prepare_data, train

    cfg = CONFIGS["784-100-10/b128"]
    tc = TrainConfig(hidden=cfg.sizes[1:-1], activation="sigmoid", optimizer="sgd", lr=cfg.lr,
                     batch_size=cfg.batch, batch_ramp=None, schedule="constant", dropout=0.0,
                     dropout_input=0.0, epochs=1, seed=SEED, threads=threads)
    data = prepare_data(tc)
    n = 4096 if quick else len(data.splits.train_x)
    sp = data.splits
    sp = dataclasses.replace(sp, train_x=sp.train_x[:n], train_y=sp.train_y[:n],
                             val_x=sp.val_x[:1000], val_y=sp.val_y[:1000])
    result = train(tc, data=dataclasses.replace(data, splits=sp))
    X, y = mnist.X[:n], mnist.y[:n]
    np.testing.assert_array_equal(X, sp.train_x.reshape(n, -1))
    runner = FastmlpRunner(cfg, initial_params(cfg.sizes), X, y)
    loss, samples = runner.train_epoch(epoch_order(n, 0))
    assert result.summary.get("input_path", "dense") == runner.input_path
    assert samples == n
    np.testing.assert_allclose(loss / samples, result.history[0]["loss"], rtol=1e-6)
    np.testing.assert_allclose(runner.params_flat(), result.model.params, rtol=0, atol=1e-6)
