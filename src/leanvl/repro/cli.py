"""`leanvl repro NAME [--out DIR] [--scale cpu|gpu] [--device ...] [--cache-features]`."""
from __future__ import annotations

import argparse

RECIPE_NAMES = ("quecc", "ocr-tokens", "scaling", "superclass-vs-clip")


def load_recipes() -> None:
    """Import the modules that register the recipes."""
    import leanvl.repro.compare_recipe  # noqa: F401
    import leanvl.repro.study_recipes  # noqa: F401
    import leanvl.repro.vlm_recipes  # noqa: F401
    import leanvl.repro.ocr_recipe  # noqa: F401


def _repro(args: argparse.Namespace) -> int:
    from leanvl.repro.runner import run_recipe

    from leanvl import preflight
    from leanvl.paths import check_dir_creatable
    from leanvl.vlm import feature_cache

    load_recipes()
    out = args.out or f"runs/repro-{args.name}"
    check_dir_creatable(out, "--out")
    preflight.device(args.device)
    with feature_cache.from_flags(args) as cache:
        result = run_recipe(args.name, out, scale=args.scale, device=args.device, overwrite=args.overwrite)
    print(result["table"])
    if cache is not None:
        print(f"\nleanvl repro: {cache.summary()}")
    print(f"\nleanvl repro {args.name}: {out}/result.json, table.md, plot.png (cells {result['cells_wall_s']:.0f} s "
          f"in all, this run {result['this_invocation_s']:.0f} s)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `repro`."""
    from leanvl.vlm import feature_cache

    p = sub.add_parser("repro", help="reproduce a paper finding with a fixed, seeded, resumable recipe")
    p.add_argument("name", choices=RECIPE_NAMES, help="the recipe")
    p.add_argument("--out", default="", help="output directory (default runs/repro-NAME)")
    p.add_argument("--scale", default="cpu", choices=("cpu", "gpu", "tiny"),
                   help="budget: cpu (default, <= ~30 min on a quiet 2-core box), gpu (larger), tiny (smoke test)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--overwrite", action="store_true", help="replace a repro with other settings in --out")
    feature_cache.add_flags(p)
    p.set_defaults(func=_repro)
