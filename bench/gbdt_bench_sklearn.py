# make bench: scikit-learn's HistGradientBoostingRegressor on the table bench/gbdt_bench.c reads, with the
# same bins (255), leaves, learning rate (0.1), rounds, min_samples_leaf (20) and no early stopping.
# Also writes the tables: --make DIR [CATALOG] writes DIR/mock_{X,y}.npy (20 columns of a galnn mock
# catalog -> logmstar) and DIR/synth_{X,y}.npy (1,000,000 x 20 synthetic rows).
import sys
import time

import numpy as np


def make(d, catalog):
    if catalog:
        with open(catalog) as f:
            f.readline()
            names = f.readline().strip().split(',')
        cols = ['mag_u', 'mag_g', 'mag_r', 'mag_i', 'mag_z', 'magerr_u', 'magerr_g', 'magerr_r', 'magerr_i',
                'magerr_z', 'w1', 'w2', 'w3', 'w1err', 'w2err', 'zspec', 'ebv', 'sersic_n', 'ba', 'r50']
        idx = [names.index(c) for c in cols] + [names.index('logmstar')]
        a = np.loadtxt(catalog, delimiter=',', skiprows=2, usecols=idx)
        a[a == -9999] = np.nan
        np.save(d + '/mock_X.npy', np.ascontiguousarray(a[:, :-1]))
        np.save(d + '/mock_y.npy', np.ascontiguousarray(a[:, -1]))
    r = np.random.default_rng(1)
    X = r.normal(size=(1000000, 20))
    y = (np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + X[:, 2] * X[:, 3] + np.abs(X[:, 4]) + 0.3 * X[:, 5]
         + 0.1 * X[:, 6:].sum(1) + 0.3 * r.normal(size=X.shape[0]))
    X[r.random(X.shape) < 0.02] = np.nan
    np.save(d + '/synth_X.npy', X)
    np.save(d + '/synth_y.npy', y)


def status_mib(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key):
                return float(line.split()[1]) / 1024.0
    return float('nan')


def reset_peak():
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def run(xp, yp, rounds, leaves):
    from sklearn.ensemble import HistGradientBoostingRegressor
    X, y = np.load(xp), np.load(yp)
    ntr = len(y) * 8 // 10
    m = HistGradientBoostingRegressor(max_iter=rounds, learning_rate=0.1, max_leaf_nodes=leaves,
                                      min_samples_leaf=20, l2_regularization=0, max_bins=255,
                                      early_stopping=False, random_state=1)
    reset_peak()
    base = status_mib('VmRSS:')
    t0 = time.perf_counter()
    m.fit(X[:ntr], y[:ntr])
    t_fit = time.perf_counter() - t0
    mem = status_mib('VmHWM:') - base
    t_pred = float('inf')  # the best of 5, as bench/gbdt_bench.c
    for _ in range(5):
        t0 = time.perf_counter()
        p = m.predict(X[ntr:])
        t_pred = min(t_pred, time.perf_counter() - t0)
    rmse = float(np.sqrt(np.mean((p - y[ntr:]) ** 2)))
    print(f"sklearn_fit {t_fit:.3f}\nsklearn_predict {t_pred:.4f}\nsklearn_rmse {rmse:.5f}\nsklearn_fit_mib {mem:.1f}")


if __name__ == '__main__':
    if sys.argv[1] == '--make':
        make(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        run(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
