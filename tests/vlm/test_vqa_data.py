"""Built-in VQA: every answer follows from the scene attributes; splits; normalisation; LLaVA json validation."""
import json
import random
import re

import pytest

from leanvl.data.synthetic import scene_for_index
from leanvl.errors import DataError
from leanvl.vlm.batches import LlavaJsonSource
from leanvl.vlm.vqa_data import (SUFFIX, contains_answer, eval_questions, is_correct, normalize_answer, questions_for,
                                 reasoning_question)


def _check(qa, attrs):
    objs = attrs["objects"]
    q = qa["question"][: -len(SUFFIX)]
    if qa["kind"] == "count":
        assert qa["answer"] == str(len(objs))
    elif qa["kind"] == "color":
        shape = q.split("the ")[1].rstrip("?")
        assert [o["color"] for o in objs if o["shape"] == shape] == [qa["answer"]]
    elif qa["kind"] == "shape":
        color = q.split("the ")[1].split(" object")[0]
        assert [o["shape"] for o in objs if o["color"] == color] == [qa["answer"]]
    elif qa["kind"] == "exists":
        words = q.rstrip("?").split()
        present = any(o["color"] == words[-2] and o["shape"] == words[-1] for o in objs)
        assert qa["answer"] == ("yes" if present else "no")
    elif qa["kind"] == "position":
        a, b = re.fullmatch(r"Is the (\w+ \w+) (?:left or right of|above or below) the (\w+ \w+)\?", q).groups()
        oa = next(o for o in objs if f"{o['color']} {o['shape']}" == a.strip())
        ob = next(o for o in objs if f"{o['color']} {o['shape']}" == b.strip())
        expect = {"left": oa["x"] < ob["x"], "right": oa["x"] > ob["x"], "above": oa["y"] < ob["y"],
                  "below": oa["y"] > ob["y"]}
        assert expect[qa["answer"]]
    else:
        assert qa["kind"] == "ocr" and qa["answer"] == attrs["word"]
    assert qa["split"] == ("ocr" if qa["kind"] == "ocr" else "reasoning")


def test_answers_follow_from_attrs():
    kinds = set()
    for i in range(150):
        _, _, attrs = scene_for_index(0, "train", i)
        for qa in [questions_for(attrs, random.Random(i))] + eval_questions(attrs, random.Random(-i)):
            _check(qa, attrs)
            kinds.add(qa["kind"])
    assert kinds == {"count", "color", "shape", "exists", "position", "ocr"}


def test_ocr_only_with_a_word_and_eval_has_both_splits():
    for i in range(40):
        _, _, attrs = scene_for_index(0, "test", i)
        qs = eval_questions(attrs, random.Random(i))
        assert [q["split"] for q in qs] == (["reasoning", "ocr"] if attrs["word"] else ["reasoning"])
    assert reasoning_question({"objects": [], "word": None}, random.Random(0))["kind"] in ("count", "exists")


def test_normalisation():
    assert normalize_answer(" The Red.\nmore") == "red"
    assert is_correct("Three", "3") and is_correct("yes!", "Yes") and not is_correct("red circle", "red")
    assert normalize_answer("") == ""
    assert contains_answer("The star is red.", "red") and not contains_answer("reddish", "red")


def test_llava_json_validation(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    good = [{"image": "a.png", "conversations": [{"from": "human", "value": "<image>\nq"},
                                                  {"from": "gpt", "value": "a"}]}]
    (tmp_path / "good.json").write_text(json.dumps(good))
    src = LlavaJsonSource(str(tmp_path / "good.json"))
    assert src.decode(0).attrs["conversations"] == good[0]["conversations"]
    cases = {"noconv.json": ([{"image": "a.png"}], "no 'conversations'"),
             "noimg.json": ([{"image": "b.png", "conversations": []}], "image file\\(s\\) missing"),
             "notlist.json": ({"a": 1}, "non-empty json list")}
    for name, (data, match) in cases.items():
        (tmp_path / name).write_text(json.dumps(data))
        with pytest.raises(DataError, match=match):
            LlavaJsonSource(str(tmp_path / name))
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(DataError, match="not valid json"):
        LlavaJsonSource(str(tmp_path / "broken.json"))


def test_conversation_without_answer_turns_is_skipped_as_no_turns(tmp_path):
    from PIL import Image

    from leanvl.data.sample import SkipSample

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    entries = [{"image": "a.png", "conversations": []},
               {"image": "a.png", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": " "}]},
               {"image": "a.png", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "x"}]}]
    (tmp_path / "d.json").write_text(json.dumps(entries))
    src = LlavaJsonSource(str(tmp_path / "d.json"), shuffle=False)
    for i in (0, 1):
        with pytest.raises(SkipSample) as info:
            src.decode(i)
        assert info.value.reason == "no_turns"
    assert src.decode(2).caption == "x"
    (tmp_path / "bad.json").write_text(json.dumps([{"image": "a.png", "conversations": [{"from": "gpt"}]}]))
    with pytest.raises(DataError, match="string 'from' and 'value'"):
        LlavaJsonSource(str(tmp_path / "bad.json"))


def test_binding_questions_name_one_object_of_several():
    from leanvl.vlm.vqa_data import binding_question

    seen = 0
    for i in range(60):
        _, _, attrs = scene_for_index(0, "test", i, size=64)
        qa = binding_question(attrs, random.Random(i))
        if len(attrs["objects"]) < 2:
            assert qa is None
            continue
        if qa is None:
            continue
        seen += 1
        assert qa["kind"] == "binding" and qa["split"] == "reasoning"
        objs, q = attrs["objects"], qa["question"]
        match = [o for o in objs if f"the {o['shape']}?" in q] if q.startswith("What color") else \
            [o for o in objs if f"the {o['color']} object" in q]
        assert len(match) == 1 and qa["answer"] == (match[0]["color"] if q.startswith("What color")
                                                    else match[0]["shape"])
    assert seen > 20


def test_binding_data_spec_tags_scenes_and_rejects_unknown_sets():
    from leanvl.errors import LeanvlError
    from leanvl.vlm.evaluate import eval_items

    items = eval_items("synthetic+binding", image_size=32, limit=60)
    kinds = {it["kind"] for it in items}
    assert "binding" in kinds and "ocr" not in kinds
    with pytest.raises(LeanvlError, match="unknown question set"):
        eval_items("synthetic+nope", image_size=32, limit=4)
