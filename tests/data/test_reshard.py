"""`leanvl data reshard`: keys, captions and extra members round-trip; images end with longer side <= S."""
from __future__ import annotations

import io
import os

import pytest
import webdataset as wds
from PIL import Image

from leanvl.cli import main
import webdataset as wds

from leanvl.data.sources import open_source


def _jpeg(w: int, h: int, seed: int) -> bytes:
    img = Image.effect_noise((w, h), 40 + seed).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture()
def big_shards(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    sizes = [(300, 200), (120, 400), (64, 48), (257, 256), (90, 90)]
    items = [{"__key__": f"img{i:03d}", "jpg": _jpeg(w, h, i), "txt": f"caption number {i}".encode(),
              "json": f'{{"i": {i}}}'.encode()} for i, (w, h) in enumerate(sizes)]
    items.append({"__key__": "broken", "jpg": b"not a jpeg", "txt": b"x"})
    for n, part in enumerate((items[:3], items[3:])):
        with wds.TarWriter(str(src / f"s-{n}.tar"), encoder=False) as w:
            for item in part:
                w.write(item)
    return src, items[:-1]


def test_reshard_round_trips_keys_captions_and_limits_side(big_shards, tmp_path, capsys):
    src, items = big_shards
    out = tmp_path / "out"
    assert main(["data", "reshard", "--data", str(src), "--out", str(out), "--max-side", "100",
                 "--shard-size", "2"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 5 samples in 3 shard(s)" in printed and "undecodable_image 1" in printed
    shards = sorted(p for p in os.listdir(out) if p.endswith(".tar"))
    assert sorted(set(os.listdir(out)) - set(shards)) == [f"{p}.idx.json" for p in shards]  # sidecars written
    got = [r for p in shards for r in wds.WebDataset(str(out / p), shardshuffle=False)]
    assert [os.path.basename(r["__key__"]) for r in got] == [it["__key__"] for it in items]
    assert [r["txt"] for r in got] == [it["txt"] for it in items]
    assert [r["json"] for r in got] == [it["json"] for it in items]
    for r, it in zip(got, items):
        with Image.open(io.BytesIO(r["jpg"])) as img:
            w0, h0 = Image.open(io.BytesIO(it["jpg"])).size
            assert max(img.size) <= 100
            if max(w0, h0) <= 100:
                assert r["jpg"] == it["jpg"]  # small images are copied byte-for-byte
            else:
                assert max(img.size) == 100 and abs(img.size[0] / img.size[1] - w0 / h0) < 0.03
    # the trainer's source reads the result
    source = open_source(str(out), shuffle=False)
    assert [source.decode(r).caption for r in source.raw(0)] == [it["txt"].decode() for it in items]


def test_reshard_csv(tmp_path):
    Image.new("RGB", (500, 250), (10, 200, 30)).save(tmp_path / "a.png")
    Image.new("RGB", (40, 30), (1, 2, 3)).save(tmp_path / "b.png")
    (tmp_path / "d.csv").write_text("filepath,caption\na.png,a green thing\nb.png,tiny\nmissing.png,gone\n")
    out = tmp_path / "out"
    assert main(["data", "reshard", "--data", str(tmp_path / "d.csv"), "--out", str(out), "--max-side", "64"]) == 0
    got = list(wds.WebDataset(str(out / "shard-000000.tar"), shardshuffle=False))
    assert [(r["__key__"].split("/")[-1], r["txt"]) for r in got] == [("row000000000", b"a green thing"),
                                                                     ("row000000001", b"tiny")]
    assert Image.open(io.BytesIO(got[0]["jpg"])).size == (64, 32)
    assert got[1]["png"] == (tmp_path / "b.png").read_bytes()


@pytest.mark.parametrize("extra, words", [
    (["--max-side", "0"], "--max-side must be >= 1"),
    (["--max-side", "64", "--quality", "0"], "--quality must be in"),
    (["--max-side", "64", "--shard-size", "0"], "--shard-size must be >= 1"),
])
def test_bad_input_is_one_line(big_shards, tmp_path, capsys, extra, words):
    src, _ = big_shards
    assert main(["data", "reshard", "--data", str(src), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("leanvl: error:") and words in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_refuses_missing_input_and_in_place_output(big_shards, tmp_path, capsys):
    src, _ = big_shards
    assert main(["data", "reshard", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                 "--max-side", "64"]) == 2
    assert main(["data", "reshard", "--data", str(src), "--out", str(src), "--max-side", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "input's directory" in err[1]
    assert sorted(os.listdir(src)) == ["s-0.tar", "s-1.tar"]
