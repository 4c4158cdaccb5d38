#!/usr/bin/env bash
# End to end on real JPEG shards, in ONE device call (~8 minutes on one H100/H200; issue #17 item 4):
#   1. writes ~20k JPEGs at ~512 px (longer side 512, aspect 3:4..16:9, quality 95, img2dataset's layout:
#      <key>.jpg + <key>.txt + <key>.json, 1000 per shard) on the GPU machine's local disk, 16 processes;
#   2. `leanvl pretrain` SuperClass ViT-B/16, batch 256, bf16_master, compile, CPU decode ($WORKERS workers);
#   3. the same with `--decode gpu` (workers ship JPEG bytes, nvJPEG decodes on the training GPU);
#   3b. host syncs: a short `--decode gpu` pretrain under torch.cuda.set_sync_debug_mode("warn")
#       (benchmarks/gpu_sync_check.py; goal: 0 syncs inside steps, only at log/checkpoint steps);
#   4. the isolated step: benchmarks/gpu_train_step.py --variants superclass --bf16-params (data already on GPU);
#   5. open_clip's own entry point, `python -m open_clip_train.main`, CLIP ViT-B-16, same shards, batch, workers,
#      bf16 (amp_bf16), --torchcompile;
# then prints img/s of each and the ratios (goals: end to end >= 90% of the isolated step, >= 1.4x open_clip).
# NOT RUN YET: written in sessions without a GPU; its first run is the check. Each stage has its own timeout, so a
# stage that hangs or fails still leaves the others' figures. Knobs: N (samples), STEPS, WORKERS, BATCH, OUT.
#   OUT=gpu-out bash benchmarks/gpu_end_to_end.sh          # with .whl/ holding the wheels, as gpu_run*.sh
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src:${PYTHONPATH:-}
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TORCHINDUCTOR_COMPILE_THREADS=16
N=${N:-20000}; STEPS=${STEPS:-150}; WORKERS=${WORKERS:-14}; BATCH=${BATCH:-256}
W=${WORK:-/tmp/leanvl-e2e}; rm -rf "$W"; mkdir -p "$W/shards"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/card.txt"
date -u +%Y-%m-%dT%H:%MZ | tee "$OUT/date.txt"
t0=$(date +%s)

# 1. shards ---------------------------------------------------------------------------------------------------------
timeout 120 python3 - "$W/shards" "$N" <<'EOF'
import io, json, multiprocessing as mp, os, sys
import numpy as np
from PIL import Image, ImageDraw
import webdataset as wds

out, n = sys.argv[1], int(sys.argv[2])
WORDS = "a photo of the red blue green small large dog cat car tree house person on in with near old new".split()

_BASES: list = []

def image(i: int) -> Image.Image:
    """A textured scene (noise + gradients + ellipses, so JPEG entropy is photo-like), longer side 512."""
    if not _BASES:  # per worker: 8 texture sheets, cropped and recoloured per image (cheap)
        for b in range(8):
            rs = np.random.RandomState(b)
            yy, xx = np.mgrid[0:700, 0:700]
            base = np.stack([xx * rs.uniform(0.2, 1), yy * rs.uniform(0.2, 1), (xx + yy) * rs.uniform(0.1, 0.5)], -1)
            _BASES.append((base % 256 + rs.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8))
    rs = np.random.RandomState(i)
    aspect = rs.uniform(0.75, 16 / 9)
    w, h = (512, int(512 / aspect)) if aspect >= 1 else (int(512 * aspect), 512)
    y0, x0 = rs.randint(0, 700 - h + 1), rs.randint(0, 700 - w + 1)
    arr = _BASES[i % 8][y0:y0 + h, x0:x0 + w][:, :, list(rs.permutation(3))]
    img = Image.fromarray(np.ascontiguousarray(arr))
    draw = ImageDraw.Draw(img)
    for _ in range(rs.randint(2, 6)):
        x, y, s = rs.randint(0, w), rs.randint(0, h), rs.randint(20, 200)
        draw.ellipse((x, y, x + s, y + s), fill=tuple(int(c) for c in rs.randint(0, 256, 3)))
    return img

def shard(k: int) -> None:
    with wds.TarWriter(os.path.join(out, f"{k:05d}.tar"), encoder=False) as tw:
        for i in range(k * 1000, min(n, (k + 1) * 1000)):
            buf = io.BytesIO()
            image(i).save(buf, "JPEG", quality=95)
            rs = np.random.RandomState(10**6 + i)
            caption = " ".join(rs.choice(WORDS, rs.randint(5, 15)))
            tw.write({"__key__": f"{i:09d}", "jpg": buf.getvalue(), "txt": caption.encode(),
                      "json": json.dumps({"key": f"{i:09d}", "caption": caption}).encode()})

with mp.Pool(16) as pool:
    pool.map(shard, range((n + 999) // 1000))
print(f"shards: {n} JPEGs in {(n + 999) // 1000} shards")
EOF
NSH=$(( (N + 999) / 1000 - 1 )); SHARDS="$W/shards/{00000..$(printf %05d $NSH)}.tar"
du -sh "$W/shards"; echo "shards written: $(( $(date +%s) - t0 )) s"

# 2./3. leanvl pretrain ---------------------------------------------------------------------------------------------
pretrain() {  # $1 = name, rest = extra flags
  local name=$1; shift
  timeout ${PRETRAIN_TIMEOUT:-150} python3 -m leanvl.cli pretrain --objective superclass --data "$SHARDS" \
    --model vit_base_patch16_224 --image-size 224 --batch-size "$BATCH" --precision bf16_master --compile \
    --num-workers "$WORKERS" --steps "$STEPS" --warmup 10 --log-every 25 --no-progress --out "$W/run-$name" "$@" \
    2>&1 | grep -v -i warn | tail -3 | tee "$OUT/pretrain_$name.txt"
  cp "$W/run-$name/metrics.jsonl" "$OUT/metrics_$name.jsonl" 2>/dev/null
}
pretrain cpu
if python3 -m leanvl.cli pretrain --help 2>/dev/null | grep -q -- "--decode"; then
  pretrain gpu --decode gpu
else
  echo "pretrain --decode gpu: skipped (the trainer has no --decode flag yet)" | tee "$OUT/pretrain_gpu.txt"
fi
echo "pretrain done: $(( $(date +%s) - t0 )) s"
timeout ${SYNC_TIMEOUT:-120} python3 benchmarks/gpu_sync_check.py --json "$OUT/sync_check.json" -- --objective superclass \
  --data "$SHARDS" --model vit_base_patch16_224 --image-size 224 --batch-size "$BATCH" --precision bf16_master \
  --num-workers "$WORKERS" --steps 30 --warmup 10 --log-every 10 --no-progress --decode gpu --out "$W/run-sync" \
  2>&1 | grep -v -i "warn" | tail -25
echo "sync check done: $(( $(date +%s) - t0 )) s"

# 4. the isolated step ----------------------------------------------------------------------------------------------
timeout ${STEP_TIMEOUT:-90} python3 benchmarks/gpu_train_step.py --variants superclass --bf16-params \
  --batch-size "$BATCH" --json "$OUT/isolated_step.json" 2>&1 | grep -v -i warn | grep img_s
echo "isolated step done: $(( $(date +%s) - t0 )) s"

# 5. open_clip's trainer --------------------------------------------------------------------------------------------
timeout ${OPENCLIP_TIMEOUT:-170} python3 -m open_clip_train.main --model ViT-B-16 --train-data "$SHARDS" \
  --dataset-type webdataset --train-num-samples "$N" --batch-size "$BATCH" --precision amp_bf16 --torchcompile \
  --workers "$WORKERS" --epochs 1 --lr 5e-4 --warmup 10 --wd 0.1 --log-every-n-steps 10 --save-frequency 0 \
  --logs "$W/openclip" --name e2e --report-to "" --seed 0 2>&1 | grep -E "Train Epoch|Error|error" \
  | tee "$OUT/openclip.txt" | tail -3
echo "open_clip done: $(( $(date +%s) - t0 )) s"

# table -------------------------------------------------------------------------------------------------------------
python3 - "$OUT" "$BATCH" <<'EOF'
import json, os, re, statistics, sys
out, batch = sys.argv[1], int(sys.argv[2])

def leanvl(name):
    """Median samples_per_s of the logged steps after the first log line (compile), and the MFU there."""
    path = os.path.join(out, f"metrics_{name}.jsonl")
    if not os.path.isfile(path):
        return None, None
    rows = [json.loads(line) for line in open(path)][1:]
    rates = [r["samples_per_s"] for r in rows if "samples_per_s" in r]
    mfus = [r["mfu"] for r in rows if "mfu" in r]
    return (statistics.median(rates) if rates else None), (statistics.median(mfus) if mfus else None)

def isolated():
    try:
        rows = json.load(open(os.path.join(out, "isolated_step.json")))
    except (OSError, ValueError):
        return None, None
    row = rows[0] if isinstance(rows, list) else rows.get("superclass", rows)
    return row.get("img_s"), row.get("mfu")

def openclip():
    try:
        text = open(os.path.join(out, "openclip.txt")).read()
    except OSError:
        return None
    rates = [float(m) for m in re.findall(r"Batch \(t\): [0-9.]+, ([0-9.]+)/s,", text)][2:]  # drop compile
    return statistics.median(rates) if rates else None

rows = {"leanvl pretrain, CPU decode": leanvl("cpu"), "leanvl pretrain, GPU decode": leanvl("gpu"),
        "isolated step (gpu_train_step.py)": isolated(), "open_clip_train.main CLIP": (openclip(), None)}
fmt = lambda v, f: "n/a" if v is None else f.format(v)
print("| run | img/s | MFU |\n|---|---|---|")
for name, (rate, mfu) in rows.items():
    print(f"| {name} | {fmt(rate, '{:.0f}')} | {fmt(mfu and 100 * mfu, '{:.1f}%')} |")
cpu, gpu, iso, oc = (rows[k][0] for k in rows)
for label, a, b in (("CPU-decode e2e / isolated", cpu, iso), ("GPU-decode e2e / isolated", gpu, iso),
                    ("CPU-decode e2e / open_clip", cpu, oc), ("GPU-decode e2e / open_clip", gpu, oc)):
    print(f"{label}: {fmt(a and b and a / b, '{:.2f}')}")
try:
    syncs = json.load(open(os.path.join(out, "sync_check.json")))["syncs"]
    print(f"CUDA syncs (--decode gpu, 30 steps): {syncs.get('inside a step', 0)} inside steps (goal 0), "
          f"{syncs.get('log/checkpoint step', 0)} at log/checkpoint steps")
except (OSError, ValueError, KeyError):
    print("CUDA syncs: n/a (sync check did not finish)")
json.dump({k: {"img_s": r, "mfu": m} for k, (r, m) in rows.items()}, open(os.path.join(out, "e2e.json"), "w"),
          indent=2)
EOF
echo "total: $(( $(date +%s) - t0 )) s"
