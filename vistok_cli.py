"""The ``vistok`` command: ``vistok COMMAND [options]``.

This launcher lives outside the ``vistok`` package on purpose. Importing ``vistok`` imports torch and transformers
(it registers the tokenizer with transformers' Auto classes, which ``import vistok`` promises), and that takes
seconds; listing the commands must not. So the command table below is static data, ``vistok --help`` imports
nothing heavy, and a command's module is imported only when that command runs (or its own ``--help`` is shown).

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``; its docstring is the command's
``--help`` description, shown verbatim (examples keep their lines). ``tests/test_cli.py`` checks that the
one-line summaries here equal the first line of each module's docstring.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple


class Command(NamedTuple):
    module: str
    summary: str  # the first line of the module's docstring


COMMANDS: dict[str, Command] = {
    "list": Command(
        "vistok.commands.list_presets",
        "List the registered tokenizer presets, quantizers and nets.",
    ),
    "reconstruct": Command(
        "vistok.commands.reconstruct",
        "Tokenize and reconstruct image files with a tokenizer; print the size used, the token grid and PSNR.",
    ),
    "evaluate": Command(
        "vistok.evaluate",
        "Measure tokenizers' reconstructions on a dataset split: codebook usage, PSNR, SSIM, LPIPS and rFID.",
    ),
    "compare": Command(
        "vistok.commands.compare",
        "Compare tokenizers on the same images under one protocol: a table, an image grid and a rate-distortion plot.",
    ),
    "convert": Command(
        "vistok.commands.convert",
        "Convert an upstream checkpoint into a vistok tokenizer folder with its model card.",
    ),
    "zoo": Command(
        "vistok.commands.zoo",
        "The model zoo: list its entries, show one, or download and convert one ahead of time (for offline machines).",
    ),
    "tokenize": Command(
        "vistok.tokenize",
        "Pre-tokenize a dataset split into a 🤗 dataset of token ids (sharded, resumable, multi-process).",
    ),
    "card": Command(
        "vistok.commands.card",
        "Render model cards from the metadata stored with the weights (a model folder, or every registered "
        "preset).",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser (command list and ``--help``); imports no command module."""
    parser = argparse.ArgumentParser(
        prog="vistok",
        description="Discrete visual tokenizers.",
        epilog="Run `vistok COMMAND --help` for a command's options and examples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.summary, add_help=False)
    return parser


def build_command_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    """The parser of command ``name`` and its module (imported here). The module docstring is the description,
    printed as written (``RawDescriptionHelpFormatter``) so that example command lines stay one per line."""
    module = importlib.import_module(COMMANDS[name].module)
    parser = argparse.ArgumentParser(
        prog=f"vistok {name}",
        allow_abbrev=False,  # an option is spelled out: with aliases (--output-dir / --output) a prefix is ambiguous
        description=(module.__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    """Run ``vistok`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        build_parser().print_help()
        return 0
    if argv[0] not in COMMANDS:
        build_parser().error(f"unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}")
    parser, module = build_command_parser(argv[0])
    return int(module.run(parser.parse_args(argv[1:])) or 0)


if __name__ == "__main__":
    sys.exit(main())
