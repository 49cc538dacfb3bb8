#!/usr/bin/env python3
"""The PyTorch peer of bench/flow_bench.c, written from the definitions in models/flow.h and
models/vae.h: the same conditional RealNVP (12 masked affine couplings, s = 2 tanh(ŝ), nets
[x ⊙ b, h] -> 2 x 128 ReLU -> 2D), batch 512, 5-D target, 64-D context; the same VAE (k4 s2 p1
convolutions 32/64/128, LeakyReLU 0.2, latent 32, transposed convolutions back), batch 64 of
5 x 64 x 64. Adam. Prints the same line format. Needs python3-torch (Debian)."""
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Flow(nn.Module):
    def __init__(self, D, C, layers=12, hidden=128, clamp=2.0):
        super().__init__()
        self.D, self.clamp = D, clamp
        self.nets = nn.ModuleList(
            nn.Sequential(nn.Linear(D + C, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2 * D))
            for _ in range(layers))
        masks = [[1.0 if (j + l) % 2 == 0 else 0.0 for j in range(D)] for l in range(layers)]
        self.register_buffer("keep", torch.tensor(masks))

    def log_prob(self, x, h):
        ld = torch.zeros(x.shape[0])
        for l, net in enumerate(self.nets):
            b = self.keep[l]
            o = net(torch.cat([x * b, h], 1))
            s = self.clamp * torch.tanh(o[:, :self.D]) * (1 - b)
            t = o[:, self.D:] * (1 - b)
            x = x * torch.exp(s) + t
            ld = ld + s.sum(1)
        return -0.5 * (x * x).sum(1) - 0.5 * self.D * math.log(2 * math.pi) + ld


class VAE(nn.Module):
    def __init__(self, C=5, S=64, widths=(32, 64, 128), latent=32):
        super().__init__()
        enc, ci = [], C
        for w in widths:
            enc += [nn.Conv2d(ci, w, 4, 2, 1), nn.LeakyReLU(0.2)]
            ci = w
        self.enc = nn.Sequential(*enc)
        self.m, self.top = S >> len(widths), widths[-1]
        feat = self.top * self.m * self.m
        self.mu, self.logvar, self.dec_fc = nn.Linear(feat, latent), nn.Linear(feat, latent), nn.Linear(latent, feat)
        dec, rev = [], list(widths[::-1]) + [C]
        for k in range(len(widths)):
            dec.append(nn.ConvTranspose2d(rev[k], rev[k + 1], 4, 2, 1))
            if k < len(widths) - 1:
                dec.append(nn.LeakyReLU(0.2))
        self.dec = nn.Sequential(*dec)

    def loss(self, x):
        h = self.enc(x).flatten(1)
        mu, lv = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        xh = self.dec(F.leaky_relu(self.dec_fc(z), 0.2).view(-1, self.top, self.m, self.m))
        rec = ((xh - x) ** 2).flatten(1).sum(1).mean()
        kl = (0.5 * (mu * mu + lv.exp() - 1 - lv)).sum(1).mean()
        return rec + kl


def main():
    a = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    threads = int(a.get("--threads", os.cpu_count())) or os.cpu_count()
    steps = int(a.get("--steps", 20))
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    B, D, C = 512, 5, 64
    f = Flow(D, C)
    opt = torch.optim.Adam(f.parameters(), lr=1e-4)
    x, h = torch.randn(B, D), torch.randn(B, C)
    t_train = 0.0
    for s in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        (-f.log_prob(x, h).mean()).backward()
        opt.step()
        if s:
            t_train += time.perf_counter() - t0
    t_lp = 0.0
    with torch.no_grad():
        for s in range(steps + 1):
            t0 = time.perf_counter()
            f.log_prob(x, h)
            if s:
                t_lp += time.perf_counter() - t0
    v = VAE()
    opt = torch.optim.Adam(v.parameters(), lr=1e-4)
    img = torch.randn(64, 5, 64, 64)
    vsteps = max(steps // 4, 3)
    t_vae = 0.0
    for s in range(vsteps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        v.loss(img).backward()
        opt.step()
        if s:
            t_vae += time.perf_counter() - t0
    print("pytorch   flow train %9.0f samples/s   flow log-prob %9.0f samples/s   VAE train %7.1f images/s   (%d threads)"
          % (steps * B / t_train, steps * B / t_lp, vsteps * 64 / t_vae, threads))


if __name__ == "__main__":
    main()
