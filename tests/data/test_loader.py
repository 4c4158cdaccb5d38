"""make_batches: exact composition independent of workers, exact resume, rank sharding; DataStats thresholds."""
from __future__ import annotations

import itertools
import os

import pytest
import torch

from tests.data.data_helpers import fake_labeler, noisy_tensor, to_tensor, write_corrupt_shards
from leanvl.data.loader import DataStats, make_batches
from leanvl.data.sources import open_source
from leanvl.errors import DataError, LeanvlError


def _take(n, **kwargs):
    return list(itertools.islice(make_batches(**kwargs), n))


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], torch.Tensor):
                assert torch.equal(x[k], y[k]), k
            else:
                assert x[k] == y[k], k


def test_batch_layout_and_labels():
    src = open_source("synthetic", image_size=32)
    (batch,) = _take(1, source=src, batch_size=6, transform=to_tensor, labeler=fake_labeler)
    assert batch["image"].shape == (6, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["index"].tolist() == list(range(6)) and batch["raw_count"] == 6 and batch["skipped"] == {}
    ids = fake_labeler(batch["caption"])
    offsets = batch["label_offsets"].tolist()
    assert offsets[0] == 0 and len(offsets) == 7
    assert [batch["label_ids"][offsets[i]:offsets[i + 1]].tolist() for i in range(6)] == ids
    assert batch["caption"][2] == src.decode(2).caption and batch["attrs"][2] == src.decode(2).attrs


def test_same_batches_with_0_or_2_workers_and_exact_augmentation():
    src = open_source("synthetic", image_size=32, seed=3)
    kw = dict(source=src, batch_size=5, transform=noisy_tensor, labeler=fake_labeler, seed=11)
    serial = _take(7, **kw)
    _same(serial, _take(7, num_workers=2, **kw))
    assert [b["index"][0].item() for b in serial] == [0, 5, 10, 15, 20, 25, 30]
    other_seed = _take(1, **{**kw, "seed": 12})
    assert not torch.equal(other_seed[0]["image"], serial[0]["image"])  # rng reaches the transform


def test_shards_workers_and_resume_equal_tail(shard_dir):
    src = open_source(os.path.join(shard_dir, "shard-{000000..000003}.tar"), seed=4)
    kw = dict(source=src, batch_size=7, transform=noisy_tensor)
    full = _take(14, **kw)  # 98 raw items: crosses into the second epoch (40 items per epoch)
    _same(full, _take(14, num_workers=2, **kw))
    _same(full[9:], _take(5, start=9 * 7, **kw))  # start counts samples
    _same(full[9:], _take(5, start=9 * 7, num_workers=2, **kw))
    first_epoch = [i for b in full for i in b["index"].tolist() if i < 40]
    assert first_epoch == list(range(40))
    by_index = {i: c for b in full for i, c in zip(b["index"].tolist(), b["caption"])}
    epoch0, epoch1 = [by_index[i] for i in range(40)], [by_index[i] for i in range(40, 80)]
    assert sorted(epoch0) == sorted(epoch1) and epoch0 != epoch1  # every sample once per epoch, re-shuffled


@pytest.mark.parametrize("stride", [2, 3])
def test_stride_offset_cover_each_batch_once(stride):
    src = open_source("synthetic:13", image_size=32)
    kw = dict(source=src, batch_size=4, transform=to_tensor)
    reference = _take(12, **kw)
    seen = {}
    for offset in range(stride):
        for k, batch in enumerate(_take(12 // stride, stride=stride, offset=offset, **kw)):
            b = offset + k * stride
            assert b not in seen
            seen[b] = batch
    assert sorted(seen) == list(range(12))
    _same([seen[b] for b in range(12)], reference)
    resumed = _take(2, stride=stride, offset=1, start=2 * stride * 4, num_workers=2, **kw)
    _same(resumed, [reference[1 + 2 * stride], reference[1 + 3 * stride]])


def test_skipped_items_and_empty_batches(tmp_path):
    src = open_source(write_corrupt_shards(tmp_path), shuffle=False)
    (batch,) = _take(1, source=src, batch_size=18, transform=to_tensor, labeler=fake_labeler)
    assert batch["raw_count"] == 18 and len(batch["caption"]) == 10 and batch["image"].shape[0] == 10
    assert sum(batch["skipped"].values()) == 8 and batch["label_offsets"].tolist()[-1] == len(batch["label_ids"])
    # raw items 6..8 are bad (2 undecodable, 1 empty caption): that batch is empty but well-formed
    good, empty = _take(2, source=src, batch_size=3, transform=to_tensor, labeler=fake_labeler, start=3)
    assert good["index"].tolist() == [3, 4, 5]
    assert empty["image"].shape == (0, 3, 8, 8) and empty["index"].numel() == 0 and empty["caption"] == []
    assert empty["skipped"] == {"undecodable_image": 2, "empty_caption": 1} and empty["raw_count"] == 3
    assert empty["label_ids"].numel() == 0 and empty["label_offsets"].tolist() == [0]


def test_bad_arguments():
    src = open_source("synthetic", image_size=32)
    for bad in ({"batch_size": 0}, {"batch_size": 2, "stride": 0}, {"batch_size": 2, "stride": 2, "offset": 2},
                {"batch_size": 2, "start": -1}):
        with pytest.raises(LeanvlError):
            next(make_batches(src, transform=to_tensor, **bad))


def test_data_stats_threshold():
    stats = DataStats(max_bad_fraction=0.1, min_raw=100)
    ok = {"raw_count": 50, "skipped": {"empty_caption": 5}}
    stats.update(ok)
    stats.check()
    stats.update({"raw_count": 50, "skipped": {"undecodable_image": 5, "missing_image": 0}})
    stats.check()  # exactly 10%: allowed
    assert stats.as_dict() == {"raw": 100, "skipped": 10,
                               "by_reason": {"empty_caption": 5, "undecodable_image": 5}}
    stats.update({"raw_count": 10, "skipped": {"undecodable_image": 2}})
    with pytest.raises(DataError, match=r"12 of 110 samples .*10% limit") as info:
        stats.check()
    assert "\n" not in str(info.value)
    small = DataStats(max_bad_fraction=0.1, min_raw=100)
    small.update({"raw_count": 20, "skipped": {"missing_caption": 20}})
    small.check()  # too few samples to judge yet
    restored = DataStats()
    restored.load(stats.as_dict())
    assert restored.as_dict() == stats.as_dict()
    with pytest.raises(LeanvlError):
        DataStats(max_bad_fraction=1.5)
