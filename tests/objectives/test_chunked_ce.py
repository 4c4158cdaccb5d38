"""The fused, chunked head + soft-target CE equals the plain head + `softmax_ce_sparse`, values and gradients."""
import pytest
import torch

from leanvl.objectives.chunked_ce import chunked_head_ce
from leanvl.objectives.superclass import ClassifierHead, row_index, softmax_ce_sparse


def _case(batch=7, width=5, vocab=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, width, generator=g, dtype=torch.float64)
    counts = torch.randint(0, 4, (batch,), generator=g)
    counts[2] = 0  # a caption without labels
    ids = torch.cat([torch.randperm(vocab, generator=g)[: int(c)].sort().values for c in counts])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    weights = torch.rand(ids.shape, generator=g, dtype=torch.float64) + 0.1
    head = ClassifierHead(width, vocab).double()
    with torch.no_grad():
        head.fc.bias.normal_(generator=g)
    return h, head.fc, ids, row_index(offsets), weights


@pytest.mark.parametrize("chunk", [1, 3, 7, 100])
def test_loss_entropy_and_gradients_match_the_unfused_path(chunk):
    h, fc, ids, rows, weights = _case()
    h1 = h.clone().requires_grad_(True)
    ref_loss, ref_ent = softmax_ce_sparse(fc(h1), ids, rows, weights)
    ref_loss.backward()
    ref = [h1.grad.clone(), fc.weight.grad.clone(), fc.bias.grad.clone()]
    fc.zero_grad()
    h2 = h.clone().requires_grad_(True)
    loss, ent = chunked_head_ce(h2, fc, ids, rows, weights, chunk)
    (loss * 1.0).backward()
    torch.testing.assert_close(loss.float(), ref_loss, rtol=1e-5, atol=1e-6)  # the reference works in float32
    torch.testing.assert_close(ent.float(), ref_ent, rtol=1e-5, atol=1e-6)
    for got, want in zip([h2.grad, fc.weight.grad, fc.bias.grad], ref):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_gradcheck_in_float64():
    h, fc, ids, rows, weights = _case(batch=4, width=3, vocab=6, seed=1)
    h.requires_grad_(True)
    fn = lambda h_, w_, b_: chunked_head_ce(h_, _Lin(w_, b_), ids, rows, weights, 3)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (h, fc.weight.detach().clone().requires_grad_(True),
                                         fc.bias.detach().clone().requires_grad_(True)))


class _Lin:
    def __init__(self, weight, bias):
        self.weight, self.bias = weight, bias


def test_bf16_autocast_stays_close_to_fp32():
    h, fc, ids, rows, weights = _case(batch=32, width=16, vocab=50, seed=2)
    h, fc = h.float(), fc.float()
    ref, _ = softmax_ce_sparse(fc(h), ids, rows, weights)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = chunked_head_ce(h, fc, ids, rows, weights, 8)
    assert abs(float(loss.detach()) - float(ref.detach())) < 2e-2
