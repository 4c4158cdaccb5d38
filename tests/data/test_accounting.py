"""Data accounting: all-bad data is a data error naming its reasons from the first step; every skip is counted."""
import io
import tarfile

import pytest
import torch
from PIL import Image

from leanvl.cli import main
from leanvl.data.loader import DataStats, make_batches
from leanvl.data.sources import open_source
from leanvl.errors import DataError
from leanvl.text.idf_cli import compute_idf_table

TINY = ["pretrain", "--model", "leanvl_convnet", "--image-size", "32", "--batch-size", "2", "--no-progress",
        "--steps", "2"]


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _png():
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_tar_of_text_files_is_a_data_error_at_step_1(tmp_path, capsys, policy):
    _tar(tmp_path / "t.tar", [(f"k{i}.txt", b"a caption") for i in range(4)])
    assert main(TINY + ["--data", str(tmp_path / "t.tar"), "--out", str(tmp_path / "r"), "--nan-policy", policy]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "leanvl: error: step 1: no usable sample in its 2 raw items (skipped so far: missing_image=2)", err


def test_empty_tar_is_one_line_naming_the_reason(tmp_path, capsys):
    (tmp_path / "e.tar").write_bytes(b"")
    assert main(TINY + ["--data", str(tmp_path / "e.tar"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no usable sample" in err and "truncated_tar" in err, err


def test_empty_step_names_its_reasons():
    stats = DataStats()
    empty = {"index": torch.zeros(0, dtype=torch.long), "raw_count": 3, "skipped": {"empty_caption": 3}}
    stats.update(empty)
    with pytest.raises(DataError, match=r"step 7: no usable sample in its 6 raw items .*empty_caption=3"):
        stats.check_step([empty, dict(empty)], 7)
    stats.check_step([empty, {"index": torch.tensor([4]), "raw_count": 3, "skipped": {}}], 8)  # one usable: fine


def test_bad_fraction_is_checked_at_the_end_of_short_runs():
    stats = DataStats(max_bad_fraction=0.1)
    stats.update({"raw_count": 10, "skipped": {"undecodable_image": 3}})
    stats.check()  # below min_raw: not yet
    with pytest.raises(DataError, match="undecodable_image=3"):
        stats.check(final=True)
    DataStats().check(final=True)  # nothing seen: nothing to say


def test_captions_without_label_ids_are_skipped_and_counted():
    source = open_source("synthetic:8", image_size=32)
    labeler = lambda caps: [[] if i % 2 else [1, 2] for i, _ in enumerate(caps)]  # noqa: E731
    batch = next(make_batches(source, batch_size=4, transform=lambda im, rng: torch.zeros(3, 32, 32),
                              labeler=labeler))
    assert len(batch["index"]) == 2 and batch["skipped"] == {"no_label_ids": 2}
    assert batch["label_offsets"].tolist() == [0, 2, 4] and batch["image"].shape[0] == 2


def test_idf_over_a_shard_glob(tmp_path):
    for n in range(2):
        _tar(tmp_path / f"s{n}.tar", [m for i in range(3) for m in ((f"k{n}{i}.png", _png()),
                                                                      (f"k{n}{i}.txt", b"red square"))])
    table = compute_idf_table(str(tmp_path / "*.tar"), None)
    assert int(table["docs"]) == 6 and table["skipped"] == 0
