"""--max-seconds: the run stops at the step boundary nearest its budget (evaluation not counted), the lr follows
the budget's clock, and a resume spends only what is left."""
import json
import os
import time

import pytest

from leanvl.errors import LeanvlError
from leanvl.train.config import TrainConfig
from leanvl.train.loop import train
from tests.train.helpers import fake_batches, make_task

BIG = 10**9  # steps never end a timed run


def test_max_seconds_within_ten_percent_eval_excluded_and_resume(tmp_path):
    out = str(tmp_path / "run")
    slept = []

    def evaluator(task, step):  # slow evaluation: must not eat the training budget
        time.sleep(0.2)
        slept.append(step)
        return {}

    kw = dict(out=out, steps=BIG, batch_size=4, lr=1e-2, warmup=2, progress=False, log_every=1, eval_every=100)
    started = time.perf_counter()
    first = train(make_task(), fake_batches(4), TrainConfig(**kw, max_seconds=2.5), evaluator)
    wall = time.perf_counter() - started
    assert 2.25 <= first.train_s <= 2.75 and first.step > 2
    assert wall >= first.train_s + 0.2 * len(slept) and slept  # the evaluations ran outside the clock
    lrs = [json.loads(line)["lr"] for line in open(os.path.join(out, "metrics.jsonl"))]
    assert lrs[-1] < 0.2 * max(lrs)  # the cosine ran over the budget's time, not over 10**9 steps
    second = train(make_task(), fake_batches(4), TrainConfig(**kw, max_seconds=5.0, resume="latest"), evaluator)
    assert second.step > first.step and 4.5 <= second.train_s <= 5.5  # only the ~2.5 s left were spent


def test_bad_max_seconds_is_one_line_error(tmp_path):
    with pytest.raises(LeanvlError, match="--max-seconds must be a finite number >= 0"):
        TrainConfig(out=str(tmp_path), max_seconds=-1).validate()


def test_cpu_clock_counts_this_process_cpu_time_not_sleep(tmp_path):
    """--max-seconds-clock cpu: time the process spends off the CPU (a loaded box, a sleep) is not spent budget."""
    import torch

    from leanvl.train.budget import TimeBudget

    def spin(cpu_seconds):  # busy for that much CPU time, however long a loaded box makes it take
        end = time.process_time() + cpu_seconds
        while time.process_time() < end:
            pass

    spent = {}
    for clock in ("wall", "cpu"):
        budget = TimeBudget(TrainConfig(out=str(tmp_path), max_seconds=10.0, max_seconds_clock=clock),
                            torch.device("cpu"))
        budget.start()
        time.sleep(0.3)
        spin(0.2)
        budget.pause()
        spent[clock] = budget.elapsed()
    assert spent["wall"] >= 0.5 and 0.2 <= spent["cpu"] <= 0.45


def test_bad_max_seconds_clock_is_one_line_error(tmp_path):
    with pytest.raises(LeanvlError, match="--max-seconds-clock must be one of wall, cpu"):
        TrainConfig(out=str(tmp_path), max_seconds_clock="gpu").validate()


def test_resume_keeps_the_step_time_estimate_so_a_finished_run_stays_finished(tmp_path):
    """A run stopped because less than half a step was left: its resume must not train one more step (the estimate
    of a step's time travels in the checkpoint)."""
    import torch

    from leanvl.train.budget import TimeBudget

    now = [0.0]
    cfg = TrainConfig(out=str(tmp_path), max_seconds=1.0)

    def budget_at(spent=None, step_s=None):
        b = TimeBudget(cfg, torch.device("cpu"))
        b.clock = lambda: now[0]
        if spent is not None:
            b.resume(spent, step_s)
        now[0] = 0.0
        b.start()
        return b

    first = budget_at()
    stops = []
    for t in (0.0, 0.4, 0.8):  # steps of 0.4 s: at 0.8 s only 0.2 s (half a step) is left
        now[0] = t
        stops.append(first.exhausted())
    assert stops == [False, False, True]
    first.pause()
    assert not budget_at(first.elapsed()).exhausted()  # without the estimate: one more step would run
    assert budget_at(first.elapsed(), first.step_s).exhausted()
    # end to end: a finished timed run resumed on the same budget trains no further step
    out = str(tmp_path / "run")
    kw = dict(out=out, steps=BIG, batch_size=4, lr=1e-2, warmup=2, progress=False, log_every=1, max_seconds=0.6)
    done = train(make_task(), fake_batches(4), TrainConfig(**kw))
    again = train(make_task(), fake_batches(4), TrainConfig(**kw, resume="latest"))
    assert again.step == done.step
