#!/usr/bin/env python3
"""Write the PyTorch reference files that galnn's tests compare against.

    python3 tools/make_golden.py        # needs Debian's python3-torch and python3-numpy

tests/data/golden_net.npz   a small network (conv -> batchnorm -> relu -> maxpool -> conv/2 ->
                            groupnorm -> silu -> global-avgpool -> linear, plus a transposed conv
                            and a linear-layernorm-gelu-linear block): input, weights, output, loss, every
                            parameter gradient, and the parameters after 3 optimizer steps for
                            Adam, Adam(AMSGrad), AdamW with gradient clipping, SGD with momentum.
tests/data/golden_ops.npz   forward values of the ops whose conventions matter (TF 'SAME'
                            padding, transposed and 1-D convolutions, pooling with and without
                            padded cells, batch norm statistics, TF1 bilinear resize, losses).
                            Written compressed (deflate) so the tests also read that path.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)  # batch norm follows: a bias would get zero gradient
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.gn2 = nn.GroupNorm(4, 16)
        self.deconv = nn.ConvTranspose2d(16, 4, 4, stride=2, padding=1)
        self.fc = nn.Linear(20, 3)
        self.fc1 = nn.Linear(20, 16)
        self.fc2 = nn.Linear(16, 3)
        self.ln1 = nn.LayerNorm(16)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        a = F.silu(self.gn2(self.conv2(h)))
        g = a.mean(dim=(2, 3))
        t = self.deconv(a).mean(dim=(2, 3))
        z = torch.cat([g, t], dim=1)
        return self.fc(z) + self.fc2(F.gelu(self.ln1(self.fc1(z))))


def f32(t):
    return t.detach().cpu().numpy().astype(np.float32)  # astype copies (C order) and keeps 0-d scalars 0-d


def golden_net():
    torch.manual_seed(1234)
    net = Net()
    x = torch.randn(4, 3, 12, 12)
    y = torch.randn(4, 3)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    d = {"x": f32(x), "y": f32(y)}
    for k, v in init.items():
        if k.endswith("num_batches_tracked"):
            continue
        d["init." + k] = f32(v)
    out = net(x)
    loss = F.mse_loss(out, y)
    loss.backward()
    d["out"] = f32(out)
    d["loss"] = np.array(loss.item(), dtype=np.float32)
    for k, p in net.named_parameters():
        d["grad." + k] = f32(p.grad)
    d["after1.bn1.running_mean"] = f32(net.bn1.running_mean)
    d["after1.bn1.running_var"] = f32(net.bn1.running_var)

    runs = {
        "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
        "amsgrad": lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True, weight_decay=1e-3),
        "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.05),
        "sgd": lambda p: torch.optim.SGD(p, lr=5e-2, momentum=0.9, weight_decay=1e-3),
    }
    for name, make in runs.items():
        net.load_state_dict(init)
        opt = make(net.parameters())
        losses = []
        for _ in range(3):
            opt.zero_grad()
            loss = F.mse_loss(net(x), y)
            loss.backward()
            if name == "adamw":
                nn.utils.clip_grad_norm_(net.parameters(), 0.5)
            opt.step()
            losses.append(loss.item())
        d[name + ".losses"] = np.array(losses, dtype=np.float32)
        for k, v in net.state_dict().items():
            if not k.endswith("num_batches_tracked"):
                d[name + ".step3." + k] = f32(v)
    np.savez(os.path.join(OUT, "golden_net.npz"), **d)


def same_pad(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def tf1_resize(x, oh, ow):
    """TF1 resize_images BILINEAR, align_corners=False, no half-pixel centres."""
    n, c, h, w = x.shape

    def table(i, o):
        scale = np.float32(i) / np.float32(o)
        src = np.arange(o, dtype=np.float32) * scale
        lo = np.minimum(np.floor(src).astype(int), i - 1)
        hi = np.minimum(lo + 1, i - 1)
        return lo, hi, (src - lo).astype(np.float32)

    hl, hh, hw = table(h, oh)
    wl, wh, ww = table(w, ow)
    top = x[:, :, hl][:, :, :, wl] * (1 - ww) + x[:, :, hl][:, :, :, wh] * ww
    bot = x[:, :, hh][:, :, :, wl] * (1 - ww) + x[:, :, hh][:, :, :, wh] * ww
    return top * (1 - hw[:, None]) + bot * hw[:, None]


def golden_ops():
    g = torch.Generator().manual_seed(99)
    r = lambda *s: torch.randn(*s, generator=g)
    d = {}

    # conv2d, TF SAME, stride 2, odd total padding (extra cell after)
    x = r(2, 3, 7, 6); w = r(5, 3, 3, 3) * 0.3; b = r(5)
    pt, pb = same_pad(7, 3, 2); pl, pr = same_pad(6, 3, 2)
    d.update({"conv_same.x": x, "conv_same.w": w, "conv_same.b": b,
              "conv_same.pad": torch.tensor([pt, pb, pl, pr], dtype=torch.float32),
              "conv_same.y": F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride=2)})
    # 2x2 kernel, stride 1, SAME: the single pad row/column goes after
    w2 = r(4, 3, 2, 2)
    d.update({"conv_k2.w": w2, "conv_k2.y": F.conv2d(F.pad(x, (0, 1, 0, 1)), w2)})
    # non-square kernel, stride (1, 2), symmetric padding
    w3 = r(4, 3, 3, 2)
    d.update({"conv_rect.w": w3, "conv_rect.y": F.conv2d(x, w3, stride=(1, 2), padding=(1, 1))})
    # transposed conv, stride 2, pad 1, output padding 1
    xt = r(2, 4, 5, 5); wt = r(4, 3, 3, 3) * 0.3; bt = r(3)
    d.update({"convt.x": xt, "convt.w": wt, "convt.b": bt,
              "convt.y": F.conv_transpose2d(xt, wt, bt, stride=2, padding=1, output_padding=1)})
    # 1-D conv and transposed 1-D conv
    x1 = r(2, 3, 20); w1 = r(6, 3, 5) * 0.3; b1 = r(6)
    d.update({"conv1d.x": x1, "conv1d.w": w1, "conv1d.b": b1,
              "conv1d.y": F.conv1d(x1, w1, b1, stride=2, padding=2)})
    x1t = r(2, 6, 9); w1t = r(6, 3, 4) * 0.3; b1t = r(3)
    d.update({"convt1d.x": x1t, "convt1d.w": w1t, "convt1d.b": b1t,
              "convt1d.y": F.conv_transpose1d(x1t, w1t, b1t, stride=2, padding=1, output_padding=1)})
    # pooling
    xp = r(2, 3, 7, 7)
    d.update({"pool.x": xp, "pool.max": F.max_pool2d(xp, 3, 2, 1),
              "pool.avg_incl": F.avg_pool2d(xp, 3, 2, 1, count_include_pad=True)})
    # TF: 2x2 stride 1 SAME average, padded cells excluded from the mean
    s = F.avg_pool2d(F.pad(xp, (0, 1, 0, 1)), 2, 1) * 4
    cnt = F.avg_pool2d(F.pad(torch.ones_like(xp), (0, 1, 0, 1)), 2, 1) * 4
    d["pool.avg_tf_same"] = s / cnt
    # TF: 3x3 stride 2 SAME on 7x7 (one pad each side), excluded
    s = F.avg_pool2d(xp, 3, 2, 1, count_include_pad=True) * 9
    cnt = F.avg_pool2d(torch.ones_like(xp), 3, 2, 1, count_include_pad=True) * 9
    d["pool.avg_tf_s2"] = s / cnt
    d["pool.gap"] = xp.mean(dim=(2, 3))
    # TF1 bilinear resize: x2 and an odd ratio
    xr = r(2, 2, 4, 5)
    d.update({"resize.x": xr, "resize.up2": torch.from_numpy(tf1_resize(xr.numpy(), 8, 10)),
              "resize.odd": torch.from_numpy(tf1_resize(xr.numpy(), 7, 3))})
    # batch norm: training output and running statistics, then evaluation output
    xb = r(4, 3, 5, 5) * 2 + 1; gm = r(3); bb = r(3)
    rm = torch.zeros(3); rv = torch.ones(3)
    yb = F.batch_norm(xb, rm, rv, gm, bb, training=True, momentum=0.1, eps=1e-5)
    d.update({"bn.x": xb, "bn.gamma": gm, "bn.beta": bb, "bn.y_train": yb, "bn.rmean": rm.clone(),
              "bn.rvar": rv.clone(), "bn.y_eval": F.batch_norm(xb, rm, rv, gm, bb, training=False, eps=1e-5)})
    # elementwise and softmax
    xe = r(3, 5) * 3
    d.update({"elem.x": xe, "elem.softplus": F.softplus(xe), "elem.elu": F.elu(xe), "elem.sigmoid": torch.sigmoid(xe),
              "elem.leaky": F.leaky_relu(xe, 0.2), "elem.log_softmax": F.log_softmax(xe, dim=1),
              "elem.log_softmax0": F.log_softmax(xe, dim=0)})
    # losses
    lg = r(4, 7) * 2; lab = torch.tensor([0, 6, 3, 3]); q = F.softmax(r(4, 7), dim=1)
    tb = (r(4, 7) > 0).float(); mu = r(4, 3); lv = r(4, 3) * 0.5; yy = r(4, 3)
    d.update({"loss.logits": lg, "loss.labels": lab.to(torch.float32), "loss.q": q, "loss.tb": tb,
              "loss.mu": mu, "loss.lv": lv, "loss.y": yy,
              "loss.ce": F.cross_entropy(lg, lab), "loss.ce_soft": -(q * F.log_softmax(lg, 1)).sum(1).mean(),
              "loss.bce": F.binary_cross_entropy_with_logits(lg, tb),
              "loss.gnll": F.gaussian_nll_loss(mu, yy, lv.exp()),
              "loss.gnll_full": F.gaussian_nll_loss(mu, yy, lv.exp(), full=True),
              "loss.kl": (-0.5 * (1 + lv - mu ** 2 - lv.exp())).sum(1).mean(),
              "loss.mse": F.mse_loss(mu, yy), "loss.l1": F.l1_loss(mu, yy)})
    np.savez_compressed(os.path.join(OUT, "golden_ops.npz"), **{k: f32(v) for k, v in d.items()})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    golden_net()
    if "--net-only" not in sys.argv:  # the ops file stays as it is when only the network changed
        golden_ops()
    print("wrote", OUT)
