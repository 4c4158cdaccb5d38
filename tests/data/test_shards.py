"""write_shards: naming, sizes, deterministic bytes, no partial shard left behind on failure."""
from __future__ import annotations

import os
import tarfile

import pytest

from tests.data.data_helpers import synth_samples
from leanvl.data.shards import shard_pattern, write_shards
from leanvl.errors import LeanvlError


def test_members_names_and_counts(tmp_path):
    paths = write_shards(synth_samples(7), str(tmp_path), shard_size=3)
    assert [os.path.basename(p) for p in paths] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    with tarfile.open(paths[0]) as tar:
        names = tar.getnames()
    key = synth_samples(1)[0].key
    assert names[:3] == [f"{key}.json", f"{key}.png", f"{key}.txt"] and len(names) == 9
    with tarfile.open(paths[2]) as tar:
        assert len(tar.getnames()) == 3
    assert shard_pattern(str(tmp_path), 3) == os.path.join(str(tmp_path), "shard-{000000..000002}.tar")
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_interrupted_write_leaves_only_complete_shards(tmp_path):
    def samples():
        yield from synth_samples(4)
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError):
        write_shards(samples(), str(tmp_path), shard_size=3)
    assert os.listdir(tmp_path) == ["shard-000000.tar"]


def test_bad_arguments(tmp_path):
    with pytest.raises(LeanvlError):
        write_shards(synth_samples(1), str(tmp_path), shard_size=0)
    with pytest.raises(LeanvlError):
        write_shards(synth_samples(1), str(tmp_path), image_format="gif")
