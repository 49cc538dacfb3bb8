#!/usr/bin/env python3
"""galnn against PyTorch: the same architecture, data, splits, standardisation, optimizer, schedule and
stopping rule, over several seeds, on a mock survey the presets were not tuned on.

    make parity                                     # every family, 3 seeds: bench/parity/RESULTS.md
    python3 tools/parity.py --families mlp --seeds 2 --n 3000 --survey-seed 11

For each family and seed, galnn trains its preset (`galnn train`, then `galnn eval --split test`); the
PyTorch side trains the family's twin from tools/torch_model.py — GalnnNet for the branch networks
(PyTorch's own default initialisation), LatentMLP for the S-space MLP, FlowNet for the conditional flow,
VaeNet for the image VAE (these three initialised as their papers prescribe, as galnn does) — on the very
inputs galnn feeds its network (`galnn predict --dump` or `galnn embed --dump`: standardised columns,
transformed cutouts), with galnn's train/val/test split, target standardisation, Adam, the learning-rate
schedule (cosine with its warm-up capped at 5 % of the run, or steps), batch size, epochs or iterations,
dihedral augmentation of the cutouts, random set-2 partners of the contrastive batches, per-branch weight
decay and feature dropout, the weight average (train.ema) and test-time augmentation (train.tta) where the
preset asks, and the best epoch by the validation loss (early stopping after 20 epochs without a better
one, off for runs given in iterations, as galnn). Before training, a fresh twin loaded with galnn's trained
weights must reproduce galnn's dumped outputs: the same network. Both sides are scored on the test split by
the same definitions (σ_MAD = 1.4826 median|Δ - median Δ|; a flow's NLL in the targets' units and its
central-interval coverage from 1000 samples; a VAE's -ELBO per galaxy).
Image families train on whole cutouts in both (train.crop = 0): random crops are galnn's own sampler.
`--report-only` writes the table from the finished runs in WORK/results.json without training.

Needs Debian's python3-torch and python3-numpy; run from the project root after `make`.
"""
import argparse
import configparser
import copy
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
MLP_ALL = ("branch.phot.columns=mag_u,mag_g,mag_r,mag_i,mag_z,magerr_u,magerr_g,magerr_r,magerr_i,magerr_z,"
           "ebv,zspec,sersic_n,ba,r50")
FAMILIES = {  # name: (preset, overrides, needs images, kind of twin)
    "mlp": ("models/ugriz_mlp.cfg", [MLP_ALL], False, "reg"),
    "mlp_nozspec": ("models/ugriz_mlp.cfg", ["branch.phot.columns=mag_u,mag_g,mag_r,mag_i,mag_z,ebv"], False,
                    "reg"),
    "cnn": ("models/ugriz_cnn.cfg", ["train.crop=0"], True, "reg"),
    "cnn_mlp": ("models/ugriz_cnn_mlp.cfg", ["train.crop=0"], True, "reg"),
    # the S-space MLP of the causal analysis, 6,000 steps (the preset's shorter run)
    "sspace": ("models/scl_mopt.cfg", ["train.iterations=6000", "train.drops=2000"], False, "latent"),
    "flow": ("models/flow_phot.cfg", [], False, "flow"),
    "vae": ("models/vae_ugriz.cfg", [], True, "vae"),
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


def flow_summary(m):
    """NLL, the mean 68 % / 95 % coverage over the targets and σ_MAD of log M* from a flow's metrics."""
    t = m["targets"]
    return {"nll": m["nll"], "coverage68": float(np.mean([v["coverage68"] for v in t.values()])),
            "coverage95": float(np.mean([v["coverage95"] for v in t.values()])),
            "sigma_mad": t["logmstar"]["sigma_mad"]}


def galnn_run(fam, seed, survey, work, log):
    cfg, sets, images, kind = FAMILIES[fam]
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
        m = json.load(f)
    if kind == "vae":
        r = {"neg_elbo": m["loss"]}
    elif kind == "flow":  # the twin has no recalibration: its peer is galnn's uncalibrated posterior
        r = flow_summary(m["uncalibrated"])
        r.update({k + "_calibrated": v for k, v in flow_summary(m).items() if k.startswith("coverage")})
    else:
        a = m["targets"]["logmstar"]["all"]
        r = {"sigma_mad": a["sigma_mad"], "rmse": a["rmse"], "bias": a["bias"]}
    r["seconds"] = secs
    return r, out


def dump_inputs(ckpt_dir, kind, log):
    """Every usable galaxy's network inputs, split and row order, from a trained galnn run."""
    cmd = [GALNN, "embed", "--full"] if kind == "vae" else [GALNN, "predict", "--no-tta"]
    sh(cmd + ["--ckpt", ckpt_dir + "/best.npz", "--out", ckpt_dir + "/all.csv", "--dump", "100000",
              ckpt_dir + "/all.npz"], log)
    d = np.load(ckpt_dir + "/all.npz")
    ids, split = [], []
    with open(ckpt_dir + "/all.csv") as f:
        next(f)
        for line in f:
            p = line.split(",")
            ids.append(p[0]), split.append(p[1])
    inputs = {k[len("input."):]: d[k] for k in d.files if k.startswith("input.")}
    return inputs, d["output"], np.array(ids), np.array(split)


def dihedral(x, k):
    x = torch.rot90(x, k % 4, dims=(2, 3))
    return torch.flip(x, dims=(3,)) if k >= 4 else x


def check_twin(model, z, names, forward, ref, what):
    """galnn's trained weights loaded into the twin must reproduce galnn's outputs: the same network."""
    state = {}
    for k in z.files:
        if k.startswith("param."):
            key = names(k[len("param."):])
            if key:
                state[key] = torch.from_numpy(z[k])
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if m != "keep"]
    if missing or unexpected:
        raise ValueError("%s twin: missing %s, unexpected %s" % (what, missing, unexpected))
    model.eval()
    with torch.no_grad():
        out = forward().numpy()
    err = np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-6)
    if err > 1e-3:
        raise ValueError("%s twin differs from galnn on its own weights: %.2e" % (what, err))
    return err


def flow_names(k):
    p = k.split(".")  # post.ctx.fcK, post.mean.fcK, post.flow.cL.fcK
    if p[1] == "ctx":
        return "ctx.%d.%s" % (int(p[2][2:]) - 1, p[3])
    if p[1] == "mean":
        return "mean.%d.%s" % (2 * (int(p[2][2:]) - 1), p[3])
    return "coup.%d.%d.%s" % (int(p[2][1:]) - 1, 2 * (int(p[3][2:]) - 1), p[4])


def vae_names(k):
    p = k.split(".")  # vae.encK, vae.mu, vae.logvar, vae.dec_fc, vae.decJ
    if p[1].startswith("enc"):
        return "down.%d.%s" % (int(p[1][3:]) - 1, p[2])
    if p[1].startswith("dec") and p[1] != "dec_fc":
        return "up.%d.%s" % (int(p[1][3:]) - 1, p[2])
    return ".".join(p[1:])


def latent_names(k):
    p = k.split(".")  # enc.fcK, dec.fcK, est.fcK
    i = int(p[1][2:]) - 1
    return "%s.%d.%s" % (p[0], 2 * i if p[0] == "est" else i, p[2])


class Twin:
    """The PyTorch side of one family: its model, a training batch's loss, the validation loss, the test
    metrics — on galnn's dumped inputs, split and target standardisation."""

    def __init__(self, kind, cfg, z, inputs, out, ids, truth):
        self.kind, self.cfg = kind, cfg
        self.X = {b: torch.from_numpy(v) for b, v in inputs.items()}
        names = [t.strip() for t in cfg["target"].get("names", "logmstar").split(",")] \
            if cfg.has_section("target") else []
        if kind in ("reg", "flow"):
            self.tmean = z["norm.target.mean"].astype(np.float64)
            self.tstd = z["norm.target.std"].astype(np.float64)
        raw = np.array([[truth[n][i] for n in names] for i in ids]) if names else np.zeros((len(ids), 0))
        self.raw = raw
        if kind == "reg":
            self.model = torch_model.GalnnNet(cfg, {b: v.shape[1] for b, v in inputs.items()})
            self.Y = torch.from_numpy(((raw[:, :1] - self.tmean[0]) / self.tstd[0]).astype(np.float32))
        elif kind == "flow":
            self.Y = torch.from_numpy(((raw - self.tmean) / self.tstd).astype(np.float32))
            self.xin = torch.cat([self.X[b] for b in self.branches(cfg)], 1)
            self.model = torch_model.FlowNet(cfg, self.xin.shape[1], raw.shape[1])
        elif kind == "vae":
            img = self.X["img"]
            self.model = torch_model.VaeNet(cfg, img.shape[1], img.shape[2])
        else:
            m = cfg["model"]
            self.xb, self.ab = m.get("main", "x"), m.get("extra", None)
            self.model = torch_model.LatentMLP(cfg, self.X[self.xb].shape[1],
                                               self.X[self.ab].shape[1] if self.ab else 0)
            self.Y = torch.from_numpy(raw[:, 0])
        self.check(z, out)

    @staticmethod
    def branches(cfg):
        return [s[len("branch."):] for s in cfg.sections() if s.startswith("branch.")]

    def check(self, z, ref):
        """Load galnn's weights into a fresh twin and compare outputs on the dumped inputs (then discard)."""
        if self.kind == "reg":
            return
        fresh = copy.deepcopy(self.model)
        n = min(256, ref.shape[0])
        if self.kind == "flow":
            err = check_twin(fresh, z, flow_names, lambda: fresh.mean(fresh.context(self.xin[:n])), ref[:n],
                             "flow")
        elif self.kind == "vae":
            L = fresh.latent
            err = check_twin(fresh, z, vae_names, lambda: fresh.encode(self.X["img"][:n])[0], ref[:n, :L],
                             "vae")
        else:
            a = self.X[self.ab][:n] if self.ab else None
            err = check_twin(fresh, z, latent_names,
                             lambda: fresh.logits(fresh.encode(self.X[self.xb][:n], a)), ref[:n], "S-space")
        self.twin_err = float(err)

    def rows_per_step(self, B):
        return B // 2 if self.kind == "latent" and self.model.obj != "ce" else B

    def batch(self, rows, train_rows=None, aug=False):
        if self.kind == "latent":
            if train_rows is not None and self.model.obj != "ce":  # set 2: random partners, as galnn draws
                part = np.random.choice(train_rows, len(rows))
                same = part == rows
                while same.any():
                    part[same] = np.random.choice(train_rows, int(same.sum()))
                    same = part == rows
                rows = np.concatenate([rows, part])
            a = self.X[self.ab][rows] if self.ab else None
            return self.model.loss(self.X[self.xb][rows], a, self.Y[rows])
        if self.kind == "flow":
            return self.model.loss(self.xin[rows], self.Y[rows])
        if self.kind == "vae":
            x = self.X["img"][rows]
            if aug:
                ks = np.random.randint(0, 8, len(rows))
                x = torch.stack([dihedral(x[i:i + 1], int(ks[i]))[0] for i in range(len(rows))])
            return self.model.loss(x)
        batch = {b: self.X[b][rows] for b in self.model.branches}
        if aug:
            ks = np.random.randint(0, 8, len(rows))
            for b in [b for b in self.model.branches if self.X[b].dim() == 4]:
                batch[b] = torch.stack([dihedral(batch[b][i:i + 1], int(ks[i]))[0] for i in range(len(rows))])
        return F.mse_loss(self.model(batch), self.Y[rows])

    def predict(self, rows, views=1):
        out = []
        for i in range(0, len(rows), 256):
            r = rows[i:i + 256]
            if self.kind == "latent":
                a = self.X[self.ab][r] if self.ab else None
                out.append(self.model.predict(self.model.logits(self.model.encode(self.X[self.xb][r], a))))
                continue
            batch = {b: self.X[b][r] for b in self.model.branches}
            imgs = [b for b in self.model.branches if self.X[b].dim() == 4]
            out.append(sum(self.model({b: dihedral(v, k) if b in imgs else v for b, v in batch.items()})
                           for k in range(views))[:, 0] / views)
        return torch.cat(out)

    def val_loss(self, rows):
        """The validation loss galnn stops on (a VAE's ε from a fixed stream, as galnn's)."""
        with torch.no_grad():
            if self.kind == "reg":
                return float(F.mse_loss(self.predict(rows), self.Y[rows, 0]))
            if self.kind == "latent":
                a = self.X[self.ab][rows] if self.ab else None
                lg = self.model.logits(self.model.encode(self.X[self.xb][rows], a))
                return float(F.cross_entropy(lg, self.model.labels(self.Y[rows])))
            if self.kind == "flow":
                return float(self.model.loss(self.xin[rows], self.Y[rows]))
            g = torch.Generator().manual_seed(12345)
            st = torch.get_rng_state()
            torch.manual_seed(int(torch.randint(0, 2 ** 31, (1,), generator=g)))
            v = float(self.model.loss(self.X["img"][rows]))
            torch.set_rng_state(st)
            return v

    def test_metrics(self, rows, tta):
        with torch.no_grad():
            if self.kind in ("reg", "latent"):
                p = self.predict(rows, 8 if tta else 1).double().numpy()
                if self.kind == "reg":
                    p = p * self.tstd[0] + self.tmean[0]
                return metrics(p, self.raw[rows, 0])
            if self.kind == "vae":
                return {"neg_elbo": self.val_loss(rows)}
            lp, _ = self.model.log_prob(self.xin[rows], self.Y[rows])
            nll = -float(lp.mean()) + float(np.log(self.tstd).sum())
            smp = self.model.sample(self.xin[rows], 1000).double().numpy() * self.tstd + self.tmean
            y = self.raw[rows]
            lo68, hi68 = np.quantile(smp, 0.16, axis=1), np.quantile(smp, 0.84, axis=1)
            lo95, hi95 = np.quantile(smp, 0.025, axis=1), np.quantile(smp, 0.975, axis=1)
            c68 = ((y >= lo68) & (y <= hi68)).mean(0)
            c95 = ((y >= lo95) & (y <= hi95)).mean(0)
            return {"nll": nll, "coverage68": float(c68.mean()), "coverage95": float(c95.mean()),
                    "sigma_mad": metrics(smp.mean(1)[:, 0], y[:, 0])["sigma_mad"]}


def torch_run(fam, seed, ckpt_dir, inputs, out, ids, split, truth, log):
    z = np.load(ckpt_dir + "/best.npz")
    cfg = configparser.ConfigParser()
    cfg.read_string(bytes(z["meta.config"]).decode())
    tr = cfg["train"]
    torch.manual_seed(seed)
    np.random.seed(seed)
    tw = Twin(FAMILIES[fam][3], cfg, z, inputs, out, ids, truth)
    model = tw.model
    idx = {s: np.nonzero(split == s)[0] for s in ("train", "val", "test")}
    B, epochs, lr = int(tr.get("batch", 32)), int(tr.get("epochs", 10)), float(tr.get("lr", 1e-3))
    spe = len(idx["train"]) // tw.rows_per_step(B)
    iters = int(tr.get("iterations", 0))
    if iters > 0:
        epochs = (iters + spe - 1) // spe
    total = spe * epochs
    sched = tr.get("schedule", "constant")
    warm = min(int(tr.get("warmup", 0)), max(1, total // 20))
    patience = int(tr.get("patience", 0 if iters > 0 else 20))
    drops = [int(d) for d in tr.get("drops", "").split(",") if d.strip()]
    factor = float(tr.get("drop_factor", 0.1))
    groups = {}  # [branch.X] weight_decay, else [train]'s (Adam's L2, as galnn's adam)
    wd0 = float(tr.get("weight_decay", 0))
    for name, prm in model.named_parameters():
        sec = "branch." + name.split(".")[0]
        wd = float(cfg[sec].get("weight_decay", wd0)) if cfg.has_section(sec) else wd0
        groups.setdefault(wd, []).append(prm)
    opt = torch.optim.Adam([{"params": v, "weight_decay": k} for k, v in groups.items()], lr=lr)
    ema_d = float(tr.get("ema", 0))
    ema = {k: v.detach().clone() for k, v in model.named_parameters()} if ema_d > 0 else None
    aug = tr.get("augment", "dihedral") == "dihedral" and any(v.dim() == 4 for v in tw.X.values())
    tta = int(tr.get("tta", 0)) and aug

    def lr_at(step):
        if sched == "step":
            return lr * factor ** sum(step >= d for d in drops)
        if step < warm:
            return lr * (step + 1) / warm
        if sched != "cosine":
            return lr
        t, T = step - warm, total - warm
        return 0.0 if T <= 0 or t >= T else 0.5 * lr * (1 + math.cos(math.pi * t / T))

    def swap_ema():  # the averaged weights in (parameters only; buffers stay live, as galnn's)
        if ema is None:
            return None
        live = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict({**live, **ema})
        return live

    best, best_state, stall, step, t0 = float("inf"), None, 0, 0, time.time()
    for ep in range(epochs):
        model.train()
        perm = np.random.permutation(idx["train"])
        R = tw.rows_per_step(B)
        for k in range(spe):
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            loss = tw.batch(perm[k * R:(k + 1) * R], idx["train"], aug)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if ema is not None:
                d = min(ema_d, (1.0 + step) / (10.0 + step))  # as galnn: t = the steps completed
                with torch.no_grad():
                    for k2, v in model.named_parameters():
                        ema[k2].mul_(d).add_(v.detach(), alpha=1 - d)
        live = swap_ema()
        model.eval()
        vl = tw.val_loss(idx["val"])
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
    model.eval()
    m = tw.test_metrics(idx["test"], tta)
    m["seconds"] = secs
    with open(log, "a") as f:
        f.write("torch %s seed %d: %s (stopped after epoch %d; twin check %s)\n" % (
            fam, seed, m, ep + 1, getattr(tw, "twin_err", "n/a")))
    return m


def summary(vals):
    a = np.array(vals)
    return a.mean(), a.min(), a.max()


# metric: (label, how "inside or better" is judged: "low" = lower is better, a number = the nominal value)
METRICS = {"sigma_mad": ("σ_MAD of log M*", "low"), "rmse": ("RMSE of log M*", "low"),
           "nll": ("test NLL (nats per galaxy)", "low"), "coverage68": ("68 % interval coverage", 0.68),
           "coverage95": ("95 % interval coverage", 0.95), "neg_elbo": ("−ELBO per galaxy (nats)", "low")}
FAMILY_METRICS = {"reg": ["sigma_mad", "rmse"], "latent": ["sigma_mad", "rmse"], "vae": ["neg_elbo"],
                  "flow": ["nll", "coverage68", "coverage95", "sigma_mad"]}


def inside(g, t, how):
    """galnn's mean inside PyTorch's spread or better: at most PyTorch's worst seed (lower is better), or
    at most as far from the nominal coverage as PyTorch's farthest seed."""
    if how == "low":
        return g[0] <= t[2]
    return abs(g[0] - how) <= max(abs(t[1] - how), abs(t[2] - how))


def write_results(path, res, args, machine):
    lines = ["# galnn against PyTorch: parity of the trained models", "",
             "`make parity` (tools/parity.py): mock survey of %d galaxies, survey seed %d (the presets were "
             "tuned on other seeds), training seeds 1, 2, ... per family; test split. Machine: %s." % (
                 args.n, args.survey_seed, machine), "",
             "| family | seeds | metric | galnn mean [min, max] | PyTorch mean [min, max] | galnn inside or "
             "better | wall time galnn / PyTorch |", "|---|---|---|---|---|---|---|"]
    for fam, r in res.items():
        secs = sum(m["seconds"] for m in r["galnn"]) / max(sum(m["seconds"] for m in r["torch"]), 1e-9)
        for key in FAMILY_METRICS[FAMILIES[fam][3]]:
            label, how = METRICS[key]
            g, t = summary([m[key] for m in r["galnn"]]), summary([m[key] for m in r["torch"]])
            lines.append("| %s | %d | %s | %.4f [%.4f, %.4f] | %.4f [%.4f, %.4f] | %s | %.2f |" % (
                fam, len(r["galnn"]), label, g[0], g[1], g[2], t[0], t[1], t[2],
                "yes" if inside(g, t, how) else "no", secs))
        if FAMILIES[fam][3] == "flow":
            for key in ("coverage68", "coverage95"):
                g = summary([m[key + "_calibrated"] for m in r["galnn"]])
                lines.append("| %s | %d | %s, galnn recalibrated | %.4f [%.4f, %.4f] | — | — | |" % (
                    fam, len(r["galnn"]), METRICS[key][0], g[0], g[1], g[2]))
    lines += ["", "\"Inside or better\": galnn's mean is at most PyTorch's worst seed (a coverage: at most "
              "as far from the nominal value). Flows: galnn's uncalibrated posterior against the twin (which "
              "has no recalibration); coverage is the mean over the targets. Before training, each twin is "
              "loaded with galnn's trained weights and must reproduce galnn's outputs (1e-3): the same "
              "network. Wall time: `galnn train` end to end (catalog, cutouts, training, checkpoints) "
              "against PyTorch's training loop alone on galnn's dumped inputs, same threads.", ""]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


def read_truth(path):
    """Every numeric catalog column by id (NaN for nulls and text)."""
    with open(path) as f:
        lines = [ln for ln in f if not ln.startswith("#")]
    head = lines[0].strip().split(",")
    ci, truth = head.index("id"), {h: {} for h in head}
    for ln in lines[1:]:
        p = ln.strip().split(",")
        for h, v in zip(head, p):
            try:
                x = float(v)
                truth[h][p[ci]] = np.nan if x == -9999 else x
            except ValueError:
                truth[h][p[ci]] = np.nan
    return truth


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--survey-seed", type=int, default=11)
    ap.add_argument("--work", default="build/parity")
    ap.add_argument("--out", default="bench/parity/RESULTS.md")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: the table from the finished runs in WORK/results.json")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    os.makedirs(args.work, exist_ok=True)
    log = os.path.join(args.work, "parity.log")
    survey = os.path.join(args.work, "survey%d" % args.survey_seed)
    if not os.path.exists(survey + "/catalog.csv"):
        sh([GALNN, "mock", "--out", survey, "--n", str(args.n), "--seed", str(args.survey_seed)], log)
    truth = read_truth(survey + "/catalog.csv")
    res, done_path = {}, os.path.join(args.work, "results.json")  # finished (family, seed) pairs are kept
    done = json.load(open(done_path)) if os.path.exists(done_path) else {}
    for fam in args.families.split(","):
        res[fam] = {"galnn": [], "torch": []}
        if args.report_only and not any(k.startswith(fam + "/") for k in done):
            del res[fam]
            continue
        for seed in range(1, args.seeds + 1):
            key = "%s/%d" % (fam, seed)
            if key not in done and args.report_only:
                continue
            if key not in done:
                m, out = galnn_run(fam, seed, survey, args.work, log)
                inputs, o, ids, split = dump_inputs(out, FAMILIES[fam][3], log)
                t = torch_run(fam, seed, out, inputs, o, ids, split, truth, log)
                done[key] = {"galnn": m, "torch": t}
                with open(done_path, "w") as f:
                    json.dump(done, f)
            res[fam]["galnn"].append(done[key]["galnn"])
            res[fam]["torch"].append(done[key]["torch"])
            key0 = FAMILY_METRICS[FAMILIES[fam][3]][0]
            print("%s seed %d: galnn %s %.4f, PyTorch %.4f" % (fam, seed, key0, done[key]["galnn"][key0],
                                                              done[key]["torch"][key0]), flush=True)
    machine = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                             capture_output=True, text=True).stdout.strip()
    isa = "AVX-512" if "avx512f" in open("/proc/cpuinfo").read() else "AVX2"
    write_results(args.out, res, args, "%s (%s), %d cores" % (machine, isa, os.cpu_count()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
