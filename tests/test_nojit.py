"""fastmlp without the JIT (NUMBA_DISABLE_JIT=1): every kernel runs as plain Python and NumPy,
kernels/_gemm.py's GEMM as its NumPy function instead of the BLAS overload, and
kernels/_sync.py's barrier with its Python fallbacks. CI runs tests/test_kernels.py once so
(.ci/run); here a short training run on each path, without the JIT in a subprocess, must take
the compiled run's steps."""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
import synthetic

from fastmlp import load_model
from fastmlp.cli import run_main
from fastmlp.train import main

small_dir = synthetic.small_dir  # fixture

pytestmark = pytest.mark.skipif(numba.config.DISABLE_JIT,
                                reason="compares a run without the JIT to the compiled run")

NOJIT_TRAIN = """
import sys
import numba
assert numba.config.DISABLE_JIT, "the JIT is on"
from fastmlp.cli import run_main
from fastmlp.train import main
sys.exit(run_main(main, sys.argv[1:]))
"""

PATHS = {
    "dense sgd, 1 thread": ["--optimizer", "sgd", "--input-path", "dense"],
    "sparse adam, dropout, 2 threads": ["--optimizer", "adam", "--input-path", "sparse",
                                        "--hidden", "8,6", "--dropout", "0.2",
                                        "--dropout-input", "0.1", "--threads", "2"],
}


@pytest.mark.parametrize("path", PATHS)
def test_training_without_the_jit_takes_the_compiled_steps(small_dir, tmp_path, path):
    argv = ["--data-dir", str(small_dir), "--epochs", "2", *synthetic.TINY, *PATHS[path]]
    compiled, plain = tmp_path / "compiled.npz", tmp_path / "plain.npz"
    assert run_main(main, [*argv, "--save", str(compiled)]) == 0
    run = subprocess.run([sys.executable, "-c", NOJIT_TRAIN, *argv, "--save", str(plain)],
                         env={**os.environ, "NUMBA_DISABLE_JIT": "1"}, check=False,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    (a, meta_a), (b, meta_b) = load_model(compiled), load_model(plain)
    state_a, state_b = meta_a["state"], meta_b["state"]
    assert state_a["t"] == state_b["t"] == 20   # 2 epochs of 10 steps each
    # NumPy's matmul instead of BLAS, and float32 scalar arithmetic where compiled code promotes
    # to float64: last-bit differences (Adam divides by sqrt(v), which amplifies them)
    np.testing.assert_allclose(b.params, a.params, rtol=1e-5, atol=2e-5)
    for ha, hb in zip(state_a["history"], state_b["history"], strict=True):
        assert hb["loss"] == pytest.approx(ha["loss"], rel=1e-5)
        assert hb["train_accuracy"] == ha["train_accuracy"]
