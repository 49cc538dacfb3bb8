#!/usr/bin/env python3
"""The PyTorch peer of bench/train_bench.c: the same two-branch ResNet-18 (built by
tools/torch_model.py's modules), the same batch, Adam, threads; prints samples/s and peak RSS in
the same format. Needs python3-torch (Debian)."""
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch_model as tm  # noqa: E402


def main():
    a = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    threads = int(a.get("--threads", os.cpu_count())) or os.cpu_count()
    steps, B, w = int(a.get("--steps", 10)), int(a.get("--batch", 64)), int(a.get("--width", 32))
    torch.set_num_threads(threads)
    torch.manual_seed(1)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.img, self.kin = tm.ResNet18(5, w, 3, 2, 0), tm.ResNet18(2, w, 3, 2, 0)
            self.fc = torch.nn.Linear(self.img.out_dim + self.kin.out_dim, 2)

        def forward(self, x1, x2):
            return self.fc(torch.cat([self.img(x1), self.kin(x2)], 1))

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x1, x2, y = torch.randn(B, 5, 64, 64), torch.randn(B, 2, 48, 48), torch.randn(B, 2)
    t_train = 0.0
    for s in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        F.mse_loss(net(x1, x2), y).backward()
        opt.step()
        if s:
            t_train += time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # the training's peak, as train_bench
    net.eval()
    t_inf = 0.0
    with torch.no_grad():
        for s in range(steps + 1):
            t0 = time.perf_counter()
            net(x1, x2)
            if s:
                t_inf += time.perf_counter() - t0
    n = sum(p.numel() for p in net.parameters())
    print("pytorch                 train %8.1f samples/s   inference %8.1f samples/s   peak RSS %7.1f MiB   (%d parameters, %d threads)"
          % (steps * B / t_train, steps * B / t_inf, rss, n, threads))


if __name__ == "__main__":
    main()
