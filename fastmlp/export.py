"""``python -m fastmlp.export RUN.npz MODEL.onnx``: a trained model as an ONNX graph, which
onnxruntime (or any ONNX runtime) runs without fastmlp; :func:`export_onnx` from Python.

The graph takes what the data set holds, uint8 images ``images`` (N, H, W) (or, for a model
trained on float features, ``features`` (N, D) float32, used as given), and does in the graph
what fastmlp does before the first layer: the input transform's pixel selection (crop, center
window, auto-crop: one ``Gather`` of the kept pixels, in fastmlp's order) and its scaling
``u * scale + shift`` in float32. Then each layer (``Gemm``) and the hidden activation
(a row of :data:`ACTIVATIONS` per built-in; shifted ReLU max(-c, x) is ``Max``), a softmax, and
two outputs: ``probabilities`` (N, K) float32 and ``label`` (N,) int64, the first most probable
class, as ``MLP.predict`` picks it. A user activation (``custom_activation``) is Python code
ONNX cannot hold: such a model is refused in one line.

Opset 17 and IR version 8 (ONNX 1.12): every onnxruntime from 1.12 (2022) to today loads them
(its compatibility table: 1.12 implements opset 17 and IR 8, and later releases keep every older
opset), and every operator used here exists unchanged there. A newer stamp would only lock out
older runtimes: nothing here needs an operator of a later opset (GELU is written out in the
tanh form fastmlp computes, not opset 20's ``Gelu``).

The ``onnx`` package builds and checks the graph (``pip install "fastmlp[onnx]"``); fastmlp
itself never needs it. The file is written atomically (fastmlp/files.py).
"""

import math
import os
import sys

import numpy as np

from .cli import ArgumentParser, run_main
from .errors import ConfigError, OutputError

__all__ = ["ACTIVATIONS", "IR_VERSION", "OPSET", "export_onnx", "main"]

OPSET = 17       # ai.onnx operator set: onnxruntime >= 1.12 implements it
IR_VERSION = 8   # ONNX 1.12's IR; onnxruntime >= 1.12 reads it

_PROTOBUF_LIMIT = 2**31 - 2**24  # one protobuf message (the whole model) stays under 2 GB
# GELU's constants, as kernels/_activation.py has them (the parity tests hold the two equal)
_GELU_K = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


def _onnx():
    """The onnx package, or a one-line error saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ConfigError('exporting to ONNX needs the onnx package, which is not installed: '
                          'pip install "fastmlp[onnx]" (or pip install onnx)') from None
    return onnx


class _Graph:
    """The nodes and constant tensors (initializers) of a graph being built, in order."""

    def __init__(self, onnx):
        self.helper, self.numpy_helper = onnx.helper, onnx.numpy_helper
        self.nodes, self.initializers = [], []

    def const(self, name, array):
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, out, **attributes):
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=out,
                                                **attributes))
        return out


# -- the hidden activations: one row per built-in (choices/activations.py BUILTINS) -----------
# Each row adds the nodes of f(x) for tensor x with parameter p and returns f(x)'s name.
def _softplus(g, x, p, out):
    # max(x, 0) + log(1 + exp(-|x|)), as fastmlp computes it: the spec's log(exp(x) + 1)
    # overflows for x > 88 in a runtime that computes it as written; this never does
    e = g.op("Exp", [g.op("Neg", [g.op("Abs", [x], out + "_abs")], out + "_neg")], out + "_exp")
    tail = g.op("Log", [g.op("Add", [e, g.const(out + "_one", np.float32(1.0))], out + "_1p")],
                out + "_log")
    return g.op("Add", [g.op("Relu", [x], out + "_pos"), tail], out)


def _gelu(g, x, p, out):
    # 0.5 x (1 + tanh(k (x + a x^3))), the tanh form kernels/_activation.py computes
    x3 = g.op("Mul", [g.op("Mul", [x, x], out + "_x2"), x], out + "_x3")
    inner = g.op("Add", [x, g.op("Mul", [x3, g.const(out + "_a", np.float32(_GELU_A))],
                                 out + "_ax3")], out + "_sum")
    t = g.op("Tanh", [g.op("Mul", [inner, g.const(out + "_k", np.float32(_GELU_K))],
                           out + "_kx")], out + "_tanh")
    half = g.op("Mul", [x, g.const(out + "_half", np.float32(0.5))], out + "_halfx")
    return g.op("Mul", [half, g.op("Add", [t, g.const(out + "_one", np.float32(1.0))],
                                   out + "_1t")], out)


ACTIVATIONS = {
    "identity": lambda g, x, p, out: x,
    "sigmoid": lambda g, x, p, out: g.op("Sigmoid", [x], out),
    "tanh": lambda g, x, p, out: g.op("Tanh", [x], out),
    "relu": lambda g, x, p, out: g.op("Relu", [x], out),
    "leaky_relu": lambda g, x, p, out: g.op("LeakyRelu", [x], out, alpha=p),
    # max(-c, x): Max with the constant -c (not relu(x - c))
    "shifted_relu": lambda g, x, p, out: g.op("Max", [x, g.const(out + "_c", np.float32(-p))],
                                              out),
    "elu": lambda g, x, p, out: g.op("Elu", [x], out, alpha=p),
    "softplus": _softplus,
    "gelu": _gelu,
}


# -- the graph ------------------------------------------------------------------------------
def _user_activation_error(name, where):
    from .choices.activations import BUILTINS

    return ConfigError(f"{where} uses the user activation {str(name)[:80]!r}: ONNX cannot hold "
                       f"a Python function, so it cannot be exported; only models with a "
                       f"built-in activation can ({', '.join(BUILTINS)})")


def input_kind(model):
    """What the model's rows are: ``"images"`` (uint8 pixels) or ``"features"`` (float32, used
    as given), as its transform says (``InputTransform.inputs``; images where there is none)."""
    return getattr(model.transform, "inputs", "images")


def _input_part(g, model, onnx):
    """The graph's input and the nodes that turn it into the first layer's float32 (N, D)
    inputs, as the loop's gather and ``InputTransform.apply`` do: ``images`` (N, H, W) uint8
    (N, P for a model without a transform), or ``features`` (N, D) float32. Returns ``(graph
    input, name of the (N, D) tensor)``."""
    from .loop.calls import transform_arrays

    t, kind = model.transform, input_kind(model)
    if kind not in ("images", "features"):
        raise ConfigError(f"this model's inputs ({kind!r}) cannot be exported to ONNX: only "
                          "uint8 images and float features can")
    if t is None:
        shape = (model.sizes[0],)  # flat pixels, u / 255
    else:
        shape = tuple(t.image_shape) if kind == "images" else (int(np.prod(t.image_shape)),)
    width = int(np.prod(shape))
    pixel_index, scale, shift = transform_arrays(model, width)
    if kind == "features":
        graph_input = onnx.helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT,
                                                         ["N", *shape])
        x = "features"
    else:
        graph_input = onnx.helper.make_tensor_value_info("images", onnx.TensorProto.UINT8,
                                                         ["N", *shape])
        x = g.op("Flatten", ["images"], "pixels", axis=1) if len(shape) > 1 else "images"
    if not np.array_equal(pixel_index, np.arange(width)):  # crop, center, auto-crop
        x = g.op("Gather", [x, g.const("pixel_index", pixel_index)], "kept", axis=1)
    if kind == "images":
        x = g.op("Cast", [x], "bytes", to=onnx.TensorProto.FLOAT)
    if not (scale == 1).all():  # (features are taken as given: x * 1 + 0 is x)
        x = g.op("Mul", [x, g.const("scale", _one_if_equal(scale))], "scaled")
    if shift.any():
        x = g.op("Add", [x, g.const("shift", _one_if_equal(shift))], "inputs")
    return graph_input, x


def _one_if_equal(values):
    """``values`` (D,), or the one value they all hold as a scalar (the same product, 4 bytes
    instead of 4 D: ``make_transform``'s scale and shift are one value each)."""
    return values[0] if (values == values[0]).all() else values


def build_graph(model):
    """The ONNX ``ModelProto`` of an :class:`~fastmlp.model.MLP`, checked by
    ``onnx.checker``. Raises ConfigError for a user activation, or without the onnx package."""
    from . import __version__

    onnx = _onnx()
    act = model.activation
    if not act.builtin or act.name not in ACTIVATIONS:
        raise _user_activation_error(act.name, "this model")
    if 4 * model.params.size > _PROTOBUF_LIMIT:
        raise ConfigError(f"the network {'-'.join(map(str, model.sizes))} has "
                          f"{model.params.size:,} parameters, too many for one ONNX file (2 GB)")
    g = _Graph(onnx)
    graph_input, x = _input_part(g, model, onnx)
    L = model.n_layers
    for l in range(L):
        z = g.op("Gemm", [x, g.const(f"W{l}", model.weight(l)), g.const(f"b{l}", model.bias(l))],
                 "logits" if l == L - 1 else f"z{l}")
        x = z if l == L - 1 else ACTIVATIONS[act.name](g, z, float(act.param), f"h{l}")
    probs = g.op("Softmax", [x], "probabilities", axis=1)
    g.op("ArgMax", [probs], "label", axis=1, keepdims=0)  # the first largest, as predict
    K = model.sizes[-1]
    outputs = [onnx.helper.make_tensor_value_info("label", onnx.TensorProto.INT64, ["N"]),
               onnx.helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT,
                                                  ["N", K])]
    what = _describe(model)
    graph = onnx.helper.make_graph(g.nodes, "fastmlp", [graph_input], outputs,
                                   initializer=g.initializers, doc_string=what)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   ir_version=IR_VERSION, producer_name="fastmlp",
                                   producer_version=__version__, doc_string=what)
    onnx.helper.set_model_props(proto, {"fastmlp.sizes": "-".join(map(str, model.sizes)),
                                        "fastmlp.activation": str(act),
                                        "fastmlp.inputs": _inputs_text(model)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _input_text(model):
    """The graph's input in words: ``uint8 images 28x28`` or ``float32 features (64)``."""
    t = model.transform
    if input_kind(model) == "features":
        return f"float32 features ({model.sizes[0]})"
    return f"uint8 images {'x'.join(map(str, t.image_shape)) if t else model.sizes[0]}"


def _inputs_text(model):
    t = model.transform
    return t.description if t is not None else f"{model.sizes[0]} pixels, unit scale (u/255)"


def _describe(model):
    return (f"fastmlp MLP {'-'.join(map(str, model.sizes))}, activation {model.activation}; "
            f"inputs: {_inputs_text(model)}. Outputs: label (N,) int64, probabilities "
            f"(N, {model.sizes[-1]}) float32.")


# -- files ----------------------------------------------------------------------------------
def check_output(path, source=None, overwrite=False):
    """Before any work (files.check_outputs, as train checks its outputs): ``path`` can be
    written atomically, is not the checkpoint ``source`` read from, and replaces an existing
    file only if it is an ONNX file fastmlp wrote, or with ``overwrite``."""
    from .files import check_outputs

    check_outputs([("output", path, is_fastmlp_onnx, "an ONNX file fastmlp wrote")],
                  inputs=[("model", source)], overwrite=overwrite)


def is_fastmlp_onnx(path):
    """Whether ``path`` is an ONNX file fastmlp wrote, from its first bytes: a ModelProto is
    serialized in field order, so ir_version (field 1, a varint) comes first and
    producer_name (field 2) "fastmlp" right after it."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError:
        return False
    if head[:1] != b"\x08":
        return False
    i = 1
    while i < len(head) and head[i] & 0x80:  # the varint's continuation bytes
        i += 1
    return head[i + 1:i + 10] == b"\x12\x07fastmlp"


def load_exportable(path):
    """The model in checkpoint ``path``, for export: a user activation is refused in one line
    (before load_model would ask for it to be named), every other problem is load_model's."""
    from .choices.activations import BUILTINS
    from .training.checkpoint import load_model, read_meta

    meta = read_meta(path)  # a missing, corrupt or foreign file: the error evaluate gives
    recorded = meta.get("activation")
    if meta.get("activation_builtin") is False or (
            isinstance(recorded, str) and recorded.partition(":")[0].strip() not in BUILTINS):
        raise _user_activation_error(recorded, f"checkpoint {os.fspath(path)}")
    model, _ = load_model(path)
    return model


def _write(proto, path):
    from .files import atomic_write

    blob = proto.SerializeToString()
    try:
        atomic_write(path, lambda f: f.write(blob))
    except OSError as exc:
        raise OutputError(f"could not write {path} ({exc.strerror or exc}); nothing was "
                          "written there") from None
    return len(blob)


def export_onnx(model, path=None, *, overwrite=False):
    """Export a model to ONNX: the graph of :mod:`fastmlp.export`, checked by ``onnx.checker``.

    Parameters
    ----------
    model : MLP or path
        A model (``result.model``, ``load_model(...)[0]``) or the path of a checkpoint
        written by ``--save``.
    path : str or os.PathLike, optional
        Where to write the ``.onnx`` file (atomically); checked before any work. An existing
        file is replaced only if fastmlp wrote it as ONNX, or with ``overwrite=True``; the
        checkpoint read never.

    Returns
    -------
    onnx.ModelProto
        The graph: input ``images`` (N, H, W) uint8 (``features`` (N, D) float32 for a model
        of float features), outputs ``label`` (N,) int64 and ``probabilities`` (N, K) float32.

    Raises
    ------
    ConfigError
        Without the onnx package, for a user activation, or an output path that cannot or
        may not be written. CheckpointError: a checkpoint that cannot be loaded.
    """
    from .model import MLP

    _onnx()
    if isinstance(model, (str, os.PathLike)):
        source = model
    elif isinstance(model, MLP):
        source = None
    else:
        raise ConfigError(f"export_onnx: model must be an MLP or a checkpoint's path, got "
                          f"{type(model).__name__}")
    if path is not None:
        check_output(path, source, overwrite)
    if source is not None:
        model = load_exportable(source)
    proto = build_graph(model)
    if path is not None:
        _write(proto, os.fspath(path))
    return proto


def main(argv=None):
    p = ArgumentParser(prog="python -m fastmlp.export",
                       description="Write a saved model (a checkpoint written by --save) as an "
                                   "ONNX graph: uint8 images (N, H, W) (or float32 features "
                                   "(N, D)) in, label (N,) int64 and probabilities (N, K) "
                                   "float32 out. Needs the onnx package: "
                                   'pip install "fastmlp[onnx]".')
    p.add_argument("model", help="checkpoint file (.npz)")
    p.add_argument("output", help="the ONNX file to write (.onnx)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output file that is not an ONNX file fastmlp "
                        "wrote (one it wrote is replaced anyway)")
    args = p.parse_args(argv)
    _onnx()
    check_output(args.output, args.model, args.overwrite)
    model = load_exportable(args.model)
    size = _write(build_graph(model), args.output)
    print(f"wrote {args.output} ({size / 1024:,.0f} KB): {_input_text(model)} -> "
          f"{'-'.join(map(str, model.sizes))} {model.activation} -> label, probabilities; "
          f"ONNX opset {OPSET}, IR {IR_VERSION}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
