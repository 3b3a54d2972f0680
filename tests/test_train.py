"""The training loop and its command line, on real MNIST.

Runs are kept short (small hidden layers, few epochs). Those with an accuracy bar use the full
60,000 training images; those that assert equalities or bookkeeping (same weights, resume, batch
sizes, atomic writes, what the command line writes) train on a slice of real MNIST
(``mnist_slice_dir`` in conftest.py: 20,000 training images, the whole test set). Threads are
pinned to 1 where bit-for-bit equality is asserted, because BLAS results depend on
how the work is split between threads.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import SLICE_TRAIN

from fastmlp import TrainConfig, custom_activation, train
from fastmlp.cli import run_main
from fastmlp.errors import CheckpointError, ConfigError, DivergenceError, OutputError
from fastmlp.train import main as train_main
from fastmlp.training.checkpoint import load_model
from fastmlp.training.run_data import Data, prepare_data

SMALL = dict(hidden=(32,), epochs=2, threads=1)


@pytest.fixture(scope="module")
def data():
    return prepare_data(TrainConfig(**SMALL))


@pytest.fixture(scope="module")
def sliced(mnist_slice_dir):
    """The MNIST slice, split and fitted as ``data`` is."""
    return prepare_data(TrainConfig(**SMALL, data_dir=str(mnist_slice_dir)))


def cli(argv, capsys):
    code = run_main(train_main, argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_short_run_learns_and_reports_all_three_accuracies(data):
    r = train(TrainConfig(**SMALL), data=data)
    s = r.summary
    assert s["val_accuracy"] > 0.94 and s["test_accuracy"] > 0.95
    # the full test set is exactly the two halves together
    assert s["test_accuracy_full"] == pytest.approx((s["val_accuracy"] + s["test_accuracy"]) / 2)
    assert [h["epoch"] for h in r.history] == [1, 2]
    assert s["history"][1]["loss"] < s["history"][0]["loss"]
    assert len(r.history[0]["weight_rms"]) == 2 and all(w > 0 for w in r.history[0]["weight_rms"])
    # the model's own predict agrees with the reported accuracy
    pred = r.model.predict(data.splits.test_x)
    assert np.mean(pred == data.splits.test_y) == pytest.approx(s["test_accuracy"])


def test_batch_ramp_doubles_each_epoch_up_to_the_batch_size(sliced):
    r = train(TrainConfig(hidden=(16,), epochs=4, batch_size=128, batch_ramp=40, threads=1),
              data=sliced)
    assert [h["batch_size"] for h in r.history] == [40, 80, 128, 128]


def test_same_seed_same_threads_same_weights(sliced):
    cfg = TrainConfig(hidden=(24, 16), epochs=2, dropout=0.2, dropout_input=0.1, threads=1,
                      seed=3)
    a = train(cfg, data=sliced)
    b = train(cfg, data=sliced)
    np.testing.assert_array_equal(a.model.params, b.model.params)
    assert a.summary["test_accuracy"] == b.summary["test_accuracy"]
    c = train(cfg.replace(seed=4), data=sliced)
    assert not np.array_equal(a.model.params, c.model.params)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_interrupted_and_resumed_run_ends_with_the_same_weights(sliced, tmp_path, optimizer):
    cfg = TrainConfig(hidden=(24, 16), epochs=3, batch_size=64, batch_ramp=16, dropout=0.2,
                      dropout_input=0.1, optimizer=optimizer,
                      lr=0.05 if optimizer == "momentum" else 0.002, threads=1, seed=1)
    whole = train(cfg, data=sliced)
    ck = str(tmp_path / "ck.npz")
    # stop in the middle of the second epoch (625 steps of 32), as Ctrl-C would
    part = train(cfg, data=sliced, save=ck, should_stop=lambda e, s: e == 1 and s >= 300)
    assert part.stopped == "interrupted" and len(part.history) == 1
    rest = train(cfg, data=sliced, save=ck, resume=ck)
    assert rest.stopped == "completed" and len(rest.history) == 3
    np.testing.assert_array_equal(whole.model.params, rest.model.params)
    assert rest.history[1]["loss"] == pytest.approx(whole.history[1]["loss"], rel=1e-12)


def test_user_written_activation_trains_like_its_builtin_twin(data):
    from user_relu import my_relu, my_relu_derivative

    act = custom_activation(my_relu, my_relu_derivative, name="my_relu")
    cfg = TrainConfig(hidden=(32,), epochs=1, dropout=0.1, threads=1, activation="relu")
    builtin = train(cfg, data=data)
    user = train(cfg.replace(activation=act), data=data)
    np.testing.assert_allclose(user.model.params, builtin.model.params, rtol=1e-5, atol=1e-6)
    assert user.summary["test_accuracy"] > 0.95
    # the seconds its pair took to compile (when the activation was made) are in the run's
    # compile_seconds, reported once
    assert act.user.take_compile_seconds() == 0.0


def test_early_stop_restores_the_best_weights(data):
    # A deliberately bad setting (constant, too high learning rate on a tiny net) whose
    # validation accuracy goes up and down.
    cfg = TrainConfig(hidden=(8,), epochs=12, lr=0.9, schedule="constant", batch_ramp=None,
                      batch_size=32, dropout=0.0, early_stop=2, threads=1)
    r = train(cfg, data=data)
    best = max(h["val_accuracy"] for h in r.history)
    assert r.summary["val_accuracy"] == best
    assert r.stopped == "early_stop" and len(r.history) < cfg.epochs


def test_divergence_stops_with_a_clear_error_and_keeps_the_last_checkpoint(data, tmp_path,
                                                                           capsys):
    ck = tmp_path / "ck.npz"
    code, out, err = cli(["--hidden", "16", "--epochs", "1", "--threads", "1", "--save",
                          str(ck), "--quiet"], capsys)
    assert code == 0
    before = ck.read_bytes()
    code, out, err = cli(["--resume", str(ck), "--epochs", "3", "--lr", "1e30",
                          "--schedule", "constant", "--save", str(ck)], capsys)
    assert code == 3
    assert "diverged" in err and "epoch 2" in err and "--lr" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert ck.read_bytes() == before  # the last good checkpoint is untouched
    with pytest.raises(DivergenceError):
        train(TrainConfig(hidden=(16,), epochs=1, lr=1e30, threads=1), data=data)


def test_checkpoint_is_written_atomically(sliced, tmp_path, monkeypatch):
    ck = tmp_path / "ck.npz"
    train(TrainConfig(hidden=(16,), epochs=1, threads=1), data=sliced, save=str(ck))
    before = ck.read_bytes()

    def failing_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OutputError, match="disk full.*left as it was"):
        train(TrainConfig(hidden=(16,), epochs=1, threads=1, seed=5), data=sliced,
              save=str(ck))
    assert ck.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]  # no temporary file left behind


def test_cli_writes_metrics_history_and_a_model_that_evaluate_and_predict_read(
        mnist, mnist_slice_dir, tmp_path):
    m, h, ck = tmp_path / "m.json", tmp_path / "h.csv", tmp_path / "ck.npz"
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-m", "fastmlp.train", "--data-dir",
                          str(mnist_slice_dir), "--hidden", "32", "--epochs",
                          "2", "--crop", "2", "--metrics-json", str(m), "--history-csv", str(h),
                          "--save", str(ck)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "test accuracy (last 5,000 test images)" in run.stdout
    assert "epoch   2" in run.stdout
    metrics = json.loads(m.read_text())
    for key in ("val_accuracy", "test_accuracy", "test_accuracy_full", "epochs",
                "train_seconds", "samples_per_second", "compile_seconds", "peak_rss_mb",
                "n_inputs", "hidden", "activation", "seed", "threads", "history"):
        assert key in metrics, key
    assert metrics["n_inputs"] == 24 * 24 and metrics["epochs"] == 2
    assert set(metrics["history"][0]) >= {"loss", "train_accuracy", "val_accuracy", "seconds",
                                           "batch_size", "lr", "weight_rms"}
    rows = h.read_text().strip().splitlines()
    assert len(rows) == 3 and "weight_rms_2" in rows[0]

    ev = subprocess.run([sys.executable, "-m", "fastmlp.evaluate", str(ck)],
                        capture_output=True, text=True, timeout=120)
    assert ev.returncode == 0, ev.stderr
    assert f"{100 * metrics['test_accuracy']:.2f}%" in ev.stdout

    model, _ = load_model(ck)
    idx = tmp_path / "few-images-idx3-ubyte"
    from fastmlp.data import write_idx
    write_idx(idx, mnist.test_images[:5])
    pr = subprocess.run([sys.executable, "-m", "fastmlp.predict", str(ck), str(idx)],
                        capture_output=True, text=True, timeout=120)
    assert pr.returncode == 0, pr.stderr
    assert [int(v) for v in pr.stdout.split()] == list(model.predict(mnist.test_images[:5]))


@pytest.mark.parametrize("argv, words", [
    (["--activation", "nope"], ["unknown activation", "relu"]),
    (["--dataset", "cifar"], ["unknown dataset", "mnist"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--lr", "0"], ["--lr", "positive"]),
    (["--lr", "-0.1"], ["--lr", "positive"]),
    (["--dropout", "1"], ["--dropout", "[0, 1)"]),
    (["--dropout-input", "-0.2"], ["--dropout-input"]),
    (["--batch-ramp", "256", "--batch-size", "128"], ["--batch-ramp", "larger"]),
    (["--crop", "14"], ["crop"]),
    (["--hidden", "0"], ["--hidden"]),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, words, capsys):
    code, out, err = cli(argv + ["--epochs", "1", "--quiet"], capsys)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


def test_bad_checkpoints_are_one_line_errors(data, tmp_path, capsys):
    ck = tmp_path / "ck.npz"
    train(TrainConfig(hidden=(16,), epochs=1, threads=1), data=data, save=str(ck))
    code, _, err = cli(["--resume", str(ck), "--hidden", "20", "--epochs", "2"], capsys)
    assert code == 2 and "different network" in err and "Traceback" not in err
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"this is not a checkpoint")
    code, _, err = cli(["--resume", str(bad)], capsys)
    assert code == 2 and "corrupt" in err and str(bad) in err
    half = tmp_path / "truncated.npz"
    half.write_bytes(ck.read_bytes()[: len(ck.read_bytes()) // 2])
    code, _, err = cli(["--resume", str(half)], capsys)
    assert code == 2 and str(half) in err and len(err.strip().splitlines()) == 1
    with pytest.raises(CheckpointError):
        load_model(half)


def test_config_rejects_bad_values_directly():
    with pytest.raises(ConfigError, match="--epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="--crop and --center"):
        TrainConfig(crop=2, center=8)


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(mnist_slice_dir, tmp_path):
    import signal
    import time

    ck = tmp_path / "ck.npz"
    proc = subprocess.Popen([sys.executable, "-m", "fastmlp.train", "--data-dir",
                             str(mnist_slice_dir), "--hidden", "16",
                             "--epochs", "200", "--threads", "1", "--save", str(ck)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:         # wait until training runs
            if line.startswith("epoch"):
                break
        time.sleep(0.3)                  # into the middle of an epoch
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"--resume {ck}" in err
    model, meta = load_model(ck)
    assert 1 <= meta["state"]["epoch"] < 200
    resumed = subprocess.run([sys.executable, "-m", "fastmlp.train", "--resume", str(ck),
                              "--epochs", str(meta["state"]["epoch"] + 1), "--quiet"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "test accuracy" in resumed.stdout


def test_fastmlp_train_is_callable_even_after_the_cli_module_is_imported(data):
    import fastmlp
    import fastmlp.train  # noqa: F401  (makes fastmlp.train the submodule)

    r = fastmlp.train(TrainConfig(hidden=(8,), epochs=1, threads=1), data=data)
    assert r.summary["test_accuracy"] > 0.85


@pytest.mark.slow
def test_the_default_run_reaches_its_promise(data):
    # `python -m fastmlp.train` with no flags: >= 97.5% on the test half (issue 4). (No time
    # limit asserted: the project's tests make no timed assertions; a loaded machine fails them.)
    # Slow: the whole default run (12 epochs on all 60,000 images), the longest training in
    # this file; CI runs it with -m slow.
    r = train(TrainConfig(), data=data)
    assert r.summary["epochs"] == TrainConfig().epochs
    assert r.summary["test_accuracy"] >= 0.975


def test_a_run_may_free_the_dense_training_images_when_every_epoch_reads_the_sparse_copy(
        mnist_slice_dir):
    import gc
    import weakref

    cfg = TrainConfig(hidden=(24,), epochs=2, batch_ramp=16, batch_size=64, threads=1,
                      dropout=0.1, data_dir=str(mnist_slice_dir))
    kept = prepare_data(cfg)
    a = train(cfg, data=kept)
    assert not kept.released and len(kept.splits.train_x) == SLICE_TRAIN
    given = prepare_data(cfg)
    images = weakref.ref(given.dataset.train_images)
    alive = []
    b = train(cfg, data=given, release_train_images=True,
              on_epoch=lambda r: (gc.collect(), alive.append(images() is not None)))
    assert alive == [False, False]  # gone while the run trained, not only after it
    assert given.released and given.splits.train_x.shape == (0, 28, 28)
    assert given.dataset.train_images.shape == (0, 28, 28)
    assert {h["input_path"] for h in b.history} == {"sparse"}
    np.testing.assert_array_equal(a.model.params, b.model.params)
    assert b.summary["n_train"] == a.summary["n_train"] == SLICE_TRAIN
    assert b.summary["test_accuracy"] == a.summary["test_accuracy"]
    for again in (given, given.fitted(cfg), Data(given.dataset, given.splits, given.transform)):
        with pytest.raises(ConfigError, match="freed by the run it was given to.*prepare the"):
            train(cfg, data=again)


def test_the_dense_training_images_stay_when_an_epoch_reads_them(mnist_slice_dir):
    # 784-200-10: sparse at batch 64, dense at 128 (plan.sparse_pays)
    cfg = TrainConfig(hidden=(200,), epochs=2, batch_ramp=64, batch_size=128, threads=1,
                      data_dir=str(mnist_slice_dir))
    data = prepare_data(cfg)
    r = train(cfg, data=data, release_train_images=True)
    assert [h["input_path"] for h in r.history] == ["sparse", "dense"]
    assert not data.released and len(data.splits.train_x) == SLICE_TRAIN


def test_the_command_line_lets_its_run_free_the_training_images(mnist_slice_dir, monkeypatch,
                                                                capsys):
    import fastmlp.training.run as T

    given = []
    real = T.train
    monkeypatch.setattr(T, "train", lambda cfg, **kw: given.append(kw["data"]) or real(cfg, **kw))
    code, out, _ = cli(["--data-dir", str(mnist_slice_dir), "--hidden", "16", "--epochs", "1",
                        "--threads", "1"], capsys)
    assert code == 0 and "test accuracy" in out
    assert len(given) == 1 and given[0].released and len(given[0].splits.train_x) == 0
