"""--help text comes from dataclass field metadata (`opt`), for every flag generated from a config dataclass."""
import argparse
from dataclasses import dataclass, fields

import pytest

from leanvl.cliutil import add_dataclass_args, opt


def _cli_dataclasses():
    from leanvl.compare_config import CompareConfig
    from leanvl.objective_options import OBJECTIVE_OPTIONS
    from leanvl.pretrain_config import PretrainConfig
    from leanvl.sweep import SweepSettings
    from leanvl.train.config import TrainConfig
    from leanvl.vlm.train import VLMTrainArgs

    return [TrainConfig, PretrainConfig, CompareConfig, VLMTrainArgs, SweepSettings,
            *(OBJECTIVE_OPTIONS.get(n) for n in OBJECTIVE_OPTIONS)]


@pytest.mark.parametrize("cls", _cli_dataclasses(), ids=lambda c: c.__name__)
def test_every_field_declares_its_help_in_metadata(cls):
    for f in fields(cls):
        assert len(f.metadata.get("help", "")) > 5, f"{cls.__name__}.{f.name}: declare help with opt(default, help)"


def test_help_text_reaches_argparse_without_source_code():
    @dataclass
    class Demo:
        count: int = opt(3, "how many widgets")
        names: list = opt(factory=lambda: ["a", "b"], help="widget names")
        loud: bool = opt(False, "shout")

    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, Demo, convert={"names": ",".join})
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["count"] == "how many widgets (default: 3)" and helps["loud"] == "shout"
    assert helps["names"] == "widget names (default: 'a,b')"
    assert vars(parser.parse_args(["--count", "5", "--loud"])) == {"count": 5, "names": "a,b", "loud": True}


def _command_dataclasses(command):
    from leanvl.compare_config import CompareConfig
    from leanvl.objective_options import OBJECTIVE_OPTIONS
    from leanvl.pretrain_config import PretrainConfig
    from leanvl.sweep import SweepSettings
    from leanvl.train.config import TrainConfig
    from leanvl.vlm.train import VLMTrainArgs

    return {"pretrain": [PretrainConfig, TrainConfig, *(OBJECTIVE_OPTIONS.get(n) for n in OBJECTIVE_OPTIONS)],
            "vlm train": [VLMTrainArgs, TrainConfig], "compare": [CompareConfig], "sweep": [SweepSettings]}[command]


@pytest.mark.parametrize("command", ["pretrain", "vlm train", "compare", "sweep"])
def test_every_generated_flag_shows_its_declared_text(command, capsys):
    from leanvl.cli import main

    with pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse re-wraps lines (and may break at hyphens)
    shown = 0
    for cls in _command_dataclasses(command):
        for f in fields(cls):
            if f.name in ("extra", "options"):
                continue
            assert "--" + f.name.replace("_", "-") in text, (command, f.name)
            assert "".join(f.metadata["help"].split()) in text, (command, f.name)
            shown += 1
    assert shown >= 10
