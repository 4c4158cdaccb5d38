"""`leanvl pretrain --decode gpu` wiring, on the CPU device through the same code path (the CUDA run is in
benchmarks/gpu_end_to_end.sh): workers ship JPEG bytes + crop boxes, the training process decodes them."""
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

from leanvl.cli import main
from leanvl.data.encoded import DeviceDecoder, EncodedSource, EncodedTrainTransform
from leanvl.data.loader import make_batches
from leanvl.data.shards import shard_pattern, write_shards
from leanvl.data.sources import open_source
from leanvl.data.transforms import TrainTransform
from leanvl.pretrain import device_decoder
from leanvl.pretrain_config import PretrainConfig
from leanvl.train.checkpoint import checkpoint_dirs
from leanvl.train.config import TrainConfig
from tests.data.data_helpers import synth_samples

SIZE = 32


@pytest.fixture(scope="module")
def jpeg_shards(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("jpeg_shards"))
    write_shards(synth_samples(16, size=48), out, shard_size=8, image_format="jpg")
    return shard_pattern(out, 2)


def test_encoded_batches_decode_like_the_cpu_path(jpeg_shards):
    source = open_source(jpeg_shards, image_size=SIZE)
    kw = dict(batch_size=8, labeler=None, seed=3, start=4)
    cpu = next(make_batches(source, transform=TrainTransform(SIZE), **kw))
    shipped = next(make_batches(EncodedSource(source), transform=EncodedTrainTransform(TrainTransform(SIZE)), **kw))
    assert isinstance(shipped["image"], list) and all(t.dtype == torch.uint8 and t.dim() == 1 for t in shipped["image"])
    gpu = DeviceDecoder(SIZE, "cpu")(shipped)
    assert torch.equal(gpu["index"], cpu["index"]) and gpu["image"].shape == cpu["image"].shape == (8, 3, SIZE, SIZE)
    # same crop boxes -> close per image (~2 grey levels; a wrong box is far off), equal channel statistics
    assert (gpu["image"] - cpu["image"]).abs().mean(dim=(1, 2, 3)).max() < 0.05
    assert torch.allclose(gpu["image"].mean(dim=(0, 2, 3)), cpu["image"].mean(dim=(0, 2, 3)), atol=0.02)


def test_pretrain_decode_gpu_trains_and_resumes_exactly(tmp_path, jpeg_shards, capsys):
    out = str(tmp_path / "run")
    args = ["pretrain", "--data", jpeg_shards, "--decode", "gpu", "--device", "cpu", "--model", "leanvl_convnet",
            "--image-size", str(SIZE), "--batch-size", "4", "--steps", "4", "--save-every", "2", "--num-workers", "1",
            "--no-progress", "--out", out]
    assert main(args) == 0
    last = checkpoint_dirs(out)[-1]
    straight = load_file(os.path.join(last, "model.safetensors"))
    shutil.rmtree(last)  # as if killed after step 2's checkpoint
    assert main(args + ["--resume", "latest"]) == 0
    resumed = load_file(os.path.join(checkpoint_dirs(out)[-1], "model.safetensors"))
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert '"skipped": 0' in capsys.readouterr().out


def test_each_rank_decodes_on_its_own_gpu(monkeypatch):
    """Under torchrun, rank LOCAL_RANK decodes on cuda:LOCAL_RANK, never all on cuda:0."""
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("LOCAL_RANK", "2")
    for device in ("auto", "cuda"):
        decoder = device_decoder(PretrainConfig(decode="gpu", image_size=SIZE), TrainConfig(device=device))
        assert decoder.device == torch.device("cuda", 2)
    assert chosen == [2, 2]
    assert device_decoder(PretrainConfig(decode="cpu"), TrainConfig(device="auto")) is None
