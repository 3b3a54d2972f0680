"""fastmlp: train small multilayer perceptrons on MNIST-like images, fast, on a plain CPU.

The Python API in brief::

    from fastmlp import TrainConfig, train
    result = train(TrainConfig(hidden=(100,), epochs=5))
    result.summary["test_accuracy"], result.model.predict(images)
    train(config, data=Data.from_arrays(train_x, train_y, test_x, test_y))  # your own arrays

Layout: data/ (IDX files, data sets, splits) -> transforms.py (crop, scaling) -> model.py
(parameters, prediction) -> kernels.py (Numba kernels; optimizers.py: one row per optimizer) ->
engine.py (compiled training loop; input_plan.py: its settings, sparse or dense first layer) ->
trainer.py (epochs; checkpoint.py: saving and resuming a run) -> train.py (command line).
"""

__version__ = "0.1.0"

# Exports are loaded on first use (PEP 562), so `import fastmlp.data` does not pay for Numba.
_EXPORTS = {
    "TrainConfig": "config", "preset": "config", "train": "trainer", "Data": "trainer",
    "prepare_data": "trainer", "load_model": "trainer", "MLP": "model",
    "custom_activation": "activations", "get_activation": "activations",
    "FastMLPError": "errors", "ConfigError": "errors", "DataError": "errors",
    "CheckpointError": "errors", "DivergenceError": "errors", "OutputError": "errors",
    "sweep": "sweep.api",
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
