"""The Numba set-up: one place for options, and a cache that cannot go stale across files."""

import shutil

import numba

from fastmlp import _jit, engine, kernels


def test_editing_any_numba_module_changes_the_package_stamp(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(_jit.PACKAGE_DIR, a, ignore=shutil.ignore_patterns("__pycache__", "bundled"))
    shutil.copytree(a, b)
    assert _jit.source_stamp(str(a)) == _jit.source_stamp(str(b))
    # a kernel edit changes the stamp that the training loop's cache is checked against
    # (the stamp is computed once per process and folder, so edit a fresh copy)
    d = tmp_path / "d"
    shutil.copytree(a, d)
    source = (d / "activation_kernels.py").read_text()
    assert "out[i] = z[i]" in source
    (d / "activation_kernels.py").write_text(
        source.replace("out[i] = z[i]", "out[i] = -z[i]", 1))
    assert _jit.source_stamp(str(a)) != _jit.source_stamp(str(d))
    # so does a module jitted code reads without being jitted itself: the loop's buffers and
    # optimizer codes (workspace.py, imported by engine.py, never mentions Numba)
    w = tmp_path / "w"
    shutil.copytree(a, w)
    source = (w / "workspace.py").read_text()
    assert "jit" not in source and "SGD, MOMENTUM, ADAM = 0, 1, 2" in source
    (w / "workspace.py").write_text(source.replace("= 0, 1, 2", "= 1, 0, 2"))
    assert _jit.source_stamp(str(a)) != _jit.source_stamp(str(w))
    # a module without Numba code (the command line) does not
    c = tmp_path / "c"
    shutil.copytree(a, c)
    (c / "train.py").write_text((c / "train.py").read_text() + "\n# a comment\n")
    assert _jit.source_stamp(str(a)) == _jit.source_stamp(str(c))


def test_fastmlp_functions_use_the_package_stamp_and_others_do_not(tmp_path):
    for fn in (engine._train_worker, engine._evaluate_worker, kernels._dense_forward):
        locator = fn._cache._impl._locator
        assert isinstance(locator, _jit._PackageStamp)
        assert locator.get_source_stamp() == _jit.source_stamp()
    mod = tmp_path / "elsewhere.py"
    mod.write_text("def f(x):\n    return x + 1\n")
    import importlib.util
    spec = importlib.util.spec_from_file_location("elsewhere", mod)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    other = numba.njit(cache=True)(m.f)
    assert other(1) == 2
    assert not isinstance(other._cache._impl._locator, _jit._PackageStamp)


def test_options_keep_nan_checks_meaningful():
    assert "nnan" not in _jit.FASTMATH and "ninf" not in _jit.FASTMATH
