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
    """Tracks samples/s (recent window and overall, first step excluded as warm-up), FLOPs/sample and MFU."""

    def __init__(self, device: torch.device, precision: str, window: int = 20) -> None:
        self.device = device
        self.peak = device_peak_flops(device)
        self.window = window
        self.flops_per_sample: float | None = None
        self.times: list[tuple[float, int]] = []
        self.total_time, self.total_samples, self.steps = 0.0, 0, 0
        self.t0 = 0.0
        self.began = time.time()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start_step(self) -> None:
        self._sync()
        self.t0 = time.perf_counter()

    def end_step(self, samples: int) -> None:
        self._sync()
        dt = time.perf_counter() - self.t0
        self.steps += 1
        self.times = (self.times + [(dt, samples)])[-self.window:]
        if self.steps > 1:
            self.total_time += dt
            self.total_samples += samples

    def record_flops(self, counter: object | None, samples: int) -> None:
        if counter is not None and samples > 0:
            self.flops_per_sample = counter.get_total_flops() / samples

    def rate(self) -> float:
        t = sum(dt for dt, _ in self.times[1:] or self.times)
        n = sum(s for _, s in self.times[1:] or self.times)
        return n / t if t > 0 else 0.0

    def overall_rate(self) -> float:
        """Samples/s over all steps but the first (compile/warm-up); falls back to the window rate."""
        return self.total_samples / self.total_time if self.total_time > 0 else self.rate()

    def wall_s(self) -> float:
        return time.time() - self.began

    def scalars(self) -> dict[str, float]:
        out = {"samples_per_s": self.rate()}
        if self.flops_per_sample:
            out["gflop_per_sample"] = self.flops_per_sample / 1e9
            if self.peak:
                out["mfu"] = self.flops_per_sample * out["samples_per_s"] / self.peak
        return out

    def progress(self, total: int, initial: int, enabled: bool) -> tqdm:
        """A tqdm bar over optimizer steps (ETA included)."""
        return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)
