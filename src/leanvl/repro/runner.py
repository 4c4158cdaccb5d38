"""The recipe runner: a recipe is a list of named cells run in order; a finished cell leaves DIR/cells/NAME/done.json
(its result row) and is skipped on a rerun, an interrupted cell resumes from its own checkpoints. DIR/repro.json
records the recipe and settings: a rerun with other settings is refused unless --overwrite."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from leanvl.errors import LeanvlError
from leanvl.registry import Registry

SCALES = ("tiny", "cpu", "gpu")
OUTPUTS = ("cells", "result.json", "table.md", "plot.png")


@dataclass
class Cell:
    """One unit of a recipe: `run(cell_dir)` returns its JSON-able result row."""

    name: str
    run: Callable[[str], dict[str, Any]]


@dataclass
class Recipe:
    """A finding as code: settings per scale, the cells, and the report (writes plot.png, returns table.md)."""

    name: str
    about: str
    settings: Callable[[str], dict[str, Any]]
    cells: Callable[[dict[str, Any], str], list[Cell]]
    report: Callable[[dict[str, Any], list[dict[str, Any]], str], str]


RECIPES: Registry[Recipe] = Registry("recipe", flag="repro")


def settings_for(recipe: Recipe, scale: str, device: str) -> dict[str, Any]:
    """The recipe's fixed settings at `scale` (LeanvlError for an unknown scale)."""
    if scale not in SCALES:
        raise LeanvlError(f"--scale: unknown scale '{scale}' (choose from {', '.join(SCALES)})")
    return {"recipe": recipe.name, "scale": scale, "device": device, **recipe.settings(scale)}


def run_cells(cells: list[Cell], out: str, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every cell whose done marker is missing; returns all rows in order (each with its `cell` and `wall_s`)."""
    from leanvl.train.run_dir import write_json_atomic

    rows = []
    for i, cell in enumerate(cells):
        cell_dir = os.path.join(out, "cells", cell.name)
        marker = os.path.join(cell_dir, "done.json")
        if os.path.exists(marker):
            with open(marker) as f:
                rows.append(json.load(f))
            continue
        log(f"leanvl repro: cell {i + 1}/{len(cells)} {cell.name} ...")
        os.makedirs(cell_dir, exist_ok=True)
        t0, c0 = time.time(), time.process_time()
        row = {"cell": cell.name, **cell.run(cell_dir)}
        row["wall_s"] = round(time.time() - t0, 1)
        row["cpu_s"] = round(time.process_time() - c0, 1)  # this process's CPU time: comparable on a shared box
        write_json_atomic(marker, row)
        rows.append(row)
    return rows


def run_recipe(name: str, out: str, *, scale: str = "cpu", device: str = "auto", overwrite: bool = False,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) recipe `name` into `out`; writes result.json, table.md, plot.png and returns the result."""
    from leanvl.sweep import prepare_dir
    from leanvl.train.run_dir import write_json_atomic

    recipe = RECIPES.get(name)
    settings = settings_for(recipe, scale, device)
    prepare_dir(out, settings, overwrite, name="repro.json", entries=OUTPUTS, what=f"a '{name}' repro")
    t0 = time.time()
    rows = run_cells(recipe.cells(settings, out), out, log)
    table = recipe.report(settings, rows, out)
    result = {"recipe": name, "about": recipe.about, "settings": settings, "rows": rows,
              "cells_wall_s": round(sum(r.get("wall_s", 0.0) for r in rows), 1),
              "cells_cpu_s": round(sum(r.get("cpu_s", 0.0) for r in rows), 1),
              "this_invocation_s": round(time.time() - t0, 1), "table": table}
    write_json_atomic(os.path.join(out, "result.json"), result)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table + "\n")
    return result
