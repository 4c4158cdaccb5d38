"""Training-step throughput: leanvl SuperClass vs open_clip CLIP on the same image tower, in one run.

Data already on the device (random images, ~12 subword labels per caption, random 77-token texts), bf16 autocast,
fused AdamW, optional torch.compile. Prints img/s, GFLOP/img (FlopCounterMode, fwd+bwd) and MFU per variant and the
ratio SuperClass / CLIP. Memory of head + loss is measured by benchmarks/loss_memory.py.

  python benchmarks/gpu_train_step.py                       # H100: ViT-B/16, batch 256, compiled
  python benchmarks/gpu_train_step.py --smoke               # CPU smoke test of the script itself
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from leanvl.models import create_encoder
from leanvl.objectives.superclass import ClassifierHead, row_index, softmax_ce_sparse
from leanvl.train.precision import MasterWeights, to_bf16
from leanvl.train.speed import device_peak_flops

VOCAB = 49408


def sparse_labels(batch: int, per_caption: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randperm(VOCAB - 3, generator=g)[:per_caption].sort().values + 1 for _ in range(batch)]
    ids = torch.cat(rows).to(device)
    offsets = torch.arange(0, batch * per_caption + 1, per_caption, device=device)
    return ids, offsets


class SuperClassStep(torch.nn.Module):
    def __init__(self, model: str, size: int) -> None:
        super().__init__()
        self.encoder = create_encoder(model, image_size=size)
        self.head = ClassifierHead(self.encoder.width, VOCAB)

    def forward(self, images, ids, rows, weights):
        logits = self.head(self.encoder.forward_pooled(images))
        return softmax_ce_sparse(logits, ids, rows, weights)[0]


class ClipStep(torch.nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        import open_clip

        self.model = open_clip.create_model(name)
        self.loss = open_clip.ClipLoss()

    def forward(self, images, texts):
        img, txt, scale = self.model(images, texts)[:3]
        return self.loss(img, txt, scale)


def time_steps(module, inputs, steps: int, compile_mode: str | None, device, bf16_params: bool = False) -> dict:
    """Warm up (and compile), then time `steps` optimizer steps; FLOPs counted on one eager step.

    compile_mode: None (eager) or a torch.compile mode. bf16_params: the module's weights are bf16 (no autocast) and
    the optimizer updates fp32 master copies (grads copied up, weights copied down each step).
    """
    from torch.utils.flop_counter import FlopCounterMode

    master = MasterWeights([p for p in module.parameters() if p.requires_grad]) if bf16_params else None
    if bf16_params:
        to_bf16(module)
        inputs = tuple(x.to(torch.bfloat16) if x.is_floating_point() and x.ndim == 4 else x for x in inputs)
    opt = torch.optim.AdamW(master.master if master else module.parameters(), lr=1e-4,
                            fused=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=not bf16_params)
    counter = FlopCounterMode(display=False)
    with counter, autocast:
        module(*inputs).backward()
    module.zero_grad(set_to_none=True)
    flops = counter.get_total_flops()
    run = torch.compile(module, mode=None if compile_mode == "default" else compile_mode) if compile_mode else module

    def step():
        with autocast:
            loss = run(*inputs)
        loss.backward()
        if master:  # leanvl's --precision bf16_master: grads up, fp32 AdamW, weights down
            master.grads_up()
            opt.step()
            opt.zero_grad(set_to_none=True)
            master.copy_down()
        else:
            opt.step()
            opt.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    for _ in range(3):
        step()
    sync(device)
    warm = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    dt = (time.perf_counter() - t0) / steps
    batch = inputs[0].shape[0]
    out = {"img_s": batch / dt, "gflop_per_img": flops / batch / 1e9, "warmup_s": warm,
           "compile_mode": compile_mode, "bf16_params": bf16_params}
    peak = device_peak_flops(device)
    if peak:
        out["mfu"] = flops / dt / peak
        out["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(out), flush=True)
    return out


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vit_base_patch16_224", help="timm name of the SuperClass image tower")
    ap.add_argument("--clip-model", default="ViT-B-16", help="open_clip model with the same image tower")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--variants", default="superclass,clip", help="which steps to time: superclass, clip")
    ap.add_argument("--compile-mode", default="default",
                    help="torch.compile mode of the SuperClass step (default, max-autotune-no-cudagraphs, ...)")
    ap.add_argument("--clip-compile-mode", default="default", help="torch.compile mode of the CLIP step")
    ap.add_argument("--bf16-params", action="store_true", help="SuperClass: bf16 weights + fp32 master/optimizer")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run to check the script")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if args.smoke:
        args.model, args.clip_model, args.batch_size, args.size, args.steps = "vit_tiny_patch16_224", "ViT-B-32", 4, 224, 1
        args.no_compile = True
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    images = torch.randn(args.batch_size, 3, args.size, args.size, device=device)
    ids, offsets = sparse_labels(args.batch_size, 12, device)
    weights = torch.ones_like(ids, dtype=torch.float32)
    texts = torch.randint(1, VOCAB - 2, (args.batch_size, 77), device=device)
    variants = args.variants.split(",")
    results = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "batch": args.batch_size, "compile": not args.no_compile}
    if "superclass" in variants:
        sc = SuperClassStep(args.model, args.size).to(device)
        results["superclass"] = time_steps(sc, (images, ids, row_index(offsets), weights), args.steps,
                                           None if args.no_compile else args.compile_mode, device,
                                           bf16_params=args.bf16_params)
        del sc
    if "clip" in variants:
        clip = ClipStep(args.clip_model).to(device)
        results["clip"] = time_steps(clip, (images, texts), args.steps,
                                     None if args.no_compile else args.clip_compile_mode, device)
        del clip
    if "superclass" in results and "clip" in results:
        results["ratio_img_s"] = results["superclass"]["img_s"] / results["clip"]["img_s"]
    print(json.dumps(results, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
