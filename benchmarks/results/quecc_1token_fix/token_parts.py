"""Split a trained quecc-res token into its pooled (avgpool) term and its attention term: norm, image-varying share.

    PYTHONPATH=src python benchmarks/results/quecc_1token_fix/token_parts.py RUN_DIR
"""
import os, sys, torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from compressor_signal import signal
from leanvl.data.synthetic import scene_for_index
from leanvl.vlm.batches import image_transform
from leanvl.vlm.io import load_vlm
torch.set_num_threads(1)
model = load_vlm(sys.argv[1]).eval()
t = image_transform(model.cfg.image_size)
n = 300
scenes = [scene_for_index(0, "test", i, size=model.cfg.image_size) for i in range(n)]
x = torch.stack([t(im) for im, _, _ in scenes]); y = torch.tensor([len(a["objects"]) - 1 for _, _, a in scenes])
with torch.no_grad():
    feats, multi = model.vision(x)
    q = model.query_embedding(["How many objects are there?"] * n)
    c = model.compressor
    pooled = c.regions(feats).mean(1)
    total = c(feats, multi, q)[:, 0]
    attn = total - pooled
for name, v in (("pooled term", pooled), ("attention term", attn), ("sum", total)):
    norm, share, acc = signal(v, y, n * 2 // 3)
    print(f"{name:15s} |v| = {norm:7.3f}  image-varying energy = {share:.3f}  count probe = {acc:.3f}")
