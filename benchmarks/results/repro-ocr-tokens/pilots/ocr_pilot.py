# Pilot: selected cells of the ocr-tokens recipe at its cpu settings plus JSON overrides, into OUT/cells/.
# PYTHONPATH=src OMP_NUM_THREADS=1 python ocr_pilot.py OUT '{"steps": 300}' encoder,avgpool-v1,avgpool-v64
import sys, time, json, torch
torch.set_num_threads(1)
from leanvl.repro.cli import load_recipes
load_recipes()
from leanvl.repro.ocr_recipe import ocr_settings, ocr_cells
from leanvl.repro.runner import run_cells
out = sys.argv[1]
s = {**ocr_settings("cpu"), "device": "cpu", **json.loads(sys.argv[2])}
cells = [c for c in ocr_cells(s, out) if c.name in sys.argv[3].split(",")]
for row in run_cells(cells, out):
    print(row["cell"], row.get("train_s"), row.get("wall_s"), {k: (round(v["value"],3), v["n"]) for k, v in row.get("splits", {}).items()},
          {k: round(v["value"],3) for k, v in row.get("kinds", {}).items()}, flush=True)
