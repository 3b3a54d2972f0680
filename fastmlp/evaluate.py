"""``python -m fastmlp.evaluate MODEL``: accuracies of a saved model on its data set."""

import argparse
import sys

from .cli import run_main


def main(argv=None):
    from .data import load_dataset, split
    from .trainer import load_model

    p = argparse.ArgumentParser(prog="python -m fastmlp.evaluate",
                                description="Report the accuracies of a saved model (a "
                                            "checkpoint written by --save).")
    p.add_argument("model", help="checkpoint file (.npz)")
    p.add_argument("--dataset", help="data set to evaluate on (default: the model's)")
    p.add_argument("--data-dir", help="a directory holding the four IDX files")
    p.add_argument("--split", choices=["book", "stratified"],
                   help="how the test images are halved (default: the model's)")
    args = p.parse_args(argv)
    model, meta = load_model(args.model)
    cfg = meta.get("config", {})
    ds = load_dataset(args.dataset or cfg.get("dataset", "mnist"),
                      data_dir=args.data_dir or cfg.get("data_dir"))
    sp = split(ds, mode=args.split or cfg.get("split", "book"), seed=cfg.get("seed", 0))
    for label, x, y in (("validation", sp.val_x, sp.val_y), ("test", sp.test_x, sp.test_y),
                        ("test (all)", sp.test_full_x, sp.test_full_y),
                        ("train", sp.train_x, sp.train_y)):
        print(f"{label:11s} accuracy: {100 * model.accuracy(x, y):.2f}%  ({len(x)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
