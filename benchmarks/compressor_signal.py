"""How much of a trained VLM's visual token depends on the image (the 1-token QueCC/TokenPacker diagnosis).

    python benchmarks/compressor_signal.py RUN_DIR [--n 600]

For N held-out synthetic scenes it reports, for the compressor output and for the projected token fed to the LLM:
its mean norm, the share of its energy that varies across images (1 = all image-dependent, 0 = a constant vector),
and a linear probe's accuracy for the object count read from it (4 classes; chance ~27%). It also prints the LLM's
mean text-embedding norm, the scale the visual token competes with.
"""
from __future__ import annotations

import argparse

import torch

from leanvl.data.synthetic import scene_for_index
from leanvl.eval.linear import accuracy, fit_with_sweep
from leanvl.vlm.batches import image_transform
from leanvl.vlm.io import load_vlm


def signal(v: torch.Tensor, y: torch.Tensor, fit: int) -> tuple[float, float, float]:
    """(mean norm, image-varying energy share, count-probe accuracy) of token rows `v`."""
    share = float((v - v.mean(0)).pow(2).sum(1).mean() / v.pow(2).sum(1).mean())
    vs = (v - v[:fit].mean(0)) / (v[:fit].std(0) + 1e-6)
    probe = fit_with_sweep(vs[:fit], y[:fit])
    return float(v.norm(dim=-1).mean()), share, accuracy(probe, vs[fit:], y[fit:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="VLM run directory")
    ap.add_argument("--n", type=int, default=600, help="held-out scenes (default 600)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_vlm(args.run).eval()
    t = image_transform(model.cfg.image_size)
    scenes = [scene_for_index(0, "test", i, size=model.cfg.image_size) for i in range(args.n)]
    x = torch.stack([t(im) for im, _, _ in scenes])
    y = torch.tensor([len(at["objects"]) - 1 for _, _, at in scenes])
    with torch.no_grad():
        feats, multi = model.vision(x)
        query = model.query_embedding(["How many objects are there?"] * args.n) \
            if model.compressor.needs_query else None
        z = model.compressor(feats, multi, query)[:, 0]
        p = model.projector(z.unsqueeze(1))[:, 0]
        emb = model.llm.get_input_embeddings().weight
    fit = args.n * 2 // 3
    for name, v in (("compressor output", z), ("projected token", p)):
        norm, share, acc = signal(v, y, fit)
        print(f"{name:18s} |v| = {norm:7.3f}   image-varying energy = {share:.3f}   count probe = {acc:.3f}")
    print(f"LLM text embeddings |e| = {float(emb.norm(dim=-1).mean()):.3f}")


if __name__ == "__main__":
    main()
