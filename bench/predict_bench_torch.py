#!/usr/bin/env python3
"""make bench: the peer of `galnn predict` end to end, in PyTorch, from galnn's own dataset cache.

    predict_bench_torch.py CKPT.npz CACHE.bin CATALOG.csv OUT.csv [--threads N] [--batch B] [--check PRED.csv]

Opens the checkpoint as the same network (tools/torch_model.py), memory-maps the decoded cutouts of the
cache (header, catalog-row table, float32 pixels), standardises each band and crops the centre as galnn
does, runs the network in evaluation mode without gradients in batches, and writes id and prediction per
galaxy. Prints "torch_predict SECONDS" (after the imports: checkpoint, cache, forward, write) and, with
--check, the largest difference from galnn's predictions of the same galaxies.
"""
import configparser
import csv
import os
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch_model  # noqa: E402

HEADER_BYTES = 4096


def open_cache(path):
    """The catalog row of each entry and the (n, c, h, w) pixels of a galnn dataset cache."""
    with open(path, "rb") as f:
        head = f.read(48)
    if head[:8] != b"GALNNDS1":
        raise ValueError("%s: not a galnn dataset cache" % path)
    n, c, h, w = struct.unpack_from("<4Q", head, 16)
    rows_bytes = (4 * n + 63) // 64 * 64
    rows = np.fromfile(path, dtype="<u4", count=n, offset=HEADER_BYTES)
    pix = np.memmap(path, dtype="<f4", mode="r", offset=HEADER_BYTES + rows_bytes, shape=(n, c, h, w))
    return rows, pix


def catalog_ids(path, column="id"):
    with open(path) as f:
        lines = (l for l in f if not l.startswith("#"))
        r = csv.reader(lines)
        k = next(r).index(column)
        return [row[k] for row in r]


def main():
    a = sys.argv[1:]
    opts = {"--threads": "2", "--batch": "64", "--check": None}
    for o in list(opts):
        if o in a:
            i = a.index(o)
            opts[o] = a[i + 1]
            del a[i:i + 2]
    ckpt, cache, catalog, out = a
    torch.set_num_threads(int(opts["--threads"]))
    t0 = time.perf_counter()
    model, cfg = torch_model.load(ckpt)
    z = np.load(ckpt)
    mean, std = z["norm.img.mean"].astype(np.float32), z["norm.img.std"].astype(np.float32)
    tmean, tstd = float(z["norm.target.mean"][0]), float(z["norm.target.std"][0])
    crop = cfg.getint("train", "crop", fallback=0)
    rows, pix = open_cache(cache)
    ids = catalog_ids(catalog)
    n, c, h, _ = pix.shape
    s = crop if crop else h
    o = (h - s) // 2
    m, sd = mean.reshape(1, c, 1, 1), std.reshape(1, c, 1, 1)
    branch = model.branches[0]
    B = int(opts["--batch"])
    pred = np.empty(n, dtype=np.float64)
    with torch.no_grad():
        for b in range(0, n, B):
            x = (np.asarray(pix[b:b + B, :, o:o + s, o:o + s]) - m) / sd
            y = model({branch: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))})
            pred[b:b + B] = y[:, 0].numpy() * tstd + tmean
    with open(out, "w") as f:
        f.write("id,logmstar_pred\n")
        for i in range(n):
            f.write("%s,%.6f\n" % (ids[rows[i]], pred[i]))
    print("torch_predict %.3f" % (time.perf_counter() - t0))
    if opts["--check"]:
        with open(opts["--check"]) as f:
            g = {r["id"]: float(r["logmstar_pred"]) for r in csv.DictReader(f)}
        d = max(abs(g[ids[rows[i]]] - pred[i]) for i in range(n))
        print("torch_max_diff %.2e" % d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
