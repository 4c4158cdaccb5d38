#!/usr/bin/env bash
# FSDP2 / LoRA on one GPU (issue 12's GPU items); < 8 min on one H200. Prints a table; JSON per run in $OUT.
#  1. ViT-B/16 SuperClass, 1 process: --fsdp vs. replicated (plain, what DDP runs per rank), img/s + peak memory.
#  2. vlm train with a random-init ~1.1B Llama (TinyLlama shape) under --fsdp and under --lora 64 (+ both).
# Needs leanvl's deps (torch, timm, open_clip, transformers, peft); run from the repository root.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
LEANVL="python3 -m torch.distributed.run --nproc_per_node 1 -m leanvl.cli"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"

VIT="pretrain --model vit_base_patch16_224 --image-size 224 --batch-size 128 --steps 40 --warmup 5 --log-every 10
     --precision bf16_master --num-workers 12 --no-progress --save-every 0 --keep 1"
timeout 150 $LEANVL $VIT --out "$OUT/vit_plain" 2>&1 | grep "memory plan\|step\|error" | tail -3
timeout 150 $LEANVL $VIT --fsdp --out "$OUT/vit_fsdp" 2>&1 | grep "memory plan\|step\|error" | tail -3

LLM=/tmp/llama-1b
python3 - "$LLM" <<'PY'
import os, sys, torch
from transformers import AutoModelForCausalLM, LlamaConfig
from leanvl.vlm.llm import byte_tokenizer
path = sys.argv[1]
if not os.path.isfile(os.path.join(path, "config.json")):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=259, hidden_size=2048, num_hidden_layers=22, num_attention_heads=32,
                      num_key_value_heads=4, intermediate_size=5632, max_position_embeddings=2048,
                      tie_word_embeddings=False, bos_token_id=256, eos_token_id=257, pad_token_id=258)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16)
    model.save_pretrained(path)
    byte_tokenizer().save_pretrained(path)
    print("random-init Llama:", sum(p.numel() for p in model.parameters()) / 1e9, "B params ->", path)
PY
VLM="vlm train --llm $LLM --encoder leanvl_convnet --image-size 64 --compressor avgpool --tokens 16 --data synthetic
     --batch-size 16 --steps 12 --log-every 4 --precision bf16_master --no-progress --keep 1 --grad-checkpointing"
for mode in "fsdp:--fsdp" "lora:--lora 64" "fsdp_lora:--fsdp --lora 64"; do
  name=${mode%%:*}; flags=${mode#*:}
  timeout 100 $LEANVL $VLM $flags --out "$OUT/vlm_$name" 2>&1 | grep "memory plan\|step\|error" | tail -3
done

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
print(f"\n| run | img/s (per rank) | peak CUDA MB (measured) | planned peak MB (excl. activations) | trainable params |")
print("|---|---|---|---|---|")
for name in ("vit_plain", "vit_fsdp", "vlm_fsdp", "vlm_lora", "vlm_fsdp_lora"):
    path = os.path.join(out, name, "result.json")
    if not os.path.isfile(path):
        print(f"| {name} | (no result) | | | |"); continue
    r = json.load(open(path)); plan = r.get("memory_plan", {})
    print(f"| {name} | {r['images_per_s']:.1f} | {r['peak_memory_mb']:.0f} | {plan.get('peak_mb', float('nan')):.0f} "
          f"| {plan.get('trainable_params', 0):,} |")
PY
