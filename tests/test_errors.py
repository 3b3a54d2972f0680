"""Issue 12: bad input that used to end in a traceback is one line and exit code 2 (or a clear
exception through the Python API), and messages say what is true."""

import os
import subprocess
import sys

import numpy as np
import pytest
import synthetic
from synthetic import TINY, cli, one_line, write_idx_dir

from fastmlp import TrainConfig, train
from fastmlp.errors import CheckpointError, ConfigError, DataError
from fastmlp.evaluate import main as evaluate_main
from fastmlp.train import main as train_main
from fastmlp.training import checkpoint
from fastmlp.training.run_data import prepare_data

small_ck = synthetic.small_ck  # fixture
small_dir = synthetic.small_dir  # fixture

@pytest.mark.parametrize("kwargs, words", [
    (dict(hidden=100), ["--hidden", "sequence"]),
    (dict(hidden="100"), ["--hidden"]),
    (dict(hidden=(100.5,)), ["--hidden", "whole numbers"]),
    (dict(epochs=2.0), ["--epochs", "whole number"]),
    (dict(lr="0.1"), ["--lr", "a number"]),
    (dict(dropout=None), ["--dropout"]),
    (dict(download="yes"), ["--download", "True or False"]),
    (dict(activation=3), ["--activation"]),
    (dict(data_dir=""), ["--data-dir"]),
    (dict(warmup=float("nan")), ["--warmup", "finite"]),
    (dict(weight_decay=float("nan")), ["--weight-decay", "finite"]),
    (dict(lr_step=float("nan")), ["--lr-step"]),
    (dict(momentum=float("inf")), ["--momentum"]),
    (dict(epochs=10**30), ["--epochs", "1..1000000"]),
    (dict(seed=2**64), ["--seed"]),
    (dict(batch_size=2**40), ["--batch-size"]),
])
def test_wrong_types_and_values_through_the_python_api_are_config_errors(kwargs, words):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**kwargs)
    for w in words:
        assert w in str(e.value)


def test_numpy_scalars_are_accepted_as_plain_values():
    cfg = TrainConfig(hidden=np.array([16, 8]), epochs=np.int64(3), lr=np.float32(0.5))
    assert cfg.hidden == (16, 8) and type(cfg.epochs) is int and type(cfg.lr) is float


def test_relative_data_dir_is_stored_absolute(small_dir, monkeypatch):
    monkeypatch.chdir(small_dir.parent)
    cfg = TrainConfig(data_dir=small_dir.name)
    assert cfg.data_dir == str(small_dir) and cfg.to_dict()["data_dir"] == str(small_dir)


def test_a_layer_too_large_for_memory_says_how_much_was_asked(small_dir, capsys):
    code, _, err = cli(train_main, ["--data-dir", str(small_dir), "--epochs", "1", *TINY,
                                    "--hidden", "200000000"], capsys)
    assert code == 2 and one_line(err), err
    assert "GB of memory" in err and "--hidden" in err


@pytest.mark.parametrize("change, words", [
    (lambda m: m["state"].update(surprise=1), ["unknown: surprise", "another version"]),
    (lambda m: m["state"].pop("best_val"), ["missing: best_val"]),
    (lambda m: m["state"].update(epoch="one"), ["malformed run state", "epoch"]),
    (lambda m: m["state"].update(history=[{"epoch": 1}]), ["malformed history"]),
    (lambda m: m.pop("state"), ["no run state"]),
    (lambda m: m["config"].update(from_the_future=True), ["from_the_future"]),
    (lambda m: m["config"].update(lr="fast"), ["--lr"]),
    (lambda m: m.update(config=[1, 2]), ["config: a table expected"]),
])
def test_resumed_checkpoints_with_unexpected_metadata_are_one_line_errors(
        change, words, small_ck, tmp_path, capsys):
    arrays, meta = checkpoint.load(small_ck)
    change(meta)
    bad = tmp_path / "bad.npz"
    checkpoint.save(bad, arrays, meta)
    code, _, err = cli(train_main, ["--resume", str(bad), "--epochs", "2", "--quiet"], capsys)
    assert code == 2 and one_line(err), err
    assert str(bad) in err
    for w in words:
        assert w in err, (w, err)


def test_a_resumed_checkpoint_with_bad_state_is_refused_through_the_api(small_dir, small_ck,
                                                                        tmp_path):
    arrays, meta = checkpoint.load(small_ck)
    meta["state"]["loss_sum"] = float("nan")
    bad = tmp_path / "bad.npz"
    checkpoint.save(bad, arrays, meta)
    cfg = TrainConfig.from_dict({**meta["config"], "epochs": 2})
    with pytest.raises(CheckpointError, match="loss_sum"):
        train(cfg, resume=str(bad))


def test_divergence_in_epoch_1_names_no_checkpoint_that_was_never_written(small_dir,
                                                                          tmp_path, capsys):
    ck = tmp_path / "ck.npz"
    code, _, err = cli(train_main, ["--data-dir", str(small_dir), "--epochs", "2", *TINY,
                                    "--lr", "1e30", "--schedule", "constant", "--save",
                                    str(ck)], capsys)
    assert code == 3 and one_line(err), err
    assert "epoch 1" in err and "no checkpoint was written" in err
    assert "last good checkpoint" not in err and not ck.exists()


def test_threads_beyond_the_machine_report_the_threads_used(small_dir, tmp_path, capsys):
    from fastmlp.threads import available_cores, set_threads

    m = tmp_path / "m.json"
    code, out, err = cli(train_main, ["--data-dir", str(small_dir), "--epochs", "1", *TINY,
                                      "--threads", "4096", "--metrics-json", str(m)], capsys)
    assert code == 0, err
    import json
    used = json.loads(m.read_text())["threads"]
    import numba
    assert used == min(4096, numba.config.NUMBA_NUM_THREADS) and used < 4096
    assert f"{used} threads" in out and "--threads 4096" in out
    assert set_threads(available_cores() + 50) == min(available_cores() + 50,
                                                      numba.config.NUMBA_NUM_THREADS)
    set_threads(1)


def test_evaluate_dataset_flag_evaluates_that_data_and_says_so(small_dir, small_ck,
                                                               tmp_path, capsys):
    other = tmp_path / "other"
    write_idx_dir(other, n_test=30)
    code, out, err = cli(evaluate_main, [str(small_ck), "--data-dir", str(other)], capsys)
    assert code == 0, err
    assert f"from {other}" in out and "(30 images)" in out
    # --dataset mnist means MNIST (bundled), not the checkpoint's own 8x8 directory: its 28x28
    # images do not fit the model, which is one line
    code, out, err = cli(evaluate_main, [str(small_ck), "--dataset", "mnist"], capsys)
    assert code == 2 and one_line(err) and "28x28 images, the model was trained on 8x8" in err
    assert "data: mnist from " in out and str(small_dir) not in out
    code, out, err = cli(evaluate_main, [str(small_ck)], capsys)
    assert code == 0 and f"from {small_dir}" in out and "(45 images)" in out


def test_a_files_without_samples_is_a_one_line_error(tmp_path, capsys):
    from fastmlp.data import FILES, write_idx

    write_idx_dir(tmp_path)
    write_idx(tmp_path / FILES[0], np.zeros((0, 8, 8), np.uint8))
    write_idx(tmp_path / FILES[1], np.zeros(0, np.uint8))
    code, _, err = cli(train_main, ["--data-dir", str(tmp_path), "--epochs", "1", *TINY],
                       capsys)
    assert code == 2 and one_line(err) and "holds no samples" in err
    with pytest.raises(DataError, match="holds no samples"):
        prepare_data(TrainConfig(data_dir=str(tmp_path)))


def test_an_activation_module_that_raises_on_import_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken_acts.py").write_text("raise RuntimeError('half-written module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = cli(train_main, ["--activation", "broken_acts:SWISH", "--epochs", "1"],
                       capsys)
    assert code == 2 and one_line(err)
    assert "broken_acts" in err and "RuntimeError: half-written module" in err


def test_output_piped_into_head_ends_quietly(small_ck, tmp_path):
    from fastmlp.data import write_idx

    images = tmp_path / "many-idx3-ubyte"  # 20,000 lines: far more than a pipe's buffer
    write_idx(images, np.zeros((20000, 8, 8), np.uint8))
    cmd = (f"{sys.executable} -m fastmlp.predict {small_ck} {images} --probs | head -1; "
           "exit ${PIPESTATUS[0]}")
    run = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert run.returncode in (0, 141), run.stderr
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr
    assert len(run.stdout.splitlines()) == 1
