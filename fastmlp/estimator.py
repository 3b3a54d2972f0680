"""``fastmlp.MLPClassifier``: a drop-in for scikit-learn's ``MLPClassifier``, trained by
fastmlp's compiled loop.

The parameters scikit-learn has mean what they mean there (:data:`SKLEARN_PARAMS`, each with
the :class:`~fastmlp.config.TrainConfig` field it sets); fastmlp's own settings are further
parameters (:data:`EXTRAS`), named, checked and documented by their rows of TrainConfig's table
(config.py), with defaults that leave them off, as scikit-learn trains. ``fit`` runs
scikit-learn's epoch logic (``tol``, ``n_iter_no_change``, ``early_stopping``, the
``learning_rate`` schedules, ``warm_start``, ``partial_fit``) around fastmlp's training steps:
float features ``(n, D)`` go through the dense first layer, uint8 images ``(n, H*W)`` keep
every image path (the sparse first layer, uint8 buffers).

Prediction (``predict_proba`` and what follows from it) runs in float64 NumPy from
``coefs_`` and ``intercepts_`` (the trained float32 weights, widened), with fastmlp's
activation kernels: each row's result then does not depend on the rows beside it, as
scikit-learn's checks require. A binary problem's two softmax outputs are kept as one logistic
output, as scikit-learn keeps them: ``coefs_[-1]`` is ``(H, 1)``, the difference of the two
columns, which gives the same probabilities.
"""

import numbers
import textwrap
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError:  # pragma: no cover - the extra is not installed
    raise ImportError("fastmlp.MLPClassifier needs scikit-learn: pip install "
                      "'fastmlp[sklearn]'") from None

from . import kernels
from .choices.activations import get_activation
from .choices.schedules import batch_size_for_epoch, steps_in_epoch
from .config import _FIELDS, FIELD_FLAGS, TrainConfig
from .data import checked_features
from .errors import ConfigError, DataError
from .loop.calls import train_steps
from .threads import one_blas_thread
from .training.plan import make_plan
from .training.run_data import Data

# scikit-learn's parameter -> the TrainConfig field it sets ("" where the estimator itself
# implements it: scikit-learn's epoch logic around the loop)
SKLEARN_PARAMS = {
    "hidden_layer_sizes": "hidden", "activation": "activation", "solver": "optimizer",
    "alpha": "weight_decay", "batch_size": "batch_size", "learning_rate": "",
    "learning_rate_init": "lr", "power_t": "", "max_iter": "", "shuffle": "",
    "random_state": "seed", "tol": "", "verbose": "", "warm_start": "",
    "momentum": "momentum", "nesterovs_momentum": "nesterov", "early_stopping": "",
    "validation_fraction": "", "beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps",
    "n_iter_no_change": "",
}
# fastmlp's own settings, as further parameters: each a TrainConfig field (its help and its
# checks are that field's), with the value that leaves it off (scikit-learn has none of them)
EXTRAS = {"dropout": 0.0, "dropout_input": 0.0, "batch_ramp": None, "threads": None,
          "init": "auto", "input_path": "auto"}
# scikit-learn's activation names that fastmlp spells otherwise
_ACTIVATION_NAMES = {"logistic": "sigmoid"}
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
_SOLVERS = ("sgd", "adam")
_CHUNK_SAMPLES = 8192  # samples per call into the compiled loop (as training/run.py)


def _extras_doc():
    """The extras' lines of the class docstring: each one's help from its TrainConfig row, in
    the parameters' names (the command line's flags renamed)."""
    return "\n".join(f"    {name} : default {off!r}\n" + textwrap.fill(
        _param_names(_FIELDS[name].metadata["help"]), 92, initial_indent=" " * 8,
        subsequent_indent=" " * 8) for name, off in EXTRAS.items())


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A multilayer perceptron classifier, scikit-learn's parameters and attributes, fastmlp's
    training loop.

    Parameters as ``sklearn.neural_network.MLPClassifier`` (``solver`` is "sgd" or "adam";
    ``activation`` also takes any fastmlp activation, e.g. "shifted_relu:0.5" or
    "module:name" for your own), then fastmlp's extras (see :data:`EXTRAS`):

{extras}

    Differences from scikit-learn's, by design: ``alpha`` is applied as weight decay
    ``alpha / batch_size`` on the weights (scikit-learn's penalty, with the last short batch of
    an epoch weighted like a full one); training runs in float32 (prediction in float64);
    Adam adds ``epsilon`` to the bias-corrected root, as the Adam paper does.

    Fitted attributes: ``classes_``, ``n_features_in_`` (``feature_names_in_`` for data frames
    with string column names), ``loss_curve_`` (each epoch's mean training cross-entropy plus
    the L2 penalty ``alpha / 2 * |W|^2 / batch_size`` at the epoch's end), ``best_loss_``,
    ``validation_scores_``, ``best_validation_score_``, ``n_iter_``, ``t_``, ``coefs_``,
    ``intercepts_``, ``n_layers_``, ``n_outputs_``, ``out_activation_``.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, dropout=0.0,
                 dropout_input=0.0, batch_ramp=None, threads=None, init="auto",
                 input_path="auto"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.dropout_input = dropout_input
        self.batch_ramp = batch_ramp
        self.threads = threads
        self.init = init
        self.input_path = input_path

    # -- scikit-learn's API ---------------------------------------------------------------------
    def fit(self, X, y):
        """Train on ``X`` (n, D) numeric features, or (n, H*W) uint8 images, and labels ``y``
        of any type, for up to ``max_iter`` epochs; returns self."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype="numeric", reset=not self._continues())
        y = self._encode(y, classes=None, incremental=False)
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y, classes=None):
        """One epoch over ``X``, ``y``, continuing from the weights and optimizer state of the
        last fit; ``classes`` (every label ``y`` will ever hold) is needed on the first call."""
        self._check_params()
        first = not hasattr(self, "classes_")
        X, y = validate_data(self, X, y, dtype="numeric", reset=first)
        y = self._encode(y, classes=classes, incremental=True)
        return self._fit(X, y, incremental=True)

    def predict_proba(self, X):
        """Class probabilities (n, n_classes) float64, columns in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype="numeric", reset=False)
        z = self._forward(self._inputs64(X))
        if self.n_outputs_ == 1:  # one logistic output: the probability of classes_[1]
            p = np.empty((len(z), 2))
            p[:, 1] = _sigmoid(z[:, 0])
            p[:, 0] = 1.0 - p[:, 1]
            return p
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict_log_proba(self, X):
        """The log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each row, as a label of ``classes_``."""
        proba = self.predict_proba(X)  # first: it checks that the model is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def to_onnx(self, path):
        """Write the fitted network as an ONNX model to ``path`` (fastmlp.export_onnx; needs
        ``pip install 'fastmlp[onnx]'``). Its labels are class indices into ``classes_``."""
        check_is_fitted(self)
        from .export import export_onnx  # the ONNX exporter, loaded only when asked for

        return export_onnx(self._model, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        tags.input_tags.sparse = False
        return tags

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: this object keeps its network
        model = state.pop("_model", None)
        if model is not None:  # the network without its activation object (a user's holds
            state["_model_arrays"] = (model.sizes, model.params, model.transform)  # kernels)
        return state

    def __setstate__(self, state):
        arrays = state.pop("_model_arrays", None)
        super().__setstate__(state)
        if arrays is not None:
            from .model import MLP

            sizes, params, transform = arrays
            self._model = MLP(sizes, self._activation(), params, transform)

    # -- parameters -----------------------------------------------------------------------------
    def _continues(self):
        return bool(self.warm_start) and hasattr(self, "_model")

    def _activation(self):
        spec = self.activation
        return get_activation(_ACTIVATION_NAMES.get(spec, spec) if isinstance(spec, str)
                              else spec)

    def _check_params(self):
        """scikit-learn's own parameters' checks (the others: TrainConfig's, see _config)."""
        def bad(msg):
            raise ValueError(f"MLPClassifier: {msg}")

        if self.solver not in _SOLVERS:
            bad(f"solver must be one of {', '.join(_SOLVERS)} (fastmlp has no lbfgs), got "
                f"{self.solver!r}")
        if self.learning_rate not in _LEARNING_RATES:
            bad(f"learning_rate must be one of {', '.join(_LEARNING_RATES)}, got "
                f"{self.learning_rate!r}")
        for name, low, high in (("max_iter", 1, None), ("n_iter_no_change", 1, None)):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < low:
                bad(f"{name} must be a whole number >= {low}, got {v!r}")
        for name, low, high in (("tol", 0.0, np.inf), ("validation_fraction", 0.0, 1.0),
                                ("power_t", 0.0, np.inf), ("alpha", 0.0, np.inf)):
            v = getattr(self, name)
            if (not isinstance(v, numbers.Real) or isinstance(v, bool) or not np.isfinite(v)
                    or not low <= v < high or (name == "validation_fraction" and v == 0)):
                bad(f"{name} must be a finite number in [{low:g}, {high:g}), got {v!r}")
        b = self.batch_size
        if not (b == "auto" or (isinstance(b, numbers.Integral) and not isinstance(b, bool)
                                and b >= 1)):
            bad(f"batch_size must be 'auto' or a whole number >= 1, got {b!r}")

    def _config(self, n_samples, seed, epochs):
        """The TrainConfig of these parameters for ``n_samples`` training rows; a bad value is
        a ValueError naming the parameter (not the command line's flag)."""
        batch = min(200, n_samples) if self.batch_size == "auto" else self.batch_size
        if batch > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped", UserWarning)
            batch = n_samples
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, numbers.Integral) else hidden
        momentum = float(self.momentum) if isinstance(self.momentum, numbers.Real) else None
        sgd = "momentum" if momentum else "sgd"
        try:
            return TrainConfig(**self._fields(hidden, "adam" if self.solver == "adam" else sgd,
                                              batch, seed, epochs))
        except ConfigError as exc:
            raise ValueError(f"MLPClassifier: {_param_names(str(exc))}") from None

    def _fields(self, hidden, optimizer, batch, seed, epochs):
        """TrainConfig's fields for these parameters (see SKLEARN_PARAMS and EXTRAS)."""
        return dict(
            hidden=hidden, activation=self._activation(), optimizer=optimizer,
            weight_decay=float(self.alpha) / batch, batch_size=batch,
            lr=self.learning_rate_init, momentum=self.momentum,
            nesterov=self.nesterovs_momentum, beta1=self.beta_1, beta2=self.beta_2,
            eps=self.epsilon, seed=seed, epochs=epochs, schedule="constant",
            warmup=0.0, lr_scale_batch=False,
            **{name: getattr(self, name) for name in EXTRAS})

    def _encode(self, y, classes, incremental):
        """Labels of any type -> class indices 0..K-1 (int64), setting ``classes_`` on a first
        fit; a later partial_fit takes only labels of ``classes_``."""
        kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"Unknown label type: {kind!r}; MLPClassifier takes one label per "
                             "sample (binary or multiclass)")
        if incremental and hasattr(self, "classes_"):
            if classes is not None and not np.array_equal(unique_labels(classes),
                                                          self.classes_):
                raise ValueError(f"partial_fit: classes={classes!r} is not the classes_ of the "
                                 f"first call, {self.classes_!r}")
            known = unique_labels(y)
            if not np.all(np.isin(known, self.classes_)):
                raise ValueError(f"partial_fit: y holds labels {np.setdiff1d(known, self.classes_)}"
                                 f" that are not in classes_ {self.classes_}")
            return np.searchsorted(self.classes_, y).astype(np.int64)
        if incremental and classes is None:
            raise ValueError("partial_fit: the first call needs classes= (every label y will "
                             "ever hold)")
        enc = LabelEncoder().fit(unique_labels(classes) if incremental else y)
        if not incremental and len(enc.classes_) < 2:
            raise ValueError(f"MLPClassifier needs samples of at least 2 classes, got 1 class "
                             f"({enc.classes_[0]!r})")
        if len(enc.classes_) > 256:
            raise ValueError(f"MLPClassifier: {len(enc.classes_)} classes; fastmlp trains at "
                             "most 256")
        if incremental and not np.all(np.isin(unique_labels(y), enc.classes_)):
            raise ValueError("partial_fit: y holds labels that are not in classes")
        if not self._continues() or incremental:
            self.classes_ = enc.classes_
        elif not np.array_equal(enc.classes_, self.classes_):
            raise ValueError(f"warm_start: y has classes {enc.classes_}, the fitted model "
                             f"{self.classes_}; fit without warm_start")
        return enc.transform(y).astype(np.int64)

    # -- training -------------------------------------------------------------------------------
    def _fit(self, X, y, incremental):
        continuing = hasattr(self, "_model") and (incremental or self.warm_start)
        if not continuing:
            self._seed = int(check_random_state(self.random_state).randint(2**31 - 1))
            self._reset_progress()
        rng = np.random.default_rng([self._seed, self._epochs])
        early = bool(self.early_stopping) and not incremental
        X_val = y_val = None
        if early:
            X, X_val, y, y_val = train_test_split(
                X, y, random_state=int(rng.integers(2**31 - 1)),
                test_size=self.validation_fraction, stratify=y)
            if self.validation_scores_ is None:
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
                self.best_loss_ = None
        epochs = 1 if incremental else int(self.max_iter)
        cfg = self._config(len(X), self._seed, self._epochs + epochs)
        plan = make_plan(cfg, self._data(X, y, X_val, y_val), False)
        if continuing:
            self._restore(plan)
        self._train(plan, X_val, y_val, epochs, incremental, early)
        self._model = plan.model
        self._opt_state = (plan.ws.opt1.copy(), plan.ws.opt2.copy())
        self._set_weights()
        return self

    def _reset_progress(self):
        """What a first fit starts from: scikit-learn's counters and curves, and fastmlp's
        epoch and optimizer-step counts."""
        for name in ("_model", "_opt_state"):
            self.__dict__.pop(name, None)
        self._epochs, self._t = 0, 0
        self.n_iter_, self.t_ = 0, 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._lr = float(self.learning_rate_init)
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _data(self, X, y, X_val, y_val):
        """The fastmlp Data of these rows: uint8 (n, P) as images of one row of P pixels (the
        image paths: sparse first layer, uint8 buffers), anything else as float32 features;
        ``n_classes`` from ``classes_`` (a partial_fit's rows need not hold every class)."""
        if X_val is None:  # no validation set: one row stands in (the loop's data needs one)
            X_val, y_val = X[:1], y[:1]
        try:
            if X.dtype == np.uint8:
                X, X_val = (a.reshape(len(a), 1, -1) for a in (X, X_val))
            else:
                X, X_val = (checked_features(a, "MLPClassifier: X") for a in (X, X_val))
            return Data.from_arrays(X, y, X_val, y_val, X_val, y_val, name="MLPClassifier",
                                    n_classes=len(self.classes_))
        except DataError as exc:
            raise ValueError(str(exc)) from None

    def _restore(self, plan):
        """Continue from the last fit: its weights and optimizer state (same network)."""
        if plan.model.sizes != self._model.sizes:
            raise ValueError(f"MLPClassifier: the fitted network is "
                             f"{'-'.join(map(str, self._model.sizes))}, these parameters and "
                             f"data make {'-'.join(map(str, plan.model.sizes))}; fit anew "
                             "(warm_start=False)")
        plan.model.params[:] = self._model.params
        plan.ws.opt1[:], plan.ws.opt2[:] = self._opt_state

    def _train(self, plan, X_val, y_val, epochs, incremental, early):
        """scikit-learn's epoch loop (its _fit_stochastic) around fastmlp's steps."""
        best = None
        with one_blas_thread():
            for _ in range(epochs):
                loss = self._epoch(plan)
                self.n_iter_ += 1
                self.t_ += len(plan.train_y)
                self.loss_curve_.append(loss)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
                if self.learning_rate == "invscaling" and self.solver == "sgd":
                    self._lr = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
                if early:
                    _, acc = plan.evaluate(plan.splits.val_x, plan.splits.val_y)
                    self.validation_scores_.append(acc)
                    improved = acc >= self.best_validation_score_ + self.tol
                    if acc > self.best_validation_score_:
                        self.best_validation_score_ = acc
                        best = plan.model.params.copy()
                else:
                    improved = not loss > self.best_loss_ - self.tol
                    self.best_loss_ = min(self.best_loss_, loss)
                self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
                if self._no_improvement_count > self.n_iter_no_change:
                    if self._stops(early):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
            else:
                if not incremental and epochs > 0:
                    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                                  "reached and the optimization hasn't converged yet.",
                                  ConvergenceWarning)
        if best is not None:
            plan.model.params[:] = best

    def _stops(self, early):
        """No improvement for n_iter_no_change epochs: stop, or with sgd's adaptive schedule
        divide the learning rate by 5 and go on (until it is below 1e-6)."""
        what = "Validation score" if early else "Training loss"
        if self.verbose:
            print(f"{what} did not improve more than tol={self.tol:f} for "
                  f"{self.n_iter_no_change} consecutive epochs.")
        if self.solver == "sgd" and self.learning_rate == "adaptive" and self._lr > 1e-6:
            self._lr /= 5.0
            return False
        return True

    def _epoch(self, plan):
        """One epoch of fastmlp's training steps (in chunks, as training/run.py runs them);
        returns scikit-learn's loss: the mean cross-entropy plus the L2 penalty."""
        cfg, N, e = plan.cfg, len(plan.train_y), self._epochs
        B = min(batch_size_for_epoch(e, cfg.batch_size, cfg.batch_ramp), N)
        steps = steps_in_epoch(N, B)
        plan.order[:] = np.arange(N)
        if self.shuffle:
            np.random.default_rng([cfg.seed, e]).shuffle(plan.order)
        plan.lrs[:steps] = self._lr
        hp = plan.hyper_for(B)
        chunk = max(1, _CHUNK_SAMPLES // B)
        loss_sum = 0.0
        for s0 in range(0, steps, chunk):
            n = min(chunk, steps - s0)
            loss, _, _, bad = train_steps(plan.model, plan.ws, hp, plan.train_x, plan.train_y,
                                          plan.order, plan.tr_arrays, B, s0, n, plan.lrs, e,
                                          self._t, plan.csr, plan.pixel_map)
            if bad >= 0:
                raise ValueError(f"MLPClassifier: training diverged (the loss became NaN or "
                                 f"infinite at epoch {e + 1}); lower learning_rate_init or "
                                 "scale the features (StandardScaler)")
            self._t += n
            loss_sum += loss
        self._epochs += 1
        penalty = sum(float(np.square(plan.model.weight(l), dtype=np.float64).sum())
                      for l in range(plan.model.n_layers))
        return loss_sum / N + 0.5 * float(self.alpha) * penalty / B

    def _set_weights(self):
        """coefs_ and intercepts_ (float64) from the trained network; two softmax outputs
        become scikit-learn's one logistic output (their difference: the same probabilities)."""
        m = self._model
        coefs = [m.weight(l).astype(np.float64) for l in range(m.n_layers)]
        intercepts = [m.bias(l).astype(np.float64) for l in range(m.n_layers)]
        if len(self.classes_) == 2:
            coefs[-1] = coefs[-1][:, 1:] - coefs[-1][:, :1]
            intercepts[-1] = intercepts[-1][1:] - intercepts[-1][:1]
        self.coefs_, self.intercepts_ = coefs, intercepts
        self.n_layers_ = m.n_layers + 1
        self.n_outputs_ = coefs[-1].shape[1]
        self.out_activation_ = "logistic" if self.n_outputs_ == 1 else "softmax"

    # -- prediction -----------------------------------------------------------------------------
    def _inputs64(self, X):
        """The network's inputs for ``X`` as float64: uint8 images through the fitted input
        transform (scaled by 1/255), features as given."""
        t = self._model.transform
        if t.inputs == "images":
            if X.dtype != np.uint8:
                raise ValueError("MLPClassifier was fitted on uint8 images; predict takes uint8 "
                                 f"images too, got {X.dtype}")
            return t.apply(X).astype(np.float64)
        if X.dtype == np.uint8:
            X = X.astype(np.float32)
        try:
            return checked_features(X, "MLPClassifier").astype(np.float64)
        except DataError as exc:
            raise ValueError(str(exc)) from None

    def _forward(self, x):
        """The logits (n, n_outputs_) of inputs ``x`` (n, D) float64: coefs_ and intercepts_
        with the hidden activation's kernel (float64)."""
        act = self._model.activation
        for l, (w, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            z = x @ w
            z += b
            if l == len(self.coefs_) - 1:
                return z
            x = np.empty_like(z)
            kernels.activation_forward(x, z, act)


def _sigmoid(z):
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


# TrainConfig's messages name the command line's flags; the estimator's name its parameters
_PARAM_OF_FLAG = {FIELD_FLAGS[field]: param for param, field in SKLEARN_PARAMS.items() if field}
_PARAM_OF_FLAG.update({FIELD_FLAGS[name]: name for name in EXTRAS})


def _param_names(message):
    for flag in sorted(_PARAM_OF_FLAG, key=len, reverse=True):
        message = message.replace(flag, _PARAM_OF_FLAG[flag])
    return message


MLPClassifier.__doc__ = MLPClassifier.__doc__.replace("{extras}", _extras_doc())
