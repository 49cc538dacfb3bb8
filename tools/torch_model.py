#!/usr/bin/env python3
"""Load a galnn checkpoint into an equivalent PyTorch module.

    python3 tools/torch_model.py RUN/best.npz [DUMP.npz]

The module is rebuilt from the checkpoint's own configuration (meta.config) with the same layer
names, so `param.*` / `buffer.*` arrays load by name. With DUMP.npz (written by
`galnn predict --dump N DUMP.npz`), the module is run on the same inputs in evaluation mode and the
largest relative difference from galnn's outputs is printed; the exit status is 1 above 1e-4.

    import torch_model
    model, cfg = torch_model.load("runs/cnn/best.npz")   # a torch.nn.Module, in eval mode

Needs Debian's python3-torch and python3-numpy.
"""
import configparser
import math
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


ACTS = {"relu": F.relu, "silu": F.silu, "gelu": F.gelu, "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
        "tanh": torch.tanh}


def groups_of(ch):
    g = 32
    while ch % g:
        g -= 1
    return g


def conv_bn(parent, name, cin, cout, k, stride, norm="batch"):
    """A convolution and its normalisation, named `<name>` and `<name>_bn` as in galnn (norm = batch | group
    | none; without a norm the convolution has a bias)."""
    setattr(parent, name, nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=norm == "none"))
    nm = nn.BatchNorm2d(cout, momentum=0.1, eps=1e-5) if norm == "batch" else \
        nn.GroupNorm(groups_of(cout), cout, eps=1e-5) if norm == "group" else nn.Identity()
    setattr(parent, name + "_bn", nm)


def run_conv_bn(parent, name, x):
    return getattr(parent, name + "_bn")(getattr(parent, name)(x))


class Block(nn.Module):
    def __init__(self, cin, cout, stride, norm):
        super().__init__()
        conv_bn(self, "conv1", cin, cout, 3, stride, norm)
        conv_bn(self, "conv2", cout, cout, 3, 1, norm)
        self.proj = stride != 1 or cin != cout
        if self.proj:
            conv_bn(self, "downsample", cin, cout, 1, stride, norm)

    def forward(self, x):
        h = F.relu(run_conv_bn(self, "conv1", x))
        h = run_conv_bn(self, "conv2", h)
        return F.relu(h + (run_conv_bn(self, "downsample", x) if self.proj else x))


class ResNet18(nn.Module):
    def __init__(self, cin, w, k, stride, pool, norm="batch"):
        super().__init__()
        conv_bn(self, "stem", cin, w, k, stride, norm)
        self.pool = pool
        c = w
        for s in range(4):
            cout = w << s
            blocks = [Block(c, cout, 2 if s > 0 else 1, norm), Block(cout, cout, 1, norm)]
            setattr(self, "layer%d" % (s + 1), nn.ModuleList(blocks))
            c = cout
        self.out_dim = c

    def forward(self, x):
        x = F.relu(run_conv_bn(self, "stem", x))
        if self.pool:
            x = F.max_pool2d(x, 3, 2, 1)
        for s in range(4):
            for b in getattr(self, "layer%d" % (s + 1)):
                x = b(x)
        return x.mean(dim=(2, 3))


class SmallCNN(nn.Module):
    def __init__(self, cin, w, norm):
        super().__init__()
        for i in range(3):
            conv_bn(self, "conv%d" % (i + 1), cin, w << i, 3, 1, norm)
            cin = w << i
        self.out_dim = cin

    def forward(self, x):
        for i in range(3):
            x = F.relu(run_conv_bn(self, "conv%d" % (i + 1), x))
            if i < 2:
                x = F.max_pool2d(x, 2)
        return x.mean(dim=(2, 3))


class MLP(nn.Module):
    def __init__(self, cin, hidden, act):
        super().__init__()
        for i, h in enumerate(hidden):
            setattr(self, "fc%d" % (i + 1), nn.Linear(cin, h))
            cin = h
        self.n, self.out_dim, self.act = len(hidden), cin, ACTS[act]

    def forward(self, x):
        for i in range(self.n):
            x = self.act(getattr(self, "fc%d" % (i + 1))(x))
        return x


class Head(nn.Module):
    def __init__(self, cin, cout, hidden, act):
        super().__init__()
        if hidden:
            self.hidden = nn.Linear(cin, hidden)
            cin = hidden
        self.fc = nn.Linear(cin, cout)
        self.n_hidden, self.act = hidden, ACTS[act]

    def forward(self, z):
        return self.fc(self.act(self.hidden(z)) if self.n_hidden else z)


class FeatNorm(nn.Module):
    """[branch.X] feature_norm = layer: a layer norm on the branch's features (`<branch>.feat_norm`)."""

    def __init__(self, d):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d))

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, 1e-5)


class GalnnNet(nn.Module):
    """The multi-branch network of models/branchnet.c, from a galnn configuration."""

    def __init__(self, cfg, in_channels):
        super().__init__()
        self.branches = []
        feat = 0
        for sec in cfg.sections():
            if not sec.startswith("branch."):
                continue
            name, s = sec[len("branch."):], cfg[sec]
            inp = s.get("input", "image")
            bb = s.get("backbone", "mlp" if inp == "columns" else "resnet18")
            cin, norm = in_channels[name], s.get("norm", "batch")
            if bb == "resnet18":
                m = ResNet18(cin, int(s.get("width", 64)), int(s.get("stem_kernel", 3)),
                             int(s.get("stem_stride", 2)), int(s.get("stem_pool", 0)), norm)
            elif bb == "smallcnn":
                m = SmallCNN(cin, int(s.get("width", 32)), norm)
            else:
                hidden = [int(h) for h in s.get("hidden", "128,128").split(",")]
                m = MLP(cin, hidden, s.get("activation", "relu"))
            if s.get("feature_norm", "none") == "layer":
                m.feat_norm = FeatNorm(m.out_dim)
            m.feat_dropout = float(s.get("dropout", 0))
            setattr(self, name, m)
            self.branches.append(name)
            feat += m.out_dim
        t = cfg["target"]
        n_t = len(t.get("names").split(","))
        head = t.get("head", "regression")
        n_out = int(t.get("bins", 520)) if head == "binned" else 2 * n_t if head == "gaussian" else n_t
        self.head = Head(feat, n_out, int(t.get("hidden", 0)), t.get("activation", "relu"))

    def forward(self, inputs):
        f = []
        for b in self.branches:
            m = getattr(self, b)
            x = m(inputs[b])
            x = m.feat_norm(x) if hasattr(m, "feat_norm") else x
            f.append(F.dropout(x, m.feat_dropout, self.training) if m.feat_dropout > 0 else x)
        return self.head(torch.cat(f, dim=1))


def glorot_(lin, bias):
    """The initialisation a paper prescribes and galnn keeps: Glorot-uniform weights, constant biases."""
    nn.init.xavier_uniform_(lin.weight)
    nn.init.constant_(lin.bias, bias)
    return lin


class FlowNet(nn.Module):
    """[model] kind = flow (models/posterior.c, models/flow.c): a ReLU context network, a mean head and a
    conditional RealNVP over the residual y - mean, its coupling networks fed [kept part of y, context]."""

    def __init__(self, cfg, in_dim, dim):
        super().__init__()
        m = cfg["model"]
        ctx, hid = int(m.get("context", 256)), int(m.get("flow_hidden", 128))
        self.ctx = nn.ModuleList([nn.Linear(in_dim if k == 0 else ctx, ctx)
                                  for k in range(int(m.get("context_depth", 2)))])
        mh = int(m.get("mean_hidden", 128))
        self.mean = nn.Sequential(nn.Linear(ctx, mh), nn.ReLU(), nn.Linear(mh, dim))
        self.dim, self.clamp, self.tanh = dim, float(m.get("clamp", 2)), m.get("scale", "tanh") == "tanh"
        self.mean_weight = float(m.get("mean_weight", 1))
        self.coup = nn.ModuleList()
        for _ in range(int(m.get("layers", 12))):
            layers, fi = [], dim + ctx
            for _ in range(int(m.get("flow_depth", 2))):
                layers += [glorot_(nn.Linear(fi, hid), 0.0), nn.ReLU()]
                fi = hid
            last = nn.Linear(fi, 2 * dim)  # zero: every coupling starts as the identity
            nn.init.zeros_(last.weight), nn.init.zeros_(last.bias)
            self.coup.append(nn.Sequential(*layers, last))
        keep = [[float(dim > 1 and (j + l) % 2 == 0) for j in range(dim)] for l in range(len(self.coup))]
        self.register_buffer("keep", torch.tensor(keep))

    def context(self, x):
        for lin in self.ctx:
            x = F.relu(lin(x))
        return x

    def st(self, l, x, h):
        b = self.keep[l]
        z = self.coup[l](torch.cat([x * b, h], dim=1))
        s = z[:, :self.dim]
        s = self.clamp * torch.tanh(s) if self.tanh else s
        return s * (1 - b), z[:, self.dim:] * (1 - b)

    def log_prob(self, x, y):
        """log p(y | x) per galaxy (standardised units) and the mean head's prediction."""
        h = self.context(x)
        m = self.mean(h)
        u, ld = y - m, 0
        for l in range(len(self.coup)):
            s, t = self.st(l, u, h)
            u, ld = u * torch.exp(s) + t, ld + s.sum(1)
        return -0.5 * (u * u).sum(1) - 0.5 * self.dim * math.log(2 * math.pi) + ld, m

    def loss(self, x, y):
        lp, m = self.log_prob(x, y)
        return -lp.mean() + self.mean_weight * F.mse_loss(m, y)

    def sample(self, x, n):
        """n draws of y for each row of x: (rows, n, dim)."""
        h = self.context(x).repeat_interleave(n, 0)
        u = torch.randn(h.shape[0], self.dim)
        for l in reversed(range(len(self.coup))):
            s, t = self.st(l, u, h)
            u = (u - t) * torch.exp(-s)
        return (u + self.mean(h)).reshape(x.shape[0], n, self.dim)


class VaeNet(nn.Module):
    """[model] kind = vae (models/vae.c): stride-2 4x4 convolutions with LeakyReLU to (mu, log sigma^2),
    a dense layer and transposed convolutions back; He-normal convolutions, Glorot dense layers."""

    def __init__(self, cfg, in_c, size):
        super().__init__()
        m = cfg["model"]
        self.widths = [int(w) for w in m.get("widths", "32,64,128").split(",")]
        self.latent, self.beta = int(m.get("latent", 32)), float(m.get("beta", 1))
        self.slope = float(m.get("leaky_slope", 0.2))
        self.down, c = nn.ModuleList(), in_c
        for w in self.widths:
            self.down.append(nn.Conv2d(c, w, 4, 2, 1))
            c = w
        self.m = size >> len(self.widths)
        feat = c * self.m * self.m
        self.mu = glorot_(nn.Linear(feat, self.latent), 0.0)
        self.logvar = glorot_(nn.Linear(feat, self.latent), 0.0)
        self.dec_fc = glorot_(nn.Linear(self.latent, feat), 0.0)
        outs = [in_c] + self.widths[:-1]
        self.up = nn.ModuleList([nn.ConvTranspose2d(self.widths[k], outs[k], 4, 2, 1)
                                 for k in reversed(range(len(self.widths)))])
        for conv in list(self.down) + list(self.up):
            # galnn's He normal: std sqrt(2 / (weight.shape[1] x 16 taps)), for both kinds of weight
            nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (conv.weight.shape[1] * 16)))
            nn.init.zeros_(conv.bias)

    def encode(self, x):
        for conv in self.down:
            x = F.leaky_relu(conv(x), self.slope)
        x = x.reshape(x.shape[0], -1)
        return self.mu(x), self.logvar(x)

    def decode(self, z):
        h = F.leaky_relu(self.dec_fc(z), self.slope).reshape(z.shape[0], self.widths[-1], self.m, self.m)
        for k, up in enumerate(self.up):
            h = up(h)
            h = F.leaky_relu(h, self.slope) if k < len(self.up) - 1 else h
        return h

    def loss(self, x):
        """-ELBO per galaxy: the sum of squared errors over its pixels + beta KL."""
        mu, lv = self.encode(x)
        xh = self.decode(mu + torch.exp(0.5 * lv) * torch.randn_like(mu))
        rec = ((xh - x) ** 2).reshape(x.shape[0], -1).sum(1).mean()
        kl = (0.5 * (mu * mu + torch.exp(lv) - 1 - lv)).sum(1).mean()
        return rec + self.beta * kl


class LatentMLP(nn.Module):
    """[model] kind = latent, encoder = mlp (models/latent.c): the S-space model of the causal analysis —
    a deep LeakyReLU encoder of [x, a] to S (+ extra dimensions), a decoder back to x, and a binned
    estimator on S; the paper's Glorot weights with 0.1 biases."""

    def __init__(self, cfg, x_dim, a_dim):
        super().__init__()
        m, t = cfg["model"], cfg["target"]
        depth, hid = int(m.get("depth", 20)), int(m.get("hidden", 128))
        self.obj = m.get("objective", "scl")
        self.dm, de = int(m.get("dim_main", 8)), int(m.get("dim_ext", 0 if self.obj == "ce" else 8))
        self.slope, self.lam = float(m.get("leaky_slope", 0.2)), float(m.get("lambda_rec", 1))
        self.bins, self.lo, self.hi = int(t.get("bins", 520)), float(t.get("lo", 6)), float(t.get("hi", 12.5))
        L = self.dm + de
        dims = [x_dim + a_dim] + [hid] * depth + [L]
        self.enc = nn.ModuleList([glorot_(nn.Linear(dims[k], dims[k + 1]), 0.1) for k in range(depth + 1)])
        if self.obj != "ce":
            dd = [L] + [hid] * (depth - 1) + [x_dim]
            self.dec = nn.ModuleList([glorot_(nn.Linear(dd[k], dd[k + 1]), 0.1) for k in range(depth)])
        eh = int(m.get("est_hidden", 128))
        self.est = nn.Sequential(glorot_(nn.Linear(self.dm, eh), 0.1), nn.LeakyReLU(self.slope),
                                 glorot_(nn.Linear(eh, self.bins), 0.1))

    def _mlp(self, layers, h):
        for k, lin in enumerate(layers):
            h = lin(h)
            h = F.leaky_relu(h, self.slope) if k < len(layers) - 1 else h
        return h

    def encode(self, x, a):
        return self._mlp(self.enc, torch.cat([x, a], dim=1) if a is not None else x)

    def logits(self, lat):
        return self.est(lat[:, :self.dm])

    def labels(self, y):
        w = (self.hi - self.lo) / self.bins
        return torch.clamp(torch.floor((y - self.lo) / w).long(), 0, self.bins - 1)

    def predict(self, logits):
        """The posterior mean over the bin centres."""
        w = (self.hi - self.lo) / self.bins
        centres = self.lo + (torch.arange(self.bins, dtype=torch.float64) + 0.5) * w
        return (torch.softmax(logits.double(), 1) * centres).sum(1)

    def loss(self, x, a, y):
        """The objective of a batch: rows [0, N/2) set 1, [N/2, N) set 2 (scl), or plain CE (ce)."""
        lab = self.labels(y)
        l1 = self.encode(x, a)
        z1 = self.logits(l1)
        if self.obj == "ce":
            return F.cross_entropy(z1, lab)
        if self.obj != "scl":
            raise ValueError("the twin implements the scl and ce objectives, not %s" % self.obj)
        xh1 = self._mlp(self.dec, l1)
        l2 = self.encode(xh1, a)
        xh2, z2 = self._mlp(self.dec, l2), self.logits(l2)
        ce = F.cross_entropy(z1, lab) + F.cross_entropy(z2, lab)
        rec = F.mse_loss(xh1, x) + F.mse_loss(xh2, x)

        def soft_ce(logits, p):  # CE against stop-gradient soft targets
            return -(p.detach() * F.log_softmax(logits, 1)).sum(1).mean()

        ycon = soft_ce(z2, torch.softmax(z1, 1)) + soft_ce(z1, torch.softmax(z2, 1))

        def rms(u, v):
            return torch.sqrt(((u - v) ** 2).mean(1) + 1e-12).mean()

        S1, S2, P = l1[:, :self.dm], l2[:, :self.dm], x.shape[0] // 2
        lcon = F.softplus(rms(S1, S2) - rms(S1[:P], S1[P:]))
        return 2 * ce + 2 * self.lam * rec + lcon + 2 * ycon


def load(path):
    z = np.load(path)
    cfg = configparser.ConfigParser()
    cfg.read_string(bytes(z["meta.config"]).decode())
    in_ch = {}
    for k in z.files: # the first layer's weight gives each branch's input width
        for b in [s[len("branch."):] for s in cfg.sections() if s.startswith("branch.")]:
            for first in ("param.%s.stem.weight" % b, "param.%s.conv1.weight" % b, "param.%s.fc1.weight" % b):
                if k == first:
                    in_ch[b] = z[k].shape[1]
    model = GalnnNet(cfg, in_ch)
    state = {}
    for k in z.files:
        if k.startswith("param."):
            state[k[len("param."):]] = torch.from_numpy(z[k])
        elif k.startswith("buffer."):
            state[k[len("buffer."):]] = torch.from_numpy(z[k])
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError("checkpoint and module disagree: missing %s, unexpected %s" % (missing, unexpected))
    return model.eval(), cfg


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    model, cfg = load(sys.argv[1])
    print("%s: %d parameters in branches %s" % (sys.argv[1], sum(p.numel() for p in model.parameters()),
                                                  model.branches))
    if len(sys.argv) < 3:
        return 0
    d = np.load(sys.argv[2])
    inputs = {b: torch.from_numpy(d["input." + b]) for b in model.branches}
    with torch.no_grad():
        out = model(inputs).numpy()
    ref = d["output"]
    err = np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-6)
    print("PyTorch vs galnn outputs on %d galaxies: max relative difference %.2e" % (ref.shape[0], err))
    return 0 if err <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
