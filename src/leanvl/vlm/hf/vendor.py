"""Copy leanvl's own model modules into an export directory as flat `leanvl_*.py` files (imports rewritten).

The exported model then runs the exact code it was trained with, and transformers' remote-code loader finds
every file through relative imports, so leanvl itself need not be installed where the model is loaded.
"""
from __future__ import annotations

import importlib.util
import os
import re

from leanvl.errors import LeanvlError

# leanvl module -> flat file name in the export (the closure of what modeling/processing_leanvl.py import)
VENDORED = {
    "leanvl.errors": "leanvl_errors",
    "leanvl.registry": "leanvl_registry",
    "leanvl.models.weights": "leanvl_weights",
    "leanvl.data.transforms": "leanvl_transforms",
    "leanvl.models.convnet": "leanvl_convnet",
    "leanvl.models.encoders": "leanvl_encoders",
    "leanvl.models.export": "leanvl_export",
    "leanvl.vlm.chat": "leanvl_chat",
    "leanvl.vlm.compressors": "leanvl_compressors",
    "leanvl.vlm.projector": "leanvl_projector",
    "leanvl.vlm.vision": "leanvl_vision",
    "leanvl.vlm.feature_cache": "leanvl_feature_cache",
    "leanvl.vlm.model": "leanvl_model",
    "leanvl.vlm.generate": "leanvl_generate",
}
TEMPLATES = ("configuration_leanvl.py", "modeling_leanvl.py", "processing_leanvl.py")
_FROM = re.compile(r"^(\s*)from (leanvl(?:\.\w+)*) import ", re.M)
# optional backbones are imported only when used: hide them from transformers' import check
_OPTIONAL = re.compile(r"^(\s*)import (open_clip)\s*$", re.M)


def rewrite(source: str, where: str) -> str:
    """Source text with `from leanvl.x.y import` -> `from .leanvl_y import`; LeanvlError on anything unvendored."""
    def sub(m: re.Match) -> str:
        if m.group(2) not in VENDORED:
            raise LeanvlError(f"export: {where} imports {m.group(2)}, which is not vendored")
        return f"{m.group(1)}from .{VENDORED[m.group(2)]} import "

    out = _OPTIONAL.sub(lambda m: f'{m.group(1)}{m.group(2)} = __import__("{m.group(2)}")', _FROM.sub(sub, source))
    if re.search(r"^\s*(import leanvl|from leanvl)", out, re.M):
        raise LeanvlError(f"export: {where} still imports leanvl after rewriting")
    return out


def write_code(out_dir: str) -> list[str]:
    """Write the vendored modules and the modeling/config/processing templates; returns the file names."""
    names = []
    for module, flat in VENDORED.items():
        spec = importlib.util.find_spec(module)
        with open(spec.origin, encoding="utf-8") as f:
            text = rewrite(f.read(), module)
        names.append(_write(out_dir, f"{flat}.py", text))
    here = os.path.join(os.path.dirname(__file__), "remote")
    for name in TEMPLATES:
        with open(os.path.join(here, name), encoding="utf-8") as f:
            names.append(_write(out_dir, name, f.read()))
    return names


def _write(out_dir: str, name: str, text: str) -> str:
    with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
        f.write(text)
    return name
