"""Parameter updates (plain SGD, momentum, Adam) and weight decay, on flat (P,) slices of the
one parameter buffer and its gradient and optimizer-state twins.

Each update is an optimizer's kernel in the table of choices/optimizers.py and takes its
arguments in the order the row gives: ``(params, *state, grads, lr, *hyper[, t])``, updating
params and the state in place. The training loop calls them from loop/steps.py's
``_update_block``, branching on the row's code below."""

import math

import numpy as np

from .._jit import jit_kernel
from ._checks import _check_float

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "ADAM", "MOMENTUM", "SGD", "_adam_update", "_add_weight_decay", "_momentum_update",
    "_sgd_update", "_add_column_squares", "_max_norm_factors", "_scale_columns", "max_norm",
]

# the optimizer codes the compiled loop branches on (Hyper.optimizer), one per row of the table
# in choices/optimizers.py; module constants, which Numba freezes into the compiled code
SGD, MOMENTUM, ADAM = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# Parameter updates, on the flat parameter and gradient buffers (views of one allocation)
# ---------------------------------------------------------------------------------------------
@jit_kernel
def _sgd_update(params, grads, lr):
    # row "sgd": no state, no hyperparameters. params (P,) -= lr * grads (P,). Scalars are
    # cast to the arrays' dtype throughout: a float64 scalar would make a float32 loop convert
    # every element to float64 and back.
    step = params.dtype.type(lr)
    for i in range(params.size):
        params[i] -= step * grads[i]


@jit_kernel
def _momentum_update(params, velocity, grads, lr, mu, nesterov):
    # row "momentum": state velocity (opt1); mu, nesterov are TrainConfig's momentum, nesterov.
    # velocity (P,) = mu * velocity + grads; params -= lr * (velocity, or grads + mu * velocity)
    lr = params.dtype.type(lr)
    mu = params.dtype.type(mu)
    for i in range(params.size):
        v = mu * velocity[i] + grads[i]
        velocity[i] = v
        if nesterov:
            params[i] -= lr * (grads[i] + mu * v)
        else:
            params[i] -= lr * v


@jit_kernel
def _adam_update(params, m, v, grads, lr, beta1, beta2, eps, t):
    # row "adam": state m, v (opt1, opt2); beta1, beta2, eps. Adam (Kingma & Ba) with bias
    # correction; t is the 1-based step count
    f = params.dtype.type
    c1 = f(1.0 / (1.0 - beta1 ** t))
    c2 = f(1.0 / (1.0 - beta2 ** t))
    one = f(1.0)
    lr, beta1, beta2, eps = f(lr), f(beta1), f(beta2), f(eps)
    for i in range(params.size):
        g = grads[i]
        mi = beta1 * m[i] + (one - beta1) * g
        vi = beta2 * v[i] + (one - beta2) * g * g
        m[i] = mi
        v[i] = vi
        params[i] -= lr * (mi * c1) / (math.sqrt(vi * c2) + eps)


@jit_kernel
def _add_weight_decay(grads, params, wd):
    # grads (n,) += wd * params (n,): the gradient of 0.5 * wd * |w|^2, for weight matrices only
    wd = params.dtype.type(wd)
    for i in range(params.size):
        grads[i] += wd * params[i]


# ---------------------------------------------------------------------------------------------
# The max-norm constraint (Srivastava et al. 2014): every unit's incoming weight vector, a column
# of its layer's weights (D, H), rescaled to norm <= c after each update (biases untouched). In
# the loop each thread owns a block of rows, so a column's norm is summed over the threads:
# _add_column_squares on each thread's rows (riding on its update, row by row while the row is in
# cache), then _max_norm_factors over every thread's sums, then _scale_columns on its own rows.
# ---------------------------------------------------------------------------------------------
@jit_kernel
def _add_column_squares(sq, w):
    # sq (H,) float64 += the squares of w (R, H) summed over its R rows
    R, H = w.shape
    for r in range(R):
        for j in range(H):
            v = w[r, j]
            sq[j] += v * v


@jit_kernel
def _max_norm_factors(factors, sq, c):
    # factors (H,) = min(1, c / |w_j|) for each column j, its squared norm |w_j|^2 the sum over
    # the rows of sq (T, H) (each thread's share). Returns whether any factor is below 1.
    T, H = sq.shape
    clipped = False
    for j in range(H):
        total = 0.0
        for u in range(T):
            total += sq[u, j]
        if total > c * c:
            factors[j] = c / math.sqrt(total)
            clipped = True
        else:
            factors[j] = 1.0
    return clipped


@jit_kernel
def _scale_columns(w, factors):
    # w (R, H) *= factors (H,), column j by factors[j]
    R, H = w.shape
    for r in range(R):
        for j in range(H):
            w[r, j] *= factors[j]


def max_norm(weights, c):
    """Rescale, in place, each column of ``weights`` (D, H) (a unit's incoming weight vector)
    whose Euclidean norm exceeds ``c`` > 0 to norm ``c``. Returns the number of columns
    rescaled."""
    _check_float("weights", weights, 2)
    if not (isinstance(c, (int, float, np.floating)) and math.isfinite(c) and c > 0):
        raise ValueError(f"c must be a positive finite number, got {c!r}")
    H = weights.shape[1]
    sq = np.zeros((1, H))
    factors = np.ones(H, weights.dtype)
    _add_column_squares(sq[0], weights)
    if _max_norm_factors(factors, sq, float(c)):
        _scale_columns(weights, factors)
    return int((factors < 1).sum())
