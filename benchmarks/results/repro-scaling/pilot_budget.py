"""Measurement: SuperClass encoder (recipe cpu settings) once, then VLM cells (size, lr, steps) with a held-out
answer-token loss and accuracy at the end (one JSON line per cell).
Usage: OMP_NUM_THREADS=1 PYTHONPATH=src NEVAL=400 python benchmarks/results/repro-scaling/pilot_budget.py OUT \
    size:lr:steps[:V[:batch]] ...    (V default 4, batch default 32; the pilots here used batch 16)"""
import json, os, sys, time
import torch
torch.set_num_threads(1)
from leanvl.repro.cells import train_encoder, encoder_dir
from leanvl.repro.study_recipes import scaling_settings
from leanvl.sweep import train_resumable, heldout_loss
from leanvl.vlm.evaluate import eval_items, evaluate
from leanvl.vlm.io import load_vlm
from leanvl.vlm.train import VLMTrainArgs

out = sys.argv[1]
s = {**scaling_settings("cpu"), "device": "cpu"}
enc = os.path.join(out, "cells", "encoder")
if not os.path.exists(os.path.join(enc, "export")):
    t0 = time.time(); r = train_encoder(enc, s); print("encoder", r, round(time.time() - t0, 1), flush=True)
items = eval_items("synthetic", image_size=64, limit=int(os.environ.get("NEVAL", 300)), seed=0)
for spec in sys.argv[2:]:
    parts = spec.split(":")
    llm, lr, steps = parts[0], float(parts[1]), int(parts[2])
    v = int(parts[3]) if len(parts) > 3 else 4
    bs = int(parts[4]) if len(parts) > 4 else 32
    d = os.path.join(out, "m", spec.replace(":", "_"))
    args = VLMTrainArgs(llm=llm, encoder=encoder_dir(out), image_size=64, compressor="avgpool", tokens=v,
                        data="synthetic", stage=2, freeze="encoder")
    t0 = time.time()
    tr = train_resumable(args, d, steps=steps, batch_size=bs, lr=lr, seed=0, device="cpu")
    model = load_vlm(d).eval()
    t1 = time.time()
    hl = heldout_loss(model, items)
    t2 = time.time()
    summ, _ = evaluate(model, items, batch_size=32)
    t3 = time.time()
    losses = [json.loads(l).get("loss") for l in open(os.path.join(d, "metrics.jsonl"))]
    print(json.dumps({"spec": spec, "train_s": round(tr, 1), "s_per_step": round(tr / steps, 3), "heldout": hl,
                      "acc": summ["splits"], "kinds": {k: round(v["value"], 3) for k, v in
                      summ["metrics"]["exact_match"].get("kinds", {}).items()},
                      "loss_s": round(t2 - t1, 1), "eval_s": round(t3 - t2, 1),
                      "train_losses": [round(x, 3) for x in losses if x is not None]}), flush=True)
