# Linear probe of the frozen encoder per grid cell (run at commit d1a2898, OCR_GRID = 4: 16 cells, V=16 pooling).
# PYTHONPATH=src OMP_NUM_THREADS=1 python ocr_probe.py RUN/cells/avgpool-v64  -> dim [9600, 192], test acc 0.684
import sys, torch, time
torch.set_num_threads(1)
from leanvl.vlm.io import load_vlm
from leanvl.vlm.batches import image_transform
from leanvl.data import synthetic
t0 = time.time()
model = load_vlm(sys.argv[1]).eval()
enc = model.encoder
tf = image_transform(64)
def feats(split, n):
    X, Y = [], []
    for i in range(n):
        img, _, a = synthetic.ocr_grid_for_index(0, split, i, size=64)
        X.append(tf(img)); Y.append([synthetic.OCR_ALPHABET.index(ch) for row in a["grid"] for ch in row])
    with torch.no_grad():
        out = []
        for k in range(0, n, 50):
            t = enc.forward_tokens(torch.stack(X[k:k+50]))  # B, 64, d
            b, _, d = t.shape
            fm = t.transpose(1, 2).reshape(b, d, 8, 8)
            out.append(torch.nn.functional.avg_pool2d(fm, 2).flatten(2).transpose(1, 2))  # B,16,d
    F = torch.cat(out).reshape(-1, d)
    return F, torch.tensor(Y).reshape(-1)
Xtr, ytr = feats("train", 600); Xte, yte = feats("test", 200)
mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-5
Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
W = torch.nn.Linear(Xtr.shape[1], 12)
opt = torch.optim.Adam(W.parameters(), 1e-2)
for it in range(300):
    opt.zero_grad(); loss = torch.nn.functional.cross_entropy(W(Xtr), ytr); loss.backward(); opt.step()
print("dim", Xtr.shape, "train acc", (W(Xtr).argmax(1) == ytr).float().mean().item(), "test acc", (W(Xte).argmax(1) == yte).float().mean().item(), "s", time.time() - t0)
