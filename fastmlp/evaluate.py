"""``python -m fastmlp.evaluate MODEL``: accuracies of a saved model on its data set.

The data is the checkpoint's own data set unless ``--dataset`` or ``--data-dir`` names another;
the first line says which data was used. A model trained with a user activation needs it named
again (``--activation myacts:SWISH``): loading a checkpoint never imports anything it names.
"""

import sys

from .cli import ACTIVATION_HELP, ArgumentParser, run_main


def main(argv=None):
    from .config import TrainConfig
    from .data import DATASETS, SPLIT_MODES, load_dataset, split
    from .training.checkpoint import load_model

    p = ArgumentParser(prog="python -m fastmlp.evaluate",
                       description="Report the accuracies of a saved model (a checkpoint "
                                   "written by --save).")
    p.add_argument("model", help="checkpoint file (.npz)")
    p.add_argument("--dataset", help=f"data set to evaluate on: {', '.join(DATASETS)}, or any "
                                     "name with --data-dir (default: the model's)")
    p.add_argument("--data-dir", help="a directory holding the four IDX files (default: the "
                                      "model's, unless --dataset is given)")
    p.add_argument("--split", choices=SPLIT_MODES,
                   help="how the test images are halved (default: the model's)")
    p.add_argument("--activation", help=ACTIVATION_HELP)
    args = p.parse_args(argv)
    model, meta = load_model(args.model, activation=args.activation)
    cfg = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    cfg = {**TrainConfig().to_dict(), **cfg}  # an older checkpoint's missing settings
    _check_data_settings(cfg, args.model, SPLIT_MODES,
                         named=args.dataset is not None or args.data_dir is not None,
                         split_given=args.split is not None)
    if args.dataset is not None or args.data_dir is not None:  # the data asked for, only
        name, data_dir = args.dataset or cfg["dataset"], args.data_dir
    else:
        name, data_dir = cfg["dataset"], cfg["data_dir"]
    ds = load_dataset(name, data_dir=data_dir)
    seed = cfg["seed"]
    sp = split(ds, mode=args.split or cfg["split"], seed=seed)
    print(f"data: {ds.name} from {ds.source} ({sp.mode} split), {model.sizes[-1]} classes")
    _check_fits(model, ds, "--dataset/--data-dir: " if args.dataset is not None
                or args.data_dir is not None else "the data the checkpoint names: ")
    for label, x, y in (("validation", sp.val_x, sp.val_y), ("test", sp.test_x, sp.test_y),
                        ("test (all)", sp.test_full_x, sp.test_full_y),
                        ("train", sp.train_x, sp.train_y)):
        print(f"{label:11s} accuracy: {100 * model.accuracy(x, y):.2f}%  ({len(x)} images)")
    return 0


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
