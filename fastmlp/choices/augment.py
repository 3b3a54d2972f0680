"""The augmentation choices of ``--augment``: one row each, and the parser of its spec.

The kernels (the gather that moves each image) are in kernels/_augment.py; the spec is the
config's text so that checkpoints, sweeps and the command line all carry it as it was given.
"""

from typing import NamedTuple

from ..errors import ConfigError


class Augmentation(NamedTuple):
    name: str
    param: str       # what the number after the colon is ("" for none)
    low: float       # its range
    high: float
    kind: type       # int or float
    help: str


AUGMENTATIONS = {
    "none": Augmentation("none", "", 0, 0, int, "train on the images as they are"),
    "shift": Augmentation("shift", "K", 1, 8, int,
                          "each training image moved by a random whole-pixel offset of up to K "
                          "(1..8) pixels each way"),
    "rotate": Augmentation("rotate", "DEG", 1, 45, float,
                           "each training image rotated about its centre by a random angle of "
                           "up to DEG (1..45) degrees either way, bilinear (the first layer "
                           "then reads every input: dense)"),
    "elastic": Augmentation("elastic", "PX", 0.5, 6, float,
                            "each training image distorted by a random smooth field that moves "
                            "its pixels by up to about PX (0.5..6) pixels each way, bilinear "
                            "(dense, like rotate)"),
}
JOIN = "+"  # augmentations combined: shift:2+rotate:10 (a comma would split a sweep's values)
NOTE = (f"combine with {JOIN} (shift:2{JOIN}rotate:10{JOIN}elastic:2); drawn anew every epoch, "
        "uniformly; blank pixels come in at the border; evaluation images are never changed")


class Augment(NamedTuple):
    """A parsed ``--augment`` spec: the largest shift in pixels, rotation in degrees and elastic
    displacement (at the field's nodes) in pixels."""

    shift: int = 0
    rotate: float = 0.0
    elastic: float = 0.0

    @property
    def resamples(self):
        """True when the images are sampled bilinearly (a rotation or an elastic distortion):
        every input is then read, so the first layer runs dense."""
        return self.rotate > 0 or self.elastic > 0


def parse_augment(spec):
    """``spec`` ("none", "shift:K", "rotate:DEG", "elastic:PX" or several joined by +) ->
    :class:`Augment`;
    ConfigError naming the flag and what it accepts otherwise."""
    choices = ", ".join(a.name + (f":{a.param}" if a.param else "")
                        for a in AUGMENTATIONS.values())
    if not isinstance(spec, str):
        raise ConfigError(f"--augment must be a string such as shift:2, got {spec!r}")
    values = {}
    parts = spec.strip().split(JOIN)
    for part in parts:
        name, _, value = part.strip().partition(":")
        row = AUGMENTATIONS.get(name)
        if row is None:
            raise ConfigError(f"--augment: unknown augmentation {part!r} in {spec!r}; choose "
                              f"{choices}, combined with {JOIN}")
        if name == "none" and len(parts) > 1:
            raise ConfigError(f"--augment {spec!r}: none cannot be combined with others")
        if name in values:
            raise ConfigError(f"--augment {spec!r}: {name} is given twice; give it once")
        if not row.param:
            if value:
                raise ConfigError(f"--augment {name} takes no parameter, got {spec!r}")
            values[name] = 0
            continue
        try:
            v = row.kind(value)
        except ValueError:
            v = None
        if v is None or not row.low <= v <= row.high:
            what = "a whole number" if row.kind is int else "a number"
            raise ConfigError(f"--augment {name}:{row.param} needs {row.param} {what} in "
                              f"{row.low:g}..{row.high:g}, got {spec!r}")
        values[name] = v
    return Augment(shift=int(values.get("shift", 0)), rotate=float(values.get("rotate", 0.0)),
                   elastic=float(values.get("elastic", 0.0)))
