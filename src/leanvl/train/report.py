"""`--report-to tensorboard,wandb`: the scalars of metrics.jsonl (plus eval results) mirrored to TensorBoard / W&B.

TensorBoard event files go to RUN/tensorboard; a resumed run writes to the same directory with `purge_step` set
to the first step it will log again, so the curves continue without the steps a crash left behind. W&B runs in
offline mode (files under RUN/wandb) unless WANDB_MODE says otherwise or an API key is configured; the run id is
kept in RUN/wandb_id.txt so a resume appends to the same W&B run.
"""
from __future__ import annotations

import os
import secrets
from typing import Any

from leanvl.errors import LeanvlError

REPORTERS = ("tensorboard", "wandb")
TB_DIR = "tensorboard"
WANDB_ID = "wandb_id.txt"


def parse_report_to(spec: str) -> list[str]:
    """The reporter names of `--report-to` ('' = none); LeanvlError for unknown names or missing packages."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        if name not in REPORTERS:
            raise LeanvlError(f"--report-to: unknown reporter '{name}' (choose from {', '.join(REPORTERS)})")
    for name, module in (("tensorboard", "tensorboard"), ("wandb", "wandb")):
        if name in names:
            try:
                __import__(module)
            except ImportError:
                raise LeanvlError(f"--report-to {name}: the '{module}' package is not installed "
                                  f"(pip install 'leanvl[{name}]')") from None
    return names


def flat_scalars(scalars: dict[str, Any], data: dict[str, Any]) -> dict[str, float]:
    """The numeric scalars of one metrics row, plus data-skip counts (total and per reason)."""
    out = {k: float(v) for k, v in scalars.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    out["data/raw"] = float(data.get("raw", 0))
    out["data/skipped"] = float(data.get("skipped", 0))
    for reason, n in data.get("by_reason", {}).items():
        out[f"data/skipped_{reason}"] = float(n)
    return out


def wandb_mode() -> str:
    """WANDB_MODE when set; 'online' only when an API key is configured; else 'offline' (no network needed)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = os.path.expanduser("~/.netrc")
    has_key = bool(os.environ.get("WANDB_API_KEY")) or (
        os.path.isfile(netrc) and "api.wandb.ai" in open(netrc, encoding="utf-8", errors="ignore").read())
    return "online" if has_key else "offline"


class Reporter:
    """Fans one step's scalars out to the configured backends (main process only; no-op without backends)."""

    def __init__(self, out: str, names: list[str], first_step: int, config: dict[str, Any],
                 project: str = "leanvl") -> None:
        self.tb = self.wandb_run = None
        if "tensorboard" in names:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=os.path.join(out, TB_DIR), purge_step=first_step)
        if "wandb" in names:
            self.wandb_run = _init_wandb(out, config, project)

    def log(self, step: int, scalars: dict[str, Any], data: dict[str, Any]) -> None:
        """Record the scalars of optimizer step `step`."""
        values = flat_scalars(scalars, data)
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(key, value, step)
            self.tb.flush()
        if self.wandb_run is not None:
            self.wandb_run.log(values, step=step)

    def close(self) -> None:
        """Flush and close every backend."""
        if self.tb is not None:
            self.tb.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
        self.tb = self.wandb_run = None


def _init_wandb(out: str, config: dict[str, Any], project: str) -> Any:
    """Start (or resume, by the id kept in RUN/wandb_id.txt) the W&B run of `out`."""
    import wandb

    id_path = os.path.join(out, WANDB_ID)
    if os.path.isfile(id_path):
        with open(id_path) as f:
            run_id = f.read().strip()
    else:
        run_id = secrets.token_hex(4)  # wandb's own id shape (8 chars); wandb.util.generate_id is gone in 0.2x
        with open(id_path, "w") as f:
            f.write(run_id + "\n")
    mode = wandb_mode()
    settings = wandb.Settings(silent=True, console="off", save_code=False, disable_git=True, x_disable_stats=True)
    return wandb.init(project=project, id=run_id, resume="allow" if mode == "online" else None, dir=out,
                      mode=mode, config=config, name=os.path.basename(os.path.abspath(out)), settings=settings)


def open_reporter(cfg: Any, main: bool, first_step: int) -> Reporter:
    """The run's Reporter: the backends of `cfg.report_to` on the main process, none elsewhere."""
    names = parse_report_to(cfg.report_to) if main else []
    return Reporter(cfg.out, names, first_step, cfg.to_dict(), cfg.wandb_project)
