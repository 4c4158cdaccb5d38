"""Zero-shot: a model whose image and text embeddings are built to agree scores 100%; bad input exits 2."""
import os

import pytest
import torch
from PIL import Image

from leanvl.cli import main
from leanvl.errors import LeanvlError
from leanvl.eval.classnames import folder_classnames, synthetic_tasks
from leanvl.eval.realdata import zeroshot_imagefolder
from leanvl.eval.zeroshot import zeroshot_accuracy

WORDS = ["red", "green", "blue"]


class MatchedModel(torch.nn.Module):
    """Image -> one-hot of its dominant channel; text -> one-hot of the colour word it contains (or swapped)."""

    def __init__(self, swap: bool = False) -> None:
        super().__init__()
        self.swap = swap

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(x.mean(dim=(2, 3)).argmax(1), 3).float()

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        ids = [next(i for i, w in enumerate(WORDS) if w in c) for c in captions]
        ids = [(i + 1) % 3 if self.swap else i for i in ids]
        return torch.nn.functional.one_hot(torch.tensor(ids), 3).float()


def _images(labels: list[int]) -> torch.Tensor:
    x = torch.zeros(len(labels), 3, 4, 4)
    for n, c in enumerate(labels):
        x[n, c] = 1.0
    return x


def test_matched_embeddings_give_100_percent_and_mismatched_0():
    labels = [0, 1, 2, 2, 1, 0, 0]
    x, y = _images(labels), torch.tensor(labels)
    templates = ["a {} shape", "a photo of a {} thing"]
    assert zeroshot_accuracy(MatchedModel(), [x[:4], x[4:]], y, WORDS, templates) == 1.0
    assert zeroshot_accuracy(MatchedModel(swap=True), [x], y, WORDS, templates) == 0.0


def test_imagefolder_zeroshot_uses_folder_names(tmp_path):
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
    for name, rgb in colours.items():
        os.makedirs(tmp_path / "val" / name)
        for i in range(3):
            Image.new("RGB", (40, 40), rgb).save(tmp_path / "val" / name / f"{i}.png")
    result = zeroshot_imagefolder(MatchedModel(), str(tmp_path), 32)
    assert result["top1"] == 1.0 and result["classes"] == 3 and result["images"] == 9
    names = tmp_path / "names.txt"
    names.write_text("blue\ngreen\nred\n")  # folder order is blue, green, red: the same names, explicit
    assert zeroshot_imagefolder(MatchedModel(), str(tmp_path), 32, str(names))["top1"] == 1.0
    names.write_text("blue\ngreen\n")
    with pytest.raises(LeanvlError, match="2 names for 3 class folders"):
        zeroshot_imagefolder(MatchedModel(), str(tmp_path), 32, str(names))


def test_missing_class_names_are_user_errors(tmp_path):
    with pytest.raises(LeanvlError, match="no class"):
        folder_classnames([])
    os.makedirs(tmp_path / "empty")
    with pytest.raises(LeanvlError):
        zeroshot_imagefolder(MatchedModel(), str(tmp_path / "empty"), 32)
    with pytest.raises(LeanvlError, match="no such file"):
        folder_classnames(["a"], str(tmp_path / "nope.txt"))


def test_builtin_tasks_have_classes_and_templates():
    tasks = synthetic_tasks()
    assert set(tasks) == {"shape", "color"}
    for classes, templates in tasks.values():
        assert len(classes) >= 6 and all("{}" in t for t in templates)


def test_cli_refuses_models_without_text_tower(tmp_path, capsys):
    from leanvl.models import create_encoder
    from leanvl.models.export import save_encoder

    save_encoder(create_encoder("leanvl_convnet", image_size=32), str(tmp_path / "enc"))
    assert main(["eval", "zeroshot", "--ckpt", str(tmp_path / "enc")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no text tower" in err and "--objective lit" in err
    assert main(["eval", "zeroshot", "--ckpt", str(tmp_path / "missing")]) == 2
