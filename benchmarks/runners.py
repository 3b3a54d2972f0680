"""What every benchmark shares: the configurations, one interface over the three frameworks, and
the first-step validation that runs before anything is timed.

A runner holds one framework's model, optimiser and data for one :class:`Config`:

    runner.reset()                      back to the initial parameters
    runner.train_epoch(order, n_steps)  plain SGD over ``order``; returns (loss sum, samples)
    runner.params_flat()                parameters as a flat float32 vector (fastmlp's layout)
    runner.accuracy(X_test, y_test)     test accuracy

All three start from the same flat parameter vector (:func:`initial_params`) and read the same
uint8 images in the same order (:func:`epoch_order`). Threads are the caller's business
(:func:`set_threads`: ``compare.py`` calls it per process, the pytest files per test).
"""

import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

import jax_mlp
import numpy_mlp
import torch_mlp
from fastmlp.choices.schedules import steps_in_epoch

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SEED = 0
TOLERANCE = 1e-4          # float32 implementation vs the float64 reference, first step
ALL_FRAMEWORKS = ("fastmlp", "fastmlp-1t", "fastmlp-dense", "numpy", "torch", "jax")
ONE_THREAD = ("fastmlp-1t",)  # always one thread, beside the others' --threads
FRAMEWORKS = ALL_FRAMEWORKS                                   # compare.py's default


class Config(NamedTuple):
    """A benchmarked network: layer sizes, batch size, learning rate, and the test accuracy one
    epoch over all 60,000 training images must reach (a sanity bar, not a target)."""

    name: str
    sizes: tuple
    batch: int
    lr: float
    min_accuracy: float


CONFIGS = {c.name: c for c in (
    Config("784-100-10/b32", (784, 100, 10), 32, 0.5, 0.90),
    Config("784-100-10/b128", (784, 100, 10), 128, 0.5, 0.85),
    Config("784-100-10/b600", (784, 100, 10), 600, 0.5, 0.80),
    Config("784-1024-1024-10/b128", (784, 1024, 1024, 10), 128, 0.5, 0.75),
)}


class ValidationError(AssertionError):
    """An implementation disagrees with the reference; nothing it does should be timed."""


def epoch_order(n, epoch, seed=SEED):
    """The sample order (n,) int64 of ``epoch``: the same in every framework and process."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)


def initial_params(sizes, seed=SEED):
    """The flat float32 starting point every framework copies (fastmlp's sigmoid init)."""
    return numpy_mlp.init_params(sizes, seed)


# ---------------------------------------------------------------------------------------------
# Runners
# ---------------------------------------------------------------------------------------------
class FastmlpRunner:
    """fastmlp's compiled engine, called the way ``fastmlp.training.run.train`` calls it: chunks of
    steps per ``loop.calls.train_steps`` call, plain SGD, sigmoid, no dropout, and the same choice
    of first-layer input path (sparse CSR when the images are sparse enough, else dense).
    ``input_path="dense"`` forces the dense path (the ``fastmlp-dense`` framework).
    ``test_bench_epoch.test_runner_matches_trainer`` checks this stays what the trainer does."""

    name = "fastmlp"

    def __init__(self, cfg, init_flat, X, y, input_path="auto"):
        import numba

        from fastmlp.loop import buffers, calls, warmup
        from fastmlp.training import plan, run
        from fastmlp.threads import one_blas_thread
        from fastmlp.config import TrainConfig
        from fastmlp.model import MLP

        self.calls = calls
        self.one_blas_thread = one_blas_thread
        self.cfg, self.init = cfg, init_flat
        self.X, self.y = X, np.ascontiguousarray(y, dtype=np.int64)
        self.model = MLP(cfg.sizes, "sigmoid", init_flat.copy())
        self.ws = buffers.make_workspace(self.model.sizes, cfg.batch, self.model.params.size)
        self.transform = calls.transform_arrays(self.model, X.shape[1])
        act = self.model.activation
        # exactly the trainer's choice of first-layer path for this batch size
        tc = TrainConfig(hidden=tuple(cfg.sizes[1:-1]), activation="sigmoid", optimizer="sgd",
                         lr=cfg.lr, batch_size=cfg.batch, batch_ramp=None, dropout=0.0,
                         dropout_input=0.0, seed=SEED, input_path=input_path)
        self.csr, hyper_for = plan.input_plan(tc, act, X, self.transform,
                                              numba.get_num_threads())
        self.hp = hyper_for(cfg.batch)
        self.input_path = "sparse" if self.hp.sparse else "dense"
        self.lrs = np.full(steps_in_epoch(len(X), cfg.batch), cfg.lr, dtype=np.float64)
        self.chunk = max(1, run.CHUNK_SAMPLES // cfg.batch)
        # compiled (or loaded from Numba's cache) as training.run.train does it before the first
        # step: on a cold cache with loop/warmup.py's helper process beside this one
        warmup.compile_loop(self.model, self.ws, self.hp, self.X, self.y, self.transform,
                            self.lrs)

    def reset(self):
        self.model.params[:] = self.init

    def train_epoch(self, order, n_steps=None, epoch=0):
        B = self.cfg.batch
        steps = steps_in_epoch(len(order), B)
        if n_steps is not None:
            steps = min(steps, n_steps)
        extra = {"csr": self.csr}
        loss_sum, samples = 0.0, 0
        with self.one_blas_thread():  # for the whole epoch, as fastmlp.training.run.train holds it
            for s0 in range(0, steps, self.chunk):
                n = min(self.chunk, steps - s0)
                loss, _, done, bad = self.calls.train_steps(
                    self.model, self.ws, self.hp, self.X, self.y, order, self.transform, B, s0,
                    n, self.lrs, epoch, s0, **extra)
                if bad >= 0:
                    raise ValidationError(f"fastmlp: non-finite loss at step {bad}")
                loss_sum += loss
                samples += done
        return loss_sum, samples

    def params_flat(self):
        return self.model.params.copy()

    def accuracy(self, X, y):
        _, correct = self.calls.evaluate(self.model, X, np.asarray(y, dtype=np.int64))
        return correct / max(1, len(X))


class FastmlpDenseRunner(FastmlpRunner):
    """fastmlp with the dense first layer forced (what it does for dense inputs)."""

    name = "fastmlp-dense"

    def __init__(self, cfg, init_flat, X, y):
        super().__init__(cfg, init_flat, X, y, input_path="dense")


class NumpyRunner:
    """``numpy_mlp.train_epoch``: plain NumPy, float32."""

    name = "numpy"

    def __init__(self, cfg, init_flat, X, y):
        self.cfg, self.init = cfg, init_flat
        self.X, self.y = X, np.ascontiguousarray(y, dtype=np.int64)
        self.flat = init_flat.copy()
        self.params = numpy_mlp.unflatten(self.flat, cfg.sizes)

    def reset(self):
        self.flat[:] = self.init

    def train_epoch(self, order, n_steps=None, epoch=0):
        return numpy_mlp.train_epoch(self.params, self.X, self.y, self.cfg.batch, self.cfg.lr,
                                     order, n_steps=n_steps)

    def params_flat(self):
        return self.flat.copy()

    def accuracy(self, X, y):
        return numpy_mlp.accuracy(self.params, X, y)


class TorchRunner:
    """``torch_mlp.train_epoch``: nn.Sequential + CrossEntropyLoss + optim.SGD on the CPU."""

    name = "torch"

    def __init__(self, cfg, init_flat, X, y):
        import torch

        self.torch = torch
        self.cfg, self.init = cfg, init_flat
        self.X = torch.from_numpy(np.ascontiguousarray(X))
        self.y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
        self.model = torch_mlp.build_model(cfg.sizes, init_flat)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr)

    def reset(self):
        torch_mlp.load_flat(self.model, self.init)
        self.optimizer = self.torch.optim.SGD(self.model.parameters(), lr=self.cfg.lr)

    def train_epoch(self, order, n_steps=None, epoch=0):
        return torch_mlp.train_epoch(self.model, self.optimizer, self.X, self.y, self.cfg.batch,
                                     self.torch.from_numpy(order), n_steps=n_steps)

    def params_flat(self):
        return torch_mlp.to_flat(self.model)

    def accuracy(self, X, y):
        t = self.torch
        return torch_mlp.accuracy(self.model, t.from_numpy(np.ascontiguousarray(X)),
                                  t.from_numpy(np.asarray(y, dtype=np.int64)))


class JaxRunner:
    """``jax_mlp.Trainer``: one jitted ``lax.scan`` program per epoch, data on the device. The
    full-epoch program is compiled here, before anything is timed (its compile time is reported
    as ``compile_seconds``)."""

    name = "jax"

    def __init__(self, cfg, init_flat, X, y):
        import time

        self.cfg, self.init = cfg, init_flat
        self.trainer = jax_mlp.Trainer(cfg.sizes, init_flat, X, y, cfg.batch, cfg.lr)
        t0 = time.perf_counter()
        self.trainer.compile_epoch(len(X))
        self.compile_seconds = time.perf_counter() - t0

    def reset(self):
        self.trainer.reset(self.init)

    def train_epoch(self, order, n_steps=None, epoch=0):
        n_rows = None if n_steps is None else n_steps * self.cfg.batch
        return self.trainer.epoch(order, n_rows)

    def params_flat(self):
        return self.trainer.params_flat()

    def accuracy(self, X, y):
        return self.trainer.accuracy(X, y)


_LIMITER = None
RUNNERS = {"fastmlp": FastmlpRunner, "fastmlp-1t": FastmlpRunner,
           "fastmlp-dense": FastmlpDenseRunner,
           "numpy": NumpyRunner, "torch": TorchRunner, "jax": JaxRunner}
_OPTIONAL = {"torch": torch_mlp.available, "jax": jax_mlp.available}
INSTALL = {"torch": "pip install torch==2.13.0", "jax": "pip install jax jaxlib"}


def available_frameworks(frameworks=ALL_FRAMEWORKS):
    """Those of ``frameworks`` that can run here (torch and jax only when installed)."""
    return tuple(f for f in frameworks if f not in _OPTIONAL or _OPTIONAL[f]())


def make_runner(framework, cfg, init_flat, X, y):
    return RUNNERS[framework](cfg, init_flat, X, y)


def load_numba_blas():
    """Load the BLAS Numba's ``np.dot`` calls (SciPy's) now. threadpoolctl limits only the
    libraries loaded when it is called, and Numba loads this one lazily, at the first compile
    or cache load of a function using ``np.dot``; without this, ``fastmlp.threads.set_threads``
    called first leaves the GEMMs on all cores."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401
    except ImportError:  # pragma: no cover - Numba then has no BLAS either
        pass


def set_threads(framework, threads):
    """Pin ``framework`` to ``threads``: fastmlp through its own call (Numba and every loaded
    BLAS), NumPy through threadpoolctl, torch through torch.set_num_threads, jax through XLA's
    environment (before jax is imported: call this first). ``ONE_THREAD`` frameworks always get
    one thread."""
    if framework in ONE_THREAD:
        threads = 1
    if framework == "jax":
        jax_mlp.configure_threads(threads)
    if framework.startswith("fastmlp"):
        from fastmlp.threads import set_threads as fastmlp_set_threads
        load_numba_blas()
        fastmlp_set_threads(threads)
        return
    from threadpoolctl import threadpool_limits
    global _LIMITER
    _LIMITER = threadpool_limits(limits=threads)  # kept: the limits hold until restored
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------
def validate_first_step(runner, X, y, order, tol=TOLERANCE):
    """Run one step from the initial parameters and compare the step's loss and the parameters
    after it with ``numpy_mlp.reference_step`` (float64). Raises :class:`ValidationError` when
    either differs by more than ``tol``; leaves the runner reset. Returns the numbers."""
    cfg = runner.cfg
    rows = order[:cfg.batch]
    ref_loss, ref_params = numpy_mlp.reference_step(runner.init, cfg.sizes, X[rows],
                                                    np.asarray(y)[rows], cfg.lr)
    runner.reset()
    loss_sum, samples = runner.train_epoch(order, n_steps=1)
    got = runner.params_flat()
    runner.reset()
    loss = loss_sum / max(1, samples)
    dloss = abs(loss - ref_loss)
    dparams = float(np.max(np.abs(got.astype(np.float64) - ref_params)))
    report = dict(loss=loss, ref_loss=ref_loss, dloss=dloss, dparams=dparams, tol=tol)
    if samples != len(rows) or not (dloss <= tol and dparams <= tol):
        raise ValidationError(
            f"{runner.name} {cfg.name}: first step disagrees with the float64 reference: "
            f"loss {loss:.7f} vs {ref_loss:.7f} (|diff| {dloss:.2e}), max |param diff| "
            f"{dparams:.2e}, samples {samples}/{len(rows)} (tolerance {tol:g})")
    return report
