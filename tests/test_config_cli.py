"""The train command line is derived from TrainConfig's fields: every field has a flag whose
help shows its default, each flag sets its field, the choices are the tables that implement
them, and a field added without its command-line metadata is caught.

Values are generated from the fields themselves, so a new field is covered by adding it.
"""

import argparse
import dataclasses
import re

import pytest
from synthetic import one_line

from fastmlp import config, data
from fastmlp.choices import schedules
from fastmlp.choices.activations import INIT_SCHEMES
from fastmlp.cli import ArgumentParser, run_main
from fastmlp.config import GROUPS, TrainConfig
from fastmlp.data import transforms
from fastmlp.errors import ConfigError
from fastmlp.report.commands import train_argv
from fastmlp.sweep import grid
from fastmlp.train import build_parser, config_from_args, main

FIELDS = dataclasses.fields(TrainConfig)

# Each choice field and the one table that implements it (what a new value is added to).
TABLES = {"split": data.SPLIT_MODES, "normalize": transforms.NORMALIZE_MODES,
          "init": ("auto", *INIT_SCHEMES), "optimizer": config.OPTIMIZERS,
          "schedule": schedules.SCHEDULES, "input_path": config.INPUT_PATHS}


def flag(name):
    return "--" + name.replace("_", "-")


def actions(parser):
    return {a.dest: a for a in parser._actions}


def undocumented(cls):
    """Fields of ``cls`` without a help text or a --help group in their metadata."""
    return [f.name for f in dataclasses.fields(cls)
            if not f.metadata.get("help") or f.metadata.get("group") not in GROUPS]


def other_value(f):
    """A valid value of field ``f`` other than its default, made from the field itself (its
    choices, type and default); the default for a free string field (it still must parse)."""
    choices, d = f.metadata.get("choices"), f.default
    if choices:
        return [c for c in choices if c != d][-1]
    base = config._kind(f.type)[0]
    if base is bool:
        return not d
    if typing_tuple(f):
        return (7, 5)
    if base is int:
        return (d or 1) + 1
    if base is float:
        return d / 3 if d else 1 / 3  # digits a rounded spelling would lose
    return {"dataset": next(n for n in data.DATASETS if n != d), "activation": "relu"}.get(
        f.name, d if d is not None else "/tmp/x")  # data_dir: any absolute path


def typing_tuple(f):
    return getattr(f.type, "__origin__", None) is tuple


def text_of(value):
    """How a user types ``value`` after its flag."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return repr(value) if isinstance(value, float) else str(value)


def argv_for(f, value):
    return [flag(f.name)] if isinstance(value, bool) else [flag(f.name), text_of(value)]


def help_entries():
    """``--help`` as one line per flag (an entry's wrapped lines joined)."""
    text = build_parser().format_help()
    return [" ".join(e.split()) for e in re.split(r"\n  (?=-)", text)]


def test_every_field_has_metadata_and_a_flag():
    assert undocumented(TrainConfig) == []
    acts = actions(build_parser())
    for f in FIELDS:
        assert f.name in acts, f"{f.name} has no flag"
        assert acts[f.name].option_strings == [flag(f.name)]
    assert {"beta1", "beta2", "eps"} <= set(acts)


def test_help_shows_every_default_and_the_default_parses_back():
    # The default --help prints, typed after its flag, gives the field's default: so the text
    # is the true default, in the flag's own spelling. None defaults are shown in words.
    lines = help_entries()
    for f in FIELDS:
        line = next((ln for ln in lines if ln.startswith(flag(f.name) + " ")), None)
        assert line is not None, f"{flag(f.name)} not in --help"
        m = re.search(r"\(default: ([^)]*)\)", line)
        assert m, f"{flag(f.name)}: no default in {line!r}"
        shown = m.group(1)
        if isinstance(f.default, bool):
            assert shown == ("on" if f.default else "off")
        elif f.default is None:
            assert shown and shown != "None", line  # words, not Python's None
            assert f.metadata.get("shown") == shown or shown == "none"
        else:
            args = build_parser().parse_args([flag(f.name), shown])
            assert getattr(args, f.name) == f.default, (f.name, shown)


def test_each_flag_sets_its_field_and_nothing_else():
    parser, default = build_parser(), TrainConfig()
    for f in FIELDS:
        value = other_value(f)
        args = parser.parse_args(argv_for(f, value))
        assert set(vars(args)) == {f.name}  # only a flag given is in args (SUPPRESS)
        cfg = config_from_args(args)
        expect = default.replace(**{f.name: value})
        assert cfg == expect, f.name
        # the report writes the same config back as a command line, the sweep parses the
        # same text to the same value
        assert config_from_args(parser.parse_args(train_argv(cfg))) == cfg, f.name
        assert grid.field_name(flag(f.name)) == grid.field_name(f.name) == f.name
        if not isinstance(value, bool):
            text = text_of(value).replace(",", "/") if typing_tuple(f) else text_of(value)
            assert grid.parse_value(f.name, text) == value, f.name


def test_the_sweep_reads_none_as_none_only_for_an_optional_field():
    assert grid.parse_value("data_dir", "none") is None
    assert grid.parse_value("center", "None") is None
    assert grid.parse_value("dataset", "none") == "none"  # a string field: the word itself


@pytest.mark.parametrize("name,text", [("batch_ramp", "0"), ("batch_ramp", "none"),
                                       ("early_stop", "off"), ("early_stop", "0")])
def test_optional_int_flags_turn_off(name, text):
    base = TrainConfig(early_stop=3)
    cfg = config_from_args(build_parser().parse_args([flag(name), text]),
                           base=base.to_dict(), base_path="ck.npz")
    assert getattr(cfg, name) is None
    assert config_from_args(build_parser().parse_args(train_argv(cfg))) == cfg


def test_given_flags_override_the_preset_and_only_those():
    cfg = config_from_args(build_parser().parse_args(["--preset", "book", "--beta2", "0.99",
                                                      "--lr", "0.5"]))
    assert cfg == config.preset("book", beta2=0.99, lr=0.5)


def test_choices_are_the_tables_that_implement_them():
    acts = actions(build_parser())
    assert {f.name for f in FIELDS if f.metadata.get("choices")} == set(TABLES)
    for name, table in TABLES.items():
        assert tuple(acts[name].choices) == tuple(table), name
        with pytest.raises(ConfigError) as exc:
            TrainConfig(**{name: "no-such-" + name})
        msg = str(exc.value)
        assert msg.startswith(flag(name)) and ", ".join(table) in msg, msg
        with pytest.raises(ConfigError, match="choose one of " + ", ".join(table)):
            grid.parse_value(name, "no-such-" + name)
    # data sets: any name goes with --data-dir, so the flag has no choices; its help and the
    # error without --data-dir list the data module's table
    assert acts["dataset"].choices is None
    assert all(n in acts["dataset"].help for n in data.DATASETS)
    with pytest.raises(ConfigError, match=", ".join(data.DATASETS)):
        TrainConfig(dataset="cifar")
    assert TrainConfig(dataset="cifar", data_dir="/tmp").dataset == "cifar"


@pytest.mark.parametrize("argv,words", [
    (["--optimizer", "rmsprop"], ["--optimizer", "rmsprop", "sgd", "adam"]),
    (["--schedule", "linear"], ["--schedule", "linear", *schedules.SCHEDULES]),
    (["--split", "random"], ["--split", *data.SPLIT_MODES]),
    (["--eps", "abc"], ["--eps", "abc"]),
    (["--beta1", "1"], ["--beta1", "[0, 1)"]),
])
def test_a_bad_value_is_a_one_line_error_with_exit_2(argv, words, capsys):
    try:
        code = run_main(main, argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and one_line(err) and err.startswith("error: "), err
    assert all(w in err for w in words), err


def test_a_field_without_metadata_still_gets_a_flag_and_is_reported():
    # A field added without its row: the command line still has it (from its type), and the
    # metadata check above names it, so it cannot slip in undocumented.
    New = dataclasses.make_dataclass(
        "New", [("augment", str, dataclasses.field(default="none")),
                ("mix", bool, dataclasses.field(default=False))],
        bases=(TrainConfig,), frozen=True)
    assert undocumented(New) == ["augment", "mix"]
    p = ArgumentParser(argument_default=argparse.SUPPRESS)
    config.add_flags(p, New)
    args = p.parse_args(["--augment", "shift:2", "--mix", "--lr", "0.5"])
    assert vars(args) == {"augment": "shift:2", "mix": True, "lr": 0.5}
    assert "(default: none)" in actions(p)["augment"].help
    assert New(**vars(args)).augment == "shift:2"
