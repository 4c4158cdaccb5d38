"""`vlm bench --table`: the latency table's schema, resume (finished cells skipped), and validate-before-write."""
from __future__ import annotations

from leanvl.cli import main
from leanvl.scaling.latency_table import SCHEMA, read_table

BENCH = ["vlm", "bench", "--llm", "tiny", "--grid", "4", "--vision-dim", "16", "--levels", "2", "--repeats", "1",
         "--text-tokens", "4", "--batch", "1", "--decode-tokens", "2"]


def test_table_schema_and_resume(tmp_path, capsys):
    table = tmp_path / "lat.csv"
    assert main(BENCH + ["--tokens", "1,4", "--table", str(table)]) == 0
    rows = read_table(table)
    assert len(rows) == 2 and all(list(r) == list(SCHEMA) for r in rows)
    assert {(r["visual_tokens"], r["batch"]) for r in rows} == {(1, 1), (4, 1)}
    r = rows[0]
    assert r["llm"] == "tiny" and r["llm_params"] > 0 and r["text_tokens"] == 4 and r["decode_tokens"] == 2
    assert r["prefill_ms"] > 0 and r["compressor_ms"] > 0 and r["query_ms"] > 0 and r["decode_ms_per_token"] > 0
    assert r["device"].startswith("cpu") and r["dtype"] == "float32" and r["cuda_graphs"] is False
    assert r["memory_kind"] == "rss_process" and r["peak_memory_mb"] > 0 and r["torch"] and r["transformers"]
    capsys.readouterr()
    assert main(BENCH + ["--tokens", "1,4,16", "--table", str(table)]) == 0
    assert "resumed: 2 finished cell(s)" in capsys.readouterr().out
    again = read_table(table)
    assert again[:2] == rows and len(again) == 3            # old cells untouched, only V=16 measured
    assert {r["visual_tokens"] for r in again[2:]} == {16}


def test_bad_input_leaves_table_alone(tmp_path, capsys):
    table = tmp_path / "lat.json"
    table.write_text('{"schema": "something else"}')
    assert main(BENCH + ["--tokens", "1", "--table", str(table)]) == 2
    assert "lat.json: expected" in capsys.readouterr().err and table.read_text() == '{"schema": "something else"}'
    fresh = tmp_path / "new.csv"
    assert main(BENCH + ["--tokens", "1", "--llm", "tiny,gpt-9", "--table", str(fresh)]) == 2
    assert capsys.readouterr().err.startswith("leanvl: error: unknown LLM 'gpt-9'") and not fresh.exists()
    for flags, msg in ((["--table", str(tmp_path / "t.txt")], "name it *.json or *.csv"),
                       (["--cuda-graphs"], "--cuda-graphs needs a CUDA device"),
                       (["--text-tokens", "4,x"], "--text-tokens '4,x': use comma-separated integers")):
        assert main(BENCH + ["--tokens", "1"] + flags) == 2
        assert msg in capsys.readouterr().err
    assert main(BENCH + ["--tokens", "1,8", "--table", str(fresh)]) == 2
    assert "8 visual tokens do not tile the 4x4 encoder grid" in capsys.readouterr().err and not fresh.exists()
