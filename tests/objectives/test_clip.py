"""CLIP and LiT objectives: loss goes down, logit scale init/clamp, locking, tokenisation, CLI wiring."""
import math
import subprocess
import sys

import pytest
import torch

from leanvl.errors import LeanvlError
from leanvl.models import create_encoder
from leanvl.objectives import OBJECTIVES
from leanvl.objectives.clip import LOGIT_SCALE_INIT, Contrastive, unlock_last_blocks
from leanvl.objectives.text_tower import text_config, tokenize

CAPTIONS = [f"a {c} {s}" for c in ("red", "blue", "green", "pink") for s in ("circle", "square")]


def _batch(n: int = 8, size: int = 8) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"image": torch.randn(n, 3, size, size, generator=g), "caption": CAPTIONS[:n]}


def test_both_objectives_registered():
    assert {"clip", "lit"} <= set(OBJECTIVES)


def test_clip_loss_decreases_on_a_fixed_batch(tiny_encoder):
    model = Contrastive(tiny_encoder)
    assert math.isclose(float(model.logit_scale.detach()), LOGIT_SCALE_INIT)
    batch = _batch()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(8):
        out = model(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[0] > math.log(8) * 0.5  # starts near chance (ln B)
    assert losses[-1] < 0.5 * losses[0]
    assert model.text.tower.token_embedding.weight.grad is not None  # the text tower trains too


def test_logit_scale_is_clamped_to_100(tiny_encoder):
    model = Contrastive(tiny_encoder)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert math.isclose(float(model.scale().detach()), 100.0, rel_tol=1e-5)


def test_lit_keeps_the_encoder_and_its_batchnorm_statistics_fixed():
    torch.manual_seed(0)
    encoder = create_encoder("leanvl_convnet", image_size=32)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    model = Contrastive(encoder, locked=True).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(2):
        loss = model(_batch(size=32))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    assert not encoder.training and model.text.training


def test_lit_unlock_last_blocks():
    encoder = create_encoder("leanvl_convnet", image_size=32)
    model = Contrastive(encoder, locked=True, unlock=1)
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("backbone.blocks.3.") for n in trainable)
    with pytest.raises(LeanvlError, match="lit-unlock"):
        unlock_last_blocks(encoder, 9)
    assert model.train().unlocked_modules[0].training


def test_tokenize_matches_open_clip_and_truncates():
    import open_clip

    caps = ["a red circle", "A Sign That Says \"swim\" &amp; more", "word " * 100]
    ids = tokenize(caps)
    assert torch.equal(ids, open_clip.tokenize(caps))
    assert ids.shape == (3, 77) and ids[2, -1] == 49407


def test_text_config_rejects_unknown_names():
    assert text_config("leanvl-text-tiny")[1] == 128
    with pytest.raises(LeanvlError, match="text-model"):
        text_config("no-such-text-model")


def _leanvl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "leanvl.cli", *args], capture_output=True, text=True)


def test_lit_bad_input_exits_2(tmp_path):
    for extra in ([], ["--lit-encoder", str(tmp_path / "missing")]):
        proc = _leanvl("pretrain", "--objective", "lit", "--steps", "1", "--out", str(tmp_path / "run"), *extra)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("leanvl: error:") and "lit-encoder" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_pretrain_clip_through_the_trainer_and_lit_on_it(tmp_path):
    from leanvl.cli import main
    from leanvl.pretrain import load_run

    common = ["--data", "synthetic", "--steps", "2", "--batch-size", "8", "--image-size", "32",
              "--model", "leanvl_convnet", "--no-progress", "--log-every", "1"]
    assert main(["pretrain", "--objective", "clip", "--out", str(tmp_path / "clip"), *common]) == 0
    task, cfg = load_run(str(tmp_path / "clip"))
    assert cfg.objective == "clip" and hasattr(task, "encode_text")
    assert main(["pretrain", "--objective", "lit", "--lit-encoder", str(tmp_path / "clip"),
                 "--out", str(tmp_path / "lit"), *common]) == 0
    lit, _ = load_run(str(tmp_path / "lit"))
    for key, value in task.encoder.state_dict().items():  # the locked encoder is the CLIP run's, unchanged
        assert torch.equal(value, lit.encoder.state_dict()[key])
    assert main(["pretrain", "--objective", "lit", "--lit-encoder", str(tmp_path / "clip"), "--image-size", "48",
                 "--out", str(tmp_path / "lit48"), "--steps", "1"]) == 2
