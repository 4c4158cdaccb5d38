"""Preemption: SIGTERM (what SLURM and Kubernetes send) and SIGUSR1 (SLURM's `--signal`) ask the trainer to save a
checkpoint at the next step boundary and exit with PREEMPTED_EXIT_CODE; `--resume latest` then continues exactly."""
from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from leanvl.errors import LeanvlError

# sysexits' EX_TEMPFAIL: "a temporary failure; the user is invited to retry" — distinct from 2 (bad input).
PREEMPTED_EXIT_CODE = 75
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(LeanvlError):
    """Raised after the preemption checkpoint is written; the CLI prints it and exits with code 75."""

    exit_code = PREEMPTED_EXIT_CODE


class PreemptionFlag:
    """Installs the handlers for the life of a run (`with PreemptionFlag() as flag:`); `flag.signal` names the
    first signal received, None until then."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal = signal.Signals(signum).name

    def __enter__(self) -> "PreemptionFlag":
        for sig in SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. a notebook worker): no handlers, no preemption saves
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
