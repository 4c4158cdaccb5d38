"""--report-to: TensorBoard event files and an offline W&B run, read back; resume continues both."""
import glob
import json
import os

import pytest

from leanvl.errors import LeanvlError
from leanvl.train.config import TrainConfig
from leanvl.train.loop import train
from leanvl.train.report import parse_report_to
from tests.train.helpers import fake_batches, make_task


def tb_scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(os.path.join(run_dir, "tensorboard"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_and_wandb_offline_with_resume(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc key: offline
    out = str(tmp_path / "run")
    evaluator = lambda task, step: {"knn_top1": step / 100}  # noqa: E731
    kw = dict(out=out, steps=4, batch_size=4, lr=1e-2, progress=False, log_every=1, eval_every=2, save_every=2,
              report_to="tensorboard,wandb")
    with pytest.raises(KeyboardInterrupt):  # killed fetching step 4's data, after step 3 was logged
        train(make_task(), fake_batches(4, stop_at=3), TrainConfig(**kw), evaluator)
    run_id = open(os.path.join(out, "wandb_id.txt")).read().strip()
    train(make_task(), fake_batches(4), TrainConfig(**kw, resume="latest"), evaluator)
    assert open(os.path.join(out, "wandb_id.txt")).read().strip() == run_id

    scalars = tb_scalars(out)
    metrics = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert [s for s, _ in scalars["loss"]] == [1, 2, 3, 4]  # step 3 of the killed run purged, then rewritten
    for row in metrics:
        (value,) = [v for s, v in scalars["loss"] if s == row["step"]]
        assert value == pytest.approx(row["loss"], abs=1e-5)
    assert scalars["eval/knn_top1"] == [(2, pytest.approx(0.02)), (4, pytest.approx(0.04))]
    for tag in ("lr", "samples_per_s", "eval_s", "data/skipped", "data/raw"):
        assert tag in scalars, tag

    runs = sorted(glob.glob(os.path.join(out, "wandb", f"offline-run-*-{run_id}*")))  # wandb adds -1 in one second
    assert runs  # one offline-run directory per attempt (same id; two attempts in one second share a name)
    files = sorted((f for r in runs for f in glob.glob(os.path.join(r, f"run-{run_id}*.wandb"))), key=os.path.getmtime)
    history = wandb_history(files[-1])  # the newest run file: the resumed attempt's
    assert [h["_step"] for h in history][-2:] == [3, 4]  # the resumed attempt logged steps 3 and 4
    assert history[-1]["eval/knn_top1"] == pytest.approx(0.04)


def wandb_history(path):
    """History rows of a W&B offline run file (wandb's own record reader)."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    store = datastore.DataStore()
    store.open_for_scan(path)
    rows = []
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def test_unknown_reporter_is_one_line_error():
    with pytest.raises(LeanvlError, match="unknown reporter 'tensorbord'"):
        parse_report_to("tensorbord")
    assert parse_report_to("") == []
