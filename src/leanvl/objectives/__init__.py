"""Training objectives: each an nn.Module whose forward(batch) returns {"loss": ..., other scalars}."""
from leanvl.objectives import superclass, clip, siglip  # noqa: F401,I001  (importing a module registers its objectives)
from leanvl.objective_options import OBJECTIVE_OPTIONS
from leanvl.objectives.registry import OBJECTIVES, World, build_objective, register_objective

__all__ = ["OBJECTIVES", "OBJECTIVE_OPTIONS", "World", "build_objective", "register_objective"]
