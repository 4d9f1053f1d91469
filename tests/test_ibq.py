"""The ``ibq`` quantizer: dot-product argmax lookup, index backpropagation, IBQ's losses, bounded memory."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vistok import VisTokenizerConfig
from vistok.quantizers import IndexBackpropQuantizer, VectorQuantizer


def _grid(flat: torch.Tensor) -> torch.Tensor:
    """(N, D) rows → (1, D, 1, N) latent grid, so row i is position i."""
    return flat.t().unsqueeze(0).unsqueeze(2).contiguous()


def _flat(grid: torch.Tensor) -> torch.Tensor:
    return grid.permute(0, 2, 3, 1).reshape(-1, grid.shape[1])


def _ibq(codebook: torch.Tensor, **options) -> IndexBackpropQuantizer:
    quantizer = IndexBackpropQuantizer(codebook_size=codebook.shape[0], codebook_dim=codebook.shape[1], **options)
    with torch.no_grad():
        quantizer.codebook.copy_(codebook)
    return quantizer


def _upstream_quant_loss(z, codebook, beta):
    """IBQ's IndexPropagationQuantize (SEED-Voken) written out for rows z (N, D): codes and quant_loss."""
    soft = torch.softmax(z @ codebook.t(), dim=-1)
    hard = F.one_hot(soft.argmax(-1), codebook.shape[0]).to(z.dtype)
    z_q = (hard - soft.detach() + soft) @ codebook
    z_q2 = hard @ codebook
    loss = ((z_q - z) ** 2).mean() + ((z_q2.detach() - z) ** 2).mean() + beta * ((z_q2 - z.detach()) ** 2).mean()
    return z_q, loss


def _entropies(z, codebook, tau):
    """Exact per-sample and batch-mean entropies of softmax(⟨z, e⟩ / τ)."""
    p = torch.softmax(z @ codebook.t() / tau, dim=-1)
    sample = -(p * p.log()).sum(-1).mean()
    mean = p.mean(0)
    return sample, -(mean * mean.log()).sum()


def test_the_code_is_the_largest_dot_product_not_the_nearest_code():
    codebook = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, -2.0]])
    rows = torch.tensor([[1.0, 0.0], [0.2, -1.0], [-1.0, 0.1]])
    # dot products: row 0 → (1, 3, 0); row 1 → (0.2, 0.6, 2); row 2 → (−1, −3, −0.2)
    expected_dot = torch.tensor([1, 2, 2])
    expected_l2 = torch.cdist(rows, codebook).argmin(-1)
    assert expected_l2.tolist() == [0, 2, 0]  # Euclidean disagrees at rows 0 and 2
    out = _ibq(codebook).eval()(_grid(rows))
    assert out.indices.flatten().tolist() == expected_dot.tolist()
    assert torch.equal(_flat(out.quantized), codebook[expected_dot])


def test_index_backprop_gradient_reaches_every_code_and_vq_only_the_used_ones():
    g = torch.Generator().manual_seed(0)
    codebook = torch.randn(16, 4, generator=g) * 0.3
    rows = torch.randn(6, 4, generator=g)
    weights = torch.randn(1, 4, 1, 6, generator=g)
    for quantizer in (_ibq(codebook), VectorQuantizer(codebook_size=16, codebook_dim=4)):
        if isinstance(quantizer, VectorQuantizer):
            with torch.no_grad():
                quantizer.codebook.copy_(codebook)
        out = quantizer.train()(_grid(rows))
        (sum(out.losses.values()) + (out.quantized * weights).sum()).backward()
        rows_with_gradient = set(quantizer.codebook.grad.abs().sum(-1).nonzero().flatten().tolist())
        used = set(out.indices.flatten().tolist())
        assert len(used) < 16
        if isinstance(quantizer, IndexBackpropQuantizer):
            assert rows_with_gradient == set(range(16))
        else:
            assert rows_with_gradient == used


@pytest.mark.parametrize("beta", [0.25, 0.6])
def test_losses_and_gradients_equal_upstreams_formula(beta):
    g = torch.Generator().manual_seed(1)
    codebook = torch.randn(12, 5, generator=g) * 0.5
    rows = torch.randn(9, 5, generator=g)
    weights = torch.randn(9, 5, generator=g)

    quantizer = _ibq(codebook, codebook_weight=beta, entropy_weight=0.0).train()
    grid = _grid(rows).requires_grad_(True)
    out = quantizer(grid)
    assert set(out.losses) == {"index_backprop_loss", "commitment_loss", "codebook_loss"}
    total = sum(out.losses.values())
    (total + (_flat(out.quantized) * weights).sum()).backward()

    z = rows.clone().requires_grad_(True)
    e = codebook.clone().requires_grad_(True)
    z_q, reference = _upstream_quant_loss(z, e, beta)
    (reference + (z_q * weights).sum()).backward()

    torch.testing.assert_close(total, reference, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(_flat(grid.grad), z.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(quantizer.codebook.grad, e.grad, rtol=1e-5, atol=1e-6)
    # The value is the hard code exactly, whatever the gradient path.
    assert torch.equal(_flat(out.quantized.detach()), codebook[out.indices.flatten()])


def test_entropy_loss_is_the_weighted_difference_of_the_two_entropies():
    g = torch.Generator().manual_seed(2)
    codebook = torch.randn(10, 3, generator=g)
    rows = torch.randn(14, 3, generator=g)
    tau, weight, w_sample, w_codebook = 0.5, 0.05, 1.0, 0.7
    quantizer = _ibq(codebook, entropy_weight=weight, entropy_temperature=tau, sample_entropy_weight=w_sample,
                     codebook_entropy_weight=w_codebook).train()
    grid = _grid(rows).requires_grad_(True)
    loss = quantizer(grid).losses["entropy_loss"]
    loss.backward()

    z = rows.clone().requires_grad_(True)
    e = codebook.clone().requires_grad_(True)
    sample, mean = _entropies(z, e, tau)
    reference = weight * (w_sample * sample - w_codebook * mean)
    reference.backward()
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(_flat(grid.grad), z.grad, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(quantizer.codebook.grad, e.grad, rtol=1e-4, atol=1e-7)


def test_small_chunks_give_the_same_indices_losses_and_gradients():
    g = torch.Generator().manual_seed(3)
    codebook = torch.randn(64, 8, generator=g) * 0.4
    grid = torch.randn(2, 8, 5, 7, generator=g)
    results = []
    for chunk in (None, 4 * 64 * 3):  # default, and 3 rows per block (70 rows: the last block is partial)
        options = {} if chunk is None else {"max_chunk_bytes": chunk}
        quantizer = _ibq(codebook, entropy_temperature=0.3, **options).train()
        z = grid.clone().requires_grad_(True)
        out = quantizer(z)
        (sum(out.losses.values()) + out.quantized.pow(2).sum()).backward()
        results.append((out.indices, sum(out.losses.values()).detach(), z.grad, quantizer.codebook.grad))
    (i0, l0, gz0, ge0), (i1, l1, gz1, ge1) = results
    assert torch.equal(i0, i1)
    torch.testing.assert_close(l0, l1)
    torch.testing.assert_close(gz0, gz1)
    torch.testing.assert_close(ge0, ge1)


def test_eval_mode_lookup_is_deterministic_has_no_entropy_term_and_matches_training_indices():
    g = torch.Generator().manual_seed(4)
    codebook = torch.randn(32, 4, generator=g)
    grid = torch.randn(3, 4, 4, 4, generator=g)
    quantizer = _ibq(codebook)
    with torch.no_grad():
        train_out = quantizer.train()(grid)
        eval_out = quantizer.eval()(grid)
        again = quantizer(grid)
    assert "entropy_loss" in train_out.losses and "entropy_loss" not in eval_out.losses
    assert torch.equal(train_out.indices, eval_out.indices) and torch.equal(eval_out.indices, again.indices)
    brute_force = (_flat(grid) @ codebook.t()).argmax(-1).view(3, 4, 4)
    assert torch.equal(eval_out.indices, brute_force)
    assert torch.equal(eval_out.quantized, quantizer.indices_to_codes(eval_out.indices))
    assert torch.equal(eval_out.quantized, codebook[brute_force].permute(0, 3, 1, 2))
    # the eval losses are the upstream quant_loss terms (values only)
    _, reference = _upstream_quant_loss(_flat(grid), codebook, 0.25)
    torch.testing.assert_close(sum(eval_out.losses.values()), reference)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("codebook_weight", -0.1, "'codebook_weight' must be >= 0"),
        ("entropy_temperature", 0.0, "'entropy_temperature' must be > 0"),
        ("max_chunk_bytes", 1.5, "'max_chunk_bytes' must be an integer"),
        ("codebook_size", 0, "'codebook_size' must be > 0"),
    ],
)
def test_invalid_options_raise_clear_errors(option, value, message):
    with pytest.raises(ValueError, match=message):
        VisTokenizerConfig(quantizer={"type": "ibq", option: value})


def test_training_step_keeps_nothing_codebook_by_latent_sized_for_backward():
    n_rows, n_codes, dim = 512, 2048, 8  # one float32 logit matrix: 4 MiB
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    g = torch.Generator().manual_seed(5)
    codebook = torch.randn(n_codes, dim, generator=g) * 0.3
    grid = _grid(torch.randn(n_rows, dim, generator=g)).requires_grad_(True)
    quantizer = _ibq(codebook, max_chunk_bytes=2**18).train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = quantizer(grid)
        total = sum(out.losses.values()) + out.quantized.sum()
    logit_bytes = 4 * n_rows * n_codes
    assert sum(saved) < logit_bytes / 8, sum(saved)
    total.backward()
    assert torch.isfinite(grid.grad).all() and quantizer.codebook.grad.abs().sum(-1).gt(0).all()
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        z_q, loss = _upstream_quant_loss(_flat(grid), quantizer.codebook, 0.25)
    assert sum(saved) > logit_bytes  # the direct formula keeps (N, K) softmax / one-hot matrices
