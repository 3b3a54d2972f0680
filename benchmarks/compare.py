"""fastmlp vs JAX vs PyTorch vs plain NumPy: training throughput, peak memory, start-up time.

    python benchmarks/compare.py [--threads 2] [--repeats 5] [--configs NAME ...] [--markdown]

For every configuration (see ``runners.CONFIGS``) and every repeat, each framework (fastmlp as
its trainer runs it, the same at one thread, fastmlp with its dense first layer forced, NumPy,
torch, and jax: one jitted ``lax.scan`` program per epoch, see ``jax_mlp.py``) trains in a fresh
child process, round-robin (A, B, C, D; then B, C, D, A; ...), so a slow minute on a shared
machine hits all of them, and one framework's threads, allocator and
peak memory never touch another's. Each child:

1. loads the same uint8 MNIST arrays (written once by the parent) and the same initial weights;
2. validates: one SGD step from the initial weights must match ``numpy_mlp.reference_step``
   (float64) to 1e-4 in the loss and in every parameter, else the child fails;
3. warms up (fastmlp and JAX have compiled, or loaded from Numba's cache, when their runner
   was made): trains one whole epoch by default (``--warmup-samples``, at most one epoch;
   wakes BLAS threads, touches every buffer), then resets the weights. A whole epoch, not a
   few steps: on the Zen 5 machine of 2026-12-02 (epochs of 0.1 s), after the 8,192 samples of
   warm-up used before, the 2-thread fastmlp children ran their first timed epoch at 0.55-0.87x
   the samples/s of their second in 8 of 9 runs (1-thread children and JAX did not); after a
   whole epoch, 0.77-1.07x in 6 runs. Issue 11's own figures were medians of epochs 2-3;
4. times ``--epochs`` full epochs of 60,000 samples, then checks the test accuracy on the
   10,000 test images clears the configuration's sanity bar;
5. reports samples/s, test accuracy and its peak RSS (VmHWM; see :func:`peak_rss_mb`).

The parent reports the median over repeats and the ratios. It also measures fastmlp's start-up
(from the parent spawning the process to the first training step finished: interpreter,
imports, loading MNIST, compiling or loading compiled code, one step) with an empty Numba cache
(cold) and a populated one (warm), and the peak RSS of ``python -m fastmlp.train --preset book
--epochs 1``. Thread counts are pinned in every child through the environment
(OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS) and in-process (fastmlp.threads.set_threads,
threadpoolctl, torch.set_num_threads); every other variable (OPENBLAS_CORETYPE, ...) is passed
through untouched.
"""

import time

_T_SCRIPT = time.monotonic()  # first thing: the start-up probe measures from process spawn

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _p in (str(BENCH_DIR), str(REPO_ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS")
DATA_FILES = ("train_x", "train_y", "test_x", "test_y")
WARMUP_SAMPLES = 60000  # trained and undone before the timed epochs: one MNIST epoch

# Instruction-set tiers (--tiers): every framework held, on this machine, to what an older CPU
# has, so the timings are an old laptop's code at this machine's clock. Each child of a tier
# gets its variables; what each framework really runs is checked in the child (isa_report).
# NUMBA_CPU_FEATURES must be set beside NUMBA_CPU_NAME: with the name alone Numba still passes
# the host's features to LLVM, and `nehalem` code came out with zmm registers (AVX-512).
# NumPy's own SIMD kernels (not its BLAS) are held by NPY_DISABLE_CPU_FEATURES (see tier_env).
TIERS = {
    "native": dict(label="this machine's own instruction set", env={}, last_numpy=None,
                   cannot={}),
    "avx2": dict(label="AVX2 tier: a 2013-2019 laptop (Haswell to Coffee Lake, Zen 1-2)",
                 env=dict(NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="",
                          OPENBLAS_CORETYPE="Haswell", ATEN_CPU_CAPABILITY="avx2",
                          ONEDNN_MAX_CPU_ISA="AVX2", MKL_ENABLE_INSTRUCTIONS="AVX2"),
                 xla_max_isa="AVX2", last_numpy=("X86_V3", "AVX2"), cannot={}),
    "sse42": dict(label="SSE4.2 tier: a 2008-2011 laptop (Nehalem, Westmere; no AVX)",
                  env=dict(NUMBA_CPU_NAME="nehalem", NUMBA_CPU_FEATURES="",
                           OPENBLAS_CORETYPE="Nehalem", ATEN_CPU_CAPABILITY="default",
                           ONEDNN_MAX_CPU_ISA="SSE41", MKL_ENABLE_INSTRUCTIONS="SSE4_2"),
                  last_numpy=("X86_V2", "SSE42"),
                  cannot={"jax": "jaxlib is built with AVX and refuses to start without it"},
                  # measured on the Zen 4 of 2026-12-05: torch's 512x1024x1024 sgemm on one
                  # thread ran 97 GFLOP/s with MKL_ENABLE_INSTRUCTIONS or MKL_CBWR at SSE4_2,
                  # AVX2 or unset (SSE without FMA peaks near 60 there)
                  unheld={"torch": "its GEMMs (MKL) are not held on an AMD CPU: MKL reads "
                                   "MKL_ENABLE_INSTRUCTIONS on Intel CPUs only; a real Nehalem "
                                   "would run them slower"}),
}


def _numpy_simd():
    """NumPy's SIMD targets: (its baseline, its dispatch list, which are on)."""
    try:
        from numpy._core import _multiarray_umath as m
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as m
    return m.__cpu_baseline__, m.__cpu_dispatch__, m.__cpu_features__


def tier_env(tier):
    """The variables of ``tier``'s children: the tier's own, XLA's max ISA added to XLA_FLAGS,
    and NPY_DISABLE_CPU_FEATURES naming every NumPy SIMD target above the tier (read from this
    NumPy's dispatch list, which is in ascending order)."""
    t = TIERS[tier]
    env = dict(t["env"])
    if t.get("xla_max_isa"):
        env["XLA_FLAGS"] = " ".join(os.environ.get("XLA_FLAGS", "").split() +
                                    [f"--xla_cpu_max_isa={t['xla_max_isa']}"])
    if t["last_numpy"]:
        targets = _numpy_simd()[1]
        last = max((targets.index(n) for n in t["last_numpy"] if n in targets), default=-1)
        above = targets[last + 1:]
        if above:
            env["NPY_DISABLE_CPU_FEATURES"] = " ".join(above)
    return env

# VmHWM, not ru_maxrss (which survives fork+exec); fastmlp.memory imports no Numba, so a
# torch, jax or NumPy child measures only itself.
from fastmlp.memory import peak_rss_mb  # noqa: E402


# ---------------------------------------------------------------------------------------------
# Children
# ---------------------------------------------------------------------------------------------
def child_train(args):
    """Validate, warm up, time ``args.epochs`` epochs; write a JSON result to ``args.out``."""
    import numpy as np

    import runners as R

    t_imported = time.monotonic()
    data = {k: np.load(Path(args.data) / f"{k}.npy") for k in DATA_FILES}
    n = args.samples or len(data["train_x"])
    X, y = data["train_x"][:n], data["train_y"][:n]
    cfg = R.CONFIGS[args.config]
    R.set_threads(args.framework, args.threads)
    runner = R.make_runner(args.framework, cfg, R.initial_params(cfg.sizes), X, y)

    t0 = time.monotonic()
    check = R.validate_first_step(runner, X, y, R.epoch_order(n, 0))
    # the steps of min(warmup_samples, n) samples, the ragged last batch included: with the
    # default that is exactly one epoch, so JAX's warm-up runs the very program it times
    warm_steps = max(1, R.steps_in_epoch(min(args.warmup_samples, n), cfg.batch))
    runner.train_epoch(R.epoch_order(n, 0), n_steps=warm_steps)
    runner.reset()
    warmup_seconds = time.monotonic() - t0

    seconds, losses = [], []
    for e in range(args.epochs):
        order = R.epoch_order(n, e)
        t = time.perf_counter()
        loss, samples = runner.train_epoch(order, epoch=e)
        seconds.append(time.perf_counter() - t)
        if samples != n or not np.isfinite(loss):
            raise R.ValidationError(f"epoch {e}: {samples}/{n} samples, loss {loss}")
        losses.append(loss / samples)
    acc = runner.accuracy(data["test_x"], data["test_y"])
    bar = cfg.min_accuracy if n == 60000 else 0.0
    if not acc >= bar:
        raise R.ValidationError(f"{args.framework} {cfg.name}: test accuracy {acc:.4f} after "
                                f"{args.epochs} epoch(s) is below the sanity bar {bar}")
    result = dict(
        mode="train", framework=args.framework, config=cfg.name, threads=args.threads,
        samples=n, epochs=args.epochs, epoch_seconds=seconds,
        samples_per_second=n * len(seconds) / sum(seconds), train_loss=losses,
        test_accuracy=acc, check=check, warmup_seconds=warmup_seconds,
        import_seconds=t_imported - _T_SCRIPT, peak_rss_mb=peak_rss_mb())
    result["isa"] = isa_report(args.framework, worker_asm=args.worker_asm)
    if args.framework.startswith("fastmlp"):
        from fastmlp.threads import blas_info
        result["blas"] = blas_info()
        result["input_path"] = runner.input_path
    elif args.framework == "torch":
        import torch
        result["torch_threads"] = torch.get_num_threads()
    elif args.framework == "jax":
        result["compile_seconds"] = runner.compile_seconds
    _write_json(args.out, result)


def _asm_registers(asm):
    import re
    counts = {r: len(re.findall(rf"%{r}\d+", asm)) for r in ("zmm", "ymm", "xmm")}
    return ", ".join(f"{n} {r}" for r, n in counts.items())


def isa_report(framework, worker_asm=False):
    """What this process really runs, as one line: the OpenBLAS kernels threadpoolctl reports,
    NumPy's SIMD targets left on, and per framework Numba's LLVM target and the registers in
    code it compiles (the training worker itself when it was compiled in this process:
    ``worker_asm``, Numba cannot show cached code; else a small loop compiled with fastmlp's
    options), torch's ATen capability, XLA's max ISA flag."""
    import numpy as np
    from threadpoolctl import threadpool_info

    parts = [f"OpenBLAS {b['architecture']}" for b in threadpool_info()
             if b.get("internal_api") == "openblas"]
    baseline, dispatch, features = _numpy_simd()
    on = [t for t in dispatch if features.get(t)]
    parts.append(f"NumPy SIMD up to {on[-1] if on else baseline[-1] + ' (its baseline)'}")
    if framework.startswith("fastmlp"):
        from numba.core.registry import cpu_target

        from fastmlp._jit import jit_uncached
        codegen = cpu_target.target_context.codegen()
        feats = codegen._get_host_cpu_features().split(",")
        widest = next((f for f in ("avx512f", "avx2", "avx") if f"+{f}" in feats), "none")
        parts.append(f"Numba target {codegen._get_host_cpu_name()}" +
                     (f" with the host's features (widest: {widest})" if feats != [""] else ""))
        if worker_asm:
            from fastmlp.loop.steps import _train_worker
            asm = "".join(_train_worker.inspect_asm(sig) for sig in _train_worker.signatures)
            parts.append(f"training worker's asm: {_asm_registers(asm)}")
        else:
            def saxpy(y, a, x):
                for i in range(x.shape[0]):
                    y[i] += a * x[i]
            probe = jit_uncached(saxpy)
            x = np.ones(64, np.float32)
            probe(x, np.float32(2), x)
            parts.append("a compiled loop's asm: " +
                         _asm_registers(probe.inspect_asm(probe.signatures[0])))
    elif framework == "torch":
        import torch
        mkl = os.environ.get("MKL_ENABLE_INSTRUCTIONS", "not set")
        parts.append(f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}, "
                     f"MKL_ENABLE_INSTRUCTIONS {mkl} (which MKL reads on Intel CPUs only)")
    elif framework == "jax":
        isa = [f for f in os.environ.get("XLA_FLAGS", "").split() if "max_isa" in f]
        parts.append(f"XLA {isa[0] if isa else 'no max ISA'}")
    return "; ".join(parts)


def child_start(args):
    """fastmlp's start-up, as a user's script sees it: import, load MNIST, build a 784-100-10
    network with the trainer's input path, run one training step."""
    import numpy as np

    import fastmlp  # noqa: F401  (the package import a user pays)
    import runners as R
    from fastmlp.data import load_dataset
    from fastmlp.threads import set_threads

    t_import = time.monotonic()
    set_threads(args.threads)
    ds = load_dataset("mnist")
    X = np.ascontiguousarray(ds.train_images.reshape(len(ds.train_images), -1))
    y = ds.train_labels.astype(np.int64)
    t_data = time.monotonic()
    cfg = R.CONFIGS["784-100-10/b128"]
    runner = R.FastmlpRunner(cfg, R.initial_params(cfg.sizes), X, y)
    loss, samples = runner.train_epoch(np.arange(len(X), dtype=np.int64), n_steps=1)
    t_step = time.monotonic()
    if samples != cfg.batch or not np.isfinite(loss):
        raise SystemExit(f"start-up probe: bad first step (samples {samples}, loss {loss})")
    _write_json(args.out, dict(mode="start", t_script=_T_SCRIPT, t_import=t_import,
                               t_data=t_data, t_step=t_step, peak_rss_mb=peak_rss_mb(),
                               input_path=runner.input_path,
                               cache_dir=os.environ.get("NUMBA_CACHE_DIR")))


def _write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, default=float)


# ---------------------------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------------------------
class Child:
    """Runs ``compare.py --child ...`` in a fresh process and reads back its JSON."""

    def __init__(self, workdir, threads, env_extra=None):
        self.workdir = Path(workdir)
        self.env = dict(os.environ)
        for var in THREAD_VARS:
            self.env[var] = str(threads)
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT)] + ([self.env["PYTHONPATH"]] if self.env.get("PYTHONPATH") else []))
        self.env.update(env_extra or {})
        self.count = 0

    def run(self, argv, env_extra=None, timeout=3600):
        self.count += 1
        out = self.workdir / f"child-{self.count}.json"
        env = dict(self.env, **(env_extra or {}))
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--out", str(out)]
        t_spawn = time.monotonic()
        proc = subprocess.run(cmd, env=env, cwd=str(REPO_ROOT), capture_output=True, text=True,
                              timeout=timeout)
        t_exit = time.monotonic()
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            return dict(error=f"exit {proc.returncode}: {tail}", argv=argv)
        result = json.loads(out.read_text())
        result["t_spawn"], result["t_exit"] = t_spawn, t_exit
        return result


def prepare_data(workdir):
    """Write MNIST as .npy files every child loads (so NumPy/torch children never import
    fastmlp or Numba, which would inflate their memory)."""
    import numpy as np

    from fastmlp.data import load_dataset

    ds = load_dataset("mnist")
    arrays = dict(
        train_x=np.ascontiguousarray(ds.train_images.reshape(len(ds.train_images), -1)),
        train_y=ds.train_labels.astype(np.int64),
        test_x=np.ascontiguousarray(ds.test_images.reshape(len(ds.test_images), -1)),
        test_y=ds.test_labels.astype(np.int64))
    for k, a in arrays.items():
        np.save(Path(workdir) / f"{k}.npy", a)
    return Path(workdir)


def child_book(args):
    """``python -m fastmlp.train --preset book --epochs 1`` in this process, then its peak RSS."""
    import runpy

    metrics = Path(args.out).with_suffix(".metrics.json")
    sys.argv = ["fastmlp.train", "--preset", "book", "--epochs", "1", "--threads",
                str(args.threads), "--quiet", "--metrics-json", str(metrics)]
    t0 = time.monotonic()
    try:
        runpy.run_module("fastmlp.train", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    summary = json.loads(metrics.read_text())
    _write_json(args.out, dict(mode="book", peak_rss_mb=peak_rss_mb(),
                               wall_seconds=time.monotonic() - t0,
                               test_accuracy_full=summary.get("test_accuracy_full"),
                               compile_seconds=summary.get("compile_seconds"),
                               samples_per_second=summary.get("samples_per_second"),
                               fastmlp_reported_peak_rss_mb=summary.get("peak_rss_mb")))


def cpu_model():
    """The CPU as a reader can place it: the model name, on x86 Linux the family and model
    numbers and whether it has AVX-512, and LLVM's name for the host (what Numba compiles for
    unless NUMBA_CPU_NAME says otherwise: znver3, znver5, ...); the model name alone reads
    "AMD EPYC" on every Zen generation."""
    name, extra = platform.processor() or platform.machine(), []
    try:
        fields = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        name = fields.get("model name", name)
        if "cpu family" in fields:
            extra.append(f"family {fields['cpu family']} model {fields.get('model', '?')}")
        flags = fields.get("flags", "").split()
        if flags:
            extra.append("AVX-512" if "avx512f" in flags else
                         "AVX2, no AVX-512" if "avx2" in flags else "no AVX2")
    except OSError:
        pass
    try:
        import llvmlite.binding as llvm
        extra.append(f"LLVM host CPU {llvm.get_host_cpu_name()}")
    except Exception:  # pragma: no cover - llvmlite comes with Numba
        pass
    return f"{name} ({', '.join(extra)})" if extra else name


def blas_environment():
    """The OpenBLAS variables in this environment (passed through to every child): on the
    project's machines OPENBLAS_CORETYPE picks the kernels whatever the CPU is."""
    return " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                    if k.startswith("OPENBLAS_") and k != "OPENBLAS_NUM_THREADS") or "none set"


def versions():
    out = {"python": platform.python_version()}
    for pkg in ("numpy", "numba", "scipy", "torch", "jax", "jaxlib", "fastmlp"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    if out["fastmlp"] is None:
        import fastmlp
        out["fastmlp"] = fastmlp.__version__ + " (source tree)"
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "fastmlp"],
                               cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        out["commit"] = (rev or "no commit") + (" + uncommitted changes" if dirty else "")
    except OSError:
        out["commit"] = "unknown"
    return out


def _median(values):
    return statistics.median(values) if values else float("nan")


def _spread(values):
    # half the range, relative to the median: a rough "+-" for a handful of repeats
    if len(values) < 2:
        return float("nan")
    return (max(values) - min(values)) / 2 / statistics.median(values)


def summarise(results):
    """Per configuration and framework: median samples/s, spread, peak RSS, accuracy, check."""
    table = {}
    for r in results:
        if "error" in r:
            key = (r["config"], r["framework"])
            table.setdefault(key, {"rates": [], "rss": [], "acc": [], "checks": [],
                                   "errors": []})["errors"].append(r["error"])
            continue
        key = (r["config"], r["framework"])
        e = table.setdefault(key, {"rates": [], "rss": [], "acc": [], "checks": [], "errors": []})
        e["rates"].append(r["samples_per_second"])
        e["rss"].append(r["peak_rss_mb"])
        e["acc"].append(r["test_accuracy"])
        e["checks"].append(max(r["check"]["dloss"], r["check"]["dparams"]))
    return table


def _fmt_rate(v):
    return "-" if v != v else f"{v:,.0f}"


def render(rows, header, markdown):
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = lambda r: "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)  # noqa: E731
                              for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def report(meta, configs, frameworks, results, starts, book, markdown, stat="median"):
    table = summarise(results)
    pick = _median if stat == "median" else max  # "best": the fastest repeat
    out = []
    h = "## " if markdown else ""
    out.append(f"{h}fastmlp benchmark: {meta['date']}")
    out.append("")
    info = [("CPU", f"{meta['cpu']}, {meta['cores']} cores available"),
            ("threads", str(meta["threads"])),
            ("repeats", f"{meta['repeats']} ({'median' if stat == 'median' else 'fastest'} "
                        "repeat shown; +-: half the range relative to the median), "
                        f"{meta['epochs']} timed epoch(s) of {meta['samples']:,} samples each"),
            ("versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)),
            ("BLAS (fastmlp)", meta.get("blas", "?")),
            ("BLAS environment", meta.get("blas_env", "not recorded")),
            ("fastmlp input", ", ".join(sorted({f"{r['config']}: {r['input_path']}"
                                               for r in results if r.get("framework") ==
                                               "fastmlp" and "input_path" in r})) or "?"),
            ("load average", f"{meta['load_before']} before, {meta['load_after']} after")]
    for k, v in info:
        out.append(f"- {k}: {v}" if markdown else f"{k + ':':16s}{v}")
    out.append("")

    header = ["config"] + [f"{f} samples/s" for f in frameworks]
    others = [f for f in ("jax", "torch", "numpy", "fastmlp-1t") if f in frameworks]
    header += [f"fastmlp/{f}" for f in others]
    header += ["peak RSS MB (" + "/".join(frameworks) + ")",
               "test acc (" + "/".join(frameworks) + ")", "max step-1 diff vs f64"]
    rows = []
    for c in configs:
        row = [c]
        med = {}
        for f in frameworks:
            e = table.get((c, f))
            if e is None or not e["rates"]:
                row.append("FAILED" if e and e["errors"] else "-")
                med[f] = float("nan")
                continue
            med[f] = pick(e["rates"])
            s = _spread(e["rates"])
            row.append(_fmt_rate(med[f]) + ("" if s != s else f" +-{100 * s:.0f}%"))
        for other in others:
            ratio = med["fastmlp"] / med[other] if "fastmlp" in med else float("nan")
            row.append("-" if ratio != ratio else f"{ratio:.2f}x")
        row.append("/".join(f"{_median(table[(c, f)]['rss']):.0f}" if table.get((c, f)) and
                            table[(c, f)]["rss"] else "-" for f in frameworks))
        row.append("/".join(f"{_median(table[(c, f)]['acc']):.4f}" if table.get((c, f)) and
                            table[(c, f)]["acc"] else "-" for f in frameworks))
        checks = [x for f in frameworks if table.get((c, f)) for x in table[(c, f)]["checks"]]
        row.append(f"{max(checks):.1e}" if checks else "-")
        rows.append(row)
    out.append(render(rows, header, markdown))

    if starts:
        out.append("")
        rows = []
        for kind in ("cold", "warm"):
            rs = [s for s in starts if s.get("kind") == kind and "error" not in s]
            if not rs:
                continue
            total = [s["t_step"] - s["t_spawn"] for s in rs]
            rows.append([f"fastmlp {kind} start", f"{_median(total):.2f}",
                         f"{_median([s['t_script'] - s['t_spawn'] for s in rs]):.2f}",
                         f"{_median([s['t_import'] - s['t_script'] for s in rs]):.2f}",
                         f"{_median([s['t_data'] - s['t_import'] for s in rs]):.2f}",
                         f"{_median([s['t_step'] - s['t_data'] for s in rs]):.2f}",
                         f"{_median([s['peak_rss_mb'] for s in rs]):.0f}"])
        for s in starts:
            if "error" in s:
                rows.append([f"fastmlp {s.get('kind')} start", "FAILED", "", "", "", "", ""])
        out.append(render(rows, ["spawn -> first step done (s)", "total", "interpreter",
                                 "imports", "load MNIST", "compile/load + 1 step",
                                 "peak RSS MB"], markdown))
    if book:
        out.append("")
        if "error" in book:
            out.append("python -m fastmlp.train --preset book --epochs 1: FAILED (see below)")
        else:
            out.append(f"python -m fastmlp.train --preset book --epochs 1 --threads "
                       f"{meta['threads']}: peak RSS {book['peak_rss_mb']:.0f} MB, "
                       f"spawn to exit {book['t_exit'] - book['t_spawn']:.1f} s (compile/load "
                       f"{book['compile_seconds']:.2f} s, {book['samples_per_second']:,.0f} "
                       f"samples/s, test accuracy {book['test_accuracy_full']:.4f})")
    errors = [r for r in results + starts + ([book] if book else []) if "error" in r]
    if errors:
        out.append("")
        out.append("Failures:")
        for r in errors:
            last = " / ".join(r["error"].strip().splitlines()[-2:])  # full text: --json
            out.append(f"- {r.get('framework', r.get('kind', 'book'))} {r.get('config', '')}: "
                       f"{last}")
    return "\n".join(out)


def report_tiers(meta, configs, frameworks, results, starts, book, markdown, stat="median"):
    """:func:`report` for each tier of the run (one table each, the start-up and book figures
    once, after the first), each preceded by the tier's variables and what every framework
    reported running (:func:`isa_report`)."""
    tiers = meta.get("tiers") or {"native": dict(label="", env={}, cannot={}, isa={})}
    out = []
    for i, (tier, info) in enumerate(tiers.items()):
        mine = [r for r in results if r.get("tier", "native") == tier]
        fws = [f for f in frameworks if f not in info["cannot"]]
        if len(tiers) > 1 or tier != "native":
            h = "### " if markdown else "== "
            out += ["", f"{h}{info['label']}", ""]
            env = " ".join(f"{k}={v!r}" if v == "" else f"{k}={v}"
                           for k, v in info["env"].items()) or "none"
            out.append(f"- variables: {env}" if markdown else f"variables:      {env}")
            for fw, isa in info["isa"].items():
                out.append(f"- {fw} runs: {isa}" if markdown else f"{fw + ' runs:':15s} {isa}")
            for fw, why in info.get("unheld", {}).items():
                if fw in frameworks:
                    out.append(f"- {fw}: not all held: {why}" if markdown else
                               f"{fw + ':':15s} not all held: {why}")
            for fw, why in info["cannot"].items():
                if fw in frameworks:
                    out.append(f"- {fw}: cannot run on such a CPU ({why})" if markdown else
                               f"{fw + ':':15s} cannot run on such a CPU ({why})")
            out.append("")
        text = report(dict(meta, blas=info.get("blas", meta.get("blas", "?"))), configs, fws,
                      mine, starts if i == 0 else [], book if i == 0 else None, markdown, stat)
        out.append(text if i == 0 else text.split("\n\n", 2)[2])  # the heading once
    return "\n".join(out)


def _loadavg():
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv=None):
    import runners as R

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="threads for every framework")
    p.add_argument("--repeats", type=int, default=5, help="fresh processes per framework and "
                   "configuration; the median is reported")
    p.add_argument("--configs", nargs="+", default=list(R.CONFIGS), choices=list(R.CONFIGS),
                   metavar="NAME", help=f"configurations: {', '.join(R.CONFIGS)}")
    p.add_argument("--frameworks", nargs="+",
                   default=list(R.available_frameworks(R.FRAMEWORKS)),
                   choices=list(R.ALL_FRAMEWORKS),
                   help="fastmlp-dense: fastmlp with its dense first layer forced (the default "
                        "fastmlp picks the path as its trainer does); fastmlp-1t: fastmlp at one "
                        "thread; torch and jax only when installed")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs per child")
    p.add_argument("--warmup-samples", type=int, default=WARMUP_SAMPLES,
                   help="samples trained (then undone) before timing, at most one epoch "
                        "(default: one epoch)")
    p.add_argument("--samples", type=int, default=0,
                   help="train on the first N images only (0: all 60,000; the accuracy bar is "
                        "checked only for all)")
    p.add_argument("--tiers", nargs="+", default=["native"], choices=list(TIERS),
                   help="instruction-set tiers, interleaved in one run: every framework held to "
                        "what an older CPU has (avx2: a 2013-2019 laptop; sse42: 2008-2011); one "
                        "table per tier")
    p.add_argument("--markdown", action="store_true", help="print markdown tables")
    p.add_argument("--stat", choices=["median", "best"], default="median",
                   help="samples/s shown: the median repeat, or the fastest (more robust when "
                        "other processes compete for the cores)")
    p.add_argument("--json", metavar="PATH", help="also write every raw result here")
    p.add_argument("--skip-start", action="store_true", help="skip the cold/warm start probe")
    p.add_argument("--skip-book", action="store_true",
                   help="skip the `fastmlp.train --preset book` memory run")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--from-json", metavar="PATH",
                   help="print the tables of a run saved with --json (runs nothing)")
    args = p.parse_args(argv)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        fws = [f for f in R.ALL_FRAMEWORKS
               if any(r.get("framework") == f for r in saved["results"])]
        cfgs = list(dict.fromkeys(r["config"] for r in saved["results"]))
        print(report_tiers(saved["meta"], cfgs, fws, saved["results"], saved["starts"],
                           saved["book"], args.markdown, args.stat))
        return 0
    frameworks = [f for f in R.ALL_FRAMEWORKS if f in args.frameworks]
    for fw, how in R.INSTALL.items():
        if fw in frameworks and fw not in R.available_frameworks():
            print(f"{fw} is not installed: skipping it ({how})", file=sys.stderr)
            frameworks.remove(fw)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    # a plain `kill` (SIGTERM) unwinds like Ctrl-C: the running child is killed, the
    # temporary directory removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    work = Path(tempfile.mkdtemp(prefix="fastmlp-bench-"))
    try:
        meta = dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                    cpu=cpu_model(), cores=len(os.sched_getaffinity(0)), threads=args.threads,
                    blas_env=blas_environment(),
                    repeats=args.repeats, epochs=args.epochs, versions=versions(),
                    load_before=_loadavg())
        data = prepare_data(work)
        meta["samples"] = args.samples or 60000
        # fastmlp children share one private Numba cache per tier: the first compiles (before
        # its warm-up, never timed), the rest load; the repo's __pycache__ is left alone.
        child = Child(work, args.threads)
        tiers = list(dict.fromkeys(args.tiers))
        envs = {t: dict(tier_env(t), NUMBA_CACHE_DIR=str(work / f"numba-cache-{t}"))
                for t in tiers}
        meta["tiers"] = {t: dict(label=TIERS[t]["label"], env=tier_env(t),
                                 cannot=TIERS[t]["cannot"], unheld=TIERS[t].get("unheld", {}),
                                 isa={}) for t in tiers}
        for tier in tiers:
            if "fastmlp" not in frameworks:
                break
            # Fill that cache first, so every timed fastmlp child starts like a user's second
            # run (its peak RSS then excludes LLVM's compile-time memory; cold start is below).
            # This child compiled its training worker, so it shows that worker's registers.
            log(f"[priming the Numba cache, tier {tier}] ...")
            res = child.run(["--child", "train", "--framework", "fastmlp", "--config",
                             args.configs[0], "--data", str(data), "--threads",
                             str(args.threads), "--samples", "2048", "--warmup-samples", "0",
                             "--worker-asm"], env_extra=envs[tier])
            if "error" in res:
                log(f"    FAILED: {res['error']}")
            else:
                meta["tiers"][tier]["isa"]["fastmlp (priming, compiled here)"] = res["isa"]
                log(f"    {res['isa']}")
        results = []
        runs = [(tier, fw) for tier in tiers for fw in frameworks
                if fw not in TIERS[tier]["cannot"]]
        for name in args.configs:
            for r in range(args.repeats):
                k = r % len(runs)
                for tier, fw in runs[k:] + runs[:k]:
                    log(f"[{name} repeat {r + 1}/{args.repeats}] {fw}"
                        f"{'' if tier == 'native' else ', tier ' + tier} ...")
                    t = 1 if fw in R.ONE_THREAD else args.threads
                    res = child.run(["--child", "train", "--framework", fw, "--config", name,
                                     "--data", str(data), "--threads", str(t),
                                     "--epochs", str(args.epochs),
                                     "--warmup-samples", str(args.warmup_samples),
                                     "--samples", str(args.samples)],
                                    env_extra=dict(envs[tier],
                                                   **{v: str(t) for v in THREAD_VARS}))
                    res.setdefault("framework", fw)
                    res.setdefault("config", name)
                    res["tier"] = tier
                    if "isa" in res:
                        meta["tiers"][tier]["isa"].setdefault(fw, res["isa"])
                    if "error" in res:
                        log(f"    FAILED: {res['error']}")
                    else:
                        log(f"    {res['samples_per_second']:,.0f} samples/s, test accuracy "
                            f"{res['test_accuracy']:.4f}, peak RSS {res['peak_rss_mb']:.0f} MB")
                        if "blas" in res and "blas" not in meta["tiers"][tier]:
                            meta["tiers"][tier]["blas"] = ", ".join(
                                f"{b['internal_api']} {b['version']} {b['architecture']} "
                                f"({Path(b['filepath']).name})" for b in res["blas"]
                                if b["internal_api"] == "openblas")
                    results.append(res)
        starts = []
        if not args.skip_start:
            for r in range(args.repeats):
                cache = work / f"cold-cache-{r}"
                for kind in ("cold", "warm"):  # warm reuses the cache the cold run just filled
                    log(f"[start-up repeat {r + 1}/{args.repeats}] {kind} ...")
                    res = child.run(["--child", "start", "--threads", str(args.threads)],
                                    env_extra={"NUMBA_CACHE_DIR": str(cache)})
                    res["kind"] = kind
                    if "error" not in res:
                        log(f"    {res['t_step'] - res['t_spawn']:.2f} s")
                    starts.append(res)
        book = None
        if not args.skip_book:
            log("[python -m fastmlp.train --preset book --epochs 1] ...")
            book = child.run(["--child", "book", "--threads", str(args.threads)])
        meta["load_after"] = _loadavg()
        print(report_tiers(meta, args.configs, frameworks, results, starts, book,
                           args.markdown, args.stat))
        if args.json:
            Path(args.json).write_text(json.dumps(dict(meta=meta, results=results,
                                                       starts=starts, book=book), indent=2,
                                                  default=float))
        failed = any("error" in r for r in results + starts) or (book and "error" in book)
        return 1 if failed else 0
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def child_main(argv):
    import runners as R

    p = argparse.ArgumentParser()
    p.add_argument("--child", choices=["train", "start", "book"], required=True)
    p.add_argument("--framework", choices=list(R.ALL_FRAMEWORKS))
    p.add_argument("--config")
    p.add_argument("--data")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--warmup-samples", type=int, default=WARMUP_SAMPLES)
    p.add_argument("--samples", type=int, default=0)
    p.add_argument("--worker-asm", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    {"train": child_train, "start": child_start, "book": child_book}[args.child](args)
    return 0


if __name__ == "__main__":
    if "--child" in sys.argv[1:]:
        sys.exit(child_main(sys.argv[1:]))
    sys.exit(main())
