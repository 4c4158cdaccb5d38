"""The CLI's one error boundary: user-caused exceptions are one line + exit 2; bugs say so, then the traceback."""
import argparse
import errno
import json
import pickle

import pytest

from leanvl import cli
from leanvl.boundary import one_line, user_error_message
from leanvl.errors import LeanvlError


@pytest.mark.parametrize("exc,needle", [
    (OSError(errno.EACCES, "Permission denied", "/x/out.json"), "Permission denied (/x/out.json)"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (pickle.UnpicklingError("Weights only load failed\nmore detail"), "refused to load a pickled file"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "not valid UTF-8"),
    (MemoryError(), "out of memory"),
])
def test_user_errors_are_one_line(exc, needle):
    message = user_error_message(exc)
    assert message is not None and needle in message and "\n" not in message


def test_safetensors_and_json_parse_errors_are_user_errors(tmp_path):
    from safetensors.torch import load_file

    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}")
    with pytest.raises(Exception) as info:
        load_file(str(bad))
    assert user_error_message(info.value).startswith("unreadable safetensors file")
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads("{nope")
    assert "malformed JSON" in user_error_message(info.value)


def test_a_worker_traceback_keeps_its_last_line():
    assert one_line("Caught DataError in worker\nTraceback (most recent call last):\n  x\nDataError: bad") == \
        "DataError: bad"
    assert one_line("first\nsecond") == "first"


def _run(monkeypatch, func):
    parser = cli.build_parser()
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: argparse.Namespace(func=func))
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    return cli.main([])


def test_user_errors_from_any_command_end_in_one_line(monkeypatch, capsys):
    def refuses(args):
        raise LeanvlError("bad input\nsecond line")

    assert _run(monkeypatch, refuses) == 2
    assert capsys.readouterr().err == "leanvl: error: bad input\n"

    def offline(args):
        raise pickle.UnpicklingError("Weights only load failed.\nIn PyTorch 2.6 ...")

    assert _run(monkeypatch, offline) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_bug_says_so_and_shows_the_traceback(monkeypatch, capsys):
    def boom(args):
        raise KeyError("internal")

    with pytest.raises(KeyError):  # the interpreter prints the traceback after the line saying it is a bug
        _run(monkeypatch, boom)
    assert capsys.readouterr().err.startswith("leanvl: internal error")
