"""--cache-features: frozen vision features of a batch encoded before are reused, and training with the cache is
bit-identical to training without it; changed weights, other images, a training-mode encoder or a full cache
fall back to the encoder."""
import copy

import torch

from leanvl.vlm import feature_cache
from leanvl.vlm.feature_cache import caching
from tests.vlm.helpers import fixed_batch, make_vlm


def _train(model, batches, steps=3):
    """A few AdamW steps of `model` on `batches` (cycled); returns the losses and the trained model."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for i in range(steps):
        loss = model(batches[i % len(batches)])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model


def test_two_cells_with_the_cache_train_bit_identically_to_no_cache():
    base = make_vlm("quecc-gate", 1)
    batches = [fixed_batch(base.tokenizer, n=4, seed=s) for s in (0, 1)]
    ref_losses, ref = _train(copy.deepcopy(base), batches)
    with caching() as cache:
        first_losses, _ = _train(copy.deepcopy(base), batches)
        assert cache.stats()["misses"] == 2 and cache.stats()["hits"] == 1  # batch 0 again at step 3
        second_losses, second = _train(copy.deepcopy(base), batches)  # the next cell: all from the cache
        assert cache.stats()["hits"] == 4 and cache.stats()["misses"] == 2 and cache.stats()["bytes"] > 0
    assert first_losses == ref_losses and second_losses == ref_losses
    for (name, a), b in zip(ref.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    assert feature_cache.active() is None


def test_changed_weights_other_images_and_a_trained_encoder_are_not_served_from_the_cache():
    model = make_vlm("avgpool", 1).eval()
    batch = fixed_batch(model.tokenizer, n=2)
    with caching() as cache, torch.no_grad():
        before = model.visual_tokens(batch["image"])
        assert torch.equal(model.visual_tokens(batch["image"]), before) and cache.hits == 1
        model.visual_tokens(batch["image"] + 1e-3)  # other bytes: a miss
        assert cache.misses == 2
        next(model.encoder.parameters()).add_(0.5)  # an in-place write bumps the version: new digest
        after = model.visual_tokens(batch["image"])
        assert cache.misses == 3 and not torch.equal(after, before)
    model.set_frozen(set())
    model.train()  # a training encoder is never cached
    with caching() as cache:
        model.visual_tokens(batch["image"]).sum().backward()
        assert cache.hits == cache.misses == 0
        assert next(model.encoder.parameters()).grad is not None


def test_a_full_cache_stops_storing_and_still_returns_features():
    model = make_vlm("avgpool", 1).eval()
    batch = fixed_batch(model.tokenizer, n=2)
    with caching(max_gb=1e-9) as cache, torch.no_grad():
        a = model.visual_tokens(batch["image"])
        b = model.visual_tokens(batch["image"])
        assert torch.equal(a, b) and cache.stats() == {"hits": 0, "misses": 2, "not_stored": 2, "bytes": 0}
