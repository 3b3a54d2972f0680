"""``python -m fastmlp.evaluate MODEL [MODEL ...]``: accuracies of saved models on their data
set, and of their ensemble.

The data is the checkpoint's own data set unless ``--dataset`` or ``--data-dir`` names another;
the first line says which data was used. Several models are evaluated each on its own and as an
ensemble (the mean of their probabilities, :class:`~fastmlp.model.Ensemble`); they must take the
same images and classes and, unless the flags name the data, name the same data and split. A
model trained with a user activation needs it named again (``--activation myacts:SWISH``):
loading a checkpoint never imports anything it names.
"""

import sys

from .cli import ACTIVATION_HELP, ArgumentParser, run_main

_DATA_KEYS = ("dataset", "data_dir", "split", "seed")


def main(argv=None):
    from .config import TrainConfig
    from .data import DATASETS, SPLIT_MODES, load_dataset, split
    from .model import Ensemble
    from .training.checkpoint import load_model

    p = ArgumentParser(prog="python -m fastmlp.evaluate",
                       description="Report the accuracies of saved models (checkpoints written "
                                   "by --save), and of their ensemble when several are given.")
    p.add_argument("model", nargs="+", help="checkpoint file(s) (.npz); several: each, and "
                                            "the mean of their probabilities")
    p.add_argument("--dataset", help=f"data set to evaluate on: {', '.join(DATASETS)}, or any "
                                     "name with --data-dir (default: the model's)")
    p.add_argument("--data-dir", help="a directory holding the four IDX files (default: the "
                                      "model's, unless --dataset is given)")
    p.add_argument("--split", choices=SPLIT_MODES,
                   help="how the test images are halved (default: the model's)")
    p.add_argument("--activation", help=ACTIVATION_HELP)
    args = p.parse_args(argv)
    named = args.dataset is not None or args.data_dir is not None
    models, cfgs = [], []
    for path in args.model:
        model, meta = load_model(path, activation=args.activation)
        cfg = meta.get("config") if isinstance(meta.get("config"), dict) else {}
        cfg = {**TrainConfig().to_dict(), **cfg}  # an older checkpoint's missing settings
        _check_data_settings(cfg, path, SPLIT_MODES, named=named,
                             split_given=args.split is not None)
        models.append(model)
        cfgs.append(cfg)
    ensemble = Ensemble(models) if len(models) > 1 else None
    cfg = cfgs[0]
    _check_same_data(args, cfgs)
    if named:  # the data asked for, only
        name, data_dir = args.dataset or cfg["dataset"], args.data_dir
    else:
        name, data_dir = cfg["dataset"], cfg["data_dir"]
    ds = load_dataset(name, data_dir=data_dir)
    sp = split(ds, mode=args.split or cfg["split"], seed=cfg["seed"])
    print(f"data: {ds.name} from {ds.source} ({sp.mode} split), {models[0].sizes[-1]} classes")
    for model in models:
        _check_fits(model, ds, "--dataset/--data-dir: " if named
                    else "the data the checkpoint names: ")
    parts = (("validation", sp.val_x, sp.val_y), ("test", sp.test_x, sp.test_y),
             ("test (all)", sp.test_full_x, sp.test_full_y), ("train", sp.train_x, sp.train_y))
    if ensemble is None:
        for label, x, y in parts:
            print(f"{label:11s} accuracy: {100 * models[0].accuracy(x, y):.2f}%  "
                  f"({len(x)} images)")
        return 0
    _print_table(args.model, models, ensemble, parts)
    return 0


def _check_same_data(args, cfgs):
    """Several models evaluated on one data set: each must name it (and its split, and the
    seed when the split is the seeded stratified one) as the first does, unless the flags name
    the data (and the split) for all of them."""
    from .errors import ConfigError

    keys = [k for k in _DATA_KEYS
            if not ((args.dataset is not None or args.data_dir is not None)
                    and k in ("dataset", "data_dir"))
            and not (args.split is not None and k == "split")
            and not (k == "seed" and (args.split or cfgs[0]["split"]) != "stratified")]
    for path, cfg in zip(args.model[1:], cfgs[1:]):
        differ = [k for k in keys if cfg[k] != cfgs[0][k]]
        if differ:
            raise ConfigError(f"{path} was trained on other data than {args.model[0]} ("
                              + ", ".join(f"{k} {cfg[k]!r} vs {cfgs[0][k]!r}" for k in differ)
                              + "); name the data for all with --dataset/--data-dir and --split")


def _print_table(paths, models, ensemble, parts):
    """Each model's accuracies, a row each, then the ensemble's."""
    width = max(len(str(p)) for p in [*paths, f"ensemble of {len(models)}"])
    print(f"{'':{width}s}  " + "  ".join(f"{label:>10s}" for label, _, _ in parts))
    print(f"{'(images)':{width}s}  " + "  ".join(f"{len(x):>10d}" for _, x, _ in parts))
    for name, m in [*zip(paths, models), (f"ensemble of {len(models)}", ensemble)]:
        print(f"{str(name):{width}s}  "
              + "  ".join(f"{100 * m.accuracy(x, y):>9.2f}%" for _, x, y in parts))


def _check_data_settings(cfg, path, split_modes, named, split_given):
    """The checkpoint's settings evaluate reads (which data, unless ``named`` by the flags; how
    it is split, unless ``split_given``) are of their kind, or a one-line error naming the
    setting."""
    from .errors import CheckpointError

    kinds = {"dataset": lambda v: isinstance(v, str) and v != "",
             "data_dir": lambda v: v is None or (isinstance(v, str) and v != ""),
             "split": lambda v: v in split_modes,
             "seed": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0}
    skip = ({"dataset", "data_dir"} if named else set()) | ({"split"} if split_given else set())
    for key, ok in kinds.items():
        if key not in skip and not ok(cfg[key]):
            raise CheckpointError(f"checkpoint {path} has a malformed setting {key} = "
                                  f"{str(cfg[key])[:40]!r}; use another checkpoint, or name the "
                                  "data with --dataset/--data-dir and --split")


def _check_fits(model, ds, whose):
    """The data's image size and classes must be the model's (``whose``: which data, the
    flags' or the checkpoint's)."""
    from .errors import DataError

    want = tuple(model.transform.image_shape)
    if tuple(ds.image_shape) != want:
        raise DataError(f"{whose}{ds.name} from {ds.source} holds "
                        f"{ds.image_shape[0]}x{ds.image_shape[1]} images, the model was trained "
                        f"on {want[0]}x{want[1]}; evaluate it on data of that size")
    if ds.n_classes > model.sizes[-1]:
        raise DataError(f"{whose}{ds.name} from {ds.source} has {ds.n_classes} "
                        f"classes, the model {model.sizes[-1]}; evaluate it on its own classes")


if __name__ == "__main__":
    sys.exit(run_main(main))
