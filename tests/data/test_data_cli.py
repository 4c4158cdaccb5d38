"""`leanvl data synth` end to end, and its one-line exit-2 errors."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.data.data_helpers import synth_samples
from leanvl.cli import main
from leanvl.data.sources import open_source


def test_synth_writes_shards_readable_by_open_source(tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["data", "synth", "--out", str(out), "--n", "25", "--shard-size", "10", "--size", "32",
                 "--seed", "0", "--word-fraction", "0.5"]) == 0
    assert sorted(os.listdir(out)) == [f"shard-{i:06d}.tar" for i in range(3)]
    pattern = str(out / "shard-{000000..000002}.tar")
    assert pattern in capsys.readouterr().out
    src = open_source(pattern, shuffle=False)
    got = [src.decode(r) for r in src.raw(0)]
    want = synth_samples(25, size=32)
    assert [s.caption for s in got] != [s.caption for s in want]  # word fraction 0.5 changes the scenes
    assert [s.key for s in got] == [s.key for s in want]
    assert sum(s.attrs["word"] is not None for s in got) > 5 and got[0].image.size == (32, 32)
    # same flags again, into --overwrite: byte-identical shards
    before = (out / "shard-000001.tar").read_bytes()
    assert main(["data", "synth", "--out", str(out), "--n", "25", "--shard-size", "10", "--size", "32",
                 "--word-fraction", "0.5", "--overwrite"]) == 0
    assert (out / "shard-000001.tar").read_bytes() == before


def test_synth_val_split_and_jpg(tmp_path):
    out = tmp_path / "val"
    assert main(["data", "synth", "--out", str(out), "--n", "4", "--split", "val", "--image-format", "jpg"]) == 0
    src = open_source(str(out), shuffle=False)
    got = [src.decode(r) for r in src.raw(0)]
    assert [s.caption for s in got] == [s.caption for s in synth_samples(4, split="val", size=64)]


@pytest.mark.parametrize("extra, words", [
    (["--n", "0"], "--n must be >= 1"),
    (["--n", "3", "--size", "4000"], "size must be in"),
    (["--n", "3", "--shard-size", "0"], "--shard-size must be >= 1"),
    (["--n", "3", "--word-fraction", "2"], "word fraction"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, extra, words):
    assert main(["data", "synth", "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("leanvl: error:") and words in err and "\n" not in err


def test_existing_shards_and_file_out_are_refused(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["data", "synth", "--out", str(out), "--n", "2"]) == 0
    assert main(["data", "synth", "--out", str(out), "--n", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["data", "synth", "--out", str(tmp_path / "file"), "--n", "2"]) == 2


def test_subprocess_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "leanvl.cli", "data", "synth", "--out", str(tmp_path), "--n", "-1"],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "leanvl: error: --n must be >= 1, got -1"
