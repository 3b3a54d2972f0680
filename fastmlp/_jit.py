"""The one place where fastmlp decides how Numba compiles its kernels.

Every jitted function in the package is made with :func:`jit` (:func:`jit_kernel` for a kernel
compiled code calls through its address, :func:`jit_inner` for one that only compiled code
calls, :func:`jit_uncached` for code built at run time that Numba cannot cache, such as a
user's scalar functions), a user activation's C callbacks with :func:`cfunc`
(kernels/_user_activation.py), and compiled code that cannot run as Python (kernels/_gemm.py's
BLAS call, kernels/_user_activation.py's call through an address) is the :func:`overload` of a
plain Python function, so that everything also runs with the JIT off (``NUMBA_DISABLE_JIT=1``).

- ``fastmath``: reassociation, contraction (FMA), reciprocal and signed-zero freedom, so that
  loops vectorise. ``nnan`` and ``ninf`` are deliberately left out: the training loop checks
  for NaN/inf losses and that check must stay meaningful.
- ``cache=True``: compiled machine code is stored next to the source (``__pycache__``), so only
  the first run ever pays the compile time. Set ``NUMBA_CACHE_DIR`` to move it. Numba checks a
  cached function against its own file only, but a cached function holds compiled copies of
  the functions it links (a constant it reads is frozen into it too): after an edit to one of
  those it would run the old one. So each of fastmlp's functions is validated against a stamp
  of its module's source and of what it can hold of every package module that module imports,
  transitively (:func:`source_stamp`, :func:`_interface`: a module's syntax tree, without its
  comments and without the bodies of its kernels called through their address).
- Kernels called through their address (:func:`jit_kernel`; the loop's pieces,
  ``jit_inner(by_address=True)``). Numba links the code of every function a jitted function
  calls into the caller's own, and compiles it to machine code again there: the training
  worker held every kernel, so an edit to any kernel recompiled the worker and every piece
  between (appending a comment line to kernels/_loss.py, _activation.py, _gemm.py or
  _update.py: 3.9-4.9 s of the default run's 6.1-6.4 s cold compile, Zen 4). A kernel made
  with :func:`jit_kernel` is compiled once, alone, in its own cache entry; its callers' code
  calls it through an external symbol named after it and its types (:func:`_address_symbol`),
  which is given the address of its current machine code (``llvmlite.binding.add_symbol``)
  whenever it is compiled or loaded, before any caller's code is loaded: a caller's cache entry
  carries the callees to resolve (:class:`_Callee`, run by Numba as the entry's
  ``reload_init``). So an edit to a kernel compiles that kernel again, and what links it, not
  its callers; a cached caller runs the new code. If the edit changed how the kernel is called
  (its return type, say), the caller's entry is a miss (:class:`_FunctionCache`) and the
  caller compiles again. The same edits now compile 0.4-1.2 s; a cold start 5.1-5.8 s instead
  of 6.1-7.1 s (both processes emit each kernel once instead of in every caller). A call costs
  one indirect call; the steps are as fast (benchmarks/README.md, 2026-12-05).
- A lock on the cache (:func:`_locked`): two processes fill one cache at once (a cold start's
  helper, loop/warmup.py; sweep workers), and Numba's cache file is not safe for that: a save
  writes the index, then the data file it names, unlocked, so two saves of one function can
  give one signature the other's code, and a load between the two writes can read a data file
  left by an earlier version of the source. Loads and saves of fastmlp's entries hold
  ``<index>.lock``.
- ``error_model="numpy"``: division by zero gives inf/NaN instead of raising, as in NumPy, and
  saves the checks in inner loops.
- No C entry point (``no_cfunc_wrapper``): Numba gives every jitted function a C-callable
  wrapper besides its Python one, for first-class function use, which fastmlp never makes; left
  out, a cold compile has 9% less IR to generate and optimise (169 modules -> 111).
  :func:`jit_inner` also leaves out the Python entry point, for the training loop's pieces that
  only compiled code calls (loop/steps.py): their Python wrappers (unboxing the Workspace's 18
  arrays and the Hyper, say) were 15% of a cold compile's IR.
- LLVM at ``-O1`` (:data:`OPT_LEVEL`; Numba's default ``NUMBA_OPT`` is 3): measured on the
  default run, a cold compile about 0.8 s shorter (median 10.6 s against 11.4), the loop's
  steps as fast (Numba runs the loop vectoriser at every level; benchmarks/README). It applies
  while fastmlp compiles (:func:`_opt_level`), so also to a user's function first compiled
  inside that compile (a user activation's), not to the rest of the process. A ``NUMBA_OPT`` in
  the environment wins for what is compiled then (a cache entry keeps the level it was compiled
  at: Numba's cache index does not record it; an ``opt`` in ``.numba_config.yaml`` is not
  looked at).
- The training and evaluation workers' own module at LLVM ``-O0`` (:func:`jit_worker`,
  :data:`WORKER_MODULE_OPT_LEVEL`). Numba links the code of every function a jitted function
  calls into that function's own module and runs LLVM's module passes over all of it again;
  for a worker that is every kernel of the loop, each already optimised at ``-O1`` in its own
  library. The worker's module is left at ``-O0`` (its own code still gets the function passes
  at ``-O1``, and everything is emitted at the target machine's level): on the default run a
  cold compile about a second shorter (median 9.9 s against 10.8, 5 pairs), no slowdown of the
  steps resolved on this machine (the fastest chunks the same; benchmarks/README). Numba has
  no option for it, so the module passes of a library named after the worker are run at that
  level by a wrapper around Numba's ``CPUCodeLibrary._optimize_final_module`` while the worker
  compiles (:func:`_worker_level`); the wrapper stays installed and passes every other library
  on unchanged; if Numba has no such method, the worker compiles as any other function. At
  ``-O0`` the module also skips the loop-rotate, instcombine and jump-threading passes Numba
  adds to its inlining pass.
- No ``parallel=True``: the training loop runs its own threads (kernels/_sync.py,
  loop/steps.py), BLAS runs on one thread inside each, and the element-wise kernels are
  cheaper than a parallel region's start-up at these batch sizes (loading a cached parallel
  function also costs seconds, numba#8085).
"""

import ast
import collections
import contextlib
import functools
import hashlib
import importlib
import logging
import os
from typing import NamedTuple

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: Numba's cache as it is
    fcntl = None

import llvmlite.binding as llvm_binding
import numba
import numba.extending
from numba.core import caching, cgutils, typing
from numba.core.base import OverloadSelector
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import CPUDispatcher, cpu_target

from .errors import CacheError

FASTMATH = frozenset({"nsz", "arcp", "contract", "reassoc"})

_OPTIONS = dict(fastmath=set(FASTMATH), error_model="numpy", nogil=True)
# for jitted functions (not the C callbacks of cfunc): no C entry point, see the docstring
_JIT_OPTIONS = dict(_OPTIONS, no_cfunc_wrapper=True)


OPT_LEVEL = 1


@contextlib.contextmanager
def _opt_level():
    """Run the enclosed compile with LLVM at :data:`OPT_LEVEL`. Numba's pass builders read
    ``numba.config.OPT`` each time they are made; the target machine reads it once, when Numba's
    CPU target is first set up, so that is done before (it keeps the process's level). The
    change is made and undone under Numba's compiler lock, which every compile holds."""
    if "NUMBA_OPT" in os.environ:
        yield
        return
    _ = cpu_target.target_context  # sets up the CPU target at the process's level
    with _numba_opt(OPT_LEVEL):
        yield


@contextlib.contextmanager
def _numba_opt(level):
    # numba.config.OPT at `level` for the enclosed code and back, under Numba's compiler lock
    with global_compiler_lock:
        saved = numba.config.OPT
        numba.config.OPT = type(saved)(level)
        try:
            yield
        finally:
            numba.config.OPT = saved


WORKER_MODULE_OPT_LEVEL = 0
_WORKER_LIBRARIES = collections.Counter()  # the libraries (named as the workers) compiling now


def _optimize_final_module_at_worker_level(original):
    # Numba's CPUCodeLibrary._optimize_final_module, at WORKER_MODULE_OPT_LEVEL for a worker's
    # library: the module pass manager reads numba.config.OPT when it is made, here
    @functools.wraps(original)
    def optimize(library, *args, **kwargs):
        if not _WORKER_LIBRARIES[library.name]:
            return original(library, *args, **kwargs)
        with _numba_opt(WORKER_MODULE_OPT_LEVEL):
            return original(library, *args, **kwargs)

    optimize.fastmlp_wrapper = True
    return optimize


@contextlib.contextmanager
def _worker_level(name):
    """While the enclosed compile runs, the library named ``name`` (a worker's: Numba names a
    function's library after its ``__qualname__``) gets its module passes at
    :data:`WORKER_MODULE_OPT_LEVEL`; no change if ``NUMBA_OPT`` is set or Numba's library class
    has no such method."""
    from numba.core.codegen import CPUCodeLibrary

    original = getattr(CPUCodeLibrary, "_optimize_final_module", None)
    if "NUMBA_OPT" in os.environ or not callable(original):
        yield
        return
    with global_compiler_lock:
        if not getattr(original, "fastmlp_wrapper", False):
            CPUCodeLibrary._optimize_final_module = _optimize_final_module_at_worker_level(
                original)
        _WORKER_LIBRARIES[name] += 1
        try:
            yield
        finally:
            _WORKER_LIBRARIES[name] -= 1
            if not _WORKER_LIBRARIES[name]:
                del _WORKER_LIBRARIES[name]


class _Dispatcher(CPUDispatcher):
    """Numba's dispatcher, compiling at fastmlp's LLVM level (:func:`_opt_level`)."""

    def compile(self, sig):
        with _opt_level():
            return super().compile(sig)


def _dispatcher(func, options, cls=_Dispatcher):
    cache = options.pop("cache", False)
    if numba.config.DISABLE_JIT:
        return func
    # as numba.njit makes it (boundscheck=None: no bounds checks even under NUMBA_DEBUGINFO)
    targetoptions = dict(options, nopython=True, boundscheck=None)
    dispatcher = cls(py_func=func, locals={}, targetoptions=targetoptions)
    if cache:
        try:
            dispatcher._cache = _FunctionCache(dispatcher.py_func)  # as enable_caching() does
        except RuntimeError as exc:  # "cannot cache function ...: no locator available"
            raise CacheError(f"Numba cannot cache fastmlp's compiled code: no folder is writable "
                             f"(the package's {PACKAGE_DIR}, the user cache, "
                             f"{temp_cache_dir()}); set NUMBA_CACHE_DIR to a writable folder, "
                             "e.g. NUMBA_CACHE_DIR=$PWD/.numba-cache") from exc
    return dispatcher


def _decorator(options, func):
    if func is None:
        return lambda f: _dispatcher(f, dict(options))
    return _dispatcher(func, dict(options))


def jit(func=None, **overrides):
    """``numba.njit`` with fastmlp's options and on-disk caching."""
    return _decorator(dict(_JIT_OPTIONS, cache=True, **overrides), func)


class _WorkerDispatcher(_Dispatcher):
    """A worker's dispatcher: its own module's passes at WORKER_MODULE_OPT_LEVEL."""

    def compile(self, sig):
        with _worker_level(self.py_func.__qualname__):
            return super().compile(sig)


def jit_worker(func):
    """Like :func:`jit`, for a worker that calls the loop's kernels (loop/steps.py): its own module
    is not optimised again (see the docstring)."""
    return _dispatcher(func, dict(_JIT_OPTIONS, cache=True), _WorkerDispatcher)


class _InnerDispatcher(_Dispatcher):
    """A jitted function without a Python entry point: called from Python it raises (Numba
    would jump to a null wrapper and crash the process)."""

    def __call__(self, *args, **kwargs):
        raise TypeError(f"{self.py_func.__module__}.{self.py_func.__qualname__} runs only "
                        "inside compiled code (it has no Python entry point); call it from a "
                        "jitted function")


def jit_inner(func=None, by_address=False):
    """Like :func:`jit`, for a function that only compiled code calls: Numba makes no Python
    entry point for it, which saves that wrapper's compile time (see the docstring). With the
    JIT off it is the plain function. ``by_address``: compiled callers call it through its
    address (:func:`jit_kernel`)."""
    if func is None:
        return functools.partial(jit_inner, by_address=by_address)
    options = dict(_JIT_OPTIONS, cache=True, no_cpython_wrapper=True)
    return _dispatcher(func, options,
                       _InnerAddressDispatcher if by_address else _InnerDispatcher)


# ---------------------------------------------------------------------------------------------
# Kernels called through their address (see the docstring)
# ---------------------------------------------------------------------------------------------
class _CalleeChanged(Exception):
    """A cached caller was compiled against a callee whose compiled interface has changed."""


def _address_symbol(module, qualname, argtypes, restype):
    # the name a caller's code gives the callee of these types: the same in every process
    key = hashlib.sha256(repr((tuple(str(t) for t in argtypes), str(restype))).encode())
    return f"fastmlp.by_address.{module}.{qualname}.{key.hexdigest()[:24]}"


class _Callee(NamedTuple):
    """What a caller's compiled code calls through an address: the callee (its module and
    name), the types it was compiled for, and the symbol the caller's code names. Kept with the
    caller (Numba's ``reload_init``, pickled into its cache entry and run before the caller's
    machine code is loaded): it compiles or loads the callee as its source is now and gives
    the symbol its address, or, if the callee's compiled interface is no longer the one the
    caller was compiled against, makes that cache entry a miss."""

    module: str
    qualname: str
    argtypes: tuple
    restype: object
    symbol: str

    def __call__(self):
        dispatcher = getattr(importlib.import_module(self.module), self.qualname, None)
        if not isinstance(dispatcher, _AddressCalls):
            raise _CalleeChanged(self.symbol)
        try:
            dispatcher.compile(self.argtypes)
        except Exception as exc:  # it no longer compiles for these types: compile the caller
            raise _CalleeChanged(self.symbol) from exc  # again (its typing says what is wrong)
        cres = dispatcher.overloads.get(self.argtypes)
        if (cres is None or tuple(cres.fndesc.argtypes) != self.argtypes
                or cres.fndesc.restype != self.restype):
            raise _CalleeChanged(self.symbol)


def _call_by_address(callee):
    # Numba's lowering of a call to `callee` (a _Callee): a call to the external symbol, with
    # Numba's own calling convention, instead of linking the callee's code into the caller's
    def call(context, builder, sig, args):
        fnty = context.call_conv.get_function_type(callee.restype, callee.argtypes)
        fn = cgutils.get_or_insert_function(builder.module, fnty, callee.symbol)
        status, result = context.call_conv.call_function(builder, fn, callee.restype,
                                                         callee.argtypes, args)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        context.active_code_library._reload_init.add(callee)
        return result

    call.signature = typing.signature(callee.restype, *callee.argtypes)
    call.libs = ()  # nothing linked
    return call


class _AddressCalls:
    """Mixin for a dispatcher whose compiled callers call it through its address: each
    overload's machine code is given a symbol of its own (its module, name and types), and
    the caller's code calls that symbol, resolved when the caller's code is loaded."""

    def add_overload(self, cres):
        super().add_overload(cres)
        f = self.py_func
        callee = _Callee(f.__module__, f.__qualname__, tuple(cres.fndesc.argtypes),
                         cres.fndesc.restype,
                         _address_symbol(f.__module__, f.__qualname__, cres.fndesc.argtypes,
                                         cres.fndesc.restype))
        address = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
        if not address:  # pragma: no cover - Numba keeps every function it compiles
            return
        llvm_binding.add_symbol(callee.symbol, address)
        selector = OverloadSelector()
        impl = _call_by_address(callee)
        selector.append(impl, impl.signature.args)
        self.targetctx._defns[cres.entry_point] = selector


class _AddressDispatcher(_AddressCalls, _Dispatcher):
    pass


class _InnerAddressDispatcher(_AddressCalls, _InnerDispatcher):
    pass


def jit_kernel(func):
    """Like :func:`jit`, for a kernel that compiled callers call through its address (see the
    docstring): its code is compiled once, in its own cache entry, and an edit to it compiles
    it again, not its callers. (No options: an inlined function, say, would be compiled into
    its callers.)"""
    return _dispatcher(func, dict(_JIT_OPTIONS, cache=True), _AddressDispatcher)


class _FunctionCache(caching.FunctionCache):
    """Numba's cache of a function, where an entry whose callee's compiled interface changed
    (:class:`_Callee`) is a miss: the caller is compiled again."""

    def load_overload(self, sig, target_context):
        try:
            cres = super().load_overload(sig, target_context)
        except _CalleeChanged:
            return None
        if cres is not None:
            # Numba gives the loaded result the callees to resolve but not its library, which
            # a caller linking it inherits them from: without this, a cached caller of a
            # cached function would not resolve the callees of the latter
            cres.library._reload_init.update(cres.reload_init)
        return cres


def overload(func):
    """Decorator: ``numba.extending.overload`` of the plain Python function ``func``, compiled
    with fastmlp's options. Jitted callers of ``func`` get the decorated implementation (e.g. a
    BLAS call, kernels/_gemm.py); Python callers, and every caller when the JIT is off
    (``NUMBA_DISABLE_JIT=1``), run ``func`` itself."""
    return numba.extending.overload(func, jit_options=dict(_JIT_OPTIONS))


def cfunc(signature, cache):
    """``numba.cfunc(signature)`` with fastmlp's options: a C callback, cached on disk when
    ``cache`` (the locators below apply to it as to :func:`jit`)."""
    decorate = numba.cfunc(signature, nopython=True, cache=cache, **_OPTIONS)

    def compile_at_our_level(func):
        with _opt_level():
            return decorate(func)

    return compile_at_our_level


def jit_uncached(func=None, **overrides):
    """Like :func:`jit` but not cached: for functions built at run time (closures)."""
    return _decorator(dict(_JIT_OPTIONS, cache=False, **overrides), func)


# ---------------------------------------------------------------------------------------------
# The cache stamps: a module's, and its imports' (see the module docstring)
# ---------------------------------------------------------------------------------------------
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=None)
def source_stamp(package_dir=PACKAGE_DIR, module=None):
    """The cache stamp of ``module`` (a dotted name below the package, "" for its __init__;
    None: every module compiled code can reach, the modules that mention ``jit``): SHA-256 over
    the source of that module and of every package module it imports, transitively, relative or
    absolute (a constant or a NamedTuple that jitted code reads is frozen into the compiled code
    too, and a jitted caller holds its callees' code), with the ``__init__`` of every package
    above a module reached (Python runs it first). An edit changes the stamps of the modules
    that reach it, and only theirs."""
    sources, packages = _package_sources(package_dir)
    todo = ([m for m, data in sources.items() if b"jit" in data] if module is None
            else [module])
    reached = set()
    while todo:
        name = todo.pop()
        if name in reached or name not in sources:
            continue
        reached.add(name)
        imported = _imported_modules(sources[name], name, name in packages,
                                     parents=module is None)
        todo.extend(m for m in imported if m in sources)
    digest = hashlib.sha256()
    for name in sorted(reached):
        data = sources[name] if module is None or name == module else _interface(sources[name])
        digest.update(name.encode() + b"\0" + data)
    return STAMP_PREFIX + digest.hexdigest()


def _interface(source):
    """What of a module another module's compiled code can hold: its syntax tree without
    comments, and without the bodies of its functions called through their address
    (:func:`jit_kernel`, ``jit_inner(by_address=True)``; their parameters stay). Constants,
    inlined and linked functions, overloads: everything else counts."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
                "jit_kernel" in ast.unparse(d) or "by_address=True" in ast.unparse(d)
                for d in node.decorator_list):
            node.body = [ast.Pass()]
    return ast.dump(tree).encode()


STAMP_PREFIX = "fastmlp-"  # marks the cache entries fastmlp stamps (and locks)


def _module_name(py_file, package_dir=PACKAGE_DIR):
    """The dotted name below the package of its file ``py_file``."""
    rel = os.path.relpath(os.path.abspath(py_file), package_dir)[:-len(".py")].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def _package_sources(package_dir):
    # ({dotted name below the package ("" for its __init__, "kernels._gemm", ...): source
    # bytes}, {the names that are packages}) for every .py file under package_dir
    sources, packages = {}, set()
    for folder, subfolders, files in os.walk(package_dir):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        rel = os.path.relpath(folder, package_dir)
        parts = [] if rel == os.curdir else rel.split(os.sep)
        for name in sorted(files):
            if name.endswith(".py"):
                module = ".".join(parts if name == "__init__.py" else parts + [name[:-3]])
                if name == "__init__.py":
                    packages.add(module)
                with open(os.path.join(folder, name), "rb") as f:
                    sources[module] = f.read()
    return sources, packages


def _imported_modules(source, module, is_package, parents=True):
    """The names (below the package) of what ``source``, the module ``module``, imports from
    the package: ``from .x import y``, ``from ..x import y``, ``from . import x``, ``import
    fastmlp.x``; ``x.y`` as well as ``x`` (``y`` may be a module), and the ``__init__`` of each
    package on the way."""
    here = module.split(".") if module else []
    package = here if is_package else here[:-1]
    top = __name__.split(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]  # . is the package, .. its parent
            elif (node.module or "").split(".")[0] == top:
                base = []
            else:
                continue
            rest = node.module.split(".") if node.module else []
            if not node.level:
                rest = rest[1:]  # "fastmlp.x.y" -> "x.y"
            target = base + rest
            found.add(".".join(target))
            found.update(".".join(target + [alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == top:
                    found.add(".".join(parts[1:]))
    if not parents:
        return found
    with_parents = set()
    for name in found:
        parts = name.split(".") if name else []
        with_parents.update(".".join(parts[:i]) for i in range(len(parts) + 1))
    return with_parents


class _PackageStamp:
    """Mixin for Numba's cache locators: applies only to fastmlp's own files and stamps them
    with their module's :func:`source_stamp` instead of the one file's hash."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.commonpath([os.path.abspath(py_file), PACKAGE_DIR]) != PACKAGE_DIR:
            return None  # not one of fastmlp's files (in any of its subpackages)
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return source_stamp(PACKAGE_DIR, _module_name(self._py_file))


def _numba_class(name):
    # Numba renamed these from _Name to Name in 0.61; accept either.
    return getattr(caching, name, None) or getattr(caching, "_" + name)


class _UserProvidedLocator(_PackageStamp, _numba_class("UserProvidedCacheLocator")):
    pass


class _InTreeLocator(_PackageStamp, _numba_class("InTreeCacheLocator")):
    pass


class _UserWideLocator(_PackageStamp, _numba_class("UserWideCacheLocator")):
    pass


class _TempDirLocator(_UserWideLocator):
    """The last resort, when neither the package's ``__pycache__`` nor the user's cache folder
    can be written (a read-only install, no HOME) and NUMBA_CACHE_DIR is unset: a folder of this
    user's under the system's temporary directory, said once on stderr."""

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        self._cache_path = os.path.join(temp_cache_dir(), self.get_suitable_cache_subpath(py_file))

    def ensure_cache_path(self):
        super().ensure_cache_path()
        _note_temp_cache()


def temp_cache_dir():
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"fastmlp-numba-cache-{os.getuid()}"
                        if hasattr(os, "getuid") else "fastmlp-numba-cache")


@functools.lru_cache(maxsize=None)
def _note_temp_cache():
    # a warning of the "fastmlp" logger: without a logging set-up, Python prints it as this one
    # line on stderr; an application that sets up logging routes it like its own
    logging.getLogger(__name__).warning(
        "fastmlp: compiled code is cached in %s (the package folder %s and the user cache "
        "folder are not writable); set NUMBA_CACHE_DIR to a lasting writable folder to keep it",
        temp_cache_dir(), PACKAGE_DIR)


_LOCATOR_LIST = _numba_class("CacheImpl")._locator_classes
if _InTreeLocator.__qualname__ not in [c.__qualname__ for c in _LOCATOR_LIST]:
    _LOCATOR_LIST[:0] = [_UserProvidedLocator, _InTreeLocator, _UserWideLocator, _TempDirLocator]


# ---------------------------------------------------------------------------------------------
# Loads and saves of fastmlp's cache entries under a lock (see the module docstring)
# ---------------------------------------------------------------------------------------------
_CacheFile = _numba_class("IndexDataCacheFile")


@contextlib.contextmanager
def _locked(cache_file, exclusive):
    """Hold ``<index>.lock`` (shared to load, exclusive to save) if the cache file is one of
    fastmlp's (stamped with :func:`source_stamp`) and the lock can be had; else nothing."""
    f = None
    stamp = cache_file._source_stamp
    if fcntl is not None and isinstance(stamp, str) and stamp.startswith(STAMP_PREFIX):
        try:
            f = open(cache_file._index_path + ".lock", "a")
        except OSError:  # no cache folder yet (nothing to load), or not writable
            pass
    if f is None:
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield  # closing the file releases the lock


def _wrap_cache_file(name, exclusive):
    real = getattr(_CacheFile, name)

    @functools.wraps(real)
    def method(self, *args):
        with _locked(self, exclusive):
            return real(self, *args)

    method._fastmlp_locked = True
    setattr(_CacheFile, name, method)


if not getattr(_CacheFile.save, "_fastmlp_locked", False):
    _wrap_cache_file("save", exclusive=True)
    _wrap_cache_file("load", exclusive=False)
