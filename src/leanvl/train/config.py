"""Trainer configuration (shared by every objective) as a dataclass; the CLI mirrors it one-to-one."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from leanvl.errors import LeanvlError

PRECISIONS = ("fp32", "bf16", "amp_bf16", "bf16_master")
NAN_POLICIES = ("stop", "skip")


@dataclass
class TrainConfig:
    """How to train: optimisation, precision, checkpointing, logging. Field comments become `--help` text."""

    out: str = ""                      # run directory (checkpoints, metrics.jsonl, config.json)
    steps: int = 100                   # optimizer steps
    batch_size: int = 32               # samples per micro-batch (per process)
    accum_freq: int = 1                # micro-batches accumulated per optimizer step
    lr: float = 5e-4                   # peak learning rate
    min_lr: float = 0.0                # learning rate at the end of the cosine schedule
    warmup: int = 0                    # linear warmup steps
    weight_decay: float = 0.2          # AdamW weight decay (never on biases, norm gains, scalars)
    beta1: float = 0.9                 # AdamW beta1
    beta2: float = 0.98                # AdamW beta2
    eps: float = 1e-6                  # AdamW epsilon
    grad_clip: float = 1.0             # max global grad norm (0 disables clipping)
    precision: str = "fp32"            # fp32 | bf16 | amp_bf16 (autocast) | bf16_master (bf16 weights, fp32 masters)
    grad_checkpointing: bool = False   # recompute activations in backward to save memory
    compile: bool = False              # torch.compile the model (nn.Module.compile, keeps state-dict keys)
    seed: int = 0                      # seed for init, data order and augmentation
    device: str = "auto"               # auto | cpu | cuda | cuda:N
    save_every: int = 0                # checkpoint every K steps (0: only at the end)
    keep: int = 2                      # keep the last K checkpoints
    log_every: int = 10                # write a metrics line every K steps
    resume: str = ""                   # latest | PATH to a checkpoint directory ('' starts fresh)
    overwrite: bool = False            # replace an existing run directory
    num_workers: int = 0               # data-loading worker processes
    max_bad_fraction: float = 0.1      # stop when more than this share of samples is undecodable/empty
    nan_policy: str = "stop"           # stop | skip: what a non-finite loss does
    progress: bool = True              # show a tqdm progress bar
    extra: dict[str, Any] = field(default_factory=dict)  # objective-specific settings saved with the run
    fsdp: bool = False                 # shard params, grads and optimizer state per block (FSDP2); DCP checkpoints

    def validate(self) -> "TrainConfig":
        """Raise LeanvlError naming the first bad value."""
        positive = {"steps": self.steps, "batch_size": self.batch_size, "accum_freq": self.accum_freq,
                    "keep": self.keep, "log_every": self.log_every}
        for name, value in positive.items():
            if value < 1:
                raise LeanvlError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.lr <= 0 or self.lr != self.lr:
            raise LeanvlError(f"--lr must be > 0, got {self.lr}")
        for name in ("warmup", "save_every", "num_workers"):
            if getattr(self, name) < 0:
                raise LeanvlError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise LeanvlError("--grad-clip and --weight-decay must be >= 0")
        if self.precision not in PRECISIONS:
            raise LeanvlError(f"--precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        if self.nan_policy not in NAN_POLICIES:
            raise LeanvlError(f"--nan-policy must be one of {', '.join(NAN_POLICIES)}, got '{self.nan_policy}'")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise LeanvlError(f"--max-bad-fraction must be in [0, 1], got {self.max_bad_fraction}")
        if not self.out:
            raise LeanvlError("--out is required")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field."""
        return asdict(self)


def field_names(cls: type) -> list[str]:
    """Names of a dataclass's fields (for building CLIs from configs)."""
    return [f.name for f in fields(cls)]


@dataclass
class PretrainConfig:
    """What to pre-train on what data. Field comments become `--help` text."""

    objective: str = "superclass"      # superclass | clip | lit
    data: str = "synthetic"            # synthetic | synthetic:N | 'dir/shard-{0000..0009}.tar' | file.csv / file.tsv
    model: str = "leanvl_vit_tiny"     # encoder: leanvl built-in, any timm model name, or open_clip:NAME
    pretrained: str = ""               # local weights file for the encoder ('' = random init; 'hub' = download)
    image_size: int = 64               # input resolution (synthetic scenes render at this size)
    idf: str = "online"                # superclass IDF weighting: online | offline | none
    idf_table: str = ""                # IDF table from `leanvl data idf` (for --idf offline)
    loss: str = "softmax"              # superclass loss: softmax (soft-target CE) | bce
    label_max_tokens: int = 0          # cap BPE tokens per caption for labels (0 = whole caption; 75 = CLIP's 77 context)
    head_chunk: int = 0                # superclass: head + loss fused, N rows at a time, no B x V activations (0 = off)
    text_model: str = "leanvl-text-tiny"  # clip/lit: open_clip model config whose text tower is used (random init)
    lit_encoder: str = ""              # lit: run directory or export of the image encoder to lock
    lit_unlock: int = 0                # lit: unlock the last N blocks of the locked image encoder
    clip_local_loss: bool = True       # clip/lit under DDP: each rank scores its own images against all gathered texts

    def validate(self) -> "PretrainConfig":
        """Raise LeanvlError naming the first bad value."""
        if not 16 <= self.image_size <= 1024:
            raise LeanvlError(f"--image-size must be in [16, 1024], got {self.image_size}")
        if self.label_max_tokens < 0:
            raise LeanvlError(f"--label-max-tokens must be >= 0, got {self.label_max_tokens}")
        if self.head_chunk < 0 or (self.head_chunk and self.loss != "softmax"):
            raise LeanvlError(f"--head-chunk must be >= 0 and needs --loss softmax, got {self.head_chunk}")
        if self.idf == "offline" and not self.idf_table:
            raise LeanvlError("--idf offline needs --idf-table FILE (write one with `leanvl data idf`)")
        return self
