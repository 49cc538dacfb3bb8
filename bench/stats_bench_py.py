"""The peers of bench/stats_bench.c in the same run: faiss IndexFlatL2 for the
exact kNN (100,000 points in 16-D, k = 100 + self) and
sklearn.feature_selection.mutual_info_regression for KSG MI at n = 100,000
(sklearn's estimator is KSG 1, k = 3). Same sizes as the C bench; prints
"name seconds" lines for whichever library is installed."""
import sys
import time

import numpy as np

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 0
n_knn = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
rng = np.random.default_rng(1)
try:
    import faiss

    if threads > 0:
        faiss.omp_set_num_threads(threads)
    p = rng.standard_normal((n_knn, 16)).astype(np.float32)
    t0 = time.perf_counter()
    index = faiss.IndexFlatL2(16)
    index.add(p)
    D, I = index.search(p, 101)  # self is the first neighbour
    print("faiss_knn %.3f" % (time.perf_counter() - t0))
except ImportError:
    pass
try:
    from sklearn.feature_selection import mutual_info_regression

    a = rng.standard_normal(100000)
    b = 0.6 * a + 0.8 * rng.standard_normal(100000)
    best = float("inf")
    for rep in range(5):  # best of 5, as the C bench
        t0 = time.perf_counter()
        mi = mutual_info_regression(a[:, None], b, n_neighbors=3, random_state=0)[0]
        best = min(best, time.perf_counter() - t0)
    print("sklearn_mi %.4f" % best)
    print("sklearn_value %.4f" % mi)
except ImportError:
    pass
