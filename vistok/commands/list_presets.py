"""List the registered tokenizer presets, quantizers and nets."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    import json

    from .. import NETS, QUANTIZERS, list_tokenizers
    from ..hub import list_bundled

    presets = list_tokenizers()
    if args.json:
        print(json.dumps({"presets": presets, "quantizers": QUANTIZERS.names(), "nets": NETS.names(),
                          "bundled": list_bundled()}, indent=2))
        return 0
    width = max(map(len, presets))
    for name, description in presets.items():
        print(f"{name:<{width}}  {description}")
    print(f"\nquantizers: {', '.join(QUANTIZERS.names())}\nnets: {', '.join(NETS.names())}")
    print(f"bundled (load with from_pretrained): {', '.join(list_bundled()) or 'none'}")
    return 0
