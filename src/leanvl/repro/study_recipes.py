"""`scaling` (LLM size x visual tokens, each LLM size at its own measured lr and steps, law fitted per split);
`superclass-vs-clip` lives in leanvl.repro.compare_recipe."""
from __future__ import annotations

import os
from typing import Any

from leanvl.repro.cells import (ENCODER_CELL, encoder_dir, error_bars, figure, image_size, finish,
                                train_encoder)
from leanvl.repro.runner import RECIPES, Cell, Recipe

# ----- scaling -----------------------------------------------------------------------------------------------------
# Budget rule: every LLM size trains the same steps x batch (samples seen); its peak lr scales as 1/width
# (lr = 3e-3 x 64 / hidden size: tiny 3e-3, small 1.5e-3, medium 1e-3, base 7.5e-4, large 5e-4), muP-style.
# The cpu steps are what the 30-minute budget affords, not "until the held-out loss flattens" (README "#### scaling").
LR_AT_WIDTH_64 = 3e-3


def lr_for(llm: str) -> float:
    """Peak lr of a built-in LLM size: 3e-3 x 64 / hidden size."""
    from leanvl.vlm.llm import BUILTIN_SIZES

    return LR_AT_WIDTH_64 * 64 / BUILTIN_SIZES[llm]["hidden_size"]


SCALING_SCALES: dict[str, dict[str, Any]] = {
    "tiny": dict(encoder_steps=0, encoder_batch=8, llm_sizes=["tiny", "small"], tokens=[1, 4], batch_size=4,
                 steps=2, eval_limit=8, n_boot=10),
    "cpu": dict(encoder_steps=200, encoder_batch=64, llm_sizes=["tiny", "small", "medium"], tokens=[1, 4, 16],
                batch_size=16, steps=250, eval_limit=400, n_boot=200),
    "gpu": dict(encoder_steps=1000, encoder_batch=128, llm_sizes=["tiny", "small", "base", "large"],
                tokens=[1, 4, 16, 64], batch_size=64, steps=500, eval_limit=1000, n_boot=500),
}


def scaling_settings(scale: str) -> dict[str, Any]:
    """The scaling recipe's fixed settings at `scale` (`lr`: the peak lr per LLM size)."""
    s = SCALING_SCALES[scale]
    return {**s, "lr": {llm: lr_for(llm) for llm in s["llm_sizes"]}, "image_size": image_size(scale), "seed": 0,
            "data": "synthetic", "compressor": "avgpool"}


def steps_for(s: dict[str, Any], llm: str) -> int:
    """The budget rule's optimizer steps for LLM size `llm` (the same for every size)."""
    return int(s["steps"])


def _scaling_cell(s: dict[str, Any], out: str, llm: str, v: int) -> Cell:
    def run(cell_dir: str) -> dict[str, Any]:
        from leanvl.sweep import SweepSettings, eval_cell, train_cell

        sw = SweepSettings(llm_sizes=s["llm_sizes"], tokens=s["tokens"], compressor=s["compressor"],
                           encoder=encoder_dir(out), image_size=s["image_size"], multi_layers="", data=s["data"],
                           steps=steps_for(s, llm), batch_size=s["batch_size"], lr=float(s["lr"][llm]),
                           eval_limit=s["eval_limit"], seed=s["seed"])
        train_s = train_cell(sw, llm, v, cell_dir)
        return {"llm": llm, "tokens": v, "steps": sw.steps, "lr": sw.lr, "heldout_loss": _heldout(sw, cell_dir),
                "train_losses": _train_losses(cell_dir), "rows": eval_cell(sw, llm, v, cell_dir, train_s)}

    return Cell(f"{llm}-v{v}", run)


def _heldout(sw: Any, cell_dir: str) -> dict[str, Any]:
    """Answer-token loss of the trained cell on the fixed test-split questions (the accuracy's own items)."""
    from leanvl.sweep import heldout_loss
    from leanvl.vlm.evaluate import eval_items
    from leanvl.vlm.io import load_vlm

    items = eval_items(sw.data, image_size=sw.image_size, limit=sw.eval_limit, seed=sw.seed)
    return heldout_loss(load_vlm(cell_dir), items)


def _train_losses(run_dir: str) -> list[list[float]]:
    """[step, loss] of every logged training step (each batch is fresh synthetic data)."""
    import json

    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [[r["step"], round(r["loss"], 4)] for r in rows if "loss" in r and "step" in r]


def scaling_cells(s: dict[str, Any], out: str) -> list[Cell]:
    """The encoder cell, then one cell per (LLM size, visual tokens)."""
    return [Cell(ENCODER_CELL, lambda d: train_encoder(d, s))] + [
        _scaling_cell(s, out, llm, v) for llm in s["llm_sizes"] for v in s["tokens"]]


def _cell_table(cells: list[dict[str, Any]]) -> list[str]:
    """Per cell: budget, held-out answer loss per split, accuracy per split with its 95% interval."""
    lines = ["| LLM | params | V | lr | steps | held-out loss reasoning | held-out loss OCR | reasoning | OCR |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in cells:
        acc = {row["task"]: row for row in r["rows"]}
        n = r["rows"][0]["llm_params"]
        hl = r["heldout_loss"]

        def fmt(task: str) -> str:
            a = acc.get(task)
            return "–" if a is None else (f"{a['accuracy'] * 100:.1f}% [{a['accuracy_lo'] * 100:.1f}, "
                                          f"{a['accuracy_hi'] * 100:.1f}] (n={a['n_questions']})")

        lines.append(f"| {r['llm']} | {n / 1e6:.2f}M | {r['tokens']} | {r['lr']:g} | {r['steps']} | "
                     f"{hl.get('reasoning', float('nan')):.3f} | {hl.get('ocr', float('nan')):.3f} | "
                     f"{fmt('reasoning')} | {fmt('ocr')} |")
    return lines


def scaling_report(s: dict[str, Any], rows: list[dict[str, Any]], out: str) -> str:
    """Fit the law per split (sweep_report), write plot.png (accuracy vs V; held-out loss vs N); the table."""
    from leanvl.sweep_report import report

    cells = [r for r in rows if r["cell"] != ENCODER_CELL]
    flat = [row for r in cells for row in r["rows"]]
    text = report(flat, out, n_boot=s["n_boot"], plots=s["scale"] != "tiny")  # the law's plots/: real scales only
    fig, (ax, ax2) = _two_panels()
    for task in sorted({r["task"] for r in flat}):
        for llm in s["llm_sizes"]:
            pts = [r for r in flat if r["task"] == task and r["llm"] == llm]
            ests = [{"value": r["accuracy"], "ci": [r["accuracy_lo"], r["accuracy_hi"]]} for r in pts]
            error_bars(ax, [r["visual_tokens"] for r in pts], ests, f"{task} {llm}", marker="o")
    ax.set_xscale("log", base=2)
    for split in ("reasoning", "ocr"):
        for v in sorted({r["tokens"] for r in cells}):
            pts = sorted((r["rows"][0]["llm_params"], r["heldout_loss"].get(split)) for r in cells
                         if r["tokens"] == v and split in r["heldout_loss"])
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ls="-" if split == "reasoning" else "--",
                     label=f"{split} V={v}")
    ax2.set_xscale("log")
    ax2.legend(fontsize=7)
    return finish(fig, ax, out, _cell_table(cells) + ["", text])


def _two_panels() -> tuple[Any, tuple[Any, Any]]:
    """A headless figure: accuracy against V (left), held-out answer loss against LLM parameters (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax.set(title="accuracy against visual tokens per LLM size", xlabel="visual tokens (log)",
           ylabel="accuracy (%), 95% interval")
    ax2.set(title="held-out answer-token loss (test split)", xlabel="LLM parameters (log)", ylabel="cross-entropy")
    return fig, (ax, ax2)


RECIPES.register("scaling", Recipe(
    "scaling", "LLM size x visual tokens, per-size lr and steps; error = A·N^-α·V^-β + D fitted per split",
    scaling_settings, scaling_cells, scaling_report))
