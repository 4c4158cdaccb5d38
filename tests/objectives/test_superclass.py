import math

import numpy as np
import pytest
import torch

from leanvl.errors import LeanvlError
from leanvl.objectives.superclass import SuperClass, bce_sparse, row_index

V = 12


def sparse(label_lists):
    ids = torch.tensor([i for row in label_lists for i in row], dtype=torch.long)
    offsets = torch.tensor(np.cumsum([0] + [len(r) for r in label_lists]), dtype=torch.long)
    return ids, offsets


def batch_of(label_lists, seed):
    g = torch.Generator().manual_seed(seed)
    ids, offsets = sparse(label_lists)
    return {"image": torch.randn(len(label_lists), 3, 8, 8, generator=g), "label_ids": ids, "label_offsets": offsets}


def hand_loss(logits, label_lists, weights):
    """Dense numpy reference: L1-normalised weighted K-hot target, soft CE, mean over rows with a target."""
    logits = logits.detach().double().numpy()
    logp = logits - logits.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    losses = []
    for b, row in enumerate(label_lists):
        y = np.zeros(V)
        y[row] = 1.0
        t = y * weights
        if t.sum() <= 0:
            continue
        t = t / t.sum()
        losses.append(-(t * logp[b]).sum())
    return float(np.mean(losses))


BATCHES = [[[1, 2, 3], [2, 5], [2, 7, 8, 9]], [[2, 3], [4], [1, 2, 11]], [[2], [2, 3, 10], [6, 2]]]


def test_online_idf_and_loss_match_hand_computation_over_batches(tiny_encoder):
    model = SuperClass(tiny_encoder, vocab_size=V, idf="online")
    n, df = 0.0, np.zeros(V)
    for step, labels in enumerate(BATCHES):
        batch = batch_of(labels, step)
        out = model(batch)
        # a step uses the counts of the steps before it; step 1 (nothing counted) the uniform K-hot target
        weights = np.log((n + 1.0) / (df + 1.0)) if n else np.ones(V)
        logits = model.head(model.encoder.forward_pooled(batch["image"]))
        assert out["loss"].item() == pytest.approx(hand_loss(logits, labels, weights), rel=1e-6)
        np.testing.assert_allclose(model.idf_df.numpy(), df)  # nothing committed before the optimizer step
        model.on_optimizer_step()
        n += len(labels)
        for row in labels:
            df[row] += 1
        np.testing.assert_allclose(model.idf_df.numpy(), df)
        assert model.idf_docs.item() == n
    assert model.idf_df.dtype == torch.float64


def test_accumulated_micro_batches_equal_one_big_batch(tiny_encoder):
    """Two micro-batches of a step (weighted by their share) give one big batch's gradients and counts."""
    import copy

    rows = BATCHES[0] + BATCHES[1]
    big = SuperClass(tiny_encoder, vocab_size=V, idf="online")
    acc = copy.deepcopy(big)
    for model in (big, acc):  # a first step, so that the second one has non-uniform IDF weights
        model(batch_of(BATCHES[2], 9))
        model.on_optimizer_step()
    whole = batch_of(rows, 1)
    big(whole)["loss"].backward()
    for part, image in ((BATCHES[0], whole["image"][:3]), (BATCHES[1], whole["image"][3:])):
        ids, offsets = sparse(part)
        (acc({"image": image, "label_ids": ids, "label_offsets": offsets})["loss"] * 0.5).backward()
    for (name, p), q in zip(big.named_parameters(), acc.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-7, msg=name)
    big.on_optimizer_step()
    acc.on_optimizer_step()
    assert torch.equal(big.idf_df, acc.idf_df) and big.idf_docs.item() == acc.idf_docs.item() == 9


def test_id_present_in_every_caption_gets_zero_weight(tiny_encoder):
    # an id present in every caption seen so far has df = n, so ln((n+1)/(df+1)) = 0
    model = SuperClass(tiny_encoder, vocab_size=V, idf="online")
    model(batch_of([[2], [2]], 0))
    model.on_optimizer_step()
    assert model.idf_weights()[2].item() == pytest.approx(0.0)
    # a caption whose only id has zero weight contributes no loss (no division by zero, no NaN)
    out = model(batch_of([[2], [2, 3]], 1))
    assert math.isfinite(out["loss"].item())


def test_idf_none_uses_uniform_targets(tiny_encoder):
    model = SuperClass(tiny_encoder, vocab_size=V, idf="none")
    batch = batch_of(BATCHES[0], 3)
    out = model(batch)
    logits = model.head(model.encoder.forward_pooled(batch["image"]))
    assert out["loss"].item() == pytest.approx(hand_loss(logits, BATCHES[0], np.ones(V)), rel=1e-6)
    assert out["target_entropy"].item() == pytest.approx(np.mean([math.log(len(r)) for r in BATCHES[0]]), rel=1e-6)


def test_offline_idf_table_is_used_and_not_updated(tiny_encoder):
    df = torch.arange(V, dtype=torch.float64)
    model = SuperClass(tiny_encoder, vocab_size=V, idf="offline", idf_table={"docs": torch.tensor(20.0), "df": df})
    batch = batch_of(BATCHES[1], 4)
    out = model(batch)
    weights = np.log(21.0 / (df.numpy() + 1.0))
    logits = model.head(model.encoder.forward_pooled(batch["image"]))
    assert out["loss"].item() == pytest.approx(hand_loss(logits, BATCHES[1], weights), rel=1e-6)
    assert model.idf_docs.item() == 20.0


def test_bce_matches_dense_torch(tiny_encoder):
    logits = torch.randn(3, V)
    ids, offsets = sparse(BATCHES[0])
    dense = torch.zeros(3, V)
    for b, row in enumerate(BATCHES[0]):
        dense[b, row] = 1
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits, dense, reduction="sum") / 3
    assert bce_sparse(logits, ids, row_index(offsets)).item() == pytest.approx(ref.item(), rel=1e-6)


def test_head_init_and_bad_modes(tiny_encoder):
    model = SuperClass(tiny_encoder, vocab_size=4000, idf="none")
    assert model.head.fc.weight.std().item() == pytest.approx(16 ** -0.5, rel=0.05)
    assert model.head.fc.bias.abs().sum().item() == 0
    with pytest.raises(LeanvlError):
        SuperClass(tiny_encoder, vocab_size=V, idf="sometimes")
    with pytest.raises(LeanvlError):
        SuperClass(tiny_encoder, vocab_size=V, loss="hinge")
    with pytest.raises(LeanvlError):
        SuperClass(tiny_encoder, vocab_size=V, idf="offline")


def test_gradient_of_sparse_loss_equals_dense_soft_ce(tiny_encoder):
    model = SuperClass(tiny_encoder, vocab_size=V, idf="none")
    batch = batch_of(BATCHES[2], 5)
    logits = torch.randn(3, V, requires_grad=True)
    ids, offsets = batch["label_ids"], batch["label_offsets"]
    from leanvl.objectives.superclass import softmax_ce_sparse

    loss, _ = softmax_ce_sparse(logits, ids, row_index(offsets), torch.ones(len(ids), dtype=torch.float64))
    loss.backward()
    dense = torch.zeros(3, V)
    for b, row in enumerate(BATCHES[2]):
        dense[b, row] = 1.0 / len(row)
    logits2 = logits.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(logits2, dense).backward()
    torch.testing.assert_close(logits.grad, logits2.grad)


def test_head_chunk_trains_the_same_model(tiny_encoder):
    """--head-chunk: same loss, entropy, IDF counts and parameter gradients as the unfused head."""
    import copy

    plain = SuperClass(tiny_encoder, vocab_size=V, idf="online")
    fused = copy.deepcopy(plain)
    fused.head_chunk = 2
    for step, labels in enumerate(BATCHES):
        batch = batch_of(labels + [[]], step)  # a caption without labels too
        a, b = plain(batch), fused(batch)
        assert b["loss"].item() == pytest.approx(a["loss"].item(), rel=1e-5)
        assert b["target_entropy"].item() == pytest.approx(a["target_entropy"].item(), rel=1e-5)
        a["loss"].backward()
        b["loss"].backward()
        plain.on_optimizer_step()
        fused.on_optimizer_step()
    for (name, p), q in zip(plain.named_parameters(), fused.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert torch.equal(plain.idf_df, fused.idf_df) and plain.idf_docs.item() == 12
    with pytest.raises(LeanvlError, match="head-chunk"):
        SuperClass(tiny_encoder, vocab_size=V, loss="bce", head_chunk=4)
