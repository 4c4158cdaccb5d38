"""The indexed shard engine: same samples from local / HTTP / S3 and any worker count, each byte read once over
2 ranks x 2 workers, remote faults retried then counted, mixtures and resampling exact."""
from __future__ import annotations

import glob
import itertools
import json
import os
import subprocess
import sys
from collections import Counter

from tests.data.data_helpers import to_tensor
from tests.data.servers import http_server, s3_server
from leanvl.data.loader import make_batches
from leanvl.data.mixture import open_data

PATTERN = "shard-{000000..000003}.tar"


def _keys(spec, *, batch_size=8, batches=5, cache="", **kw):
    src = open_data(spec, seed=3, cache_dir=cache)
    out, skipped = [], Counter()
    for b in itertools.islice(make_batches(src, batch_size=batch_size, transform=to_tensor, **kw), batches):
        out.extend(b["key"])
        skipped.update(b["skipped"])
    return out, skipped


def test_local_http_s3_and_worker_counts_give_the_same_keys(shard_dir, tmp_path, monkeypatch):
    local, _ = _keys(os.path.join(shard_dir, PATTERN))  # 40 samples: 5 batches of 8 = one epoch
    assert sorted(local) == sorted(set(local)) and len(local) == 40
    assert _keys(os.path.join(shard_dir, PATTERN), num_workers=3)[0] == local
    with http_server(shard_dir) as server:
        assert _keys(f"{server.url}/{PATTERN}", cache=str(tmp_path / "http"), num_workers=2)[0] == local
    shards = {os.path.basename(p): p for p in sorted(glob.glob(os.path.join(shard_dir, "*.tar")))}
    with s3_server("bucket", shards, monkeypatch):
        assert _keys(f"s3://bucket/{PATTERN}", cache=str(tmp_path / "s3"))[0] == local


READER = """
import json, sys
from leanvl.data.loader import make_batches
from leanvl.data.mixture import open_data
from tests.data.data_helpers import to_tensor
rank, spec, cache = int(sys.argv[1]), sys.argv[2], sys.argv[3]
src = open_data(spec, seed=1, cache_dir=cache)
keys = []
for _, b in zip(range(5), make_batches(src, batch_size=4, transform=to_tensor, stride=2, offset=rank, num_workers=2)):
    keys += b["key"]
print(json.dumps(keys))
"""


def test_two_ranks_two_workers_read_the_data_once(shard_dir, tmp_path):
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(shard_dir, "*.tar")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    with http_server(shard_dir) as server:
        spec, cache = f"{server.url}/{PATTERN}", str(tmp_path / "cache")  # one node: one shared cache
        procs = [subprocess.Popen([sys.executable, "-c", READER, str(r), spec, cache], stdout=subprocess.PIPE,
                                  text=True, env=env) for r in range(2)]
        outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
        sent = server.bytes_sent
    keys = outs[0] + outs[1]  # 2 ranks x 5 batches x 4 = one epoch of 40
    assert len(keys) == 40 and len(set(keys)) == 40
    assert sent <= 1.1 * total, (sent, total)


def test_remote_read_error_is_retried_then_counted(shard_dir, tmp_path):
    local, _ = _keys(os.path.join(shard_dir, PATTERN))
    with http_server(shard_dir, fail_times={"shard-000001.tar": 2}) as server:  # cut off mid-shard twice
        keys, skipped = _keys(f"{server.url}/{PATTERN}", cache=str(tmp_path / "a"))
        assert server.requests["shard-000001.tar"] == 3
    assert keys == local and not skipped
    with http_server(shard_dir, fail_times={"shard-000002.tar": 99}) as server:  # never readable
        keys, skipped = _keys(f"{server.url}/{PATTERN}", cache=str(tmp_path / "b"), batch_size=31, batches=1)
    assert skipped == {"unreadable_shard": 1} and len(keys) == 30  # 30 good + 1 unreadable item = the epoch
    assert set(keys) < set(local)


def test_mixture_weights_and_resampling_are_exact_and_resumable(shard_dir):
    mix = open_data("synthetic:50::synthetic:70", weights="1::3", seed=5)
    share = Counter(mix.at(r)[0] for r in range(4000))
    assert abs(share[0] / 4000 - 0.25) <= 0.03 and abs(share[1] / 4000 - 0.75) <= 0.03
    kw = dict(batch_size=6, transform=to_tensor)
    full = list(itertools.islice(make_batches(mix, **kw), 6))
    tail = list(itertools.islice(make_batches(mix, start=4 * 6, num_workers=2, **kw), 2))
    assert [b["key"] for b in full[4:]] == [b["key"] for b in tail]
    spec = os.path.join(shard_dir, PATTERN)
    res = open_data(spec, resampled=True, samples_per_epoch=100, seed=2)
    keys = [res.source.key(res.at(r)) for r in range(100)]
    assert res.epoch_size(0) == 100 and keys == [res.source.key(res.at(r)) for r in range(100)]
    assert max(Counter(keys).values()) > 1  # drawn with replacement
    view = open_data(spec, samples_per_epoch=25, seed=2)
    assert len({view.source.key(view.at(r)) for r in range(25)}) == 25 and view.epoch_size(3) == 25


def test_idf_reads_captions_without_decoding_images(tmp_path):
    import webdataset as wds

    from leanvl.text.idf_cli import compute_idf_table

    with wds.TarWriter(str(tmp_path / "x-0.tar"), encoder=False) as w:
        for i in range(3):  # undecodable images: a decode would skip them, a caption read counts them
            w.write({"__key__": f"k{i}", "jpg": b"not an image", "txt": f"a red square {i}".encode()})
    table = compute_idf_table(str(tmp_path / "x-0.tar"), None)
    assert int(table["docs"]) == 3 and table["skipped"] == 0
