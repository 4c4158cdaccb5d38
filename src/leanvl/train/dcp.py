"""Sharded checkpoints under `--fsdp`: torch.distributed.checkpoint (DCP) in safetensors, committed by rename.

Layout of `RUN/checkpoints/step-00000100/` (same directory names as the single-file format, so `--resume latest`,
`keep` and every reader find it): `shards/shard-0000R-model-00001-of-00001.safetensors` (rank R's shard of every
parameter, buffer and optimizer tensor, written by DCP's HuggingFaceStorageWriter with `save_distributed`; each
file's safetensors header holds its tensors' offsets in the global shapes as JSON), `rng/rank-0000R.{json,safetensors}`
(each rank's RNG states), `state.json` (step, optimizer hyper-parameters, extras), and `manifest.json` (size and
SHA-256 of every file: each rank hashes the files it wrote, rank 0 merges them and writes the manifest last), verified
by `--resume` (a damaged checkpoint is skipped for the newest valid one, as for single-file checkpoints) and by the
readers of the weights.
Nothing is pickled: DCP's default `.metadata` file (a pickle) is never written; the reader rebuilds the metadata
from the safetensors headers. All ranks write into `.tmp-step-XXXXXXXX-dcp/`; rank 0 renames it into place after
every rank finished, so a kill mid-write leaves the previous checkpoint the newest complete one.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.train import distributed as dist
from leanvl.train.checkpoint import CKPT_DIR, MANIFEST, _rng_state, _set_rng_state, commit_checkpoint, \
    manifest_entries, verify_manifest, write_manifest

SHARDS = "shards"
RNG = "rng"
SINGLE = "model.safetensors"


def is_sharded(step_dir: str) -> bool:
    """True for a checkpoint written by `save_sharded`."""
    return os.path.isdir(os.path.join(step_dir, SHARDS))


def check_format(path: str, fsdp: bool) -> None:
    """A sharded checkpoint resumes only under --fsdp, a single-file one only without (one-line error)."""
    if is_sharded(path) and not fsdp:
        raise LeanvlError(f"--resume {path}: this checkpoint is sharded (written with --fsdp); resume with --fsdp")
    if fsdp and not is_sharded(path):
        raise LeanvlError(f"--resume {path}: this checkpoint was written without --fsdp; resume it without --fsdp")


def _write_rng(folder: str, rank: int) -> None:
    meta, tensors = _rng_state()
    os.makedirs(folder, exist_ok=True)
    save_file(tensors, os.path.join(folder, f"rank-{rank:05d}.safetensors"))
    with open(os.path.join(folder, f"rank-{rank:05d}.json"), "w") as f:
        json.dump(meta, f)


def save_sharded(run_dir: str, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                 extra: dict[str, Any], keep: int) -> str:
    """Collective: every rank writes its shards of checkpoint `step`; rank 0 commits it and prunes to `keep`."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.hf_storage import HuggingFaceStorageWriter
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    root = os.path.join(run_dir, CKPT_DIR)
    final, tmp = os.path.join(root, f"step-{step:08d}"), os.path.join(root, f".tmp-step-{step:08d}-dcp")
    if dist.is_main():
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    dist.barrier()
    optim = get_optimizer_state_dict(model, optimizer)
    state = {"model": _unshared(get_model_state_dict(model)), "optim": _tensors_only(optim["state"])}
    dcp.save(state, storage_writer=HuggingFaceStorageWriter(os.path.join(tmp, SHARDS), save_distributed=True))
    _write_rng(os.path.join(tmp, RNG), dist.rank())
    _write_rank_manifest(tmp, dist.rank())
    dist.barrier()
    if dist.is_main():
        meta = {"step": step, "format": "dcp", "param_groups": optim["param_groups"], **extra}
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        _merge_manifests(tmp)
        commit_checkpoint(tmp, final, run_dir, keep)
    dist.barrier()
    return final


def _rank_manifest(tmp: str, rank: int) -> str:
    return os.path.join(tmp, f"{MANIFEST}.rank-{rank:05d}")


def _write_rank_manifest(tmp: str, rank: int) -> None:
    """Hash the files this rank wrote (its shard files and RNG states) into a partial manifest for rank 0."""
    names = sorted(os.listdir(os.path.join(tmp, SHARDS)))
    mine = [f"{SHARDS}/{n}" for n in names if n.startswith(f"shard-{rank:05d}-")]
    mine += [f"{RNG}/rank-{rank:05d}.{ext}" for ext in ("json", "safetensors")]
    with open(_rank_manifest(tmp, rank), "w") as f:
        json.dump(manifest_entries(tmp, mine), f)


def _merge_manifests(tmp: str) -> None:
    """Rank 0: one manifest.json from the ranks' partial ones, plus state.json and any file no rank claimed."""
    entries: dict[str, Any] = {}
    for name in sorted(os.listdir(tmp)):
        if name.startswith(f"{MANIFEST}.rank-"):
            with open(os.path.join(tmp, name)) as f:
                entries.update(json.load(f))
            os.remove(os.path.join(tmp, name))
    present = ["state.json"] + [f"{d}/{n}" for d in (SHARDS, RNG) for n in sorted(os.listdir(os.path.join(tmp, d)))]
    entries.update(manifest_entries(tmp, [n for n in present if n not in entries]))
    write_manifest(tmp, entries)


def _unshared(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict with each shared tensor (tied embeddings) kept once, under its first key (as save_model)."""
    seen, out = set(), {}
    for key, value in sd.items():
        local = getattr(value, "_local_tensor", value)
        ident = (local.data_ptr(), local.dtype) if local.numel() else id(value)
        if ident not in seen:
            seen.add(ident)
            out[key] = value
    return out


def _tensors_only(state: dict[str, dict[str, Any]]) -> dict[str, dict[str, torch.Tensor]]:
    return {fqn: {k: v if isinstance(v, torch.Tensor) else torch.tensor(v) for k, v in s.items()}
            for fqn, s in state.items()}


def _metadata(shards: str) -> dict[str, Any]:
    from torch.distributed.checkpoint.hf_storage import HuggingFaceStorageReader

    return HuggingFaceStorageReader(shards).read_metadata().state_dict_metadata


def _optim_template(meta: dict[str, Any], model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """Tensors shaped (and sharded) like the saved optimizer state, for DCP to load into."""
    params = dict(model.named_parameters())
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, md in meta.items():
        if not key.startswith("optim."):
            continue
        fqn, name = key[len("optim."):].rsplit(".", 1)
        p = params.get(fqn)
        dtype = md.properties.dtype
        like = p is not None and tuple(md.size) == tuple(p.shape)
        out.setdefault(fqn, {})[name] = torch.zeros_like(p, dtype=dtype) if like else torch.zeros(md.size, dtype=dtype)
    return out


def _load_rng(folder: str, rank: int) -> None:
    """This rank's saved RNG states; a rank the checkpoint did not have (more processes now) keeps its seeded ones."""
    name = os.path.join(folder, f"rank-{rank:05d}")
    if not os.path.isfile(name + ".json"):
        return
    with open(name + ".json") as f:
        meta = json.load(f)
    _set_rng_state(meta, load_file(name + ".safetensors"))


def load_sharded(path: str, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Collective: restore this rank's shards of weights and optimizer, and its RNG states; returns state.json.
    DCP reshards on load, so another number of processes than the checkpoint's works (data continue at the first
    sample not consumed; RNG streams, e.g. dropout, are exact only for the same number)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.hf_storage import HuggingFaceStorageReader
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, \
        set_model_state_dict, set_optimizer_state_dict

    check_format(path, fsdp=True)
    with open(os.path.join(path, "state.json")) as f:
        state = json.load(f)
    shards = os.path.join(path, SHARDS)
    meta = _metadata(shards)
    target = {"model": _unshared(get_model_state_dict(model))}
    if optimizer is not None:
        target["optim"] = _optim_template(meta, model)
    dcp.load(target, storage_reader=HuggingFaceStorageReader(shards))
    set_model_state_dict(model, target["model"], options=StateDictOptions(strict=False))  # tied keys stored once
    if optimizer is not None:
        set_optimizer_state_dict(model, optimizer, {"state": target["optim"], "param_groups": state["param_groups"]})
    _load_rng(os.path.join(path, RNG), dist.rank())
    return state


def weights_path(step_dir: str) -> str:
    """The weights of a checkpoint directory: its shards folder (sharded) or its model.safetensors."""
    return os.path.join(step_dir, SHARDS) if is_sharded(step_dir) else os.path.join(step_dir, SINGLE)


def load_weights(path: str, model: nn.Module) -> tuple[list[str], list[str]]:
    """Load a safetensors file or a sharded checkpoint's shards folder (consolidated in this process, no process
    group needed) into an ordinary `model`; returns (missing, unexpected) keys."""
    if not os.path.isdir(path):
        missing, unexpected = load_model(model, path, strict=False)
        return list(missing), list(unexpected)
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.hf_storage import HuggingFaceStorageReader

    saved = {k[len("model."):] for k in _metadata(path) if k.startswith("model.")}
    own = model.state_dict()
    target = {k: v for k, v in own.items() if k in saved}
    dcp.load({"model": target}, storage_reader=HuggingFaceStorageReader(path), no_dist=True)
    model.load_state_dict(target, strict=False)
    return sorted(set(own) - saved), sorted(saved - set(own))


def load_any_weights(model: nn.Module, path: str) -> tuple[list[str], list[str]]:
    """`load_weights` (a safetensors file or FSDP shards) with a damaged or unfitting file as one LeanvlError line."""
    if not os.path.isdir(path):
        from leanvl.train.checkpoint import load_weights as load_file_weights

        return load_file_weights(model, path)
    step_dir = os.path.dirname(os.path.abspath(path))
    problem = verify_manifest(step_dir) if os.path.isfile(os.path.join(step_dir, MANIFEST)) else None
    if problem:
        raise LeanvlError(f"{path}: damaged sharded checkpoint ({problem})")
    try:
        return load_weights(path, model)
    except Exception as exc:  # noqa: BLE001  (DCP/safetensors errors on a damaged shards folder)
        raise LeanvlError(f"{path}: unreadable or unfitting sharded weights ({str(exc).splitlines()[0][:160]})") \
            from None
