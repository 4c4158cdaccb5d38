"""Measure one latency-table cell (schema: leanvl.scaling.latency_table): prefill, compressor, QueCC query pass,
decode per token and peak memory of an LLM for V visual tokens, Q text tokens and B requests, on CPU or CUDA.

Inputs are random (weights do not change the time). Each time is the median over `repeats` runs after one warm-up,
CUDA-synchronised on a GPU. With `cuda_graphs` the prefill, compressor and query pass are captured once in a CUDA
graph and replayed (the decode loop is not: its cache grows).
"""
from __future__ import annotations

import copy
import os
import platform
import resource
import statistics
import time
from datetime import datetime, timezone
from typing import Any, Callable

import torch

from leanvl.errors import LeanvlError
from leanvl.vlm.compressors import create_compressor
from leanvl.vlm.llm import BUILTIN_SIZES, SMOLLM2_NAME, count_params, load_llm


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], Any], repeats: int, device: torch.device) -> float:
    """Median wall time of fn() in ms over `repeats` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def graphed(fn: Callable[[], Any], device: torch.device) -> Callable[[], Any] | None:
    """Capture fn (static inputs) in a CUDA graph and return its replay; None when the capture fails."""
    try:
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                fn()
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        return graph.replay
    except Exception as exc:  # noqa: BLE001 - report and fall back to eager
        print(f"cuda graph capture failed: {str(exc).splitlines()[0][:200]}", flush=True)
        return None


def check_llm_name(name: str) -> None:
    """LeanvlError unless `name` is a built-in, smollm2-135m, a model directory or an HF config.json file."""
    if name in BUILTIN_SIZES or name == SMOLLM2_NAME or os.path.isdir(name):
        return
    if name.endswith(".json") and os.path.isfile(name):
        return
    raise LeanvlError(f"unknown LLM {name!r}; give a built-in name ({', '.join(BUILTIN_SIZES)}), {SMOLLM2_NAME}, "
                      f"a model directory or a config.json (random init)")


def load_bench_llm(name: str, device: torch.device, dtype: torch.dtype) -> Any:
    """The causal LM to time, on `device` in `dtype`: a config.json file gives a random-init model built there."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if name.endswith(".json") and os.path.isfile(name):
        try:
            config = AutoConfig.from_pretrained(name)
        except (OSError, ValueError) as exc:
            raise LeanvlError(f"--llm {name}: not a readable HF config ({str(exc).splitlines()[0]})") from None
        with device:
            model = AutoModelForCausalLM.from_config(config, torch_dtype=dtype)
    else:
        model = load_llm(name).model
    return model.to(device, dtype).eval()


def device_name(device: torch.device) -> str:
    """GPU name, or `cpu: <processor>`."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    proc = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            proc = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), proc)
    except OSError:
        pass
    return f"cpu: {proc}"


def environment(device: torch.device, dtype: torch.dtype) -> dict:
    """The software/device columns of a row."""
    import transformers

    return {"device": device_name(device), "dtype": str(dtype).replace("torch.", ""),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def _decode_ms_per_token(llm: Any, embeds: torch.Tensor, k: int, repeats: int, device: torch.device) -> float:
    """Median over repeats of K greedy decode steps from one prefill's KV cache (copied per repeat), per token."""
    from leanvl.vlm.generate import _cache_name, _cache_of

    key = _cache_name(llm)
    out = llm(inputs_embeds=embeds, use_cache=True, logits_to_keep=1)
    start, first = _cache_of(out), out.logits[:, -1:].argmax(-1)
    times = []
    for _ in range(repeats + 1):
        cache, tok = copy.deepcopy(start), first
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(k):
            step = llm(input_ids=tok, use_cache=True, **{key: cache})
            cache, tok = _cache_of(step), step.logits[:, -1:].argmax(-1)
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000 / k)
    return statistics.median(times[1:])


def _peak_memory(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_process"


@torch.no_grad()
def measure_cell(llm: Any, *, v: int, q: int, batch: int, decode_tokens: int = 0, repeats: int = 5,
                 compressor: str = "quecc", grid: int = 24, vision_dim: int = 1024, levels: int = 4,
                 cuda_graphs: bool = False) -> dict:
    """The measured columns of one cell (prefill/compressor/query/decode ms, memory, cuda_graphs actually used)."""
    from leanvl.vlm.projector import Projector

    p = next(llm.parameters())
    device, dtype, width = p.device, p.dtype, llm.config.hidden_size
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    comp = create_compressor(compressor, grid=(grid, grid), tokens=v, dim=vision_dim, multi_dim=vision_dim * levels,
                             query_dim=width).to(device, dtype).eval()
    proj = Projector(comp.out_dim, width).to(device, dtype).eval()
    kw = dict(device=device, dtype=dtype)
    x, m = torch.randn(batch, grid * grid, vision_dim, **kw), torch.randn(batch, grid * grid, vision_dim * levels, **kw)
    qe, embeds = torch.randn(batch, width, **kw), torch.randn(batch, q + v, width, **kw)
    text = torch.randint(0, llm.config.vocab_size, (batch, max(q, 1)), device=device)
    fns = {"prefill_ms": lambda: llm(inputs_embeds=embeds, logits_to_keep=1, use_cache=False),
           "compressor_ms": lambda: proj(comp(x, m, qe)),
           "query_ms": (lambda: llm.base_model(input_ids=text, use_cache=False)) if comp.needs_query else None}
    graphs_used = False
    if cuda_graphs:
        replays = {k: graphed(f, device) if f else None for k, f in fns.items()}
        graphs_used = replays["prefill_ms"] is not None
        fns = {k: replays[k] or f for k, f in fns.items()}
    row = {k: (median_ms(f, repeats, device) if f else 0.0) for k, f in fns.items()}
    row["decode_ms_per_token"] = _decode_ms_per_token(llm, embeds, decode_tokens, repeats, device) \
        if decode_tokens > 0 else None
    row["peak_memory_mb"], row["memory_kind"] = _peak_memory(device)
    row["cuda_graphs"] = graphs_used
    row["measured_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return row


def llm_columns(name: str, llm: Any) -> dict:
    """The LLM-describing columns of a row."""
    return {"llm": name, "llm_params": count_params(llm, embeddings=False),
            "llm_layers": llm.config.num_hidden_layers, "llm_width": llm.config.hidden_size}
