"""Pre-tokenize a dataset split into a 🤗 dataset of token ids (sharded, resumable, multi-process).

    vistok tokenize --model vistok/default --dataset samples --output-dir tokens/samples
    vistok tokenize --model <zoo entry> --dataset ./my_images --split train --output-dir tokens/mine --flip both
    accelerate launch -m vistok.tokenize --model <zoo entry> --dataset imagenet256 --split train \\
        --output-dir tokens/in256-train --flip both --batch-size 128 --num-workers 8 --dtype bf16 --compile
    torchrun --nproc_per_node 2 -m vistok.tokenize --device cpu ...      # several processes on CPU (gloo)
    vistok tokenize --verify tokens/samples      # every shard against its recorded sha256, and that it loads

Images get the dataset's evaluation crop at the tokenizer's resolution (or --image-size), as `vistok evaluate`
prepares them; corrupt images are skipped and counted. Each row holds the source position (`index`), the split's
label / id / file-name columns, the variant (`crop`, `flip`) and the token ids (`indices`) in the smallest integer
type of the codebook, flattened in the layout's reading order. Load and decode:

    ds = datasets.load_from_disk("tokens/samples")
    indices = vistok.tokenize.rows_to_indices(ds[0:8]["indices"], vistok.tokenize.read_layout("tokens/samples"))
    images = tok.decode(indices)                   # exactly tok.decode(tok.encode(x).indices)

The split is cut into shards of --shard-size images; processes take shards in turn and write each atomically, so
--resume after a crash redoes only unfinished (or damaged) shards and any number of processes writes the same
dataset. A run holds the folder (a file lock): a second run into it is refused. --resume continues only a run of the
same tokenizer (weights and config), settings and split content. The folder's dataset card and vistok_tokens.json
record the tokenizer (name, weights and config sha256, revision, config), the preprocessing and the conventions. An
existing output is never replaced without --overwrite. Loading never re-hashes the shards; --verify does, names a
damaged shard and prints the --resume command that redoes it. Ctrl-C keeps the finished shards and prints that
command too.
"""

from __future__ import annotations

from .api import load_tokenizer, push_dataset_to_hub, tokenize_dataset
from .command import add_arguments, main, run
from .rows import read_layout, read_manifest, rows_to_indices, token_storage_dtype
from .store import OutputError

__all__ = [
    "OutputError",
    "add_arguments",
    "load_tokenizer",
    "main",
    "push_dataset_to_hub",
    "read_layout",
    "read_manifest",
    "rows_to_indices",
    "run",
    "token_storage_dtype",
    "tokenize_dataset",
]
