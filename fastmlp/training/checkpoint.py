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


# The arrays a checkpoint may hold: name -> (dtype, what fixes its length, needed by every
# reader). "params": the network's parameter count (from the metadata's "sizes"); "inputs": the
# first layer's input count (sizes[0]). Each array's header is read and checked against this
# table before a byte of its data is: a file cannot make a reader allocate more than its own
# metadata implies (a zip bomb), and nothing of the wrong shape reaches compiled code.
ARRAYS = {
    "params": (np.float32, "params", True),
    **{b: (np.float32, "params", False) for b in STATE_BUFFERS},
    "best_params": (np.float32, "params", False),
    "pixel_index": (np.int64, "inputs", True),
    "scale": (np.float32, "inputs", True),
    "shift": (np.float32, "inputs", True),
}
MAX_META_BYTES = 64 * 2**20      # the JSON metadata (a run's history: ~300 bytes an epoch)
MAX_PARAMS = 2**28               # 1 GiB of float32 per parameter array; training refuses more
MAX_IMAGE_PIXELS = 2**24         # 4096 x 4096


def load(path):
    """Read a checkpoint: ``(arrays, meta)``. Raises CheckpointError naming the file and the
    problem when it is missing, truncated, corrupt, not a fastmlp checkpoint, or when its arrays
    disagree with its metadata (shapes, dtypes, unknown or missing arrays; checked from each
    array's header before its data is read), its metadata is inconsistent (:func:`check_meta`)
    or its arrays hold values compiled code must not see (non-finite parameters, pixel indices
    outside the image)."""
    path = os.fspath(path)
    meta, arrays = _read(path, with_arrays=True)
    missing = [n for n, (_, _, needed) in ARRAYS.items() if needed and n not in arrays]
    if missing:
        raise CheckpointError(f"checkpoint {path} has no {', '.join(missing)} array; use "
                              "another checkpoint")
    _check_values(arrays, meta, path)
    return arrays, meta


# What reading a damaged zip file raises (RuntimeError: an encrypted member)
_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, KeyError,
            NotImplementedError, RuntimeError)


def _read(path, with_arrays):
    """``(meta, arrays or None)`` of the checkpoint at ``path``: its members listed, its
    metadata read and checked (:func:`check_meta`), then, ``with_arrays``, each array read
    after its header was checked against the metadata."""
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path}: no such file; check the path given to "
                              "--resume or to the model argument")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path} is a directory; give a checkpoint file (.npz)")
    try:
        with zipfile.ZipFile(path) as z:
            members = _members(z, path)
            meta = _read_meta(z, members.pop("__meta__", None), path)
            shapes = check_meta(meta, path)
            arrays = ({name: _read_array(z, info, path, name, shapes)
                       for name, info in members.items()} if with_arrays else None)
    except _CORRUPT as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({exc}); use an "
                              "earlier checkpoint or train again") from None
    return meta, arrays


def _members(z, path):
    """``{array name: ZipInfo}``; any other member, or a name twice, is a CheckpointError."""
    members = {}
    for info in z.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else None
        if name != "__meta__" and name not in ARRAYS:
            raise CheckpointError(f"checkpoint {path} holds {info.filename[:60]!r}, which no "
                                  "fastmlp checkpoint holds; use another checkpoint")
        if name in members:
            raise CheckpointError(f"checkpoint {path} holds {info.filename!r} twice; use "
                                  "another checkpoint")
        members[name] = info
    return members


def _header(f):
    """``(shape, fortran_order, dtype)`` from the .npy header at the start of stream ``f``."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f"unsupported .npy version {version}")


def _read_exactly(z, info, dtype, shape):
    """The array of ``dtype`` and ``shape`` in member ``info``, after its header was checked to
    say exactly that: reads its bytes and no more, then checks the member ends there (and so
    its CRC)."""
    with z.open(info) as f:
        _header(f)
        out = np.empty(shape, dtype=dtype)
        view = memoryview(out).cast("B")
        got = 0
        while got < len(view):
            n = f.readinto(view[got:])
            if not n:
                raise EOFError(f"{info.filename} ends after {got} of {len(view)} bytes")
            got += n
        if f.read(1):
            raise ValueError(f"{info.filename} holds more data than its header says")
    return out


def _check_header(z, info, path, name, dtype, shape):
    with z.open(info) as f:
        have_shape, fortran, have_dtype = _header(f)
    if have_dtype != np.dtype(dtype).newbyteorder("<") and have_dtype != np.dtype(dtype):
        raise CheckpointError(f"checkpoint {path}: array {name} is {have_dtype}, a fastmlp "
                              f"checkpoint holds {np.dtype(dtype)}; use another checkpoint")
    if tuple(have_shape) != shape or (fortran and len(shape) > 1):
        raise CheckpointError(f"checkpoint {path}: array {name} has shape {tuple(have_shape)}, "
                              f"its metadata implies {shape}; use another checkpoint")
    return have_dtype


def _read_meta(z, info, path):
    if info is None:
        raise CheckpointError(f"checkpoint {path} is not a fastmlp checkpoint (it holds no "
                              "metadata)")
    with z.open(info) as f:
        shape, _, dtype = _header(f)
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_META_BYTES:
        raise CheckpointError(f"checkpoint {path} is not a fastmlp checkpoint (its metadata "
                              f"is {dtype} {tuple(shape)}, not at most {MAX_META_BYTES} bytes)")
    blob = _read_exactly(z, info, np.uint8, tuple(shape))
    try:
        meta = json.loads(blob.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a fastmlp checkpoint (its metadata "
                              f"is missing or unreadable)")
    return meta


def _read_array(z, info, path, name, shapes):
    dtype, length, _ = ARRAYS[name]
    shape = (shapes[length],)
    have = _check_header(z, info, path, name, dtype, shape)
    return _read_exactly(z, info, have, shape).astype(dtype, copy=False)


def _is_size(v, low=1, high=2**31):
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def check_meta(meta, path):
    """Check the metadata's network and input transform on their own and against each other,
    before any array is read; returns ``{"params": parameter count, "inputs": input count}``
    (the lengths :data:`ARRAYS` refers to). Raises CheckpointError naming the field."""
    def bad(what):
        return CheckpointError(f"checkpoint {path} has malformed metadata ({what}); use "
                               "another checkpoint")

    sizes = meta.get("sizes")
    if not (isinstance(sizes, list) and len(sizes) >= 2 and all(map(_is_size, sizes))):
        raise bad(f"sizes = {str(sizes)[:60]}: two or more positive whole numbers expected")
    n_params = sum(D * H + H for D, H in zip(sizes[:-1], sizes[1:]))
    if n_params > MAX_PARAMS:
        raise CheckpointError(f"checkpoint {path} declares a network of {n_params:,} parameters "
                              f"(sizes {sizes}); fastmlp reads at most {MAX_PARAMS:,}")
    if sizes[-1] < 2 or meta.get("n_classes", sizes[-1]) != sizes[-1]:
        raise bad(f"n_classes = {str(meta.get('n_classes'))[:20]} for an output layer of "
                  f"{sizes[-1]}: at least 2 classes, the output layer's size")
    if not isinstance(meta.get("activation"), str):
        raise bad("activation: a name expected")
    tm = meta.get("transform")
    if not isinstance(tm, dict):
        raise bad("transform: a table expected")
    shape, kept = tm.get("image_shape"), tm.get("kept_shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(map(_is_size, shape))
            and shape[0] * shape[1] <= MAX_IMAGE_PIXELS):
        raise bad(f"image_shape = {str(shape)[:40]}: rows and columns expected, at most "
                  f"{MAX_IMAGE_PIXELS:,} pixels")
    if sizes[0] > shape[0] * shape[1]:
        raise bad(f"{sizes[0]} inputs from {shape[0]}x{shape[1]} images")
    if kept is not None and not (isinstance(kept, list) and len(kept) == 2
                                 and all(map(_is_size, kept)) and kept[0] * kept[1] == sizes[0]):
        raise bad(f"kept_shape = {str(kept)[:40]} for {sizes[0]} inputs")
    if not isinstance(tm.get("description"), str):
        raise bad("transform description: a string expected")
    if tm.get("inputs", "images") not in ("images", "features"):
        raise bad(f"transform inputs = {str(tm.get('inputs'))[:20]!r}: images or features")
    if "config" in meta and not isinstance(meta["config"], dict):
        raise bad("config: a table expected")
    return {"params": n_params, "inputs": sizes[0]}


def _check_values(arrays, meta, path):
    """What the compiled code indexes or computes with: pixel indices inside the image, finite
    parameters (a NaN model predicts class 0 for every image), finite scaling."""
    rows, cols = meta["transform"]["image_shape"]
    idx = arrays["pixel_index"]
    if idx.size and (idx.min() < 0 or idx.max() >= rows * cols):
        raise CheckpointError(f"checkpoint {path}: pixel_index holds indices outside its "
                              f"{rows}x{cols} images; use another checkpoint")
    for name in ("scale", "shift"):
        if not np.isfinite(arrays[name]).all():
            raise CheckpointError(f"checkpoint {path}: its input {name} is not finite; use "
                                  "another checkpoint")
    for name in ("params", "best_params", *STATE_BUFFERS):
        if name in arrays and not np.isfinite(arrays[name]).all():
            raise CheckpointError(
                f"checkpoint {path}: its {'parameters' if 'params' in name else name} hold NaN "
                "or infinite values (saved from a run that diverged?); use an earlier "
                "checkpoint or train again")


def read_meta(path):
    """A checkpoint's metadata alone, checked as :func:`load` checks it (no array is read)."""
    return _read(os.fspath(path), with_arrays=False)[0]


def is_checkpoint(path):
    """True if ``path`` is a readable fastmlp checkpoint (reads only its metadata)."""
    try:
        read_meta(path)
    except CheckpointError:
        return False
    return True


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
                description=t.description,
                inputs=t.inputs)  # "images" or "features" (absent before: images)


def transform_from_meta(tm, arrays):
    """The :class:`~fastmlp.data.transforms.InputTransform` saved as ``transform_meta`` and the
    ``pixel_index``, ``scale`` and ``shift`` arrays."""
    from ..data import InputTransform

    return InputTransform(
        image_shape=tuple(tm["image_shape"]), pixel_index=arrays["pixel_index"],
        scale=arrays["scale"], shift=arrays["shift"],
        kept_shape=tuple(tm["kept_shape"]) if tm["kept_shape"] else None,
        description=tm["description"],
        inputs=tm.get("inputs", "images"))  # checkpoints from before features: images


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
