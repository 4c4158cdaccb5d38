"""Run lmms-eval tasks in-process on a loaded leanvl VLM (`vlm eval --lmms-tasks`, `vlm train --eval-lmms-tasks`)."""
from __future__ import annotations

import os
import tempfile
from typing import Any

from leanvl.errors import LeanvlError


def _require_lmms() -> None:
    try:
        import lmms_eval  # noqa: F401
    except ImportError:
        raise LeanvlError("lmms-eval is not installed: pip install 'leanvl[lmms]'") from None


def parse_tasks(text: str) -> list[str]:
    """'a,b' -> ['a', 'b']; LeanvlError when empty."""
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    if not tasks:
        raise LeanvlError("--lmms-tasks needs at least one task name, e.g. leanvl_vqa_reasoning,leanvl_vqa_ocr")
    return tasks


def summarize(results: dict[str, Any], tasks: list[str]) -> dict[str, Any]:
    """{task: {metric: value}} (lmms-eval's `metric,filter` keys without the filter; stderr kept), throughput."""
    out: dict[str, Any] = {}
    for task in tasks:
        raw = results.get("results", {}).get(task, {})
        out[task] = {k.split(",")[0]: v for k, v in raw.items() if "," in k and isinstance(v, (int, float))}
        if task in results.get("n-samples", {}):
            out[task]["n"] = results["n-samples"][task].get("effective")
    return {"tasks": out, "throughput": results.get("throughput", {})}


def run_lmms(model: Any, tasks: list[str], *, include_path: str | None = None, batch_size: int = 16,
             max_new_tokens: int = 8, limit: int | None = None) -> dict[str, Any]:
    """Score `tasks` with lmms-eval's evaluator on the already loaded `model` (no reload); returns `summarize`."""
    _require_lmms()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from leanvl.vlm.lmms.models.leanvl import LeanvlLMMS

    manager = TaskManager("ERROR", include_path=include_path)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise LeanvlError(f"unknown lmms-eval task(s) {', '.join(unknown)} (local tasks: leanvl vlm lmms-task)")
    was = model.training
    model.eval()
    try:
        lm = LeanvlLMMS(model=model, batch_size=batch_size, max_new_tokens=max_new_tokens)
        results = simple_evaluate(model=lm, tasks=tasks, task_manager=manager, batch_size=batch_size, limit=limit,
                                  verbosity="ERROR", bootstrap_iters=0)
    finally:
        model.train(was)
    return summarize(results or {}, tasks)


def run_local_tasks(model: Any, items: list[dict[str, Any]], tasks: list[str], **kw: Any) -> dict[str, Any]:
    """Write `items` as local leanvl_vqa_* tasks in a temporary directory and score `tasks` on them."""
    from leanvl.vlm.lmms.tasks import write_tasks

    with tempfile.TemporaryDirectory(prefix="leanvl-lmms-") as tmp:
        write_tasks(items, tmp, max_new_tokens=kw.get("max_new_tokens", 8))
        return run_lmms(model, tasks, include_path=tmp, **kw)
