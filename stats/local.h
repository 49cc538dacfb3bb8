// Local (nearest-neighbour) independence tests in a latent space — the
// analysis of spec/methods.md §1.10 and spec/stats.md §C. For a query galaxy
// with neighbour set N (its K nearest training galaxies in S space):
//   r       Pearson correlation of the target y and a candidate x over N;
//   r_perm  the same with y permuted among the valid neighbours (reference);
//   PE      predictive efficiency (Var y - Var e) / Var y, e the residual of
//           the least-squares quadratic y ~ a0 + a1 x + a2 x^2 over N (the
//           local R^2); PE_perm with y permuted;
// conditional versions: y and x are first residualised on c by the same local
// quadratic fit; pre-conditioning (the paper's Fig. 5 g-r step, [PROPOSED] in
// §1.10): y, x and c are residualised on g first, then the conditioning step
// uses the residualised c. Neighbours whose y, x, c or g is null (NaN or
// |v| >= 9000) are left out of that galaxy's statistics.
//
// Beyond the paper: B permutations per galaxy (B = 1 is the paper's single
// reference draw), giving per-galaxy p-values
//   p_r  = (1 + #{b : |r_b| >= |r|}) / (B + 1)    (two-sided),
//   p_PE = (1 + #{b : PE_b >= PE}) / (B + 1),
// and population summaries (st_local_summary) with a two-sample
// Kolmogorov-Smirnov test of the original against the reference values.
#ifndef ST_LOCAL_H
#define ST_LOCAL_H

#include <stddef.h>
#include <stdint.h>

// Least-squares quadratic y ~ a0 + a1 x + a2 x^2 over n points (closed form,
// the normal equations of §1.10, on x centred and scaled for accuracy; it
// falls back to a line, then a constant, when x takes fewer than 3, 2
// distinct values). Writes the residuals to e (may alias y) and returns the
// degree used (2, 1, 0), or -1 when n == 0.
int st_quadfit(const double *x, const double *y, int n, double *coef, double *e);
double st_pearson(const double *x, const double *y, int n); // NaN when either is constant
// Local R^2 of the quadratic fit: (Var y - Var e) / Var y; NaN when y is constant.
double st_pred_eff(const double *x, const double *y, int n);

typedef struct st_local_opts {
    int perms;         // B >= 1 permutations per galaxy (default 1, as the paper)
    int min_valid;     // fewer valid neighbours than this: the galaxy's statistics are NaN (default 10)
    uint64_t seed;     // permutations: one stream per query galaxy, so results do not depend on threads
    double null_abs;   // |v| >= null_abs is null (default 9000)
    size_t q0;         // the first query's index in the whole list (its stream's): a block of it tested alone
} st_local_opts;

typedef struct st_local_row {
    double r, r_perm, pe, pe_perm; // r_perm, pe_perm: the first permutation
    double p_r, p_pe;              // per-galaxy permutation p-values
    int n_valid;
} st_local_row;

// nb: (nq, k) neighbour indices into the reference arrays y, x, c, g
// (c, g may be NULL). Parallel over query galaxies.
int st_local_test(const uint32_t *nb, size_t nq, int k, const double *y, const double *x, const double *c,
                  const double *g, const st_local_opts *o, st_local_row *out);

typedef struct st_local_summary {
    size_t n, n_nan;                   // galaxies with / without statistics
    double r[3], r_perm[3], pe[3], pe_perm[3]; // 16th, 50th, 84th percentiles
    double ks_r, p_ks_r, ks_pe, p_ks_pe; // two-sample KS: r vs r_perm, PE vs PE_perm
    double frac_p05;                   // fraction of galaxies with p_PE < 0.05 (meaningful when B >= 20)
} st_local_summary;

// Summary over the rows with sel[i] != 0 (sel NULL: all rows).
int st_local_summarize(const st_local_row *rows, size_t n, const uint8_t *sel, st_local_summary *s);

// numpy's default (linear) percentile of the non-NaN values, q in [0, 100]; NaN if none.
double st_percentile(const double *x, size_t n, double q);
// Two-sample Kolmogorov-Smirnov statistic D and its asymptotic p-value
// (Kolmogorov distribution at (sqrt(m) + 0.12 + 0.11/sqrt(m)) D, m = na nb/(na + nb);
// Stephens 1970). NaN values are skipped.
int st_ks2(const double *a, size_t na, const double *b, size_t nb, double *D, double *p);

#endif
