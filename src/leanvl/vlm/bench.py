"""Efficiency view: LLM prefill latency per visual-token count, analytical FLOPs, and compressor time separately.

FLOPs of a prefill over L = Q + V tokens (Q text, V visual), N = LLM parameters without input embeddings:
  linear  = 2 * N * L                  (the paper's cost model, attention's quadratic term ignored)
  attn    = 2 * layers * width * L^2   (QK^T and AV, each 2*L^2*width, halved by the causal mask)
  total   = linear + attn
Latency is the median over `repeats` timed runs after one warm-up, on random inputs (weights do not matter), for
`batch` concurrent requests. The prefill computes the logits of the last position only (what generation needs;
the LM head over every position would add FLOPs the cost model does not count).
"""
from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from leanvl.vlm.compressors import create_compressor
from leanvl.vlm.llm import count_params


def _median_ms(fn: Any, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def prefill_flops(n_params: int, layers: int, width: int, length: int) -> dict[str, float]:
    """Analytical prefill FLOPs (see module docstring)."""
    linear = 2.0 * n_params * length
    attn = 2.0 * layers * width * length ** 2
    return {"linear": linear, "attention": attn, "total": linear + attn}


@torch.no_grad()
def bench(llm: Any, tokenizer: Any, token_counts: list[int], *, text_tokens: int = 32, repeats: int = 5,
          compressor: str = "quecc", grid: int = 24, vision_dim: int = 1024, levels: int = 4,
          batch: int = 1) -> list[dict]:
    """One row per V: prefill ms, FLOPs (per request), compressor(+projector) ms on random vision features,
    query-pass ms, all for `batch` requests at once."""
    from leanvl.vlm.projector import Projector

    llm.eval()
    cfg = llm.config
    width, layers = cfg.hidden_size, cfg.num_hidden_layers
    n = count_params(llm, embeddings=False)
    text = torch.randint(0, min(tokenizer.vocab_size, cfg.vocab_size), (batch, text_tokens))
    rows = []
    for v in token_counts:
        comp = create_compressor(compressor, grid=(grid, grid), tokens=v, dim=vision_dim,
                                 multi_dim=vision_dim * levels, query_dim=width).eval()
        proj = Projector(comp.out_dim, width).eval()
        x = torch.randn(batch, grid * grid, vision_dim)
        m = torch.randn(batch, grid * grid, vision_dim * levels)
        q = torch.randn(batch, width)
        embeds = torch.randn(batch, text_tokens + v, width)
        rows.append({
            "tokens": v, "sequence": text_tokens + v, "batch": batch,
            "prefill_ms": _median_ms(lambda: llm(inputs_embeds=embeds, logits_to_keep=1), repeats),
            "compressor_ms": _median_ms(lambda: proj(comp(x, m, q)), repeats),
            "query_ms": _median_ms(lambda: llm.base_model(input_ids=text), repeats) if comp.needs_query else 0.0,
            "flops": prefill_flops(n, layers, width, text_tokens + v),
            "llm_params": n,
        })
    return rows


def summarise(rows: list[dict]) -> dict[str, float]:
    """Fewest vs most tokens: measured prefill speedup, the FLOPs-predicted one, and the compressor's share."""
    few, many = min(rows, key=lambda r: r["tokens"]), max(rows, key=lambda r: r["tokens"])
    measured = many["prefill_ms"] / few["prefill_ms"]
    predicted = many["flops"]["total"] / few["flops"]["total"]
    return {"tokens_few": few["tokens"], "tokens_many": many["tokens"], "measured_speedup": measured,
            "predicted_speedup": predicted, "share_of_predicted": measured / predicted,
            "compressor_share_at_few": few["compressor_ms"] / few["prefill_ms"]}


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of bench rows."""
    head = f"{'V':>5} {'seq':>5} {'prefill ms':>11} {'compr ms':>9} {'query ms':>9} {'GFLOPs 2N(Q+V)':>15} {'GFLOPs +attn':>13}"
    lines = [head]
    for r in rows:
        lines.append(f"{r['tokens']:>5} {r['sequence']:>5} {r['prefill_ms']:>11.2f} {r['compressor_ms']:>9.2f} "
                     f"{r['query_ms']:>9.2f} {r['flops']['linear'] / 1e9:>15.3f} {r['flops']['total'] / 1e9:>13.3f}")
    return "\n".join(lines)
