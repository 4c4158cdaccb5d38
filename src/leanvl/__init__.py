"""leanvl: lean vision-language models (SuperClass pre-training, CLIP baseline, few-token VLMs, scaling laws)."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_encoder"]


def __getattr__(name: str):
    # Lazy so that `import leanvl` stays cheap (no torch import for the scaling tools).
    if name == "load_encoder":
        from leanvl.models.export import load_encoder

        return load_encoder
    raise AttributeError(name)
