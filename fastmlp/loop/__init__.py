"""The compiled training loop: many steps per call, inside Numba (steps.py), its buffers and
settings (buffers.py), the Python calls into it (calls.py) and a cold start's compile split
over two processes (warmup.py). It reads arrays and a ``Hyper``, never a config, a model
class or a run (an import-linter contract in pyproject.toml holds it to that)."""
