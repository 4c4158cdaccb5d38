#!/bin/bash
cd /work/wt-svc
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 PYTHONPATH=/work/wt-svc/src
( while true; do echo "$(date -u +%T) $(cat /proc/loadavg)"; sleep 60; done ) > /tmp/svc/log/load_long.txt &
LP=$!
date -u > /tmp/svc/log/long_start.txt
/usr/bin/time -f "%e s wall %U user %S sys" nice -n 5 /work/main/.venv/bin/python -m leanvl.cli pretrain --objective superclass --data synthetic --steps 1000000000 --batch-size 64 --model leanvl_convnet --image-size 64 --lr 0.001 --warmup 10 --seed 0 --device cpu --out runs/sc-540 --no-progress --overwrite --log-every 5 --max-seconds 540.0 --max-seconds-clock cpu --eval-every 80 --eval-n 300 > /tmp/svc/log/long_out.txt 2> /tmp/svc/log/long_err.txt
/usr/bin/time -f "%e s wall %U user %S sys" nice -n 5 /work/main/.venv/bin/python -c "
import json, torch
from leanvl.pretrain import load_run
from leanvl.eval.probe import probe_synthetic
from leanvl.eval.fewshot import single_thread
task, _ = load_run('runs/sc-540')
with torch.no_grad(), single_thread():
    p = probe_synthetic(task.encoder, 64, n_train=2000, n_test=1000, seed=0)
print(json.dumps(p))
json.dump(p, open('runs/sc-540/probe.json', 'w'))
" >> /tmp/svc/log/long_out.txt 2>> /tmp/svc/log/long_err.txt
date -u > /tmp/svc/log/long_end.txt
kill $LP
