"""Training configuration: one frozen dataclass, validated, filled by the command line or code.

``TrainConfig()`` is the default run of ``python -m fastmlp.train``; presets are partial
configurations applied on top of it (see :data:`PRESETS`).
"""

import dataclasses
import math
import os
import typing
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .activations import get_activation, resolve_init
from .augment import parse_augment
from .errors import ConfigError
from .schedules import SCHEDULES

OPTIMIZERS = ("sgd", "momentum", "adam")
DATASETS = ("mnist", "fashion-mnist")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Field comments are the ``--help`` texts."""

    # data
    dataset: str = "mnist"               # mnist or fashion-mnist
    data_dir: Optional[str] = None       # a directory holding the four IDX files
    download: bool = False               # download the data set if not found (needs a network)
    split: str = "book"                  # book: validation = first 5,000 test images; stratified
    crop: int = 0                        # drop this many border pixels on every side
    center: Optional[int] = None         # keep only the K x K innermost pixels
    auto_crop: bool = False              # keep only pixels nonzero in some training image
    normalize: str = "unit"              # unit: pixels / 255; standardize: training mean and std
    # network
    hidden: Tuple[int, ...] = (100,)     # hidden layer sizes
    activation: str = "shifted_relu:0.5"  # hidden activation spec, or module:name
    init: str = "auto"                   # auto (by activation), he, xavier or book
    # optimisation
    epochs: int = 12
    batch_size: int = 128
    # first epoch's batch size, doubled each epoch. 64, not 20: at batch 20 and lr 0.05 deep
    # shifted-ReLU networks collapsed (units pushed below their floor for good; issue 14)
    batch_ramp: Optional[int] = 64
    lr: float = 0.05
    lr_scale_batch: bool = False         # scale lr linearly with the ramped batch size
    optimizer: str = "momentum"
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    schedule: str = "cosine"
    lr_step: float = 10.0                # step schedule: epochs between decays
    lr_gamma: float = 0.1                # step schedule: decay factor
    lr_min_ratio: float = 0.0            # cosine schedule: final lr / initial lr
    warmup: float = 0.0                  # epochs of linear warm-up
    dropout: float = 0.1                 # hidden-layer dropout rate
    dropout_input: float = 0.0           # input dropout rate
    augment: str = "none"                # none, or shift:K (each training image moved by a
    #                                      random offset of up to K pixels; augment.py)
    early_stop: Optional[int] = None     # stop after this many epochs without a better val acc
    # run
    seed: int = 0
    threads: Optional[int] = None        # default: all available cores
    input_path: str = "auto"             # auto, sparse or dense first layer (same results)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _normalized(self, f))
        self.validate()

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["hidden"] = list(self.hidden)
        if not isinstance(self.activation, str):  # an Activation object: recorded by name
            d["activation"] = str(self.activation)
        return d

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict):
            raise ConfigError(f"a configuration must be a dict of settings, got "
                              f"{type(d).__name__}")
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        return cls(**d)

    def validate(self):
        def bad(msg):
            raise ConfigError(msg)

        if not self.dataset.strip():
            bad("--dataset must be a name such as mnist, got an empty string")
        if self.dataset not in DATASETS and self.data_dir is None:
            bad(f"--dataset: unknown dataset {self.dataset!r}; choose {', '.join(DATASETS)} "
                "or give --data-dir")
        if self.split not in ("book", "stratified"):
            bad(f"--split: unknown split {self.split!r}; choose book or stratified")
        for name, (low, high, open_low, open_high) in _RANGES.items():
            value = getattr(self, name)
            if value is None:
                continue
            if not (math.isfinite(value) and (low < value if open_low else low <= value)
                    and (value < high if open_high else value <= high)):
                bad(f"{_flag(name)} must be {_accepts(name)}, got {value!r}")
        if self.center is not None and self.crop:
            bad("--crop and --center both choose the kept pixels; give one of them")
        if self.normalize not in ("unit", "standardize"):
            bad(f"--normalize: unknown normalize {self.normalize!r}; choose unit or standardize")
        if not self.hidden or any(not 1 <= h <= _MAX_SIZE for h in self.hidden):
            bad(f"--hidden needs one or more layer sizes in 1..{_MAX_SIZE}, got "
                f"{list(self.hidden)}")
        act = get_activation(self.activation)
        resolve_init(act, self.init)
        if self.batch_ramp is not None and self.batch_ramp > self.batch_size:
            bad(f"--batch-ramp {self.batch_ramp} is larger than --batch-size "
                f"{self.batch_size}; the ramp starts small and doubles up to the batch size")
        if self.optimizer not in OPTIMIZERS:
            bad(f"--optimizer: unknown optimizer {self.optimizer!r}; choose "
                f"{', '.join(OPTIMIZERS)}")
        parse_augment(self.augment)
        if self.schedule not in SCHEDULES:
            bad(f"--schedule: unknown schedule {self.schedule!r}; choose {', '.join(SCHEDULES)}")
        if self.input_path not in ("auto", "sparse", "dense"):
            bad(f"--input-path: unknown input path {self.input_path!r}; choose auto, sparse or "
                "dense")


def _flag(name):
    return "--" + name.replace("_", "-")


# The numeric fields' ranges, one row each: (low, high, low excluded, high excluded). NaN and
# infinity are meaningless for every one of them and always refused. Whole-number fields stop
# at sizes a run could use (larger ones would overflow the compiled loop's int64 or never end).
_MAX_SIZE = 2**31 - 1
_INF = float("inf")
_RANGES = {
    "crop": (0, _MAX_SIZE, False, False),
    "center": (1, _MAX_SIZE, False, False),
    "epochs": (1, 1_000_000, False, False),
    "batch_size": (1, _MAX_SIZE, False, False),
    "batch_ramp": (1, _MAX_SIZE, False, False),
    "lr": (0.0, _INF, True, True),
    "momentum": (0.0, 1.0, False, True),
    "beta1": (0.0, 1.0, False, True),
    "beta2": (0.0, 1.0, False, True),
    "eps": (0.0, _INF, True, True),
    "weight_decay": (0.0, _INF, False, True),
    "lr_step": (0.0, _INF, True, True),
    "lr_gamma": (0.0, 1.0, True, False),
    "lr_min_ratio": (0.0, 1.0, False, False),
    "warmup": (0.0, _INF, False, True),
    "dropout": (0.0, 1.0, False, True),
    "dropout_input": (0.0, 1.0, False, True),
    "early_stop": (1, 1_000_000, False, False),
    "seed": (0, 2**63 - 1, False, False),
    "threads": (1, 4096, False, False),
}


def _accepts(name):
    """What field ``name`` accepts, in words, from its row of _RANGES."""
    low, high, open_low, open_high = _RANGES[name]
    kind = _KINDS[name]
    if kind is int:
        text = f"a whole number in {low + open_low}..{high - open_high}"
    elif high == _INF:
        text = (f"a finite number > {low:g}" if open_low else f"a finite number >= {low:g}")
        text = "a positive finite number" if (open_low and low == 0) else text
    else:
        text = f"a number in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    if name == "batch_ramp":
        text += " (or 0 / None for no ramp)"
    if name in ("center", "early_stop", "threads"):
        text += " (or None)"
    return text


def _kind(tp):
    """(base type, optional) of a field annotation."""
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


_KINDS = {f.name: _kind(f.type)[0] for f in dataclasses.fields(TrainConfig)}


def _normalized(cfg, f):
    """Field ``f`` of ``cfg`` checked for its type and converted to the plain Python type (NumPy
    scalars, ints for floats); raises ConfigError naming the flag and the type it accepts."""
    value = getattr(cfg, f.name)
    tp, optional = _kind(f.type)
    if value is None and optional:
        return None
    if f.name == "hidden":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(f"--hidden must be a sequence of layer sizes such as (100,) or "
                              f"(1024, 512), got {value!r}")
        sizes = tuple(value)
        if not all(_is_int(h) for h in sizes):
            raise ConfigError(f"--hidden must hold whole numbers, got {sizes!r}")
        return tuple(int(h) for h in sizes)
    if f.name == "activation" and not isinstance(value, str):
        from .activations import Activation

        if isinstance(value, Activation):
            return value
    if f.name == "data_dir":
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise ConfigError(f"--data-dir must be a directory path, got {value!r}")
        return os.path.abspath(os.path.expanduser(os.fspath(value)))
    if tp is bool and isinstance(value, (bool, np.bool_)):
        return bool(value)
    if tp is int and _is_int(value):
        return int(value)
    if tp is float and (_is_int(value) or isinstance(value, (float, np.floating))):
        return float(value)
    if tp is str and isinstance(value, str):
        return value
    what = {bool: "True or False", int: "a whole number", float: "a number",
            str: "a string"}.get(tp, str(tp))
    raise ConfigError(f"{_flag(f.name)} must be {what}" + (" or None" if optional else "")
                      + f", got {value!r} ({type(value).__name__})")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


# Presets: partial configurations applied over the defaults (command-line flags override them).
PRESETS = {
    # The book's final one-hidden-layer network and recipe (Programming Machine Learning, ch. 15,
    # final test): 784-100-10 sigmoid + softmax, weights and biases N(0, 1/(D+1)), inputs
    # standardized by the training set's one mean and std, plain mini-batch GD at lr 1 on batches
    # of 256. Epochs 30 instead of the book's 10 (10 give 98.4% on the test half, 30 give 98.7%)
    # and a reshuffle every epoch; the full list of differences is in docs/book_recipe.md.
    # Every field the recipe fixes is set here, so no change of the defaults leaks into it.
    "book": dict(hidden=(100,), activation="sigmoid", init="book", normalize="standardize",
                 crop=0, center=None, auto_crop=False, split="book", optimizer="sgd", lr=1.0,
                 batch_size=256, batch_ramp=None, lr_scale_batch=False, schedule="constant",
                 warmup=0.0, weight_decay=0.0, dropout=0.0, dropout_input=0.0, epochs=30),
    # The strongest MLP we train in minutes: two wide shifted-ReLU layers with dropout. No batch
    # ramp: with 1.6M parameters the per-step update is memory-bound, and batch 32 ran 3x slower.
    "strong": dict(hidden=(1024, 1024), activation="shifted_relu:0.5", optimizer="momentum",
                   lr=0.05, batch_size=128, batch_ramp=None, warmup=1.0, schedule="cosine",
                   dropout=0.3, dropout_input=0.1, epochs=40, crop=2),
}


def preset(name, **overrides):
    """The :class:`TrainConfig` of preset ``name`` with ``overrides`` applied."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})
