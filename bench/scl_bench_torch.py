# make bench: the image S-space model of models/scl_iopt.cfg in PyTorch (the same layers as models/latent.c:
# Inception encoder, image decoder, 520-bin estimator; the SCL step with the morphology view: three encoder
# and decoder passes), batch of 32 pairs, Adam, random inputs. Prints seconds per step.
import argparse
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(cin, cout, k, same=True):
    return nn.Conv2d(cin, cout, k, padding=k // 2 if same else 0)


def pool_same(x):  # 2x2 stride-1 average, one cell of padding after, excluded from the mean
    return F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2, 1) * 4 / F.avg_pool2d(
        F.pad(torch.ones_like(x[:1, :1]), (0, 1, 0, 1)), 2, 1) / 4


class Incep(nn.Module):
    def __init__(self, cin, w):
        super().__init__()
        r, d = int(0.65 * w), int(0.7 * w)
        self.a1, self.a5 = conv(cin, r, 1), conv(r, w, 5)
        self.b1, self.b3 = conv(cin, r, 1), conv(r, w, 3)
        self.c1, self.d1 = conv(cin, r, 1), conv(cin, d, 1)

    def forward(self, x):
        return torch.cat([F.relu(self.a5(F.relu(self.a1(x)))), F.relu(self.b3(F.relu(self.b1(x)))),
                          pool_same(F.relu(self.c1(x))), F.relu(self.d1(x))], 1)


class Scl(nn.Module):
    def __init__(self, cw=96, iw=156, fc=1024, L=528, dm=16, dch=16, dw=32, est=1024, bins=520):
        super().__init__()
        I = 2 * iw + int(0.65 * iw) + int(0.7 * iw)
        self.fa, self.s1, self.s2 = nn.Linear(1, cw), conv(5, cw, 5), conv(cw, cw, 3)
        self.inc = nn.ModuleList([Incep(cw if k == 0 else I, iw) for k in range(6)])
        self.valid = nn.ModuleList([conv(I if k == 0 else cw, cw, 3, False) for k in range(3)])
        self.f1, self.f2 = nn.Linear(4 * cw, fc), nn.Linear(fc, L)
        self.d0 = nn.Linear(L, 64 * dch)
        self.dconv = nn.ModuleList([conv(dch if k == 0 else dw, dw, 3) for k in range(7)] + [conv(dw, 5, 3)])
        self.e1, self.e2 = nn.Linear(dm, est), nn.Linear(est, bins)
        self.dch, self.dm = dch, dm

    def encode(self, x, a):
        h = self.s1(x) + self.fa(a)[:, :, None, None]
        h = F.avg_pool2d(torch.tanh(self.s2(F.relu(h))), 2)
        for k in range(3):
            h = self.inc[k](h)
        h = F.avg_pool2d(h, 2)
        for k in range(3, 5):
            h = self.inc[k](h)
        h = self.inc[5](F.avg_pool2d(h, 2))
        for v in self.valid:
            h = F.relu(v(h))
        return self.f2(F.relu(self.f1(pool_same(h).flatten(1))))

    def decode(self, l):
        h = F.leaky_relu(self.d0(l), 0.2).view(-1, self.dch, 8, 8)
        n = 0
        for size in (8, 16, 32, 64):
            for _ in range(1 if size == 64 else 2):
                h = F.leaky_relu(self.dconv[n](h), 0.2)
                n += 1
            if size < 64:
                h = F.interpolate(h, scale_factor=2, mode='bilinear', align_corners=False)
        return self.dconv[n](h)

    def logits(self, l):
        return self.e2(F.relu(self.e1(l[:, :self.dm])))


def rms(u, v):
    return torch.sqrt(((u - v) ** 2).mean(1) + 1e-12).mean()


def ycon(p, q):
    return (-(F.softmax(p, 1).detach() * F.log_softmax(q, 1)).sum(1).mean()
            - (F.softmax(q, 1).detach() * F.log_softmax(p, 1)).sum(1).mean())


def loss(m, x, a, xm, lab):
    P = x.shape[0] // 2
    l1 = m.encode(x, a)
    xh1, z1 = m.decode(l1), m.logits(l1)
    l2 = m.encode(xh1, a)
    xh2, z2 = m.decode(l2), m.logits(l2)
    lm = m.encode(xm, a)
    xhm, zm = m.decode(lm), m.logits(lm)
    ce = F.cross_entropy(z1, lab) + F.cross_entropy(z2, lab)
    rec = F.mse_loss(xh1, x) + F.mse_loss(xh2, x) + F.mse_loss(xhm, xm)
    S1, S2, Sm = l1[:, :16], l2[:, :16], lm[:, :16]
    pos = 0.5 * (rms(S1, S2) + rms(S1, Sm))
    lcon = F.softplus(pos - rms(S1[:P], S1[P:]))
    return 2 * ce + 200 * rec + lcon + 2 * (ycon(z1, z2) + ycon(z1, zm))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=2)
    o = ap.parse_args()
    torch.set_num_threads(o.threads)
    torch.manual_seed(1)
    m = Scl()
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    N = 64
    x, xm = torch.randn(N, 5, 64, 64), torch.randn(N, 5, 64, 64)
    a, lab = 0.05 * torch.rand(N, 1), torch.randint(0, 520, (N,))
    t = 0.0
    for s in range(o.steps + 1):  # step 0 warms up
        t0 = time.perf_counter()
        opt.zero_grad()
        loss(m, x, a, xm, lab).backward()
        opt.step()
        if s:
            t += time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = sum(p.numel() for p in m.parameters())
    print(f"pytorch scl_iopt step {t / o.steps:7.2f} s   ({n} parameters, {o.threads} threads, peak RSS {rss:.0f} MiB)")


if __name__ == '__main__':
    main()
