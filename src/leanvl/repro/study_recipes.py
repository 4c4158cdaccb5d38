"""`scaling` (LLM size x visual tokens, each LLM trained to a size-proportional budget, law fitted per split);
`superclass-vs-clip` lives in leanvl.repro.compare_recipe."""
from __future__ import annotations

import os
from typing import Any

from leanvl.repro.cells import (ENCODER_CELL, encoder_dir, error_bars, figure, image_size, finish,
                                train_encoder)
from leanvl.repro.runner import RECIPES, Cell, Recipe

# ----- scaling -----------------------------------------------------------------------------------------------------
# Budget rule: steps = samples_per_param * N / batch, clipped to [min_steps, max_steps] (N = LLM parameters).
SCALING_SCALES: dict[str, dict[str, Any]] = {
    "tiny": dict(encoder_steps=0, encoder_batch=8, llm_sizes=["tiny", "small"], tokens=[1, 4], batch_size=4,
                 samples_per_param=0.0, min_steps=2, max_steps=2, lr=1e-3, eval_limit=8, n_boot=10),
    "cpu": dict(encoder_steps=200, encoder_batch=64, llm_sizes=["tiny", "small", "base"], tokens=[1, 4, 16, 64],
                batch_size=32, samples_per_param=0.02, min_steps=150, max_steps=1200, lr=1e-3, eval_limit=400,
                n_boot=200),
    "gpu": dict(encoder_steps=1000, encoder_batch=128, llm_sizes=["tiny", "small", "base", "large"],
                tokens=[1, 4, 16, 64], batch_size=64, samples_per_param=0.2, min_steps=500, max_steps=8000,
                lr=1e-3, eval_limit=1000, n_boot=500),
}


def scaling_settings(scale: str) -> dict[str, Any]:
    return {**SCALING_SCALES[scale], "image_size": image_size(scale), "seed": 0, "data": "synthetic",
            "compressor": "avgpool"}


def steps_for(s: dict[str, Any], llm: str) -> int:
    """The budget rule's steps for LLM size `llm`."""
    from leanvl.vlm.llm import LLMS, count_params

    n = count_params(LLMS.create(llm, s["seed"])[0])
    return int(min(s["max_steps"], max(s["min_steps"], round(s["samples_per_param"] * n / s["batch_size"]))))


def _scaling_cell(s: dict[str, Any], out: str, llm: str, v: int) -> Cell:
    def run(cell_dir: str) -> dict[str, Any]:
        from leanvl.sweep import SweepSettings, eval_cell, train_cell

        sw = SweepSettings(llm_sizes=s["llm_sizes"], tokens=s["tokens"], compressor=s["compressor"],
                           encoder=encoder_dir(out), image_size=s["image_size"], multi_layers="", data=s["data"],
                           steps=steps_for(s, llm), batch_size=s["batch_size"], lr=s["lr"],
                           eval_limit=s["eval_limit"], seed=s["seed"])
        train_s = train_cell(sw, llm, v, cell_dir)
        return {"llm": llm, "tokens": v, "steps": sw.steps, "heldout_loss": _last_loss(cell_dir),
                "rows": eval_cell(sw, llm, v, cell_dir, train_s)}

    return Cell(f"{llm}-v{v}", run)


def _last_loss(run_dir: str) -> float | None:
    """The last logged training loss of a run (each sample is fresh synthetic data: a held-out loss)."""
    import json

    last = None
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            last = json.loads(line).get("loss", last)
    return last


def scaling_cells(s: dict[str, Any], out: str) -> list[Cell]:
    return [Cell(ENCODER_CELL, lambda d: train_encoder(d, s))] + [
        _scaling_cell(s, out, llm, v) for llm in s["llm_sizes"] for v in s["tokens"]]


def scaling_report(s: dict[str, Any], rows: list[dict[str, Any]], out: str) -> str:
    from leanvl.sweep_report import report

    cells = [r for r in rows if r["cell"] != ENCODER_CELL]
    flat = [row for r in cells for row in r["rows"]]
    losses = ["| LLM | tokens | steps | last training loss (fresh samples) |", "|---|---|---|---|"]
    losses += [f"| {r['llm']} | {r['tokens']} | {r['steps']} | {r['heldout_loss']:.4f} |" for r in cells]
    text = report(flat, out, n_boot=s["n_boot"])
    fig, ax = figure("accuracy against visual tokens per LLM size", "visual tokens (log)")
    for task in sorted({r["task"] for r in flat}):
        for llm in s["llm_sizes"]:
            pts = [r for r in flat if r["task"] == task and r["llm"] == llm]
            ests = [{"value": r["accuracy"], "ci": [r["accuracy_lo"], r["accuracy_hi"]]} for r in pts]
            error_bars(ax, [r["visual_tokens"] for r in pts], ests, f"{task} {llm}", marker="o")
    ax.set_xscale("log", base=2)
    return finish(fig, ax, out, losses + ["", text])


RECIPES.register("scaling", Recipe(
    "scaling", "LLM size x visual tokens at a size-proportional budget; error = A·N^-α·V^-β + D fitted per split",
    scaling_settings, scaling_cells, scaling_report))
