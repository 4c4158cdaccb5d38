#!/usr/bin/env bash
# Second GPU session: the training step at batch 512 (both sides) and the prefill replayed from CUDA graphs.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 100 python3 benchmarks/gpu_vlm_prefill.py --cuda-graphs --json "$OUT/prefill_graphs.json" 2>&1 | tail -8
timeout 300 python3 benchmarks/gpu_train_step.py --batch-size 512 --json "$OUT/train_step_bs512.json" 2>&1 | grep -v -i warn | tail -40
