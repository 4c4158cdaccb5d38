import torch
from torch import nn

from leanvl.train.precision import MasterWeights, to_bf16


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 3), nn.Linear(3, 3))


def test_one_step_equals_fp32_adamw_on_the_upcast_bf16_grads():
    model = _model()
    ref = [p.detach().clone() for p in model.parameters()]
    mw = MasterWeights(list(model.parameters()))
    to_bf16(model)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert all(torch.equal(m, r) for m, r in zip(mw.master, ref))  # masters start exact, not rounded
    x = torch.randn(4, 6, dtype=torch.bfloat16)
    model[:3](x).float().pow(2).mean().backward()  # the last layer gets no gradient
    grads = [None if p.grad is None else p.grad.float() for p in model.parameters()]
    opt = torch.optim.AdamW(mw.master, lr=1e-3)
    mw.grads_up()
    assert all(p.grad is None for p in model.parameters())
    opt.step()
    mw.copy_down()

    ref = [nn.Parameter(r) for r in ref]
    for r, g in zip(ref, grads):
        r.grad = g
    torch.optim.AdamW(ref, lr=1e-3).step()
    for m, r, p in zip(mw.master, ref, model.parameters()):
        assert torch.equal(m.detach(), r.detach())
        assert torch.equal(p.detach(), r.detach().to(torch.bfloat16))
    assert mw.master[-1].grad is None and torch.equal(mw.master[-1].detach(), ref[-1].detach())


def test_fp32_view_exposes_masters_and_rounds_what_was_loaded():
    model = _model()
    mw = MasterWeights(list(model.parameters()))
    to_bf16(model)
    with mw.fp32_view():
        assert all(p.dtype == torch.float32 for p in model.parameters())
        sd = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict({k: v + 0.001 for k, v in sd.items()})
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    for (k, p), m in zip(model.named_parameters(), mw.master):
        assert torch.equal(m.detach(), sd[k] + 0.001)
        assert torch.equal(p.detach(), (sd[k] + 0.001).to(torch.bfloat16))


def test_to_bf16_casts_parameters_and_float32_buffers_but_not_float64_counters():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model.register_buffer("counts", torch.zeros(5, dtype=torch.float64))
    to_bf16(model)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert model[1].running_mean.dtype == model[1].running_var.dtype == torch.bfloat16
    assert model[1].num_batches_tracked.dtype == torch.long and model.counts.dtype == torch.float64
    x = torch.randn(2, 3, 8, 8, dtype=torch.bfloat16)
    model.train()(x).sum()  # batch statistics update the bf16 running statistics
    assert model.eval()(x).dtype == torch.bfloat16
