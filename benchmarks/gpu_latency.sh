#!/usr/bin/env bash
# Fill a GPU latency table for `leanvl scaling plan --latency` on one GPU (sized for < 5 min on one H200/H100):
# random-init Qwen2-0.5B- and Qwen2-1.5B-shaped LLMs (configs written here, no download), bf16, eager, then the
# batch-1/8 cells again with CUDA graphs. The table resumes: rerun the script after a timeout to finish it.
#   bash benchmarks/gpu_latency.sh                 # writes $OUT/latency_gpu.csv (+ the bench log)
# Knobs: TOKENS, TEXT, BATCHES, DECODE, REPEATS, LIMIT (seconds per bench run), DEVICE/DTYPE (CPU smoke check:
#   DEVICE=cpu DTYPE=float32 TOKENS=1 TEXT=4 BATCHES=1 DECODE=1 REPEATS=1 bash benchmarks/gpu_latency.sh).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
W=${WORK:-/tmp/leanvl-latency}; mkdir -p "$W"
python3 - "$W" <<'PY'
import sys
from transformers import Qwen2Config
shapes = {  # Qwen2-0.5B / Qwen2-1.5B shapes (hidden, layers, heads, kv heads, MLP), tied embeddings, 151936 vocab
    "qwen2-0.5b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                       intermediate_size=4864),
    "qwen2-1.5b": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                       intermediate_size=8960),
}
for name, s in shapes.items():
    Qwen2Config(vocab_size=151936, tie_word_embeddings=True, max_position_embeddings=4096, **s).to_json_file(
        f"{sys.argv[1]}/{name}.json")
PY
LLMS="$W/qwen2-0.5b.json,$W/qwen2-1.5b.json"
TABLE="$OUT/latency_gpu.csv"; GRAPHS="$OUT/latency_gpu_graphs.csv"   # eager and graphed: one table each
for t in latency_gpu.csv latency_gpu_graphs.csv; do   # PREV=dir of an earlier run's $OUT resumes its tables
  [ -f "${PREV:-/nonexistent}/$t" ] && cp "$PREV/$t" "$OUT/$t"
done
DEVICE=${DEVICE:-cuda}
BENCH="python3 -m leanvl.cli vlm bench --llm $LLMS --device $DEVICE --dtype ${DTYPE:-bfloat16}"
t0=$(date +%s)
timeout ${LIMIT:-200} $BENCH --table $TABLE --tokens ${TOKENS:-1,4,16,64,144,576} --text-tokens ${TEXT:-16,64} \
  --batch ${BATCHES:-1,8,32} --decode-tokens ${DECODE:-16} --repeats ${REPEATS:-10} 2>&1 \
  | grep -v -i "deprecat\|forward_call" | tee "$OUT/bench_eager.log" | tail -30
echo "eager: $(( $(date +%s) - t0 )) s"
[ "$DEVICE" = cpu ] || timeout ${LIMIT:-200} $BENCH --table $GRAPHS --tokens ${TOKENS:-1,4,16,64,144,576} \
  --text-tokens 64 --batch 1,8 --cuda-graphs --repeats ${REPEATS:-10} 2>&1 | grep -v -i "deprecat\|forward_call" | tee "$OUT/bench_graphs.log" | tail -12
echo "total: $(( $(date +%s) - t0 )) s; tables: $(ls "$OUT"/latency_gpu*.csv 2>/dev/null | tr '\n' ' ')"
true
