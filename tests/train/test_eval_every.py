"""The trainer's evaluator hook (--eval-every): schedule, eval mode, logging, resume; pretrain's evaluators."""
import json
import os

import pytest
import torch

from leanvl.cli import main
from leanvl.train.config import TrainConfig
from leanvl.train.loop import train
from tests.train.helpers import fake_batches, make_task


def rows(out):
    return [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]


def test_evaluator_schedule_mode_logging_and_resume(tmp_path):
    calls = []

    def evaluator(task, step):
        calls.append((step, task.training, torch.is_grad_enabled()))
        return {"acc": step / 10}

    out = str(tmp_path / "run")
    kw = dict(out=out, steps=5, batch_size=4, lr=1e-2, progress=False, log_every=10, eval_every=2, save_every=2)
    task = make_task()
    with pytest.raises(KeyboardInterrupt):  # dies fetching step 4's data: step 3 done, checkpoint at 2
        train(task, fake_batches(4, stop_at=3), TrainConfig(**kw), evaluator)
    assert calls == [(2, False, False)] and task.training
    calls.clear()
    train(make_task(), fake_batches(4), TrainConfig(**kw, resume="latest"), evaluator)
    assert [c[0] for c in calls] == [4, 5]  # every 2 steps and after the last; resumed at step 2 -> no repeat
    logged = rows(out)
    assert [r["step"] for r in logged] == [2, 4, 5]
    assert [r["eval/acc"] for r in logged] == [0.2, 0.4, 0.5]
    assert all(r["eval_s"] >= 0 for r in logged)


def test_pretrain_eval_every_logs_probe_and_zeroshot(tmp_path):
    """k-NN (every objective's probe) and, for text towers, zero-shot and retrieval: one CLIP run covers both."""
    out = str(tmp_path / "clip")
    keys = ["eval/knn_top1", "eval/knn_shape", "eval/knn_count", "eval/zeroshot_top1", "eval/retrieval_i2t_r1",
            "eval/retrieval_t2i_r5"]
    assert main(["pretrain", "--objective", "clip", "--model", "leanvl_convnet", "--image-size", "32",
                 "--batch-size", "8", "--steps", "2", "--eval-every", "1", "--eval-n", "40", "--log-every", "5",
                 "--no-progress", "--out", out]) == 0
    logged = rows(out)
    assert [r["step"] for r in logged] == [1, 2]
    for key in keys:
        assert all(0.0 <= r[key] <= 1.0 for r in logged), key
