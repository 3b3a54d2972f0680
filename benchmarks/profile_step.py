"""Where a training step's time goes: each phase of fastmlp's step timed alone, on one thread.

    python benchmarks/profile_step.py [--sizes 784-100-10] [--batch 32 128 600] [--repeats 300]

For each batch size: plain SGD on sigmoid as in ``runners.CONFIGS`` (the path the trainer picks,
sparse or dense), one thread. The phases are the engine's own compiled functions, called through
a small jitted driver each (they have no Python entry point), from Python in a loop on real
MNIST batches (so the figures include one Python call each, ~1 us):

    gather       uint8 rows -> the float batch (dense path only; the sparse path reads in place)
    phase 1      forward, loss and every layer's output gradient for all rows (_rows_forward,
                 _rows_loss_backward)
    phase 2      every layer's weight and bias update (_update_block, one thread owning all)
    step         one whole step inside the compiled loop (loop.calls.train_steps, 1 thread and T)

Medians of ``--repeats`` calls after a warm-up. A profile, not a benchmark: compare.py's
interleaved fresh processes are what the README quotes.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import runners as R  # noqa: E402

from fastmlp.loop import calls, steps  # noqa: E402


def median_us(fn, repeats):
    for _ in range(10):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e6 * statistics.median(times)


# the two phases of a step, one thread owning all rows (loop/steps.py's pieces have no Python entry
# point: only compiled code calls them). The integers come in as arguments: a constant would
# make Numba compile a copy typed on its value, not the training loop's
@numba.njit
def _phase1(ws, params, layout, zero, batch, hp, src):
    last = steps._rows_forward(ws, params, layout, zero, batch, hp, zero, zero, src)
    steps._rows_loss_backward(ws, params, layout, last, zero, batch, batch, hp)


@numba.njit
def _phase2(ws, params, layout, zero, one, batch, rows, hp, lr, ptr, cidx, cval, scale):
    steps._update_block(zero, one, ws, params, layout, batch, rows, hp, lr, one, ptr, cidx,
                        cval, scale)


def profile(sizes, batch, repeats, threads):
    from fastmlp import kernels as K
    from fastmlp.data import load_dataset

    ds = load_dataset("mnist")
    X = np.ascontiguousarray(ds.train_images.reshape(len(ds.train_images), -1))
    y = ds.train_labels.astype(np.int64)
    cfg = R.Config("profile", sizes, batch, 0.5, 0.0)
    run = R.FastmlpRunner(cfg, R.initial_params(sizes), X, y)
    model, ws, hp = run.model, run.ws, run.hp._replace(threads=1)
    idx, scale, shift = run.transform
    order = R.epoch_order(len(X), 0)
    rows = order[:batch]
    ws.y[:batch] = y[rows]
    ptr, cidx, cval = run.csr
    src = (rows, ptr, cidx, cval, scale, 1.0)
    out = {"path": "sparse" if hp.sparse else "dense"}
    xview = ws.x[:batch]
    if not hp.sparse:
        out["gather"] = median_us(lambda: K._gather_batch(xview, X, rows, idx, scale, shift),
                                  repeats)
        K._gather_batch(xview, X, rows, idx, scale, shift)
    out["phase 1"] = median_us(
        lambda: _phase1(ws, model.params, model.layout, 0, batch, hp, src), repeats)
    snapshot = model.params.copy()
    out["phase 2"] = median_us(lambda: _phase2(
        ws, model.params, model.layout, 0, 1, batch, rows, hp, 1e-9, ptr, cidx, cval, scale),
        repeats)
    model.params[:] = snapshot
    lrs = np.full(len(X) // batch + 1, 1e-9)
    n = max(1, min(len(X) // batch, 4 * repeats))
    for T in sorted({1, threads}):
        hp_t = run.hp._replace(threads=T)
        calls.train_steps(model, ws, hp_t, X, y, order, run.transform, batch, 0, 20, lrs, 0, 0,
                          csr=run.csr)
        t = time.perf_counter()
        calls.train_steps(model, ws, hp_t, X, y, order, run.transform, batch, 0, n, lrs, 0, 0,
                          csr=run.csr)
        out[f"step ({T} thread{'s' if T > 1 else ''})"] = 1e6 * (time.perf_counter() - t) / n
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="784-100-10")
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128, 600])
    p.add_argument("--repeats", type=int, default=300)
    p.add_argument("--threads", type=int, default=2, help="threads for the last 'step' row")
    args = p.parse_args(argv)
    R.set_threads("fastmlp", 1)
    sizes = tuple(int(s) for s in args.sizes.split("-"))
    for batch in args.batch:
        res = profile(sizes, batch, args.repeats, args.threads)
        path = res.pop("path")
        cells = "  ".join(f"{k} {v:8.1f} us" for k, v in res.items())
        print(f"{args.sizes} b{batch} ({path}): {cells}")
        for k, v in res.items():
            if k.startswith("step"):
                print(f"    {k}: {batch / v * 1e6 / 1000:.0f}k samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
