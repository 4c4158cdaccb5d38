"""Training objectives: each an nn.Module whose forward(batch) returns {"loss": ..., other scalars}."""
import importlib
import importlib.util

from leanvl.objectives.registry import OBJECTIVES, build_objective, register_objective

# Importing a module registers its objectives (modules not present in this build are skipped).
for _name in ("superclass", "clip"):
    if importlib.util.find_spec(f"leanvl.objectives.{_name}") is not None:
        importlib.import_module(f"leanvl.objectives.{_name}")

__all__ = ["OBJECTIVES", "build_objective", "register_objective"]
