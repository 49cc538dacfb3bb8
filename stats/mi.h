// Mutual information estimators (spec/stats.md §A.1), in nats:
//   KSG 1 and 2 (Kraskov, Stogbauer, Grassberger 2004, eqs. 8 and 9), max-norm
//   in the joint and the marginal spaces, the point itself never a neighbour;
//   Frenzel-Pompe conditional MI (the estimator inside tigramite's CMIknn);
//   Gaussian MI from covariance determinants.
// Data are row-major (n, dx) etc.; NaN anywhere is an error (mask first).
#ifndef ST_MI_H
#define ST_MI_H

#include <stddef.h>
#include <stdint.h>

double st_digamma(double x);
// variant 1: strict counts within the joint k-NN distance; variant 2:
// inclusive counts within each side's own extent of the k neighbours.
int st_mi_ksg(const double *x, int dx, const double *y, int dy, size_t n, int k, int variant, double *mi);
// I(X;Y|Z) (Frenzel-Pompe); with dz = 0 it is KSG 1.
int st_cmi_fp(const double *x, int dx, const double *y, int dy, const double *z, int dz, size_t n, int k,
              double *cmi);
// 1/2 ln(det S_x det S_y / det S_xy) from the sample covariance.
int st_mi_gauss(const double *x, int dx, const double *y, int dy, size_t n, double *mi);

// I(X;Y|Z) = 1/2 ln(det S_xz det S_yz / (det S_xyz det S_z)) (spec §A.5); dz = 0: st_mi_gauss.
int st_cmi_gauss(const double *x, int dx, const double *y, int dy, const double *z, int dz, size_t n,
                 double *cmi);

// ---- binned (plug-in) estimates ----
// Discretise one column into `bins` codes 0..bins-1 (spec §B.4, IDTxl's rules):
// equal width: int((x - min) / ((max - min) / bins)), the maximum in the last bin
// (a constant column: all 0); quantile ("max_ent"): cut-off b is
// sorted[int((b + 1) n / bins) - 1], x goes to the first bin with x <= cut-off.
int st_discretize(const double *x, size_t n, size_t stride, int bins, int quantile, int *code);
// Plug-in entropy (nats) of the joint symbols of `nc` integer columns, each
// (n) with the given stride; with Miller-Madow, + (m - 1) / (2n), m the
// number of distinct symbols seen (spec §B.4).
double st_entropy_codes(const int *const *codes, int nc, size_t n, int miller_madow, size_t *m_out);
// I(X;Y) or I(X;Y|Z) from the binned columns (every column binned alone),
// H(XZ) + H(YZ) - H(Z) - H(XYZ), each entropy plug-in (+ Miller-Madow).
int st_mi_binned(const double *x, int dx, const double *y, int dy, const double *z, int dz, size_t n,
                 int bins, int quantile, int miller_madow, double *mi);

// ---- one entry point for every estimator ----
enum { ST_MI_KSG1 = 1, ST_MI_KSG2 = 2, ST_MI_GAUSS = 3, ST_MI_BINNED = 4 };
typedef struct st_mi_opts {
    int estimator;    // ST_MI_*
    int k;            // KSG neighbours (default 3)
    int bins;         // binned: bins per column (default 8)
    int quantile;     // binned: quantile bins instead of equal width
    int miller_madow; // binned: the bias correction (default on)
} st_mi_opts;
// I(X;Y), or I(X;Y|Z) when dz > 0 (KSG 1 -> Frenzel-Pompe, Gaussian, binned; not KSG 2).
int st_mi(const st_mi_opts *o, const double *x, int dx, const double *y, int dy, const double *z, int dz,
          size_t n, double *mi);

// ---- transforms (in place on (n, d) data; off unless asked for) ----
enum { ST_TF_NONE = 0, ST_TF_RANK = 1, ST_TF_STANDARDIZE = 2 };
// rank: each column replaced by its rank 0..n-1 (ties by row order, as
// argsort().argsort()); standardize: zero mean, unit standard deviation (n - 1).
int st_transform(double *v, size_t n, int d, int kind);
// Add amp * sd(column) * N(0, 1) to every value (tie breaking), seeded.
int st_add_noise(double *v, size_t n, int d, double amp, uint64_t seed);

// ---- significance ----
// Permutation test of I(X;Y|Z) = 0 (spec §A.6, Runge 2018): B surrogates with
// Y permuted only among each point's `shuffle_k` nearest neighbours in Z
// (max-norm, the point itself included; the restricted-permutation draw of
// tigramite's CMIknn); with dz = 0, Y is permuted freely. The p-value is
// (1 + #{null >= value}) / (B + 1). null (may be NULL) receives the B values.
int st_mi_permtest(const st_mi_opts *o, const double *x, int dx, const double *y, int dy, const double *z,
                   int dz, size_t n, int B, int shuffle_k, uint64_t seed, double *value, double *p,
                   double *null);

#endif
