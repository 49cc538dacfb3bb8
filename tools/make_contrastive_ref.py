"""Reference values for galnn's contrastive losses (nn_supcon_loss,
nn_rnc_loss): PyTorch float64 written from the definitions in
spec/stats.md §E (SupCon §E.1, Rank-N-Contrast §E.2), gradients by autograd.
Writes tests/data/contrastive_ref.npz. Run with /usr/bin/python3 (needs
python3-torch)."""
import numpy as np
import torch

torch.manual_seed(0)
rng = np.random.default_rng(3)
B, V, D = 5, 2, 3
f = rng.standard_normal((V * B, D))
labels = np.array([0, 1, 0, 2, 1], dtype=np.int32)
y = rng.standard_normal((B, 2))
y[3] = y[1]  # a tie in the label distances


def supcon(F, lab, tau, base):
    n = F.shape[0]
    L = F @ F.T / tau
    eye = torch.eye(n, dtype=torch.bool)
    L = L.masked_fill(eye, float("-inf"))
    logp = L - torch.logsumexp(L, dim=1, keepdim=True)
    idx = torch.arange(n) % B
    key = torch.as_tensor(lab)[idx] if lab is not None else idx
    pos = (key[:, None] == key[None, :]) & ~eye
    npos = pos.sum(1).clamp(min=1)
    mlpp = torch.where(pos, logp, torch.zeros_like(logp)).sum(1) / npos
    return -(tau / base) * mlpp.mean()


def rnc(F, Y, tau):
    n = F.shape[0]
    idx = torch.arange(n) % B
    Yt = torch.as_tensor(Y)[idx]
    diff = F[:, None, :] - F[None, :, :]
    s = -torch.sqrt((diff**2).sum(-1) + torch.eye(n, dtype=F.dtype)) / tau  # the diagonal is never used; +1 keeps sqrt differentiable there
    d = (Yt[:, None, :] - Yt[None, :, :]).abs().sum(-1)
    total = 0
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            m = torch.tensor([k != i and d[i, k] >= d[i, j] for k in range(n)])
            total = total - (s[i, j] - torch.logsumexp(s[i][m], 0))
    return total / (n * (n - 1))


out = {"f": f, "labels": labels, "y": y}
for name, fn in [
    ("supcon_labels", lambda F: supcon(F, labels, 0.1, 0.07)),
    ("supcon_simclr", lambda F: supcon(F, None, 0.5, 0.5)),
    ("rnc", lambda F: rnc(F, y, 2.0)),
]:
    F = torch.tensor(f, dtype=torch.float64, requires_grad=True)
    v = fn(F)
    v.backward()
    out[name] = np.array([v.item()])
    out[name + "_grad"] = F.grad.numpy().copy()
    print(name, v.item())
np.savez("tests/data/contrastive_ref.npz", **out)
