"""The float64 twins the kernel benchmarks validate against: ``tests/naive.py``, the one home of
the naive twins (loaded by path, so no ``tests`` package is needed). ``SOURCE`` names the file.
"""

import importlib.util
from pathlib import Path

SOURCE = str(Path(__file__).resolve().parent.parent / "tests" / "naive.py")

_spec = importlib.util.spec_from_file_location("_fastmlp_tests_naive", SOURCE)
_naive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_naive)

gather_batch = _naive.gather_batch
dense_forward = _naive.dense_forward
dense_backward = _naive.dense_backward
activation_forward = _naive.activation_forward
activation_backward = _naive.activation_backward
softmax_xent_forward = _naive.softmax_xent_forward
softmax_xent_backward = _naive.softmax_xent_backward
dropout_forward = _naive.dropout_forward
dropout_backward = _naive.dropout_backward
