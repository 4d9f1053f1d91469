"""The `vistok` command line: a fast top-level help, verbatim command descriptions, and `vistok reconstruct`."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import vistok_cli
from vistok.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_top_level_help_imports_no_heavy_module():
    """`vistok --help` must not import torch / transformers / vistok (seconds each). Checked in a fresh process
    through the console script's entry point as pyproject.toml declares it, by what is in sys.modules afterwards
    (not by a wall-clock time, which a loaded machine would make flaky)."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["vistok"].split(":")
    code = (
        "import contextlib, importlib, io, json, sys\n"
        f"entry = getattr(importlib.import_module({module!r}), {function!r})\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    status = entry(['--help'])\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'vistok', 'numpy', 'PIL') if m in sys.modules)\n"
        "print(json.dumps({'status': status, 'heavy': heavy, 'help': out.getvalue()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(done.stdout)
    assert report["status"] == 0
    assert report["heavy"] == []
    for name in vistok_cli.COMMANDS:
        assert name in report["help"]


@pytest.mark.parametrize("name", list(vistok_cli.COMMANDS))
def test_command_summary_is_the_module_docstring_first_line(name):
    command = vistok_cli.COMMANDS[name]
    doc = importlib.import_module(command.module).__doc__
    assert command.summary == doc.strip().splitlines()[0]


@pytest.mark.parametrize("name", list(vistok_cli.COMMANDS))
def test_command_help_keeps_the_docstring_lines(name, capsys):
    """Every line of the command's docstring (examples included) is a line of its --help, not reflowed."""
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    help_lines = {line.rstrip() for line in capsys.readouterr().out.splitlines()}
    doc = importlib.import_module(vistok_cli.COMMANDS[name].module).__doc__.strip()
    for line in doc.splitlines():
        assert line.rstrip() in help_lines


def test_evaluate_help_prints_one_example_per_line(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    examples = [line for line in out.splitlines() if line.lstrip().startswith("vistok evaluate --model")]
    assert len(examples) == 2
    assert all(line.count("vistok evaluate") == 1 for line in examples)


def test_unknown_command_is_an_error_naming_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["reconstrct"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown command 'reconstrct'" in err and "reconstruct" in err


def test_no_arguments_prints_the_command_list(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in vistok_cli.COMMANDS:
        assert name in out
