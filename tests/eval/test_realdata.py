"""Real-data zero-shot (ImageNet names by folder, .cls shards) and multi-caption retrieval (CSV, shards)."""
import csv
import io
import json
import os
import tarfile

import pytest
import torch
from PIL import Image

from leanvl.cli import main
from leanvl.errors import LeanvlError
from leanvl.eval.realdata import multi_caption_recall, retrieval_real, zeroshot_real

RGB = {0: (255, 0, 0), 1: (0, 255, 0), 2: (0, 0, 255)}
FISH = ["tench", "goldfish", "great white shark"]  # ImageNet classes 0, 1, 2
COLOURS = ["red", "green", "blue"]


class Matched(torch.nn.Module):
    """Image -> one-hot of its dominant channel; text -> one-hot of the word of `words` it names (else zeros)."""

    def __init__(self, words, swap=False):
        super().__init__()
        self.words, self.swap = words, swap

    def encode_image(self, x):
        return torch.nn.functional.one_hot(x.mean(dim=(2, 3)).argmax(1), 3).float()

    def encode_text(self, captions):
        out = torch.zeros(len(captions), 3)
        for n, c in enumerate(captions):
            hit = [i for i, w in enumerate(self.words) if w in c]
            if hit:
                out[n, (hit[0] + self.swap) % 3] = 1.0
        return out


def png(colour):
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), RGB[colour]).save(buf, format="PNG")
    return buf.getvalue()


def imagenet_folder(root):
    for folder, colour in (("n01440764", 0), ("goldfish", 1), ("2", 2)):  # WordNet id, class name, index
        os.makedirs(root / "val" / folder)
        for i in range(2):
            (root / "val" / folder / f"{i}.png").write_bytes(png(colour))
    return str(root)


def test_zeroshot_imagenet_names_by_folder_among_1000_classes(tmp_path):
    result = zeroshot_real(Matched(FISH), imagenet_folder(tmp_path), 32, "imagenet")
    assert result == {"top1": 1.0, "top5": 1.0, "classes": 1000, "templates": 80, "images": 6}
    assert zeroshot_real(Matched(FISH, swap=True), str(tmp_path), 32, "imagenet")["top1"] == 0.0
    os.makedirs(tmp_path / "val" / "not_a_class")
    (tmp_path / "val" / "not_a_class" / "0.png").write_bytes(png(0))
    with pytest.raises(LeanvlError, match="'not_a_class' is not an ImageNet"):
        zeroshot_real(Matched(FISH), str(tmp_path), 32, "imagenet")


def write_tar(path, samples):
    with tarfile.open(path, "w") as tar:
        for key, files in samples:
            for ext, data in files.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_zeroshot_cls_shards_with_classnames_and_templates_files(tmp_path):
    write_tar(tmp_path / "s-0.tar", [(f"k{i}", {"png": png(i % 3), "cls": str(i % 3).encode()}) for i in range(6)])
    (tmp_path / "names.txt").write_text("red\ngreen\nblue\n")
    (tmp_path / "templates.txt").write_text("a {} thing\nsomething {}\n")
    result = zeroshot_real(Matched(COLOURS), str(tmp_path / "s-0.tar"), 32, str(tmp_path / "names.txt"),
                           str(tmp_path / "templates.txt"))
    assert result["top1"] == 1.0 and result["classes"] == 3 and result["templates"] == 2
    (tmp_path / "bad.txt").write_text("no placeholder\n")
    with pytest.raises(LeanvlError, match="exactly one"):
        zeroshot_real(Matched(COLOURS), str(tmp_path / "s-0.tar"), 32, str(tmp_path / "names.txt"),
                      str(tmp_path / "bad.txt"))


def five_caption_csv(root):
    rows = []
    for i in range(3):
        (root / f"img{i}.png").write_bytes(png(i))
        rows += [(f"img{i}.png", f"caption {j} of a {COLOURS[i]} square") for j in range(5)]
    with open(root / "pairs.csv", "w", newline="") as f:
        csv.writer(f).writerows([("image", "caption"), *rows])
    return str(root / "pairs.csv")


def test_retrieval_csv_five_captions_per_image(tmp_path):
    path = five_caption_csv(tmp_path)
    result = retrieval_real(Matched(COLOURS), path, 32)
    assert result["images"] == 3 and result["captions"] == 15
    assert result["i2t_r1"] == result["t2i_r1"] == result["t2i_r10"] == 1.0
    assert retrieval_real(Matched(COLOURS, swap=True), path, 32)["t2i_r1"] == 0.0


def test_multi_caption_recall_ranks():
    img = torch.eye(3)
    txt = torch.tensor([[0.6, 0.8, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]])  # captions of images 0, 0, 2, 1
    r = multi_caption_recall(img, txt, torch.tensor([0, 0, 2, 1]), ks=(1, 2))
    assert r["i2t_r1"] == 1.0  # each image's best caption is one of its own (image 0: caption 1)
    assert r["t2i_r1"] == 0.75 and r["t2i_r2"] == 1.0  # caption 0 ranks image 1 first, image 0 second


def test_cli_on_a_trained_clip_run(tmp_path, capsys):
    run = str(tmp_path / "clip")
    assert main(["pretrain", "--objective", "clip", "--model", "leanvl_convnet", "--image-size", "32",
                 "--batch-size", "4", "--steps", "1", "--no-progress", "--out", run]) == 0
    (tmp_path / "t.txt").write_text("a photo of a {}.\n")
    capsys.readouterr()
    assert main(["eval", "zeroshot", "--ckpt", run, "--data", imagenet_folder(tmp_path / "inet"), "--classnames",
                 "imagenet", "--templates", str(tmp_path / "t.txt")]) == 0
    zs = json.loads(capsys.readouterr().out)
    assert zs["classes"] == 1000 and zs["images"] == 6 and 0.0 <= zs["top1"] <= zs["top5"] <= 1.0
    assert main(["eval", "retrieval", "--ckpt", run, "--data", five_caption_csv(tmp_path)]) == 0
    rt = json.loads(capsys.readouterr().out)
    assert rt["captions"] == 15 and all(0.0 <= rt[k] <= 1.0 for k in ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r10"))
