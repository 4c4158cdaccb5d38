#!/usr/bin/env bash
# One GPU session: training-step throughput, head + loss memory and VLM prefill, results as JSON in $OUT (or ./gpu-out).
# Carries open_clip (+ ftfy, wcwidth, webdataset, braceexpand) as wheels in .whl/ (see benchmarks/RESULTS.md).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, timm, transformers; print('torch', torch.__version__, 'timm', timm.__version__, 'transformers', transformers.__version__)"
timeout 330 python3 benchmarks/gpu_train_step.py --json "$OUT/train_step.json" 2>&1 | grep -v Warning | tail -60
timeout 120 python3 benchmarks/loss_memory.py --json "$OUT/loss_memory.json" 2>&1 | tail -5
timeout 150 python3 benchmarks/gpu_vlm_prefill.py --json "$OUT/prefill.json" 2>&1 | tail -20
