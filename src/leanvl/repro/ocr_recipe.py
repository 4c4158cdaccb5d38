"""`ocr-tokens`: OCR and reasoning accuracy against the visual-token count V at a fixed LLM.

The data is `synthetic+ocr` (leanvl.vlm.vqa_data): half of the scenes are a 2 x 2 grid of capitals asked "What
letter is in the top-left corner?" (split `ocr`), half are the ordinary shape scenes asked one reasoning question. One
SuperClass `leanvl_convnet` encoder (8 x 8 grid) trained by the recipe, then one VLM per V (avgpool, frozen encoder,
stage 2): V = 1 pools the whole grid into one token (which letters, not where), V = 4 gives one token per letter.
"""
from __future__ import annotations

from typing import Any

from leanvl.repro.cells import ENCODER_CELL, error_bars, figure, finish, image_size, pct, train_encoder, train_eval_vlm
from leanvl.repro.runner import RECIPES, Cell, Recipe

# Per scale: the SuperClass encoder budget, then every VLM cell's budget (the same for every V). At cpu, 600 steps
# (300 left OCR at chance in the pilots) and V up to 16: V = 4 is already one token per letter of the 2 x 2 grid, and
# V = 64 would take the recipe past 30 minutes of one core; gpu keeps 64.
OCR_SCALES: dict[str, dict[str, Any]] = {
    "tiny": dict(encoder_steps=0, encoder_batch=8, llm="tiny", steps=2, batch_size=4, lr=1e-3, eval_limit=8,
                 tokens=[1, 4]),
    "cpu": dict(encoder_steps=200, encoder_batch=64, llm="small", steps=600, batch_size=32, lr=1e-3, eval_limit=600,
                tokens=[1, 4, 16]),
    "gpu": dict(encoder_steps=1000, encoder_batch=128, llm="base", steps=3000, batch_size=64, lr=1e-3,
                eval_limit=2000, tokens=[1, 4, 16, 64]),
}


def ocr_settings(scale: str) -> dict[str, Any]:
    """The recipe's fixed settings at `scale`."""
    return {**OCR_SCALES[scale], "image_size": image_size(scale), "seed": 0, "data": "synthetic+ocr",
            "compressor": "avgpool"}


def ocr_cells(s: dict[str, Any], out: str) -> list[Cell]:
    """The encoder cell, then one VLM cell per visual-token count."""
    cells = [Cell(ENCODER_CELL, lambda d: train_encoder(d, s))]
    for v in s["tokens"]:
        cells.append(Cell(f"{s['compressor']}-v{v}",
                          lambda d, v=v: train_eval_vlm(d, s, compressor=s["compressor"], tokens=v)))
    return cells


def ocr_report(s: dict[str, Any], rows: list[dict[str, Any]], out: str) -> str:
    """Table (OCR letter questions and reasoning per V, with 95% intervals) and plot.png (accuracy against V)."""
    vlm = [r for r in rows if r["cell"] != ENCODER_CELL]
    lines = ["| visual tokens | OCR (letter in a named corner) | reasoning | train s |", "|---|---|---|---|"]
    for r in vlm:
        lines.append(f"| {r['tokens']} | {pct(r['splits'].get('ocr'))} | {pct(r['splits'].get('reasoning'))} | "
                     f"{r['train_s']:.0f} |")
    fig, ax = figure(f"{s['data']}: {s['compressor']} tokens, {s['llm']} LLM, {s['steps']} steps",
                     "visual tokens (log)")
    for split in ("ocr", "reasoning"):
        cells = [r for r in vlm if split in r["splits"]]
        error_bars(ax, [r["tokens"] for r in cells], [r["splits"][split] for r in cells], split, marker="o")
    from leanvl.data.synthetic import OCR_ALPHABET

    chance = 100 / len(OCR_ALPHABET)
    ax.axhline(chance, color="gray", linestyle=":", label=f"OCR chance ({chance:.1f}%)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(s["tokens"], [str(v) for v in s["tokens"]])
    lines.append(f"\nOCR chance: {chance:.1f}% (1 of {len(OCR_ALPHABET)} letters).")
    return finish(fig, ax, out, lines)


RECIPES.register("ocr-tokens", Recipe(
    "ocr-tokens", "OCR (the letter in a named corner of a 2x2 grid) and reasoning accuracy against the visual-token "
    "count at a fixed LLM",
    ocr_settings, ocr_cells, ocr_report))
