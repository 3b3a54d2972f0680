"""Numba kernels: the numerical heart of fastmlp, and this package's one namespace
(``fastmlp.kernels.<name>``): the training loop (loop/), the tests and the benchmarks call every
kernel by that address; the private modules beside this file hold them, a family each.

Dimension legend, used in every shape line of the kernels:
    B  batch size (rows of every activation matrix)
    D  inputs of a layer (784 for a full MNIST image, fewer after a crop)
    H  outputs (units) of a layer
    K  classes (the last layer's H)
    N  images in a data set, P pixels per image (rows * cols)

Conventions (after llm.c): kernels come in forward/backward pairs; arguments are outputs first,
then inputs, then parameters; gradient buffers are named ``d<name>``. Every kernel writes into
buffers the caller allocated once; no kernel allocates. Matrices are C-contiguous; a weight matrix
is stored (D, H) so that the forward pass is ``out = inp @ weight`` (one BLAS call; Numba's
``np.dot`` calls the BLAS that SciPy ships).

Each public function checks dtypes, shapes and contiguity and raises ``ValueError`` naming the
problem; the private ``_name`` kernel it calls only computes, and is what the training loop
(loop/steps.py) calls inside compiled code, through its address (``_jit.jit_kernel``: an edit
to a kernel compiles that kernel again, not the loop).

The families: _layers.py (the input gather, the training images as CSR, the sparse first layer,
the dense layers), _activation.py (the built-in activations; a user's pair is called through
its address, _user_activation.py), _loss.py (fused softmax + cross-entropy), _dropout.py,
_update.py (the optimizers' updates and their codes), _augment.py (images shifted, rotated and
distorted while gathered), _gemm.py (BLAS GEMM with alpha and beta from compiled code),
_sync.py (the loop's threads: one start per chunk, a barrier), _prefetch_hint.py (a cache hint),
_checks.py (the wrappers' argument checks). Nothing here imports anything of fastmlp but
_jit.py (Numba's options).

Each family's ``__all__`` lists what it gives this namespace, so a new kernel or constant is
added in its own module only.
"""

from . import (
    _activation,
    _augment,
    _checks,
    _dropout,
    _gemm,
    _layers,
    _loss,
    _prefetch_hint,
    _sync,
    _update,
    _user_activation,
)
from ._activation import *  # noqa: F403
from ._augment import *  # noqa: F403
from ._checks import *  # noqa: F403
from ._dropout import *  # noqa: F403
from ._gemm import *  # noqa: F403
from ._layers import *  # noqa: F403
from ._loss import *  # noqa: F403
from ._prefetch_hint import *  # noqa: F403
from ._sync import *  # noqa: F403
from ._update import *  # noqa: F403
from ._user_activation import *  # noqa: F403

__all__ = [name for module in (_activation, _augment, _checks, _dropout, _gemm, _layers, _loss,
                               _prefetch_hint, _sync, _update, _user_activation)
           for name in module.__all__]
