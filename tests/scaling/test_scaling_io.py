"""CSV reading: accepted layouts and every bad-input case (one line naming file, row, column; exit 2)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from leanvl.cli import main
from leanvl.errors import DataError
from leanvl.scaling.io import from_records, load_results_csv, reference_path

GOOD = "llm_params_b,visual_tokens,accuracy\n" + "".join(
    f"{n},{v},{0.3 + 0.02 * i + 0.01 * j}\n" for i, n in enumerate((0.5, 1.8, 4)) for j, v in enumerate((1, 16, 64)))


def test_reference_csv_is_shipped_and_loads():
    groups = load_results_csv(reference_path("reasoning"))
    data = groups["all"]
    assert len(data) == 28 and data.llm_sizes == [0.5, 1.8, 4.0, 7.0]
    assert data.y.max() < 0.62 and data.q is None


def test_comments_raw_params_error_column_and_tasks(write_csv):
    text = "# a comment\nllm_params,visual_tokens,error,text_tokens,task\n"
    for task in ("ocr", "reasoning"):
        for n in (5e8, 2e9):
            for v in (1, 4, 16):
                text += f"{n:g},{v},{0.5 - 0.01 * v ** 0.5},{20},{task}\n"
    groups = load_results_csv(write_csv(text))
    assert sorted(groups) == ["ocr", "reasoning"]
    g = groups["ocr"]
    assert g.llm_sizes == [0.5, 2.0]            # raw counts converted to billions
    assert np.allclose(g.y[:3], [0.49, 0.48, 0.46]) and np.all(g.q == 20)
    assert g.rows[0] == 3                        # line numbers count the comment and the header


def test_from_records_matches_csv():
    recs = [{"llm_params_b": n, "visual_tokens": v, "accuracy": 0.4 + 0.01 * i}
            for i, (n, v) in enumerate((n, v) for n in (1, 2, 4) for v in (1, 4))]
    data = from_records(recs)
    assert len(data) == 6 and np.allclose(data.y, 1 - np.array([r["accuracy"] for r in recs]))


BAD = [
    ("llm_params_b,accuracy\n0.5,0.3\n", "missing column 'visual_tokens'"),
    ("llm_params_b,visual_tokens\n0.5,1\n", "missing column 'accuracy' (or 'error')"),
    (GOOD.replace("1.8,16,0.33", "1.8,16,abc"), "row 6, column 'accuracy': 'abc' is not a number"),
    (GOOD.replace("1.8,16,0.33", "1.8,16,nan"), "row 6, column 'accuracy': value nan is not finite"),
    (GOOD.replace("1.8,16,0.33", "1.8,inf,0.33"), "row 6, column 'visual_tokens': value inf is not finite"),
    (GOOD.replace("4,64,", "0,64,"), "row 10, column 'llm_params_b': value 0 must be > 0"),
    (GOOD.replace("0.5,1,", "0.5,-1,"), "row 2, column 'visual_tokens': value -1 must be > 0"),
    (GOOD.replace("1.8,16,0.33", "1.8,16,1.3"), "row 6, column 'accuracy': value 1.3 outside [0, 1]"),
    (GOOD.replace("1.8,16,0.33", "1.8,16"), "row 6: 2 fields but the header has 3"),
    ("llm_params_b,visual_tokens,accuracy\n0.5,1,0.3\n4,1,0.4\n0.5,4,0.35\n", "need at least 4"),
    ("llm_params_b,visual_tokens,accuracy\n" + "".join(f"7,{v},0.4\n" for v in (1, 4, 16, 36, 64)),
     "only one LLM size (7B)"),
    ("llm_params_b,visual_tokens,accuracy\n" + "".join(f"{n},16,0.4\n" for n in (0.5, 1, 2, 4, 7)),
     "only one token count (16)"),
    ("llm_params_b,visual_tokens,accuracy,error\n0.5,1,0.3,0.7\n", "both columns 'accuracy' and 'error'"),
    ("# only comments\n", "no header row"),
    ("llm_params_b,visual_tokens,accuracy\n", "header but no data rows"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_exit_2_one_line(write_csv, capsys, text, message):
    path = write_csv(text)
    with pytest.raises(DataError, match=None):
        load_results_csv(path)
    assert main(["scaling", "fit", str(path), "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("leanvl: error: results.csv")
    assert message in err and "\n" not in err


def test_missing_file_and_no_traceback_in_subprocess(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "leanvl.cli", "scaling", "fit", str(tmp_path / "nope.csv")],
                          capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
