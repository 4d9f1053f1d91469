"""vistok.entropy: the perplexity helper and the memory-bounded entropy regulariser, against direct formulas."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.stats
import torch

from vistok.entropy import ENTROPY_CHUNK_BYTES, code_perplexity, entropy_terms

MIB = 2**20


def direct_entropy_terms(x, codes, scale, bias):
    """The unchunked formula on the full (N, K) logits, differentiated by autograd (the reference)."""
    logits = scale * x @ codes.t() + bias
    logits = torch.maximum(logits, logits.detach().amax(-1, keepdim=True) - 60.0)
    p = logits.softmax(-1)
    mean = p.mean(0)
    return -(p * p.log()).sum(-1).mean(), -(mean * mean.log()).sum()


@pytest.mark.parametrize("scale", [0.5, 4.0, 40.0])
@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_entropy_terms_value_and_gradient_equal_the_direct_formula(scale, chunk_rows):
    g = torch.Generator().manual_seed(int(scale * 10) + chunk_rows)
    x = torch.randn(53, 6, generator=g, dtype=torch.float64).requires_grad_()
    codes = torch.randn(19, 6, generator=g, dtype=torch.float64).requires_grad_()
    bias = torch.randn(19, generator=g, dtype=torch.float64).requires_grad_()
    weights = (0.7, -1.3)  # independent upstream gradients for the two terms
    sample, codebook = entropy_terms(x, codes, scale, bias, max_chunk_bytes=4 * 19 * chunk_rows)
    grads = torch.autograd.grad(weights[0] * sample + weights[1] * codebook, (x, codes, bias))
    ref_sample, ref_codebook = direct_entropy_terms(x, codes, scale, bias)
    ref_grads = torch.autograd.grad(weights[0] * ref_sample + weights[1] * ref_codebook, (x, codes, bias))
    torch.testing.assert_close(sample.double(), ref_sample, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(codebook.double(), ref_codebook, rtol=1e-5, atol=1e-6)
    for grad, ref in zip(grads, ref_grads, strict=True):
        assert grad.dtype == torch.float64
        torch.testing.assert_close(grad, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


def test_entropy_terms_of_uniform_and_one_hot_distributions():
    # Equal logits: every row uniform over K codes → both entropies log K.
    sample, codebook = entropy_terms(torch.zeros(10, 3), torch.zeros(8, 3), scale=1.0)
    assert sample.item() == pytest.approx(math.log(8)) and codebook.item() == pytest.approx(math.log(8))
    # Row i puts all its mass on code i (logit gap 100): per-sample entropy 0, mean uniform over 4 codes.
    sample, codebook = entropy_terms(torch.eye(4), torch.eye(4), scale=100.0)
    assert sample.item() == pytest.approx(0.0, abs=1e-12) and codebook.item() == pytest.approx(math.log(4))


def test_entropy_terms_floor_negligible_logits_without_subnormal_gradients():
    logits = torch.tensor([[0.0, -200.0, -50.0], [3.0, 3.0, -1e4]], requires_grad=True)
    sample, codebook = entropy_terms(logits, torch.eye(3), scale=1.0)
    (sample - codebook).backward()
    p = logits.detach().clamp_min(logits.detach().amax(-1, keepdim=True) - 60).softmax(-1)
    torch.testing.assert_close(sample, -(p * p.log()).sum(-1).mean())
    grad = logits.grad.abs()
    assert not ((grad > 0) & (grad < torch.finfo(torch.float32).tiny)).any()
    assert grad[1, 2] == 0  # a floored logit gets no gradient


def test_entropy_terms_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"x \(N, D\) and codes \(K, D\)"):
        entropy_terms(torch.zeros(4, 3), torch.zeros(5, 2), scale=1.0)
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        entropy_terms(torch.zeros(4, 3), torch.zeros(5, 3), scale=1.0, bias=torch.zeros(4))


# The size of the example: a 64 MiB float32 logit matrix.
N_ROWS, N_CODES, DIM = 16_384, 1_024, 8


def test_only_inputs_and_the_mean_distribution_are_saved_for_backward():
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    x = torch.randn(N_ROWS, DIM, requires_grad=True)
    codes = torch.randn(N_CODES, DIM, requires_grad=True)
    bias = torch.randn(N_CODES, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        entropy_terms(x, codes, 2.0, bias)
    # x, codes, bias and the (K,) mean distribution: 0.54 MiB, against 320 MiB for the direct formula.
    assert sum(saved) == 4 * (N_ROWS * DIM + N_CODES * DIM + N_CODES + N_CODES)
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        direct_entropy_terms(x, codes, 2.0, bias)
    assert sum(saved) > 4 * N_ROWS * N_CODES * 4  # the direct formula keeps several full logit matrices


PEAK_SCRIPT = textwrap.dedent(
    """
    import gc, json, re, sys
    import torch
    from vistok.entropy import entropy_terms
    from vistok.quantizers import LookupFreeQuantizer, VectorQuantizer

    N_ROWS, N_CODES, DIM = {sizes}

    def status(key):
        return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

    def direct(x, codes, scale, bias):  # as direct_entropy_terms in the test file
        logits = scale * x @ codes.t() + bias
        logits = torch.maximum(logits, logits.detach().amax(-1, keepdim=True) - 60.0)
        p = logits.softmax(-1)
        mean = p.mean(0)
        return -(p * p.log()).sum(-1).mean(), -(mean * mean.log()).sum()

    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_ROWS, DIM, generator=g, requires_grad=True)
    codes = torch.randn(N_CODES, DIM, generator=g, requires_grad=True)
    bias = torch.randn(N_CODES, generator=g, requires_grad=True)
    lfq = LookupFreeQuantizer(codebook_dim=10, entropy_temperature=0.5).train()  # 1,024 codes
    z = torch.randn(16, 10, 32, 32, generator=g, requires_grad=True)  # N = 16,384 latents
    vq = VectorQuantizer(codebook_size=N_CODES, codebook_dim=DIM, entropy_weight=1.0).train()
    cases = {{
        "direct": lambda: sum(direct(x, codes, 2.0, bias)),
        "chunked": lambda: sum(entropy_terms(x, codes, 2.0, bias)),
        "vq": lambda: vq._entropy_loss(x, vq.codebook),
        "lfq": lambda: lfq(z).losses["entropy_loss"],
    }}
    peaks = {{}}
    for name, loss in cases.items():
        loss().backward()  # warm-up
        gc.collect()
        before = status("VmRSS")
        open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
        loss().backward()
        peaks[name] = (status("VmHWM") - before) / 2**20
        gc.collect()
    print(json.dumps(peaks))
    """
)


def peak_mib() -> dict[str, float]:
    """Peak resident memory (MiB) of one forward + backward of each case, over what was resident before.

    Run in a fresh process where glibc serves every block above 64 KiB by mmap, so freed blocks leave the
    resident set at once and the high-water mark measures what was alive together.
    """
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    script = PEAK_SCRIPT.format(sizes=(N_ROWS, N_CODES, DIM))
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux /proc/self/clear_refs to reset VmHWM"
)
def test_entropy_regulariser_peak_memory_is_bounded():
    logits_mib = 4 * N_ROWS * N_CODES / MIB  # 64 MiB
    chunk_mib = ENTROPY_CHUNK_BYTES / MIB  # 8 MiB
    peaks = peak_mib()
    # The measurement sees the direct formula's full logit matrices ...
    assert peaks["direct"] > 4 * logits_mib, peaks
    # ... and the chunked one stays within four chunks, also as VQ's and LFQ's entropy losses call it.
    for which in ("chunked", "vq", "lfq"):
        assert peaks[which] < 4 * chunk_mib, peaks


@pytest.mark.parametrize("counts", [[5, 0, 3, 1], [1], [0, 7, 0], [2, 2, 2, 2]])
def test_code_perplexity_is_exp_of_the_histogram_entropy(counts):
    expected = math.exp(scipy.stats.entropy(np.array(counts, dtype=float)))
    assert code_perplexity(torch.tensor(counts)).item() == pytest.approx(expected, rel=1e-12)
    used_only = torch.tensor([c for c in counts if c])
    assert code_perplexity(used_only).item() == pytest.approx(expected, rel=1e-12)
    assert code_perplexity(torch.tensor(counts), dtype=torch.float32).dtype == torch.float32


def test_code_perplexity_of_an_empty_histogram_is_one():
    assert code_perplexity(torch.zeros(4, dtype=torch.int64)).item() == 1.0
