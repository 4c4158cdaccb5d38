"""The indexed shard engine: same samples from local / HTTP / S3 and any worker count, each byte read once over
2 ranks x 2 workers and only a rank's own ranges read, remote indexes from headers only, remote faults (cut-off
range reads) retried then counted, mixtures and resampling exact."""
from __future__ import annotations

import glob
import itertools
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

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


def rank_keys(src, rank) -> list[str]:
    """Keys of 5 batches of 4 of one rank of 2, read with 2 loader workers."""
    batches = make_batches(src, batch_size=4, transform=to_tensor, stride=2, offset=rank, num_workers=2)
    return [k for b in itertools.islice(batches, 5) for k in b["key"]]


def _tar_reads(server):
    return [(name, a, b) for name, a, b in server.served if name.endswith(".tar")]


def test_two_ranks_two_workers_read_the_data_once(indexed_shard_dir, tmp_path):
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(indexed_shard_dir, "*.tar")))
    with http_server(indexed_shard_dir) as server:
        spec, cache = f"{server.url}/{PATTERN}", str(tmp_path / "cache")  # one node: one shared cache
        with ThreadPoolExecutor(2) as pool:  # both ranks open at once: one builds each index, the other waits
            sources = list(pool.map(lambda _: open_data(spec, seed=1, cache_dir=cache), range(2)))
        outs = [rank_keys(src, rank) for rank, src in enumerate(sources)]
        sent, reads = server.bytes_sent, _tar_reads(server)
        sidecar_gets = {n: c for n, c in server.requests.items() if n.endswith(".idx.json")}
    keys = outs[0] + outs[1]  # 2 ranks x 5 batches x 4 = one epoch of 40
    assert len(keys) == 40 and len(set(keys)) == 40
    assert sent <= 1.1 * total, (sent, total)
    assert len(set(reads)) == 40  # one range request per sample (repeats: the loader's prefetch into epoch 1)
    assert sidecar_gets == {f"shard-00000{i}.tar.idx.json": 1 for i in range(4)}  # one index read per node


def test_a_rank_subset_reads_only_its_samples(indexed_shard_dir, tmp_path):
    """Rank 1 of 2, 3 batches of 4: the shard bytes sent are exactly those 12 samples' ranges (payload + headers)."""
    from leanvl.data.tar_index import index_tar, span

    with http_server(indexed_shard_dir) as server:
        src = open_data(f"{server.url}/{PATTERN}", seed=1, cache_dir=str(tmp_path))
        batches = list(itertools.islice(make_batches(src, batch_size=4, transform=to_tensor, stride=2, offset=1), 3))
        reads = _tar_reads(server)
    by_key = {os.path.basename(e["key"]): e for p in sorted(glob.glob(os.path.join(indexed_shard_dir, "*.tar")))
              for e in index_tar(p)}
    consumed = [k for b in batches for k in b["key"]]
    assert len(consumed) == 12 and sorted(b - a for _, a, b in reads) == sorted(
        span(by_key[k])[1] - span(by_key[k])[0] for k in consumed)
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(indexed_shard_dir, "*.tar")))
    assert sum(b - a for _, a, b in reads) < 0.35 * total


def test_remote_header_scan_reads_headers_not_payloads(tmp_path):
    """No sidecar: the remote index is a header scan by range reads, then cached on the node."""
    import webdataset as wds

    from leanvl.data.remote import ShardCache
    from leanvl.data.shard_source import ShardSource
    from leanvl.data.tar_index import index_tar

    payload = os.urandom(64 * 1024)
    with wds.TarWriter(str(tmp_path / "big-0.tar"), encoder=False) as w:
        for i in range(8):
            w.write({"__key__": f"k{i}", "bin": payload, "txt": f"caption {i}".encode()})
    size = os.path.getsize(tmp_path / "big-0.tar")
    cache = ShardCache(str(tmp_path / "cache"))
    with http_server(str(tmp_path)) as server:
        src = ShardSource(f"{server.url}/big-0.tar", cache=cache)
        scanned = server.bytes_sent
        assert [src.caption((0, j)) for j in range(8)] == [f"caption {i}" for i in range(8)]
        captions, gets = server.bytes_sent - scanned, server.requests["big-0.tar"]
        again = ShardSource(f"{server.url}/big-0.tar", cache=cache)  # a restart on this node: the cached index
        assert server.requests["big-0.tar"] == gets and again.index == src.index
    assert src.index == [index_tar(str(tmp_path / "big-0.tar"))]
    assert scanned < 0.1 * size, (scanned, size)  # headers + read-ahead only, not the 8 x 64 KiB payloads
    assert captions == sum(len(f"caption {i}") for i in range(8))  # a caption read is its .txt range only


def test_remote_read_errors_are_retried_then_counted(shard_dir, indexed_shard_dir, tmp_path, monkeypatch):
    from leanvl.data import remote

    monkeypatch.setattr(remote, "BACKOFF_S", 0.01)  # same retries, shorter waits
    local, _ = _keys(os.path.join(shard_dir, PATTERN))
    with http_server(indexed_shard_dir, fail_times={"shard-000001.tar": 2}) as server:  # a sample cut off twice
        keys, skipped = _keys(f"{server.url}/{PATTERN}", cache=str(tmp_path / "a"))
        assert server.requests["shard-000001.tar"] == 10 + 2  # 10 sample reads, the first one tried 3 times
    assert keys == local and not skipped
    with http_server(shard_dir, fail_times={"shard-000001.tar": 1}) as server:  # no sidecar: the scan is cut once
        assert _keys(f"{server.url}/{PATTERN}", cache=str(tmp_path / "b"))[0] == local
    with http_server(indexed_shard_dir, fail_times={"shard-000002.tar": 99}) as server:  # samples never readable
        keys, skipped = _keys(f"{server.url}/{PATTERN}", cache=str(tmp_path / "c"))
        assert server.requests["shard-000002.tar"] == 4 + 9  # first sample: 1 + 3 retries; then one try each
    assert skipped == {"unreadable_shard": 10} and len(keys) == 30 and set(keys) < set(local)
    with http_server(shard_dir, fail_times={"shard-000002.tar": 99}) as server:  # no sidecar: index unreadable
        keys, skipped = _keys(f"{server.url}/{PATTERN}", cache=str(tmp_path / "d"), batch_size=31, batches=1)
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
