"""Checkpoints: a model, its optimizer state and the run's progress in one ``.npz`` file.

:func:`save_run` / :func:`load_run` write and resume a training run (its weights, the
optimizer's state buffers, the input transform and the :class:`RunState`);
:func:`load_model` reads the model back for prediction.

Written atomically (a temporary file in the same folder, flushed and fsynced, then renamed over
the target), so a crash or Ctrl-C while saving never leaves a half-written checkpoint and the
previous one survives until the new one is complete.

A checkpoint is data only: JSON metadata and NumPy arrays, read with ``allow_pickle=False``.
Nothing in it is imported or executed; a user activation is recorded by name, and whoever loads
the checkpoint must name that activation again themselves (see :func:`load_model`).
"""

import json
import math
import os
import zipfile
from dataclasses import dataclass, field, fields

import numpy as np

from ..choices.optimizers import STATE_BUFFERS
from ..errors import CheckpointError, ConfigError
from ..files import atomic_write, check_writable

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


@dataclass
class RunState:
    """A run's progress, saved in every checkpoint as ``meta["state"]``: :meth:`to_dict`, these
    fields as keys in this order (the format old checkpoints have, so they resume)."""

    epoch: int = 0           # epochs completed
    step: int = 0            # steps done in the current epoch
    t: int = 0               # optimizer steps done in the run (Adam's bias correction)
    loss_sum: float = 0.0    # the current epoch so far: loss sum, correct count, samples,
    correct: int = 0
    samples: int = 0
    seconds: float = 0.0     # and training seconds
    best_val: float = -1.0   # early stopping: the best validation accuracy, its epoch (1-based,
    best_epoch: int = 0      # 0: none yet) and epochs since
    since_best: int = 0
    history: list = field(default_factory=list)  # one record (dict) per completed epoch

    def to_dict(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}


_RECORD_KEYS = {"epoch", "loss", "train_accuracy", "val_loss", "val_accuracy", "seconds",
                "samples_per_second", "batch_size", "lr", "weight_rms"}


def resumed_state(meta, fresh, path, epochs):
    """The run state saved in checkpoint ``path``, checked key by key against ``fresh`` (what
    this version keeps): unknown or missing keys and wrong types are a one-line error."""
    saved = meta.get("state")
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {path} holds no run state; it cannot be resumed "
                              "(evaluate it, or train anew)")
    unknown = sorted(set(saved) - set(fresh))
    missing = sorted(set(fresh) - set(saved))
    if unknown or missing:
        raise CheckpointError(
            f"checkpoint {path} has run state this version does not expect ("
            + "; ".join(p for p in (unknown and "unknown: " + ", ".join(map(str, unknown)),
                                    missing and "missing: " + ", ".join(missing)) if p)
            + "); it was written by another version: train anew")
    for key, value in fresh.items():
        v = saved[key]
        ok = isinstance(v, list) if isinstance(value, list) else (
            isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v) and v >= (-1 if key == "best_val" else 0))
        if not ok:
            raise CheckpointError(f"checkpoint {path} has a malformed run state ({key} = "
                                  f"{str(v)[:40]}); use another checkpoint")
    history = saved["history"]
    if len(history) != saved["epoch"] or not all(
            isinstance(h, dict) and _RECORD_KEYS <= set(h) for h in history):
        raise CheckpointError(f"checkpoint {path} has a malformed history (one record with "
                              f"{', '.join(sorted(_RECORD_KEYS))} per epoch expected); use "
                              "another checkpoint")
    if saved["epoch"] > epochs or not isinstance(saved["epoch"], int):
        raise CheckpointError(f"checkpoint {path} has already run {saved['epoch']} epochs; "
                              f"pass --epochs larger than that to continue it")
    return saved


def transform_meta(t):
    """The JSON part of input transform ``t`` (its arrays are saved beside it)."""
    return dict(image_shape=list(t.image_shape),
                kept_shape=list(t.kept_shape) if t.kept_shape is not None else None,
                description=t.description)


def transform_from_meta(tm, arrays):
    """The :class:`~fastmlp.data.transforms.InputTransform` saved as ``transform_meta`` and the
    ``pixel_index``, ``scale`` and ``shift`` arrays."""
    from ..data import InputTransform

    return InputTransform(
        image_shape=tuple(tm["image_shape"]), pixel_index=arrays["pixel_index"],
        scale=arrays["scale"], shift=arrays["shift"],
        kept_shape=tuple(tm["kept_shape"]) if tm["kept_shape"] else None,
        description=tm["description"])


def save_run(path, cfg, model, activation, ws, transform_arrays, best_params, state):
    """Write a training run to ``path``: the weights, the optimizer's state buffers (ws.opt1,
    ws.opt2), the input transform (``transform_arrays`` = (pixel_index, scale, shift)), the
    best weights when early stopping (``best_params``, else None) and ``state`` (RunState)."""
    idx, scale, shift = transform_arrays
    arrays = dict(params=model.params, **{b: getattr(ws, b) for b in STATE_BUFFERS},
                  pixel_index=idx, scale=scale, shift=shift)
    if best_params is not None:
        arrays["best_params"] = best_params
    meta = dict(config=cfg.to_dict(), sizes=list(model.sizes),
                activation=str(model.activation), activation_builtin=activation.builtin,
                n_classes=int(model.sizes[-1]), transform=transform_meta(model.transform),
                state=state.to_dict())
    save(path, arrays, meta)


def load_run(path, model, ws, best_params, epochs):
    """Resume the run saved in ``path`` into ``model`` (same network), the workspace's
    optimizer state and ``best_params`` (or None); returns its :class:`RunState`, checked
    against a run of ``epochs`` epochs."""
    arrays, meta = load(path)
    want = {"sizes": list(model.sizes), "activation": str(model.activation)}
    have = {"sizes": meta.get("sizes"), "activation": meta.get("activation")}
    for key in want:
        if want[key] != have[key]:
            raise CheckpointError(
                f"checkpoint {path} is for a different network ({key} {have[key]}, this run "
                f"asks for {want[key]}); resume with the original settings or train anew")
    try:
        model.params[:] = arrays["params"]
        for b in STATE_BUFFERS:
            getattr(ws, b)[:] = arrays[b]
        if best_params is not None:
            best_params[:] = arrays.get("best_params", model.params)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is missing or has malformed arrays "
                              f"({exc}); use another checkpoint") from None
    return RunState(**resumed_state(meta, RunState().to_dict(), path, epochs))


def load_model(path, activation=None):
    """The :class:`MLP` saved in checkpoint ``path`` (with its input transform), and the
    checkpoint's metadata.

    Loading never imports or runs anything named in the file. A model trained with a user
    activation needs that activation passed as ``activation`` (``"myacts:SWISH"`` or the
    :class:`~fastmlp.choices.activations.Activation` itself); a built-in one is read from the
    file."""
    from ..choices.activations import checkpoint_activation
    from ..model import MLP

    arrays, meta = load(path)
    cfg = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    act = checkpoint_activation(meta.get("activation"), cfg.get("activation"), activation, path)
    try:
        transform = transform_from_meta(meta["transform"], arrays)
        model = MLP(tuple(meta["sizes"]), act,
                    np.ascontiguousarray(arrays["params"], dtype=np.float32), transform)
    except (KeyError, TypeError, ValueError, OverflowError, ConfigError) as exc:
        raise CheckpointError(f"checkpoint {path} is malformed ({exc}); use another "
                              "checkpoint") from None
    return model, meta
