"""`synthetic+ocr`: letter grids at known cells, deterministic, their questions answerable from the attrs, and the
non-grid scenes exactly the plain `synthetic` scenes (existing specs render unchanged)."""
import random
import re

import pytest

from leanvl.data import synthetic
from leanvl.errors import LeanvlError
from leanvl.vlm.batches import open_vlm_source
from leanvl.vlm.evaluate import eval_items
from leanvl.vlm.vqa_data import eval_questions, letter_question, questions_for


def _decode(spec, i, split="train"):
    source = open_vlm_source(spec, image_size=64, seed=3, split=split, shuffle=False)
    return source.decode(source.at(i))


def test_grid_scenes_are_deterministic_and_half_of_the_scenes():
    grids = [i for i in range(200) if synthetic.is_ocr_grid(3, "train", i)]
    assert 70 < len(grids) < 130
    a, b = _decode("synthetic+ocr", grids[0]), _decode("synthetic+ocr", grids[0])
    assert a.image.tobytes() == b.image.tobytes() and a.caption == b.caption and a.attrs == b.attrs
    assert a.image.size == (64, 64) and a.attrs["questions"] == "ocr"
    rows = a.attrs["grid"]
    assert len(rows) == synthetic.OCR_GRID and all(len(r) == synthetic.OCR_GRID for r in rows)
    assert set("".join(rows)) <= set(synthetic.OCR_ALPHABET) and " ".join(rows[0]) in a.caption
    other = _decode("synthetic+ocr", grids[1])
    assert other.attrs["grid"] != rows and other.image.tobytes() != a.image.tobytes()
    assert _decode("synthetic+ocr", grids[0], split="test").attrs != a.attrs  # splits are disjoint streams


def test_letters_are_drawn_in_their_cells():
    """Each cell has ink, and the same letters at the same cells draw the same pixels whatever the other cells."""
    import numpy as np

    image, _, attrs = synthetic.ocr_grid_for_index(0, "train", 5, size=64)
    arr = np.asarray(image).astype(int)
    bg = np.array(synthetic.BACKGROUNDS[attrs["background"]])
    ink = np.abs(arr - bg).sum(-1) > 100
    cell = 64 // synthetic.OCR_GRID
    for r in range(synthetic.OCR_GRID):
        for c in range(synthetic.OCR_GRID):
            assert ink[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell].sum() >= 8, (r, c)


def test_non_grid_scenes_are_the_plain_synthetic_scenes():
    plain = [i for i in range(40) if not synthetic.is_ocr_grid(3, "train", i)][:5]
    for i in plain:
        tagged, base = _decode("synthetic+ocr", i), _decode("synthetic", i)
        assert tagged.image.tobytes() == base.image.tobytes() and tagged.caption == base.caption
        assert tagged.key == base.key and {**base.attrs, "questions": "ocr"} == tagged.attrs


def test_letter_questions_are_answerable_from_the_attrs():
    items = eval_items("synthetic+ocr", image_size=32, limit=60, seed=0)
    letters = [it for it in items if it["split"] == "ocr"]
    assert letters and all(it["kind"] == "letter" for it in letters)
    assert {it["kind"] for it in items if it["split"] == "reasoning"} <= {"color", "shape", "count", "position",
                                                                           "exists"}
    source = open_vlm_source("synthetic+ocr", image_size=32, seed=0, split="test", shuffle=False)
    for i in [i for i in range(30) if synthetic.is_ocr_grid(0, "test", i)]:
        attrs = source.decode(i).attrs
        for qa in eval_questions(attrs, random.Random(i)) + [questions_for(attrs, random.Random(i))]:
            v, h = re.search(r"the (top|bottom)-(left|right) corner", qa["question"]).groups()
            assert qa["answer"] == attrs["grid"][v == "bottom"][h == "right"] and len(qa["answer"]) == 1


def test_larger_grids_are_asked_by_row_and_column():
    attrs = {"objects": [], "grid": ["ABC", "DEH", "KMO"]}
    for seed in range(10):
        qa = letter_question(attrs, random.Random(seed))
        r, c = map(int, re.search(r"row (\d), column (\d)", qa["question"]).groups())
        assert qa["answer"] == attrs["grid"][r - 1][c - 1] and qa["split"] == "ocr"


def test_ocr_set_needs_synthetic_scenes():
    with pytest.raises(LeanvlError, match="unknown question set"):
        open_vlm_source("synthetic+words", image_size=32)
    with pytest.raises(LeanvlError, match=r"\+ocr applies to synthetic"):
        open_vlm_source("synthetic+binding+ocr", image_size=32)
