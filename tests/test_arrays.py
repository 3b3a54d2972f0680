"""Data beyond MNIST's shape (issue 12): K classes from the training labels, real split sizes,
MNIST-like file names, and ``Data.from_arrays`` — on synthetic 8x8 data of 3 to 256 classes,
learnable, so that the accuracy bars below mean something (chance is 1/K)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from synthetic import learnable, write_idx_dir

from fastmlp import Data, TrainConfig, train
from fastmlp.cli import run_main
from fastmlp.data import FILES, load_dataset
from fastmlp.errors import DataError
from fastmlp.evaluate import main as evaluate_main
from fastmlp.predict import main as predict_main
from fastmlp.train import main as train_main

README = Path(__file__).resolve().parent.parent / "README.md"
SMALL = dict(hidden=(16,), epochs=4, threads=1, batch_ramp=None, batch_size=32)


def test_from_arrays_trains_k_outputs_and_reports_real_sizes():
    (train_x, train_y), (test_x, test_y) = learnable(600, k=3), learnable(97, k=3, seed=5)
    r = train(TrainConfig(**SMALL), data=Data.from_arrays(train_x, train_y, test_x, test_y))
    s = r.summary
    assert r.model.sizes == (64, 16, 3)
    assert s["n_classes"] == 3 and s["n_inputs"] == 64
    assert (s["n_train"], s["n_val"], s["n_test"], s["n_test_full"]) == (600, 48, 49, 97)
    assert s["test_accuracy_full"] > 0.9 and s["val_accuracy"] > 0.9  # chance: 0.33
    assert r.model.predict_proba(test_x).shape == (97, 3)


def test_from_arrays_with_explicit_validation_arrays():
    (tx, ty), (vx, vy), (sx, sy) = (learnable(400, k=4, shape=(6, 10), seed=s)
                                    for s in (1, 2, 3))
    r = train(TrainConfig(**SMALL), data=Data.from_arrays(tx, ty, sx[:50], sy[:50], vx[:30],
                                                          vy[:30]))
    s = r.summary
    assert (s["n_val"], s["n_test"], s["n_test_full"], s["n_classes"]) == (30, 50, 50, 4)
    assert r.model.transform.image_shape == (6, 10)
    np.testing.assert_allclose(s["val_accuracy"], r.model.accuracy(vx[:30], vy[:30]))
    assert s["test_accuracy"] > 0.85


def test_256_classes_give_256_outputs():
    rng = np.random.default_rng(0)
    y = np.arange(512) % 256
    x = rng.integers(0, 256, (512, 4, 4)).astype(np.uint8)
    r = train(TrainConfig(hidden=(8,), epochs=1, threads=1),
              data=Data.from_arrays(x, y, x[:10], y[:10]))
    assert r.model.sizes[-1] == 256 and r.summary["n_classes"] == 256


@pytest.mark.parametrize("change, words", [
    (lambda a: a.update(train_x=a["train_x"].astype(np.float32)), ["train_x", "uint8"]),
    (lambda a: a.update(train_y=a["train_y"] * 0), ["train_y", "at least 2"]),
    (lambda a: a.update(train_y=a["train_y"].astype(np.int64) + 300), ["train_y", "0..255"]),
    (lambda a: a.update(train_y=a["train_y"][:-1]), ["count mismatch"]),
    (lambda a: a.update(test_y=a["test_y"] + 5), ["test_y", "not a class"]),
    (lambda a: a.update(test_x=a["test_x"][:, :4]), ["test_x", "train_x"]),
    (lambda a: a.update(train_x=a["train_x"][:, :, :0]), ["holds no samples"]),
    (lambda a: a.update(val_x=a["test_x"]), ["val_x and val_y"]),
])
def test_from_arrays_refuses_bad_arrays_naming_them(change, words):
    (train_x, train_y), (test_x, test_y) = learnable(30), learnable(10)
    arrays = dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)
    change(arrays)
    with pytest.raises(DataError) as e:
        Data.from_arrays(**arrays)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_readme_from_arrays_example_runs_and_prints_what_it_says():
    block = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
                 if "Data.from_arrays" in b and b.startswith("import numpy"))
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    s = namespace["result"].summary
    promised = block.strip().splitlines()[-1].lstrip("# ").split()
    assert [str(s["n_classes"]), str(s["n_val"]), str(s["test_accuracy"])] == promised


def test_k_classes_from_idx_files_with_common_names_through_the_command_line(tmp_path, capsys):
    d = tmp_path / "digits"
    names = ("TRAIN-IMAGES.IDX3-UBYTE", "train-labels.idx1-ubyte", "t10k-images-idx3-ubyte.gz",
             "T10K-LABELS-IDX1-UBYTE")
    write_idx_dir(d, n_train=500, n_test=297, k=5, names=names)
    m, ck = tmp_path / "m.json", tmp_path / "ck.npz"
    code = run_main(train_main, ["--data-dir", str(d), "--hidden", "16", "--epochs", "4",
                                 "--threads", "1", "--metrics-json", str(m), "--save", str(ck)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "network: 64-16-5 " in out
    assert "first 148 test images" in out and "last 149 test images" in out
    assert "all 297 test images" in out and "5,000" not in out and "10,000" not in out
    metrics = json.loads(m.read_text())
    assert (metrics["n_classes"], metrics["n_val"], metrics["n_test"],
            metrics["n_test_full"]) == (5, 148, 149, 297)
    assert metrics["test_accuracy_full"] > 0.8  # chance: 0.2

    code = run_main(evaluate_main, [str(ck)])
    out, err = capsys.readouterr()
    assert code == 0 and "5 classes" in out and "(297 images)" in out, err
    code = run_main(predict_main, [str(ck), str(d / names[2]), "--probs"])
    out, err = capsys.readouterr()
    rows = out.strip().splitlines()
    assert code == 0 and len(rows) == 297 and len(rows[0].split()) == 1 + 5


def test_a_directory_without_matching_files_lists_what_it_holds(tmp_path):
    for name in ("images.bin", "labels.bin", "README"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError) as e:
        load_dataset("mnist", data_dir=tmp_path)
    assert "holds none of the four files; it holds README, images.bin, labels.bin" in str(e.value)


def test_standard_spelling_is_preferred_over_a_variant(tmp_path):
    write_idx_dir(tmp_path, n_train=30, n_test=10)
    write_idx_dir(tmp_path / "x", n_train=20, n_test=10, k=4)
    (tmp_path / "x" / FILES[0]).rename(tmp_path / "TRAIN-IMAGES.IDX3-UBYTE")
    ds = load_dataset("mnist", data_dir=tmp_path)
    assert len(ds.train_images) == 30 and ds.n_classes == 3
