"""Data: synthetic scenes, sources (synthetic | webdataset shards | CSV/TSV), shard writing and exact batching.

Names are imported lazily so that `import leanvl.data` (e.g. by the CLI) does not pull in torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Sample": "leanvl.data.sample", "SkipSample": "leanvl.data.sample", "SKIP_REASONS": "leanvl.data.sample",
    "scene_for_index": "leanvl.data.synthetic", "SHAPES": "leanvl.data.synthetic", "COLORS": "leanvl.data.synthetic",
    "SPLITS": "leanvl.data.synthetic",
    "open_source": "leanvl.data.sources", "Source": "leanvl.data.sources",
    "write_shards": "leanvl.data.shards",
    "make_batches": "leanvl.data.loader", "DataStats": "leanvl.data.loader",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'leanvl.data' has no attribute {name!r}")
