"""`leanvl compare` settings (a dataclass; its fields are the command's flags)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from leanvl.cliutil import opt
from leanvl.errors import LeanvlError
from leanvl.paths import check_dir_creatable, check_file_writable

BUDGETS = ("steps", "seconds", "cpu-seconds")


@dataclass
class CompareConfig:
    """What to compare on what budget. Each field's `opt` help is its `--help`."""

    data: str = opt("synthetic", "training data: synthetic | synthetic:N | shard pattern | CSV/TSV")
    steps: int = opt(300, "--budget steps: optimizer steps of every run (SuperClass, CLIP, SigLIP, LiT)")
    batch_size: int = opt(64, "samples per step of every run")
    out: str = opt("", "output directory (one run directory per objective, report files)")
    json: str = opt("", "also write the comparison JSON here (always written to OUT/compare.json)")
    model: str = opt("leanvl_convnet", "image encoder shared by every objective")
    image_size: int = opt(64, "input resolution")
    text_model: str = opt("leanvl-text-tiny", "open_clip text tower config for CLIP, SigLIP and LiT")
    lr: float = opt(1e-3, "peak learning rate of every run")
    warmup: int = opt(10, "linear warmup steps of every run")
    seed: int = opt(0, "seed of init, data order and augmentation (same for every run)")
    device: str = opt("auto", "auto | cpu | cuda")
    precision: str = opt("fp32", "fp32 | bf16 | amp_bf16 | bf16_master (every run)")
    eval_train: int = opt(2000, "held-out synthetic scenes the probe / k-shot classifiers are fit on")
    eval_test: int = opt(1000, "held-out synthetic scenes scored by every evaluation")
    k: int = opt(10, "shots per class for the k-shot evaluation")
    overwrite: bool = opt(False, "replace earlier results in --out")
    budget: str = opt("steps", "steps: every run trains --steps; seconds: every run trains --seconds of wall-clock; "
                               "cpu-seconds: --seconds of its process's CPU time (fair on a shared CPU box)")
    seconds: float = opt(60.0, "--budget seconds|cpu-seconds: training seconds of EACH run (lr cosine over them)")

    def validate(self) -> "CompareConfig":
        """Raise LeanvlError naming the first bad value."""
        if not self.out:
            raise LeanvlError("--out is required")
        for name in ("steps", "batch_size", "eval_train", "eval_test", "k"):
            if getattr(self, name) < 1:
                raise LeanvlError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.budget not in BUDGETS:
            raise LeanvlError(f"--budget must be one of {', '.join(BUDGETS)}, got '{self.budget}'")
        if not 0 < self.seconds < float("inf"):  # NaN fails too
            raise LeanvlError(f"--seconds must be a finite number > 0, got {self.seconds}")
        if self.eval_test < 5:
            raise LeanvlError(f"--eval-test must be >= 5 (retrieval R@5), got {self.eval_test}")
        self.validate_runs()
        if self.json:
            check_file_writable(self.json, "--json")
        check_dir_creatable(self.out, "--out")
        if os.path.isdir(self.out) and os.listdir(self.out) and not self.overwrite:
            raise LeanvlError(f"--out {self.out} is not empty; pass --overwrite to replace its runs")
        return self

    def validate_runs(self) -> None:
        """The settings every run gets, checked as `leanvl pretrain` would check them (before any run starts)."""
        from leanvl import preflight
        from leanvl.pretrain_config import PretrainConfig
        from leanvl.train.config import TrainConfig

        for name in ("eval_train", "eval_test"):
            preflight.items(getattr(self, name), f"--{name.replace('_', '-')}")
        preflight.data_spec(self.data)
        preflight.count(self.k, "--k", 1, 10_000)
        PretrainConfig(objective="clip", data=self.data, model=self.model, image_size=self.image_size,
                       options={"text_model": self.text_model}).validate()
        TrainConfig(out=self.out, steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup=self.warmup,
                    seed=self.seed, device=self.device, precision=self.precision).validate()
        preflight.device(self.device)
