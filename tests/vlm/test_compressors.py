"""Compressors: token counts that tile the grid, output shapes, gradients, QueCC's dependence on the question."""
import pytest
import torch

from leanvl.errors import LeanvlError
from leanvl.vlm.compressors import COMPRESSORS, create_compressor, tile

D, DM, Q = 16, 48, 24


def _make(name, tokens, grid=(8, 8)):
    torch.manual_seed(0)
    return create_compressor(name, grid=grid, tokens=tokens, dim=D, multi_dim=DM, query_dim=Q)


def _inputs(b=2, grid=(8, 8)):
    g = torch.Generator().manual_seed(1)
    t = grid[0] * grid[1]
    return torch.randn(b, t, D, generator=g), torch.randn(b, t, DM, generator=g), torch.randn(b, Q, generator=g)


def test_tiling_counts():
    assert [t for t in (1, 4, 9, 16, 36, 64, 144, 576) if _ok((24, 24), t)] == [1, 4, 9, 16, 36, 64, 144, 576]
    assert [t for t in range(1, 65) if _ok((8, 8), t)] == [1, 4, 16, 64]
    assert tile((24, 24), 36) == (6, 4)


def _ok(grid, t):
    try:
        tile(grid, t)
        return True
    except LeanvlError:
        return False


@pytest.mark.parametrize("tokens", [0, 5, 9, 32, 100])
def test_bad_token_count_raises(tokens):
    with pytest.raises(LeanvlError, match="do not tile the 8x8 encoder grid"):
        _make("avgpool", tokens)


def test_unknown_compressor_and_none_with_fewer_tokens():
    with pytest.raises(LeanvlError, match="unknown compressor"):
        _make("pixelshuffle", 4)
    with pytest.raises(LeanvlError, match="keeps all 64"):
        _make("none", 16)


CASES = [(n, t) for n in sorted(COMPRESSORS) for t in (1, 4, 16, 64) if n != "none" or t == 64]


@pytest.mark.parametrize("name, tokens", CASES)
def test_output_shape(name, tokens):
    x, m, q = _inputs()
    out = _make(name, tokens)(x, m, q)
    assert out.shape == (2, tokens, D)
    assert torch.isfinite(out).all()


def test_avgpool_averages_regions():
    x, _, _ = _inputs()
    out = _make("avgpool", 4)(x)
    region = x.reshape(2, 8, 8, D)[:, :4, 4:, :].reshape(2, 16, D).mean(1)  # top-right 4x4 block -> token 1
    assert torch.allclose(out[:, 1], region, atol=1e-6)


@pytest.mark.parametrize("name", ["tokenpacker", "quecc"])
def test_gradients_reach_every_parameter(name):
    comp = _make(name, 4)
    x, m, q = _inputs()
    comp(x, m, q).square().mean().backward()
    for pname, p in comp.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_token_attends_only_to_its_region():
    """Changing features of one k x k region changes only that region's output token (local attention)."""
    comp = _make("tokenpacker", 4).eval()
    x, m, _ = _inputs()
    m2 = m.clone().reshape(2, 8, 8, DM)
    m2[:, 4:, :4] += 1.0                       # bottom-left region -> token 2
    with torch.no_grad():
        a, b = comp(x, m), comp(x, m2.reshape(2, 64, DM))
    changed = (a - b).abs().amax(dim=(0, 2)) > 1e-6
    assert changed.tolist() == [False, False, True, False]


def test_quecc_depends_on_query():
    comp = _make("quecc", 4).eval()
    x, m, q = _inputs()
    with torch.no_grad():
        a = comp(x, m, q)
        b = comp(x, m, q.flip(0))
        c = comp(x, m, q)
    assert torch.equal(a, c)
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(LeanvlError, match="question embedding"):
        comp(x, m, None)


@pytest.mark.parametrize("tokens", [1, 4, 36, 576])
def test_quecc_downsample_equals_the_depthwise_conv(tokens):
    comp = create_compressor("quecc", grid=(24, 24), tokens=tokens, dim=16, multi_dim=32, query_dim=8)
    q = torch.randn(2, 16, 24, 24, dtype=torch.float64)
    comp = comp.double()
    torch.testing.assert_close(comp.downsample(q), comp.conv(q), rtol=1e-12, atol=1e-12)


def test_quecc_res_is_the_pooled_token_plus_a_query_dependent_term_without_constant_paths():
    comp = _make("quecc-res", 4).eval()
    x, m, q = _inputs()
    assert comp.attn.attn.in_proj_bias is None and comp.attn.attn.out_proj.bias is None
    assert not comp.v_proj[-1].elementwise_affine
    pooled = _make("avgpool", 4)(x)
    with torch.no_grad():
        out, flipped = comp(x, m, q), comp(x, m, q.flip(0))
        # the attention term is a mix of region values: zero values leave exactly the pooled token
        for p in comp.v_proj.parameters():
            p.zero_()
        only_pooled = comp(x, m, q)
    assert torch.allclose(only_pooled, pooled, atol=1e-6)
    assert (out - pooled).abs().max() > 1e-3 and (out - flipped).abs().max() > 1e-4


def test_quecc_gate_starts_as_avgpool_and_its_gate_learns_first():
    comp = _make("quecc-gate", 1)
    x, m, q = _inputs()
    torch.testing.assert_close(comp(x, m, q), _make("avgpool", 1)(x))
    comp(x, m, q).pow(2).sum().backward()
    # at init only the gate gets a gradient (the attention term is multiplied by 0)
    assert comp.gate.grad.abs().max() > 1e-4
    assert all(p.grad is None or p.grad.abs().max() == 0 for n, p in comp.named_parameters() if n != "gate")
    with torch.no_grad():
        comp.gate.fill_(1.0)
        assert (comp(x, m, q) - comp(x, m, q.flip(0))).abs().max() > 1e-4  # then the question matters
