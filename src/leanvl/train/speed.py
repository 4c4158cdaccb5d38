"""Throughput, FLOPs and MFU accounting, and the progress bar."""
from __future__ import annotations

import contextlib
import time
from typing import Iterator

import torch
from tqdm.auto import tqdm

# Dense bf16 tensor-core peaks (FLOP/s) used for MFU; unknown cards report no MFU.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "GH200": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12,
             "A10": 125e12, "4090": 165e12}


def device_peak_flops(device: torch.device) -> float | None:
    """Peak bf16 FLOP/s of a known CUDA card, else None."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAK_BF16.items():
        if key in name:
            return peak
    return None


@contextlib.contextmanager
def count_flops(enabled: bool) -> Iterator[object | None]:
    """Count the FLOPs of the enclosed forward+backward (torch's FlopCounterMode); yields None when disabled."""
    if not enabled:
        yield None
        return
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        yield counter


class Speedometer:
    """Samples/s (since the previous log step, and overall), FLOPs/sample and MFU, the warm-up steps excluded.

    It never synchronises inside a step: the device is synchronised once after the warm-up step(s) (FLOP counting,
    compile) and once per `scalars()` call (a log step), so a rate covers whole steps however far the host runs
    ahead of the device."""

    def __init__(self, device: torch.device, precision: str, warmup_steps: int = 1) -> None:
        self.device = device
        self.peak = device_peak_flops(device)
        self.warmup_steps = max(1, warmup_steps)
        self.flops_per_sample: float | None = None
        self.steps, self.window_samples, self.total_samples = 0, 0, 0
        self.t0 = self.mark = self.timed_from = 0.0
        self.warm_rate, self.last_rate, self.total_time = 0.0, 0.0, 0.0
        self.began = time.time()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start_step(self) -> None:
        if self.steps == 0:
            self.t0 = time.perf_counter()

    def end_step(self, samples: int) -> None:
        self.steps += 1
        if self.steps <= self.warmup_steps:  # warm-up: timed on its own, never in the rates below
            self._sync()
            now = time.perf_counter()
            if self.steps == 1 and now > self.t0:
                self.warm_rate = samples / (now - self.t0)
            self.mark = self.timed_from = now
            return
        self.window_samples += samples
        self.total_samples += samples

    def record_flops(self, counter: object | None, samples: int) -> None:
        if counter is not None and samples > 0:
            self.flops_per_sample = counter.get_total_flops() / samples

    def _read(self) -> None:
        """Synchronise and close the current window (a log step, or the end of the run)."""
        self._sync()
        now = time.perf_counter()
        if self.window_samples and now > self.mark:
            self.last_rate = self.window_samples / (now - self.mark)
        if self.total_samples:
            self.total_time = now - self.timed_from
        self.mark, self.window_samples = now, 0

    def rate(self) -> float:
        """Samples/s over the steps since the previous read (the first step's rate while nothing else was timed)."""
        return self.last_rate or self.warm_rate

    def overall_rate(self) -> float:
        """Samples/s over all steps but the warm-up; falls back to the window rate."""
        if self.window_samples:
            self._read()
        return self.total_samples / self.total_time if self.total_time > 0 else self.rate()

    def wall_s(self) -> float:
        return time.time() - self.began

    def scalars(self) -> dict[str, float]:
        """{"samples_per_s", "gflop_per_sample", "mfu"} (one device sync: call it at log steps)."""
        self._read()
        out = {"samples_per_s": self.rate()}
        if self.flops_per_sample:
            out["gflop_per_sample"] = self.flops_per_sample / 1e9
            if self.peak:
                out["mfu"] = self.flops_per_sample * out["samples_per_s"] / self.peak
        return out

    def progress(self, total: int, initial: int, enabled: bool) -> tqdm:
        """A tqdm bar over optimizer steps (ETA included)."""
        return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)
