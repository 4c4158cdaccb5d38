"""`leanvl repro NAME [--out DIR] [--scale cpu|gpu] [--device ...] [--cache-features]`."""
from __future__ import annotations

import argparse
import contextlib

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

    load_recipes()
    out = args.out or f"runs/repro-{args.name}"
    check_dir_creatable(out, "--out")
    preflight.device(args.device)
    with _feature_cache(args) as cache:
        result = run_recipe(args.name, out, scale=args.scale, device=args.device, overwrite=args.overwrite)
    print(result["table"])
    if cache is not None:
        st = cache.stats()
        print(f"\nleanvl repro: --cache-features: {st['hits']} batches from the cache, {st['misses']} encoded, "
              f"{st['bytes'] / 2**30:.2f} GiB held")
    print(f"\nleanvl repro {args.name}: {out}/result.json, table.md, plot.png (cells {result['cells_wall_s']:.0f} s "
          f"in all, this run {result['this_invocation_s']:.0f} s)")
    return 0


def _feature_cache(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The frozen-feature cache of this run (`--cache-features`), or a context yielding None."""
    from leanvl.errors import LeanvlError
    from leanvl.vlm.feature_cache import caching

    if not args.cache_features:
        return contextlib.nullcontext(None)
    if not (args.cache_gb > 0 and args.cache_gb < float("inf")):
        raise LeanvlError(f"--cache-gb must be a positive number, got {args.cache_gb}")
    return caching(args.cache_gb)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `repro`."""
    p = sub.add_parser("repro", help="reproduce a paper finding with a fixed, seeded, resumable recipe")
    p.add_argument("name", choices=RECIPE_NAMES, help="the recipe")
    p.add_argument("--out", default="", help="output directory (default runs/repro-NAME)")
    p.add_argument("--scale", default="cpu", choices=("cpu", "gpu", "tiny"),
                   help="budget: cpu (default, <= ~30 min on a quiet 2-core box), gpu (larger), tiny (smoke test)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--overwrite", action="store_true", help="replace a repro with other settings in --out")
    p.add_argument("--cache-features", action="store_true",
                   help="reuse the frozen encoder's features of batches an earlier cell encoded (same results)")
    p.add_argument("--cache-gb", type=float, default=4.0, help="--cache-features: most memory the cache holds")
    p.set_defaults(func=_repro)
