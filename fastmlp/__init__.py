"""fastmlp: train small multilayer perceptrons on MNIST-like images, fast, on a plain CPU.

The Python API in brief::

    from fastmlp import TrainConfig, train
    result = train(TrainConfig(hidden=(100,), epochs=5))
    result.summary["test_accuracy"], result.model.predict(images)
    train(config, data=Data.from_arrays(train_x, train_y, test_x, test_y))  # your own arrays

Layout, each folder a layer, every import pointing down (docs/layout.md): kernels/ (Numba
kernels) <- data/ (IDX files, data sets, splits, crop and scaling) <- loop/ (the compiled
training loop) and choices/ (the rows a flag can name: activations, optimizers, augmentations,
schedules) <- model.py (parameters, prediction) <- config.py (TrainConfig) <- training/ (plan,
run, checkpoints, outputs) <- cli.py <- train.py, evaluate.py, predict.py <- sweep/ <- report/.
"""

__version__ = "0.1.0"

# Exports are loaded on first use (PEP 562), so `import fastmlp.data` does not pay for Numba.
_EXPORTS = {
    "TrainConfig": "config", "preset": "config", "train": "training.run",
    "Data": "training.run_data", "prepare_data": "training.run_data",
    "load_model": "training.checkpoint", "MLP": "model", "Ensemble": "model",
    "custom_activation": "choices.activations", "get_activation": "choices.activations",
    "FastMLPError": "errors", "ConfigError": "errors", "DataError": "errors",
    "CheckpointError": "errors", "DivergenceError": "errors", "OutputError": "errors",
    "sweep": "sweep.api",
    "export_onnx": "export",
    "MLPClassifier": "estimator",  # needs scikit-learn: pip install "fastmlp[sklearn]"
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastmlp' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
