"""ONNX export (issue 33): the exported graph, run by onnxruntime on all 10,000 MNIST test images,
gives the labels ``model.predict`` gives on every image and probabilities within 1e-5, for every
built-in activation, every input transform (crop, center window, auto-crop, standardization),
several hidden layers and K != 10; and ``python -m fastmlp.export`` fails in one line.

The models are tiny (hidden 16-32) and trained for one pass over 3,000 real MNIST images: the
file takes seconds. Skipped where onnx or onnxruntime is not installed
(``pip install -e ".[test]"`` installs both).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import synthetic
from synthetic import cli, one_line

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from fastmlp import Data, MLP, TrainConfig, custom_activation, export_onnx, train  # noqa: E402
from fastmlp.choices.activations import BUILTINS  # noqa: E402
from fastmlp.errors import CheckpointError, ConfigError  # noqa: E402
from fastmlp.evaluate import main as evaluate_main  # noqa: E402
from fastmlp.export import ACTIVATIONS, IR_VERSION, OPSET, is_fastmlp_onnx  # noqa: E402
from fastmlp.export import main as export_main  # noqa: E402
from fastmlp.training.checkpoint import load_model  # noqa: E402

small_dir, small_ck = synthetic.small_dir, synthetic.small_ck  # fixtures
TOL = 1e-5  # probabilities: float32 GEMMs summed in another order, exp and tanh of another libm


def run_onnx(proto_or_path, images):
    """(label, probabilities) of the graph run by onnxruntime on CPU."""
    src = proto_or_path.SerializeToString() if hasattr(proto_or_path, "SerializeToString") \
        else str(proto_or_path)
    session = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    assert names == ["label", "probabilities"]
    return session.run(None, {"images": images})


def assert_same_as_fastmlp(model, proto_or_path, images):
    label, probs = run_onnx(proto_or_path, images)
    assert label.dtype == np.int64 and probs.dtype == np.float32
    assert probs.shape == (len(images), model.sizes[-1])
    np.testing.assert_array_equal(label, model.predict(images))  # every image
    np.testing.assert_allclose(probs, model.predict_proba(images), rtol=0, atol=TOL)


@pytest.fixture(scope="module")
def small_mnist(mnist):
    """3,000 real training images (a twentieth of an epoch) and 1,000 test images."""
    return Data.from_arrays(mnist.train_images[:3000], mnist.train_labels[:3000],
                            mnist.test_images[:1000], mnist.test_labels[:1000])


@pytest.fixture(scope="module")
def three_classes(mnist):
    """The 3s, 5s and 8s of real MNIST as classes 0, 1, 2 (K = 3)."""
    def subset(x, y, n):
        keep = np.flatnonzero(np.isin(y, (3, 5, 8)))[:n]
        return x[keep], np.searchsorted([3, 5, 8], y[keep]).astype(np.uint8)

    return Data.from_arrays(*subset(mnist.train_images, mnist.train_labels, 3000),
                            *subset(mnist.test_images, mnist.test_labels, 600))


def tiny(data, **settings):
    cfg = {"hidden": (24,), "epochs": 1, "threads": 1, "seed": 1, **settings}
    return train(TrainConfig(**cfg), data=data).model


def test_every_builtin_activation_has_its_row():
    assert set(ACTIVATIONS) == set(BUILTINS)


# every built-in, parameters away from their defaults where they take one
ACTS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu:0.1", "shifted_relu:0.5", "elu:0.7",
        "softplus", "gelu"]


@pytest.mark.parametrize("activation", ACTS)
def test_each_activation_gives_fastmlps_labels_and_probabilities(small_mnist, mnist,
                                                                 activation):
    model = tiny(small_mnist, activation=activation)
    proto = export_onnx(model)
    assert_same_as_fastmlp(model, proto, mnist.test_images)


TRANSFORMS = {
    "crop": dict(crop=3),
    "center": dict(center=12),
    "auto-crop": dict(auto_crop=True),
    "crop+auto-crop+standardize": dict(crop=2, auto_crop=True, normalize="standardize"),
    "center+standardize, 3 hidden layers": dict(center=17, normalize="standardize",
                                                hidden=(32, 24, 16), activation="tanh"),
}


@pytest.mark.parametrize("settings", TRANSFORMS.values(), ids=TRANSFORMS.keys())
def test_each_input_transform_runs_in_the_graph(small_mnist, mnist, settings):
    model = tiny(small_mnist, **settings)
    assert model.sizes[0] < 784  # the pixels kept are fewer than the image's
    proto = export_onnx(model)
    assert_same_as_fastmlp(model, proto, mnist.test_images)


def test_three_classes_and_several_hidden_layers(three_classes, mnist):
    model = tiny(three_classes, hidden=(32, 16, 16), activation="relu", crop=1)
    assert model.sizes[-1] == 3
    assert_same_as_fastmlp(model, export_onnx(model), mnist.test_images)


@pytest.mark.parametrize("activation", ACTS)
def test_extreme_preactivations_stay_finite_and_equal(mnist, activation):
    # the first layer's weights 60x the init: its pre-activations reach beyond +-100 (exp
    # overflows past 88, sigmoid and tanh saturate), the next layer's 60x smaller so that the
    # logits stay ordinary (large logits would amplify float32 rounding, not test the graph)
    from fastmlp.data import make_transform

    t = make_transform(mnist.train_images[:2000], crop=1)
    model = MLP.create((t.n_inputs, 16, 16, 10), activation, seed=3, transform=t)
    model.weight(0)[:] *= 60
    model.weight(1)[:] /= 60
    images = mnist.test_images[:1000]
    z = t.apply(images) @ model.weight(0) + model.bias(0)
    assert z.max() > 100 and z.min() < -100
    label, probs = run_onnx(export_onnx(model), images)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs, model.predict_proba(images), rtol=0, atol=TOL)
    np.testing.assert_array_equal(label, model.predict(images))


def test_a_scale_and_shift_per_input_are_applied_per_input(mnist):
    # make_transform gives one scale and one shift for all inputs (the graph stores scalars);
    # a transform may hold one per input (InputTransform.from_dict): vectors then, in order
    from fastmlp.data import InputTransform

    rng = np.random.default_rng(5)
    index = np.sort(rng.choice(784, 300, replace=False))
    t = InputTransform((28, 28), index, rng.uniform(0.001, 0.01, 300), rng.normal(0, 1, 300),
                       None, "300 random pixels, random scales")
    model = MLP.create((300, 16, 10), "elu:1", seed=2, transform=t)
    assert_same_as_fastmlp(model, export_onnx(model), mnist.test_images)


def test_model_without_a_transform_takes_flat_images(small_mnist, mnist):
    trained = tiny(small_mnist)
    model = MLP(trained.sizes, trained.activation, trained.params)  # transform None: u / 255
    images = mnist.test_images.reshape(len(mnist.test_images), -1)
    assert_same_as_fastmlp(model, export_onnx(model), images)


def test_the_file_is_pinned_checked_and_describes_its_inputs(small_mnist, tmp_path):
    model = tiny(small_mnist, crop=2)
    out = tmp_path / "m.onnx"
    returned = export_onnx(model, out)
    loaded = onnx.load(str(out))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded == returned
    assert loaded.ir_version == IR_VERSION == 8
    assert [(o.domain, o.version) for o in loaded.opset_import] == [("", OPSET)] and OPSET == 17
    (inp,) = loaded.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "images" and dims == ["N", 28, 28]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    props = {p.key: p.value for p in loaded.metadata_props}
    assert props["fastmlp.sizes"] == "576-24-10"
    assert props["fastmlp.activation"] == str(model.activation) == "shifted_relu:0.5"
    assert "crop 2" in props["fastmlp.inputs"]


# ---------------------------------------------------------------------------------------------
# from a checkpoint, and the command line
# ---------------------------------------------------------------------------------------------
def test_command_exports_a_checkpoint_like_load_model_predicts(small_mnist, mnist, tmp_path,
                                                               capsys):
    ck, out = tmp_path / "run.npz", tmp_path / "model.onnx"
    train(TrainConfig(hidden=(16,), epochs=1, threads=1, center=20, auto_crop=True),
          data=small_mnist, save=str(ck))
    code, stdout, err = cli(export_main, [str(ck), str(out)], capsys)
    assert code == 0, err
    assert stdout.startswith(f"wrote {out} (") and f"opset {OPSET}, IR {IR_VERSION}" in stdout
    model, _ = load_model(ck)
    assert_same_as_fastmlp(model, out, mnist.test_images)
    # the Python function takes the path too
    out2 = tmp_path / "again.onnx"
    assert export_onnx(ck, out2) == onnx.load(str(out))
    assert out2.read_bytes() == out.read_bytes()


def test_missing_or_corrupt_checkpoint_is_evaluates_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    for path in (tmp_path / "missing.npz", bad):
        code, _, err = cli(export_main, [str(path), str(tmp_path / "m.onnx")], capsys)
        ecode, _, eerr = cli(evaluate_main, [str(path)], capsys)
        assert code == ecode == 2 and one_line(err)
        assert err == eerr
        assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(CheckpointError, match="no such file"):
        export_onnx(tmp_path / "missing.npz")


def test_user_activation_is_refused_in_one_line(small_dir, tmp_path, capsys):
    from fastmlp.train import main as train_main

    ck = tmp_path / "user.npz"
    code, _, err = cli(train_main, ["--data-dir", str(small_dir), "--activation",
                                    "user_relu:my_relu", "--save", str(ck),
                                    *synthetic.TINY, "--epochs", "1"], capsys)
    assert code == 0, err
    code, _, err = cli(export_main, [str(ck), str(tmp_path / "m.onnx")], capsys)
    assert code == 2 and one_line(err), err
    assert "user activation 'user_relu:my_relu'" in err and "cannot be exported" in err
    assert not (tmp_path / "m.onnx").exists()
    model, _ = load_model(ck, activation="user_relu:my_relu")
    with pytest.raises(ConfigError, match="cannot be exported"):
        export_onnx(model)
    import user_relu

    act = custom_activation(user_relu.my_relu, user_relu.my_relu_derivative, name="mine")
    with pytest.raises(ConfigError, match="user activation 'mine'"):
        export_onnx(MLP.create((4, 3, 2), act))


def no_export_work(monkeypatch):
    import fastmlp.export

    def refuse(*a, **k):
        pytest.fail("the checkpoint was read before the output was checked")

    monkeypatch.setattr(fastmlp.export, "load_exportable", refuse)


def test_existing_output_is_refused_before_any_work_unless_overwrite(small_ck, tmp_path,
                                                                     monkeypatch, capsys):
    out = tmp_path / "m.onnx"
    out.write_text("someone's file")
    with monkeypatch.context() as m:
        no_export_work(m)
        code, _, err = cli(export_main, [str(small_ck), str(out)], capsys)
        assert code == 2 and one_line(err) and "--overwrite" in err, err
        assert "is not an ONNX file fastmlp wrote" in err
        assert out.read_text() == "someone's file"
        with pytest.raises(ConfigError, match="refusing to overwrite"):
            export_onnx(small_ck, out)
        # never the checkpoint itself, not even with --overwrite
        before = small_ck.read_bytes()
        code, _, err = cli(export_main, [str(small_ck), str(small_ck), "--overwrite"], capsys)
        assert code == 2 and one_line(err) and "is the model file this command reads" in err
        assert small_ck.read_bytes() == before
        code, _, err = cli(export_main, [str(small_ck), str(tmp_path / "no" / "m.onnx")],
                           capsys)
        assert code == 2 and one_line(err) and "does not exist" in err
    code, _, err = cli(export_main, [str(small_ck), str(out), "--overwrite"], capsys)
    assert code == 0, err
    onnx.checker.check_model(onnx.load(str(out)))
    # an ONNX file fastmlp wrote is replaced as train's --save replaces a checkpoint; another
    # program's ONNX file (its producer another) is not
    assert is_fastmlp_onnx(out)
    code, _, err = cli(export_main, [str(small_ck), str(out)], capsys)
    assert code == 0, err
    other = onnx.load(str(out))
    other.producer_name = "pytorch"
    onnx.save(other, str(out))
    assert not is_fastmlp_onnx(out)
    code, _, err = cli(export_main, [str(small_ck), str(out)], capsys)
    assert code == 2 and "is not an ONNX file fastmlp wrote" in err, err


def test_without_onnx_one_line_says_how_to_install(small_ck, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    code, _, err = cli(export_main, [str(small_ck), str(tmp_path / "m.onnx")], capsys)
    assert code == 2 and one_line(err) and 'pip install "fastmlp[onnx]"' in err, err


def test_a_failed_write_is_one_line_exit_1(small_ck, tmp_path, monkeypatch, capsys):
    import fastmlp.files

    def full_disk(path, write):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fastmlp.files, "atomic_write", full_disk)
    code, _, err = cli(export_main, [str(small_ck), str(tmp_path / "m.onnx")], capsys)
    assert code == 1 and one_line(err) and "No space left on device" in err, err


def test_python_dash_m_runs_the_command(tmp_path):
    # the command as a process (its __main__): a missing checkpoint, one line, exit 2 (no
    # training and no graph: a successful export is tested in-process above)
    done = subprocess.run([sys.executable, "-m", "fastmlp.export", str(tmp_path / "no.npz"),
                           str(tmp_path / "m.onnx")], capture_output=True, text=True,
                          env={**os.environ}, timeout=120)
    assert done.returncode == 2 and one_line(done.stderr), done.stderr
    assert done.stderr.startswith(f"error: checkpoint {tmp_path / 'no.npz'}: no such file")
    assert done.stdout == ""


def test_readme_onnx_example_runs_and_gives_fastmlps_labels(small_mnist, mnist, tmp_path,
                                                             monkeypatch):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## To ONNX\n", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"`(python -m fastmlp\.export [^`]+)`", section).group(1).split()
    (block,) = re.findall(r"```python\n(.*?)```", section, re.S)
    ck = tmp_path / command[3]
    train(TrainConfig(hidden=(16,), epochs=1, threads=1, crop=1), data=small_mnist,
          save=str(ck))
    monkeypatch.chdir(tmp_path)
    assert export_main(command[3:]) == 0
    names = {}
    exec(block, names)
    model, _ = load_model(ck)
    images = mnist.test_images[:5]
    np.testing.assert_array_equal(names["images"], images)
    np.testing.assert_array_equal(names["labels"], model.predict(images))
    np.testing.assert_allclose(names["probabilities"], model.predict_proba(images), atol=TOL)


def test_float_features_take_a_float32_input(mnist):
    # real MNIST pixels as standardized float features (N, 784): what a scikit-learn user has
    import fastmlp.data

    if not hasattr(fastmlp.data, "feature_transform"):
        pytest.skip("float features arrive with issue 33a (fastmlp.data.feature_transform)")

    def features(images):
        x = images.reshape(len(images), -1).astype(np.float64) / 255
        return ((x - 0.13) / 0.31).astype(np.float32)

    data = Data.from_arrays(features(mnist.train_images[:3000]), mnist.train_labels[:3000],
                            features(mnist.test_images[:1000]), mnist.test_labels[:1000])
    model = tiny(data, activation="gelu", hidden=(24, 16))
    assert model.transform.inputs == "features"
    proto = export_onnx(model)
    (inp,) = proto.graph.input
    assert inp.name == "features" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    x = features(mnist.test_images)
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    label, probs = session.run(None, {"features": x})
    np.testing.assert_array_equal(label, model.predict(x))
    np.testing.assert_allclose(probs, model.predict_proba(x), rtol=0, atol=TOL)
