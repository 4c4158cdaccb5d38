"""Score predictions against VQA references: per-question records and each metric per split/kind with its 95% interval.

Which questions a metric covers: exact match, ANLS and the relaxed (contains) match cover every question; VQAv2
soft accuracy the questions with >= 2 reference answers; multiple-choice accuracy the questions with `options`.
"""
from __future__ import annotations

from typing import Any, Sequence

from leanvl.errors import DataError
from leanvl.vlm.metrics import (anls, bootstrap_interval, exact_match, multiple_choice_correct, vqa_soft_accuracy,
                                wilson_interval)
from leanvl.vlm.vqa_data import contains_answer

# metric -> (interval kind, is it a proportion)
METRICS = {"exact_match": "wilson", "vqa_accuracy": "bootstrap", "anls": "bootstrap", "mc_accuracy": "wilson"}


def references(item: dict[str, Any]) -> list[str]:
    """An item's reference answers: its `answers` list, else its single `answer`."""
    answers = item.get("answers")
    return [str(a) for a in answers] if answers else [str(item.get("answer", ""))]


def score_record(prediction: str, item: dict[str, Any]) -> dict[str, Any]:
    """One per-question record: the item's fields, the prediction and every metric that applies to it."""
    refs, options = references(item), item.get("options") or []
    rec = {"question": item.get("question", ""), "answer": refs[0], "prediction": prediction,
           "split": item.get("split") or "all", "kind": item.get("kind", ""),
           "correct": exact_match(prediction, refs), "contains": any(contains_answer(prediction, r) for r in refs),
           "anls": anls(prediction, refs)}
    if len(refs) >= 2:
        rec["answers"] = refs
        rec["vqa_accuracy"] = vqa_soft_accuracy(prediction, refs)
    if options:
        rec["options"] = list(options)
        try:
            rec["mc_correct"] = multiple_choice_correct(prediction, refs[0], options)
        except ValueError as exc:
            raise DataError(f"question {rec['question'][:60]!r}: {exc}") from None
    return rec


def _field(metric: str) -> str:
    return {"exact_match": "correct", "mc_accuracy": "mc_correct"}.get(metric, metric)


def estimate(values: Sequence[float], interval: str, seed: int = 0) -> dict[str, Any]:
    """Mean, 95% interval and count of one group's scores."""
    n = len(values)
    mean = sum(values) / n
    lo, hi = wilson_interval(round(sum(values)), n) if interval == "wilson" else bootstrap_interval(values, seed=seed)
    return {"value": mean, "ci": [lo, hi], "n": n}


def _groups(records: list[dict[str, Any]], key: str, field: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in records:
        if field in r and r.get(key):
            out.setdefault(r[key], []).append(float(r[field]))
    return dict(sorted(out.items()))


def metric_table(records: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """{metric: {interval, overall, splits, kinds}} for every metric that covers at least one record."""
    out: dict[str, Any] = {}
    for metric, interval in METRICS.items():
        field = _field(metric)
        values = [float(r[field]) for r in records if field in r]
        if not values:
            continue
        entry = {"interval": interval, "overall": estimate(values, interval, seed),
                 "splits": {k: estimate(v, interval, seed) for k, v in _groups(records, "split", field).items()}}
        kinds = _groups(records, "kind", field)
        if kinds:
            entry["kinds"] = {k: estimate(v, interval, seed) for k, v in kinds.items()}
        out[metric] = entry
    return out


def format_table(metrics: dict[str, Any]) -> str:
    """The metric table as aligned text: metric, group, value, 95% interval, n."""
    lines = [f"{'metric':<13} {'group':<20} {'value':>6}  {'95% CI':<16} {'n':>5}"]
    for metric, entry in metrics.items():
        rows = [("overall", entry["overall"])] + [(f"split {k}", v) for k, v in entry["splits"].items()]
        rows += [(f"kind {k}", v) for k, v in entry.get("kinds", {}).items()]
        for group, est in rows:
            ci = f"[{est['ci'][0]:.3f}, {est['ci'][1]:.3f}]"
            lines.append(f"{metric:<13} {group:<20} {est['value']:>6.3f}  {ci:<16} {est['n']:>5}")
    return "\n".join(lines)


def _rates(records: list[dict[str, Any]], key: str, field: str) -> dict[str, float]:
    return {k: sum(v) / len(v) for k, v in _groups(records, key, field).items()}


def summarise(records: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """The eval result: exact-match `overall`, `splits`, `counts`, `kinds`, `relaxed` (as before) and `metrics`."""
    out: dict[str, Any] = {"splits": _rates(records, "split", "correct"),
                           "overall": sum(r["correct"] for r in records) / len(records)}
    counts: dict[str, int] = {}
    for r in records:
        counts[r["split"]] = counts.get(r["split"], 0) + 1
    out["counts"] = dict(sorted(counts.items()))
    if all(r.get("kind") for r in records):
        out["kinds"] = _rates(records, "kind", "correct")
    out["relaxed"] = {"splits": _rates(records, "split", "contains"),
                      "overall": sum(r["contains"] for r in records) / len(records)}
    out["metrics"] = metric_table(records, seed)
    return out


def score(predictions: Sequence[str], items: Sequence[dict[str, Any]], seed: int = 0
          ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score predictions against items (`answer` or `answers`, optional `options`, `split`, `kind`):
    returns (summary dict, per-question records)."""
    if len(predictions) != len(items):
        raise ValueError(f"{len(predictions)} predictions for {len(items)} items")
    if not items:
        raise ValueError("nothing to score")
    records = [score_record(p, it) for p, it in zip(predictions, items)]
    return summarise(records, seed), records
