"""Plan (N, V) on measured latency: rank options by the fitted law's error among those a latency table says fit.

A request's latency at (LLM, V, Q, batch B) is, from the table (leanvl.scaling.latency_table):
  prefill_ms + compressor_ms + query_ms + K * decode_ms_per_token        (the whole batch of B requests)
The query pass depends on (B, Q) only and the compressor on (B, V) only, so each is pooled (median) over the other
coordinate before use. Missing (V, Q) cells are interpolated linearly, first in V at the measured Q values, then in Q (never extrapolated:
V or Q outside the measured range is an error). LLM sizes are never interpolated or extrapolated unless asked
(`extrapolate=True`): then the nearest measured LLM's LLM terms (prefill, query pass, decode) are scaled by the
FLOPs ratio N / N_ref of 2N(Q+V), and its compressor time is kept.

Throughput mode (`min_rps`): the budget is a latency SLO; each option runs at the measured batch with the most
requests/s = 1000 B / latency(B) among those within the SLO (static batching, no queueing delay), and it fits when
that rate reaches `min_rps`.

FLOPs side by side: the FLOPs planner (leanvl.scaling.plan.plan) at the FLOPs budget the ms budget converts to with
the table's own rate: ms = rate x FLOPs fitted through the origin by least squares over the evaluated options
(so the heaviest, most compute-bound options set it; per request in throughput mode).
When the table is proportional to FLOPs both plans are the same, option by option.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from leanvl.errors import DataError, LeanvlError
from leanvl.scaling.cost import CostModel
from leanvl.scaling.law import Law
from leanvl.scaling.plan import plan as flops_plan

COMPONENTS = ("prefill_ms", "compressor_ms", "query_ms", "decode_ms_per_token")
LLM_TERMS = np.array([1.0, 0.0, 1.0, 1.0])   # which components scale with N (all but the compressor)


def _interp_v(points: list[tuple[int, np.ndarray]], v: float) -> np.ndarray | None:
    vs = np.array([p[0] for p in points], dtype=float)
    if not vs.min() <= v <= vs.max():
        return None
    comps = np.stack([p[1] for p in points])
    return np.array([np.interp(v, vs, comps[:, j]) for j in range(comps.shape[1])])


def components_at(cells: dict, v: float, q: float) -> tuple[np.ndarray, str]:
    """The four latency components at (V, Q) from {Q: [(V, components)]} of one LLM and batch, and how they were
    found ('measured', 'interpolated in V', 'interpolated in Q', 'interpolated in V and Q'); LeanvlError outside."""
    qs = sorted(cells)
    if q in cells:
        brackets = [q]
    else:
        lower, upper = [x for x in qs if x < q], [x for x in qs if x > q]
        if not lower or not upper:
            raise LeanvlError(f"Q = {q:g} text tokens is outside the measured {qs[0]:g}..{qs[-1]:g}; "
                              f"measure it with `leanvl vlm bench --text-tokens`")
        brackets = [lower[-1], upper[0]]
    found = []
    for qq in brackets:
        pts = sorted(cells[qq], key=lambda p: p[0])
        comps = _interp_v(pts, v)
        if comps is None:
            raise LeanvlError(f"V = {v:g} visual tokens is outside the measured {pts[0][0]}..{pts[-1][0]} "
                              f"(at Q = {qq:g}); measure it with `leanvl vlm bench --tokens`")
        found.append(comps)
    in_v = any(v not in [p[0] for p in cells[qq]] for qq in brackets)
    if len(brackets) == 1:
        return found[0], "interpolated in V" if in_v else "measured"
    w = (q - brackets[0]) / (brackets[1] - brackets[0])
    return (1 - w) * found[0] + w * found[1], "interpolated in V and Q" if in_v else "interpolated in Q"


@dataclass
class MeasuredLLM:
    """One LLM of the table: its size and {batch: {Q: [(V, components)]}}."""

    name: str
    n_b: float
    cells: dict = field(default_factory=dict)


def measured_llms(rows: list[dict]) -> list[MeasuredLLM]:
    """The table's LLMs, smallest first; DataError when it mixes devices/dtypes or repeats a cell."""
    if not rows:
        raise DataError("the latency table has no rows")
    setups = sorted({(r["device"], r["dtype"]) for r in rows})
    if len(setups) > 1:
        raise DataError(f"the latency table mixes devices/dtypes {setups}; plan on one (split the table)")
    llms: dict[str, MeasuredLLM] = {}
    for r in rows:
        m = llms.setdefault(r["llm"], MeasuredLLM(r["llm"], r["llm_params"] / 1e9))
        by_q = m.cells.setdefault(r["batch"], {}).setdefault(float(r["text_tokens"]), [])
        if any(v == r["visual_tokens"] for v, _ in by_q):
            raise DataError(f"the latency table has two rows for {r['llm']} V={r['visual_tokens']} "
                            f"Q={r['text_tokens']} batch={r['batch']} (other settings); keep one per cell")
        decode = np.nan if r["decode_ms_per_token"] is None else r["decode_ms_per_token"]
        by_q.append((r["visual_tokens"], np.array([r["prefill_ms"], r["compressor_ms"], r["query_ms"], decode])))
    for m in llms.values():
        _pool(m)
    return sorted(llms.values(), key=lambda m: m.n_b)


def _pool(m: MeasuredLLM) -> None:
    """Denoise what cannot depend on a coordinate: the query pass's median over V at each (B, Q) and the
    compressor's median over Q at each (B, V) replace the per-cell values (a busy machine makes them scatter)."""
    for by_q in m.cells.values():
        for pts in by_q.values():
            query = float(np.median([c[2] for _, c in pts]))
            for _, c in pts:
                c[2] = query
        for v in {v for pts in by_q.values() for v, _ in pts}:
            same_v = [c for pts in by_q.values() for vv, c in pts if vv == v]
            comp = float(np.median([c[1] for c in same_v]))
            for c in same_v:
                c[1] = comp


def resolve_size(llms: list[MeasuredLLM], n_b: float, extrapolate: bool) -> tuple[MeasuredLLM, float]:
    """(measured LLM, FLOPs ratio N / N_ref) for a candidate size; LeanvlError unless measured or extrapolate."""
    for m in llms:
        if np.isclose(m.n_b, n_b, rtol=1e-3):
            return m, 1.0
    if not extrapolate:
        sizes = ", ".join(f"{m.name}={m.n_b:.4g}B" for m in llms)
        raise LeanvlError(f"LLM size {n_b:g}B is not in the latency table (measured: {sizes}); refusing to "
                          f"extrapolate latency in N: measure it, or pass --extrapolate (FLOPs ratio)")
    ref = min(llms, key=lambda m: abs(np.log(m.n_b / n_b)))
    return ref, n_b / ref.n_b


def batch_latency(m: MeasuredLLM, batch: int, v: float, q: float, k: int, ratio: float) -> tuple[float, str]:
    """Latency (ms) of `batch` requests at (V, Q) with K decode tokens, and how it was found."""
    if batch not in m.cells:
        raise LeanvlError(f"{m.name}: batch {batch} is not in the latency table (measured: {sorted(m.cells)})")
    comps, how = components_at(m.cells[batch], v, q)
    if k > 0 and np.isnan(comps[3]):
        raise LeanvlError(f"{m.name}: no decode times in the table; measure with `leanvl vlm bench --decode-tokens`")
    scale = np.where(LLM_TERMS > 0, ratio, 1.0)
    total = float(comps[:3] @ scale[:3]) + (float(k * scale[3] * comps[3]) if k > 0 else 0.0)
    return total, how


@dataclass
class LatencyRow:
    """One option: predicted accuracy, measured (or interpolated) latency and requests/s, FLOPs per request."""

    llm: str
    llm_params_b: float
    visual_tokens: float
    batch: int
    latency_ms: float
    requests_per_s: float
    gflops: float
    accuracy: float
    how: str
    extrapolated_from: str | None = None


@dataclass
class LatencyPlan:
    """Latency-feasible options best first, plus the FLOPs planner's choice at the equivalent FLOPs budget."""

    mode: str
    budget_ms: float
    min_rps: float | None
    text_tokens: float
    batch: int | None
    decode_tokens: int
    device: str
    cost_model: str
    ms_per_gflop: float
    flops_budget_gflops: float
    rows: list[LatencyRow] = field(default_factory=list)
    options: list[LatencyRow] = field(default_factory=list)
    flops_ranked: list[tuple[float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def latency_choice(self) -> LatencyRow | None:
        """The best latency-feasible option."""
        return self.rows[0] if self.rows else None

    @property
    def flops_choice(self) -> LatencyRow | None:
        """The FLOPs planner's best option (with its measured latency)."""
        if not self.flops_ranked:
            return None
        n_b, v = self.flops_ranked[0]
        return next(o for o in self.options if o.llm_params_b == n_b and o.visual_tokens == v)

    def to_dict(self) -> dict:
        """JSON-ready dict (options = every evaluated option, feasible or not)."""
        d = asdict(self)
        d["latency_choice"] = asdict(self.latency_choice) if self.latency_choice else None
        d["flops_choice"] = asdict(self.flops_choice) if self.flops_choice else None
        return d

    def to_json(self) -> str:
        """JSON string of to_dict()."""
        return json.dumps(self.to_dict(), indent=2)


def _cost(option: LatencyRow, throughput: bool) -> float:
    """What the budget bounds: the batch's latency, or the time per request (1000 / requests per s)."""
    return 1000.0 / option.requests_per_s if throughput else option.latency_ms


def _option(llms, law, cost_model, n_b, v, q, k, batch, slo, extrapolate) -> LatencyRow:
    """One (N, V) option at `batch`, or (batch None: throughput) at the measured batch with the most requests/s
    within the SLO (requests_per_s = 0 when no batch meets it)."""
    m, ratio = resolve_size(llms, n_b, extrapolate)
    runs = []
    for b in ([batch] if batch is not None else sorted(m.cells)):
        ms, how = batch_latency(m, b, v, q, k, ratio)
        runs.append((b, ms, 1000.0 * b / ms if ms > 0 else np.inf, how))
    if batch is not None:
        b, ms, rps, how = runs[0]
    else:
        within = [r for r in runs if r[1] <= slo]
        b, ms, rps, how = max(within, key=lambda r: r[2]) if within else min(runs, key=lambda r: r[1])
        rps = rps if within else 0.0
    return LatencyRow(m.name if ratio == 1.0 else f"~{n_b:g}B", n_b, v, b, ms, rps,
                      float(cost_model.flops(n_b, v, q)) / 1e9, float(law.accuracy(n_b, v, q)), how,
                      None if ratio == 1.0 else m.name)


def plan_latency(law: Law, rows: list[dict], budget_ms: float, text_tokens: float, *, llm_sizes=None,
                 token_options=None, batch: int = 1, decode_tokens: int = 0, min_rps: float | None = None,
                 extrapolate: bool = False, cost_model: CostModel | None = None,
                 budget_gflops: float | None = None) -> LatencyPlan:
    """Rank (N, V) by predicted accuracy among options within `budget_ms` (or reaching `min_rps` at that SLO)."""
    if not budget_ms > 0 or (min_rps is not None and not min_rps > 0) or decode_tokens < 0 or batch < 1:
        raise LeanvlError("--budget-ms and --throughput must be > 0, --decode-tokens >= 0, --batch >= 1")
    llms = measured_llms(rows)
    cost_model = cost_model or CostModel()
    sizes = sorted(set(float(s) for s in llm_sizes)) if llm_sizes else [m.n_b for m in llms]
    tokens = sorted(set(float(t) for t in token_options)) if token_options else \
        sorted({float(r["visual_tokens"]) for r in rows})
    throughput = min_rps is not None
    options = [_option(llms, law, cost_model, n, v, text_tokens, decode_tokens, None if throughput else batch,
                       budget_ms, extrapolate) for n in sizes for v in tokens]
    budget_cost = 1000.0 / min_rps if throughput else budget_ms
    usable = [o for o in options if o.requests_per_s > 0 and o.gflops > 0]
    g, c = np.array([o.gflops for o in usable]), np.array([_cost(o, throughput) for o in usable])
    ms_per_gflop = float(c @ g / (g @ g)) if usable else float("nan")
    feasible = sorted((o for o in options if o.requests_per_s > 0 and _cost(o, throughput) <= budget_cost),
                      key=lambda o: (-o.accuracy, _cost(o, throughput)))
    gflops = budget_gflops if budget_gflops is not None else budget_cost / ms_per_gflop
    fp = flops_plan(law, gflops * 1e9, text_tokens, sizes, tokens, cost_model) if np.isfinite(gflops) else None
    kinds: dict[str, int] = {}
    for o in options:
        if o.how != "measured":
            kinds[o.how] = kinds.get(o.how, 0) + 1
    notes = [f"latency {how} for {n} of {len(options)} option(s) (the table has no cell there)"
             for how, n in sorted(kinds.items())]
    extra = sorted({(o.llm_params_b, o.extrapolated_from) for o in options if o.extrapolated_from})
    size = {m.name: m.n_b for m in llms}
    notes += [f"--extrapolate: latency of {n:g}B = {ref}'s LLM terms x {n / size[ref]:.3g} (FLOPs ratio N/N_ref), "
              f"its compressor time as measured" for n, ref in extra]
    return LatencyPlan("throughput" if throughput else "latency", budget_ms, min_rps, float(text_tokens),
                       None if throughput else batch, decode_tokens, rows[0]["device"], cost_model.describe(),
                       ms_per_gflop, float(gflops), feasible, options,
                       [(r.llm_params_b, r.visual_tokens) for r in fp.rows] if fp else [], notes)
