"""SuperClass: pre-training as classification over CLIP-BPE subword ids (K-hot, IDF-weighted, softmax CE).

Labels arrive sparse (`label_ids` concatenated, `label_offsets` [B+1]); no B x V target is ever built: the soft-target
cross-entropy  -sum_c yhat_c log p_c  only needs log p at the label positions.

Online IDF is per OPTIMIZER step: every micro-batch of a step (all ranks, all accumulation micro-batches) is weighted
by the counts as of the step's start, and the step's documents are added once, by the trainer's `on_optimizer_step`
hook after the optimizer stepped. So accumulation equals one big batch, and 2 ranks x accum 1 equal 1 rank x accum 2.
The reference (x-cls/superclass) adds the current batch before use; here a step sees the counts of the steps before
it (a one-step lag, negligible after the first steps), and step 1, with nothing counted yet, uses uniform weights
(the `--idf none` target). A step skipped as non-finite still commits its counts (the data was seen; the skip is decided on the device).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.objectives.chunked_ce import chunked_head_ce
from leanvl.objective_options import SuperClassOptions, check_superclass
from leanvl.objectives.registry import World, register_objective
from leanvl.objectives.targets import soft_targets


class ClassifierHead(nn.Module):
    """Pooled features -> LayerNorm -> Linear(width -> vocab) with bias; weight init std width^-0.5."""

    def __init__(self, width: int, vocab_size: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, vocab_size)
        nn.init.normal_(self.fc.weight, std=width ** -0.5)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x))


def row_index(offsets: torch.Tensor, nnz: int | None = None) -> torch.Tensor:
    """For sparse labels with `offsets` [B+1], the row of every entry [nnz] (given `nnz`, no host sync on a GPU)."""
    counts = offsets[1:] - offsets[:-1]
    return torch.repeat_interleave(torch.arange(len(counts), device=offsets.device), counts, output_size=nnz)


def softmax_ce_sparse(logits: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor,
                      weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-target CE with targets = L1-normalised `weights` at (rows, ids); mean over rows with a target.

    Returns (loss, entropy of the targets) — the entropy is the loss floor for that batch.
    """
    batch = logits.shape[0]
    logp = torch.log_softmax(logits.float(), dim=-1)
    target, valid, entropy = soft_targets(weights, rows, batch, logp.dtype)
    per_row = torch.zeros(batch, dtype=logp.dtype, device=logp.device).index_add_(0, rows, -target * logp[rows, ids])
    return (per_row * valid).sum() / valid.sum().clamp_min(1), entropy


def bce_sparse(logits: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Binary CE against the K-hot target, summed over classes, mean over the batch: softplus(z) - y*z."""
    z = logits.float()
    return (F.softplus(z).sum() - z[rows, ids].sum()) / z.shape[0]


class SuperClass(nn.Module):
    """Encoder + classifier head trained on IDF-weighted K-hot caption subword targets."""

    def __init__(self, encoder: nn.Module, vocab_size: int = 49408, idf: str = "online", loss: str = "softmax",
                 idf_table: dict[str, torch.Tensor] | None = None, head_chunk: int = 0,
                 reduce_counts: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        check_superclass(idf, loss, head_chunk, has_table=idf_table is not None)
        self.encoder = encoder
        self.head = ClassifierHead(encoder.width, vocab_size)
        self.vocab_size, self.idf, self.loss_kind, self.head_chunk = vocab_size, idf, loss, head_chunk
        # float64 running counts: documents seen and per-id document frequency (online IDF); saved in checkpoints.
        self.register_buffer("idf_docs", torch.zeros((), dtype=torch.float64))
        self.register_buffer("idf_df", torch.zeros(vocab_size, dtype=torch.float64))
        if idf == "offline":
            self.idf_docs.fill_(float(idf_table["docs"]))
            if idf_table["df"].numel() != vocab_size:
                raise LeanvlError(f"IDF table has {idf_table['df'].numel()} ids, model vocabulary {vocab_size}")
            self.idf_df.copy_(idf_table["df"].to(torch.float64))
        self.reduce_counts = reduce_counts  # sums a tensor over ranks in place (None: a single process)
        # this optimizer step's counts [df..., docs], not yet committed; a plain attribute, not a buffer (DDP would
        # broadcast rank 0's copy over the others' at every forward) and not saved (checkpoints follow a commit)
        self._pending: torch.Tensor | None = None

    @torch.no_grad()
    def count_documents(self, ids: torch.Tensor, batch_size: int) -> None:
        """Add this micro-batch's captions to the step's pending counts (committed by `on_optimizer_step`)."""
        pending = self._pending_counts()
        pending[: self.vocab_size].index_add_(0, ids, torch.ones_like(ids, dtype=torch.float64))
        pending[-1] += batch_size

    def _pending_counts(self) -> torch.Tensor:
        if self._pending is None or self._pending.device != self.idf_df.device:
            self._pending = torch.zeros(self.vocab_size + 1, dtype=torch.float64, device=self.idf_df.device)
        return self._pending

    @torch.no_grad()
    def on_optimizer_step(self) -> None:
        """Trainer hook, once per optimizer step on every rank: commit the step's document counts (all
        micro-batches, summed over ranks) to the running online-IDF counts."""
        if self.idf != "online" or self.loss_kind == "bce":
            return
        pending = self._pending_counts()  # collective below: every rank reduces, also one with an empty step
        if self.reduce_counts is not None:
            self.reduce_counts(pending)
        self.idf_df += pending[: self.vocab_size]
        self.idf_docs += pending[-1]
        pending.zero_()

    def set_grad_checkpointing(self, enable: bool) -> None:
        """Recompute the encoder's activations in backward (trainer hook)."""
        self.encoder.set_grad_checkpointing(enable)

    def idf_weights(self) -> torch.Tensor:
        """Current IDF per id: ln((docs + 1) / (df + 1)) (the reference's online form of paper eq. 2); before any
        document was counted (online IDF, first optimizer step) every id weighs 1 (uniform K-hot, as `--idf none`)."""
        idf = torch.log((self.idf_docs + 1.0) / (self.idf_df + 1.0))
        if self.idf != "online":
            return idf
        return torch.where(self.idf_docs > 0, idf, torch.ones_like(idf))  # no host sync

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        ids, offsets = batch["label_ids"], batch["label_offsets"]
        rows = row_index(offsets, ids.numel())
        feats = self.head.norm(self.encoder.forward_pooled(batch["image"]))
        size = feats.shape[0]
        out: dict[str, torch.Tensor] = {"labels_per_caption": torch.tensor(ids.numel() / max(1, size))}
        if self.loss_kind == "bce":
            out["loss"] = bce_sparse(self.head.fc(feats), ids, rows)
            return out
        if self.idf == "online" and self.training:
            self.count_documents(ids, size)
        if self.idf == "none":
            weights = torch.ones(ids.shape, dtype=torch.float64, device=ids.device)
        else:
            weights = self.idf_weights()[ids]
        if self.head_chunk:
            out["loss"], out["target_entropy"] = chunked_head_ce(feats, self.head.fc, ids, rows, weights,
                                                                 self.head_chunk)
        else:
            out["loss"], out["target_entropy"] = softmax_ce_sparse(self.head.fc(feats), ids, rows, weights)
        return out


@register_objective("superclass")
def build_superclass(encoder: nn.Module, opts: SuperClassOptions, world: World) -> SuperClass:
    """SuperClass around `encoder` over the CLIP BPE vocabulary (IDF counts summed over ranks)."""
    from leanvl.text.labels import VOCAB_SIZE

    table = load_idf_table(opts.idf_table) if opts.idf == "offline" and opts.idf_table else None
    return SuperClass(encoder, VOCAB_SIZE, idf=opts.idf, loss=opts.loss, idf_table=table, head_chunk=opts.head_chunk,
                      reduce_counts=world.all_reduce_sum if world.size > 1 else None)


def load_idf_table(path: str) -> dict[str, torch.Tensor]:
    """Read an IDF table written by `leanvl data idf` (safetensors: `docs` scalar, `df` [vocab])."""
    import os

    from safetensors.torch import load_file

    if not os.path.isfile(path):
        raise LeanvlError(f"IDF table '{path}' not found")
    try:
        table = load_file(path)
    except Exception as exc:  # noqa: BLE001
        raise LeanvlError(f"{path}: not a safetensors IDF table ({str(exc).splitlines()[0][:120]})") from None
    if "docs" not in table or "df" not in table or not math.isfinite(float(table["docs"])):
        raise LeanvlError(f"{path}: IDF table needs tensors 'docs' and 'df'")
    return table
