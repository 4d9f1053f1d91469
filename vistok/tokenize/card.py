"""The dataset card (README.md) of a token dataset, rendered from its manifest."""

from __future__ import annotations

import json
from typing import Any


def _yaml_list(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def render_dataset_card(manifest: dict[str, Any]) -> str:
    """Markdown with Hub front matter: what was tokenized, by which tokenizer (name, weights sha256, revision,
    config), with which preprocessing, how rows are laid out and how to turn them back into images."""
    tok, data, pre, counts = manifest["tokenizer"], manifest["dataset"], manifest["preprocessing"], manifest["counts"]
    split = "all (no splits)" if data["split"] is None else data["split"]
    asked = data.get("split_requested")
    split_note = f"split `{split}`" + (f" (asked for `{asked}`; the dataset has no such split)" if asked not in (None, data["split"]) else "")
    asked_samples = data.get("num_samples")
    samples_note = (f", first {asked_samples:,} images" if asked_samples and asked_samples <= counts["num_positions"]
                    else f", first {asked_samples:,} images asked (the split has fewer)" if asked_samples else "")
    layout = manifest["token_layout"]
    model_ids = manifest.get("model_ids")
    tags = ["vistok", "image-tokens", f"net-{tok['net']}", f"quantizer-{tok['quantizer']}"]
    source_columns = [c for c in data["columns"] if c != "index"]
    columns = ", ".join(f"`{c}`" for c in source_columns) or "none"
    variants = ", ".join(f"{v['crop']}{' + mirrored' if v['flip'] else ''}" for v in pre["variants"])
    lines = [
        "---",
        "tags:",
        _yaml_list(tags),
        "configs:",
        "- config_name: default",
        "  data_files: shards/*.arrow",
        "---",
        "",
        f"# Tokens of {data['name']} [{split}] by {tok['name']}",
        "",
        f"{counts['num_rows']:,} rows: {counts['num_images']:,} images × {len(pre['variants'])} variant(s) "
        f"({variants}), each a {manifest['token_layout_description']} of "
        + (f"{model_ids.get('model', 'the multimodal model')}'s vocabulary ids of codes from a " if model_ids
           else "token ids from a ")
        + f"codebook of {tok['codebook_size']:,}, written by `vistok tokenize` (vistok {manifest['vistok_version']}). "
        f"{counts['num_skipped']:,} unreadable image(s) were skipped.",
        "",
        "## Load and decode",
        "",
        "```python",
        "import torch, vistok",
        "from datasets import load_from_disk",
        "from vistok.tokenize import read_layout, rows_to_indices",
        "",
        "ds = load_from_disk(\"<this folder>\")",
        f"tok = vistok.VisTokenizer.from_pretrained({tok['name']!r}).eval()",
        *(["ids = rows_to_indices(ds[0:8][\"indices\"], read_layout(\"<this folder>\"))  # the model's vocabulary ids",
           "indices = tok.from_model_ids(ids)  # as tok.encode(x).indices"] if model_ids else
          ["indices = rows_to_indices(ds[0:8][\"indices\"], read_layout(\"<this folder>\"))  # as tok.encode(x).indices"]),
        "with torch.no_grad():",
        "    images = tok.decode(indices)  # (8, 3, H, W) in [-1, 1]",
        "```",
        "",
        "The shards are plain Arrow files: `datasets.load_dataset(\"arrow\", data_files=\"<this folder>/shards/*.arrow\")`, "
        "or `load_dataset(<repo>)` from the Hub (front matter above), gives the same rows.",
        "",
        "## Columns",
        "",
        "- `index`: the image's position in the source split (after `num_samples`); rows are sorted by it.",
        f"- source columns: {columns}" + (" (`file_name` relative to the dataset folder)" if "file_name" in source_columns else "") + ".",
        "- `crop`: `full` (the whole preprocessed image) or, with ten-crop, `top_left` / `top_right` / `bottom_left` / "
        "`bottom_right` / `center`.",
        "- `flip`: whether the image was mirrored left-right before tokenizing.",
        f"- `indices`: {manifest['tokens_per_image']} × `{manifest['token_dtype']}` (the smallest integer type holding "
        f"the {'ids' if model_ids else 'codebook'}), in the layout's reading order: "
        f"{manifest['conventions']['reading_order']}"
        + (f". **Not codebook indices: the multimodal model's vocabulary ids** ({model_ids.get('source', 'see the manifest')}; "
           f"ids {model_ids['id_range'][0]}..{model_ids['id_range'][1]}); `tok.from_model_ids` gives the indices back"
           if model_ids else ""),
        "",
        "## Tokenizer",
        "",
        f"- name: `{tok['name']}`; weights sha256: `{tok['weights_sha256']}`"
        + (f"; config sha256: `{tok['config_sha256']}`" if tok.get("config_sha256") else "")
        + (f"; Hub revision: `{tok['revision']}`" if tok.get("revision") else ""),
        f"- net `{tok['net']}`, quantizer `{tok['quantizer']}`, preset `{tok.get('preset')}`, downsample factor "
        f"{tok['downsample_factor']}, native image size {tok['native_image_size']}",
        f"- token layout: `{json.dumps(layout)}`",
        f"- inference: {manifest['inference']['dtype']}" + (" with torch.compile" if manifest["inference"]["compile"] else ""),
        "",
        "<details><summary>config</summary>",
        "",
        "```json",
        json.dumps(tok["config"], indent=2, sort_keys=True, default=str),
        "```",
        "",
        "</details>",
        "",
        "## Preprocessing",
        "",
        f"- dataset `{data['name']}`, {split_note}{samples_note}; {counts['num_positions']:,} images read",
        f"- resolution {pre['image_size']} px; crop: {pre['crop']}",
        f"- flips: {pre['flip']}; ten-crop: {'yes, from ' + str(pre['source_size']) + ' px' if pre['ten_crop'] else 'no'}",
        f"- pixels: {manifest['conventions']['pixels']}",
        "",
    ]
    return "\n".join(lines)
