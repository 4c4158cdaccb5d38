"""The one Registry class, and a sweep over every entry of every registry: build, forward, backward, save/reload."""
import pytest
import torch
from safetensors.torch import load_model, save_model

from leanvl.errors import LeanvlError
from leanvl.models.encoders import ENCODERS, create_encoder
from leanvl.models.export import load_encoder, save_encoder
from leanvl.objectives.text_tower import TEXT_CONFIGS, TextEncoder
from leanvl.registry import Registry
from leanvl.vlm.compressors import COMPRESSORS, create_compressor
from leanvl.vlm.llm import LLMS, load_llm, llm_from_saved, save_llm_spec


def test_registry_decorator_call_names_and_errors():
    reg = Registry("widget", flag="--widget")

    @reg.register("a")
    def make_a(x):
        return ("a", x)

    reg.register("b", lambda x: ("b", x))
    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and len(reg) == 2
    assert "a" in reg and "c" not in reg and reg["a"] is make_a
    assert reg.create("b", 3) == ("b", 3)
    with pytest.raises(LeanvlError, match=r"^--widget: unknown widget 'c' \(choose from a, b\)$"):
        reg.create("c")
    with pytest.raises(LeanvlError, match="already registered"):
        reg.register("a", lambda x: x)
    assert reg.create("a", 1) == ("a", 1)  # the first registration stands
    assert str(reg.unknown("z", also="a path", flag="--w")) == "--w: unknown widget 'z' (choose from a, b; or a path)"


def _backward_touches_params(module: torch.nn.Module, out: torch.Tensor) -> None:
    out.float().square().mean().backward()
    grads = [p.grad for p in module.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ENCODERS.names())
def test_every_encoder_builds_trains_and_reloads(name, tmp_path):
    torch.manual_seed(0)
    enc = create_encoder(name, image_size=32)
    x = torch.randn(2, 3, 32, 32)
    _backward_touches_params(enc, enc.forward_pooled(x))
    save_encoder(enc, str(tmp_path / "enc"))
    again = load_encoder(str(tmp_path / "enc"))
    enc.eval(), again.eval()
    torch.testing.assert_close(again.forward_tokens(x), enc.forward_tokens(x))


@pytest.mark.parametrize("name", COMPRESSORS.names())
def test_every_compressor_builds_trains_and_reloads(name, tmp_path):
    def make():
        return create_compressor(name, grid=(4, 4), tokens=16 if name == "none" else 4, dim=8, multi_dim=12,
                                 query_dim=6)

    torch.manual_seed(0)
    comp = make()
    g = torch.Generator().manual_seed(1)
    x, multi, query = torch.randn(2, 16, 8, generator=g), torch.randn(2, 16, 12, generator=g), torch.randn(2, 6)
    out = comp(x, multi, query)
    assert out.shape == (2, comp.tokens, comp.out_dim)
    if any(True for _ in comp.parameters()):
        _backward_touches_params(comp, out)
        save_model(comp, str(tmp_path / "c.safetensors"))
        torch.manual_seed(1)
        again = make()
        load_model(again, str(tmp_path / "c.safetensors"))
        torch.testing.assert_close(again(x, multi, query), comp(x, multi, query))
    else:  # parameter-free compressors (none, avgpool): output is a function of the input alone
        torch.testing.assert_close(make()(x, multi, query), out)


@pytest.mark.parametrize("name", TEXT_CONFIGS.names())
def test_every_text_config_builds_trains_and_reloads(name, tmp_path):
    torch.manual_seed(0)
    text = TextEncoder(name)
    caps = ["a red circle", "two blue squares on grey"]
    _backward_touches_params(text, text(caps))
    save_model(text, str(tmp_path / "t.safetensors"))
    torch.manual_seed(1)
    again = TextEncoder(name)
    load_model(again, str(tmp_path / "t.safetensors"))
    text.eval(), again.eval()
    torch.testing.assert_close(again(caps), text(caps))


@pytest.mark.parametrize("name", LLMS.names())
def test_every_llm_builds_trains_and_reloads(name, tmp_path, request):
    llm = request.getfixturevalue("smollm2") if name == "smollm2-135m" else load_llm(name, seed=0)
    ids = llm.tokenizer(["The star is red."], return_tensors="pt")["input_ids"]
    out = llm.model(input_ids=ids, labels=ids)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert llm.model.get_input_embeddings().weight.grad.abs().sum() > 0
    llm.model.zero_grad(set_to_none=True)
    save_llm_spec(llm, str(tmp_path / "cfg"), str(tmp_path / "tok"))
    save_model(llm.model, str(tmp_path / "w.safetensors"))
    again = llm_from_saved(str(tmp_path / "cfg"), str(tmp_path / "tok"))
    load_model(again.model, str(tmp_path / "w.safetensors"))
    assert again.tokenizer(["The star is red."])["input_ids"][0] == ids[0].tolist()
    llm.model.eval(), again.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(again.model(input_ids=ids).logits, llm.model(input_ids=ids).logits)


def _objective_batch():
    from leanvl.labels import encode

    caps = ["a red circle", "two blue squares", "a green star on grey", "the word house"]
    ids = encode(caps)
    offsets = torch.tensor([0] + [len(r) for r in ids]).cumsum(0)
    g = torch.Generator().manual_seed(2)
    return {"image": torch.randn(4, 3, 8, 8, generator=g), "caption": caps,
            "label_ids": torch.tensor([i for r in ids for i in r]), "label_offsets": offsets}


def test_objective_builders_and_options_are_registered_together():
    from leanvl.objective_options import OBJECTIVE_OPTIONS
    from leanvl.objectives import OBJECTIVES

    assert sorted(OBJECTIVES.names()) == sorted(OBJECTIVE_OPTIONS.names())


@pytest.mark.parametrize("name", __import__("leanvl.objectives", fromlist=["OBJECTIVES"]).OBJECTIVES.names())
def test_every_objective_builds_trains_and_reloads(name, tmp_path):
    from leanvl.objectives import build_objective

    from tests.conftest import TinyEncoder

    def make(seed):
        torch.manual_seed(seed)
        return build_objective(name, TinyEncoder(), None)

    task = make(0).train()
    batch = _objective_batch()
    out = task(batch)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    trained = [p for p in task.parameters() if p.requires_grad]
    assert trained and all(p.grad is not None for p in trained)
    save_model(task, str(tmp_path / "task.safetensors"))
    again = make(1)
    load_model(again, str(tmp_path / "task.safetensors"))
    task.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(batch)["loss"], task(batch)["loss"])
