"""The command line's parsers: complete help, every default shown once and taken from its one home
(the config dataclasses, PrepareSettings, the arrangement), and flags read into their fields' types."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from inspire.audio.dataset import PrepareSettings
from inspire.cli import build_parser
from inspire.cli.flags import as_text
from inspire.compose.arrangement import Arrangement
from inspire.config import GENERATE, PRESETS, ModelConfig, TrainConfig, help_of, parse_field
from inspire.errors import ConfigError


def _commands() -> dict[str, argparse.ArgumentParser]:
    return next(a for a in build_parser()._actions if a.dest == "command").choices


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each flag's help as printed (argparse's own expansion of %(default)s and the like)."""
    formatter = parser._get_formatter()
    return {a.option_strings[-1] if a.option_strings else a.dest: formatter._expand_help(a)
            for a in parser._actions if a.help and a.dest != "help"}


def test_every_subcommand_has_complete_help():
    for name, p in _commands().items():
        for action in p._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize("command", ["prepare", "demo", "train", "generate", "curate", "lineage", "compose"])
def test_every_default_is_shown_once(command):
    p = _commands()[command]
    helps = _helps(p)
    for action in p._actions:
        if not action.help or action.dest == "help":
            continue
        text = helps[action.option_strings[-1] if action.option_strings else action.dest]
        assert text.count("(default") <= 1 and "(default: None)" not in text, text
        if action.default not in (None, False, []) and action.default is not argparse.SUPPRESS:
            assert f"(default: {action.default})" in text, text


def test_prepare_defaults_and_help_come_from_prepare_settings():
    p = _commands()["prepare"]
    args = p.parse_args(["album", "--run", "run"])
    helps = _helps(p)
    for f in fields(PrepareSettings):
        assert getattr(args, f.name) == f.default
        assert helps["--" + f.name.replace("_", "-")].startswith(help_of(PrepareSettings, f.name))
    assert PrepareSettings(**{f.name: getattr(args, f.name) for f in fields(PrepareSettings)}) == PrepareSettings()


def test_generate_defaults_come_from_config():
    p = _commands()["generate"]
    args = p.parse_args(["RUN"])
    assert (args.n, args.checkpoint, args.seed, args.prime_seconds) == (
        GENERATE.clips, GENERATE.checkpoint, GENERATE.seed, GENERATE.prime_seconds)
    assert args.seconds is None and args.temperatures is None  # run: GENERATE's (or, with --again, the clip's)
    helps = _helps(p)
    assert f"(default: {GENERATE.seconds:g};" in helps["--seconds"]
    assert f"(default: {GENERATE.cpu_batch} on a CPU, {GENERATE.gpu_batch} on a GPU" in helps["--batch-size"]
    assert p.parse_args(["RUN", "-t", "0.9", "--temperature", "1:2"]).temperatures == ["0.9", "1:2"]  # a sweep


def test_compose_help_shows_the_arrangements_defaults():
    helps = _helps(_commands()["compose"])
    defaults = {f.name: f.default for f in fields(Arrangement)}
    assert f"{defaults['lufs']:g})" in helps["--lufs"] and f"{defaults['true_peak']:g})" in helps["--true-peak"]
    assert f"{defaults['noise_reduction']} for --auto" in helps["--noise-reduction"]


def test_train_help_shows_each_presets_value():
    helps = _helps(_commands()["train"])
    assert helps["--dim"] == ("RNN and MLP width "
                              "(tiny: 128, small: 512, live: 256, standard: 1024, gpu: 1024, music: 1024)")
    assert helps["--grad-clip"].endswith("(all presets: 1.0)")
    assert "--levels" not in helps  # set from the prepared data


def test_every_preset_value_reads_back_from_its_command_line_form():
    for preset in PRESETS.values():
        for cfg in (preset.model, preset.train):
            for f in fields(cfg):
                value = getattr(cfg, f.name)
                assert parse_field(type(cfg), f.name, as_text(value)) == value, (preset.name, f.name)


@pytest.mark.parametrize("cls, name, text, words", [
    (ModelConfig, "dim", "abc", "dim: cannot read 'abc' as int"),
    (ModelConfig, "frame_sizes", "16,x", "frame_sizes: cannot read '16,x' as comma-separated ints"),
    (ModelConfig, "weight_norm", "maybe", "weight_norm: cannot read 'maybe' as bool"),
    (TrainConfig, "preview_temperatures", "hot", "cannot read 'hot' as comma-separated floats"),
    (TrainConfig, "width", "3", "unknown field 'width' for TrainConfig"),
])
def test_bad_field_text_is_a_one_line_config_error(cls, name, text, words):
    with pytest.raises(ConfigError) as e:
        parse_field(cls, name, text)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_bool_fields_read_the_usual_words():
    assert [parse_field(ModelConfig, "weight_norm", w) for w in ("true", "On", "1", "no", "FALSE", "off")] == [
        True, True, True, False, False, False]
