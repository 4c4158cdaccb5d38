"""Shared test set-up: offline hubs, quiet tokenizers, few threads."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


class TinyEncoder(torch.nn.Module):
    """A 2-layer encoder over 3x8x8 images with the leanvl Encoder interface (for fast objective/trainer tests)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.width, self.grid, self.name = width, (2, 2), "tiny-test"
        self.conv = torch.nn.Conv2d(3, width, 4, stride=4)
        self.mix = torch.nn.Linear(width, width)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(self.conv(x).flatten(2).transpose(1, 2))

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(x).mean(1)


@pytest.fixture
def tiny_encoder():
    torch.manual_seed(0)
    return TinyEncoder()


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M, loaded once per session (its GGUF tokenizer alone takes ~20 s to parse)."""
    from leanvl.vlm.llm import load_llm

    return load_llm("smollm2-135m")
