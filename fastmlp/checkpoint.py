"""Checkpoints: a model, its optimizer state and the run's progress in one ``.npz`` file.

Written atomically (a temporary file in the same folder, flushed and fsynced, then renamed over
the target), so a crash or Ctrl-C while saving never leaves a half-written checkpoint and the
previous one survives until the new one is complete.

A checkpoint is data only: JSON metadata and NumPy arrays, read with ``allow_pickle=False``.
Nothing in it is imported or executed; a user activation is recorded by name, and whoever loads
the checkpoint must name that activation again themselves (see ``trainer.load_model``).
"""

import json
import os
import zipfile

import numpy as np

from .atomic import atomic_write, check_writable
from .errors import CheckpointError, ConfigError

FORMAT = "fastmlp-checkpoint-1"


def save(path, arrays, meta):
    """Write ``arrays`` (name -> ndarray) and ``meta`` (JSON-able dict) to ``path``."""
    meta = dict(meta, format=FORMAT)
    blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    def write(f):
        np.savez(f, __meta__=blob, **arrays)

    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    atomic_write(path, write)


def load(path):
    """Read a checkpoint: ``(arrays, meta)``. Raises CheckpointError naming the file and the
    problem when it is missing, truncated, corrupt or not a fastmlp checkpoint."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path}: no such file; check the path given to "
                              "--resume or to the model argument")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({exc}); use an "
                              "earlier checkpoint or train again") from None
    blob = arrays.pop("__meta__", None)
    try:
        meta = json.loads(blob.tobytes().decode()) if blob is not None else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a fastmlp checkpoint (its metadata "
                              f"is missing or unreadable)")
    return arrays, meta


def is_checkpoint(path):
    """True if ``path`` is a readable fastmlp checkpoint (reads only its metadata)."""
    try:
        with zipfile.ZipFile(os.fspath(path)) as z:
            meta = json.loads(np.lib.format.read_array(z.open("__meta__.npy"),
                                                       allow_pickle=False).tobytes().decode())
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def check_target(path, flag="--save", overwrite=False):
    """Before training: raise ConfigError unless ``path`` can take a checkpoint. An existing
    file is replaced only if it is a fastmlp checkpoint (a run's earlier checkpoint), or with
    ``overwrite``: a typo in ``--save`` must not destroy someone's data."""
    check_writable(path, flag)
    if os.path.exists(path) and not overwrite and not is_checkpoint(path):
        raise ConfigError(f"{flag} {path} exists and is not a fastmlp checkpoint; refusing to "
                          "overwrite it: choose another path, or add --overwrite "
                          "(overwrite=True) to replace it")
