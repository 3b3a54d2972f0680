"""Property-based tests (hypothesis) of everything that reads user input: the command lines of
train, evaluate, predict and report, TrainConfig, and the IDX reader.

The property, for every value tried (NaN, infinities, negative, zero, huge, empty, wrong types,
paths that are missing, directories or hold a NUL): no traceback; either the input is valid, or
exit code 2 (a FastMLPError through the API) with a message that names the flag and says what it
accepts. Nothing trains for real: train's command line runs up to the training call (data
loading and every check included) on a tiny synthetic data set; each test is bounded to a few
seconds by max_examples.
"""

import contextlib
import gzip
import io
import math
import os
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import synthetic
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fastmlp import TrainConfig
from fastmlp.cli import run_main
from fastmlp.errors import ConfigError, DataError

small_ck = synthetic.small_ck  # fixture
small_dir = synthetic.small_dir  # fixture

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# Odd values every flag gets tried with.
TOKENS = ["nan", "NaN", "inf", "-inf", "-1", "0", "1", "3", "0.5", "-0.5", "1e400", "1e-320",
          "99999999999999999999999", "-99999999999999999999", "", " ", "abc", "1,2", ",",
          "0,5", "[1]", "None", "true", "a\x00b", "/", "/proc/x/y", "no/such/dir/f"]
ACTIVATIONS = ["relu:nan", "relu:x", "shifted_relu:-1", "leaky_relu:inf", "nope", "x:y", ":",
               "a.b:c", "gelu:1", "relu"]


class Reached(Exception):
    """Raised where training would start: the input passed every check."""


def reached(cfg, **kwargs):
    """Stands in for ``training.run.train``: what got through must be meaningful."""
    for value in cfg.to_dict().values():
        assert not (isinstance(value, float) and not math.isfinite(value)), cfg
    raise Reached


def run(main, argv):
    """(exit code, stderr) of ``main(argv)`` through run_main, as the command line runs it."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = run_main(main, argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, err.getvalue()


def names(flag):
    """The ways a message may name ``flag``."""
    bare = flag.lstrip("-")
    out = {flag, bare, bare.replace("-", "_"), bare.replace("-", " ")}
    if flag == "--dataset":
        out.add("data set")
    return out


def assert_named_error(code, err, flags):
    assert "Traceback" not in err, err
    assert code == 2, (code, err)
    assert err.startswith("error: "), err
    assert any(n in err for f in flags for n in names(f)), (flags, err)


def option_flags(parser, skip=()):
    return sorted(o for a in parser._actions for o in a.option_strings
                  if o.startswith("--") and o not in ("--help",) + tuple(skip)
                  and a.nargs != 0)


def pairs(flags):
    value = st.sampled_from(TOKENS) | st.text(max_size=6)

    def for_flag(flag):
        return st.tuples(st.just(flag),
                         st.sampled_from(TOKENS + ACTIVATIONS) if flag == "--activation"
                         else value)

    return st.lists(st.sampled_from(flags).flatmap(for_flag), min_size=1, max_size=3)


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------
def test_train_flags_are_named_errors_or_valid(small_dir):
    from fastmlp.train import build_parser, main

    flags = option_flags(build_parser())
    base = ["--data-dir", str(small_dir), "--hidden", "8", "--epochs", "1", "--threads", "1",
            "--quiet"]

    @SETTINGS
    @given(pairs(flags))
    def check(chosen):
        argv = base + [t for pair in chosen for t in pair]
        with tempfile.TemporaryDirectory() as cwd, contextlib.chdir(cwd), \
                mock.patch("fastmlp.training.run.train", side_effect=reached):
            try:
                code, err = run(main, argv)
            except Reached:
                return
            assert_named_error(code, err, [f for f, _ in chosen])
            assert os.listdir(cwd) == []  # checking an output path leaves nothing behind

    check()


def test_every_valued_train_flag_with_every_odd_token(small_dir):
    # The sweep behind the property: each flag alone with each odd token, so that no single
    # flag's NaN or huge value is left to chance.
    from fastmlp.train import build_parser, main

    base = ["--data-dir", str(small_dir), "--hidden", "8", "--epochs", "1", "--threads", "1",
            "--quiet"]
    numeric = ["nan", "inf", "-inf", "-1", "0", "1e400", "99999999999999999999999", "", "abc"]
    with tempfile.TemporaryDirectory() as cwd, contextlib.chdir(cwd), \
            mock.patch("fastmlp.training.run.train", side_effect=reached):
        for flag in option_flags(build_parser(), skip=("--data-dir",)):
            for token in numeric:
                try:
                    code, err = run(main, base + [flag, token])
                except Reached:
                    continue
                assert_named_error(code, err, [flag])


# ---------------------------------------------------------------------------------------------
# evaluate and predict
# ---------------------------------------------------------------------------------------------
def test_evaluate_flags_are_named_errors_or_valid(small_ck):
    from fastmlp.evaluate import main

    flags = ["--dataset", "--data-dir", "--split", "--activation"]

    @SETTINGS
    @given(pairs(flags))
    def check(chosen):
        code, err = run(main, [str(small_ck)] + [t for pair in chosen for t in pair])
        if code != 0:
            assert_named_error(code, err, [f for f, _ in chosen])

    check()


def test_evaluate_and_predict_name_a_bad_model_or_image_path(small_ck):
    from fastmlp.evaluate import main as evaluate
    from fastmlp.predict import main as predict

    @SETTINGS
    @given(st.text(max_size=6), st.booleans())
    def check(path, as_image):
        if as_image:
            code, err = run(predict, [str(small_ck), path])
        else:
            code, err = run(evaluate, [path])
        assert "Traceback" not in err and code == 2, (code, err)
        assert err.startswith("error: ") and (
            path.strip() == "" or path in err or repr(path)[1:-1] in err
            or (path.startswith("-") and "required" in err)), err  # "-x" reads as a flag

    for token in TOKENS:
        for as_image in (False, True):
            check.hypothesis.inner_test(token, as_image)
    check()


def test_predict_flags_are_named_errors_or_valid(small_ck, small_dir):
    from fastmlp.predict import main

    images = str(small_dir / "t10k-images-idx3-ubyte")

    @SETTINGS
    @given(st.lists(st.sampled_from(ACTIVATIONS + TOKENS), min_size=1, max_size=2),
           st.booleans(), st.booleans())
    def check(activations, invert, probs):
        argv = [str(small_ck), images] + ["--invert"] * invert + ["--probs"] * probs
        for a in activations:
            argv += ["--activation", a]
        code, err = run(main, argv)
        if code != 0:
            assert_named_error(code, err, ["--activation"])

    check()


# ---------------------------------------------------------------------------------------------
# report (its command line only: running it trains)
# ---------------------------------------------------------------------------------------------
def test_report_flags_are_named_errors_or_parse():
    from fastmlp.report import build_parser

    parser = build_parser()
    flags = option_flags(parser)

    @SETTINGS
    @given(pairs(flags))
    def check(chosen):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                parser.parse_args([t for pair in chosen for t in pair])
                return
            except SystemExit as exc:
                code = exc.code
        assert code == 2 and "Traceback" not in err.getvalue()
        assert any(f in err.getvalue() for f, _ in chosen), err.getvalue()

    check()


# ---------------------------------------------------------------------------------------------
# TrainConfig through the Python API
# ---------------------------------------------------------------------------------------------
ODD = (st.floats(allow_nan=True, allow_infinity=True) | st.integers(-2**70, 2**70)
       | st.text(max_size=5) | st.none() | st.booleans()
       | st.lists(st.integers(-5, 2**40), max_size=3) | st.just(object()) | st.just(()))
FIELDS = [f for f in TrainConfig.__dataclass_fields__ if f != "activation"]
ODD_VALUES = [float("nan"), float("inf"), -float("inf"), -1, 0, -0.5, 2**64, -2**64, "", "x",
              None, True, [], [0], (1.5,), object()]


def test_every_field_with_every_odd_value():
    for field in FIELDS:
        for value in ODD_VALUES:
            check_config({field: value})


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(FIELDS), ODD)
                | st.tuples(st.just("activation"), st.sampled_from(ACTIVATIONS) | st.none()
                            | st.integers()),
                min_size=1, max_size=3))
def test_trainconfig_accepts_or_names_the_field(changes):
    check_config(dict(changes))


def check_config(kwargs):
    try:
        cfg = TrainConfig(**kwargs)
    except ConfigError as exc:
        msg = str(exc)
        assert "\n" not in msg
        assert any(n in msg for f in kwargs for n in names("--" + f.replace("_", "-"))), \
            (kwargs, msg)
        return
    # accepted: every number is finite and the config survives a round trip through its dict
    for value in cfg.to_dict().values():
        if isinstance(value, float):
            assert math.isfinite(value)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


# ---------------------------------------------------------------------------------------------
# The IDX reader
# ---------------------------------------------------------------------------------------------
def _idx_bytes(dims, payload, gz, exact):
    """An IDX header for ``dims`` and a payload of random bytes; ``exact``: as long as the
    header says (when small enough), else whatever length was drawn."""
    head = bytes([0, 0, 8, len(dims)]) + np.array(dims, dtype=">u4").tobytes()
    n = math.prod(dims)
    if exact and n <= 4096:
        payload = (payload * (n // max(1, len(payload)) + 1))[:n] if payload else bytes(n)
    blob = head + payload
    return gzip.compress(blob) if gz else blob


@SETTINGS
@given(st.one_of(
    st.binary(max_size=64),
    st.builds(_idx_bytes, st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 6), max_size=4),
              st.binary(max_size=80), st.booleans(), st.booleans()),
), st.sampled_from(["f-idx3-ubyte", "f.gz"]))
@example(_idx_bytes([3], b"0123456789", True, False), "f.gz")       # trailing bytes in gzip
@example(_idx_bytes([3], b"0123456789", False, False), "f-idx3-ubyte")
@example(_idx_bytes([2**32 - 1] * 3, b"", True, False), "f.gz")    # a header claiming 2**96
def test_idx_reader_returns_uint8_or_names_the_file(blob, name):
    from fastmlp.data import read_idx

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(blob)
        try:
            a = read_idx(path)
        except DataError as exc:
            assert str(path) in str(exc)
            return
        # read: exactly the header's shape, and the file was exactly header + elements
        raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        ndim = raw[3]
        dims = tuple(int(v) for v in np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4"))
        assert a.dtype == np.uint8 and a.shape == dims
        assert len(raw) == 4 + 4 * ndim + a.size
        assert a.tobytes() == raw[4 + 4 * ndim:]

