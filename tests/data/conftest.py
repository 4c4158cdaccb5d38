"""Fixtures for the data tests (helpers live in tests/data/data_helpers.py)."""
from __future__ import annotations

import glob
import os
import shutil

import pytest

from tests.data.data_helpers import synth_samples
from leanvl.data.shards import write_shards


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory) -> str:
    """40 synthetic 32 px samples in 4 shards of 10."""
    out = tmp_path_factory.mktemp("shards")
    write_shards(synth_samples(40), str(out), shard_size=10)
    return str(out)


@pytest.fixture(scope="session")
def indexed_shard_dir(shard_dir, tmp_path_factory) -> str:
    """The shards of `shard_dir` with their `<shard>.idx.json` sidecars (as `leanvl data index` writes them)."""
    from leanvl.data.shard_index import write_sidecars

    out = tmp_path_factory.mktemp("indexed")
    for path in sorted(glob.glob(os.path.join(shard_dir, "*.tar"))):
        shutil.copy(path, out)
    write_sidecars(sorted(glob.glob(os.path.join(str(out), "*.tar"))))
    return str(out)
