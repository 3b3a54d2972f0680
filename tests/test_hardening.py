"""Hardening, round 2: nothing a checkpoint or an image file holds reaches compiled code
unchecked or makes a reader allocate what its metadata does not imply; no output of a command
destroys an input or another output; results and messages say what is true.

Each test failed before its fix (the crafted checkpoints killed evaluate and predict with a
segmentation fault, a 64 MB zip bomb was inflated whole, --metrics-json overwrote the checkpoint
--resume read, ...).
"""

import io
import json
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
import synthetic
from synthetic import TINY, cli, one_line

from fastmlp import load_model
from fastmlp.errors import CheckpointError, ConfigError
from fastmlp.evaluate import main as evaluate_main
from fastmlp.predict import main as predict_main
from fastmlp.train import main as train_main
from fastmlp.training import checkpoint

small_ck = synthetic.small_ck  # fixture
small_dir = synthetic.small_dir  # fixture


def no_training(monkeypatch):
    """Make any attempt to train fail the test: the checks must come first."""
    import fastmlp.training.run
    import fastmlp.training.run_data

    def refuse(*a, **k):
        pytest.fail("training started before the bad input was reported")

    monkeypatch.setattr(fastmlp.training.run, "train", refuse)
    monkeypatch.setattr(fastmlp.training.run_data, "prepare_data", refuse)


@pytest.fixture(scope="module")
def images_idx(tmp_path_factory):
    """Five 8x8 images as an IDX file, for predict."""
    from fastmlp.data import write_idx

    path = tmp_path_factory.mktemp("img") / "five.idx"
    write_idx(path, synthetic.learnable(5)[0])
    return path


def crafted(small_ck, tmp_path, change):
    """A copy of ``small_ck`` with ``change(arrays, meta)`` applied, written as save() writes."""
    arrays, meta = checkpoint.load(small_ck)
    change(arrays, meta)
    path = tmp_path / "crafted.npz"
    checkpoint.save(path, arrays, meta)
    return path


def _transform(n):
    def change(a, m):
        a["pixel_index"] = np.arange(n) % 64
        a["scale"] = np.ones(n, np.float32)
        a["shift"] = np.zeros(n, np.float32)
        m["transform"]["kept_shape"] = None
    return change


# (change, words the one-line error must hold)
CRAFTED = {
    "transform shorter than the first layer": (_transform(10), ["pixel_index", "(64,)"]),
    "transform longer than the first layer": (_transform(256), ["pixel_index", "(64,)"]),
    "pixel index outside the image": (
        lambda a, m: a["pixel_index"].__setitem__(3, 10**6), ["pixel_index", "outside"]),
    "more classes than n_classes": (lambda a, m: m.update(sizes=[64, 8, 30]), ["n_classes"]),
    "fewer inputs than the images' kept shape": (lambda a, m: m.update(sizes=[4, 8, 3]),
                                                 ["kept_shape"]),
    "hidden size not the parameters'": (lambda a, m: m.update(sizes=[64, 80, 3]),
                                        ["params", "(5443,)"]),
    "sizes not numbers": (lambda a, m: m.update(sizes=["64", 8, 3]), ["sizes"]),
    "sizes a bool": (lambda a, m: m.update(sizes=[True, 8, 3]), ["sizes"]),
    "no sizes": (lambda a, m: m.pop("sizes"), ["sizes"]),
    "params as float64": (lambda a, m: a.update(params=a["params"].astype(np.float64)),
                          ["params", "float64"]),
    "params 2-D": (lambda a, m: a.update(params=a["params"][None]), ["params", "(1, 547)"]),
    "optimizer state short": (lambda a, m: a.update(opt1=a["opt1"][:5]), ["opt1"]),
    "no params": (lambda a, m: a.pop("params"), ["params"]),
    "an unknown array": (lambda a, m: a.update(extra=np.zeros(3)), ["extra"]),
    "NaN parameters": (lambda a, m: a["params"].__setitem__(0, np.nan), ["NaN"]),
    "infinite scale": (lambda a, m: a["scale"].__setitem__(0, np.inf), ["scale"]),
    "image shape not two numbers": (lambda a, m: m["transform"].update(image_shape=[8]),
                                    ["image_shape"]),
    "transform not a table": (lambda a, m: m.update(transform="crop"), ["transform"]),
    "activation not a name": (lambda a, m: m.update(activation=3), ["activation"]),
    "inputs neither images nor features": (lambda a, m: m["transform"].update(inputs="pixels"),
                                           ["inputs", "images or features"]),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_checkpoints_are_one_line_errors_in_every_reader(
        name, small_ck, small_dir, images_idx, tmp_path, capsys):
    change, words = CRAFTED[name]
    bad = crafted(small_ck, tmp_path, change)
    runs = {"evaluate": (evaluate_main, [str(bad)]),
            "predict": (predict_main, [str(bad), str(images_idx)]),
            "resume": (train_main, ["--resume", str(bad), "--data-dir", str(small_dir),
                                    "--epochs", "2", *TINY])}
    for what, (main, argv) in runs.items():
        code, _, err = cli(main, argv, capsys)
        assert code == 2 and one_line(err), (what, err)
        assert str(bad) in err and all(w in err for w in words), (what, words, err)
    with pytest.raises(CheckpointError):
        load_model(bad)


def test_a_checkpoint_whose_transform_is_shorter_than_its_network_does_not_crash(
        small_ck, images_idx, tmp_path):
    """In a process of its own: this one died of SIGSEGV (exit 139) in the compiled evaluation."""
    bad = crafted(small_ck, tmp_path, _transform(10))
    for argv in (["fastmlp.evaluate", str(bad)], ["fastmlp.predict", str(bad), str(images_idx)]):
        run = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 2 and one_line(run.stderr), (argv, run.returncode, run.stderr)


def test_the_compiled_evaluations_wrapper_checks_what_it_indexes(small_ck):
    """A model whose transform was swapped after it was built (no MLP check ran) is stopped by
    the wrapper of the compiled evaluation, not by a crash."""
    from fastmlp.data import InputTransform
    from fastmlp.loop.calls import evaluate

    model, _ = load_model(small_ck)
    with pytest.raises(ConfigError, match="transform makes 10 inputs"):
        type(model)(model.sizes, model.activation, model.params,
                    InputTransform((8, 8), np.arange(10), np.ones(10), np.zeros(10), None, "x"))
    images = synthetic.learnable(4)[0].reshape(4, 64)
    model.transform = InputTransform((8, 8), np.arange(10), np.ones(10), np.zeros(10), None, "x")
    with pytest.raises(ValueError, match="first layer takes 64 inputs"):
        evaluate(model, images)
    model, _ = load_model(small_ck)
    with pytest.raises(ValueError, match="reads pixels up to 63"):
        evaluate(model, images[:, :32])
    with pytest.raises(ValueError, match="labels"):
        evaluate(model, images, np.array([0, 1, 2, 3]))


def _bomb(small_ck, tmp_path, n_floats):
    """``small_ck`` with its params replaced by a compressed array of ``n_floats`` zeros: a
    small file that inflates to 4 * n_floats bytes."""
    arrays, meta = checkpoint.load(small_ck)
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, a in dict(arrays, __meta__=np.frombuffer(json.dumps(meta).encode(),
                                                          np.uint8)).items():
            if name == "params":
                continue
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a)
            z.writestr(name + ".npy", buf.getvalue())
        with z.open("params.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (n_floats,)})
            chunk = bytes(2**20)
            for _ in range(4 * n_floats // len(chunk)):
                f.write(chunk)
    return path


def test_a_zip_bomb_is_refused_from_its_header_before_it_is_inflated(small_ck, tmp_path):
    bomb = _bomb(small_ck, tmp_path, 2**24)  # 64 MB of zeros in about 64 kB
    assert bomb.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"params has shape \(16777216,\), its "
                                                  r"metadata implies \(547,\)"):
            load_model(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak  # nothing near the 64 MB it inflates to was allocated


def test_metadata_declaring_a_huge_network_is_refused_before_any_array_is_read(small_ck,
                                                                                tmp_path, capsys):
    bad = crafted(small_ck, tmp_path, lambda a, m: m.update(sizes=[64, 2**20, 2**10, 3]))
    code, _, err = cli(evaluate_main, [str(bad)], capsys)
    assert code == 2 and one_line(err) and "reads at most" in err, err
    assert checkpoint.MAX_PARAMS < 64 * 2**20 + 2**30


def test_metadata_larger_than_its_cap_is_refused(small_ck, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "MAX_META_BYTES", 100)
    with pytest.raises(CheckpointError, match="not at most 100 bytes"):
        checkpoint.load(small_ck)
    assert not checkpoint.is_checkpoint(small_ck)


def _png(width, height, rows=1):
    """A PNG of ``width`` x ``height`` 8-bit grey pixels whose data holds only ``rows`` rows."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\0" + bytes(width) for _ in range(rows)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("size", [(30000, 30000), (5000, 5000), (9, 8)])
def test_a_png_of_the_wrong_size_is_refused_from_its_header(size, small_ck, tmp_path, capsys):
    pytest.importorskip("PIL")
    png = tmp_path / "big.png"
    png.write_bytes(_png(*size))
    code, _, err = cli(predict_main, [str(small_ck), str(png)], capsys)
    assert code == 2 and one_line(err), err
    assert str(png) in err and "resize it" in err, err


def test_a_png_of_the_models_size_is_predicted(small_ck, tmp_path, capsys):
    pytest.importorskip("PIL")
    png = tmp_path / "ok.png"
    png.write_bytes(_png(8, 8, rows=8))
    code, out, err = cli(predict_main, [str(small_ck), str(png)], capsys)
    model, _ = load_model(small_ck)
    assert code == 0, err
    assert out.split() == [str(model.predict(np.zeros((1, 8, 8), np.uint8))[0])]


# -- outputs ----------------------------------------------------------------------------------
def test_metrics_json_onto_the_resumed_checkpoint_is_refused(small_ck, small_dir, tmp_path,
                                                              monkeypatch, capsys):
    ck = tmp_path / "run.npz"
    ck.write_bytes(small_ck.read_bytes())
    no_training(monkeypatch)
    for flag in ("--metrics-json", "--history-csv"):
        code, _, err = cli(train_main, ["--resume", str(ck), "--epochs", "2", flag, str(ck),
                                        *TINY], capsys)
        assert code == 2 and one_line(err), err
        assert f"{flag} {ck} is the --resume file" in err, err
    assert ck.read_bytes() == small_ck.read_bytes()


def test_history_csv_never_replaces_a_checkpoint_or_another_file(small_ck, small_dir, tmp_path,
                                                                 monkeypatch, capsys):
    ck = tmp_path / "other.npz"
    ck.write_bytes(small_ck.read_bytes())
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    no_training(monkeypatch)
    for flag, path, kind in (("--history-csv", ck, "history CSV"),
                             ("--metrics-json", ck, "metrics JSON"),
                             ("--metrics-json", notes, "metrics JSON")):
        code, _, err = cli(train_main, ["--data-dir", str(small_dir), flag, str(path), *TINY],
                           capsys)
        assert code == 2 and one_line(err) and kind in err and "--overwrite" in err, err
    assert ck.read_bytes() == small_ck.read_bytes() and notes.read_text() == '{"mine": 1}'
    link = tmp_path / "link.csv"
    link.symlink_to(ck)
    code, _, err = cli(train_main, ["--data-dir", str(small_dir), "--save", str(ck),
                                    "--history-csv", str(link), *TINY], capsys)
    assert code == 2 and "both name" in err, err


def test_a_runs_own_outputs_are_replaced_by_the_next_run_and_overwrite_replaces_any(
        small_dir, tmp_path, capsys):
    out = {f: tmp_path / n for f, n in (("--metrics-json", "m.json"), ("--history-csv", "h.csv"),
                                        ("--save", "ck.npz"))}
    argv = ["--data-dir", str(small_dir), "--epochs", "1", *TINY]
    for f, p in out.items():
        argv += [f, str(p)]
    assert cli(train_main, argv, capsys)[0] == 0
    first = {f: p.read_bytes() for f, p in out.items()}
    assert cli(train_main, argv + ["--seed", "1"], capsys)[0] == 0  # its own files: replaced
    assert all(p.read_bytes() != first[f] for f, p in out.items())
    out["--history-csv"].write_text("my data\n")
    assert cli(train_main, argv, capsys)[0] == 2
    assert cli(train_main, argv + ["--overwrite"], capsys)[0] == 0
    assert out["--history-csv"].read_text().startswith("epoch,loss,train_accuracy,")


# -- results and messages that say what is true ----------------------------------------------
def test_predictions_on_odd_batches_are_true(small_ck):
    model, _ = load_model(small_ck)
    empty = np.zeros((0, 8, 8), np.uint8)
    assert model.predict(empty).shape == (0,)
    assert model.predict_proba(empty).shape == (0, 3)
    assert np.isnan(model.accuracy(empty, np.zeros(0, np.int64)))
    with pytest.raises(ConfigError, match=r"one 8x8 image .*image\[None\]"):
        model.predict(np.zeros((8, 8), np.uint8))
    with pytest.raises(ConfigError, match=r"shape \(2, 4, 16\).*\(N, 8, 8\) or \(N, 64\)"):
        model.predict(np.zeros((2, 4, 16), np.uint8))
    model.params[0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        model.predict(np.zeros((1, 8, 8), np.uint8))


def test_files_that_are_not_mnist_are_not_called_mnist(small_ck, capsys):
    code, out, _ = cli(evaluate_main, [str(small_ck)], capsys)
    assert code == 0 and out.startswith(f"data: {small_dir_name(small_ck)} from "), out
    assert "mnist" not in out.splitlines()[0]


def small_dir_name(small_ck):
    arrays, meta = checkpoint.load(small_ck)
    return meta["config"]["data_dir"].rstrip("/").rsplit("/", 1)[-1]


def test_a_shift_advice_is_never_below_the_smallest_shift(tmp_path, capsys):
    synthetic.write_idx_dir(tmp_path, shape=(1, 8))
    code, _, err = cli(train_main, ["--data-dir", str(tmp_path), "--augment", "shift:1",
                                    "--epochs", "1", *TINY], capsys)
    assert code == 2 and one_line(err), err
    assert "below 1" not in err and "cannot be shifted" in err, err


def test_no_output_replaces_a_data_file_the_run_reads_even_with_overwrite(tmp_path, capsys,
                                                                          monkeypatch):
    synthetic.write_idx_dir(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    before = labels.read_bytes()
    no_training(monkeypatch)
    code, _, err = cli(train_main, ["--data-dir", str(tmp_path), "--metrics-json", str(labels),
                                    "--overwrite", *TINY], capsys)
    assert code == 2 and one_line(err) and "is the --data-dir file" in err, err
    assert labels.read_bytes() == before


def test_written_files_get_the_mode_a_new_file_gets_or_keep_their_own(tmp_path):
    import os

    from fastmlp.files import atomic_write

    old = os.umask(0o022)
    try:
        new = tmp_path / "new.txt"
        atomic_write(new, lambda f: f.write(b"x"))
        assert new.stat().st_mode & 0o777 == 0o644  # was 0600 (mkstemp's)
        kept = tmp_path / "kept.txt"
        kept.write_bytes(b"")
        kept.chmod(0o640)
        atomic_write(kept, lambda f: f.write(b"y"))
        assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_bytes() == b"y"
    finally:
        os.umask(old)
