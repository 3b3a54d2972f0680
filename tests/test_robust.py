"""Issue 12's severe items: nothing lost and nothing executed.

Checkpoints are data (loading one never imports what it names; a user activation is used only
when named again), output paths are checked before training and a failed final write is one
line, SIGTERM / SIGHUP save like Ctrl-C, --save never destroys a file that is not a checkpoint,
and a killed save's temporary file is removed by the next save. Runs use a tiny synthetic data
set (tests/synthetic.py) through the real command line.
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import synthetic
from synthetic import cli, one_line

from fastmlp.errors import CheckpointError, OutputError
from fastmlp.evaluate import main as evaluate_main
from fastmlp.predict import main as predict_main
from fastmlp.train import main as train_main
from fastmlp.training import checkpoint
from fastmlp.training.checkpoint import load_model

small_dir = synthetic.small_dir  # fixture
TINY = synthetic.TINY + ["--epochs", "1"]

README = Path(__file__).resolve().parent.parent / "README.md"


def no_training(monkeypatch):
    """Make any attempt to train fail the test: the checks must come first."""
    import fastmlp.training.run
    import fastmlp.training.run_data

    def refuse(*a, **k):
        pytest.fail("training started before the bad input was reported")

    monkeypatch.setattr(fastmlp.training.run, "train", refuse)
    monkeypatch.setattr(fastmlp.training.run_data, "prepare_data", refuse)


def readme_block(marker):
    """The README's ```python block whose first line is ``marker``."""
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S):
        if block.startswith(marker):
            return block
    raise AssertionError(f"no python block starting with {marker!r} in README.md")


# ---------------------------------------------------------------------------------------------
# 1, 2: checkpoints are data; the README's swish example round-trips when named again
# ---------------------------------------------------------------------------------------------
def test_readme_swish_checkpoint_is_used_only_when_the_activation_is_named(
        small_dir, tmp_path, monkeypatch, capsys):
    (tmp_path / "myacts.py").write_text(readme_block("# myacts.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    ck = tmp_path / "swish.npz"
    code, _, err = cli(train_main, ["--data-dir", str(small_dir), "--activation",
                                    "myacts:SWISH", "--save", str(ck), *TINY], capsys)
    assert code == 0, err
    idx = tmp_path / "few-images-idx3-ubyte"
    from fastmlp.data import read_idx, write_idx
    images = read_idx(small_dir / "t10k-images-idx3-ubyte")[:4]
    write_idx(idx, images)

    # without the activation named: one line saying exactly how, for every way of loading
    for main, argv in ((evaluate_main, [str(ck)]), (predict_main, [str(ck), str(idx)]),
                       (train_main, ["--resume", str(ck), "--epochs", "2", "--quiet"])):
        code, out, err = cli(main, argv, capsys)
        assert code == 2 and one_line(err), err
        assert "--activation myacts:SWISH" in err and "never imports" in err
    with pytest.raises(CheckpointError, match=r"activation='myacts:SWISH'"):
        load_model(ck)

    # named: evaluate, predict, load_model and resume all work
    model, meta = load_model(ck, activation="myacts:SWISH")
    assert meta["activation"] == "swish" and not meta["activation_builtin"]
    code, out, err = cli(evaluate_main, [str(ck), "--activation", "myacts:SWISH"], capsys)
    assert code == 0, err
    assert f"data: {small_dir.name} from {small_dir} (book split), 3 classes" in out
    code, out, err = cli(predict_main, [str(ck), str(idx), "--activation", "myacts:SWISH"],
                         capsys)
    assert code == 0, err
    assert [int(v) for v in out.split()] == list(model.predict(images))
    code, out, err = cli(train_main, ["--resume", str(ck), "--epochs", "2", "--activation",
                                      "myacts:SWISH", "--quiet"], capsys)
    assert code == 0, err
    # another activation than the recorded one is refused
    code, _, err = cli(evaluate_main, [str(ck), "--activation", "relu"], capsys)
    assert code == 2 and "trained with activation 'swish'" in err


def _craft(path, **changes):
    """Rewrite checkpoint ``path``'s metadata (keys of meta; config_* keys go into config)."""
    arrays, meta = checkpoint.load(path)
    for k, v in changes.items():
        if k.startswith("config_"):
            meta["config"][k[len("config_"):]] = v
        elif v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    checkpoint.save(path, arrays, meta)


def test_loading_a_checkpoint_never_imports_the_module_it_names(small_dir, tmp_path,
                                                                 monkeypatch, capsys):
    # A crafted checkpoint naming `evilmod:X`, with evilmod.py in the current directory (which
    # `python -m` puts on the path): evaluate, predict, load_model and resume all refuse it
    # and the module is never imported.
    marker = tmp_path / "EXECUTED"
    (tmp_path / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    ck = tmp_path / "ck.npz"
    code, _, err = cli(train_main, ["--data-dir", str(small_dir), "--activation", "relu",
                                    "--save", str(ck), *TINY], capsys)
    assert code == 0, err
    for spec in ("evilmod:X", "evilmod.sub:X", "relu:evilmod"):
        _craft(ck, activation=spec, config_activation=spec, activation_builtin=True)
        for main, argv in ((evaluate_main, [str(ck)]), (predict_main, [str(ck), str(ck)]),
                           (train_main, ["--resume", str(ck), "--epochs", "2"])):
            code, _, err = cli(main, argv, capsys)
            assert code == 2 and one_line(err), err
            assert ("--activation" in err) != (spec == "relu:evilmod"), err
            assert ("malformed" in err) == (spec == "relu:evilmod"), err
        with pytest.raises(CheckpointError):
            load_model(ck)
        assert not marker.exists() and "evilmod" not in sys.modules


# ---------------------------------------------------------------------------------------------
# 3: output paths checked before the first step; a failed final write is one line
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--save", "--metrics-json", "--history-csv"])
@pytest.mark.parametrize("where", ["missing-parent", "directory", "unwritable", "device"])
def test_output_paths_are_checked_before_training(flag, where, small_dir, tmp_path,
                                                  monkeypatch, capsys):
    if where == "unwritable" and not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux's /proc, a place no one may create files in (even root)")
    path = {"missing-parent": tmp_path / "no" / "such" / "out",
            "directory": tmp_path,
            "unwritable": Path("/proc/fastmlp-test-output"),
            "device": Path(os.devnull)}[where]   # renaming onto it would replace the device
    no_training(monkeypatch)
    code, out, err = cli(train_main, ["--data-dir", str(small_dir), flag, str(path), *TINY],
                         capsys)
    assert code == 2 and one_line(err), err
    assert f"{flag} {path}" in err
    assert {"missing-parent": "does not exist", "directory": "is a directory",
            "unwritable": "cannot write", "device": "not a regular file"}[where] in err


def test_a_failed_final_write_is_one_line_keeps_the_rest_and_exits_1(small_dir, tmp_path,
                                                                      monkeypatch, capsys):
    import fastmlp.training.outputs

    def disk_full(path, summary):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fastmlp.training.outputs, "write_metrics_json", disk_full)
    ck, m, h = tmp_path / "ck.npz", tmp_path / "m.json", tmp_path / "h.csv"
    code, out, err = cli(train_main, ["--data-dir", str(small_dir), "--save", str(ck),
                                      "--metrics-json", str(m), "--history-csv", str(h),
                                      *TINY], capsys)
    assert code == 1 and one_line(err), err
    assert f"--metrics-json {m} (No space left on device)" in err
    assert f"kept: {ck}, {h}" in err
    assert "test accuracy" in out                  # the summary was printed before
    load_model(ck)
    assert len(h.read_text().splitlines()) == 2 and not m.exists()


def test_metrics_json_is_strict_json(tmp_path):
    from fastmlp.training.outputs import write_metrics_json

    m = tmp_path / "m.json"
    write_metrics_json(m, {"val_loss": float("nan"), "x": [np.float32("inf"), 1.5],
                           "n": np.int64(3)})
    text = m.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == \
        {"val_loss": None, "x": [None, 1.5], "n": 3}


# ---------------------------------------------------------------------------------------------
# 4: SIGTERM and SIGHUP save a checkpoint like Ctrl-C
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_save_a_checkpoint_like_ctrl_c(sig, small_dir, tmp_path):
    ck = tmp_path / "ck.npz"
    proc = subprocess.Popen([sys.executable, "-m", "fastmlp.train", "--data-dir",
                             str(small_dir), "--hidden", "8", "--epochs", "1000000",
                             "--threads", "1", "--batch-size", "16", "--batch-ramp", "0",
                             "--save", str(ck)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:         # wait until training runs
            if line.startswith("epoch"):
                break
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert f"interrupted ({signal.Signals(sig).name})" in err and f"--resume {ck}" in err
    _, meta = load_model(ck)
    assert meta["state"]["epoch"] >= 1


def test_an_interrupted_run_that_cannot_save_says_where_it_tried(small_dir, tmp_path):
    from fastmlp import TrainConfig, train
    from fastmlp.training.run_data import Data, prepare_data

    cfg = TrainConfig(data_dir=str(small_dir), hidden=(8,), epochs=2, threads=1)
    data = prepare_data(cfg)
    assert isinstance(data, Data)
    where = tmp_path / "gone" / "fastmlp-interrupted.npz"
    with pytest.raises(OutputError) as e:
        train(cfg, data=data, should_stop=lambda epoch, step: True, interrupt_save=str(where))
    assert f"tried {where}" in str(e.value) and "does not exist" in str(e.value)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# 6: --save never overwrites a file that is not a fastmlp checkpoint (unless forced)
# ---------------------------------------------------------------------------------------------
def test_save_refuses_to_overwrite_a_file_that_is_not_a_checkpoint(small_dir, tmp_path,
                                                                    monkeypatch, capsys):
    precious = tmp_path / "thesis.tex"
    precious.write_text("years of work")
    with monkeypatch.context() as mp:
        no_training(mp)
        code, _, err = cli(train_main, ["--data-dir", str(small_dir), "--save", str(precious),
                                        *TINY], capsys)
    assert code == 2 and one_line(err), err
    assert "not a fastmlp checkpoint" in err and "--overwrite" in err
    assert precious.read_text() == "years of work"
    code, _, err = cli(train_main, ["--data-dir", str(small_dir), "--save", str(precious),
                                    "--overwrite", *TINY], capsys)
    assert code == 0, err
    assert checkpoint.is_checkpoint(precious)
    # a run's own earlier checkpoint is replaced as before
    code, _, err = cli(train_main, ["--data-dir", str(small_dir), "--save", str(precious),
                                    "--seed", "3", *TINY], capsys)
    assert code == 0, err
    assert load_model(precious)[1]["config"]["seed"] == 3


# ---------------------------------------------------------------------------------------------
# 7: a save killed mid-write leaves a temporary file; the next save to that target removes it
# ---------------------------------------------------------------------------------------------
def test_a_killed_saves_temporary_file_is_removed_by_the_next_save(tmp_path):
    target = tmp_path / "ck.npz"
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from fastmlp.training import checkpoint

        def savez_then_die(f, **arrays):
            f.write(b"x" * 100000)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        np.savez = savez_then_die
        checkpoint.save({str(target)!r}, dict(a=np.zeros(3)), dict(x=1))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert run.returncode == -signal.SIGKILL
    left = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(left) == 1 and left[0].startswith(".ck.npz.") and not target.exists()
    other = tmp_path / f".other.npz.{run.returncode}-x.tmp"  # another target's: not touched
    other.write_bytes(b"")
    checkpoint.save(target, dict(a=np.ones(3)), dict(x=2))
    assert sorted(os.listdir(tmp_path)) == sorted(["ck.npz", other.name])
    with np.load(target) as z:  # the new save is whole (not a checkpoint: no network in it)
        assert json.loads(z["__meta__"].tobytes())["x"] == 2
