"""`lmms-eval --model leanvl --model_args pretrained=RUN_OR_EXPORT[,batch_size=8,max_new_tokens=8,device=cpu]`.

Scores generate_until tasks with a leanvl VLM: requests are answered in batches with leanvl's greedy decoder (the
prompt is the chat template around `<image>\\n` + the task's text; the first image of each request is used). Each
batch logs, through lmms-eval's throughput metrics, the visual-token count V and the measured prefill latency, so
the run's results hold `throughput.avg_visual_tokens` and `throughput.avg_prefill_ms`.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

import torch
from lmms_eval.api.model import lmms
from lmms_eval.models.model_utils.gen_metrics import log_metrics
from tqdm import tqdm

from leanvl.errors import LeanvlError


def _filelock_compat() -> None:
    """lmms-eval 0.7.3's evaluator patches `filelock._api`, which filelock 4 no longer has (ModuleNotFoundError
    on every run); mark that patch as done when the module is missing, leaving filelock's own locking as is."""
    import importlib.util

    if importlib.util.find_spec("filelock._api") is None:
        from lmms_eval import evaluator

        evaluator._enable_reentrant_filelocks._patched = True


_filelock_compat()


def load_any(path: str, device: str = "cpu") -> Any:
    """A leanvl run/step/saved VLM directory, or a `leanvl vlm export` directory (loaded with transformers)."""
    cfg = os.path.join(path, "config.json")
    if os.path.isfile(cfg) and json.load(open(cfg)).get("model_type") == "leanvl":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        hf = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)
        model = hf.vlm
        model.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        return model.to(device).eval()
    from leanvl.vlm.io import load_vlm

    return load_vlm(path, device)


def _first_image(visual: Any) -> Any:
    while isinstance(visual, (list, tuple)):
        if not visual:
            return None
        visual = visual[0]
    return visual


class LeanvlLMMS(lmms):
    """A leanvl VLM behind lmms-eval's model interface (pass `model=` to reuse a loaded VLM in-process)."""

    def __init__(self, pretrained: str = "", batch_size: int | str = 8, max_new_tokens: int | str = 8,
                 device: str | None = "cpu", model: Any = None, **kwargs: Any) -> None:
        super().__init__()
        if model is None and not pretrained:
            raise LeanvlError("lmms-eval --model leanvl needs --model_args pretrained=RUN_OR_EXPORT_DIR")
        self.vlm = model if model is not None else load_any(pretrained, device or "cpu")
        self.batch_size_per_gpu = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.visual_tokens = int(self.vlm.cfg.tokens)

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    def _images(self, chunk: list[tuple]) -> torch.Tensor:
        from leanvl.vlm.batches import image_transform

        transform = image_transform(self.vlm.cfg.image_size)
        images = []
        for _, _, doc_to_visual, doc_id, task, split in chunk:
            image = _first_image(doc_to_visual(self.task_dict[task][split][doc_id]))
            if image is None:
                raise LeanvlError(f"lmms-eval task {task}: request {doc_id} has no image; the leanvl adapter answers "
                                  f"questions about one image each")
            images.append(transform(image.convert("RGB")))
        return torch.stack(images)

    def generate_until(self, requests: list) -> list[str]:
        """Greedy answers, `batch_size` requests at a time, in request order."""
        from leanvl.vlm.generate import generate

        out: list[str] = []
        args = [r.args for r in requests]
        for start in tqdm(range(0, len(args), self.batch_size), disable=self.rank != 0, desc="leanvl"):
            chunk = args[start:start + self.batch_size]
            kwargs = chunk[0][1] or {}
            limit = int(kwargs.get("max_new_tokens", self.max_new_tokens))
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            answers = generate(self.vlm, self._images(chunk), [c[0] for c in chunk], max_new_tokens=limit,
                               timings=timings)
            elapsed = time.perf_counter() - t0
            until = kwargs.get("until") or []
            for stop in [until] if isinstance(until, str) else until:
                answers = [a.split(stop)[0] if stop else a for a in answers]
            out.extend(answers)
            tokens = sum(len(self.vlm.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers)
            log_metrics(total_elapsed_time=elapsed, total_gen_tokens=tokens,
                        avg_speed=tokens / elapsed if elapsed > 0 else 0.0,
                        additional_metrics={"visual_tokens": self.visual_tokens, "total_requests": len(chunk),
                                            "prefill_ms": 1000.0 * timings["prefill_s"],
                                            "prefill_ms_per_request": 1000.0 * timings["prefill_s"] / len(chunk)})
        return out

    def loglikelihood(self, requests: list) -> list:
        raise NotImplementedError("the leanvl lmms-eval adapter scores generate_until tasks only")

    def generate_until_multi_round(self, requests: list) -> list[str]:
        raise NotImplementedError("the leanvl lmms-eval adapter answers single-turn questions only")
