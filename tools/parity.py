#!/usr/bin/env python3
"""galnn against PyTorch: the same architecture, data, splits, standardisation, optimizer, schedule and
stopping rule, over several seeds, on a mock survey the presets were not tuned on.

    make parity                                     # every family, 3 seeds: bench/parity/RESULTS.md
    python3 tools/parity.py --families mlp --seeds 2 --n 3000 --survey-seed 11

For each family and seed, galnn trains its preset (`galnn train`, then `galnn eval --split test`); the
PyTorch side trains tools/torch_model.py's GalnnNet — the same layers, PyTorch's own default
initialisation — on the very inputs galnn feeds its network (`galnn predict --dump`: standardised
columns, transformed cutouts), with galnn's train/val/test split, target standardisation, Adam, the
cosine schedule with its warm-up (capped at 5 % of the run, as galnn does), batch size, epochs,
dihedral augmentation of the cutouts, per-branch weight decay and feature dropout, the weight average
(train.ema) and test-time augmentation (train.tta) where the preset asks, and early stopping on the
validation loss (patience 20, the best epoch's weights). Both sides are scored on the test split with
the same σ_MAD = 1.4826 median|Δ - median Δ|.
Image families train on whole cutouts in both (train.crop = 0): random crops are galnn's own sampler.

Needs Debian's python3-torch and python3-numpy; run from the project root after `make`.
"""
import argparse
import configparser
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model  # noqa: E402

GALNN = "./bin/galnn"
FAMILIES = {  # name: (preset, overrides, needs images)
    "mlp": ("models/ugriz_mlp.cfg", ["branch.phot.columns=mag_u,mag_g,mag_r,mag_i,mag_z,magerr_u,magerr_g,"
                                     "magerr_r,magerr_i,magerr_z,ebv,zspec,sersic_n,ba,r50"], False),
    "mlp_nozspec": ("models/ugriz_mlp.cfg", ["branch.phot.columns=mag_u,mag_g,mag_r,mag_i,mag_z,ebv"], False),
    "cnn": ("models/ugriz_cnn.cfg", ["train.crop=0"], True),
    "cnn_mlp": ("models/ugriz_cnn_mlp.cfg", ["train.crop=0"], True),
}


def sh(args, log):
    with open(log, "a") as f:
        r = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode:
        raise RuntimeError("%s failed (exit %d); see %s" % (" ".join(args), r.returncode, log))


def metrics(pred, true):
    d = pred - true
    return {"sigma_mad": 1.4826 * float(np.median(np.abs(d - np.median(d)))),
            "rmse": float(np.sqrt(np.mean(d * d))), "bias": float(np.mean(d))}


def galnn_run(fam, seed, survey, work, log):
    cfg, sets, images = FAMILIES[fam]
    out = os.path.join(work, "%s_galnn_%d" % (fam, seed))
    args = [GALNN, "train", "--config", cfg, "--catalog", survey + "/catalog.csv", "--out", out,
            "train.seed=%d" % seed] + sets
    if images:
        args += ["--images", survey + "/cutouts/{id}.fits"]
    t = time.time()
    sh(args, log)
    secs = time.time() - t
    sh([GALNN, "eval", "--ckpt", out + "/best.npz", "--split", "test"], log)
    with open(out + "/metrics.json") as f:
        m = json.load(f)["targets"]["logmstar"]["all"]
    return {"sigma_mad": m["sigma_mad"], "rmse": m["rmse"], "bias": m["bias"], "seconds": secs}, out


def dump_inputs(ckpt_dir, log):
    """Every usable galaxy's network inputs, split and row order, from a trained galnn run."""
    sh([GALNN, "predict", "--no-tta", "--ckpt", ckpt_dir + "/best.npz", "--out", ckpt_dir + "/all.csv",
        "--dump", "100000", ckpt_dir + "/all.npz"], log)
    d = np.load(ckpt_dir + "/all.npz")
    ids, split = [], []
    with open(ckpt_dir + "/all.csv") as f:
        next(f)
        for line in f:
            p = line.split(",")
            ids.append(p[0]), split.append(p[1])
    inputs = {k[len("input."):]: d[k] for k in d.files if k.startswith("input.")}
    return inputs, np.array(ids), np.array(split)


def dihedral(x, k):
    x = torch.rot90(x, k % 4, dims=(2, 3))
    return torch.flip(x, dims=(3,)) if k >= 4 else x


def torch_run(fam, seed, ckpt_dir, inputs, ids, split, truth, log):
    z = np.load(ckpt_dir + "/best.npz")
    cfg = configparser.ConfigParser()
    cfg.read_string(bytes(z["meta.config"]).decode())
    tr = cfg["train"]
    tmean, tstd = float(z["norm.target.mean"][0]), float(z["norm.target.std"][0])
    y = (np.array([truth[i] for i in ids]) - tmean) / tstd
    torch.manual_seed(seed)
    np.random.seed(seed)
    in_ch = {b: v.shape[1] for b, v in inputs.items()}
    model = torch_model.GalnnNet(cfg, in_ch)
    X = {b: torch.from_numpy(v) for b, v in inputs.items()}
    Y = torch.from_numpy(y.astype(np.float32)).reshape(-1, 1)
    idx = {s: np.nonzero(split == s)[0] for s in ("train", "val", "test")}
    B, epochs, lr = int(tr.get("batch", 32)), int(tr.get("epochs", 10)), float(tr.get("lr", 1e-3))
    spe = len(idx["train"]) // B
    total = spe * epochs
    warm = min(int(tr.get("warmup", 0)), max(1, total // 20))
    patience = int(tr.get("patience", 20))
    groups = {}  # [branch.X] weight_decay, else [train]'s (Adam's L2, as galnn's adam)
    wd0 = float(tr.get("weight_decay", 0))
    for name, prm in model.named_parameters():
        sec = "branch." + name.split(".")[0]
        wd = float(cfg[sec].get("weight_decay", wd0)) if cfg.has_section(sec) else wd0
        groups.setdefault(wd, []).append(prm)
    opt = torch.optim.Adam([{"params": v, "weight_decay": k} for k, v in groups.items()], lr=lr)
    ema_d = float(tr.get("ema", 0))
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()} if ema_d > 0 else None
    dih = tr.get("augment", "dihedral") == "dihedral"
    images = [b for b in model.branches if X[b].dim() == 4]
    tta = int(tr.get("tta", 0)) and images

    def lr_at(step):
        if step < warm:
            return lr * (step + 1) / warm
        t, T = step - warm, total - warm
        return 0.0 if T <= 0 or t >= T else 0.5 * lr * (1 + math.cos(math.pi * t / T))

    def predict(rows, views=1):
        model.eval()
        with torch.no_grad():
            out = []
            for i in range(0, len(rows), 256):
                batch = {b: X[b][rows[i:i + 256]] for b in model.branches}
                out.append(sum(model({b: dihedral(v, k) if b in images else v for b, v in batch.items()})
                               for k in range(views)) / views)
        return torch.cat(out)[:, 0]

    def swap_ema():  # the averaged weights in (parameters only; buffers stay live, as galnn's)
        if ema is None:
            return None
        live = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict({k: (ema[k] if k in dict(model.named_parameters()) else live[k]) for k in live})
        return live

    best, best_state, stall, step, t0 = float("inf"), None, 0, 0, time.time()
    for ep in range(epochs):
        model.train()
        perm = np.random.permutation(idx["train"])
        for k in range(spe):
            rows = perm[k * B:(k + 1) * B]
            batch = {b: X[b][rows] for b in model.branches}
            if dih and images:
                ks = np.random.randint(0, 8, len(rows))
                for b in images:
                    views = [dihedral(batch[b][i:i + 1], int(ks[i]))[0] for i in range(len(rows))]
                    batch[b] = torch.stack(views)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            loss = F.mse_loss(model(batch), Y[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if ema is not None:
                d = min(ema_d, (1.0 + step) / (10.0 + step))  # as galnn: t = the steps completed
                with torch.no_grad():
                    for k, v in model.named_parameters():
                        ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
        live = swap_ema()
        vl = float(F.mse_loss(predict(idx["val"]), Y[idx["val"], 0]))
        if vl < best:
            best, stall = vl, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stall += 1
        if live is not None:
            model.load_state_dict(live)
        if patience > 0 and stall >= patience:
            break
    secs = time.time() - t0
    model.load_state_dict(best_state)
    te = idx["test"]
    pred = predict(te, 8 if tta else 1).numpy() * tstd + tmean
    m = metrics(pred, y[te] * tstd + tmean)
    m["seconds"] = secs
    with open(log, "a") as f:
        f.write("torch %s seed %d: %s (stopped after epoch %d)\n" % (fam, seed, m, ep + 1))
    return m


def summary(vals):
    a = np.array(vals)
    return a.mean(), a.min(), a.max()


def write_results(path, res, args, machine):
    lines = ["# galnn against PyTorch: parity of the trained models", "",
             "`make parity` (tools/parity.py): mock survey of %d galaxies, survey seed %d (the presets were "
             "tuned on other seeds), %d training seeds per family; test split, log M*. Machine: %s." % (
                 args.n, args.survey_seed, args.seeds, machine), "",
             "| family | galnn σ_MAD mean [min, max] | PyTorch σ_MAD mean [min, max] | galnn RMSE "
             "| PyTorch RMSE | galnn inside or better | wall time galnn / PyTorch |",
             "|---|---|---|---|---|---|---|"]
    for fam, r in res.items():
        g, t = summary([m["sigma_mad"] for m in r["galnn"]]), summary([m["sigma_mad"] for m in r["torch"]])
        gr, trr = summary([m["rmse"] for m in r["galnn"]]), summary([m["rmse"] for m in r["torch"]])
        ok = "yes" if g[0] <= t[2] else "no"
        secs = sum(m["seconds"] for m in r["galnn"]) / max(sum(m["seconds"] for m in r["torch"]), 1e-9)
        lines.append("| %s | %.4f [%.4f, %.4f] | %.4f [%.4f, %.4f] | %.4f | %.4f | %s | %.2f |" % (
            fam, g[0], g[1], g[2], t[0], t[1], t[2], gr[0], trr[0], ok, secs))
    lines += ["", "\"Inside or better\": galnn's mean σ_MAD is at most PyTorch's largest over the seeds. "
              "Wall time: `galnn train` end to end (catalog, cutouts, training, checkpoints) against "
              "PyTorch's training loop alone on galnn's dumped inputs, same threads.", ""]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--survey-seed", type=int, default=11)
    ap.add_argument("--work", default="build/parity")
    ap.add_argument("--out", default="bench/parity/RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    os.makedirs(args.work, exist_ok=True)
    log = os.path.join(args.work, "parity.log")
    survey = os.path.join(args.work, "survey%d" % args.survey_seed)
    if not os.path.exists(survey + "/catalog.csv"):
        sh([GALNN, "mock", "--out", survey, "--n", str(args.n), "--seed", str(args.survey_seed)], log)
    truth = {}
    with open(survey + "/catalog.csv") as f:
        lines = [ln for ln in f if not ln.startswith("#")]
    head = lines[0].strip().split(",")
    ci, cy = head.index("id"), head.index("logmstar")
    for ln in lines[1:]:
        p = ln.strip().split(",")
        truth[p[ci]] = float(p[cy])
    res, done_path = {}, os.path.join(args.work, "results.json")  # finished (family, seed) pairs are kept
    done = json.load(open(done_path)) if os.path.exists(done_path) else {}
    for fam in args.families.split(","):
        res[fam] = {"galnn": [], "torch": []}
        for seed in range(1, args.seeds + 1):
            key = "%s/%d" % (fam, seed)
            if key not in done:
                m, out = galnn_run(fam, seed, survey, args.work, log)
                inputs, ids, split = dump_inputs(out, log)
                done[key] = {"galnn": m, "torch": torch_run(fam, seed, out, inputs, ids, split, truth, log)}
                with open(done_path, "w") as f:
                    json.dump(done, f)
            res[fam]["galnn"].append(done[key]["galnn"])
            res[fam]["torch"].append(done[key]["torch"])
            print("%s seed %d: galnn σ_MAD %.4f, PyTorch %.4f" % (fam, seed, done[key]["galnn"]["sigma_mad"],
                                                                 done[key]["torch"]["sigma_mad"]), flush=True)
    machine = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                             capture_output=True, text=True).stdout.strip()
    isa = "AVX-512" if "avx512f" in open("/proc/cpuinfo").read() else "AVX2"
    write_results(args.out, res, args, "%s (%s), %d cores" % (machine, isa, os.cpu_count()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
