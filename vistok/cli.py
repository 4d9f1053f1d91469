"""The ``vistok`` command, importable from the package (``from vistok.cli import main``; ``python -m vistok.cli``).

The implementation is the top-level module ``vistok_cli`` (the console script's entry point), kept outside this
package so that ``vistok --help`` does not import torch and transformers; see its docstring.
"""

from __future__ import annotations

import sys

from vistok_cli import COMMANDS, build_command_parser, build_parser, main

__all__ = ["COMMANDS", "build_command_parser", "build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
