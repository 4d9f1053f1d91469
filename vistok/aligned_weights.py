"""safetensors files whose tensors start on 64-byte boundaries, so a memory-mapped load needs no copy.

transformers 5 loads a ``.safetensors`` file memory-mapped: each parameter is a view into the mapping at
``8 + header length + the tensor's offset``. The mapping starts on a page, but safetensors' writer packs tensors
right after a header of arbitrary length, so their addresses are arbitrary, and BLAS takes other (numerically
different) kernels for data that is not 64-byte aligned. :func:`align_safetensors_file` rewrites a file so that the
data section starts on a 64-byte boundary (the header is padded with spaces, which the format allows) and puts
every tensor whose size is a multiple of 64 bytes first — each of those then starts on a boundary too. The others
(biases and norms of a few channels) follow, largest first; they are the only ones a load still has to copy.

The result is an ordinary safetensors file (the format asks only that tensors tile the data section, in any
order): the same names, dtypes, shapes, bytes and metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

ALIGNMENT = 64
_COPY_CHUNK = 1 << 24


def read_header(path: str | os.PathLike) -> tuple[dict, int]:
    """The JSON header of the safetensors file ``path`` and the byte offset where its data section starts."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    return header, 8 + size


def misaligned_tensors(path: str | os.PathLike, alignment: int = ALIGNMENT) -> list[str]:
    """Names of the tensors of ``path`` that do not start on an ``alignment``-byte boundary of the file (and so of
    a page-aligned mapping of it); empty tensors are not counted."""
    header, start = read_header(path)
    return [
        name
        for name, info in header.items()
        if name != "__metadata__"
        and info["data_offsets"][1] > info["data_offsets"][0]
        and (start + info["data_offsets"][0]) % alignment
    ]


def align_safetensors_file(path: str | os.PathLike, alignment: int = ALIGNMENT) -> bool:
    """Rewrite the safetensors file ``path`` in place (a temporary file beside it, then an atomic rename) so that
    the data section and every tensor whose byte size is a multiple of ``alignment`` start on an
    ``alignment``-byte boundary. Tensor bytes are streamed, never all held in memory. Returns False, leaving the
    file untouched, when nothing would change (a file already written this way)."""
    path = Path(path)
    header, start = read_header(path)
    metadata = header.pop("__metadata__", None)
    ranges = {name: tuple(info["data_offsets"]) for name, info in header.items()}
    sizes = {name: end - begin for name, (begin, end) in ranges.items()}
    in_file = sorted(header, key=lambda name: ranges[name])
    whole = [name for name in in_file if sizes[name] % alignment == 0]
    rest = sorted((name for name in in_file if sizes[name] % alignment), key=lambda name: -sizes[name])
    order = whole + rest

    new_header: dict = {} if metadata is None else {"__metadata__": metadata}
    offset = 0
    for name in order:
        new_header[name] = {**header[name], "data_offsets": [offset, offset + sizes[name]]}
        offset += sizes[name]
    text = json.dumps(new_header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % alignment)
    if order == in_file and start == 8 + len(text) and start % alignment == 0:
        return False

    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out, path.open("rb") as src:
            out.write(len(text).to_bytes(8, "little"))
            out.write(text)
            for name in order:
                begin, end = ranges[name]
                src.seek(start + begin)
                remaining = end - begin
                while remaining:
                    block = src.read(min(remaining, _COPY_CHUNK))
                    if not block:
                        raise OSError(f"{path} ends inside tensor {name!r}")
                    out.write(block)
                    remaining -= len(block)
        os.chmod(tmp_name, path.stat().st_mode & 0o777)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return True
