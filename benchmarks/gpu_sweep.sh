#!/usr/bin/env bash
# The inference-optimal study on one GPU: SuperClass-pretrain a small encoder, export it, then `leanvl sweep`
# (4 LLM sizes x 4 token counts) with it frozen. Results (csv, summary, plots) are copied to $OUT.
# Knobs: PRE_STEPS, STEPS, BATCH, EVAL (defaults sized for one H100 within ~6 minutes).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
W=${WORK:-/tmp/leanvl-sweep}; rm -rf "$W"; mkdir -p "$W"
LEANVL="python3 -m leanvl.cli"
t0=$(date +%s)
$LEANVL pretrain --objective superclass --data synthetic --model leanvl_convnet --steps ${PRE_STEPS:-300} --num-workers ${WORKERS:-4} \
  --batch-size 256 --lr 2e-3 --warmup 20 --weight-decay 0.05 --out "$W/enc-run" --no-progress --log-every 50 \
  | tail -1 | tee "$OUT/pretrain.json"
$LEANVL export --ckpt "$W/enc-run" --out "$W/encoder"
echo "pretrain+export: $(( $(date +%s) - t0 )) s"
timeout ${SWEEP_TIMEOUT:-300} $LEANVL sweep --llm-sizes tiny,small,base,large --tokens 1,4,16,64 \
  --encoder "$W/encoder" --steps ${STEPS:-300} --batch-size ${BATCH:-64} --eval-limit ${EVAL:-300} --num-workers ${WORKERS:-4} --out "$W/sweep" \
  2>&1 | grep -v "sweep cells" | tail -40
echo "total: $(( $(date +%s) - t0 )) s"
cp "$W/sweep/results.csv" "$W/sweep/summary.md" "$W/sweep/summary.json" "$OUT/" 2>/dev/null
cp "$W/sweep/plots/scaling_reasoning_frontier.png" "$W/sweep/plots/scaling_ocr_frontier.png" "$OUT/" 2>/dev/null
true
