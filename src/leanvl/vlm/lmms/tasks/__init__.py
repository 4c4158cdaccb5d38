"""Local lmms-eval tasks from leanvl's evaluation questions (built-in synthetic VQA or a LLaVA json).

`write_tasks(items, DIR)` writes, per split (reasoning / ocr / a json's own splits), a task `leanvl_vqa_<split>`:
`<task>.yaml` (dataset_path json + a local data file, test split, generate_until), `<task>.jsonl` (question,
answer, split, kind, absolute image path), the PNG images, and `utils.py` (the doc/metric functions below).
Metrics: `exact_match` (leanvl's normalised exact match, the same as `vlm eval`) and `relaxed_match` (contains).
Nothing touches the hub: pass DIR as lmms-eval's `--include_path` with HF_DATASETS_OFFLINE=1.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any

from leanvl.errors import LeanvlError

PREFIX = "leanvl_vqa_"
_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
process_results: !function utils.process_results
generation_kwargs:
  max_new_tokens: {max_new_tokens}
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
  - metric: relaxed_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
_UTILS = "from leanvl.vlm.lmms.tasks import doc_to_text, doc_to_visual, process_results  # noqa: F401\n"


def task_name(split: str) -> str:
    """`leanvl_vqa_<split>` with anything but letters, digits and _ replaced by _."""
    return PREFIX + re.sub(r"\W", "_", split.lower())


def write_tasks(items: list[dict[str, Any]], out_dir: str, *, max_new_tokens: int = 8) -> dict[str, int]:
    """Write one lmms-eval task per split of `items` (see module docstring); returns {task: n_questions}."""
    if not items:
        raise LeanvlError("no questions to write as lmms-eval tasks")
    out_dir = os.path.abspath(out_dir)
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {}
    for i, it in enumerate(items):
        path = os.path.join(out_dir, "images", f"q{i:05d}.png")
        it["image"].convert("RGB").save(path)
        rows.setdefault(task_name(it["split"]), []).append(
            {"id": i, "question": it["question"], "answer": it["answer"], "split": it["split"],
             "kind": it.get("kind", ""), "image": path})
    for task, docs in rows.items():
        data = os.path.join(out_dir, f"{task}.jsonl")
        with open(data, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(d) + "\n" for d in docs)
        with open(os.path.join(out_dir, f"{task}.yaml"), "w", encoding="utf-8") as f:
            f.write(_YAML.format(task=task, data=json.dumps(data), max_new_tokens=max_new_tokens))
    with open(os.path.join(out_dir, "utils.py"), "w", encoding="utf-8") as f:
        f.write(_UTILS)
    return {t: len(d) for t, d in sorted(rows.items())}


def doc_to_visual(doc: dict[str, Any]) -> list[Any]:
    """The question's image (opened from its absolute path)."""
    from PIL import Image

    return [Image.open(doc["image"]).convert("RGB")]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    """The question as `vlm eval` asks it (the adapter adds the `<image>` slot and the chat template)."""
    return doc["question"]


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """leanvl's normalised exact match and relaxed (contains) match of the first generation."""
    from leanvl.vlm.vqa_data import contains_answer, is_correct

    pred = results[0] if results else ""
    return {"exact_match": float(is_correct(pred, doc["answer"])),
            "relaxed_match": float(contains_answer(pred, doc["answer"]))}
