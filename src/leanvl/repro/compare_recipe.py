"""`superclass-vs-clip`: SuperClass, CLIP and SigLIP (and LiT on the SuperClass encoder, for its zero-shot) on the
same encoder, data order, batch and learning rate, at an equal TRAINING BUDGET of seconds per run: at `--scale cpu`
CPU seconds of the training process (`compare --budget cpu-seconds`, fair on a shared box), at `--scale gpu` wall
seconds. Each run logs its in-loop k-NN (`--eval-every`) so the report shows accuracy against training time next to
the loss curves and SuperClass's loss floor (its batches' target entropy); then linear probe and 10-shot for the
three encoders, zero-shot for CLIP, SigLIP and LiT, each with its interval."""
from __future__ import annotations

import os
from typing import Any

from leanvl.repro.cells import error_bars, finish, image_size, pct
from leanvl.repro.runner import RECIPES, Cell, Recipe

COMPARE_SCALES: dict[str, dict[str, Any]] = {
    "tiny": dict(budget="cpu-seconds", seconds=0.5, batch_size=8, warmup=2, eval_every=4, eval_n=20,
                 eval_train=60, eval_test=40, k=2),
    "cpu": dict(budget="cpu-seconds", seconds=330.0, batch_size=64, warmup=10, eval_every=40, eval_n=300,
                eval_train=2000, eval_test=1000, k=10),
    "gpu": dict(budget="seconds", seconds=300.0, batch_size=256, warmup=50, eval_every=200, eval_n=500,
                eval_train=4000, eval_test=2000, k=10),
}
# superclass-floor: captions (fit, held-out) of the loss references, per scale
FLOOR_CAPTIONS = {"tiny": (40, 20), "cpu": (4000, 1000), "gpu": (4000, 1000)}
# --eval-every per run, in units of the scale's eval_every: about the same number of in-loop evaluations per run at
# an equal time budget (CLIP and SigLIP take ~2x SuperClass's time per step on a CPU, LiT ~0.5x)
EVAL_EVERY_FACTOR = {"superclass": 1.0, "clip": 0.5, "siglip": 0.5, "lit": 2.0}
COMPARE_RUNS = ("superclass", "clip", "siglip", "lit")  # = leanvl.compare.RUNS
ENCODERS = ("superclass", "clip", "siglip")
TRAIN_KEYS = ("step", "train_s", "wall_s", "images_per_s", "process_wall_s", "process_cpu_s")


def compare_settings(scale: str) -> dict[str, Any]:
    """The recipe's fixed settings at `scale`."""
    return {**COMPARE_SCALES[scale], "image_size": image_size(scale), "seed": 0, "model": "leanvl_convnet",
            "lr": 1e-3}


def compare_config(s: dict[str, Any], out: str) -> Any:
    """The `leanvl compare` settings of the recipe (its runs live in OUT/compare)."""
    from leanvl.compare_config import CompareConfig

    return CompareConfig(budget=s["budget"], seconds=s["seconds"], batch_size=s["batch_size"],
                         out=os.path.join(out, "compare"), model=s["model"], image_size=s["image_size"], lr=s["lr"],
                         warmup=s["warmup"], seed=s["seed"], device=s["device"], eval_train=s["eval_train"],
                         eval_test=s["eval_test"], k=s["k"])


def compare_cells(s: dict[str, Any], out: str) -> list[Cell]:
    """One training cell per run (in this process, resuming an interrupted run), then the evaluation."""
    cfg = compare_config(s, out)
    every = {name: max(1, round(s["eval_every"] * EVAL_EVERY_FACTOR[name])) for name in COMPARE_RUNS}
    return [Cell(name, _train_cell(cfg, name, every[name], s["eval_n"])) for name in COMPARE_RUNS] + [
        Cell("evaluate", lambda d: _evaluate(cfg, out)),
        Cell("superclass-floor", lambda d: superclass_floor(*FLOOR_CAPTIONS[s["scale"]], s["image_size"], s["seed"]))]


def _train_cell(cfg: Any, name: str, eval_every: int, eval_n: int) -> Any:
    def run(cell_dir: str) -> dict[str, Any]:
        from leanvl.compare import run_training

        # a cell that started before resumes its run (or keeps it, when it finished); a fresh cell (a new or
        # --overwrite repro) replaces whatever OUT/compare/NAME holds
        started, done = os.path.join(cell_dir, "started"), os.path.join(cfg.out, name, "result.json")
        resume = os.path.exists(started)
        open(started, "w").close()
        if resume and os.path.exists(done):
            r = {**_read(done), "process_wall_s": None, "process_cpu_s": None}
        else:
            r = run_training(cfg, name, resume=resume, eval_every=eval_every, in_process=True, eval_n=eval_n)
        last = last_logged(os.path.join(cfg.out, name))
        return {k: r.get(k) for k in TRAIN_KEYS} | {"final_loss": last.get("loss"),
                                                    "target_entropy": last.get("target_entropy")}

    return run


def _read(path: str) -> dict[str, Any]:
    import json

    with open(path) as f:
        return json.load(f)


def last_logged(run_dir: str) -> dict[str, Any]:
    """The last RUN/metrics.jsonl row with a loss (a resumed run that found its budget spent logs nothing new)."""
    import json

    last: dict[str, Any] = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            row = json.loads(line) if line.strip() else {}
            last = row if "loss" in row else last
    return last


def _evaluate(cfg: Any, out: str) -> dict[str, Any]:
    from leanvl.compare import evaluate_runs, summarise
    from leanvl.compare_report import write_report

    trained = {}
    for name in COMPARE_RUNS:
        row = _read(os.path.join(out, "cells", name, "done.json"))  # the process's wall and CPU seconds
        trained[name] = _read(os.path.join(cfg.out, name, "result.json")) | {
            "process_wall_s": row.get("process_wall_s"), "process_cpu_s": row.get("process_cpu_s"),
            "last": last_logged(os.path.join(cfg.out, name))}
    result = summarise(cfg, trained, evaluate_runs(cfg))
    write_report(result, cfg.out)
    return {"objectives": result["objectives"], "n": task_counts(cfg)}


def superclass_floor(n_fit: int, n_test: int, image_size: int, seed: int) -> dict[str, Any]:
    """Reference values for SuperClass's loss, from captions alone (no model), scored on `n_test` held-out scenes
    (split 'val') with IDF and predictors fit on `n_fit` others: `target_entropy` (the absolute floor: a prediction
    equal to each caption's own target), `prior_loss` (the best image-independent prediction: the mean target of the
    fit captions) and `attribute_loss` (a prediction that knows the scene: a mixture of the prior and a uniform
    distribution over the BPE ids of the scene's background and objects' colours and shapes, weight fit on the fit
    scenes). A fixed predictor's held-out loss bounds from above what a model could reach from that information."""
    import math
    from collections import defaultdict

    from leanvl.data.synthetic import scene_for_index
    from leanvl.text.labels import encode

    scenes = [scene_for_index(seed, "val", i, size=image_size)[1:] for i in range(n_fit + n_test)]
    ids = encode([caption for caption, _ in scenes])
    named = encode([" ".join([a["background"]] + [f"{o['color']} {o['shape']}" for o in a["objects"]])
                    for _, a in scenes])
    df: dict[int, int] = defaultdict(int)
    for row in ids[:n_fit]:
        for i in row:
            df[i] += 1
    unseen = math.log(n_fit + 1)  # the IDF of an id no fit caption has
    targets = []
    for row in ids:
        w = {i: math.log((n_fit + 1) / (df[i] + 1)) if i in df else unseen for i in row}
        total = sum(w.values()) or 1.0
        targets.append({i: v / total for i, v in w.items() if v > 0})
    prior: dict[int, float] = defaultdict(float)
    for t in targets[:n_fit]:
        for c, p in t.items():
            prior[c] += p / n_fit

    def loss(alpha: float, part: slice) -> float:
        total = 0.0
        for t, own in zip(targets[part], named[part]):
            own_set = set(own)
            for c, p in t.items():
                q = (1 - alpha) * (0.999 * prior.get(c, 0.0) + 0.001 / 49408)
                q += alpha / len(own_set) if c in own_set else 0.0
                total -= p * math.log(q)
        return total / len(targets[part])

    fit, test = slice(0, n_fit), slice(n_fit, n_fit + n_test)
    alpha = min((a / 20 for a in range(1, 20)), key=lambda a: loss(a, fit))
    entropy = -sum(p * math.log(p) for t in targets[test] for p in t.values()) / n_test
    return {"target_entropy": entropy, "prior_loss": loss(0.0, test), "attribute_loss": loss(alpha, test),
            "attribute_weight": alpha, "n_fit": n_fit, "n_test": n_test}


def task_counts(cfg: Any) -> dict[str, dict[str, int]]:
    """Test scenes each probe / k-shot task and each zero-shot task scores (for the intervals)."""
    from leanvl.eval.probe import SYNTHETIC_TASKS, synthetic_split
    from leanvl.eval.zeroshot import synthetic_zeroshot_labels

    _, attrs = synthetic_split("test", cfg.eval_test, cfg.image_size, cfg.seed)
    _, fit = synthetic_split("val", cfg.eval_train, cfg.image_size, cfg.seed)  # a probe scores the classes it saw
    probe = {}
    for t, (keep, label) in SYNTHETIC_TASKS.items():
        seen = {label(a) for a in fit if keep(a)}
        probe[t] = sum(1 for a in attrs if keep(a) and label(a) in seen)
    zeroshot = {t: len(rows) for t, (rows, *_rest) in synthetic_zeroshot_labels(attrs).items()}
    return {"probe": probe, "zeroshot": zeroshot}


def mean_interval(per_task: dict[str, Any], n: dict[str, int]) -> dict[str, Any]:
    """The mean over tasks of per-task accuracies, with each task's 95% Wilson interval and a 95% interval for the
    mean (normal approximation, tasks independent: se = sqrt(sum p(1-p)/n_t) / T)."""
    from leanvl.vlm.metrics import wilson_interval

    tasks = [t for t in n if t in per_task and n[t] > 0]
    mean = sum(per_task[t] for t in tasks) / len(tasks)
    se = sum(per_task[t] * (1 - per_task[t]) / n[t] for t in tasks) ** 0.5 / len(tasks)
    return {"value": mean, "ci": [max(0.0, mean - 1.96 * se), min(1.0, mean + 1.96 * se)],
            "n": sum(n[t] for t in tasks),
            "tasks": {t: {"value": per_task[t], "ci": list(wilson_interval(round(per_task[t] * n[t]), n[t])),
                          "n": n[t]} for t in tasks}}


def compare_report(s: dict[str, Any], rows: list[dict[str, Any]], out: str) -> str:
    """table.md (budget, steps, loss vs floor, probe / 10-shot / zero-shot with intervals) and plot.png (loss and
    in-loop k-NN against training seconds; final accuracies with intervals)."""
    ev = next(r for r in rows if r["cell"] == "evaluate")
    obj, n = ev["objectives"], ev["n"]
    floor = next((r for r in rows if r["cell"] == "superclass-floor"), None)
    clock = "CPU" if s["budget"] == "cpu-seconds" else "wall"
    lines = [f"| objective | steps | train {clock} s (budget {s['seconds']:g}) | process wall s / CPU s | images per "
             f"train {clock} s | final loss (target entropy) | linear probe | 10-shot (mean ± std) | zero-shot |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ENCODERS + ("lit",):
        o = obj["superclass"]["lit"] if name == "lit" else obj[name]
        ent = f" ({o['target_entropy']:.3f})" if o.get("target_entropy") is not None else ""
        head = (f"| {name} | {o['steps']} | {o['train_s']:.1f} | {_num(o['process_wall_s'])} / "
                f"{_num(o['process_cpu_s'])} | {o['steps'] * s['batch_size'] / o['train_s']:.1f} | "
                f"{o['final_loss']:.4f}{ent} |")
        if name == "lit":
            lines.append(head + " (SuperClass's encoder, locked) | | text tower for SuperClass's zero-shot |")
            continue
        zs = obj[name]["zeroshot"]
        lines.append(head + f" {pct(mean_interval(o['probe'], n['probe']))} | {o['fewshot_top1'] * 100:.1f} ± "
                     f"{o['fewshot_top1_std'] * 100:.1f} | {pct(mean_interval(zs, n['zeroshot']))} "
                     f"({o['zeroshot_via']}) |")
    lines += ["", "| linear probe per task | " + " | ".join(n["probe"]) + " |", "|---" * (len(n["probe"]) + 1) + "|"]
    for name in ENCODERS:
        tasks = mean_interval(obj[name]["probe"], n["probe"])["tasks"]
        lines.append(f"| {name} | " + " | ".join(pct(tasks[t]) for t in n["probe"]) + " |")
    seeds = obj["superclass"]["fewshot"]["seeds"]
    lines += ["", f"Probe and zero-shot: mean over tasks, 95% interval (normal approximation from each task's n; "
                  f"per task: Wilson). 10-shot: mean ± std over {seeds} episodes (seeds) "
                  f"of {s['k']} shots per class, averaged over tasks."]
    if floor:
        lines += ["", f"SuperClass loss references from captions alone ({floor['n_test']} held-out captions): target "
                      f"entropy {floor['target_entropy']:.3f} (absolute floor), attribute-aware predictor "
                      f"{floor['attribute_loss']:.3f}, image-independent prior {floor['prior_loss']:.3f}; "
                      f"SuperClass's final training loss {obj['superclass']['final_loss']:.3f}."]
    _plot(s, obj, n, out, floor)
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f}"


def _plot(s: dict[str, Any], obj: dict[str, Any], n: dict[str, Any], out: str,
          floor: dict[str, Any] | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2))
    runs = {name: obj[name] for name in ENCODERS} | {"lit": obj["superclass"]["lit"]}
    for name, o in runs.items():
        per_step = o["train_s"] / max(1, o["steps"])  # training seconds per step (the budget's clock)
        line, = ax1.plot([p[0] * per_step for p in o["loss_curve"]], [p[1] for p in o["loss_curve"]], label=name)
        if o.get("target_entropy") is not None:
            ax1.axhline(o["target_entropy"], ls="--", color=line.get_color(), label=f"{name} target entropy")
        pts = o.get("eval_curve", [])
        if name != "lit" and pts:
            ax2.plot([p["step"] * per_step for p in pts], [100 * p["eval/knn_top1"] for p in pts], "o-",
                     color=line.get_color(), label=f"{name} k-NN")
        zs = [p for p in pts if "eval/zeroshot_top1" in p]
        if zs:
            ax2.plot([p["step"] * per_step for p in zs], [100 * p["eval/zeroshot_top1"] for p in zs], "x:",
                     color=line.get_color(), label=f"{name} zero-shot")
    for key, style in (("prior_loss", ":"), ("attribute_loss", "-.")) if floor else ():
        ax1.axhline(floor[key], ls=style, color="grey", label=f"superclass {key.replace('_', ' ')} (captions only)")
    clock = "CPU" if s["budget"] == "cpu-seconds" else "wall"
    ax1.set(xlabel=f"training {clock} seconds", ylabel="training loss (each objective's own)", yscale="log",
            title="loss curves")
    ax1.legend(fontsize=7)
    ax2.set(xlabel=f"training {clock} seconds", ylabel="in-loop top-1 (%)",
            title=f"in-loop k-NN and zero-shot ({s['eval_n']} scenes per split)")
    ax2.legend(fontsize=7)
    for i, (label, key) in enumerate((("linear probe", "probe"), ("zero-shot", "zeroshot"))):
        ests = [mean_interval(obj[m][key], n[key]) for m in ENCODERS]
        error_bars(ax3, [j + 0.15 * i for j in range(len(ENCODERS))], ests, label, fmt="o")
    ax3.set_xticks(range(len(ENCODERS)), ["superclass\n(zero-shot via LiT)", "clip", "siglip"])
    ax3.set(ylabel="accuracy (%), 95% interval", title=f"{s['seconds']:g} {clock} s per run")
    finish(fig, ax3, out, [])


RECIPES.register("superclass-vs-clip", Recipe(
    "superclass-vs-clip", "SuperClass vs CLIP vs SigLIP (+ LiT zero-shot) at an equal training budget of seconds "
    "per run (CPU seconds on a CPU), same encoder, data order, batch and lr", compare_settings, compare_cells,
    compare_report))
