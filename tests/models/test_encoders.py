import os
import pickle

import pytest
import torch

from leanvl.errors import LeanvlError
from leanvl.models import create_encoder
from leanvl.models.export import load_encoder, load_state_file, save_encoder


@pytest.mark.parametrize("name", ["leanvl_convnet", "leanvl_vit_tiny", "resnet18"])
def test_encoder_feature_api(name):
    enc = create_encoder(name, image_size=64)
    x = torch.randn(2, 3, 64, 64)
    tokens = enc.forward_tokens(x)
    assert tokens.shape == (2, enc.grid[0] * enc.grid[1], enc.width)
    torch.testing.assert_close(enc.forward_pooled(x), tokens.mean(1), rtol=1e-4, atol=1e-5)
    layers = enc.forward_layers(x, [-2, -1])
    assert len(layers) == 2 and layers[-1].shape[1] == tokens.shape[1]


def test_vit_pooling_excludes_class_token():
    enc = create_encoder("leanvl_vit_tiny", image_size=64).eval()
    x = torch.randn(1, 3, 64, 64)
    full = enc.backbone.forward_features(x)
    assert full.shape[1] == enc.grid[0] * enc.grid[1] + 1
    torch.testing.assert_close(enc.forward_pooled(x), full[:, 1:].mean(1))


def test_unknown_encoder_is_a_user_error():
    with pytest.raises(LeanvlError, match="unknown encoder"):
        create_encoder("no_such_model_xyz")


def test_export_roundtrip_and_timm_loading(tmp_path):
    import timm

    enc = create_encoder("leanvl_vit_tiny", image_size=64).eval()
    save_encoder(enc, str(tmp_path / "enc"))
    again = load_encoder(str(tmp_path / "enc")).eval()
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(enc.forward_pooled(x), again.forward_pooled(x))
    # the README recipe: the same weights load straight into timm
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=True, num_classes=0, img_size=64, patch_size=8,
                            depth=6, pretrained_cfg_overlay={"file": str(tmp_path / "enc" / "model.safetensors")})
    torch.testing.assert_close(vit.forward_features(x), enc.backbone.forward_features(x))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/leanvl-pwned",))


def test_crafted_pickle_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    with open(path, "wb") as f:
        pickle.dump({"w": Evil()}, f)
    with pytest.raises(LeanvlError, match="refused"):
        load_state_file(str(path))
    assert not os.path.exists("/tmp/leanvl-pwned")
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")  # plain tensors are fine
    assert torch.equal(load_state_file(str(tmp_path / "ok.pt"))["w"], torch.ones(2))
