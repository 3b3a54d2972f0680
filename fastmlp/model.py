"""The network: layer sizes, one flat float32 buffer for all parameters, and prediction.

Parameters live in a single allocation (llm.c style); each layer's weight (D, H) and bias (H,)
are views into it, so the optimizer updates every parameter in one loop and a checkpoint is one
array. ``layout[l] = (weight offset, bias offset, D, H)`` tells the compiled training loop where
layer ``l`` lives.
"""

import os
from dataclasses import dataclass

import numpy as np

from .choices.activations import INIT_SCHEMES, Activation, get_activation, resolve_init
from .errors import ConfigError
from .loop.buffers import make_layout


def _gb(n_bytes):
    return f"{n_bytes / 2**30:,.1f} GB"


def training_memory_bytes(sizes, max_batch):
    """Bytes training allocates for layer ``sizes`` and batches of ``max_batch``: parameters,
    gradients, two optimizer states and the best weights (5 x float32 each), plus the batch
    buffers of ``loop.buffers.make_workspace`` (inputs three times over, their sparse copy as uint16
    indices and uint8 values, pre-activations, activations, masks and two delta buffers)."""
    sizes = [int(s) for s in sizes]
    n_params = sum(D * H + H for D, H in zip(sizes[:-1], sizes[1:]))
    D0, widest, hidden = sizes[0], max(sizes), sum(sizes[1:])
    batch = max_batch * (3 * 4 * D0 + 3 * D0 + 4 * 4 * hidden + 2 * 4 * widest)
    return 5 * 4 * n_params + batch


def check_memory(sizes, max_batch):
    """Raise ConfigError saying how much memory was asked if training ``sizes`` at
    ``max_batch`` needs more than this machine's physical memory."""
    need = training_memory_bytes(sizes, max_batch)
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return
    if need > have:
        raise ConfigError(f"the network {'-'.join(map(str, sizes))} at batch {max_batch} needs "
                          f"about {_gb(need)} of memory, more than this machine's {_gb(have)}; "
                          "use smaller --hidden sizes or --batch-size")


@dataclass
class MLP:
    """A multilayer perceptron: ``sizes = (n_inputs, hidden..., n_classes)``, one activation
    for every hidden layer, a softmax output. ``transform`` (an
    :class:`~fastmlp.data.transforms.InputTransform`) maps raw uint8 images to its inputs
    (or takes float features as given: ``transform.inputs == "features"``)."""

    sizes: tuple
    activation: Activation
    params: np.ndarray
    transform: object = None

    def __post_init__(self):
        self.sizes = tuple(int(s) for s in self.sizes)
        self.activation = get_activation(self.activation)
        self.layout, n_params = make_layout(self.sizes)
        if self.params.dtype != np.float32 or self.params.shape != (n_params,):
            raise ConfigError(f"parameters must be float32 of shape ({n_params},) for sizes "
                              f"{self.sizes}, got {self.params.dtype} {self.params.shape}")
        if not self.params.flags.c_contiguous:
            self.params = np.ascontiguousarray(self.params)
        n_inputs = getattr(self.transform, "n_inputs", self.sizes[0])
        if n_inputs != self.sizes[0]:
            raise ConfigError(f"the input transform makes {n_inputs} inputs, the network's "
                              f"first layer takes {self.sizes[0]}; give a transform of "
                              f"{self.sizes[0]} inputs")

    @classmethod
    def create(cls, sizes, activation, seed=0, init=None, transform=None):
        """A freshly initialised network, as the row of ``init`` (default: the activation's
        own) in :data:`~fastmlp.choices.activations.INIT_SCHEMES` says: He-normal (ReLU family) or
        Xavier-normal (sigmoid, tanh) weights for hidden layers, Xavier-normal for the output
        layer, zero biases; or the book's N(0, 1/(D+1)) for every weight and bias."""
        activation = get_activation(activation)
        hidden_std, output_std, draw_bias = INIT_SCHEMES[resolve_init(activation, init)]
        layout, n_params = make_layout(tuple(int(s) for s in sizes))
        params = np.zeros(n_params, dtype=np.float32)
        rng = np.random.default_rng(seed)
        L = len(layout)
        for l, (w, b, D, H) in enumerate(layout):
            std = np.float32((hidden_std if l < L - 1 else output_std)(D, H))
            params[w:w + D * H] = rng.standard_normal(D * H, dtype=np.float32) * std
            if draw_bias:
                params[b:b + H] = rng.standard_normal(H, dtype=np.float32) * std
        return cls(tuple(sizes), activation, params, transform)

    @property
    def n_layers(self):
        return len(self.layout)

    def weight(self, l):
        """View of layer ``l``'s weight matrix, shape (D, H)."""
        w, _, D, H = self.layout[l]
        return self.params[w:w + D * H].reshape(D, H)

    def bias(self, l):
        """View of layer ``l``'s bias, shape (H,)."""
        _, b, _, H = self.layout[l]
        return self.params[b:b + H]

    def weight_rms(self):
        """Root-mean-square of each weight matrix, a list of L floats."""
        return [float(np.sqrt(np.mean(np.square(self.weight(l), dtype=np.float64))))
                for l in range(self.n_layers)]

    # -- prediction -------------------------------------------------------------------------
    def _inputs(self, images):
        """``images`` as the (N, pixels) uint8 rows the compiled evaluation reads: a batch of
        (N, rows, cols) images of the model's size, or (N, rows * cols) flattened ones (or for a
        model trained on float features, (N, D) float32 features)."""
        if not np.isfinite(self.params).all():
            raise ConfigError("the model's parameters hold NaN or infinite values (from a run "
                              "that diverged?): its predictions would mean nothing; train again")
        if self.transform is not None and self.transform.inputs == "features":
            from .data import checked_features  # float features: (N, D), used as given

            return checked_features(images, "predict", self.sizes[0])
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ConfigError(f"images must be uint8 pixels (0..255), got {images.dtype}")
        shape = (tuple(self.transform.image_shape) if self.transform is not None
                 else (self.sizes[0],))
        n_pixels = int(np.prod(shape))
        if images.shape == shape and len(shape) == 2:
            raise ConfigError(f"got one {shape[0]}x{shape[1]} image (shape {images.shape}); "
                              f"pass a batch of shape (N, {shape[0]}, {shape[1]}), e.g. "
                              "image[None]")
        if images.ndim < 2 or images.shape[1:] not in (shape, (n_pixels,)):
            want = " or ".join(f"(N, {', '.join(map(str, s))})"
                               for s in dict.fromkeys((shape, (n_pixels,))))
            raise ConfigError(f"images have shape {images.shape}, the model takes a batch of "
                              f"shape {want}")
        return images.reshape(len(images), n_pixels)

    def predict_proba(self, images, batch_size=1000):
        """Class probabilities (N, K) float32 for uint8 images (N, rows, cols) (or float
        features (N, D) for a model trained on features)."""
        from .loop.calls import evaluate

        flat = self._inputs(images)
        probs = np.empty((len(flat), self.sizes[-1]), dtype=np.float32)
        evaluate(self, flat, None, batch_size=batch_size, probs_out=probs)
        return probs

    def predict(self, images, batch_size=1000):
        """Predicted class (N,) int64 for uint8 images (N, rows, cols) (or float features
        (N, D) for a model trained on features)."""
        from .loop.calls import evaluate

        flat = self._inputs(images)
        pred = np.empty(len(flat), dtype=np.int64)
        evaluate(self, flat, None, batch_size=batch_size, pred_out=pred)
        return pred

    def accuracy(self, images, labels, batch_size=1000):
        """Fraction of ``images`` whose predicted class equals ``labels`` (NaN for none)."""
        from .loop.calls import evaluate

        flat = self._inputs(images)
        labels = np.asarray(labels)
        if labels.shape != (len(flat),):
            raise ConfigError(f"labels must have shape ({len(flat)},), got {labels.shape}")
        K = self.sizes[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= K):
            raise ConfigError(f"labels must be classes 0..{K - 1} (the model has {K} outputs), "
                              f"found {int(labels.max())}; is this the data set it was "
                              f"trained on?")
        _, correct = evaluate(self, flat, labels, batch_size=batch_size)
        return correct / len(flat) if len(flat) else float("nan")  # of no images: undefined


def _image_shape(model):
    return tuple(model.transform.image_shape) if model.transform is not None else (
        model.sizes[0],)


class Ensemble:
    """Several trained :class:`MLP` s that take the same images and classes, as one model: its
    probabilities are the mean of theirs (a committee). Each member applies its own input
    transform, so members trained with different crops or scalings combine."""

    def __init__(self, models):
        self.models = list(models)
        if not self.models or not all(isinstance(m, MLP) for m in self.models):
            raise ConfigError("an ensemble needs one or more MLP models")
        shapes = {_image_shape(m) for m in self.models}
        classes = {m.sizes[-1] for m in self.models}
        if len(shapes) > 1 or len(classes) > 1:
            raise ConfigError(
                "the models of an ensemble must take the same images and classes, these take "
                + ", ".join(f"{'x'.join(map(str, _image_shape(m)))} images -> {m.sizes[-1]} "
                            "classes" for m in self.models) + "; combine models of one data set")

    @property
    def n_classes(self):
        return self.models[0].sizes[-1]

    def predict_proba(self, images, batch_size=1000):
        """The mean of the members' class probabilities (N, K) float32."""
        total = None
        for m in self.models:
            p = m.predict_proba(images, batch_size).astype(np.float64)
            total = p if total is None else total + p
        return (total / len(self.models)).astype(np.float32)

    def predict(self, images, batch_size=1000):
        """The class of highest mean probability (N,) int64."""
        return np.argmax(self.predict_proba(images, batch_size), axis=1).astype(np.int64)

    def accuracy(self, images, labels, batch_size=1000):
        """Fraction of ``images`` whose predicted class equals ``labels`` (NaN for none)."""
        labels = np.asarray(labels)
        pred = self.predict(images, batch_size)
        if labels.shape != pred.shape:
            raise ConfigError(f"labels must have shape {pred.shape}, got {labels.shape}")
        return float(np.mean(pred == labels)) if len(pred) else float("nan")
