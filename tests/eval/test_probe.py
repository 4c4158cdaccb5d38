"""`leanvl eval probe` on an ImageFolder (train/ + val/) and its bad-input contract."""
import json
import random

from PIL import Image

from leanvl.cli import main
from leanvl.models import create_encoder
from leanvl.models.export import save_encoder


def make_folder(root, per_class: int = 12) -> None:
    rng = random.Random(0)
    for part in ("train", "val"):
        for name, color in (("red", (220, 30, 30)), ("blue", (30, 60, 230))):
            (root / part / name).mkdir(parents=True)
            for i in range(per_class):
                img = Image.new("RGB", (40, 40), (rng.randint(0, 60),) * 3)
                x, y = rng.randint(0, 24), rng.randint(0, 24)
                img.paste(color, (x, y, x + 14, y + 14))
                img.save(root / part / name / f"{i}.png")


def test_imagefolder_probe_separates_colours(tmp_path, capsys):
    make_folder(tmp_path / "folder")
    save_encoder(create_encoder("leanvl_convnet", image_size=32), str(tmp_path / "enc"))
    out = tmp_path / "probe.json"
    assert main(["eval", "probe", "--ckpt", str(tmp_path / "enc"), "--data", str(tmp_path / "folder"),
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["classes"] == 2 and result["top1"] == 1.0


def test_probe_bad_inputs_exit_2(tmp_path, capsys):
    save_encoder(create_encoder("leanvl_convnet", image_size=32), str(tmp_path / "enc"))
    assert main(["eval", "probe", "--ckpt", str(tmp_path / "missing"), "--data", "synthetic"]) == 2
    (tmp_path / "notfolder").mkdir()
    assert main(["eval", "probe", "--ckpt", str(tmp_path / "enc"), "--data", str(tmp_path / "notfolder")]) == 2
    err = capsys.readouterr().err
    assert "train/ and val/" in err and "Traceback" not in err
