"""Parameter updates (plain SGD, momentum, Adam) and weight decay, on flat (P,) slices of the
one parameter buffer and its gradient and optimizer-state twins.

Each update is an optimizer's kernel in the table of choices/optimizers.py and takes its
arguments in the order the row gives: ``(params, *state, grads, lr, *hyper[, t])``, updating
params and the state in place. The training loop calls them from loop/steps.py's
``_update_block``, branching on the row's code below."""

import math

from .._jit import jit

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "ADAM", "MOMENTUM", "SGD", "_adam_update", "_add_weight_decay", "_momentum_update",
    "_sgd_update",
]

# the optimizer codes the compiled loop branches on (Hyper.optimizer), one per row of the table
# in choices/optimizers.py; module constants, which Numba freezes into the compiled code
SGD, MOMENTUM, ADAM = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# Parameter updates, on the flat parameter and gradient buffers (views of one allocation)
# ---------------------------------------------------------------------------------------------
@jit
def _sgd_update(params, grads, lr):
    # row "sgd": no state, no hyperparameters. params (P,) -= lr * grads (P,). Scalars are
    # cast to the arrays' dtype throughout: a float64 scalar would make a float32 loop convert
    # every element to float64 and back.
    step = params.dtype.type(lr)
    for i in range(params.size):
        params[i] -= step * grads[i]


@jit
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


@jit
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


@jit
def _add_weight_decay(grads, params, wd):
    # grads (n,) += wd * params (n,): the gradient of 0.5 * wd * |w|^2, for weight matrices only
    wd = params.dtype.type(wd)
    for i in range(params.size):
        grads[i] += wd * params[i]
