#!/usr/bin/env bash
# Third GPU session: prefill with compressor + query pass graphed too; the training step's untried ideas, one by one:
# the baseline (both sides, default compile), SuperClass with max-autotune (Triton GEMMs with fused epilogues),
# SuperClass with bf16 weights + fp32 master weights/optimizer state. Each in its own process with its own limit.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TORCHINDUCTOR_COMPILE_THREADS=16
nvidia-smi --query-gpu=name --format=csv,noheader
quiet() { grep -v -i -E "warn|^ *$" ; }
timeout 90 python3 benchmarks/gpu_vlm_prefill.py --cuda-graphs --json "$OUT/prefill_graphs_all.json" 2>&1 | quiet | tail -4
timeout 120 python3 benchmarks/gpu_train_step.py --json "$OUT/train_step_base.json" 2>&1 | quiet | grep img_s
timeout 200 python3 benchmarks/gpu_train_step.py --variants superclass \
  --compile-mode max-autotune-no-cudagraphs --json "$OUT/train_step_autotune.json" 2>&1 | quiet | grep img_s
timeout 75 python3 benchmarks/gpu_train_step.py --variants superclass --bf16-params \
  --json "$OUT/train_step_bf16params.json" 2>&1 | quiet | grep img_s
echo done
