"""Ensembles: several saved models as one (the mean of their probabilities), through the API,
evaluate and predict. Checked against the members' own probabilities averaged in float64."""

import json

import numpy as np
import pytest
import synthetic
from synthetic import TINY, cli, one_line

from fastmlp import Ensemble, load_model
from fastmlp.errors import ConfigError
from fastmlp.evaluate import main as evaluate_main
from fastmlp.predict import main as predict_main
from fastmlp.train import main as train_main


@pytest.fixture(scope="module")
def members(mnist_slice_dir, tmp_path_factory):
    """Three checkpoints of real MNIST (a slice of the training set; seeds 0, 1, 2, the third
    cropped), trained briefly, so that they disagree on some images."""
    from fastmlp.cli import run_main

    out = tmp_path_factory.mktemp("members")
    paths = []
    for seed, extra in ((0, []), (1, []), (2, ["--crop", "1"])):
        path = out / f"m{seed}.npz"
        assert run_main(train_main, ["--data-dir", str(mnist_slice_dir), "--epochs", "1",
                                     "--seed", str(seed), "--save", str(path), *TINY,
                                     *extra]) == 0
        paths.append(path)
    return paths


def test_an_ensemble_is_the_mean_of_its_members_probabilities(members, mnist):
    models = [load_model(p)[0] for p in members]
    images, labels = mnist.test_images[:2000], mnist.test_labels[:2000]
    want = np.mean([m.predict_proba(images).astype(np.float64) for m in models], axis=0)
    ens = Ensemble(models)
    got = ens.predict_proba(images)
    assert got.dtype == np.float32 and got.shape == (2000, 10)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert np.array_equal(ens.predict(images), np.argmax(want, axis=1))
    assert ens.accuracy(images, labels) == np.mean(np.argmax(want, axis=1) == labels)
    single = [m.predict(images) for m in models]
    assert not np.array_equal(single[0], single[1])  # the members are not one model


def _model_of_other_data(tmp_path, capsys, k, shape):
    """``(data folder, checkpoint)``: a learnable synthetic set of ``k`` classes of ``shape``
    images, and a model trained on it for an epoch."""
    other = tmp_path / "other"
    synthetic.write_idx_dir(other, k=k, shape=shape)
    ck = tmp_path / "other.npz"
    assert cli(train_main, ["--data-dir", str(other), "--epochs", "1", "--save", str(ck), *TINY],
               capsys)[0] == 0
    return other, ck


def test_models_of_other_images_or_classes_do_not_combine(members, tmp_path, capsys):
    other, ck = _model_of_other_data(tmp_path, capsys, k=4, shape=(6, 6))
    with pytest.raises(ConfigError, match="same images and classes"):  # 28x28 vs 6x6
        Ensemble([load_model(members[0])[0], load_model(ck)[0]])
    with pytest.raises(ConfigError):
        Ensemble([])
    code, _, err = cli(evaluate_main, [str(members[0]), str(ck), "--data-dir", str(other)],
                       capsys)
    assert code == 2 and one_line(err) and "same images and classes" in err, err


def test_evaluate_reports_each_model_and_their_ensemble(members, capsys):
    code, out, err = cli(evaluate_main, [str(m) for m in members], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("data: ") and "validation" in lines[1]
    rows = {" ".join(line.split()[:-4]): line.split()[-4:] for line in lines[3:]}
    models = [load_model(p)[0] for p in members]
    from fastmlp.data import load_dataset, split

    cfg = load_model(members[0])[1]["config"]
    sp = split(load_dataset(cfg["dataset"], data_dir=cfg["data_dir"]), mode=cfg["split"])
    for name, m in [*zip(map(str, members), models), ("ensemble of 3", Ensemble(models))]:
        want = f"{100 * m.accuracy(sp.test_x, sp.test_y):.2f}%"
        assert rows[name][1] == want, (name, rows[name], want)


def test_evaluate_refuses_models_trained_on_other_data(members, tmp_path, capsys):
    other, ck = _model_of_other_data(tmp_path, capsys, k=10, shape=(28, 28))  # MNIST's shape
    code, _, err = cli(evaluate_main, [str(members[0]), str(ck)], capsys)
    assert code == 2 and one_line(err) and "other data" in err and "data_dir" in err, err
    code, out, err = cli(evaluate_main, [str(members[0]), str(ck), "--data-dir", str(other)],
                         capsys)
    assert code == 0 and "ensemble of 2" in out, err


def test_predict_with_several_models_prints_the_ensembles_class(members, tmp_path, capsys):
    from fastmlp.data import write_idx

    images = synthetic.learnable(20, k=10, shape=(28, 28), seed=9)[0]
    idx = tmp_path / "imgs.idx"
    write_idx(idx, images)
    code, out, err = cli(predict_main, [*map(str, members), str(idx), "--probs"], capsys)
    assert code == 0, err
    want = Ensemble([load_model(p)[0] for p in members]).predict_proba(images)
    got = [line.split() for line in out.splitlines()]
    assert [int(g[0]) for g in got] == list(np.argmax(want, axis=1))
    np.testing.assert_allclose([[float(v) for v in g[1:]] for g in got], want, atol=6e-4)


def test_a_sweep_scores_each_configurations_seeds_as_an_ensemble(mnist_slice_dir, tmp_path,
                                                                  capsys):
    from fastmlp.sweep.api import model_path
    from fastmlp.sweep.command import main as sweep_main

    out = tmp_path / "sweep"
    code, _, err = cli(sweep_main, ["--data-dir", str(mnist_slice_dir), "--hidden", "8",
                                    "--epochs", "1", "--batch-ramp", "0", "--grid",
                                    "seed=0,1,2", "--grid", "dropout=0,0.1", "--workers", "0",
                                    "--ensemble", "--no-plots", "--out", str(out), "--quiet"],
                       capsys)
    assert code == 0, err
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    summary = (out / "summary.md").read_text().splitlines()
    assert "ens. test full %" in summary[0]
    head = [c.strip() for c in summary[0].strip("|").split("|")]
    from fastmlp.data import load_dataset, split

    sp = split(load_dataset("mnist", data_dir=str(mnist_slice_dir)), mode="book")
    for dropout in (0.0, 0.1):
        ids = [r["id"] for r in records if r["config"]["dropout"] == dropout]
        assert len(ids) == 3
        ens = Ensemble([load_model(model_path(str(out), i))[0] for i in ids])
        want = f"{100 * ens.accuracy(sp.test_full_x, sp.test_full_y):.2f}"
        row = next(line for line in summary[2:]
                   if line.split("|")[1].strip() == ("0" if dropout == 0 else "0.1"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[head.index("ensemble of")] == "3"
        assert cells[head.index("ens. test full %")] == want, (cells, want)
