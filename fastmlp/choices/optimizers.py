"""The optimizers: one row each, and everything else about an optimizer follows from its row.

A row names the optimizer (the ``--optimizer`` choice, ``config.OPTIMIZERS``), gives the int
code the compiled loop branches on (``Hyper.optimizer``), its update kernel (kernels/_update.py),
what its state buffers hold (``Workspace.opt1``, ``opt2``, in that order; checkpoints save and
resume them), the hyperparameters its kernel reads after the learning rate (TrainConfig fields,
copied into the ``Hyper`` fields of the same names), whether the kernel takes the 1-based step
count last, and whether the update can be fused into the weight-gradient GEMM when there is no
weight decay (``Hyper.fused``: BLAS with alpha = -lr, beta = 1 onto the weights, which is
plain SGD's step and no other's).

Every kernel is called as ``kernel(params, *state, grads, lr, *hyper[, t])`` on flat (P,)
slices. Numba cannot call through a table of functions inside compiled code (a first-class
function value breaks on-disk caching and costs a call per slice), so
``loop.steps._update_block`` keeps one branch per row, on the row's code, calling the row's kernel.

A new optimizer: its row below, its kernel and its code (beside the others) in
kernels/_update.py, its branch in ``loop.steps._update_block``, its naive twin in tests/naive.py
(the kernel's name without the underscore); tests/test_optimizers.py checks every row. A new
hyperparameter also needs its TrainConfig field (with its help: the flag follows) and a
``Hyper`` field of the same name.
"""

from typing import NamedTuple, Tuple

from .. import kernels as U
from ..kernels import ADAM, MOMENTUM, SGD

STATE_BUFFERS = ("opt1", "opt2")  # the workspace's optimizer-state buffers, as rows use them


class Optimizer(NamedTuple):
    name: str
    code: int
    kernel: object             # kernel(params, *state, grads, lr, *hyper[, t]), in place
    state: Tuple[str, ...]     # what opt1, opt2 hold, in that order (at most two)
    hyper: Tuple[str, ...]     # TrainConfig / Hyper fields passed after lr, in order
    takes_step: bool           # the kernel's last argument is the 1-based step count
    fuses: bool                # without weight decay, applied inside the weight-gradient GEMM


OPTIMIZERS = {row.name: row for row in (
    Optimizer("sgd", SGD, U._sgd_update, (), (), False, True),
    Optimizer("momentum", MOMENTUM, U._momentum_update, ("velocity",),
              ("momentum", "nesterov"), False, False),
    Optimizer("adam", ADAM, U._adam_update, ("mean", "squared mean"),
              ("beta1", "beta2", "eps"), True, False),
)}

# every optimizer hyperparameter some row reads: each is a TrainConfig field and a Hyper field
HYPERPARAMETERS = tuple(dict.fromkeys(h for row in OPTIMIZERS.values() for h in row.hyper))
