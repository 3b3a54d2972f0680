"""The errors fastmlp raises for bad input.

Every message names the problem and, where there is one, the fix. The command-line layer turns
any ``FastMLPError`` into one line on stderr and exit code 2 (3 for divergence, 1 for an output
that could not be written), never a traceback.
"""


class FastMLPError(Exception):
    """Base class: a problem the user can fix; the message says what and how."""

    exit_code = 2


class DataError(FastMLPError):
    """A data file is missing, corrupt, truncated, or does not match its checksum."""


class ConfigError(FastMLPError):
    """An option or argument is out of range or inconsistent with another."""


class CheckpointError(FastMLPError):
    """A checkpoint is corrupt or does not fit the requested model."""


class CacheError(FastMLPError):
    """Numba has no writable folder to cache fastmlp's compiled code in."""


class DivergenceError(FastMLPError):
    """Training produced a NaN or infinite loss."""

    exit_code = 3


class OutputError(FastMLPError):
    """An output file (checkpoint, metrics, history) could not be written after the run's
    outputs were checked: a full disk, a file removed under our feet. Exit code 1: not bad
    input, but the run did not deliver everything it was asked for."""

    exit_code = 1
