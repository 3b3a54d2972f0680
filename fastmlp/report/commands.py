"""Command lines: the ``python -m fastmlp.train`` flags that give a TrainConfig."""

import dataclasses
import shlex

from ..config import TrainConfig, flag_argv, preset


def train_argv(cfg, preset_name=None):
    """The ``python -m fastmlp.train`` arguments whose configuration is ``cfg``: ``--preset``
    (if given) and a flag for every field that differs from the preset or the defaults.
    Raises ValueError for a config no command line can express."""
    base = preset(preset_name) if preset_name else TrainConfig()
    argv = ["--preset", preset_name] if preset_name else []
    for f in dataclasses.fields(TrainConfig):
        value, default = getattr(cfg, f.name), getattr(base, f.name)
        if value != default:
            argv += flag_argv(f.name, value)
    return argv


def command_for(cfg, preset_name=None):
    """``python -m fastmlp.train ...`` for ``cfg``, checked: its flags parse back to ``cfg``."""
    from ..train import build_parser, config_from_args

    argv = train_argv(cfg, preset_name)
    back = config_from_args(build_parser().parse_args(argv))
    if back != cfg:
        raise ValueError(f"command line {argv} does not reproduce the configuration")
    return " ".join(["python -m fastmlp.train"] + [shlex.quote(a) for a in argv])
