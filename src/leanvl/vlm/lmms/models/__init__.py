"""lmms-eval plugin table: `AVAILABLE_MODELS` (read via LMMS_EVAL_PLUGINS) and `manifest()` (the entry point)."""
from __future__ import annotations

from typing import Any

AVAILABLE_MODELS = {"leanvl": "LeanvlLMMS"}
CLASS_PATH = "leanvl.vlm.lmms.models.leanvl.LeanvlLMMS"


def manifest() -> Any:
    """lmms-eval ModelManifest registering `--model leanvl` (entry-point group `lmms_eval.models`)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id="leanvl", simple_class_path=CLASS_PATH)
