"""Committees of a sweep's saved models: the mean of their probabilities on all 10,000 MNIST
test images, and the run time they took together.

    python benchmarks/sweeps/ensemble.py OUT [--sizes 2,3]

OUT is a sweep's folder whose runs kept their weights (``python -m fastmlp.sweep ...
--save-models``, or ``benchmarks/sweeps/locked.py FILE -- --save-models``). The runs are grouped
by configuration (all settings but the seed); for each group and each committee size n, the
committees are the group's first n seeds, n consecutive seeds at a time (seeds 0-1, 1-2 for
n = 2 of three), so every member is a separate run. Each line: the members' accuracies, the
committee's accuracy, and the sum of the members' run times (train() wall time less the
one-off compilation, as the report counts it): a committee's budget is that sum, the members
being trained one after another on the same machine.

This is a search tool: the command-line ensemble (evaluate/predict/sweep) is the lead's.
"""

import argparse
import json
import os
import statistics

import numpy as np

import fastmlp
from fastmlp.data import load_dataset


def _runs(out):
    runs = []
    with open(os.path.join(out, "results.jsonl")) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash
            path = os.path.join(out, "models", rec["id"] + ".npz")
            if rec.get("error") or not os.path.exists(path):
                continue
            runs.append((rec, path))
    return runs


def _key(config):
    return json.dumps({k: v for k, v in config.items() if k not in ("seed",)}, sort_keys=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--sizes", default="2,3", help="committee sizes (default 2,3)")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    ds = load_dataset("mnist")
    images, labels = ds.test_images, ds.test_labels.astype(np.int64)
    groups = {}
    for rec, path in _runs(args.out):
        groups.setdefault(_key(rec["config"]), []).append((rec, path))
    for key, members in groups.items():
        members.sort(key=lambda m: m[0]["config"]["seed"])
        probs, accs, secs, seeds = [], [], [], []
        for rec, path in members:
            model, _ = fastmlp.load_model(path)
            pr = model.predict_proba(images).astype(np.float64)
            probs.append(pr)
            accs.append(float((pr.argmax(axis=1) == labels).mean()))
            s = rec["summary"]
            secs.append(s["wall_seconds"] - s["compile_seconds"])
            seeds.append(rec["config"]["seed"])
        changes = {k: v for k, v in json.loads(key).items() if k in (
            "hidden", "epochs", "max_norm", "label_smoothing", "dropout", "dropout_input", "lr",
            "batch_size", "momentum_final")}
        print(f"{json.dumps(changes)}: seeds {seeds}, single models "
              f"{', '.join(f'{100 * a:.2f}%' for a in accs)} (median "
              f"{100 * statistics.median(accs):.2f}%), run time "
              f"{', '.join(f'{t:.0f}' for t in secs)} s")
        for n in sizes:
            if n > len(members):
                continue
            results = []
            for i in range(len(members) - n + 1):
                mean = np.mean(probs[i:i + n], axis=0)
                acc = float((mean.argmax(axis=1) == labels).mean())
                results.append(acc)
                print(f"  committee of {n}, seeds {seeds[i:i + n]}: {100 * acc:.2f}% on all "
                      f"10,000 in {sum(secs[i:i + n]):.0f} s of run time")
            print(f"  committees of {n}: median {100 * statistics.median(results):.2f}%")


if __name__ == "__main__":
    main()
