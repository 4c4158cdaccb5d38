"""Sources: shard round trip, brace/glob expansion, CSV/TSV, corrupt-data accounting and one-line errors."""
from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from tests.data.data_helpers import synth_samples, write_corrupt_shards
from leanvl.data.sample import SkipSample
from leanvl.data.sources import expand_shards, open_source
from leanvl.errors import DataError, LeanvlError


def _decode_epoch(source, epoch=0):
    good, bad = [], Counter()
    for raw in source.raw(epoch):
        try:
            good.append(source.decode(raw))
        except SkipSample as exc:
            bad[exc.reason] += 1
    return good, bad


def test_shard_round_trip_keeps_pixels_captions_attrs(shard_dir):
    src = open_source(os.path.join(shard_dir, "shard-{000000..000003}.tar"), shuffle=False)
    good, bad = _decode_epoch(src)
    expected = synth_samples(40)
    assert not bad and len(good) == 40
    for got, want in zip(good, expected):
        assert (got.key, got.caption, got.attrs) == (want.key, want.caption, want.attrs)
        assert np.array_equal(np.asarray(got.image), np.asarray(want.image))  # PNG is lossless


def test_shuffled_epochs_are_seeded_permutations(shard_dir):
    pattern = os.path.join(shard_dir, "shard-{000000..000003}.tar")
    keys = lambda src, e: [src.key(r) for r in src.raw(e)]  # noqa: E731
    a, b = open_source(pattern, seed=1), open_source(pattern, seed=1)
    assert keys(a, 0) == keys(b, 0)  # deterministic for (seed, epoch)
    assert keys(a, 0) != keys(a, 1) and sorted(keys(a, 0)) == sorted(keys(a, 1))
    assert keys(a, 0) != keys(open_source(pattern, seed=2), 0)
    assert len(keys(a, 0)) == 40 and a.epoch_size(5) == 40  # known from the index


def test_brace_glob_and_directory_expansion(shard_dir):
    braces = expand_shards(os.path.join(shard_dir, "shard-{000000..000003}.tar"))
    assert [os.path.basename(p) for p in braces] == [f"shard-{i:06d}.tar" for i in range(4)]
    assert expand_shards(os.path.join(shard_dir, "shard-{000001,000003}.tar")) == [braces[1], braces[3]]
    assert expand_shards(os.path.join(shard_dir, "shard-*.tar")) == braces
    assert expand_shards(shard_dir) == braces


@pytest.mark.parametrize("spec, words", [
    ("{dir}/shard-{{000000..000009}}.tar", "shard not found"),
    ("{dir}/nothing-*.tar", "matches no files"),
    ("{dir}/missing.csv", "not found"),
    ("synthetic:0", "N >= 1"),
    ("synthetic:abc", "bad synthetic spec"),
    ("", "empty data spec"),
])
def test_unusable_specs_raise_one_line(shard_dir, spec, words):
    with pytest.raises(LeanvlError) as info:
        open_source(spec.format(dir=shard_dir))
    assert words in str(info.value) and "\n" not in str(info.value)


def test_empty_directory_is_an_error(tmp_path):
    with pytest.raises(LeanvlError, match="no .tar shards"):
        open_source(str(tmp_path))


def test_corrupt_data_is_counted_per_reason(tmp_path):
    src = open_source(write_corrupt_shards(tmp_path), shuffle=False)
    good, bad = _decode_epoch(src)
    assert bad == {"undecodable_image": 2, "empty_caption": 3, "missing_caption": 1, "missing_image": 1,
                   "truncated_tar": 1}
    assert [s.key for s in good] == [f"good{i}" for i in range(6)] + [f"late{i}" for i in range(4)]
    assert good[-1].caption == "a café" and good[-1].image.size == (8, 8) and good[0].attrs == {}


def _write_images(root) -> None:
    (root / "img").mkdir()
    for i in range(4):
        Image.new("RGB", (10, 12), (i * 50, 0, 0)).save(root / "img" / f"{i}.jpg")
    (root / "img" / "broken.jpg").write_bytes(b"\xff\xd8 broken")


def test_csv_detects_columns_and_counts_bad_rows(tmp_path):
    _write_images(tmp_path)
    rows = ["img/0.jpg,a dark square", "img/1.jpg,\"quoted, with comma\"", "img/2.jpg,", "img/9.jpg,missing file",
            "img/broken.jpg,broken", ",no path"]
    (tmp_path / "data.csv").write_text("id_unused,filepath,title\n" +
                                       "\n".join(f"{n},{r}" for n, r in enumerate(rows)) + "\n")
    src = open_source(str(tmp_path / "data.csv"), shuffle=False)
    good, bad = _decode_epoch(src)
    assert [s.caption for s in good] == ["a dark square", "quoted, with comma"]
    assert good[0].image.size == (10, 12) and good[0].image.mode == "RGB"
    assert bad == {"empty_caption": 1, "missing_image": 2, "undecodable_image": 1}
    assert src.epoch_size(0) == len(rows)


def test_tsv_and_column_override(tmp_path):
    _write_images(tmp_path)
    (tmp_path / "d.tsv").write_text("pic\tdesc\ttext\nimg/0.jpg\tred, yes\tnot this\nimg/3.jpg\tblue\tnope\n")
    src = open_source(f"{tmp_path / 'd.tsv'}#image=pic,caption=desc", shuffle=False)
    good, bad = _decode_epoch(src)
    assert [s.caption for s in good] == ["red, yes", "blue"] and not bad
    detected = open_source(str(tmp_path / "d.tsv"), image_column="pic", shuffle=False)
    assert [s.caption for s in _decode_epoch(detected)[0]] == ["not this", "nope"]  # 'text' detected
    with pytest.raises(LeanvlError, match="cannot find the image column"):
        open_source(str(tmp_path / "d.tsv"))
    with pytest.raises(LeanvlError, match="no caption column 'nope'"):
        open_source(f"{tmp_path / 'd.tsv'}#image=pic,caption=nope")
    with pytest.raises(LeanvlError, match="bad column override"):
        open_source(f"{tmp_path / 'd.tsv'}#picture=pic")
    (tmp_path / "empty.csv").write_text("filepath,caption\n")
    with pytest.raises(LeanvlError, match="no data rows"):
        open_source(str(tmp_path / "empty.csv"))


def test_source_with_no_items_stops_with_data_error(tmp_path):
    with wds.TarWriter(str(tmp_path / "e.tar"), encoder=False):
        pass
    src = open_source(str(tmp_path / "e.tar"))
    with pytest.raises(DataError, match="yielded no items"):
        next(src.stream(0))


def test_synthetic_source_stream_and_cycle():
    inf = open_source("synthetic", image_size=32, seed=5, split="val")
    assert [x for _, x in zip(range(3), inf.stream(10))] == [(10, 10), (11, 11), (12, 12)]
    sample = inf.decode(11)
    assert sample.image.size == (32, 32) and sample.attrs["objects"]
    fin = open_source("synthetic:5", seed=5)
    items = [raw for _, raw in zip(range(15), (r for _, r in fin.stream(0)))]
    epochs = [items[0:5], items[5:10], items[10:15]]
    assert all(sorted(e) == list(range(5)) for e in epochs)  # each epoch is one pass over the N samples
    assert len({tuple(e) for e in epochs}) > 1  # re-shuffled per epoch
    assert [r for _, (i, r) in zip(range(15), open_source("synthetic:5", seed=5).stream(0))] == items
    assert [r for _, (i, r) in zip(range(3), fin.stream(7))] == items[7:10]
