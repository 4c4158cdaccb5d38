"""`vlm bench` over a grid (LLMs x V x Q x batch) into a latency table that resumes: finished cells are skipped.

The table is rewritten atomically after every measured cell, so an interrupted run (or a GPU session that runs out)
keeps what it finished; the next run with the same settings measures only the rest.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from leanvl.errors import LeanvlError
from leanvl.scaling.latency_table import cell_key, read_table, table_format, write_table

DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class BenchGrid:
    """What to measure and how (one cell per llm x text_tokens x batch x visual_tokens)."""

    llms: list[str]
    visual_tokens: list[int]
    text_tokens: list[int]
    batches: list[int]
    decode_tokens: int = 0
    repeats: int = 5
    compressor: str = "quecc"
    grid: int = 24
    vision_dim: int = 1024
    levels: int = 4
    device: str = "auto"
    dtype: str = "auto"
    cuda_graphs: bool = False

    def validate(self) -> None:
        """LeanvlError with one line on a bad value (before anything is loaded or written)."""
        from leanvl.vlm.latency import check_llm_name

        if not self.visual_tokens:
            raise LeanvlError("--tokens needs at least one count, e.g. 1,4,16")
        if not self.llms or not self.text_tokens or not self.batches:
            raise LeanvlError("--llm, --text-tokens and --batch each need at least one value")
        checks = [("--tokens", self.visual_tokens, 1), ("--text-tokens", self.text_tokens, 0),
                  ("--batch", self.batches, 1), ("--repeats", [self.repeats], 1),
                  ("--decode-tokens", [self.decode_tokens], 0), ("--grid", [self.grid], 1),
                  ("--vision-dim", [self.vision_dim], 1), ("--levels", [self.levels], 1)]
        for flag, values, lo in checks:
            bad = [x for x in values if x < lo]
            if bad:
                raise LeanvlError(f"{flag} must be >= {lo}, got {bad[0]}")
        if self.dtype not in ("auto", *DTYPES):
            raise LeanvlError(f"--dtype must be auto or one of {', '.join(DTYPES)}, got {self.dtype!r}")
        for name in self.llms:
            check_llm_name(name)
        from leanvl.vlm.compressors import create_compressor

        for v in self.visual_tokens:   # compressor name and token tiling, on a narrow stand-in (cheap)
            create_compressor(self.compressor, grid=(self.grid, self.grid), tokens=v, dim=8,
                              multi_dim=8 * self.levels, query_dim=8)

    def torch_device(self):
        """The torch device; LeanvlError when CUDA is asked for but absent, or --cuda-graphs without CUDA."""
        import torch

        name = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        try:
            device = torch.device(name)
        except RuntimeError:
            raise LeanvlError(f"--device {self.device!r}: not a torch device (cpu, cuda, cuda:1, auto)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise LeanvlError(f"--device {self.device}: CUDA is not available on this machine")
        if self.cuda_graphs and device.type != "cuda":
            raise LeanvlError("--cuda-graphs needs a CUDA device")
        return device

    def torch_dtype(self, device):
        """float32 on CPU and bfloat16 on CUDA for `auto`."""
        import torch

        name = self.dtype if self.dtype != "auto" else ("bfloat16" if device.type == "cuda" else "float32")
        return getattr(torch, name)

    def cells(self, llm: str, env: dict) -> list[dict]:
        """The key columns of every cell of one LLM, in measuring order."""
        return [{"llm": llm, "compressor": self.compressor, "grid": self.grid, "vision_dim": self.vision_dim,
                 "levels": self.levels, "visual_tokens": v, "text_tokens": q, "batch": b,
                 "decode_tokens": self.decode_tokens, "device": env["device"], "dtype": env["dtype"],
                 "cuda_graphs": self.cuda_graphs}
                for q, b, v in itertools.product(self.text_tokens, self.batches, self.visual_tokens)]


def load_existing(path: str | None) -> list[dict]:
    """Rows already in the table (none when it does not exist yet); checks the target is writable."""
    if not path:
        return []
    table_format(path)
    parent = Path(path).parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise LeanvlError(f"latency table {path}: directory {parent} does not exist or is not writable")
    return read_table(path) if Path(path).exists() else []


def run_grid(spec: BenchGrid, table: str | None, log=print) -> list[dict]:
    """Measure every unfinished cell (table rows are reused); returns all rows of the grid, table order."""
    from leanvl.vlm.latency import environment, llm_columns, load_bench_llm, measure_cell

    spec.validate()
    device = spec.torch_device()
    dtype = spec.torch_dtype(device)
    rows = load_existing(table)
    env = environment(device, dtype)
    done = {cell_key(r): r for r in rows}
    out, skipped = [], 0
    for name in spec.llms:
        todo = [c for c in spec.cells(name, env) if cell_key(c) not in done]
        skipped += len(spec.cells(name, env)) - len(todo)
        out += [done[cell_key(c)] for c in spec.cells(name, env) if cell_key(c) in done]
        if not todo:
            continue
        llm = load_bench_llm(name, device, dtype)
        for cell in todo:
            # the row's cuda_graphs says whether capture worked (a failed capture is measured again next run)
            measured = measure_cell(llm, v=cell["visual_tokens"], q=cell["text_tokens"], batch=cell["batch"],
                                    decode_tokens=spec.decode_tokens, repeats=spec.repeats,
                                    compressor=spec.compressor, grid=spec.grid, vision_dim=spec.vision_dim,
                                    levels=spec.levels, cuda_graphs=spec.cuda_graphs)
            row = {**cell, **env, **llm_columns(name, llm), **measured, "repeats": spec.repeats}
            rows.append(row)
            out.append(row)
            done[cell_key(cell)] = row
            if table:
                write_table(table, rows)
        del llm
    if skipped:
        log(f"resumed: {skipped} finished cell(s) in {table} skipped")
    return out

