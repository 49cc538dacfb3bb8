// Mutual information estimators (spec/stats.md §A.1), in nats:
//   KSG 1 and 2 (Kraskov, Stogbauer, Grassberger 2004, eqs. 8 and 9), max-norm
//   in the joint and the marginal spaces, the point itself never a neighbour;
//   Frenzel-Pompe conditional MI (the estimator inside tigramite's CMIknn);
//   Gaussian MI from covariance determinants.
// Data are row-major (n, dx) etc.; NaN anywhere is an error (mask first).
#ifndef ST_MI_H
#define ST_MI_H

#include <stddef.h>

double st_digamma(double x);
// variant 1: strict counts within the joint k-NN distance; variant 2:
// inclusive counts within each side's own extent of the k neighbours.
int st_mi_ksg(const double *x, int dx, const double *y, int dy, size_t n, int k, int variant, double *mi);
// I(X;Y|Z) (Frenzel-Pompe); with dz = 0 it is KSG 1.
int st_cmi_fp(const double *x, int dx, const double *y, int dy, const double *z, int dz, size_t n, int k, double *cmi);
// 1/2 ln(det S_x det S_y / det S_xy) from the sample covariance.
int st_mi_gauss(const double *x, int dx, const double *y, int dy, size_t n, double *mi);

#endif
