"""fastmlp: train small multilayer perceptrons on MNIST-like images, fast, on a plain CPU.

The Python API in brief::

    from fastmlp import TrainConfig, train
    result = train(TrainConfig(hidden=(100,), epochs=5))
    result.summary["test_accuracy"], result.model.predict(images)

Layout: data.py (IDX files, data sets, splits) -> transforms.py (crop, scaling) -> model.py
(parameters, prediction) -> kernels.py (Numba kernels) -> engine.py (compiled training loop) ->
trainer.py (epochs, checkpoints) -> train.py (command line).
"""

__version__ = "0.1.0"

from .activations import custom_activation, get_activation  # noqa: E402
from .config import TrainConfig, preset  # noqa: E402
from .errors import (CheckpointError, ConfigError, DataError, DivergenceError,  # noqa: E402
                     FastMLPError)
from .model import MLP  # noqa: E402
from .trainer import load_model, prepare_data, train  # noqa: E402

__all__ = ["TrainConfig", "preset", "train", "prepare_data", "load_model", "MLP",
           "custom_activation", "get_activation", "FastMLPError", "ConfigError", "DataError",
           "CheckpointError", "DivergenceError"]
