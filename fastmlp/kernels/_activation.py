"""Activation kernels: the forward/backward pair, one compiled kernel for every activation (an
integer code plus one float parameter, see activations.py; a user's activation is code USER and
the address of its own compiled pair, see _user_activation.py), and the vectorisable exp they use.
Shapes: flat (n,) views of (B, H) matrices; the dimension legend is in __init__.py."""

import math

import numpy as np

from .._jit import jit, jit_kernel
from ._checks import _check_elementwise
from ._user_activation import call_backward, call_forward

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "ELU", "GELU", "IDENTITY", "LEAKY_RELU", "RELU", "SHIFTED_RELU", "SIGMOID", "SOFTPLUS", "TANH",
    "USER", "_activation_backward", "_activation_forward", "_exp", "_exp_inplace",
    "activation_backward", "activation_forward",
]

# ---------------------------------------------------------------------------------------------
# Activation codes. A hidden layer's activation is an integer code plus one float parameter, so
# that one compiled (and cached) kernel serves every built-in activation; see activations.py.
# ---------------------------------------------------------------------------------------------
IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SHIFTED_RELU, ELU, SOFTPLUS, GELU = range(9)
USER = -1  # a user's activation: its compiled pair is called through the address fn

_GELU_K = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715

# exp(x) = 2**n * exp(r) with n = round(x / ln 2) and |r| <= ln(2) / 2: 2**n from this table,
# exp(r) from its Taylor series to degree 7 (error below 1e-8 relative, under float32's
# resolution). Unlike a libm call, this loop vectorises: sigmoid is 3x faster with it.
_POW2 = np.array([2.0 ** k for k in range(-127, 128)], dtype=np.float32)
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


@jit(inline="always")
def _exp(x):
    # exp(x) for x in float32's range; arguments are clamped to [-87, 88] (exp(88) < float32 max)
    if x != x:  # NaN stays NaN (and must not index the table)
        return x
    # float(): compiled code computes in float64 whatever x is; so must NumPy's scalars when the
    # JIT is off (NUMBA_DISABLE_JIT=1), where a float32 x would keep every step below in float32
    x = min(max(float(x), -87.0), 88.0)
    n = math.floor(x * _LOG2E + 0.5)
    r = x - n * _LN2
    p = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (
        1.0 / 120 + r * (1.0 / 720 + r * (1.0 / 5040)))))))
    return float(_POW2[int(n) + 127]) * p


@jit_kernel
def _exp_inplace(x):
    # x (N,) = exp(x), element-wise with _exp. A separate function on a 1-D array on purpose:
    # the same loop over a raveled 2-D array inside a bigger kernel did not vectorise.
    for i in range(x.shape[0]):
        x[i] = _exp(x[i])


# ---------------------------------------------------------------------------------------------
# Activations (element-wise, on flat C-contiguous views). One kernel for all activations: the
# branch on `code` sits outside each loop, so every loop is a plain vectorisable loop. `fn` is
# the address of a user activation's compiled forward (backward) callback when code == USER,
# else 0 and unused.
# ---------------------------------------------------------------------------------------------
@jit_kernel
def _activation_forward(out, z, code, p, fn):
    # out (n,) = f(z (n,)); for a (B, H) matrix pass .ravel() views
    n = z.size
    if code == USER:
        if fn != 0:
            call_forward(fn, out, z)
    elif code == IDENTITY:
        for i in range(n):
            out[i] = z[i]
    elif code == SIGMOID:
        for i in range(n):
            out[i] = 1.0 / (1.0 + _exp(-z[i]))
    elif code == TANH:
        for i in range(n):
            out[i] = math.tanh(z[i])
    elif code == RELU:
        for i in range(n):
            out[i] = max(z[i], 0.0)
    elif code == LEAKY_RELU:
        for i in range(n):
            x = z[i]
            out[i] = x if x > 0.0 else p * x
    elif code == SHIFTED_RELU:
        c = -p
        for i in range(n):
            out[i] = max(z[i], c)
    elif code == ELU:
        for i in range(n):
            x = z[i]
            out[i] = x if x > 0.0 else p * math.expm1(x)
    elif code == SOFTPLUS:
        for i in range(n):
            x = z[i]
            out[i] = max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    elif code == GELU:
        for i in range(n):
            x = z[i]
            out[i] = 0.5 * x * (1.0 + math.tanh(_GELU_K * (x + _GELU_A * x * x * x)))


@jit_kernel
def _activation_backward(dz, da, z, a, code, p, fn):
    # dz (n,) = da (n,) * f'(z) ; a = f(z) (n,) is the forward output, reused where cheaper;
    # dz may be da (the loop computes in place)
    n = z.size
    if code == USER:
        if fn != 0:
            call_backward(fn, dz, da, z)
    elif code == IDENTITY:
        for i in range(n):
            dz[i] = da[i]
    elif code == SIGMOID:
        for i in range(n):
            dz[i] = da[i] * a[i] * (1.0 - a[i])
    elif code == TANH:
        for i in range(n):
            dz[i] = da[i] * (1.0 - a[i] * a[i])
    elif code == RELU:
        for i in range(n):
            dz[i] = da[i] if z[i] > 0.0 else 0.0
    elif code == LEAKY_RELU:
        for i in range(n):
            dz[i] = da[i] if z[i] > 0.0 else p * da[i]
    elif code == SHIFTED_RELU:
        c = -p
        for i in range(n):
            dz[i] = da[i] if z[i] > c else 0.0
    elif code == ELU:
        for i in range(n):
            dz[i] = da[i] if z[i] > 0.0 else da[i] * (a[i] + p)
    elif code == SOFTPLUS:
        for i in range(n):
            dz[i] = da[i] / (1.0 + np.exp(-z[i]))  # np: inf, not OverflowError, with JIT off
    elif code == GELU:
        for i in range(n):
            x = z[i]
            t = math.tanh(_GELU_K * (x + _GELU_A * x * x * x))
            dt = (1.0 - t * t) * _GELU_K * (1.0 + 3.0 * _GELU_A * x * x)
            dz[i] = da[i] * (0.5 * (1.0 + t) + 0.5 * x * dt)


def activation_forward(out, z, activation):
    """``out = f(z)`` for an :class:`~fastmlp.choices.activations.Activation`; any shape, the
    same for both."""
    _check_elementwise(z=z, out=out)
    fn = activation.addresses(z.dtype)[0]
    _activation_forward(out.reshape(-1), z.reshape(-1), activation.code, activation.param, fn)


def activation_backward(dz, da, z, a, activation):
    """``dz = da * f'(z)``; ``a = f(z)`` from the forward pass. All the same shape."""
    _check_elementwise(z=z, dz=dz, da=da, a=a)
    fn = activation.addresses(z.dtype)[1]
    _activation_backward(dz.reshape(-1), da.reshape(-1), z.reshape(-1), a.reshape(-1),
                         activation.code, activation.param, fn)
