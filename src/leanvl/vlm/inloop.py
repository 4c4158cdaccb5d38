"""`vlm train --eval-every N`: VQA on held-out questions with the model being trained (no reload).

The held-out questions are read once (`--eval-data`, default the built-in synthetic VQA *test* split, which training
on `synthetic` never sees); every N steps the trainer's evaluator hook answers them with the live model and logs
`eval/accuracy`, `eval/acc_<split>`, `eval/n` (and, with `--eval-lmms-tasks`, `eval/<task>/<metric>` from an
in-process lmms-eval run on the same questions).
"""
from __future__ import annotations

from typing import Any, Callable

from leanvl.errors import LeanvlError


def vlm_evaluator(model: Any, *, data: str, limit: int, seed: int, batch_size: int,
                  lmms_tasks: str = "") -> Callable[[Any, int], dict[str, float]]:
    """The evaluator hook for `leanvl.train.loop.train` (items are loaded now, so bad input fails before training)."""
    from leanvl.vlm.evaluate import eval_items, evaluate

    if limit < 1:
        raise LeanvlError(f"--eval-limit must be >= 1, got {limit}")
    items = eval_items(data or "synthetic", image_size=model.cfg.image_size, limit=limit, seed=seed)
    tasks: list[str] = []
    if lmms_tasks:
        from leanvl.vlm.lmms.run import _require_lmms, parse_tasks

        _require_lmms()
        tasks = parse_tasks(lmms_tasks)

    def evaluator(task: Any, step: int) -> dict[str, float]:
        result, _ = evaluate(task, items, batch_size=batch_size)
        out = {"accuracy": result["overall"], "n": float(len(items))}
        out.update({f"acc_{k}": v for k, v in result["splits"].items()})
        if tasks:
            from leanvl.vlm.lmms.run import run_local_tasks

            lm = run_local_tasks(task, items, tasks, batch_size=batch_size)
            for name, metrics in lm["tasks"].items():
                out.update({f"{name}/{k}": v for k, v in metrics.items() if not k.endswith("_clt")})
        return out

    return evaluator
