"""VLM prefill latency vs visual-token count for a ~1B Llama (GPU), against the FLOPs-predicted speedup.

For V in 1, 4, 16, 36, 144, 576 visual tokens (24x24 grid, ViT-L width 1024, 4 feature levels) and Q text tokens:
prefill latency (median, CUDA-synchronised), QueCC compressor + projector latency, and QueCC's extra LLM query pass.
Speedup of V=1 over V=576, measured vs predicted by 2N(Q+V) and by 2N(Q+V) + attention, at batch 1 and batch B.

  python benchmarks/gpu_vlm_prefill.py                  # H100, bf16
  python benchmarks/gpu_vlm_prefill.py --smoke          # CPU check of the script (tiny model)
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from leanvl.vlm.bench import prefill_flops
from leanvl.vlm.compressors import create_compressor
from leanvl.vlm.latency import graphed
from leanvl.vlm.projector import Projector

# ~1.1B parameters, TinyLlama-1.1B shape.
LLAMA_1B = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048)
TINY = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=1000, max_position_embeddings=2048)


def median_ms(fn, repeats: int, device) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


@torch.no_grad()
def run(cfg: dict, tokens: list[int], q: int, batch: int, repeats: int, device, dtype,
        graphs: bool = False) -> list[dict]:
    from transformers import LlamaConfig, LlamaForCausalLM

    llm = LlamaForCausalLM(LlamaConfig(**cfg, attn_implementation="sdpa")).to(device, dtype).eval()
    width, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    n = sum(p.numel() for n_, p in llm.named_parameters() if "embed_tokens" not in n_)
    text = torch.randint(0, cfg["vocab_size"], (batch, q), device=device)
    rows = []
    for v in tokens:
        comp = create_compressor("quecc", grid=(24, 24), tokens=v, dim=1024, multi_dim=4096,
                                 query_dim=width).to(device, dtype).eval()
        proj = Projector(comp.out_dim, width).to(device, dtype).eval()
        x = torch.randn(batch, 576, 1024, device=device, dtype=dtype)
        m = torch.randn(batch, 576, 4096, device=device, dtype=dtype)
        qe = torch.randn(batch, width, device=device, dtype=dtype)
        embeds = torch.randn(batch, q + v, width, device=device, dtype=dtype)
        prefill = lambda: llm(inputs_embeds=embeds, logits_to_keep=1, use_cache=False)  # noqa: E731
        compress = lambda: proj(comp(x, m, qe))  # noqa: E731
        query = lambda: llm.model(input_ids=text)  # noqa: E731
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            compress()
        comp_flops = counter.get_total_flops()
        if graphs:  # each of the three is captured once and replayed
            prefill, compress, query = (graphed(f, device) or f for f in (prefill, compress, query))
        rows.append({"tokens": v, "batch": batch, "cuda_graph": graphs,
                     "prefill_ms": median_ms(prefill, repeats, device),
                     "compressor_ms": median_ms(compress, repeats, device),
                     "query_pass_ms": median_ms(query, repeats, device),
                     "flops": prefill_flops(n, layers, width, q + v), "compressor_flops": comp_flops})
    return rows


def summarise(rows: list[dict]) -> dict:
    one, full = rows[0], rows[-1]
    return {"measured_speedup": full["prefill_ms"] / one["prefill_ms"],
            "predicted_linear": full["flops"]["linear"] / one["flops"]["linear"],
            "predicted_with_attention": full["flops"]["total"] / one["flops"]["total"],
            "compressor_share_at_1": one["compressor_ms"] / one["prefill_ms"],
            # compressor FLOPs are counted over the whole batch, prefill FLOPs per request
            "compressor_flops_share_at_1": one["compressor_flops"] / one["batch"] / one["flops"]["total"],
            "compressor_plus_query_share_at_1": (one["compressor_ms"] + one["query_pass_ms"]) / one["prefill_ms"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", default="1,4,16,36,144,576")
    ap.add_argument("--text-tokens", type=int, default=50)
    ap.add_argument("--batches", default="1,32", help="request batch sizes to measure")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--cuda-graphs", action="store_true", help="replay prefill, compressor and query pass from captured CUDA graphs")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg = TINY if args.smoke else LLAMA_1B
    tokens = [int(t) for t in args.tokens.split(",")]
    out = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "config": cfg,
           "text_tokens": args.text_tokens, "runs": []}
    for b in (int(x) for x in args.batches.split(",")):
        rows = run(cfg, tokens, args.text_tokens, b, 2 if args.smoke else args.repeats, device, dtype,
                   graphs=args.cuda_graphs and device.type == "cuda")
        out["runs"].append({"batch": b, "rows": rows, "summary": summarise(rows)})
        print(json.dumps({"batch": b, **out["runs"][-1]["summary"]}), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
