"""fastmlp.MLPClassifier against scikit-learn's MLPClassifier (issue 33's benchmark; not a test).

    python benchmarks/sklearn_fit.py                  # both configurations, 3 repeats
    python benchmarks/sklearn_fit.py --repeats 5 --configs adam
    python benchmarks/sklearn_fit.py --quick          # 6,000 images, 1 repeat: checks the script
    python benchmarks/sklearn_fit.py --startup        # what float features cost to compile

``fit`` on MNIST's 60,000 training images as float32 features (pixels / 255, shape (60000,
784)) with the same parameters for both estimators, each fit in a fresh process (a user's
script: import, load, fit), the two interleaved over the repeats. Two configurations, as the
issue measured scikit-learn: ``momentum``, 784-100-10 ReLU, SGD with Nesterov momentum 0.9,
learning rate 0.1, batch 128, 5 epochs; ``adam``, scikit-learn's defaults (Adam, learning rate
0.001, batch 200, alpha 1e-4) for 20 epochs. ``tol=0`` and ``n_iter_no_change=max_iter``:
every fit runs all its epochs (validated: ``n_iter_`` equals them).

Validated before anything is reported: each fit ran every epoch, its accuracy on MNIST's
10,000 test images is at least 0.95, and fastmlp's is within 1 point of scikit-learn's (the
same accuracy within noise: two seeds of one estimator differ by a few tenths of a point).
Numba's cache is filled by an untimed fastmlp child first, so the timed fits load the compiled
loop from the cache, as every run but a user's very first does. Reported: the median fit
seconds (and the range) of each, their ratio, the median test accuracies, the CPU. Run it under
the machine's exclusive lock (``flock -x /work/cpu.lock python benchmarks/sklearn_fit.py``).
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

CONFIGS = {
    "momentum": dict(hidden_layer_sizes=(100,), solver="sgd", momentum=0.9,
                     nesterovs_momentum=True, learning_rate_init=0.1, batch_size=128,
                     max_iter=5),
    "adam": dict(hidden_layer_sizes=(100,), max_iter=20),
}
FRAMEWORKS = ("fastmlp", "sklearn")
MIN_ACCURACY = 0.95
MAX_GAP = 0.01


def child(framework, config, n_train, seed, inputs):
    """One fit in this (fresh) process on ``inputs`` (float32 or float64 pixels / 255, or the
    uint8 images flattened); prints its JSON record."""
    import numpy as np

    from fastmlp.data import BUNDLED_MNIST_DIR, load_dataset

    ds = load_dataset("mnist", data_dir=BUNDLED_MNIST_DIR)

    def rows(images):
        flat = images.reshape(len(images), -1)
        return flat if inputs == "uint8" else (flat / 255).astype(inputs)

    X, X_test = rows(ds.train_images[:n_train]), rows(ds.test_images)
    if framework == "fastmlp":
        from fastmlp import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier
    params = dict(CONFIGS[config], random_state=seed, tol=0.0,
                  n_iter_no_change=CONFIGS[config]["max_iter"])
    model = MLPClassifier(**params)
    t0 = time.perf_counter()
    model.fit(X, ds.train_labels[:n_train])
    seconds = time.perf_counter() - t0
    print(json.dumps(dict(framework=framework, config=config, seed=seed, seconds=seconds,
                          inputs=str(X.dtype),
                          n_iter=int(model.n_iter_),
                          accuracy=float(model.score(X_test, ds.test_labels)))))


STARTUP = """
import json, sys, time
import numpy as np
from fastmlp import Data, TrainConfig, train
from fastmlp.data import BUNDLED_MNIST_DIR, load_dataset
ds = load_dataset("mnist", data_dir=BUNDLED_MNIST_DIR)
x, y = ds.train_images[:2000], ds.train_labels[:2000]
tx, ty = ds.test_images[:500], ds.test_labels[:500]
if sys.argv[1] == "features":
    x, tx = (a.reshape(len(a), -1) / np.float32(255) for a in (x, tx))
data = Data.from_arrays(x, y, tx, ty)
s = train(TrainConfig(hidden=(100,), epochs=1, dropout=0.0), data=data).summary
print(json.dumps(dict(inputs=sys.argv[1], compile_seconds=s["compile_seconds"],
                      input_path=s["input_path"])))
"""


def startup():
    """Compile seconds of a run's loop in fresh processes sharing one empty Numba cache: images
    (cold: everything compiles), then features (its own specialisations of the training and
    evaluation workers and of the gather; the pieces they share with images load from the
    cache), then each again (warm: loaded from the cache)."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label, inputs in (("cold", "images"), ("first", "features"),
                              ("warm", "images"), ("warm", "features")):
            out = subprocess.run([sys.executable, "-c", STARTUP, inputs], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            rec = json.loads(out)
            print(f"  {label:5s} {inputs:8s} ({rec['input_path']}): compile/cache "
                  f"{rec['compile_seconds']:.2f} s")


def run_child(framework, config, n_train, seed, inputs="float32"):
    out = subprocess.run([sys.executable, __file__, "--child", framework, config, str(n_train),
                          str(seed), inputs], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    p.add_argument("--quick", action="store_true", help="6,000 images, one repeat")
    p.add_argument("--startup", action="store_true",
                   help="only the compile time of float features next to images")
    p.add_argument("--sklearn-input", choices=("float32", "float64"), default="float32",
                   help="float64: what X / 255 gives a user (scikit-learn then trains in "
                   "float64)")
    p.add_argument("--fastmlp-input", choices=("float32", "uint8"), default="float32",
                   help="uint8: the images as they are (fastmlp's image paths)")
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        framework, config, n, seed, inputs = args.child
        return child(framework, config, int(n), int(seed), inputs)
    if args.startup:
        print(f"CPU: {cpu_name()}; compile seconds as each run's summary counts them")
        return startup()
    n_train = 6000 if args.quick else 60000
    repeats = 1 if args.quick else args.repeats
    import os

    inputs = {"fastmlp": args.fastmlp_input, "sklearn": args.sklearn_input}
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; {n_train:,} training images, inputs "
          f"{inputs}; {repeats} repeat(s), each fit in a fresh process")
    run_child("fastmlp", args.configs[0], 1000, 0, args.fastmlp_input)  # fills Numba's cache
    for config in args.configs:
        rows = {f: [] for f in FRAMEWORKS}
        for r in range(repeats):
            for f in FRAMEWORKS:  # interleaved
                rows[f].append(run_child(f, config, n_train, r, inputs[f]))
        epochs = CONFIGS[config]["max_iter"]
        for f in FRAMEWORKS:  # validate before reporting
            for rec in rows[f]:
                assert rec["n_iter"] == epochs, (f, rec)
                if not args.quick:
                    assert rec["accuracy"] >= MIN_ACCURACY, (f, rec)
        acc = {f: statistics.median(r["accuracy"] for r in rows[f]) for f in FRAMEWORKS}
        if not args.quick:
            assert abs(acc["fastmlp"] - acc["sklearn"]) <= MAX_GAP, acc
        sec = {f: [r["seconds"] for r in rows[f]] for f in FRAMEWORKS}
        med = {f: statistics.median(s) for f, s in sec.items()}
        print(f"\n{config}: {json.dumps(CONFIGS[config])}")
        for f in FRAMEWORKS:
            print(f"  {f:8s} {inputs[f]:8s} fit {med[f]:7.2f} s (range {min(sec[f]):.2f}-"
                  f"{max(sec[f]):.2f}), test accuracy {acc[f]:.4f}")
        print(f"  fastmlp is {med['sklearn'] / med['fastmlp']:.1f}x faster")


if __name__ == "__main__":
    main()
