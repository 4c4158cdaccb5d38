"""`quecc` (query-conditioned compression at 1 and 4 tokens on binding questions), on a SuperClass encoder trained
by the recipe itself (`ocr-tokens` lives in leanvl.repro.ocr_recipe)."""
from __future__ import annotations

from typing import Any

from leanvl.repro.cells import (ENCODER_CELL, encoder_dir, error_bars, figure, image_size, pct, finish, train_encoder,
                                train_eval_vlm)
from leanvl.repro.runner import RECIPES, Cell, Recipe

# Per scale: the SuperClass encoder budget, then every VLM cell's budget (same for every cell of a recipe).
VLM_SCALES: dict[str, dict[str, Any]] = {
    "tiny": dict(encoder_steps=0, encoder_batch=8, llm="tiny", steps=2, batch_size=4, lr=1e-3, eval_limit=8),
    "cpu": dict(encoder_steps=200, encoder_batch=64, llm="small", steps=500, batch_size=32, lr=1e-3, eval_limit=600),
    "gpu": dict(encoder_steps=1000, encoder_batch=128, llm="base", steps=3000, batch_size=64, lr=1e-3,
                eval_limit=2000),
}
QUECC_COMPRESSORS = {"tiny": ["avgpool", "quecc-gate"], "cpu": ["avgpool", "tokenpacker", "quecc-gate"],
                     "gpu": ["avgpool", "tokenpacker", "quecc", "quecc-gate", "quecc-res"]}
# quecc's own budget (on top of VLM_SCALES): 450 steps x 32 per cell at cpu (14,400 samples: at 400 x 16 every
# compressor stayed at the answer prior, while ocr-tokens' LLM learned to read letters from 19,200), and the sizes of
# the MLP read-out ceiling. Plain `quecc` (the paper's forward, which collapses at 1 token: README) is left out of the
# cpu grid to keep it within ~30 min of one core; `quecc-gate` is QueCC as a residual on avgpool.
QUECC_BUDGET = {"tiny": dict(ceiling_train=40, ceiling_test=20, ceiling_epochs=2),
                "cpu": dict(steps=450, batch_size=32, eval_limit=400, ceiling_train=2000, ceiling_test=500,
                            ceiling_epochs=60),
                "gpu": dict(ceiling_train=8000, ceiling_test=2000, ceiling_epochs=100)}
CEILING_CELL = "ceiling"
QUECC_TOKENS = {"tiny": [1], "cpu": [1, 4], "gpu": [1, 4]}


def _encoder_cell(s: dict[str, Any]) -> Cell:
    return Cell(ENCODER_CELL, lambda d: train_encoder(d, s))


def _vlm_cell(s: dict[str, Any], compressor: str, tokens: int) -> Cell:
    return Cell(f"{compressor}-v{tokens}", lambda d: train_eval_vlm(d, s, compressor=compressor, tokens=tokens))


# ----- quecc -------------------------------------------------------------------------------------------------------
def quecc_settings(scale: str) -> dict[str, Any]:
    return {**VLM_SCALES[scale], **QUECC_BUDGET[scale], "image_size": image_size(scale), "seed": 0,
            "data": "synthetic+binding", "compressors": QUECC_COMPRESSORS[scale], "tokens": QUECC_TOKENS[scale]}


def _ceiling_cell(s: dict[str, Any], out: str) -> Cell:
    def run(cell_dir: str) -> dict[str, Any]:
        from leanvl.repro.ceiling import ceiling

        return {"ceiling": ceiling(encoder_dir(out), image_size=s["image_size"], n_train=s["ceiling_train"],
                                   n_test=s["ceiling_test"], epochs=s["ceiling_epochs"], seed=s["seed"])}

    return Cell(CEILING_CELL, run)


def quecc_cells(s: dict[str, Any], out: str) -> list[Cell]:
    return [_encoder_cell(s), _ceiling_cell(s, out)] + [_vlm_cell(s, c, v) for v in s["tokens"]
                                                        for c in s["compressors"]]


def quecc_report(s: dict[str, Any], rows: list[dict[str, Any]], out: str) -> str:
    vlm = [r for r in rows if r["cell"] not in (ENCODER_CELL, CEILING_CELL)]
    ceil = next(r["ceiling"] for r in rows if r["cell"] == CEILING_CELL)
    lines = ["| compressor | tokens | binding (named object's attribute) | all reasoning | train s |",
             "|---|---|---|---|---|"]
    for r in vlm:
        lines.append(f"| {r['compressor']} | {r['tokens']} | {pct(r['kinds'].get('binding'))} | "
                     f"{pct(r['splits'].get('reasoning'))} | {r['train_s']:.0f} |")
    lines += ["", "Read-out ceiling (MLP on the frozen encoder's compressed features + the named attribute; no LLM):",
              "", "| compression | binding accuracy |", "|---|---|"]
    lines += [f"| {name} | {pct(e)} |" for name, e in ceil.items()]
    fig, ax = figure(f"binding questions, {s['llm']} LLM, {s['steps']} steps", "compressor")
    for i, v in enumerate(s["tokens"]):
        cells = [r for r in vlm if r["tokens"] == v and "binding" in r["kinds"]]
        xs = [s["compressors"].index(r["compressor"]) + 0.15 * i for r in cells]
        error_bars(ax, xs, [r["kinds"]["binding"] for r in cells], f"{v} token(s)", fmt="o")
    for name, style in (("oracle-1", "--"), ("avgpool-1", ":"), ("chance", "-.")):
        ax.axhline(ceil[name]["value"] * 100, ls=style, color="gray", lw=1, label=f"MLP read-out ceiling: {name}")
    ax.set_xticks(range(len(s["compressors"])), s["compressors"])
    return finish(fig, ax, out, lines)


RECIPES.register("quecc", Recipe(
    "quecc", "QueCC vs TokenPacker vs avgpool at 1 and 4 tokens on questions about one named object of several",
    quecc_settings, quecc_cells, quecc_report))
