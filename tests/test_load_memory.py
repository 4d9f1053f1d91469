"""Loading costs one copy of the weights: aligned safetensors folders, memory-mapped checkpoints, converted
tokenizers built around their tensors (issue 20, item 4)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tests.helpers import tiny_tokenizer
from vistok import VisTokenizer, create_tokenizer
from vistok.aligned_weights import align_safetensors_file, misaligned_tensors, read_header
from vistok.convert import load_checkpoint
from vistok.convert.with_weights import tokenizer_with_weights


def odd_tensors() -> dict[str, torch.Tensor]:
    """Tensors whose sizes leave a plainly packed file unaligned (and one empty, one bfloat16)."""
    gen = torch.Generator().manual_seed(0)
    return {
        "a.bias": torch.randn(3, generator=gen),
        "b.weight": torch.randn(64, 48, generator=gen),
        "c.norm": torch.randn(5, generator=gen),
        "d.codebook": torch.randn(100, 16, generator=gen).to(torch.bfloat16),
        "e.empty": torch.zeros(0),
        "f.weight": torch.randn(7, 16, generator=gen),
    }


def test_align_safetensors_file_keeps_every_tensor_and_aligns_the_whole_ones(tmp_path):
    path = tmp_path / "w.safetensors"
    tensors = odd_tensors()
    save_file(tensors, str(path), metadata={"format": "pt", "note": "kept"})
    assert misaligned_tensors(path)  # safetensors' own packing
    assert align_safetensors_file(path)
    header, start = read_header(path)
    assert start % 64 == 0
    assert header["__metadata__"] == {"format": "pt", "note": "kept"}
    whole = {k for k, t in tensors.items() if (t.numel() * t.element_size()) % 64 == 0 and t.numel()}
    assert not whole & set(misaligned_tensors(path))
    reread = load_file(str(path))
    assert reread.keys() == tensors.keys()
    for key, tensor in tensors.items():
        assert reread[key].dtype == tensor.dtype and torch.equal(reread[key], tensor)
    assert not align_safetensors_file(path)  # already laid out: untouched


def test_save_pretrained_writes_aligned_weights_and_reloads_identically(tmp_path):
    tok = tiny_tokenizer("vq").eval()
    tok.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    _, start = read_header(weights)
    assert start % 64 == 0
    with safe_open(str(weights), framework="pt") as f:
        sizes = {k: f.get_slice(k).get_shape() for k in f.keys()}
    state = tok.state_dict()
    for name in misaligned_tensors(weights):  # only tensors whose size is not a multiple of 64 bytes
        assert (state[name].numel() * state[name].element_size()) % 64, (name, sizes[name])
    loaded = VisTokenizer.from_pretrained(tmp_path)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(tok(x).reconstruction, loaded(x).reconstruction)
    assert all(t.data_ptr() % 64 == 0 for t in (*loaded.parameters(), *loaded.buffers()) if t.numel())


def test_sharded_save_is_aligned_too(tmp_path):
    tok = tiny_tokenizer("vq", "vqgan").eval()
    tok.save_pretrained(tmp_path, max_shard_size="20KB")
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1
    for shard in shards:
        assert read_header(tmp_path / shard)[1] % 64 == 0
    loaded = VisTokenizer.from_pretrained(tmp_path)
    for key, value in tok.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


PEAK = textwrap.dedent(
    """
    import sys
    def hwm():
        return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
    import vistok
    before = hwm()
    tok = vistok.VisTokenizer.from_pretrained(sys.argv[1])
    loaded = hwm() - before
    total = sum(float(p.sum()) for p in tok.parameters())  # read every weight once (a forward pass would)
    print(loaded, hwm() - before)
    """
)


def test_second_load_holds_one_copy_of_the_weights(tmp_path):
    """A folder written by save_pretrained loads with the mapped file as the weights: the peak grows by at most
    about one copy even after every weight has been read (two copies before: mapped file + re-aligned clones)."""
    create_tokenizer("vqgan-taming-f16-1024").save_pretrained(tmp_path)
    size = (tmp_path / "model.safetensors").stat().st_size
    out = subprocess.run(
        [sys.executable, "-c", PEAK, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout.split()
    loaded, touched = int(out[-2]), int(out[-1])
    assert loaded < 0.5 * size, (loaded, size)
    assert touched < 1.3 * size, (touched, size)


def test_load_checkpoint_maps_zip_files_and_reads_legacy_ones(tmp_path):
    tensors = {"w": torch.randn(64, 64), "b": torch.randn(3)}
    torch.save(tensors, tmp_path / "zip.pt")
    torch.save(tensors, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    mapped = load_checkpoint(tmp_path / "zip.pt")
    read = load_checkpoint(tmp_path / "zip.pt", mmap=False)
    legacy = load_checkpoint(tmp_path / "legacy.pt")
    for loaded in (mapped, read, legacy):
        assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    mapped["w"].add_(1)  # copy-on-write: the file does not change
    assert torch.equal(load_checkpoint(tmp_path / "zip.pt")["w"], tensors["w"])


@pytest.mark.parametrize("quantizer", ["vq", "fsq", "lfq", "simvq"])
def test_converted_tokenizer_uses_the_mapped_tensors_and_rebuilds_buffers(tmp_path, quantizer):
    reference = tiny_tokenizer(quantizer).eval()
    torch.save(reference.state_dict(), tmp_path / "ckpt.pt")
    state_dict = load_checkpoint(tmp_path / "ckpt.pt")
    tok = tokenizer_with_weights(reference.config, state_dict, "test")
    assert not tok.training
    ours = dict((*tok.named_parameters(), *tok.named_buffers()))
    for name, value in (*reference.named_parameters(), *reference.named_buffers()):
        assert torch.equal(ours[name], value), name  # non-persistent buffers included
        assert ours[name].requires_grad == value.requires_grad, name
    reused = [k for k, t in state_dict.items() if t.numel() and ours[k].data_ptr() == t.data_ptr()]
    assert reused == [k for k, t in state_dict.items() if t.numel()]  # no copies of the mapped tensors


def test_converted_tokenizer_copies_what_cannot_serve_as_a_parameter():
    reference = tiny_tokenizer("vq").eval()
    state_dict = {k: v.clone() for k, v in reference.state_dict().items()}
    state_dict["quantizer.codebook"] = state_dict["quantizer.codebook"].to(torch.bfloat16)  # another dtype
    conv = next(k for k, v in state_dict.items() if v.ndim == 4)
    state_dict[conv] = state_dict[conv].transpose(0, 1).contiguous().transpose(0, 1)  # strided view
    bias = next(k for k, v in state_dict.items() if k.endswith("bias"))
    state_dict[bias] = torch.cat([torch.zeros(1), state_dict[bias]])[1:]  # part of a larger storage
    tok = tokenizer_with_weights(reference.config, state_dict, "test")
    params = dict(tok.named_parameters())
    assert params["quantizer.codebook"].dtype == torch.float32
    for key in (conv, bias, "quantizer.codebook"):
        assert params[key].is_contiguous() and params[key].data_ptr() != state_dict[key].data_ptr()
        assert params[key].untyped_storage().nbytes() == params[key].numel() * 4
        assert torch.equal(params[key], state_dict[key].float())
