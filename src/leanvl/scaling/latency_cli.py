"""`leanvl scaling plan --latency TABLE --budget-ms T`: the flags, the printed report, JSON and the plot."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from leanvl.errors import LeanvlError
from leanvl.paths import output_file

if TYPE_CHECKING:   # numpy/scipy stay out of `leanvl --help`
    from leanvl.scaling.latency import LatencyPlan, LatencyRow


def add_latency_args(p) -> None:
    """Add the latency-planning flags to `scaling plan`."""
    p.add_argument("--latency", metavar="TABLE", help="latency table from `leanvl vlm bench --table` (*.json|*.csv): "
                                                      "plan on measured ms instead of FLOPs")
    p.add_argument("--budget-ms", type=float, help="latency budget per batch of requests in ms (with --latency); "
                                                   "with --throughput: the latency SLO")
    p.add_argument("--batch", type=int, default=1, help="concurrent requests per prefill to plan for (default 1)")
    p.add_argument("--decode-tokens", type=int, default=0, help="answer tokens K: adds K x decode ms/token "
                                                                "(default 0: prefill only)")
    p.add_argument("--extrapolate", action="store_true", help="allow LLM sizes not in the table: scale the nearest "
                                                              "measured LLM's latency by the FLOPs ratio N/N_ref")
    p.add_argument("--throughput", type=float, metavar="RPS", help="plan for at least RPS requests/s within the "
                                                                   "--budget-ms SLO (best measured batch per option)")
    p.add_argument("--plot", type=output_file("--plot"),
                   help="with --latency: write error vs FLOPs | error vs measured latency to this PNG")


def short(name: str) -> str:
    """An LLM name for a table cell: a config.json or directory path by its last part."""
    path = Path(name)
    return path.stem if path.suffix == ".json" else path.name or name


def _label(r: "LatencyRow") -> str:
    return f"{short(r.llm)} ({r.llm_params_b:.4g}B), V = {r.visual_tokens:g}"


def side_by_side(plan: "LatencyPlan") -> list[str]:
    """The FLOPs-optimal and latency-optimal choices next to each other, and whether (and how) they differ."""
    f, lat = plan.flops_choice, plan.latency_choice
    cols = [("", "FLOPs-optimal", "latency-optimal")]
    for name, get in (("LLM", lambda r: f"{short(r.llm)} ({r.llm_params_b:.4g}B)"),
                      ("V", lambda r: f"{r.visual_tokens:g}"),
                      ("batch", lambda r: str(r.batch)), ("latency ms", lambda r: f"{r.latency_ms:.1f}"),
                      ("requests/s", lambda r: f"{r.requests_per_s:.2f}"), ("GFLOPs", lambda r: f"{r.gflops:.4g}"),
                      ("pred. acc", lambda r: f"{r.accuracy:.4f}")):
        cols.append((name, get(f) if f else "-", get(lat) if lat else "-"))
    lines = [f"{a:<11} {b:<28} {c:<28}" for a, b, c in cols]
    if f is None or lat is None:
        lines.append("no comparison: " + ("nothing fits the FLOPs budget" if f is None else "nothing fits the budget"))
    elif (f.llm_params_b, f.visual_tokens) == (lat.llm_params_b, lat.visual_tokens):
        lines.append("same choice under FLOPs and measured latency")
    else:
        what = [w for w, a, b in (("N", f.llm_params_b, lat.llm_params_b), ("V", f.visual_tokens, lat.visual_tokens))
                if a != b]
        if plan.mode == "throughput":
            fits = f.requests_per_s >= plan.min_rps
            measured = (f"reaches {f.requests_per_s:.3g} requests/s within the SLO ({'at least' if fits else 'below'}"
                        f" the {plan.min_rps:g} asked)")
        else:
            fits = f.latency_ms <= plan.budget_ms
            measured = (f"measures {f.latency_ms:.1f} ms ({'within' if fits else 'over'} the {plan.budget_ms:g} ms "
                        f"budget)")
        lines.append(f"they differ in {' and '.join(what)}: the FLOPs choice {_label(f)} {measured}; measured "
                     f"latency picks {_label(lat)} ({lat.accuracy - f.accuracy:+.4f} predicted accuracy)")
    return lines


def format_plan(plan: "LatencyPlan", top: int = 15) -> str:
    """The printed report: settings, ranked options, notes, and the side-by-side comparison."""
    mode = (f"throughput >= {plan.min_rps:g} requests/s within a {plan.budget_ms:g} ms SLO" if plan.mode == "throughput"
            else f"budget {plan.budget_ms:g} ms per batch of {plan.batch}")
    lines = [f"{mode}, Q = {plan.text_tokens:g}, decode tokens K = {plan.decode_tokens}, on {plan.device}",
             f"FLOPs side: {plan.cost_model}; the table's rate {plan.ms_per_gflop:.4g} ms/GFLOP "
             f"(least squares through 0) -> {plan.flops_budget_gflops:.4g} GFLOPs budget per request",
             f"{'rank':>4} {'LLM':<16} {'N (B)':>9} {'V':>5} {'batch':>5} {'ms':>9} {'req/s':>8} {'GFLOPs':>9} "
             f"{'pred. acc':>9}  latency"]
    for i, r in enumerate(plan.rows[:top], start=1):
        lines.append(f"{i:>4} {short(r.llm):<16} {r.llm_params_b:>9.4g} {r.visual_tokens:>5g} {r.batch:>5} "
                     f"{r.latency_ms:>9.2f} {r.requests_per_s:>8.2f} {r.gflops:>9.4g} {r.accuracy:>9.4f}  {r.how}"
                     + (f", N scaled from {r.extrapolated_from}" if r.extrapolated_from else ""))
    if not plan.rows:
        lines.append("   (no option fits the budget)")
    lines.append(f"{len(plan.rows)} feasible option(s), {len(plan.options) - len(plan.rows)} over budget")
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines + [""] + side_by_side(plan))


def run_latency_plan(args, law, cost_model) -> int:
    """Validate the flags, plan on the latency table, print; write --json and --plot last."""
    from leanvl.scaling.latency import plan_latency
    from leanvl.scaling.latency_table import read_table

    if args.budget_ms is None:
        raise LeanvlError("--latency needs --budget-ms (the latency budget, or the SLO with --throughput)")
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise LeanvlError(f"--plot {args.plot}: name it *.png")
    result = plan_latency(law, read_table(args.latency), args.budget_ms, args.text_tokens,
                          llm_sizes=args.llm_sizes, token_options=args.token_options, batch=args.batch,
                          decode_tokens=args.decode_tokens, min_rps=args.throughput, extrapolate=args.extrapolate,
                          cost_model=cost_model, budget_gflops=args.budget_gflops)
    print(format_plan(result, args.top))
    if args.json:
        Path(args.json).write_text(result.to_json())
        print(f"wrote {args.json}")
    if args.plot:
        from leanvl.scaling.latency_plots import plot_latency_frontier

        print(f"plot: {plot_latency_frontier(result, law, Path(args.plot))}")
    return 0
