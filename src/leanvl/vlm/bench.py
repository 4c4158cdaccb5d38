"""Efficiency view: LLM prefill latency per visual-token count, analytical FLOPs, and compressor time separately.

FLOPs of a prefill over L = Q + V tokens (Q text, V visual), N = LLM parameters without input embeddings:
  linear  = 2 * N * L                  (the paper's cost model, attention's quadratic term ignored)
  attn    = 2 * layers * width * L^2   (QK^T and AV, each 2*L^2*width, halved by the causal mask)
  total   = linear + attn
Latency comes from `leanvl.vlm.latency.measure_cell` (median over `repeats` timed runs after one warm-up, random
inputs, `batch` concurrent requests). The prefill computes the logits of the last position only (what generation
needs; the LM head over every position would add FLOPs the cost model does not count).
"""
from __future__ import annotations


def prefill_flops(n_params: int, layers: int, width: int, length: int) -> dict[str, float]:
    """Analytical prefill FLOPs (see module docstring)."""
    linear = 2.0 * n_params * length
    attn = 2.0 * layers * width * length ** 2
    return {"linear": linear, "attention": attn, "total": linear + attn}


def view_rows(cells: list[dict]) -> list[dict]:
    """Latency-table rows of one (LLM, Q, batch) group as bench rows: V, sequence, times and analytical FLOPs."""
    return [{"tokens": c["visual_tokens"], "sequence": c["text_tokens"] + c["visual_tokens"], "batch": c["batch"],
             "prefill_ms": c["prefill_ms"], "compressor_ms": c["compressor_ms"], "query_ms": c["query_ms"],
             "decode_ms_per_token": c["decode_ms_per_token"],
             "flops": prefill_flops(c["llm_params"], c["llm_layers"], c["llm_width"],
                                    c["text_tokens"] + c["visual_tokens"]),
             "llm_params": c["llm_params"]} for c in sorted(cells, key=lambda c: c["visual_tokens"])]


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
    head = (f"{'V':>5} {'seq':>5} {'prefill ms':>11} {'compr ms':>9} {'query ms':>9} {'GFLOPs 2N(Q+V)':>15} "
            f"{'GFLOPs +attn':>13} {'decode ms/tok':>13}")
    lines = [head]
    for r in rows:
        lines.append(f"{r['tokens']:>5} {r['sequence']:>5} {r['prefill_ms']:>11.2f} {r['compressor_ms']:>9.2f} "
                     f"{r['query_ms']:>9.2f} {r['flops']['linear'] / 1e9:>15.3f} {r['flops']['total'] / 1e9:>13.3f} "
                     f"{'-' if r['decode_ms_per_token'] is None else format(r['decode_ms_per_token'], '.2f'):>13}")
    return "\n".join(lines)
