"""VQA metrics against hand-computed values; intervals; scoring records per split/kind; LLaVA json references."""
import json

import pytest

from leanvl.errors import DataError
from leanvl.vlm.metrics import (anls, bootstrap_interval, exact_match, levenshtein, multiple_choice_correct,
                                option_index, vqa_normalize, vqa_soft_accuracy, wilson_interval)
from leanvl.vlm.scoring import format_table, score


def test_vqa_normalisation_is_the_official_one():
    assert vqa_normalize("Two.") == "2"
    assert vqa_normalize("The Dog!") == "dog"
    assert vqa_normalize("dont") == "don't"           # contractions map
    assert vqa_normalize("none") == "0"               # manual map
    assert vqa_normalize("1,000") == "1000"           # a digit comma removes punctuation instead of spacing it
    assert vqa_normalize("black/white") == "black white"
    assert vqa_normalize("3.5") == "3.5"              # a period between digits stays


def test_vqav2_soft_accuracy_ten_answers_hand_computed():
    # 2 of 10 humans said "2": leaving out one of those two -> 1 match -> 1/3 (2 subsets); leaving out any of the
    # 8 others -> 2 matches -> 2/3 (8 subsets); mean = (2/3 + 16/3) / 10 = 0.6
    refs = ["2", "two", "3", "3", "3", "3", "4", "4", "4", "4"]
    assert vqa_soft_accuracy("Two.", refs) == pytest.approx(0.6)
    # 3 of 10: (3 * 2/3 + 7 * 1) / 10 = 0.9; 4 or more of 10: 1.0; none: 0
    refs3 = ["dog"] * 3 + ["cat"] * 7
    assert vqa_soft_accuracy("the dog", refs3) == pytest.approx(0.9)
    assert vqa_soft_accuracy("cat", refs3) == pytest.approx(1.0)
    assert vqa_soft_accuracy("bird", refs3) == 0.0
    # 1 of 10: 9 subsets with 1 match -> 9 * (1/3) / 10 = 0.3
    assert vqa_soft_accuracy("dont", ["don't"] + ["no"] * 9) == pytest.approx(0.3)


def test_anls_near_misses_hand_computed():
    assert levenshtein("kitten", "sitting") == 3
    assert anls("hel1o", ["hello"]) == pytest.approx(0.8)        # 1 edit / 5 chars
    assert anls("hxllx", ["hello"]) == pytest.approx(0.6)        # 2 / 5
    assert anls("HELLO ", ["hello"]) == 1.0                      # case and outer whitespace ignored
    assert anls("ab", ["ax"]) == 0.0                             # NL = 0.5 reaches the threshold
    assert anls("abc", ["xyz"]) == 0.0
    assert anls("helps", ["hello", "help"]) == pytest.approx(0.8)  # max over references (help: 1 / 5)
    assert anls("", [""]) == 1.0


def test_multiple_choice_letter_and_text_answers():
    options = ["cat", "dog", "bird"]
    for pred in ("B", "(B)", "B.", "B. dog", "dog", "The dog.", "b"):
        assert multiple_choice_correct(pred, "B", options), pred
        assert multiple_choice_correct(pred, "dog", options), pred   # gold given as text, too
    for pred in ("A", "cat", "cat or dog", "D", "horse"):
        assert not multiple_choice_correct(pred, "B", options), pred
    assert option_index("A cat", ["a cat", "a dog"]) == 0               # text before letter: "A cat" is option 0
    with pytest.raises(ValueError, match="names none"):
        multiple_choice_correct("B", "E", options)


def test_exact_match_any_reference():
    assert exact_match("Two", ["2"]) and exact_match("a red one", ["blue", "red one"])
    assert not exact_match("red", ["blue"])


def test_wilson_against_table_values():
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 3), round(hi, 3)) == (0.490, 0.943)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and round(hi, 3) == 0.278


def test_bootstrap_interval_seeded_and_narrows_with_n():
    scores = [0.0, 0.2, 0.5, 0.8, 1.0, 0.6, 0.4, 0.9]
    a = bootstrap_interval(scores, seed=1)
    assert a == bootstrap_interval(scores, seed=1) and a[0] < sum(scores) / 8 < a[1]
    wide, narrow = bootstrap_interval(scores, seed=0), bootstrap_interval(scores * 20, seed=0)
    assert narrow[1] - narrow[0] < 0.5 * (wide[1] - wide[0])
    assert bootstrap_interval([0.5, 0.5]) == (0.5, 0.5) and bootstrap_interval([0.3]) == (0.3, 0.3)


def test_score_reports_each_metric_per_split_and_kind():
    items = [{"question": "q1", "answers": ["dog"] * 3 + ["cat"] * 7, "split": "reasoning", "kind": "what"},
             {"question": "q2", "answer": "invoice", "split": "ocr", "kind": "ocr"},
             {"question": "q3", "answer": "B", "options": ["cat", "dog"], "split": "reasoning", "kind": "mc"}]
    result, records = score(["dog", "invoiec", "dog"], items)
    m = result["metrics"]
    assert set(m) == {"exact_match", "vqa_accuracy", "anls", "mc_accuracy"}
    assert m["exact_match"]["overall"]["value"] == result["overall"] == pytest.approx(1 / 3)  # "dog" != "B"
    assert m["exact_match"]["overall"]["ci"] == pytest.approx(list(wilson_interval(1, 3)))
    assert m["vqa_accuracy"]["overall"] == {"value": pytest.approx(0.9), "ci": [pytest.approx(0.9)] * 2, "n": 1}
    assert m["mc_accuracy"]["overall"]["n"] == 1 and m["mc_accuracy"]["overall"]["value"] == 1.0
    assert m["anls"]["splits"]["ocr"]["value"] == pytest.approx(1 - 2 / 7)
    assert set(m["anls"]["kinds"]) == {"what", "ocr", "mc"} and result["counts"] == {"ocr": 1, "reasoning": 2}
    assert records[0]["vqa_accuracy"] == pytest.approx(0.9) and "vqa_accuracy" not in records[1]
    with pytest.raises(DataError, match="names none of the options"):
        score(["A"], [{"question": "q", "answer": "E", "options": ["cat", "dog"]}])
    table = format_table(m)
    assert "vqa_accuracy" in table and "split ocr" in table and "kind mc" in table


def test_llava_json_answers_and_options(tmp_path):
    from leanvl.vlm.batches import LlavaJsonSource

    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    conv = [{"from": "human", "value": "<image>\nWhich animal?"}, {"from": "gpt", "value": "B"}]
    good = [{"image": "a.png", "conversations": conv, "answers": ["B", "dog"], "options": {"A": "cat", "B": "dog"}}]
    (tmp_path / "good.json").write_text(json.dumps(good))
    sample = LlavaJsonSource(str(tmp_path / "good.json")).decode(0)
    assert sample.attrs["options"] == ["cat", "dog"] and sample.attrs["answers"] == ["B", "dog"]
    bad = {"opts.json": ({"options": ["cat", "dog"], "conversations": [conv[0], {"from": "gpt", "value": "E"}]},
                         "names none of its 'options'"),
           "ans.json": ({"answers": "dog"}, "'answers' must be a non-empty list"),
           "keys.json": ({"options": {"A": "cat", "C": "dog"}}, "'options' keys must be A, B"),
           "one.json": ({"options": ["cat"], "conversations": [conv[0], {"from": "gpt", "value": "cat"}]},
                        "at least 2 choices")}
    for name, (extra, needle) in bad.items():
        (tmp_path / name).write_text(json.dumps([{"image": "a.png", "conversations": conv, **extra}]))
        with pytest.raises(DataError, match=needle):
            LlavaJsonSource(str(tmp_path / name))
