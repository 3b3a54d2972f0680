"""Activations: the built-in ones, their parameters, and user-written ones.

A hidden layer's activation is named by a spec string, ``name`` or ``name:param``:

==================  =================================  =========  ==============
spec                f(x)                               default p  weight init
==================  =================================  =========  ==============
identity            x                                  -          xavier
sigmoid             1 / (1 + exp(-x))                  -          xavier
tanh                tanh(x)                            -          xavier
relu                max(0, x)                          -          he
leaky_relu:a        x if x > 0 else a*x                0.01       he
shifted_relu:c      max(-c, x)                         1.0        he
elu:a               x if x > 0 else a*(exp(x) - 1)     1.0        he
softplus            log(1 + exp(x))                    -          he
gelu                tanh form of x * Phi(x)            -          he
==================  =================================  =========  ==============

``shifted_relu:c`` is ``max(-c, x)``: it lets the unit go down to ``-c`` (gradient 1 where
``x > -c``); ``c = 0`` is ReLU. It is *not* ``relu(x - c)``, which shifts the kink sideways.

User-written activations
------------------------
Write two plain Python functions of one float, the activation and its derivative, and wrap them::

    # mymodule.py
    import math
    from fastmlp import custom_activation

    def swish(x):
        return x / (1.0 + math.exp(-x))

    def swish_derivative(x):
        s = 1.0 / (1.0 + math.exp(-x))
        return s + x * s * (1.0 - s)

    SWISH = custom_activation(swish, swish_derivative, name="swish")

then ``python -m fastmlp.train --activation mymodule:SWISH`` (or ``mymodule:swish``, which
finds ``swish_derivative`` by name). fastmlp compiles them with Numba into an element-wise pair
of their own, which the built-ins' cached kernels and training loop call through its address
(kernels/_user_activation.py): full speed, no edit to fastmlp, and no copy of the loop to
compile. The functions must be Numba-compilable (``math`` functions, arithmetic, ``if``). The
first run with a new activation compiles only that pair (about a second); it is cached under a
digest of the functions' code and of the file they are defined in, so later runs with the same
functions load it, and an edit to that file compiles it anew. Functions with no source file
(typed at an interactive prompt) are compiled on every run.

A checkpoint records a user activation by name only, and loading one never imports anything:
evaluate, predict, ``load_model`` and ``--resume`` take the user activation only when it is named
again explicitly (``--activation mymodule:SWISH``, ``load_model(path, activation=...)``); see
:func:`checkpoint_activation`.
"""

import hashlib
import importlib
import inspect
import math
import os
import types
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .. import kernels
from .._jit import jit_uncached
from ..errors import CheckpointError, ConfigError

# name: (code, default parameter or None if it takes none, init scheme)
BUILTINS = {
    "identity": (kernels.IDENTITY, None, "xavier"),
    "sigmoid": (kernels.SIGMOID, None, "xavier"),
    "tanh": (kernels.TANH, None, "xavier"),
    "relu": (kernels.RELU, None, "he"),
    "leaky_relu": (kernels.LEAKY_RELU, 0.01, "he"),
    "shifted_relu": (kernels.SHIFTED_RELU, 1.0, "he"),
    "elu": (kernels.ELU, 1.0, "he"),
    "softplus": (kernels.SOFTPLUS, None, "he"),
    "gelu": (kernels.GELU, None, "he"),
}


@dataclass(frozen=True)
class Activation:
    """A hidden-layer activation: what the kernels need (``code``, ``param``, ``kernels``) and
    how to initialise the weights that feed it (``init``: "he" or "xavier")."""

    name: str
    code: int
    param: float
    init: str
    spec: str = ""
    # user activations: their compiled pair (kernels/_user_activation.py); None for a built-in
    user: Optional[kernels.UserKernels] = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if (self.code == kernels.USER) != (self.user is not None):
            raise ConfigError(f"activation {self.name!r}: a user activation (code USER) needs "
                              "its compiled pair; make it with custom_activation(f, df)")

    def __str__(self):
        return self.spec or self.name

    @property
    def builtin(self):
        """Whether this is one of fastmlp's own activations (else a user's)."""
        return self.user is None

    @property
    def cache_key(self):
        """A user activation's digest of its functions' code and source file, under which its
        pair is cached (None: a built-in, or not cacheable; see :func:`source_key`)."""
        return None if self.user is None else self.user.key

    def addresses(self, dtype=np.float32):
        """``(forward, backward)``: the addresses of the user's compiled pair for arrays of
        ``dtype``, which the kernels call (see kernels/_user_activation.py); ``(0, 0)`` for a
        built-in."""
        if self.user is None:
            return 0, 0
        pair = self.user.pair(dtype)
        return pair.forward, pair.backward


def custom_activation(forward, derivative, name=None, init="he"):
    """Make an :class:`Activation` from two scalar Python functions ``f(x)`` and ``f'(x)``.

    Both are compiled with Numba and called element by element inside fastmlp's kernels.
    """
    if not callable(forward) or not callable(derivative):
        raise ConfigError("custom_activation needs two functions: forward(x) and derivative(x)")
    if init not in ("he", "xavier"):
        raise ConfigError(f"init must be 'he' or 'xavier', got {init!r}")
    name = name or getattr(forward, "__name__", "custom")
    f = getattr(forward, "py_func", forward)
    df = getattr(derivative, "py_func", derivative)
    if (f, df) not in _USER_KERNELS:  # the same functions again (a second get_activation)
        user = kernels.UserKernels(jit_uncached(inline="always")(f),
                                   jit_uncached(inline="always")(df), source_key(f, df))
        _check_compiles(name, user)
        _USER_KERNELS[f, df] = user
    user = _USER_KERNELS[f, df]
    return Activation(name=name, code=kernels.USER, param=0.0, init=init, spec=name, user=user)


# (f, df) -> their UserKernels: compiled once per process, and the functions kept alive with the
# code compiled from them
_USER_KERNELS = {}


def source_key(*functions):
    """A digest of ``functions``: each one's code (bytecode, constants, names, nested code), the
    numbers in its closure, and the whole source file it is defined in (so an edit to a helper
    or a constant it uses counts too). None when one has no source file or closes over something
    other than a number: its compiled code then cannot be told apart from another's, so it must
    not be cached."""
    digest = hashlib.sha256()
    for fn in functions:
        code = getattr(fn, "__code__", None)
        try:
            path = inspect.getsourcefile(fn)
        except TypeError:
            path = None
        if code is None or not path or not os.path.isfile(path):
            return None
        cells = [c.cell_contents for c in (fn.__closure__ or ())]
        if not all(isinstance(v, (bool, int, float)) for v in cells):
            return None
        with open(path, "rb") as f:
            digest.update(f.read())
        digest.update(_code_bytes(code) + repr(cells).encode())
    return digest.hexdigest()[:20]


def _code_bytes(code):
    # what a code object computes, without where it was loaded from (file name, line numbers)
    parts = [getattr(code, "co_qualname", code.co_name).encode(), code.co_code,
             repr(code.co_names).encode()]
    for c in code.co_consts:
        parts.append(_code_bytes(c) if isinstance(c, types.CodeType) else repr(c).encode())
    return b"\0".join(parts)


def _check_compiles(name, user):
    """Compile the user's pair for the loop (float32) now, so a function Numba cannot compile
    fails here with a clear message rather than deep inside the training loop."""
    try:
        user.pair(np.float32)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"activation {name!r} cannot be compiled by Numba ({first}); write forward(x) "
            "and derivative(x) as plain scalar functions using math and arithmetic") from None


def _load_user(spec):
    module_name, _, attr = spec.partition(":")
    attr, _, extra = attr.partition(":")
    if extra:
        raise ConfigError(f"activation {spec!r}: a user activation takes no parameter after "
                          "its name; write the parameter into the function")
    if not module_name or not attr:
        raise ConfigError(f"activation {spec!r}: a user activation is module:name, e.g. "
                          "myacts:SWISH")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"activation {spec!r}: cannot import module {module_name!r} ({exc}); "
                          "check the name and that its folder is on PYTHONPATH") from None
    except Exception as exc:  # the user's module itself raised while being imported
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ConfigError(f"activation {spec!r}: importing module {module_name!r} raised "
                          f"{type(exc).__name__}: {first}; fix that module") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise ConfigError(f"activation {spec!r}: module {module_name!r} has no {attr!r}")
    if isinstance(obj, Activation):
        return obj
    derivative = getattr(module, attr + "_derivative", None)
    if callable(obj) and callable(derivative):
        return custom_activation(obj, derivative, name=spec)
    raise ConfigError(f"activation {spec!r}: {attr!r} must be made by "
                      f"fastmlp.custom_activation(f, df), or be a function with a "
                      f"{attr + '_derivative'!r} beside it")


def get_activation(spec) -> Activation:
    """Parse an activation spec (``"relu"``, ``"shifted_relu:0.5"``, ``"pkg.mod:name"``) or pass
    an :class:`Activation` through."""
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"activation must be a name such as 'relu', got {spec!r}")
    spec = spec.strip()
    name, _, arg = spec.partition(":")
    if name not in BUILTINS:
        if "." in name or (arg and not _is_number(arg)):
            return _load_user(spec)
        raise ConfigError(f"unknown activation {name!r}; choose one of "
                          f"{', '.join(BUILTINS)} or give module:function for your own")
    code, default, init = BUILTINS[name]
    if arg:
        if default is None:
            raise ConfigError(f"activation {name!r} takes no parameter (got {spec!r})")
        if not _is_number(arg):
            raise ConfigError(f"activation {spec!r}: parameter {arg!r} is not a number")
        param = float(arg)
    else:
        param = default if default is not None else 0.0
    if name == "shifted_relu" and param < 0:
        raise ConfigError(f"activation {spec!r}: shifted_relu:c needs c >= 0 (max(-c, x)); "
                          f"got {param}")
    canonical = f"{name}:{param:g}" if default is not None else name
    return Activation(name=name, code=code, param=float(param), init=init, spec=canonical)


def builtin_activation(spec):
    """The built-in activation ``spec`` names, or None if it names no built-in. Never imports
    anything, whatever ``spec`` holds: this is how checkpoints are read."""
    if not isinstance(spec, str):
        return None
    name = spec.strip().partition(":")[0]
    if name not in BUILTINS:
        return None
    return get_activation(spec)


def _printable(text):
    """``text`` if it can be shown in a one-line message as a module:name spec, else None."""
    if isinstance(text, str) and text and len(text) < 200 and text.isprintable() \
            and " " not in text:
        return text
    return None


def checkpoint_activation(recorded, spec, given, path):
    """The activation to load checkpoint ``path`` with, without importing anything it names.

    recorded: the activation's name in the checkpoint; spec: how the run that wrote it named it
    (``myacts:SWISH``); given: what the caller passes now (a spec, an :class:`Activation` or
    None). A built-in is parsed from ``recorded``; a user activation is used only when
    ``given`` names it, and must carry the recorded name."""
    if given is None:
        try:
            act = builtin_activation(recorded)
        except ConfigError as exc:
            raise CheckpointError(f"checkpoint {path} is malformed ({exc}); use another "
                                  "checkpoint") from None
        if act is not None:
            return act
        how = _printable(spec) if spec and ":" in str(spec) else None
        how = how or "MODULE:NAME"
        raise CheckpointError(
            f"checkpoint {path} was trained with the user activation {str(recorded)[:80]!r}; "
            f"loading a checkpoint never imports code, so name it yourself: --activation {how} "
            f"(Python: load_model(path, activation={how!r}), or pass the Activation object)")
    act = get_activation(given)
    if recorded not in (act.name, str(act)) and not (spec and spec == given):
        raise CheckpointError(
            f"checkpoint {path} was trained with activation {str(recorded)[:80]!r}, but the "
            f"activation given is {str(act)!r}; give the one it was trained with")
    return act


def _is_number(text):
    """A finite number (``float`` also parses 'nan' and 'inf', which no parameter may be)."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _he_std(D, H):
    return math.sqrt(2.0 / D)


def _xavier_std(D, H):
    return math.sqrt(2.0 / (D + H))


def _book_std(D, H):
    return math.sqrt(1.0 / (D + 1))


# Weight-init schemes, one row each: name -> (std of a hidden layer's weights, std of the output
# layer's weights, both as functions of the layer's (D inputs, H outputs), and whether biases are
# drawn from the same normal (True) or start at zero). Weights are N(0, std^2).
INIT_SCHEMES = {
    "he": (_he_std, _xavier_std, False),          # He et al. 2015 for the ReLU family
    "xavier": (_xavier_std, _xavier_std, False),  # Glorot & Bengio 2010 (normal form)
    # The book's initialize_weights: the bias is one more input row, so weights and biases
    # alike are N(0, 1 / (D + 1)), in every layer.
    "book": (_book_std, _book_std, True),
}


def resolve_init(activation: Activation, init: Optional[str]) -> str:
    """The weight-init scheme: the one asked for, or the activation's natural one."""
    if init in (None, "auto"):
        return activation.init
    if init not in INIT_SCHEMES:
        raise ConfigError(f"unknown init {init!r}; choose auto, {', '.join(INIT_SCHEMES)}")
    return init
