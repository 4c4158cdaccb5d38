"""What to pre-train on what data: the shared fields plus the chosen objective's own options group.

config.json stores the options nested (`"options": {...}`); older run directories with every objective's flag at
the top level (`"idf": ..., "text_model": ...`) still load through `PretrainConfig.from_dict`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from leanvl.cliutil import opt
from leanvl.errors import LeanvlError
from leanvl.objective_options import OBJECTIVE_OPTIONS

DECODE_MODES = ("cpu", "gpu")


@dataclass
class PretrainConfig:
    """Shared pre-training settings; `options` is the objective's options dataclass (None: its defaults)."""

    objective: str = opt("superclass", "superclass | clip | siglip | lit")
    data: str = opt("synthetic", "synthetic | synthetic:N | 'dir/shard-{0000..0009}.tar' | file.csv / file.tsv")
    model: str = opt("leanvl_vit_tiny", "encoder: leanvl built-in, any timm model name, or open_clip:NAME")
    pretrained: str = opt("", "local weights file for the encoder ('' = random init; 'hub' = download)")
    image_size: int = opt(64, "input resolution (synthetic scenes render at this size)")
    label_max_tokens: int = opt(0, "cap BPE tokens per caption for labels (0 = whole caption; 75 = CLIP's 77 "
                                   "context)")
    data_weights: str = opt("", "mixture weights of a --data 'A::B' mixture, e.g. 1::3 ('' = equal)")
    resampled: bool = opt(False, "draw shards with replacement (open_clip's --dataset-resampled)")
    samples_per_epoch: int = opt(0, "virtual epoch length in samples (0 = one pass over the data)")
    data_cache: str = opt("", "node cache: remote shard indexes + whole pipe: shards ('' = ~/.cache/leanvl/shards)")
    data_cache_gb: float = opt(100.0, "size bound of --data-cache's pipe: shards in GiB (least recently used go)")
    options: Any = opt(None, "the objective's options (set from its own group of flags)")
    decode: str = opt("cpu", "cpu | gpu: where training JPEGs are decoded and cropped (gpu: workers ship the bytes, "
                             "the training device decodes them, nvJPEG on CUDA)")
    eval_n: int = opt(300, "--eval-every: held-out synthetic scenes per split (k-NN fit / test, zero-shot)")

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVE_OPTIONS:
            raise OBJECTIVE_OPTIONS.unknown(self.objective)
        if self.options is None:
            self.options = OBJECTIVE_OPTIONS.create(self.objective)
        elif isinstance(self.options, dict):
            self.options = options_from(self.objective, self.options)

    def validate(self) -> "PretrainConfig":
        """Raise LeanvlError naming the first bad value."""
        if not 16 <= self.image_size <= 1024:
            raise LeanvlError(f"--image-size must be in [16, 1024], got {self.image_size}")
        if self.label_max_tokens < 0:
            raise LeanvlError(f"--label-max-tokens must be >= 0, got {self.label_max_tokens}")
        if self.decode not in DECODE_MODES:
            raise LeanvlError(f"--decode must be one of {', '.join(DECODE_MODES)}, got '{self.decode}'")
        if self.eval_n < 20:
            raise LeanvlError(f"--eval-n must be >= 20, got {self.eval_n}")
        self.options.validate()
        self.check_names()
        return self

    def check_names(self) -> None:
        """The encoder name, weights file and data cache, looked up without building or reading anything."""
        from leanvl import preflight

        locked = self.options.locked_encoder()
        if locked:  # LiT loads its encoder from --lit-encoder; --model is unused
            preflight.existing(locked, "--lit-encoder", kind="dir")
        else:
            preflight.encoder_name(self.model, "--model")
        if self.pretrained != "hub":
            preflight.weights_file(self.pretrained, "--pretrained")
        preflight.cache_dir(self.data_cache)
        preflight.items(self.eval_n, "--eval-n", 20)
        text_model = getattr(self.options, "text_model", None)
        if text_model is not None:
            preflight.text_model(text_model)  # a config lookup, no tower is built

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; the objective's options nested under `options`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> "PretrainConfig":
        """From `to_dict()` output, or from an older flat dict with every objective's fields at the top level."""
        names = {f.name for f in fields(cls)} - {"options"}
        objective = saved.get("objective", "superclass")
        nested = saved.get("options")
        options = nested if isinstance(nested, dict) else {k: v for k, v in saved.items() if k not in names}
        return cls(**{k: v for k, v in saved.items() if k in names}, options=options_from(objective, options))


def options_from(objective: str, values: dict[str, Any]) -> Any:
    """The options dataclass of `objective` from a dict (keys it does not declare are ignored)."""
    options_cls = OBJECTIVE_OPTIONS.get(objective)
    known = {f.name for f in fields(options_cls)}
    return options_cls(**{k: v for k, v in values.items() if k in known})
