"""The Numba set-up: one place for options, and a cache that cannot go stale across files."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest
import synthetic

from fastmlp import _jit, kernels
from fastmlp.cli import run_main
from fastmlp.loop import steps
from fastmlp.train import main

small_dir = synthetic.small_dir  # fixture


def test_editing_any_numba_module_changes_the_package_stamp(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(_jit.PACKAGE_DIR, a, ignore=shutil.ignore_patterns("__pycache__", "bundled"))
    shutil.copytree(a, b)
    assert _jit.source_stamp(str(a)) == _jit.source_stamp(str(b))
    # a kernel edit changes the stamp that the training loop's cache is checked against
    # (the stamp is computed once per process and folder, so edit a fresh copy)
    d = tmp_path / "d"
    shutil.copytree(a, d)
    source = (d / "kernels" / "_activation.py").read_text()
    assert "out[i] = z[i]" in source
    (d / "kernels" / "_activation.py").write_text(
        source.replace("out[i] = z[i]", "out[i] = -z[i]", 1))
    assert _jit.source_stamp(str(a)) != _jit.source_stamp(str(d))
    # so does a module jitted code reads without being jitted itself: the loop's buffers and
    # settings (loop/buffers.py: Hyper's field order is the compiled code's tuple layout)
    w = tmp_path / "w"
    shutil.copytree(a, w)
    source = (w / "loop" / "buffers.py").read_text()
    assert "jit" not in source and "    dropout_input: float = 0.0\n    dropout: float" in source
    (w / "loop" / "buffers.py").write_text(source.replace(
        "    dropout_input: float = 0.0\n    dropout: float = 0.0",
        "    dropout: float = 0.0\n    dropout_input: float = 0.0"))
    assert _jit.source_stamp(str(a)) != _jit.source_stamp(str(w))
    # and so does the GEMM the loop compiles in (kernels/_gemm.py: a NumPy function, its BLAS
    # overload)
    g = tmp_path / "g"
    shutil.copytree(a, g)
    source = (g / "kernels" / "_gemm.py").read_text()
    assert source.count('ord("t")') == 1
    (g / "kernels" / "_gemm.py").write_text(source.replace('ord("t")', 'ord("n")'))  # no a'
    assert _jit.source_stamp(str(a)) != _jit.source_stamp(str(g))
    # a module without Numba code (the command line) does not
    c = tmp_path / "c"
    shutil.copytree(a, c)
    (c / "train.py").write_text((c / "train.py").read_text() + "\n# a comment\n")
    assert _jit.source_stamp(str(a)) == _jit.source_stamp(str(c))


def _write_package(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_stamp_follows_imports_into_subpackages_at_any_depth(tmp_path):
    # a layout of subpackages: the stamp must see every module compiled code reaches there,
    # by relative imports of any level and by absolute ones, and the packages' __init__
    files = {
        "__init__.py": "",
        "_jit.py": "def jit(f):\n    return f\n",
        "loop/__init__.py": "",
        "loop/steps.py": "from .._jit import jit\nfrom ..kernels import _dense as D\n"
                         "from .buffers import WIDTH\n@jit\ndef step(x):\n"
                         "    return D.forward(x) + WIDTH\n",
        "loop/buffers.py": "WIDTH = 3\n",
        "kernels/__init__.py": "from ._dense import forward\n",
        "kernels/_dense.py": "from fastmlp.kernels.deep.consts import SCALE\n"
                             "def forward(x):\n    return x * SCALE\n",
        "kernels/deep/__init__.py": "",
        "kernels/deep/consts.py": "SCALE = 2\n",
        "commands/__init__.py": "",
        "commands/train.py": "from ..loop import steps\nprint(steps.step(1))\n",
    }
    base = tmp_path / "base"
    _write_package(base, files)
    stamp = _jit.source_stamp(str(base))
    for name, old, new in [("kernels/_dense.py", "x * SCALE", "x * SCALE + 1"),  # a kernel
                           ("kernels/deep/consts.py", "= 2", "= 4"),  # absolute, two down
                           ("loop/buffers.py", "= 3", "= 5"),  # a constant, relative
                           ("kernels/__init__.py", "forward", "forward  # x"),  # an __init__
                           ("kernels/deep/__init__.py", "", "X = 1\n")]:
        edited = tmp_path / name.replace("/", "-")
        _write_package(edited, {**files, name: files[name].replace(old, new, 1)
                                if old else new})
        assert _jit.source_stamp(str(edited)) != stamp, name
    # a module that compiled code does not reach (a command above the loop) is not stamped
    other = tmp_path / "command"
    _write_package(other, {**files, "commands/train.py": files["commands/train.py"] + "#\n"})
    assert _jit.source_stamp(str(other)) == stamp


# A kernel of kernels/_layers.py called in a new process with a copy of the package; prints its
# cache statistics (hits, misses) and what it wrote
KERNEL_PROBE = """
import json
import numpy as np
from fastmlp import kernels
ptr = np.array([0, 40], np.int64)
idx = np.arange(40, dtype=np.uint16)
val = np.full(40, 7, np.uint8)
bptr, bidx, bval = np.zeros(2, np.int64), np.zeros(40, np.uint16), np.zeros(40, np.uint8)
kernels._gather_sparse(bptr, bidx, bval, ptr, idx, val, np.zeros(1, np.int64), 0.5,
                       np.uint64(5), 0)
stats = kernels._gather_sparse.stats
print(json.dumps([kernels.__file__, sum(stats.cache_hits.values()),
                  sum(stats.cache_misses.values()), bidx[:bptr[1]].tolist()]))
"""


def _package_copy(tmp_path):
    # a copy of the package and the environment of a process that imports it (its Numba cache
    # beside its sources)
    copy = tmp_path / "site" / "fastmlp"
    shutil.copytree(_jit.PACKAGE_DIR, copy,
                    ignore=shutil.ignore_patterns("__pycache__", "bundled"))
    env = {**os.environ, "PYTHONPATH": str(copy.parent)}
    env.pop("NUMBA_CACHE_DIR", None)
    return copy, env


def _probe(code, env, cwd):
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300, cwd=cwd)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _edit(path, old, new):
    source = path.read_text()
    assert source.count(old) == 1, old
    path.write_text(source.replace(old, new))


def test_an_edit_to_a_kernel_in_a_subpackage_misses_the_cache_of_the_code_that_holds_it(
        tmp_path):
    # _gather_sparse (kernels/_layers.py) holds a compiled copy of _row_seed
    # (kernels/_dropout.py): an edit to _row_seed alone must make it compile again, though its
    # own file and its line did not change (Numba's own stamp would load the stale copy). Real
    # Numba caches, in a copy of the package, in new processes.
    copy, env = _package_copy(tmp_path)

    def probe():
        where, hits, misses, kept = _probe(KERNEL_PROBE, env, tmp_path)
        assert where == str(copy / "kernels" / "__init__.py")
        return hits, misses, kept

    hits, misses, kept = probe()
    assert (hits, misses) == (0, 1) and 0 < len(kept) < 40  # compiled, and cached
    assert probe() == (1, 0, kept)  # loaded from the cache
    dropout = copy / "kernels" / "_dropout.py"
    dropout.write_text(dropout.read_text() + "\n# an edit\n")
    assert probe() == (1, 0, kept)  # a comment: nothing _gather_sparse holds changed
    _edit(dropout, "return _splitmix64(state ^ _U64(row))",
          "return _splitmix64(state ^ _U64(row + 1))")
    hits, misses, other = probe()
    assert (hits, misses) == (0, 1) and other != kept  # compiled again, with the edit
    gemm = copy / "kernels" / "_gemm.py"
    _edit(gemm, 'ord("t")', 'ord("n")')
    assert probe() == (1, 0, other)  # _layers.py does not reach _gemm.py: still valid, loaded


# _softmax_xent_forward (kernels/_loss.py), which calls _exp_inplace (kernels/_activation.py)
# through its address, in a new process: the cache statistics of both (hits, misses) and the
# probabilities
ADDRESS_PROBE = """
import json
import numpy as np
from fastmlp import kernels
logits = np.array([[0.0, 1.0, 2.0]], np.float32)
probs = np.empty_like(logits)
kernels._softmax_xent_forward(probs, logits, np.array([0]), 0.0)
stats = [kernels._softmax_xent_forward.stats, kernels._exp_inplace.stats]
print(json.dumps([[sum(s.cache_hits.values()), sum(s.cache_misses.values())] for s in stats]
                 + [probs[0].tolist()]))
"""


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with the JIT off")
def test_a_cached_caller_runs_the_edited_kernel_it_calls_through_its_address(tmp_path):
    # a kernel called through its address (_jit.jit_kernel) is compiled again after an edit,
    # its cached callers are not, and they run the new code; if the edit changes what the
    # kernel returns (its calling convention), the callers are compiled again too
    copy, env = _package_copy(tmp_path)
    activation = copy / "kernels" / "_activation.py"

    def softmax(add):
        e = np.exp(np.array([0.0, 1.0, 2.0]) - 2.0) + add
        return e / e.sum()

    (caller, callee, probs) = _probe(ADDRESS_PROBE, env, tmp_path)
    assert caller == [0, 1] and callee == [0, 1]
    np.testing.assert_allclose(probs, softmax(0.0), rtol=1e-6)
    _edit(activation, "        x[i] = _exp(x[i])\n", "        x[i] = _exp(x[i]) + 1.0\n")
    (caller, callee, probs) = _probe(ADDRESS_PROBE, env, tmp_path)
    assert caller == [1, 0] and callee == [0, 1]  # only the kernel compiled; the new code ran
    np.testing.assert_allclose(probs, softmax(1.0), rtol=1e-6)
    _edit(activation, "        x[i] = _exp(x[i]) + 1.0\n",
          "        x[i] = _exp(x[i]) + 2.0\n    return 1.5\n")
    (caller, callee, probs) = _probe(ADDRESS_PROBE, env, tmp_path)
    assert caller == [0, 1] and callee == [0, 1]  # it returns a float now: both compiled
    np.testing.assert_allclose(probs, softmax(2.0), rtol=1e-6)
    assert _probe(ADDRESS_PROBE, env, tmp_path)[:2] == [[1, 0], [1, 0]]


LINKED = {
    "kern.py": "from fastmlp._jit import jit_kernel\n@jit_kernel\ndef k(x):\n    return x * 2.0\n",
    "helper.py": "from fastmlp._jit import jit\nfrom kern import k\n@jit\ndef h(x):\n"
                 "    return k(x) + 1.0\n",
    "top.py": "from fastmlp._jit import jit\nfrom helper import h\n@jit\ndef t(x):\n"
              "    return h(x) * 10.0\n",
}


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with the JIT off")
def test_a_function_that_links_a_cached_caller_of_a_kernel_resolves_the_kernel(tmp_path):
    # t links h (compiled into t's code), h calls k through its address. h compiled and cached
    # in one process, t compiled in the next (h loaded from the cache and linked into t), then
    # k edited: t, loaded from the cache, must find the new k (Numba gives a cache entry the
    # callees it resolves but not its code library, which a linking caller inherits them from)
    for name, text in LINKED.items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(_jit.PACKAGE_DIR).parent)])}

    def run(code):
        return _probe(f"import json, numba\n{code}", env, tmp_path)

    f8 = "(numba.float64,)"
    assert run("from helper import h\nprint(json.dumps(h(1.0)))") == 3.0
    assert run(f"from top import t\nprint(json.dumps([t(1.0), t.stats.cache_misses[{f8}]]))"
               ) == [30.0, 1]  # compiled, h loaded from the cache and linked in
    _edit(tmp_path / "kern.py", "x * 2.0", "x * 4.0")
    assert run(f"from top import t\nprint(json.dumps([t(1.0), t.stats.cache_hits[{f8}]]))"
               ) == [50.0, 1]  # loaded from the cache, running the new k


def test_an_edit_changes_the_stamps_of_the_modules_that_reach_it_and_only_theirs(tmp_path):
    a = tmp_path / "a"
    shutil.copytree(_jit.PACKAGE_DIR, a, ignore=shutil.ignore_patterns("__pycache__", "bundled"))
    modules = ["kernels._gemm", "kernels._loss", "kernels._activation", "kernels._update",
               "loop.steps", "choices.activations"]
    before = {m: _jit.source_stamp(str(a), m) for m in modules}
    assert len(set(before.values())) == len(modules)
    # a module's own functions are compiled again after any edit to it; the functions of the
    # modules that import it only if what they can hold changed (_jit._interface): not after a
    # comment, nor after an edit inside a kernel they call through its address
    # (_activation_forward), but after one to a function compiled into them (_exp, inlined)
    # or to a constant (SGD: the loop branches on it)
    everyone = {"kernels._loss", "kernels._activation", "loop.steps", "choices.activations"}
    for edited, old, new, changed in [
            ("kernels/_gemm.py", None, "\n# an edit\n", {"kernels._gemm"}),
            ("kernels/_activation.py", None, "\n# an edit\n", {"kernels._activation"}),
            ("kernels/_activation.py", "out[i] = z[i]", "out[i] = -z[i]",
             {"kernels._activation"}),
            ("kernels/_activation.py", "    if x != x:", "    if x != x or x > 1e30:", everyone),
            ("kernels/_update.py", "SGD, MOMENTUM, ADAM = 0, 1, 2",
             "SGD, MOMENTUM, ADAM = 0, 2, 1", {"kernels._update", "loop.steps",
                                                "choices.activations"}),
            ("_jit.py", '"contract", "reassoc"', '"contract"', set(modules))]:
        b = tmp_path / f"{edited.replace('/', '-')}-{len(old or '')}"
        shutil.copytree(a, b)
        if old is None:
            (b / edited).write_text((b / edited).read_text() + new)
        else:
            _edit(b / edited, old, new)
        after = {m for m in modules if _jit.source_stamp(str(b), m) != before[m]}
        assert after == changed, (edited, old, after)


def test_fastmlp_functions_use_the_package_stamp_and_others_do_not(tmp_path):
    for fn, module in ((steps._train_worker, "loop.steps"),
                       (steps._evaluate_worker, "loop.steps"),
                       (kernels._dense_forward, "kernels._layers")):
        locator = fn._cache._impl._locator
        assert isinstance(locator, _jit._PackageStamp)
        assert locator.get_source_stamp() == _jit.source_stamp(_jit.PACKAGE_DIR, module)
    mod = tmp_path / "elsewhere.py"
    mod.write_text("def f(x):\n    return x + 1\n")
    import importlib.util
    spec = importlib.util.spec_from_file_location("elsewhere", mod)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    other = numba.njit(cache=True)(m.f)
    assert other(1) == 2
    assert not isinstance(other._cache._impl._locator, _jit._PackageStamp)


# One training run in a new process, after the same run here: prints the loop's cache statistics
CACHE_PROBE = """
import json, sys
from fastmlp.cli import run_main
from fastmlp.train import main
from fastmlp.loop import steps
code = run_main(main, sys.argv[1:])
stats = [steps._train_worker.stats, steps._evaluate_worker.stats]
print(json.dumps([code] + [[sum(s.cache_hits.values()), sum(s.cache_misses.values())]
                           for s in stats]))
"""


def test_a_new_process_loads_the_training_loop_from_the_cache(small_dir):
    # the loop holds compiled copies of every kernel and of kernels/_gemm.py's BLAS overload;
    # none of them may keep Numba from caching it
    argv = ["--data-dir", str(small_dir), "--epochs", "1", *synthetic.TINY]
    assert run_main(main, argv) == 0   # compiles the loop, or loads it, and caches it
    run = subprocess.run([sys.executable, "-c", CACHE_PROBE, *argv], check=False,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    code, train, evaluate = json.loads(run.stdout.strip().splitlines()[-1])
    assert code == 0
    assert train[0] >= 1 and train[1] == 0, f"training worker: {train} (cache hits, misses)"
    assert evaluate[0] >= 1 and evaluate[1] == 0, f"evaluate worker: {evaluate}"


def test_options_keep_nan_checks_meaningful():
    assert "nnan" not in _jit.FASTMATH and "ninf" not in _jit.FASTMATH


def _pass_levels_per_library(monkeypatch):
    # (library, "module" or "function", level) of every LLVM pass manager Numba makes for a
    # library's module or functions from here on, but the inlining "cheap" pass (-O0 always)
    from numba.core import codegen
    seen, inside = [], []

    def within(method):
        real = getattr(codegen.CPUCodeLibrary, method)

        def run(library, *args):
            inside.append(library.name)
            try:
                return real(library, *args)
            finally:
                inside.pop()
        monkeypatch.setattr(codegen.CPUCodeLibrary, method, run)

    def recorded(method, kind):
        real = getattr(codegen.JITCPUCodegen, method)

        def make(self, **kwargs):
            if kwargs.get("cost") != "cheap" and inside:
                seen.append((inside[-1], kind, int(kwargs.get("opt", numba.config.OPT))))
            return real(self, **kwargs)
        monkeypatch.setattr(codegen.JITCPUCodegen, method, make)

    within("_optimize_final_module")
    within("_optimize_functions")
    recorded("_module_pass_manager", "module")
    recorded("_function_pass_manager", "function")
    return seen


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with the JIT off")
@pytest.mark.skipif("NUMBA_OPT" in os.environ, reason="NUMBA_OPT set: fastmlp follows it")
def test_fastmlp_compiles_at_its_llvm_level_and_the_rest_of_the_process_does_not(monkeypatch):
    process_level = int(numba.config.OPT)
    assert _jit.OPT_LEVEL != process_level == 3
    seen = _pass_levels_per_library(monkeypatch)

    def levels():
        return {level for _, _, level in seen}

    # (uncached, so that every run of the test compiles them)
    inner = _jit._dispatcher(lambda x: x * 3.0, dict(_jit._JIT_OPTIONS, no_cpython_wrapper=True),
                             _jit._InnerDispatcher)
    outer = _jit.jit_uncached(lambda x: inner(x) + 1.0)
    assert outer(2.0) == 7.0
    callback = _jit.cfunc("float64(float64)", cache=False)(lambda x: x - 1.0)
    assert callback.ctypes(2.0) == 1.0
    assert seen and levels() == {_jit.OPT_LEVEL}
    # the process's own level is untouched, and a user's function compiles at it
    assert int(numba.config.OPT) == process_level
    seen.clear()
    assert numba.njit(lambda x: x * 5.0)(2.0) == 10.0
    assert seen and levels() == {process_level}
    # a NUMBA_OPT the user set wins over fastmlp's level
    monkeypatch.setenv("NUMBA_OPT", "2")
    try:
        numba.core.config.reload_config()
        seen.clear()
        assert _jit.jit_uncached(lambda x: x * 7.0)(2.0) == 14.0
        assert seen and levels() == {2}
    finally:
        monkeypatch.delenv("NUMBA_OPT")
        numba.core.config.reload_config()
    assert int(numba.config.OPT) == process_level


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with the JIT off")
@pytest.mark.skipif("NUMBA_OPT" in os.environ, reason="NUMBA_OPT set: fastmlp follows it")
def test_a_workers_own_module_is_not_optimised_again_and_everything_else_is(monkeypatch):
    seen = _pass_levels_per_library(monkeypatch)
    # (uncached, so that every run of the test compiles them)
    inner = _jit._dispatcher(lambda x: x * 3.0, dict(_jit._JIT_OPTIONS, no_cpython_wrapper=True),
                             _jit._InnerDispatcher)

    def a_worker(x):
        return inner(x) + 1.0

    worker = _jit._dispatcher(a_worker, dict(_jit._JIT_OPTIONS), _jit._WorkerDispatcher)
    assert worker(2.0) == 7.0

    def levels(fn, kind):  # Numba names a function's library after its __qualname__
        return {level for name, k, level in seen if name == fn.__qualname__ and k == kind}

    # the worker's module (its callee linked in) at the worker level; its own functions and
    # its callee's module and functions at fastmlp's level
    assert levels(a_worker, "module") == {_jit.WORKER_MODULE_OPT_LEVEL} != {_jit.OPT_LEVEL}
    assert levels(a_worker, "function") == {_jit.OPT_LEVEL}
    assert levels(inner.py_func, "module") == levels(inner.py_func, "function") == {
        _jit.OPT_LEVEL}
    # nothing left behind: a plain function of the same name compiles at the process's level
    assert int(numba.config.OPT) == 3 and not _jit._WORKER_LIBRARIES
    seen.clear()
    assert numba.njit(a_worker)(2.0) == 7.0
    assert levels(a_worker, "module") == levels(a_worker, "function") == {3}
    # the training and evaluation workers are made this way
    assert isinstance(steps._train_worker, _jit._WorkerDispatcher)
    assert isinstance(steps._evaluate_worker, _jit._WorkerDispatcher)


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="with the JIT off it is a plain function")
def test_a_piece_without_a_python_entry_point_says_so_instead_of_crashing():
    # the loop's pieces (loop/steps.py) have no Python wrapper (_jit.jit_inner); Numba would
    # jump to a null one
    with pytest.raises(TypeError, match=r"fastmlp\.loop\.steps\._view runs only inside compiled"):
        steps._view(np.zeros(4, np.float32), 0, 2, 2)
    # called from compiled code it works, and gives the view
    view = numba.njit(lambda buf: steps._view(buf, 1, 1, 2))(np.arange(4, dtype=np.float32))
    assert view.tolist() == [[1.0, 2.0]]


@pytest.mark.skipif(_jit.fcntl is None, reason="the lock needs fcntl (POSIX)")
def test_fastmlp_cache_loads_and_saves_wait_for_the_lock_and_other_caches_do_not(tmp_path):
    # a cold start's helper and this process fill one cache at once: each save (index, then
    # data) and each load of fastmlp's entries holds <index>.lock; other code's caches do not
    import fcntl
    import threading

    ours = _jit._CacheFile(str(tmp_path), "ours-1", _jit.source_stamp())
    other = _jit._CacheFile(str(tmp_path), "other-1", (0.0, 0))
    holders = [open(f._index_path + ".lock", "a") for f in (ours, other)]
    for h in holders:
        fcntl.flock(h, fcntl.LOCK_EX)   # another process saving
    saved, loaded = threading.Event(), []
    writer = threading.Thread(target=lambda: (ours.save(("k",), "data"), saved.set()))
    writer.start()
    try:
        assert not saved.wait(0.3)      # ours waits
        other.save(("k",), "x")         # theirs does not
        assert other.load(("k",)) == "x"
    finally:
        for h in holders:
            h.close()                   # the other process is done
    writer.join(10)
    assert saved.is_set()
    # a load waits for a save in progress as well
    holder = open(ours._index_path + ".lock", "a")
    fcntl.flock(holder, fcntl.LOCK_EX)
    reader = threading.Thread(target=lambda: loaded.append(ours.load(("k",))))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive()
    holder.close()
    reader.join(10)
    assert loaded == ["data"]


# -- a read-only install -----------------------------------------------------------------------
# The package folder and the user cache folder are not writable (as root, permissions cannot
# show it: their locators are told so)
_NO_CACHE = """
import fastmlp._jit as J
nothing = classmethod(lambda cls, f, p: None)
J._InTreeLocator.from_function = nothing
J._UserWideLocator.from_function = nothing
J._TempDirLocator.from_function = J._PackageStamp.__dict__["from_function"]
J._LOCATOR_LIST[:] = [c for c in J._LOCATOR_LIST if c.__module__ == J.__name__]  # not Numba's
"""


def test_with_no_writable_cache_folder_the_cache_goes_to_a_temp_folder_and_says_so(tmp_path):
    script = _NO_CACHE + textwrap.dedent("""
        from fastmlp.loop import steps
        print(steps._train_worker._cache._cache_path)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(str(tmp_path / "fastmlp-numba-cache-")), run.stdout
    assert len(run.stderr.strip().splitlines()) == 1 and "NUMBA_CACHE_DIR" in run.stderr, run.stderr


def test_with_no_folder_at_all_a_command_says_where_the_cache_could_go(tmp_path):
    script = _NO_CACHE + textwrap.dedent("""
        J._TempDirLocator.from_function = nothing
        import sys
        from fastmlp.cli import run_main
        from fastmlp.evaluate import main
        sys.exit(run_main(main, [sys.argv[1]]))
    """)
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.npz")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "NUMBA_CACHE_DIR" in run.stderr and "cannot cache" in run.stderr, run.stderr
