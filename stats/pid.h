// Partial information decomposition for two sources X0, X1 and a target Y
// (spec/stats.md §B, spec/methods.md §1.11):
//   Red = I_cap, Unq0 = I(X0;Y) - Red, Unq1 = I(X1;Y) - Red,
//   Syn = I(X0X1;Y) - Red - Unq0 - Unq1.
// Discrete measures work on a dense joint table p[(x0 n1 + x1) ny + y] and
// report bits: I_min (Williams-Beer), I_mmi (minimum MI), I_broja
// (Bertschinger et al.: min over Delta_P of I_Q(Y;X0X1), computed by
// alternating KL minimisation), I_ccs (Ince: pointwise common change in
// surprisal on the maximum-entropy distribution with the pairwise marginals).
// Continuous data: Gaussian MMI (exact for a univariate target), binning
// into a discrete table, or KSG-MMI — in nats. The paper's pointwise MMI
// (§1.11) works per galaxy from log-probabilities, in nats.
#ifndef ST_PID_H
#define ST_PID_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_pid {
    double red, unq0, unq1, syn;
    double i0, i1, i01; // I(X0;Y), I(X1;Y), I(X0X1;Y)
} st_pid;

typedef struct st_dist3 {
    int n0, n1, ny;  // alphabet sizes
    double *p;       // (n0, n1, ny), sums to 1
} st_dist3;

enum { ST_PID_IMIN = 1, ST_PID_MMI = 2, ST_PID_BROJA = 3, ST_PID_CCS = 4 };

// Checks p (finite, >= 0, sums to 1 within 1e-9) and computes the measure.
// BROJA stops when an outer step changes I_Q by less than tol (default 1e-12 when <= 0).
int st_pid_discrete(const st_dist3 *d, int measure, double tol, st_pid *out);
// The mutual informations of a table, in bits.
void st_dist3_mi(const st_dist3 *d, double *i0, double *i1, double *i01);
// The BROJA optimum Q* (same shape as d->p), for inspection and tests.
int st_broja_q(const st_dist3 *d, double tol, double *q, int *iters);

// Gaussian MMI from samples: Gaussian MIs of (n, d0), (n, d1) sources and a
// (n, dy) target; nats.
int st_pid_gauss(const double *x0, int d0, const double *x1, int d1, const double *y, int dy, size_t n,
                 st_pid *out);
// KSG-MMI: KSG 1 MIs (k neighbours); nats.
int st_pid_ksg(const double *x0, int d0, const double *x1, int d1, const double *y, int dy, size_t n, int k,
               st_pid *out);
// Binned: every column into `bins` (quantile or equal width), the joint
// symbols of each source and the target become the alphabets of a table.
int st_pid_binned(const double *x0, int d0, const double *x1, int d1, const double *y, int dy, size_t n,
                  int bins, int quantile, int measure, st_pid *out);
// The table of joint symbols built from binned columns (allocates d->p).
int st_dist3_from_samples(const double *x0, int d0, const double *x1, int d1, const double *y, int dy,
                          size_t n, int bins, int quantile, st_dist3 *d);

// Pointwise MMI of §1.11 for n galaxies: i_m = log q_m(bin | X_m) - log p(bin),
// m = 1, 2, 12; R = min(i1, i2), U_m = i_m - R, S = i12 - max(i1, i2).
// Any argument may be NaN (a missing galaxy): its atoms are NaN.
void st_pid_pointwise(const double *logq1, const double *logq2, const double *logq12, const double *logprior,
                      size_t n, double *R, double *U1, double *U2, double *S);
// Percentile bootstrap of a mean (NaN skipped): B resamples, seeded;
// lo/hi are the (1-level)/2 and (1+level)/2 quantiles.
int st_bootstrap_mean(const double *v, size_t n, int B, double level, uint64_t seed, double *mean, double *lo,
                      double *hi);

#endif
