"""`leanvl scaling fit` and `leanvl scaling plan` (numpy/scipy/matplotlib only: no torch import)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from leanvl.errors import LeanvlError
from leanvl.paths import output_dir, output_file

PLOT_Q_DEFAULT = 50.0  # text tokens assumed for FLOPs in plots when the data has none (the paper's reasoning Q)


def register(subparsers) -> None:
    """Add `scaling fit` and `scaling plan`."""
    p = subparsers.add_parser("scaling", help="scaling laws: fit error(N, V) and plan inference-optimal deployments")
    sub = p.add_subparsers(dest="scaling_command", metavar="{fit,plan}", parser_class=type(p))
    sub.required = True
    f = sub.add_parser("fit", help="fit error = A*N^-alpha*V^-beta + D to a results CSV, with CIs and CV")
    f.add_argument("csv", nargs="?", help="results CSV (llm_params_b, visual_tokens, accuracy|error, "
                                          "[text_tokens], [n_questions], [task])")
    f.add_argument("--reference", choices=["reasoning"], help="fit the shipped paper data instead of a CSV")
    f.add_argument("--form", choices=["paper", "qv"], default="paper",
                   help="paper: T = V in the error term; qv: T = Q + V (needs text tokens)")
    f.add_argument("--text-tokens", type=float, help="text tokens Q for rows without a text_tokens column "
                                                      "(used by --form qv and for plot FLOPs)")
    f.add_argument("--bootstrap", default="1000", metavar="[METHOD:]N",
                   help="95%% intervals: METHOD residual (i.i.d. residuals), cluster (whole LLM sizes' residual "
                        "vectors), wild-cluster (one random weight per LLM size) or pairs-cluster (whole LLM sizes "
                        "with their rows), N resamples (a bare METHOD: 1000; a bare N: residual; 0: none; "
                        "default 1000)")
    f.add_argument("--weights", choices=["none", "binomial"], default="none",
                   help="binomial: weight residuals by n/(p(1-p)) (needs an n_questions column)")
    f.add_argument("--loss", choices=["squares", "huber"], default="squares",
                   help="huber: Huber loss (delta 1e-3) on log error, L-BFGS-B, as the Chinchilla replication")
    f.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    f.add_argument("--starts", type=int, default=4, help="least-squares starts (multi-start)")
    f.add_argument("--json", type=output_file("--json"), help="write the fit(s) to this JSON file")
    f.add_argument("--plot", type=output_dir("--plot"), help="write PNG plots into this directory")
    f.set_defaults(func=run_fit)
    pl = sub.add_parser("plan", help="choose LLM size and visual tokens for a FLOPs budget from a fitted law")
    pl.add_argument("--law", required=True, help="JSON written by `leanvl scaling fit --json`")
    pl.add_argument("--task", help="task group in the law file (when it holds several)")
    pl.add_argument("--budget-gflops", type=float, help="inference budget per request, GFLOPs (required without "
                                                         "--latency; with it: the FLOPs side's budget)")
    pl.add_argument("--text-tokens", type=float, required=True, help="text tokens Q per request")
    pl.add_argument("--llm-sizes", type=float, nargs="+", help="candidate LLM sizes in billions "
                                                                "(default: the fit's sizes plus 14)")
    pl.add_argument("--token-options", type=float, nargs="+", help="candidate visual-token counts "
                                                                    "(default: 1 4 16 36 64 144 576)")
    pl.add_argument("--vision-gflops", type=float, default=0.0, help="vision encoder GFLOPs per image (cost term)")
    pl.add_argument("--compressor-gflops", type=float, default=0.0, help="compressor GFLOPs per image (cost term)")
    pl.add_argument("--quecc", action="store_true", help="add QueCC's extra LLM pass over the question (2NQ)")
    pl.add_argument("--llm-config", action="append", default=[], metavar="SIZE=CONFIG.json",
                    help="HF config.json of the LLM of SIZE billions: adds attention's quadratic cost (repeatable)")
    pl.add_argument("--top", type=int, default=15, help="rows of the ranked table to print")
    pl.add_argument("--json", type=output_file("--json"), help="write the plan to this JSON file")
    from leanvl.scaling.latency_cli import add_latency_args

    add_latency_args(pl)
    pl.set_defaults(func=run_plan)


def _summary(fit) -> str:
    law, ci = fit.law, fit.ci
    lines = [f"{fit.source} [task {fit.task}] form={law.form}, {fit.n_points} points"]
    for name in ("alpha", "beta", "A", "D"):
        iv = f"  95% CI [{ci[name][0]:.4g}, {ci[name][1]:.4g}]" if name in ci else ""
        lines.append(f"  {name:<5} = {getattr(law, name):.4g}{iv}")
    lines.append(f"  SSE = {fit.sse:.4g}, R^2 = {fit.r2:.4f}")
    if fit.options != {"loss": "squares", "weights": "none"}:
        lines.append(f"  fit: loss {fit.options['loss']}, weights {fit.options['weights']}")
    if fit.bootstrap:
        b = fit.bootstrap
        exact = " (all cluster draws, exact)" if b.get("exact") else ""
        lines.append(f"  bootstrap: {b['n']} {b['method']} resamples{exact}, seed {b['seed']}, {b['wall_s']:.2f} s")
    cv = fit.cv
    if "mean_abs_pts" in cv:
        lines.append(f"  leave-one-LLM-size-out: mean |error| {cv['mean_abs_pts']:.3f} pts, "
                     f"max {cv['max_abs_pts']:.3f} pts (accuracy points)")
    elif cv:
        lines.append(f"  leave-one-LLM-size-out: {cv.get('skipped')}")
    if fit.form_comparison:
        s = fit.form_comparison["cv_mean_abs_pts"]
        lines.append(f"  form CV (mean |error|): paper {s['paper']:.3f} pts, qv {s['qv']:.3f} pts "
                     f"-> {fit.form_comparison['better']} cross-validates better")
    return "\n".join(lines)


def _bootstrap_spec(text: str) -> tuple[str, int]:
    """`N`, `METHOD` or `METHOD:N` -> (method, N); N defaults to 1000."""
    from leanvl.scaling.robust import RESAMPLING

    method, _, count = str(text).partition(":")
    if method.strip().lstrip("-").isdigit() and not count:
        method, count = "residual", method
    try:
        n = int(count) if count else 1000
    except ValueError:
        n = -1
    if method not in RESAMPLING or n < 0:
        raise LeanvlError(f"--bootstrap {text!r}: expected N or METHOD[:N], METHOD one of {', '.join(RESAMPLING)}, "
                          f"N >= 0")
    return method, n


def run_fit(args) -> int:
    """Fit each task group of the CSV; print a summary, optionally write JSON and plots."""
    from leanvl.scaling.io import load_results_csv, reference_path
    from leanvl.scaling.law import compare_forms, fit_law

    if bool(args.csv) == bool(args.reference):
        raise LeanvlError("give either a CSV path or --reference NAME (not both, not neither)")
    resample, n_boot = _bootstrap_spec(args.bootstrap)
    if args.starts < 1:
        raise LeanvlError("--starts must be >= 1")
    if args.text_tokens is not None and not (np.isfinite(args.text_tokens) and args.text_tokens >= 0):
        raise LeanvlError(f"--text-tokens must be a finite number >= 0, got {args.text_tokens}")
    groups = load_results_csv(reference_path(args.reference) if args.reference else args.csv)
    fits = {}
    for task, data in groups.items():
        if data.q is None and args.text_tokens is not None:
            data.q = np.full(len(data), args.text_tokens)
        fit = fit_law(data, args.form, n_boot=n_boot, seed=args.seed, starts=args.starts, loss=args.loss,
                      weights=args.weights, resample=resample)
        fit.form_comparison = compare_forms(data, args.starts, args.loss, args.weights)
        fits[task] = fit
        print(_summary(fit))
        if args.plot:
            from leanvl.scaling.plots import make_plots

            q = float(np.median(data.q)) if data.q is not None else PLOT_Q_DEFAULT
            prefix = "scaling" if len(groups) == 1 else f"scaling_{task}"
            for path in make_plots(fit, data, args.plot, q=q, prefix=prefix):
                print(f"  plot: {path}")
    if args.json:
        payload = next(iter(fits.values())).to_dict() if len(fits) == 1 else \
            {"tasks": {t: f.to_dict() for t, f in fits.items()}}
        Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    return 0


def _load_law(path: str, task: str | None) -> dict:
    p = Path(path)
    if not p.is_file():
        raise LeanvlError(f"{path}: no such file")
    try:
        d = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LeanvlError(f"{path}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(d, dict):
        raise LeanvlError(f"{path}: expected a JSON object written by `leanvl scaling fit --json`")
    if "tasks" in d:
        if task is None and len(d["tasks"]) == 1:
            task = next(iter(d["tasks"]))
        if task not in d["tasks"]:
            raise LeanvlError(f"{path}: pick a task with --task, one of {sorted(d['tasks'])}")
        d = d["tasks"][task]
    return d


def _cost_model(args):
    from leanvl.scaling.cost import CostModel

    configs = {}
    for item in args.llm_config:
        size, _, cfg = item.partition("=")
        try:
            configs[float(size)] = json.loads(Path(cfg).read_text())
        except ValueError:
            raise LeanvlError(f"--llm-config {item!r}: expected SIZE=CONFIG.json with a readable JSON file") from None
        except OSError:
            raise LeanvlError(f"--llm-config {item!r}: cannot read {cfg}") from None
    for name in ("vision_gflops", "compressor_gflops"):
        if getattr(args, name) < 0:
            raise LeanvlError(f"--{name.replace('_', '-')} must be >= 0")
    return CostModel.from_hf_configs(configs, vision_flops=args.vision_gflops * 1e9,
                                     compressor_flops=args.compressor_gflops * 1e9, query_pass=args.quecc)


def run_plan(args) -> int:
    """Print the closed-form V* and the ranked feasible (N, V) options; optionally write JSON."""
    from leanvl.scaling.law import Law
    from leanvl.scaling.plan import DEFAULT_TOKENS, plan

    d = _load_law(args.law, args.task)
    law = Law.from_dict(d)
    if args.latency:
        from leanvl.scaling.latency_cli import run_latency_plan

        return run_latency_plan(args, law, _cost_model(args))
    if args.budget_ms is not None or args.throughput is not None or args.extrapolate or args.plot:
        raise LeanvlError("--budget-ms, --throughput, --extrapolate and --plot need --latency TABLE")
    if args.budget_gflops is None:
        raise LeanvlError("give --budget-gflops (FLOPs plan), or --latency TABLE --budget-ms T (latency plan)")
    sizes = args.llm_sizes or sorted(set(d.get("llm_sizes_b") or []) | {14.0})
    result = plan(law, args.budget_gflops * 1e9, args.text_tokens, sizes, args.token_options or DEFAULT_TOKENS,
                  _cost_model(args))
    print(result.table(args.top))
    if args.json:
        Path(args.json).write_text(result.to_json())
        print(f"wrote {args.json}")
    return 0
