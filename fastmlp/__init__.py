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

# x86-64 CPUs without SSE4.2 (Core 2, Athlon 64/Phenom: before 2008-2011) and NumPy 2.4 or later
# (built for x86-64-v2): `import numpy` dies of SIGILL with no message, so this stops first.
# CPUID runs through ctypes: /proc/cpuinfo shows the host's flags under qemu-user, not the
# emulated CPU's (docs/speed.md "Old CPUs"). Costs ~2 ms of import (ctypes), never fails.
# push rbx; mov eax, edi; xor ecx, ecx; cpuid; mov eax, ecx; pop rbx; ret: uint32 f(uint32 leaf)
_CPUID_ECX = b"\x53\x89\xf8\x31\xc9\x0f\xa2\x89\xc8\x5b\xc3"
_NEEDS = ((0, "SSE3", (0,)), (9, "SSSE3", (2, 4)), (19, "SSE4.1", (2, 4)),
          (20, "SSE4.2", (2, 4)), (23, "POPCNT", (2, 4)))  # (bit of cpuid(1).ecx, name, NumPy from)


def _cpuid_leaf1_ecx():
    import ctypes
    import mmap

    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(_CPUID_ECX)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    return ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_uint32)(address)(1)


def _cpu_check(read_ecx=_cpuid_leaf1_ecx, numpy_version=None):
    """Stop (one line, exit 2) on an x86-64 CPU the installed NumPy cannot run on."""
    import os

    try:
        if os.uname().machine != "x86_64" or os.environ.get("FASTMLP_NO_CPU_CHECK"):
            return
        ecx = read_ecx()
        if all(ecx >> bit & 1 for bit, _, _ in _NEEDS):
            return
        if numpy_version is None:
            import importlib.metadata
            numpy_version = importlib.metadata.version("numpy")
        version = tuple(int(x) for x in numpy_version.split(".")[:2])
        missing = [name for bit, name, since in _NEEDS if not ecx >> bit & 1 and version >= since]
    except Exception:  # no CPUID here (not Linux, no executable memory): NumPy decides
        return
    if missing:
        fix = ('install a NumPy built for it: pip install "numpy<2.4"' if "SSE3" not in missing
               else "fastmlp needs an x86-64 CPU with SSE3 (2005 or later)")
        import sys
        print(f"fastmlp: this CPU has no {', '.join(missing)}, which NumPy {numpy_version} needs "
              f"(it would stop with 'Illegal instruction'); {fix}", file=sys.stderr)
        raise SystemExit(2)


_cpu_check()

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
