"""k-shot: separable features give 100%; k per class exactly; k above the smallest class exits 2."""
import pytest
import torch

from leanvl.cli import main
from leanvl.errors import LeanvlError
from leanvl.eval.fewshot import fewshot_scores, kshot_indices


def _clusters(n_per_class: int, classes: int = 4, dim: int = 4, spread: float = 0.3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(classes, dim) * 5
    y = torch.arange(classes).repeat_interleave(n_per_class)
    return centres[y] + spread * torch.randn(len(y), dim, generator=g), y


def test_separable_features_give_100_percent():
    xtr, ytr = _clusters(30)
    xte, yte = _clusters(20, seed=1)
    result = fewshot_scores(xtr, ytr, xte, yte, k=5, seeds=3)
    assert result["mean"] == 1.0 and result["std"] == 0.0 and len(result["per_seed"]) == 3


def test_noise_features_stay_near_chance():
    g = torch.Generator().manual_seed(0)
    xtr, xte = torch.randn(200, 16, generator=g), torch.randn(200, 16, generator=g)
    ytr, yte = torch.arange(200) % 4, torch.arange(200) % 4
    assert fewshot_scores(xtr, ytr, xte, yte, k=5, seeds=3)["mean"] < 0.5


def test_kshot_indices_take_k_per_class_and_vary_with_seed():
    y = torch.tensor([0] * 5 + [1] * 7 + [2] * 4)
    idx = kshot_indices(y, 4, seed=0)
    assert torch.bincount(y[idx]).tolist() == [4, 4, 4]
    assert not torch.equal(kshot_indices(y, 2, 0), kshot_indices(y, 2, 1))
    with pytest.raises(LeanvlError, match="smallest class"):
        kshot_indices(y, 5, seed=0)


def test_cli_k_too_large_exits_2(tmp_path, capsys):
    from leanvl.models import create_encoder
    from leanvl.models.export import save_encoder

    save_encoder(create_encoder("leanvl_convnet", image_size=32), str(tmp_path / "enc"))
    code = main(["eval", "fewshot", "--ckpt", str(tmp_path / "enc"), "--k", "500", "--n-train", "100",
                 "--n-test", "20"])
    assert code == 2 and "larger than the smallest class" in capsys.readouterr().err
