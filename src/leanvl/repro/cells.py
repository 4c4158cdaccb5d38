"""Cells shared by the recipes: a SuperClass encoder (trained, exported), and a VLM trained on it and evaluated
per split and per question kind, each accuracy with its 95% interval."""
from __future__ import annotations

import os
from typing import Any

ENCODER_CELL = "encoder"


def image_size(scale: str) -> int:
    """Scene size of a scale: 32 px for the tiny smoke test, else 64 px (the 8x8 grid of leanvl_convnet)."""
    return 32 if scale == "tiny" else 64


def encoder_dir(out: str) -> str:
    """Where the `encoder` cell exports the recipe's SuperClass encoder."""
    return os.path.join(out, "cells", ENCODER_CELL, "export")


def train_encoder(cell_dir: str, s: dict[str, Any]) -> dict[str, Any]:
    """SuperClass pre-training of `leanvl_convnet` on synthetic scenes (resuming), exported to cell_dir/export;
    encoder_steps = 0 exports the untrained encoder (the tiny smoke-test scale)."""
    from leanvl.models.export import save_encoder

    if s["encoder_steps"] == 0:
        import torch

        from leanvl.models import create_encoder

        torch.manual_seed(s["seed"])
        save_encoder(create_encoder("leanvl_convnet", image_size=s["image_size"]), os.path.join(cell_dir, "export"))
        return {"steps": 0, "final_loss": None, "train_s": 0.0}
    from leanvl.pretrain import load_run, run_pretrain
    from leanvl.pretrain_config import PretrainConfig
    from leanvl.train.config import TrainConfig

    steps = s["encoder_steps"]
    run = os.path.join(cell_dir, "run")
    cfg = PretrainConfig(objective="superclass", data="synthetic", model="leanvl_convnet", image_size=s["image_size"])
    tcfg = TrainConfig(out=run, steps=steps, batch_size=s["encoder_batch"], lr=2e-3, warmup=max(1, steps // 20),
                       weight_decay=0.05, save_every=max(1, steps // 4), keep=1, seed=s["seed"], resume="latest",
                       progress=False, log_every=max(1, steps // 10), device=s["device"])
    result = run_pretrain(cfg, tcfg)
    task, _ = load_run(run)
    save_encoder(task.encoder, os.path.join(cell_dir, "export"))
    return {"steps": result.step, "final_loss": result.last.get("loss"), "train_s": round(result.wall_s, 1)}


def estimates(summary: dict[str, Any]) -> dict[str, Any]:
    """{splits: {name: {value, ci, n}}, kinds: {...}} of an evaluation summary's exact-match metric."""
    em = summary["metrics"]["exact_match"]
    return {"splits": em.get("splits", {}), "kinds": em.get("kinds", {})}


def train_eval_vlm(cell_dir: str, s: dict[str, Any], *, compressor: str, tokens: int,
                   llm: str = "") -> dict[str, Any]:
    """Train one VLM (frozen recipe encoder, stage 2, resuming) and evaluate it on s['data']'s test split."""
    from leanvl.sweep import train_resumable
    from leanvl.vlm.evaluate import eval_items, evaluate
    from leanvl.vlm.io import load_vlm
    from leanvl.vlm.train import VLMTrainArgs

    llm = llm or s["llm"]
    out = os.path.dirname(os.path.dirname(cell_dir))
    args = VLMTrainArgs(llm=llm, encoder=encoder_dir(out), image_size=s["image_size"], compressor=compressor,
                        tokens=tokens, data=s["data"], stage=2, freeze="encoder")
    train_s = train_resumable(args, cell_dir, steps=s["steps"], batch_size=s["batch_size"], lr=s["lr"],
                              seed=s["seed"], device=s["device"])
    model = load_vlm(cell_dir).eval()
    items = eval_items(s["data"], image_size=s["image_size"], limit=s["eval_limit"], seed=s["seed"])
    summary, _ = evaluate(model, items, batch_size=32, seed=s["seed"])
    return {"compressor": compressor, "tokens": tokens, "llm": llm, "steps": s["steps"],
            "train_s": round(train_s, 1), **estimates(summary)}


def pct(e: dict[str, Any] | None) -> str:
    """'43.4% [38.9, 48.0] (n=456)' for an estimate dict, '–' when absent."""
    if not e:
        return "–"
    lo, hi = e["ci"]
    return f"{e['value'] * 100:.1f}% [{lo * 100:.1f}, {hi * 100:.1f}] (n={e['n']})"


def error_bars(ax: Any, xs: list[float], ests: list[dict[str, Any]], label: str, **kw: Any) -> None:
    """Plot estimates (value with its 95% interval) at xs on a matplotlib axis."""
    ys = [e["value"] * 100 for e in ests]
    lo = [(e["value"] - e["ci"][0]) * 100 for e in ests]
    hi = [(e["ci"][1] - e["value"]) * 100 for e in ests]
    ax.errorbar(xs, ys, yerr=[lo, hi], label=label, capsize=3, **kw)


def finish(fig: Any, ax: Any, out: str, lines: list[str]) -> str:
    """Add the legend, write DIR/plot.png, close the figure; returns the table lines joined."""
    import matplotlib.pyplot as plt

    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "plot.png"), dpi=110)
    plt.close(fig)
    return "\n".join(lines)


def figure(title: str, xlabel: str, ylabel: str = "accuracy (%), 95% interval") -> tuple[Any, Any]:
    """A new headless matplotlib figure and axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig, ax
