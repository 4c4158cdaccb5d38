"""Read and validate scaling-law results CSVs (one row per trained model and visual-token count).

Columns: `llm_params_b` (billions) or `llm_params` (raw count), `visual_tokens`, `accuracy` or `error` (in [0, 1]),
optional `text_tokens` (>= 0), optional `n_questions` (questions behind each accuracy, an integer >= 1: needed by
binomial weights) and optional `task` (each task group is fitted separately). Lines starting with `#`
are comments. Errors name the file, the row (its line number in the file, 1-based) and the column.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from leanvl.errors import DataError

N_PARAMS = 4  # A, alpha, beta, D
REFERENCES = {"reasoning": "vlm_scaling_reasoning.csv"}


@dataclass
class ScalingData:
    """One task group's points: LLM size `n` (billions), visual tokens `v`, text tokens `q` (None if absent), error `y`,
    questions per point `count` (None if absent)."""

    n: np.ndarray
    v: np.ndarray
    y: np.ndarray
    q: np.ndarray | None = None
    task: str = "all"
    source: str = "<memory>"
    rows: np.ndarray | None = None
    count: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.n.size)

    @property
    def llm_sizes(self) -> list[float]:
        """Distinct LLM sizes in billions, ascending."""
        return [float(x) for x in np.unique(self.n)]

    @property
    def token_counts(self) -> list[float]:
        """Distinct visual-token counts, ascending."""
        return [float(x) for x in np.unique(self.v)]

    def subset(self, mask: np.ndarray) -> "ScalingData":
        """The points selected by a boolean mask or an index array."""
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return ScalingData(self.n[mask], self.v[mask], self.y[mask], pick(self.q), self.task, self.source,
                           pick(self.rows), pick(self.count))


def reference_path(name: str) -> Path:
    """Path of a CSV shipped with leanvl (`reasoning`: the paper's visual-reasoning table)."""
    if name not in REFERENCES:
        raise DataError(f"unknown reference data {name!r}; choose from {sorted(REFERENCES)}")
    return Path(str(resources.files("leanvl.scaling") / "data" / REFERENCES[name]))


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, fields) of the non-comment, non-blank lines."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as UTF-8 text ({exc.__class__.__name__})") from None
    numbered = [(i + 1, line) for i, line in enumerate(text.splitlines())
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise DataError(f"{path.name}: no header row (the file is empty or only comments)")
    parsed = list(csv.reader([line for _, line in numbered]))
    header = [h.strip() for h in parsed[0]]
    return header, [(numbered[i][0], [f.strip() for f in parsed[i]]) for i in range(1, len(parsed))]


# Columns that state the same quantity in two units: the first present wins (`leanvl sweep` writes both).
_SAME_QUANTITY = {("llm_params_b", "llm_params")}


def _pick_column(header: list[str], name: str, choices: tuple[str, ...]) -> str | None:
    """The one header column among `choices`, None if absent; error if several are present (except units pairs)."""
    found = [c for c in choices if c in header]
    if len(found) > 1 and tuple(found) not in _SAME_QUANTITY:
        raise DataError(f"{name}: both columns {found[0]!r} and {found[1]!r} present; keep one")
    return found[0] if found else None


def _number(name: str, line: int, col: str, cell: str) -> float:
    """A finite float from one cell, or a DataError naming file, row and column."""
    try:
        x = float(cell)
    except ValueError:
        raise DataError(f"{name}: row {line}, column {col!r}: {cell!r} is not a number") from None
    if not math.isfinite(x):
        raise DataError(f"{name}: row {line}, column {col!r}: value {cell} is not finite")
    return x


def _parse_row(name: str, line: int, record: dict[str, str], cols: dict[str, str | None]) -> tuple:
    """(n_billions, v, y_error, q or None, task, n_questions or None) of one row, validated."""
    ncol, vcol, ycol, qcol = cols["n"], cols["v"], cols["y"], cols["q"]
    n = _number(name, line, ncol, record[ncol])
    n = n if ncol == "llm_params_b" else n / 1e9
    v = _number(name, line, vcol, record[vcol])
    y = _number(name, line, ycol, record[ycol])
    for col, val in ((ncol, n), (vcol, v)):
        if val <= 0:
            raise DataError(f"{name}: row {line}, column {col!r}: value {record[col]} must be > 0")
    if not 0.0 <= y <= 1.0:
        raise DataError(f"{name}: row {line}, column {ycol!r}: value {record[ycol]} outside [0, 1]")
    q = None
    if qcol is not None:
        q = _number(name, line, qcol, record[qcol])
        if q < 0:
            raise DataError(f"{name}: row {line}, column {qcol!r}: value {record[qcol]} must be >= 0")
    task = record.get("task", "all") or "all"
    return n, v, (1.0 - y if ycol == "accuracy" else y), q, task, _questions(name, line, cols["c"], record)


def _questions(name: str, line: int, col: str | None, record: dict[str, str]) -> float | None:
    """The row's question count (an integer >= 1) or None without the column."""
    if col is None:
        return None
    c = _number(name, line, col, record[col])
    if c < 1 or c != int(c):
        raise DataError(f"{name}: row {line}, column {col!r}: value {record[col]} must be an integer >= 1")
    return c


def check_fittable(data: ScalingData) -> None:
    """Raise DataError unless the group can identify the law: >= 2 LLM sizes, >= 2 token counts, >= 4 points."""
    where = data.source if data.task == "all" else f"{data.source} (task {data.task!r})"
    if len(data.llm_sizes) < 2:
        raise DataError(f"{where}: column 'llm_params_b': only one LLM size ({data.llm_sizes[0]:g}B); "
                        f"need at least 2 to fit alpha")
    if len(data.token_counts) < 2:
        raise DataError(f"{where}: column 'visual_tokens': only one token count ({data.token_counts[0]:g}); "
                        f"need at least 2 to fit beta")
    if len(data) < N_PARAMS:  # exactly N_PARAMS points is an exactly-determined fit (no residual dof)
        raise DataError(f"{where}: {len(data)} data rows but the law has {N_PARAMS} parameters; "
                        f"need at least {N_PARAMS}")


def load_results_csv(path: str | Path) -> dict[str, ScalingData]:
    """Read a results CSV into validated task groups {task: ScalingData}; raise DataError naming file/row/column."""
    path = Path(path)
    name = path.name
    header, rows = _read_rows(path)
    dupes = {c for c in header if header.count(c) > 1}
    if dupes:
        raise DataError(f"{name}: column {sorted(dupes)[0]!r} appears more than once in the header")
    cols = {"n": _pick_column(header, name, ("llm_params_b", "llm_params")),
            "v": "visual_tokens" if "visual_tokens" in header else None,
            "y": _pick_column(header, name, ("accuracy", "error")),
            "q": "text_tokens" if "text_tokens" in header else None,
            "c": "n_questions" if "n_questions" in header else None}
    for key, wanted in (("n", "'llm_params_b' (or 'llm_params')"), ("v", "'visual_tokens'"),
                        ("y", "'accuracy' (or 'error')")):
        if cols[key] is None:
            raise DataError(f"{name}: missing column {wanted}; header is {','.join(header)}")
    if not rows:
        raise DataError(f"{name}: header but no data rows")
    parsed: dict[str, list[tuple]] = {}
    for line, fields in rows:
        if len(fields) != len(header):
            raise DataError(f"{name}: row {line}: {len(fields)} fields but the header has {len(header)}")
        n, v, y, q, task, c = _parse_row(name, line, dict(zip(header, fields)), cols)
        parsed.setdefault(task, []).append((n, v, y, q, line, c))
    groups = {}
    for task, items in parsed.items():
        arr = np.array([(n, v, y, line) for n, v, y, _, line, _ in items], dtype=float)
        q = np.array([it[3] for it in items], dtype=float) if cols["q"] else None
        c = np.array([it[5] for it in items], dtype=float) if cols["c"] else None
        data = ScalingData(arr[:, 0], arr[:, 1], arr[:, 2], q, task, name, arr[:, 3].astype(int), c)
        check_fittable(data)
        groups[task] = data
    return groups


def from_records(records: list[dict], *, source: str = "<records>", task: str | None = None) -> ScalingData:
    """One validated ScalingData from dicts with the CSV's column names (e.g. rows produced by `leanvl sweep`).

    `task` picks one group when records carry a `task` key; otherwise all records form one group.
    """
    if not records:
        raise DataError(f"{source}: no records")
    header = list(records[0].keys())
    cols = {"n": _pick_column(header, source, ("llm_params_b", "llm_params")),
            "v": "visual_tokens" if "visual_tokens" in header else None,
            "y": _pick_column(header, source, ("accuracy", "error")),
            "q": "text_tokens" if "text_tokens" in header else None,
            "c": "n_questions" if "n_questions" in header else None}
    if None in (cols["n"], cols["v"], cols["y"]):
        raise DataError(f"{source}: records need llm_params_b/llm_params, visual_tokens and accuracy/error")
    items = []
    for i, rec in enumerate(records, start=1):
        missing = [c for c in cols.values() if c is not None and c not in rec]
        if missing:
            raise DataError(f"{source}: row {i}: missing column {missing[0]!r}")
        n, v, y, q, grp, c = _parse_row(source, i, {k: str(val) for k, val in rec.items()}, cols)
        if task is None or grp == task:
            items.append((n, v, y, q, i, c))
    if not items:
        raise DataError(f"{source}: no records for task {task!r}")
    arr = np.array([(n, v, y, i) for n, v, y, _, i, _ in items], dtype=float)
    q = np.array([it[3] for it in items], dtype=float) if cols["q"] else None
    c = np.array([it[5] for it in items], dtype=float) if cols["c"] else None
    data = ScalingData(arr[:, 0], arr[:, 1], arr[:, 2], q, task or "all", source, arr[:, 3].astype(int), c)
    check_fittable(data)
    return data
