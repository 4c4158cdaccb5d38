"""Latency table schema, interpolation, N-extrapolation refusal, throughput, and FLOPs-proportional equivalence."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from leanvl.errors import DataError, LeanvlError
from leanvl.scaling.cost import CostModel
from leanvl.scaling.latency import plan_latency
from leanvl.scaling.latency_table import SCHEMA, SCHEMA_ID, read_table, write_table
from leanvl.scaling.law import Law
from leanvl.scaling.plan import plan

LAW = Law(0.6, 0.077, 0.015, 0.0)


def row(llm: str, n_b: float, v: int, q: int, b: int = 1, prefill: float = 1.0, comp: float = 0.0,
        query: float = 0.0, decode: float | None = None) -> dict:
    """One schema-complete latency-table row."""
    return {"llm": llm, "llm_params": int(round(n_b * 1e9)), "llm_layers": 2, "llm_width": 64, "compressor": "quecc",
            "grid": 4, "vision_dim": 16, "levels": 4, "visual_tokens": v, "text_tokens": q, "batch": b,
            "decode_tokens": 0 if decode is None else 4, "prefill_ms": prefill, "compressor_ms": comp,
            "query_ms": query, "decode_ms_per_token": decode, "peak_memory_mb": 10.0, "memory_kind": "rss_process",
            "repeats": 3, "device": "cpu: test", "dtype": "float32", "cuda_graphs": False, "threads": 1,
            "torch": "2", "transformers": "5", "python": "3.11", "measured_at": "2026-12-01T00:00:00+00:00"}


@pytest.mark.parametrize("name", ["t.json", "t.csv"])
def test_table_round_trips_and_names_bad_cells(tmp_path, name):
    rows = [row("a", 0.5, 4, 16, decode=2.5), row("a", 0.5, 16, 16)]
    path = tmp_path / name
    write_table(path, rows)
    assert read_table(path) == rows
    text = path.read_text()
    if name.endswith(".json"):
        doc = json.loads(text)
        assert doc["schema"] == SCHEMA_ID and list(doc["rows"][0]) == list(SCHEMA)
        doc["rows"][1]["prefill_ms"] = -1
        path.write_text(json.dumps(doc))
        where = "row 2"
    else:
        assert text.splitlines()[0] == f"# schema: {SCHEMA_ID}" and text.splitlines()[1] == ",".join(SCHEMA)
        path.write_text(text.replace(",quecc,", ",quecc,", 1).replace(",16,1,0,1.0,", ",16,1,0,abc,"))
        where = "line 4"
    with pytest.raises(DataError, match=f"{where}, column 'prefill_ms': bad value"):
        read_table(path)
    missing = {k: v for k, v in rows[0].items() if k != "batch"}
    write_table_raw = tmp_path / "m.json"
    write_table_raw.write_text(json.dumps({"schema": SCHEMA_ID, "rows": [missing]}))
    with pytest.raises(DataError, match="missing column"):
        read_table(write_table_raw)


SIZES, TOKENS, Q = (0.5, 1.8, 4.0, 7.0), (1, 4, 16, 64, 144, 576), 50


@pytest.mark.parametrize("quecc", [False, True])
def test_flops_proportional_table_reproduces_flops_plan(quecc):
    cm = CostModel(query_pass=quecc)
    c = 3.7e-9   # ms per FLOP
    rows = [row(f"m{n}", n, v, Q, prefill=c * float(CostModel().flops(n, v, Q)),
                query=c * float(cm.flops(n, 0, Q) - CostModel().flops(n, 0, Q)) if quecc else 0.0)
            for n in SIZES for v in TOKENS]
    for budget_ms in (450.0, 1500.0, 6100.0):
        lp = plan_latency(LAW, rows, budget_ms, Q, cost_model=cm)
        fp = plan(LAW, budget_ms / c, Q, SIZES, TOKENS, cm)
        assert [(r.llm_params_b, r.visual_tokens, r.accuracy) for r in lp.rows] == \
               [(r.llm_params_b, r.visual_tokens, r.accuracy) for r in fp.rows]
        assert len(lp.options) - len(lp.rows) == fp.n_infeasible and lp.rows
        assert lp.ms_per_gflop == pytest.approx(c * 1e9, rel=1e-12)
        assert lp.flops_choice == lp.latency_choice
        assert all(r.how == "measured" for r in lp.rows)


def test_interpolates_in_v_and_q_exactly_for_affine_latency_and_refuses_outside():
    lat = lambda v, q: 5.0 + 0.5 * v + 0.25 * q  # noqa: E731 - affine: linear interpolation is exact
    rows = [row("a", 0.5, v, q, prefill=lat(v, q), comp=1.0, decode=2.0) for v in (1, 16, 64) for q in (16, 64)]
    rows.append(row("a", 0.5, 4, 16, prefill=lat(4, 16), comp=1.0, decode=2.0))   # V=4 measured at Q=16 only
    lp = plan_latency(LAW, rows, 1e9, 40, token_options=[1, 4, 16, 40], decode_tokens=3)
    got = {r.visual_tokens: (r.latency_ms, r.how) for r in lp.options}
    for v, how in ((1, "interpolated in Q"), (4, "interpolated in V and Q"), (16, "interpolated in Q"),
                   (40, "interpolated in V and Q")):
        assert got[v] == (pytest.approx(lat(v, 40) + 1.0 + 3 * 2.0), how)
    assert lp.notes == ["latency interpolated in Q for 2 of 4 option(s) (the table has no cell there)",
                        "latency interpolated in V and Q for 2 of 4 option(s) (the table has no cell there)"]
    lp16 = plan_latency(LAW, rows, 1e9, 16, token_options=[4, 10])
    assert {r.visual_tokens: r.how for r in lp16.options} == {4.0: "measured", 10.0: "interpolated in V"}
    assert lp16.options[1].latency_ms == pytest.approx(lat(10, 16) + 1.0)
    with pytest.raises(LeanvlError, match="Q = 80 text tokens is outside the measured 16..64"):
        plan_latency(LAW, rows, 1e9, 80)
    with pytest.raises(LeanvlError, match="V = 100 visual tokens is outside"):
        plan_latency(LAW, rows, 1e9, 16, token_options=[100])


def test_extrapolation_in_n_is_refused_unless_asked_then_scales_llm_terms():
    rows = [row("small", 0.1, v, 16, prefill=10.0 * v, comp=3.0, query=2.0, decode=1.0) for v in (1, 16)]
    with pytest.raises(LeanvlError, match=r"LLM size 0.4B is not in the latency table .* --extrapolate"):
        plan_latency(LAW, rows, 1e9, 16, llm_sizes=[0.1, 0.4])
    lp = plan_latency(LAW, rows, 1e9, 16, llm_sizes=[0.1, 0.4], extrapolate=True, decode_tokens=2)
    big = {r.visual_tokens: r for r in lp.options if r.llm_params_b == 0.4}
    assert big[16].latency_ms == pytest.approx(4 * (160.0 + 2.0 + 2 * 1.0) + 3.0)   # compressor not scaled
    assert big[16].extrapolated_from == "small" and any("FLOPs ratio" in n for n in lp.notes)


def test_throughput_picks_best_batch_within_slo():
    rows = [row("a", 0.5, 4, 16, b=b, prefill=ms) for b, ms in ((1, 10.0), (8, 40.0), (32, 100.0))]
    lp = plan_latency(LAW, rows, 50.0, 16, min_rps=150.0)
    assert lp.mode == "throughput" and lp.rows[0].batch == 8 and lp.rows[0].requests_per_s == pytest.approx(200.0)
    assert plan_latency(LAW, rows, 50.0, 16, min_rps=250.0).rows == []
    assert plan_latency(LAW, rows, 100.0, 16, min_rps=150.0).rows[0].batch == 32


def test_mixed_devices_and_duplicate_cells_are_refused():
    a = row("a", 0.5, 4, 16)
    with pytest.raises(DataError, match="mixes devices"):
        plan_latency(LAW, [a, {**row("a", 0.5, 16, 16), "device": "NVIDIA H200"}], 10.0, 16)
    with pytest.raises(DataError, match="two rows for a V=4"):
        plan_latency(LAW, [a, {**a, "decode_tokens": 4, "decode_ms_per_token": 1.0}], 10.0, 16)


def test_cli_plan_latency_one_line_errors_json_and_plot(tmp_path):
    law = tmp_path / "law.json"
    law.write_text(json.dumps({"A": 0.6, "alpha": 0.077, "beta": 0.015, "D": 0.0}))
    table = tmp_path / "t.csv"
    write_table(table, [row(f"m{n}", n, v, q, prefill=n * (v + q)) for n in (0.5, 1.8) for v in (1, 16, 64)
                        for q in (16, 64)])
    base = [sys.executable, "-m", "leanvl.cli", "scaling", "plan", "--law", str(law), "--latency", str(table),
            "--text-tokens", "32"]
    bad = subprocess.run(base + ["--budget-ms", "60", "--llm-sizes", "7"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("leanvl: error: LLM size 7B is not in the latency table")
    out, png = tmp_path / "plan.json", tmp_path / "plan.png"
    ok = subprocess.run(base + ["--budget-ms", "60", "--json", str(out), "--plot", str(png)], capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stderr
    assert "interpolated in Q" in ok.stdout and "FLOPs-optimal" in ok.stdout and "latency-optimal" in ok.stdout
    d = json.loads(out.read_text())
    assert d["latency_choice"]["latency_ms"] <= 60 and png.stat().st_size > 5000
    assert d["latency_choice"]["llm_params_b"] == 1.8 and d["latency_choice"]["visual_tokens"] == 1


def test_query_pass_and_compressor_are_pooled_over_the_coordinate_they_do_not_depend_on():
    rows = [row("a", 0.5, v, q, prefill=0.0, comp=c, query=qp) for v, q, c, qp in
            ((1, 16, 10.0, 5.0), (4, 16, 20.0, 7.0), (16, 16, 30.0, 100.0),     # query outlier at V=16
             (1, 64, 12.0, 9.0), (4, 64, 200.0, 9.0), (16, 64, 32.0, 9.0))]    # compressor outlier at V=4
    lat = {(r.visual_tokens, q): r.latency_ms for q in (16, 64)
           for r in plan_latency(LAW, rows, 1e9, q).options}
    assert lat[(16, 16)] == pytest.approx(31.0 + 7.0) and lat[(4, 64)] == pytest.approx(110.0 + 9.0)
    assert lat[(1, 16)] == pytest.approx(11.0 + 7.0)
