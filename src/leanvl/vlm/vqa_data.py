"""Built-in VQA from synthetic scene attributes, answer normalisation, and LLaVA json reading/writing.

Question kinds and their split: colour, shape, count, position (relative left/right/above/below), existence ->
`reasoning`; the rendered word -> `ocr`. Every question is a pure function of (attrs, rng), answers are one word.

Question set `binding` (scenes tagged `attrs["questions"] = "binding"`, e.g. `--data synthetic+binding`): in a
scene with 2-4 objects, the colour of the object named by its shape or the shape of the object named by its colour
(kind `binding`, split `reasoning`): the answer needs the one object the question names out of several. Scenes with
one object (or no uniquely named one) fall back to the default reasoning question; tagged scenes get no OCR question.

Question set `ocr` (`--data synthetic+ocr`): half of the scenes (a pure function of seed, split and index) are a
2 x 2 grid of capitals (leanvl.data.synthetic.ocr_grid_for_index, attrs `grid`), asked "What letter is in the
top-left corner?" (kind `letter`, split `ocr`, a one-letter answer); the other half are the ordinary scenes, asked
one reasoning question (no word question). A single pooled token can hold which letters a grid has, not where.
"""
from __future__ import annotations

import json
import os
import random
import re
from typing import Any

from leanvl.vlm.metrics import contains_answer, is_correct, normalize_answer, option_index  # noqa: F401
from leanvl.errors import DataError, LeanvlError

SUFFIX = " Answer with one word."
REASONING_KINDS = ("color", "shape", "count", "position", "exists")
SPLITS = ("reasoning", "ocr")

def _vocab() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from leanvl.data.synthetic import COLORS, SHAPES

    return tuple(COLORS), tuple(SHAPES)


def _qa(question: str, answer: str, kind: str) -> dict[str, str]:
    return {"question": question + SUFFIX, "answer": answer, "kind": kind,
            "split": "ocr" if kind == "ocr" else "reasoning"}


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _unique(objects: list[dict], key: str) -> list[dict]:
    counts: dict[str, int] = {}
    for o in objects:
        counts[o[key]] = counts.get(o[key], 0) + 1
    return [o for o in objects if counts[o[key]] == 1]


def _position(objects: list[dict], rng: random.Random) -> dict[str, str] | None:
    a, b = rng.sample(objects, 2)
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    na, nb = f"{a['color']} {a['shape']}", f"{b['color']} {b['shape']}"
    if max(abs(dx), abs(dy)) < 0.1:
        return None
    if abs(dx) >= abs(dy):
        return _qa(f"Is the {na} left or right of the {nb}?", "left" if dx < 0 else "right", "position")
    return _qa(f"Is the {na} above or below the {nb}?", "above" if dy < 0 else "below", "position")


def reasoning_question(attrs: dict[str, Any], rng: random.Random) -> dict[str, str]:
    """One reasoning question about the scene (kind drawn uniformly among those the scene supports)."""
    objects = attrs.get("objects") or []
    colors, shapes = _vocab()
    options: list[dict[str, str] | None] = [_qa("How many shapes are there?", str(len(objects)), "count")]
    by_shape, by_color = _unique(objects, "shape"), _unique(objects, "color")
    if by_shape:
        o = rng.choice(by_shape)
        options.append(_qa(f"What color is the {o['shape']}?", o["color"], "color"))
    if by_color:
        o = rng.choice(by_color)
        options.append(_qa(f"What shape is the {o['color']} object?", o["shape"], "shape"))
    if len(objects) >= 2:
        options.append(_position(objects, rng))
    present = {(o["color"], o["shape"]) for o in objects}
    if objects and rng.random() < 0.5:
        c, s = rng.choice(sorted(present))
        options.append(_qa(f"Is there {_a(c)} {s}?", "yes", "exists"))
    else:
        absent = [(c, s) for c in colors for s in shapes if (c, s) not in present]
        c, s = rng.choice(absent)
        options.append(_qa(f"Is there {_a(c)} {s}?", "no", "exists"))
    return rng.choice([o for o in options if o is not None])


def binding_question(attrs: dict[str, Any], rng: random.Random) -> dict[str, str] | None:
    """The attribute of one named object among 2+ objects (kind `binding`); None when the scene has no such one."""
    objects = attrs.get("objects") or []
    if len(objects) < 2:
        return None
    options = [("shape", o) for o in _unique(objects, "shape")] + [("color", o) for o in _unique(objects, "color")]
    if not options:
        return None
    by, o = rng.choice(options)
    if by == "shape":
        return _qa(f"What color is the {o['shape']}?", o["color"], "binding")
    return _qa(f"What shape is the {o['color']} object?", o["shape"], "binding")


CORNERS = (("top", "left"), ("top", "right"), ("bottom", "left"), ("bottom", "right"))


def letter_question(attrs: dict[str, Any], rng: random.Random) -> dict[str, str]:
    """'What letter is in the top-left corner?' of a 2 x 2 letter grid (kind `letter`, split `ocr`); a larger grid
    is asked by row and column ('What letter is in row R, column C?', from 1)."""
    rows = attrs["grid"]
    r, c = rng.randrange(len(rows)), rng.randrange(len(rows[0]))
    if len(rows) == 2 and len(rows[0]) == 2:
        where = "the {}-{} corner".format(*CORNERS[2 * r + c])
    else:
        where = f"row {r + 1}, column {c + 1}"
    return {"question": f"What letter is in {where}? Answer with one letter.", "answer": rows[r][c],
            "kind": "letter", "split": "ocr"}


def _reasoning(attrs: dict[str, Any], rng: random.Random) -> dict[str, str]:
    """The scene's question set: a binding question when tagged and possible, else a default reasoning one."""
    if attrs.get("questions") == "binding":
        qa = binding_question(attrs, rng)
        if qa is not None:
            return qa
    return reasoning_question(attrs, rng)


def ocr_question(attrs: dict[str, Any]) -> dict[str, str] | None:
    """'What word is written in the image?' when the scene has a word, else None."""
    word = attrs.get("word")
    return _qa("What word is written in the image?", str(word), "ocr") if word else None


def questions_for(attrs: dict[str, Any], rng: random.Random, *, ocr_share: float = 0.5) -> dict[str, str]:
    """One question for training: OCR with probability `ocr_share` when the scene has a word, else reasoning (a
    letter grid's question is always its letter question)."""
    if attrs.get("grid"):
        return letter_question(attrs, rng)
    ocr = None if attrs.get("questions") else ocr_question(attrs)
    if ocr is not None and rng.random() < ocr_share:
        return ocr
    return _reasoning(attrs, rng)


def eval_questions(attrs: dict[str, Any], rng: random.Random) -> list[dict[str, str]]:
    """Evaluation questions of one scene: one reasoning question, plus the OCR question when there is a word (a
    letter grid: its one letter question)."""
    if attrs.get("grid"):
        return [letter_question(attrs, rng)]
    out = [_reasoning(attrs, rng)]
    ocr = None if attrs.get("questions") else ocr_question(attrs)
    if ocr is not None:
        out.append(ocr)
    return out


def conversation(question: str, answer: str) -> list[dict[str, str]]:
    """A single-turn LLaVA conversation about one image."""
    return [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}]


def caption_conversation(caption: str) -> list[dict[str, str]]:
    """Stage-1 (alignment) conversation: describe the image -> its caption."""
    return conversation("Describe the image briefly.", caption)


# ----- LLaVA json --------------------------------------------------------------------------------------------------
def read_llava_json(path: str) -> tuple[list[dict[str, Any]], str]:
    """Entries of a LLaVA json file (validated) and the directory images are relative to."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise LeanvlError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid json ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list) or not data:
        raise DataError(f"{path}: expected a non-empty json list of LLaVA entries")
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("conversations"), list):
            raise DataError(f"{path}: entry {i} has no 'conversations' list")
        if not all(isinstance(t, dict) and isinstance(t.get("from"), str) and isinstance(t.get("value"), str)
                   for t in entry["conversations"]):
            raise DataError(f"{path}: entry {i}: every conversation turn needs string 'from' and 'value'")
        if not entry.get("image") or not isinstance(entry["image"], str):
            raise DataError(f"{path}: entry {i} has no 'image' (text-only entries are not supported)")
        _check_references(f"{path}: entry {i}", entry)
    return data, os.path.dirname(os.path.abspath(path))


def _strings(where: str, key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, (str, int, float)) for v in value):
        raise DataError(f"{where}: '{key}' must be a non-empty list of strings")
    return [str(v) for v in value]


def _check_references(where: str, entry: dict[str, Any]) -> None:
    """Validate (and canonicalise in place) an entry's optional `answers` list and `options` (list, or a dict
    keyed A, B, ... in order); a multiple-choice answer must name one of the options by letter or text."""
    if "answers" in entry:
        entry["answers"] = _strings(where, "answers", entry["answers"])
    if "options" not in entry:
        return
    options = entry["options"]
    if isinstance(options, dict):
        letters = [chr(ord("A") + k) for k in range(len(options))]
        if sorted(options) != letters:
            raise DataError(f"{where}: 'options' keys must be {', '.join(letters)}; got {', '.join(sorted(options))}")
        options = [options[k] for k in letters]
    entry["options"] = _strings(where, "options", options)
    if len(entry["options"]) < 2:
        raise DataError(f"{where}: 'options' needs at least 2 choices")
    
    gold = (entry.get("answers") or [next((t.get("value", "") for t in entry["conversations"]
                                           if t.get("from") in ("gpt", "assistant")), "")])[0]
    if option_index(gold, entry["options"]) is None:
        raise DataError(f"{where}: answer {gold!r} names none of its 'options' (give the letter or the text)")


def write_llava_json(entries: list[dict[str, Any]], path: str) -> None:
    """Write LLaVA json atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=1)
    os.replace(tmp, path)
