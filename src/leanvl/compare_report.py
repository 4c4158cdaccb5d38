"""Report of `leanvl compare`: markdown table, JSON, and a PNG (loss curves; accuracies per objective)."""
from __future__ import annotations

import json
import os
from typing import Any

from leanvl.errors import LeanvlError

_METRICS = (("probe_top1", "probe top-1"), ("fewshot_top1", "k-shot top-1"), ("zeroshot_top1", "zero-shot top-1"),
            ("retrieval_mean_r1", "retrieval R@1"))


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _row(label: str, run: dict[str, Any], acc: dict[str, Any] | None, zs_note: str = "") -> str:
    mem = f"{run['peak_memory_mb']:.0f} ({run['peak_memory_kind']})"
    cells = [label, f"{run['params'] / 1e6:.2f} / {run['trainable_params'] / 1e6:.2f}",
             f"{run['images_per_s']:.0f}", mem, f"{run.get('train_s') or run['wall_s']:.1f}", str(run["steps"]),
             f"{run['final_loss']:.3f}"]
    if acc is None:
        cells += ["(same encoder)"] * 2 + ["–", "–"]
    else:
        std = acc.get("fewshot_top1_std")
        cells += [_pct(acc["probe_top1"]), f"{_pct(acc['fewshot_top1'])} ± {_pct(std)}",
                  _pct(acc["zeroshot_top1"]) + zs_note, _pct(acc["retrieval_mean_r1"]) + zs_note]
    return "| " + " | ".join(cells) + " |"


def markdown_table(result: dict[str, Any]) -> str:
    """The side-by-side table (accuracies in %, k-shot as mean ± std over seeds)."""
    obj, setup = result["objectives"], result["setup"]
    sc, clip, siglip = obj["superclass"], obj["clip"], obj["siglip"]
    header = ("| run | params total / trained (M) | images/s | peak memory MB | wall s | steps | final loss "
              f"| probe top-1 | {setup['k']}-shot top-1 | zero-shot top-1 | retrieval R@1 |")
    lines = [header, "|" + "---|" * 11,
             _row("superclass", sc, sc, zs_note=" (LiT)"),
             _row("clip", clip, clip),
             _row("siglip", siglip, siglip),
             _row("lit (text tower on the locked superclass encoder)", sc["lit"], None)]
    return "\n".join(lines)


def _plot(result: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obj = result["objectives"]
    curves = {"superclass": obj["superclass"]["loss_curve"], "clip": obj["clip"]["loss_curve"],
              "siglip": obj["siglip"]["loss_curve"],
              "lit (on superclass encoder)": obj["superclass"]["lit"]["loss_curve"]}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for label, pts in curves.items():
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], label=label)
    ax1.set(xlabel="step", ylabel="training loss (each objective's own)", title="loss curves")
    ax1.legend()
    names = ["superclass", "clip", "siglip"]
    width = 0.8 / len(_METRICS)
    for j, (key, label) in enumerate(_METRICS):
        xs = [i + (j - (len(_METRICS) - 1) / 2) * width for i in range(len(names))]
        ax2.bar(xs, [100 * obj[n][key] for n in names], width, label=label)
    ax2.set_xticks(range(len(names)), ["superclass\n(zero-shot, retrieval via LiT)", "clip", "siglip"])
    ax2.set(ylabel="%", ylim=(0, 100), title="held-out synthetic evaluations")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare_command(setup: dict[str, Any]) -> str:
    """The `leanvl compare` command line that reproduces a run (flags that differ from the defaults)."""
    from dataclasses import fields

    from leanvl.compare_config import CompareConfig

    parts = ["leanvl compare"]
    for f in fields(CompareConfig):
        value = setup.get(f.name)
        unused = "seconds" if setup.get("budget", "steps") == "steps" else "steps"  # the other budget's flag
        if f.name in ("json", "overwrite", unused) or (
                value == f.default and f.name not in ("data", "steps", "batch_size", "model", "out", "budget")):
            continue
        parts.append(f"--{f.name.replace('_', '-')} {value}")
    return " ".join(parts)


def write_report(result: dict[str, Any], out: str, json_path: str = "") -> None:
    """OUT/compare.json (and `json_path`), OUT/compare.md, OUT/compare.png."""
    setup = result["setup"]
    command = compare_command(setup)
    md = (f"Machine: {setup['machine']}. Command: `{command}`.\n\n{markdown_table(result)}\n\n"
          f"Peak memory kind: `rss` = peak resident set of the training process (each run in its own process), "
          f"`cuda` = CUDA max allocated. Wall s = training wall-clock of the run (the --budget seconds clock).\n")
    paths = [os.path.join(out, "compare.json")] + ([json_path] if json_path else [])
    try:
        for path in paths:
            with open(path, "w") as f:
                json.dump(result, f, indent=2)
        with open(os.path.join(out, "compare.md"), "w") as f:
            f.write(md)
    except OSError as exc:
        raise LeanvlError(f"cannot write the comparison report ({exc.filename}: {exc.strerror})") from None
    _plot(result, os.path.join(out, "compare.png"))
