"""The ``vistok`` command. Each subcommand lives in its own module exposing
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when their command runs."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, str] = {
    "list": "vistok.commands.list_presets",
    "reconstruct": "vistok.commands.reconstruct",
    "evaluate": "vistok.evaluate",
    "convert": "vistok.commands.convert",
    "card": "vistok.commands.card",
}


def _describe(module_path: str) -> str:
    try:
        doc = importlib.import_module(module_path).__doc__ or ""
    except ImportError as err:  # an optional extra is missing: still list the command
        return f"(unavailable: {err})"
    return doc.strip().splitlines()[0] if doc.strip() else ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vistok", description="Discrete visual tokenizers.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_path in COMMANDS.items():
        sub.add_parser(name, help=_describe(module_path), add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = build_parser()
        if argv and argv[0] not in ("-h", "--help"):
            parser.error(f"unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}")
        parser.print_help()
        return 0
    module = importlib.import_module(COMMANDS[argv[0]])
    sub = argparse.ArgumentParser(prog=f"vistok {argv[0]}", description=(module.__doc__ or "").strip())
    module.add_arguments(sub)
    return int(module.run(sub.parse_args(argv[1:])) or 0)


if __name__ == "__main__":
    sys.exit(main())
