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
    def __init__(self, cin, w, k, stride, pool, norm):
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
    print("%s: %d parameters in branches %s" % (sys.argv[1], sum(p.numel() for p in model.parameters()), model.branches))
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
