"""The latency table written by `leanvl vlm bench --table` and read by `leanvl scaling plan --latency`.

One row per measured cell (LLM x visual tokens V x text tokens Q x batch B). Every row is self-describing (device
and software versions are columns), so rows from several runs can share one file. Times are milliseconds for the
whole batch of B requests (medians over `repeats` timed runs after a warm-up). Columns (SCHEMA, in file order):

| column | type | meaning |
|---|---|---|
| llm | str | the `--llm` value (built-in name, smollm2-135m, model directory or config.json) |
| llm_params | int | LLM parameters without input embeddings (the law's N, in units, not billions) |
| llm_layers, llm_width | int | the LLM's layer count and hidden width |
| compressor, grid, vision_dim, levels | str, int x3 | compressor timed on random grid x grid x vision_dim features |
| visual_tokens, text_tokens, batch | int | V, Q, B of the cell |
| decode_tokens | int | K greedy decode steps timed after the prefill (0: decode not measured) |
| prefill_ms | float | LLM prefill over Q + V tokens, logits of the last position only |
| compressor_ms | float | compressor + projector |
| query_ms | float | QueCC's text-only LLM pass over the question (0 when the compressor needs none) |
| decode_ms_per_token | float or empty | time of the K decode steps with the KV cache, divided by K |
| peak_memory_mb | float | cuda: peak allocated in this cell; rss_process: the process's peak RSS so far (monotone) |
| memory_kind | str | cuda or rss_process |
| repeats | int | timed repeats behind each median |
| device, dtype | str | device name (GPU name, or `cpu: <processor>`) and the weights' dtype |
| cuda_graphs | bool | prefill, compressor and query pass replayed from captured CUDA graphs |
| threads | int | torch CPU threads |
| torch, transformers, python | str | software versions |
| measured_at | str | UTC time of the measurement (ISO 8601) |

Formats: `.json` = {"schema": SCHEMA_ID, "rows": [...]}; `.csv` = a `# schema: SCHEMA_ID` line, a header, rows.
A cell's identity (for resume) is KEY_COLUMNS; the measured columns are not part of it.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from leanvl.errors import DataError, LeanvlError

SCHEMA_ID = "leanvl-latency-table/1"
INT_COLUMNS = ("llm_params", "llm_layers", "llm_width", "grid", "vision_dim", "levels", "visual_tokens",
               "text_tokens", "batch", "decode_tokens", "repeats", "threads")
FLOAT_COLUMNS = ("prefill_ms", "compressor_ms", "query_ms", "decode_ms_per_token", "peak_memory_mb")
STR_COLUMNS = ("llm", "compressor", "memory_kind", "device", "dtype", "torch", "transformers", "python",
               "measured_at")
BOOL_COLUMNS = ("cuda_graphs",)
SCHEMA = ("llm", "llm_params", "llm_layers", "llm_width", "compressor", "grid", "vision_dim", "levels",
          "visual_tokens", "text_tokens", "batch", "decode_tokens", "prefill_ms", "compressor_ms", "query_ms",
          "decode_ms_per_token", "peak_memory_mb", "memory_kind", "repeats", "device", "dtype", "cuda_graphs",
          "threads", "torch", "transformers", "python", "measured_at")
KEY_COLUMNS = ("llm", "compressor", "grid", "vision_dim", "levels", "visual_tokens", "text_tokens", "batch",
               "decode_tokens", "device", "dtype", "cuda_graphs")
FORMATS = (".json", ".csv")


def table_format(path: str | Path) -> str:
    """'.json' or '.csv' from the file name; LeanvlError otherwise."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise LeanvlError(f"latency table {path}: name it *.json or *.csv")
    return ext


def cell_key(row: dict) -> tuple:
    """The identity of a cell: the KEY_COLUMNS values."""
    return tuple(row[c] for c in KEY_COLUMNS)


def _convert(value, column: str, where: str):
    if column == "decode_ms_per_token" and value in (None, ""):
        return None
    try:
        if column in INT_COLUMNS:
            out = int(float(value)) if not isinstance(value, bool) else None
            if out is None or out != float(value):
                raise ValueError
            return out
        if column in FLOAT_COLUMNS:
            out = float(value)
            if not math.isfinite(out) or out < 0:
                raise ValueError
            return out
        if column in BOOL_COLUMNS:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false", "1", "0"):
                return str(value).lower() in ("true", "1")
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}, column {column!r}: bad value {value!r}") from None


def validate_row(raw: dict, where: str) -> dict:
    """A schema row with typed values; DataError naming the place and column on a missing or bad value."""
    missing = [c for c in SCHEMA if c not in raw]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)}")
    row = {c: _convert(raw[c], c, where) for c in SCHEMA}
    for c in ("visual_tokens", "batch", "llm_params", "repeats"):
        if row[c] < 1:
            raise DataError(f"{where}, column {c!r}: must be >= 1, got {row[c]}")
    for c in ("text_tokens", "decode_tokens"):
        if row[c] < 0:
            raise DataError(f"{where}, column {c!r}: must be >= 0, got {row[c]}")
    if row["decode_tokens"] > 0 and row["decode_ms_per_token"] is None:
        raise DataError(f"{where}: decode_tokens = {row['decode_tokens']} but decode_ms_per_token is empty")
    return row


def read_table(path: str | Path) -> list[dict]:
    """All rows of a latency table (validated); DataError with one line on anything malformed."""
    p = Path(path)
    ext = table_format(p)
    if not p.is_file():
        raise LeanvlError(f"latency table {path}: no such file")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"latency table {path}: unreadable ({exc.__class__.__name__})") from None
    if ext == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            raise DataError(f"latency table {path}: not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_ID or not isinstance(doc.get("rows"), list):
            raise DataError(f"latency table {path}: expected {{\"schema\": \"{SCHEMA_ID}\", \"rows\": [...]}}")
        raws = [(r, f"{path}: row {i}") for i, r in enumerate(doc["rows"], start=1)]
        if not all(isinstance(r, dict) for r, _ in raws):
            raise DataError(f"latency table {path}: every row must be a JSON object")
    else:
        lines = text.splitlines()
        if not lines or lines[0].strip() != f"# schema: {SCHEMA_ID}":
            raise DataError(f"latency table {path}: first line must be '# schema: {SCHEMA_ID}'")
        reader = csv.DictReader(io.StringIO("\n".join(lines[1:])))
        raws = [(r, f"{path}: line {i}") for i, r in enumerate(reader, start=3)]
    return [validate_row(r, where) for r, where in raws]


def write_table(path: str | Path, rows: list[dict]) -> None:
    """Write rows (schema columns, in order) atomically: a temporary file renamed over the target."""
    p = Path(path)
    ext = table_format(p)
    rows = [{c: r[c] for c in SCHEMA} for r in rows]
    if ext == ".json":
        text = json.dumps({"schema": SCHEMA_ID, "columns": list(SCHEMA), "rows": rows}, indent=1) + "\n"
    else:
        buf = io.StringIO()
        buf.write(f"# schema: {SCHEMA_ID}\n")
        writer = csv.DictWriter(buf, fieldnames=list(SCHEMA), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
        text = buf.getvalue()
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, p)
