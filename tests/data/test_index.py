"""`leanvl data index` sidecars: written, used when they match the shard's size, ignored when stale; pipe: shards."""
from __future__ import annotations

import glob
import json
import os
import shutil
import sys

from leanvl.cli import main
from leanvl.data.remote import ShardCache
from leanvl.data.shard_source import ShardSource
from leanvl.data.tar_index import index_tar

PATTERN = "shard-{000000..000003}.tar"


def test_index_writes_sidecars_that_readers_use_until_stale(shard_dir, tmp_path, capsys):
    for path in glob.glob(os.path.join(shard_dir, "shard-00000[01].tar")):
        shutil.copy(path, tmp_path)
    spec = str(tmp_path / "shard-{000000..000001}.tar")
    assert main(["data", "index", "--data", spec]) == 0
    assert "indexed 2 shard(s), 20 samples (0 truncated)" in capsys.readouterr().out
    side = tmp_path / "shard-000000.tar.idx.json"
    assert json.loads(side.read_text())["samples"] == index_tar(str(tmp_path / "shard-000000.tar"))
    doc = json.loads(side.read_text())
    doc["samples"][0]["key"] = "from-the-sidecar"
    side.write_text(json.dumps(doc))
    assert ShardSource(spec, shuffle=False).key((0, 0)) == "from-the-sidecar"  # the sidecar is what was read
    with open(tmp_path / "shard-000000.tar", "ab") as fh:
        fh.write(b"\0" * 512)  # the shard changed size: its sidecar is stale and ignored
    assert ShardSource(spec, shuffle=False).key((0, 0)) != "from-the-sidecar"


def test_index_refuses_remote_without_out(capsys):
    assert main(["data", "index", "--data", "https://127.0.0.1:9/shard-{0..1}.tar"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("leanvl: error: ") and "--out" in err and len(err.strip().splitlines()) == 1


def test_a_server_without_range_support_falls_back_to_whole_shards(shard_dir, indexed_shard_dir, tmp_path):
    """`python -m http.server` ignores Range: shards are then fetched whole into the node cache, same samples."""
    from tests.data.servers import http_server

    local = ShardSource(os.path.join(shard_dir, PATTERN), seed=3)
    want = [local.decode(local.at(r)).caption for r in range(12)]
    for n, root in enumerate((shard_dir, indexed_shard_dir)):  # header scan / sidecar, then sample reads
        with http_server(root, ranges=False) as server:
            src = ShardSource(f"{server.url}/{PATTERN}", seed=3, cache=ShardCache(str(tmp_path / str(n))))
            assert [src.decode(src.at(r)).caption for r in range(12)] == want
            assert max(server.requests[f"shard-00000{i}.tar"] for i in range(4)) <= 3  # no retries: 1-2 probes + 1
        assert len(glob.glob(str(tmp_path / str(n) / "*.tar"))) == 4


def test_pipe_shards_read_like_local_ones(shard_dir, tmp_path):
    local = ShardSource(os.path.join(shard_dir, PATTERN), seed=3)
    piped = ShardSource(f"pipe:cat {shard_dir}/{PATTERN}", seed=3, cache=ShardCache(str(tmp_path)))
    assert [piped.key(piped.at(r)) for r in range(40)] == [local.key(local.at(r)) for r in range(40)]
    assert piped.decode(piped.at(5)).caption == local.decode(local.at(5)).caption
