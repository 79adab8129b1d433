"""The command line, in process: every command (sub-apps included) documents itself and each of its options."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
import typer.main
from typer.testing import CliRunner

import stages
from stages import cli

PROG = "poster-genres"
# rich draws its panels with box-drawing characters
_BOX = re.compile(r"[\u2500-\u257f]")


def _flat(text: str) -> str:
    """Text with the panels' borders removed and every run of whitespace made one space."""
    return " ".join(_BOX.sub(" ", text).split())


def _shown(output: str) -> str:
    """The help as printed, without the padding of the wide terminal (for assertion messages)."""
    return "\n".join(line.rstrip() for line in output.splitlines())


def _word(name: str) -> str:
    """A regex for ``name`` as a whole word of the help (``--params`` but not ``--params-file``)."""
    return rf"(?<![\w-]){re.escape(name)}(?![\w-])"


def _commands(command, path=()):
    """(path, click command) for the app and every command and sub-app under it, depth first."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(typer.main.get_command(cli.app)))


def test_every_command_is_registered():
    """The stages DVC runs, the comparison commands, predict and the feature-store sub-app are all on the app."""
    paths = {" ".join(p) for p in COMMANDS}
    assert {"scrape", "ingest", "ocr", "embed-image", "embed-text", "split", "train", "evaluate", "compare",
            "report", "predict", "compare-two", "features", "features show", "features cache",
            "features text"} <= paths
    # and every stage module (one with a main, the function DVC runs) is a command of the app
    registered = {c.callback for c in cli.app.registered_commands}
    modules = {name: importlib.import_module(f"stages.{name}") for _, name, _ in pkgutil.iter_modules(stages.__path__)}
    mains = {name: module.main for name, module in modules.items() if hasattr(module, "main")}
    assert {"scrape", "ingest", "ocr", "embed_image", "embed_text", "split", "train", "evaluate", "compare",
            "report"} <= set(mains)
    assert [name for name, main in mains.items() if main not in registered] == []


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "(app)")
def test_help_documents_the_command_and_its_options(path):
    """``--help`` exits 0 and shows the command's description and every option and argument with its help."""
    command = COMMANDS[path]
    # wide enough that no cell of rich's tables wraps (a wrapped cell interleaves with its neighbours)
    result = CliRunner().invoke(cli.app, [*path, "--help"], prog_name=PROG, env={"COLUMNS": "1000"})
    printed = _shown(result.output)
    assert result.exit_code == 0, printed
    shown = _flat(result.output)
    assert f"Usage: {' '.join([PROG, *path])} " in shown, printed
    summary = (command.help or "").strip().split("\n")[0]
    assert summary.strip(), f"{path}: no description (docstring or help=)"
    assert _flat(summary) in shown, printed
    for param in command.params:
        assert not getattr(param, "hidden", False), f"{path}: {param.name} is hidden"
        assert (param.help or "").strip(), f"{path}: {param.name} has no help"
        names = param.opts + param.secondary_opts if param.param_type_name == "option" else [param.name]
        for name in names:
            assert re.search(_word(name), shown), (name, printed)
        assert _flat(param.help) in shown, (param.name, printed)
    for name, sub in getattr(command, "commands", {}).items():  # a group lists its commands, each described
        described = _flat((sub.help or "").strip().split("\n")[0])
        assert re.search(f"{_word(name)} {re.escape(described)}", shown), (name, printed)
