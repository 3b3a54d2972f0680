"""The augmentation choices of ``--augment``: one row each, and the parser of its spec.

The kernels (the gather that moves each image) are in augment_kernels.py; the spec is the
config's text so that checkpoints, sweeps and the command line all carry it as it was given.
"""

from typing import NamedTuple

from .errors import ConfigError


class Augmentation(NamedTuple):
    name: str
    param: str       # what the number after the colon is ("" for none)
    low: int         # its range
    high: int
    help: str


AUGMENTATIONS = {
    "none": Augmentation("none", "", 0, 0, "train on the images as they are"),
    "shift": Augmentation("shift", "K", 1, 8,
                          "each training image moved by a random whole-pixel offset of up to K "
                          "(1..8) pixels each way, drawn anew every epoch (uniform; blank "
                          "pixels shifted in; evaluation images are never moved)"),
}


def parse_augment(spec):
    """``spec`` ("none" or "shift:K") -> the largest shift K (0 for none); ConfigError naming
    the flag and what it accepts otherwise."""
    choices = ", ".join(a.name + (f":{a.param}" if a.param else "")
                        for a in AUGMENTATIONS.values())
    if not isinstance(spec, str):
        raise ConfigError(f"--augment must be a string such as shift:2, got {spec!r}")
    name, _, value = spec.strip().partition(":")
    row = AUGMENTATIONS.get(name)
    if row is None:
        raise ConfigError(f"--augment: unknown augmentation {spec!r}; choose {choices}")
    if not row.param:
        if value:
            raise ConfigError(f"--augment {name} takes no parameter, got {spec!r}")
        return 0
    try:
        k = int(value)
    except ValueError:
        k = None
    if k is None or not row.low <= k <= row.high:
        raise ConfigError(f"--augment {name}:{row.param} needs {row.param} a whole number in "
                          f"{row.low}..{row.high}, got {spec!r}")
    return k
