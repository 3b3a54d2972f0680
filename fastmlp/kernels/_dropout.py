"""Inverted dropout: the forward/backward pair and its counter-based random bits (splitmix64
seeds per (seed, stream) and per batch row, xorshift64* draws). Shapes: flat (n,) views."""

import numpy as np

from .._jit import jit, jit_kernel
from ._checks import _check_elementwise

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "_U64", "INPUT_STREAM", "_dropout_backward", "_dropout_forward", "_row_seed", "_splitmix64",
    "_stream_seed", "dropout_backward", "dropout_forward",
]

# ---------------------------------------------------------------------------------------------
# Inverted dropout with a counter-based generator: the mask of (seed, stream) is the same
# whatever ran before it, so runs repeat exactly and a resumed run draws the same masks.
# ---------------------------------------------------------------------------------------------
_U64 = np.uint64
# the stream of input dropout's masks (layer l's dropout: l + 1). An np.int64, not a literal 0:
# Numba types a constant int argument of a jitted call as Literal[int] and compiles the callee
# once more for it (0.1-0.3 s of a cold start each time)
INPUT_STREAM = np.int64(0)


@jit
def _splitmix64(x):
    x = x + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


@jit
def _stream_seed(seed, a, b, c):
    # A 64-bit seed for stream (a, b, c) of `seed`, e.g. (epoch, step, layer).
    s = _splitmix64(_U64(seed))
    s = _splitmix64(s ^ _U64(a))
    s = _splitmix64(s ^ _U64(b))
    return _splitmix64(s ^ _U64(c))


@jit
def _row_seed(state, row):
    # the 64-bit seed of row `row` of a batch whose stream seed is `state`: each row of a
    # dropout mask has its own, so any thread can draw any block of rows
    return _splitmix64(state ^ _U64(row))


@jit_kernel
def _dropout_forward(out, mask, inp, rate, state):
    # out (n,) = inp (n,) * mask (n,); mask[i] = 0 with probability `rate`, else 1/(1-rate).
    # Randomness: xorshift64* from `state` (a 64-bit seed), 16 bits per element.
    n = inp.size
    threshold = int(rate * 65536.0 + 0.5)
    keep = 1.0 / (1.0 - rate)
    x = state | _U64(1)
    i = 0
    while i < n:
        x ^= x >> _U64(12)
        x ^= x << _U64(25)
        x ^= x >> _U64(27)
        r = x * _U64(0x2545F4914F6CDD1D)
        for j in range(4):
            if i + j < n:
                u = int((r >> _U64(16 * j)) & _U64(0xFFFF))
                m = keep if u >= threshold else 0.0
                mask[i + j] = m
                out[i + j] = inp[i + j] * m
        i += 4


@jit_kernel
def _dropout_backward(dinp, dout, mask):
    # dinp (n,) = dout (n,) * mask (n,)
    for i in range(dout.size):
        dinp[i] = dout[i] * mask[i]


def _check_rate(rate):
    if not (0.0 <= rate < 1.0):
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")


def dropout_forward(out, mask, inp, rate, seed, stream=(0, 0, 0)):
    """Inverted dropout: ``out = inp * mask``, mask 0 with probability ``rate`` else
    ``1 / (1 - rate)``. All arrays the same shape; ``seed`` and ``stream`` (three non-negative
    ints, e.g. epoch, step, layer) fix the mask. Rates are resolved to 1/65536."""
    _check_rate(rate)
    _check_elementwise(inp=inp, out=out, mask=mask)
    # Numba returns the uint64 seed as a Python int; pass it back as uint64 so this draws the
    # same mask as the training loop (an int64 would overflow or take another code path).
    state = np.uint64(_stream_seed(seed, *stream))
    _dropout_forward(out.reshape(-1), mask.reshape(-1), inp.reshape(-1), float(rate), state)


def dropout_backward(dinp, dout, mask):
    """``dinp = dout * mask`` with the mask of the forward pass."""
    _check_elementwise(dout=dout, dinp=dinp, mask=mask)
    _dropout_backward(dinp.reshape(-1), dout.reshape(-1), mask.reshape(-1))
