"""Start-up time and peak memory, measured in fresh processes (``compare.py``'s child modes).

- ``test_start[cold|warm]``: a fresh ``compare.py --child start`` process (import fastmlp, load
  MNIST, build a 784-100-10 network, run one training step). Timed: the whole process, spawn to
  exit. ``extra_info``: spawn -> first step done, and its parts. Cold runs in an empty
  ``NUMBA_CACHE_DIR`` each round (skipped in quick mode: it compiles for ~10-20 s); warm uses
  the usual cache, after a warm-up round that fills it.
- ``test_peak_rss[framework]``: a fresh ``compare.py --child train`` process training
  784-100-10 at batch 128 (validated like every other benchmark); ``extra_info`` holds its
  peak RSS (``ru_maxrss``), samples/s and test accuracy.
"""

import pytest

import compare
from runners import FRAMEWORKS, INSTALL, available_frameworks

CONFIG = "784-100-10/b128"


def _start_info(r):
    return dict(spawn_to_first_step_s=r["t_step"] - r["t_spawn"],
                interpreter_s=r["t_script"] - r["t_spawn"], imports_s=r["t_import"] - r["t_script"],
                load_mnist_s=r["t_data"] - r["t_import"],
                compile_or_load_and_step_s=r["t_step"] - r["t_data"],
                peak_rss_mb=r["peak_rss_mb"])


@pytest.mark.parametrize("kind", ["cold", "warm"])
def test_start(benchmark, quick, threads, tmp_path, kind):
    if kind == "cold" and quick:
        pytest.skip("cold start compiles everything (~10-20 s); not in quick mode")
    child = compare.Child(tmp_path, threads)
    rounds = []

    def setup():
        env = {}
        if kind == "cold":
            env["NUMBA_CACHE_DIR"] = str(tmp_path / f"cache-{len(rounds)}")
        return (env,), {}

    def run(env):
        r = child.run(["--child", "start", "--threads", str(threads)], env_extra=env)
        assert "error" not in r, r["error"]
        rounds.append(r)
        return r

    benchmark.group = "start-up (fresh process)"
    benchmark.pedantic(run, setup=setup, rounds=1 if quick else 3,
                       warmup_rounds=0 if kind == "cold" else 1)
    timed = rounds[-1]
    benchmark.extra_info.update(kind=kind, **_start_info(timed))
    if kind == "cold":
        benchmark.extra_info["numba_cache_dir"] = "empty"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_peak_rss(benchmark, quick, threads, mnist_npy, tmp_path, framework):
    if not available_frameworks((framework,)):
        pytest.skip(f"{framework} is not installed ({INSTALL[framework]})")
    child = compare.Child(tmp_path, threads)
    samples = 2048 if quick else 60000
    argv = ["--child", "train", "--framework", framework, "--config", CONFIG, "--data",
            str(mnist_npy), "--threads", str(threads), "--samples", str(samples),
            "--warmup-samples", "1024"]
    results = []

    def run():
        r = child.run(argv)
        assert "error" not in r, r["error"]
        results.append(r)
        return r

    benchmark.group = f"peak RSS, fresh process ({CONFIG})"
    benchmark.pedantic(run, rounds=1)
    r = results[-1]
    benchmark.extra_info.update(peak_rss_mb=r["peak_rss_mb"], samples=samples,
                                samples_per_second=r["samples_per_second"],
                                test_accuracy=r["test_accuracy"],
                                first_step_loss_diff=r["check"]["dloss"])
