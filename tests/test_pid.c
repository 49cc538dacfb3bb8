// stats/pid: the known answers of spec/stats.md §B.3 (dit's values, bits) for
// every measure, extra distributions of §B.2 computed from the definitions,
// BROJA against a direct search of Delta_P, the Gaussian values of §B.4, the
// paper's pointwise MMI (§1.11), bootstrap intervals and bad input.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_rng.h"
#include "../stats/pid.h"
#include "testutil.h"

static int hexd(char c) { return c >= 'a' ? c - 'a' + 10 : c - '0'; }

// A table from outcome strings "x0 x1 y" (hex digits), uniform unless pr given.
static st_dist3 dist(const char *const *out, const double *pr, int m, double *buf) {
    st_dist3 d = {0, 0, 0, buf};
    for (int i = 0; i < m; i++) {
        int a = hexd(out[i][0]), b = hexd(out[i][1]), c = hexd(out[i][2]);
        d.n0 = a + 1 > d.n0 ? a + 1 : d.n0, d.n1 = b + 1 > d.n1 ? b + 1 : d.n1,
        d.ny = c + 1 > d.ny ? c + 1 : d.ny;
    }
    memset(buf, 0, sizeof(double) * (size_t)d.n0 * d.n1 * d.ny);
    for (int i = 0; i < m; i++) {
        int a = hexd(out[i][0]), b = hexd(out[i][1]), c = hexd(out[i][2]);
        buf[(a * d.n1 + b) * d.ny + c] += pr ? pr[i] : 1.0 / m;
    }
    return d;
}

static void expect(const st_dist3 *d, int measure, double r, double u0, double u1, double s, double tol) {
    st_pid o;
    assert_int_equal(st_pid_discrete(d, measure, 0, &o), 0);
    assert_float_equal(o.red, r, tol), assert_float_equal(o.unq0, u0, tol);
    assert_float_equal(o.unq1, u1, tol), assert_float_equal(o.syn, s, tol);
    assert_float_equal(o.red + o.unq0 + o.unq1 + o.syn, o.i01, 1e-12);
}

static void test_pid_table(void **st) {
    (void)st;
    double buf[64];
    const double L3 = log2(3.0);
    const char *XOR[] = {"000", "011", "101", "110"}, *AND[] = {"000", "010", "100", "111"},
               *RDN[] = {"000", "111"};
    const char *UNQ[] = {"000", "011", "100", "111"}, *COPY[] = {"000", "011", "102", "113"};
    st_dist3 d = dist(XOR, NULL, 4, buf);
    for (int m = 1; m <= 4; m++) expect(&d, m, 0, 0, 0, 1, m == ST_PID_BROJA ? 1e-6 : 1e-9);
    d = dist(AND, NULL, 4, buf);
    double a_red = 1.5 - 0.75 * L3; // 0.311278124459
    for (int m = 1; m <= 3; m++) expect(&d, m, a_red, 0, 0, 0.5, m == ST_PID_BROJA ? 1e-6 : 1e-9);
    expect(&d, ST_PID_CCS, 0.5 - 0.25 * L3, 1 - 0.5 * L3, 1 - 0.5 * L3, 0.292481250361, 1e-9);
    d = dist(RDN, NULL, 2, buf);
    for (int m = 1; m <= 4; m++) expect(&d, m, 1, 0, 0, 0, 1e-9);
    d = dist(UNQ, NULL, 4, buf);
    for (int m = 1; m <= 4; m++) expect(&d, m, 0, 0, 1, 0, 1e-9);
    d = dist(COPY, NULL, 4, buf);
    expect(&d, ST_PID_IMIN, 1, 0, 0, 1, 1e-9), expect(&d, ST_PID_MMI, 1, 0, 0, 1, 1e-9);
    expect(&d, ST_PID_BROJA, 0, 1, 1, 0, 1e-6), expect(&d, ST_PID_CCS, 0, 1, 1, 0, 1e-9);
}

// §B.2 extras from the definitions. RdnXor: I(Xi;Y) = 1 bit, I(X0X1;Y) = 2
// bits, the shared "redundant" bit is common to all measures -> 1/0/0/1.
// SUM (Y = X0 + X1): I_min's specific information is 1 bit at y = 0 and 2 in
// both sources and 0 at y = 1 -> Red 0.5; BROJA: the y = 1 slice of Delta_P
// is [[t, 1/4 - t], [1/4 - t, t]] and I_Q is smallest at t = 1/8, giving
// Red = 0.5 too; CCS: every event with a nonzero co-information has a source
// term of the other sign or zero -> Red 0.
static void test_pid_extra(void **st) {
    (void)st;
    double buf[64];
    const char *RX[] = {"000", "011", "101", "110", "222", "233", "323", "332"},
               *SUM[] = {"000", "011", "101", "112"};
    st_dist3 d = dist(RX, NULL, 8, buf);
    for (int m = 1; m <= 4; m++) expect(&d, m, 1, 0, 0, 1, m == ST_PID_BROJA ? 1e-6 : 1e-9);
    d = dist(SUM, NULL, 4, buf);
    expect(&d, ST_PID_IMIN, 0.5, 0, 0, 1, 1e-9), expect(&d, ST_PID_MMI, 0.5, 0, 0, 1, 1e-9);
    expect(&d, ST_PID_BROJA, 0.5, 0, 0, 1, 1e-6), expect(&d, ST_PID_CCS, 0, 0.5, 0.5, 0.5, 1e-9);
    // "reduced or": 000 (1/2), 011 (1/4), 101 (1/4); I_min from the definition:
    // y = 0: p(x0 = 0 | y = 0) = 1, p(y = 0 | x0 = 0) = 2/3 -> log2((2/3) / (1/2)); same for x1
    // y = 1: p(x0 | y = 1) = (1/2, 1/2): 1/2 log2((1/3) / (1/2)) + 1/2 log2(1 / (1/2)); same for x1
    const char *RO[] = {"000", "011", "101"};
    double pr[3] = {0.5, 0.25, 0.25};
    d = dist(RO, pr, 3, buf);
    double s0 = log2((2.0 / 3) / 0.5), s1 = 0.5 * log2((1.0 / 3) / 0.5) + 0.5 * log2(2.0);
    st_pid o;
    assert_int_equal(st_pid_discrete(&d, ST_PID_IMIN, 0, &o), 0);
    assert_float_equal(o.red, 0.5 * s0 + 0.5 * s1, 1e-12);
    assert_float_equal(o.i0, o.i1, 1e-15); // symmetric
    // BROJA: Delta_P fixes the y = 0 slice; the y = 1 slice is [[t, 1/4 - t], [1/4 - t, t]] and I_Q(Y; X0X1)
    // decreases all the way to t = 1/4, the boundary (cells 011 and 101 at 0):
    // min I_Q = 1/2 log2(4/3) + 1/4 log2(2/3) + 1/4, which is I(X0;Y): Red = I(X0;Y), Unq = 0.
    double minI = 0.5 * log2(4.0 / 3) + 0.25 * log2(2.0 / 3) + 0.25;
    assert_int_equal(st_pid_discrete(&d, ST_PID_BROJA, 0, &o), 0);
    assert_true(isfinite(o.red) && isfinite(o.unq0) && isfinite(o.unq1) && isfinite(o.syn));
    assert_float_equal(o.red, o.i0 + o.i1 - minI, 1e-6);
    assert_float_equal(o.unq0, 0, 1e-6), assert_float_equal(o.unq1, 0, 1e-6);
    assert_float_equal(o.syn, 1 - minI, 1e-6);
}

// An independent minimiser of I_Q(Y; X0X1) over Delta_P. A y slice whose active rows (P(x0, y) > 0)
// and columns (P(x1, y) > 0) number at most two each has at most one free cell t; the other cells
// follow from the fixed marginals. Over such tables (every distribution below) min I_Q is a convex
// problem on a box, solved by cyclic coordinate-wise golden-section search, which shares nothing with
// the alternating minimisation of stats/pid.
#define DP_MAXF 16
typedef struct dp_box {
    const st_dist3 *d;
    int k, y[DP_MAXF], r[DP_MAXF][2], c[DP_MAXF][2];
    double rs[DP_MAXF][2], c0[DP_MAXF], lo[DP_MAXF], hi[DP_MAXF];
} dp_box;

static double cell(const st_dist3 *d, int a, int b, int c) { return d->p[(a * d->n1 + b) * d->ny + c]; }

// Active rows (dim 0) or columns (dim 1) of slice y with their sums; -1 when more than two.
static int active(const st_dist3 *d, int y, int dim, int *idx, double *sum) {
    int n = 0, na = dim ? d->n1 : d->n0, nb = dim ? d->n0 : d->n1;
    for (int a = 0; a < na; a++) {
        double s = 0;
        for (int b = 0; b < nb; b++) s += dim ? cell(d, b, a, y) : cell(d, a, b, y);
        if (s <= 0) continue;
        if (n == 2) return -1;
        idx[n] = a, sum[n++] = s;
    }
    return n;
}

static int dp_box_make(const st_dist3 *d, dp_box *b) {
    memset(b, 0, sizeof(*b)), b->d = d;
    for (int y = 0; y < d->ny; y++) {
        int r[2], c[2];
        double rs[2], cs[2];
        int nr = active(d, y, 0, r, rs), nc = active(d, y, 1, c, cs);
        if (nr < 0 || nc < 0 || b->k == DP_MAXF) return -1;
        if (nr < 2 || nc < 2) continue; // the slice is fixed by its marginals
        int k = b->k++;
        b->y[k] = y, b->r[k][0] = r[0], b->r[k][1] = r[1], b->c[k][0] = c[0], b->c[k][1] = c[1];
        b->rs[k][0] = rs[0], b->rs[k][1] = rs[1], b->c0[k] = cs[0];
        b->lo[k] = fmax(0, cs[0] - rs[1]), b->hi[k] = fmin(rs[0], cs[0]);
    }
    return 0;
}

// I_Q(Y; X0X1) in bits at the free cells t (q: scratch of the table's size).
static double dp_iq(const dp_box *b, const double *t, double *q) {
    const st_dist3 *d = b->d;
    int n = d->n0 * d->n1 * d->ny;
    memcpy(q, d->p, sizeof(double) * (size_t)n);
    for (int k = 0; k < b->k; k++) {
        int y = b->y[k], n1 = d->n1, ny = d->ny;
        const int *r = b->r[k], *c = b->c[k];
        q[(r[0] * n1 + c[0]) * ny + y] = t[k], q[(r[0] * n1 + c[1]) * ny + y] = b->rs[k][0] - t[k];
        q[(r[1] * n1 + c[0]) * ny + y] = b->c0[k] - t[k];
        q[(r[1] * n1 + c[1]) * ny + y] = b->rs[k][1] - b->c0[k] + t[k];
    }
    double py[16] = {0}, s = 0;
    for (int i = 0; i < n; i++) q[i] = fmax(q[i], 0), py[i % d->ny] += q[i];
    for (int ab = 0; ab < d->n0 * d->n1; ab++) {
        double qab = 0;
        for (int c = 0; c < d->ny; c++) qab += q[ab * d->ny + c];
        for (int c = 0; c < d->ny; c++) {
            double v = q[ab * d->ny + c];
            if (v > 0) s += v * log2(v / (qab * py[c]));
        }
    }
    return s;
}

// Golden-section minimum of I_Q along t0 + s dir, s in [0, smax]; leaves t at the best point.
static double dp_line(const dp_box *b, const double *t0, const double *dir, double smax, double *t,
                      double *q) {
    double a = 0, z = smax;
    for (int g = 0; g < 70; g++) {
        double m[2] = {z - 0.618033988749895 * (z - a), a + 0.618033988749895 * (z - a)}, f[2];
        for (int j = 0; j < 2; j++) {
            for (int k = 0; k < b->k; k++) t[k] = fmin(fmax(t0[k] + m[j] * dir[k], b->lo[k]), b->hi[k]);
            f[j] = dp_iq(b, t, q);
        }
        if (f[0] < f[1])
            z = m[1];
        else
            a = m[0];
    }
    // the ends too: the minimum often sits on the boundary of Delta_P
    double ends[3] = {(a + z) / 2, 0, smax}, best = INFINITY, arg = 0;
    for (int e = 0; e < 3; e++) {
        for (int k = 0; k < b->k; k++) t[k] = fmin(fmax(t0[k] + ends[e] * dir[k], b->lo[k]), b->hi[k]);
        double v = dp_iq(b, t, q);
        if (v < best) best = v, arg = ends[e];
    }
    for (int k = 0; k < b->k; k++) t[k] = fmin(fmax(t0[k] + arg * dir[k], b->lo[k]), b->hi[k]);
    return best;
}

// Cyclic coordinate line searches, each round followed by a line search along the round's step
// (the pattern move that keeps coordinate descent from zig-zagging in a narrow valley).
static double dp_min(const dp_box *b, double *q) {
    double t[DP_MAXF], t0[DP_MAXF], start[DP_MAXF], dir[DP_MAXF], prev = INFINITY, f = 0;
    for (int k = 0; k < b->k; k++) t[k] = (b->lo[k] + b->hi[k]) / 2;
    for (int round = 0; round < 2000; round++) {
        memcpy(start, t, sizeof(t));
        for (int k = 0; k < b->k; k++) {
            memcpy(t0, t, sizeof(t)), memset(dir, 0, sizeof(dir));
            t0[k] = b->lo[k], dir[k] = 1;
            dp_line(b, t0, dir, b->hi[k] - b->lo[k], t, q);
        }
        double smax = 1e9;
        for (int k = 0; k < b->k; k++) {
            dir[k] = t[k] - start[k];
            if (dir[k] > 0) smax = fmin(smax, (b->hi[k] - start[k]) / dir[k]);
            if (dir[k] < 0) smax = fmin(smax, (b->lo[k] - start[k]) / dir[k]);
        }
        f = dp_iq(b, t, q);
        if (smax > 1 && smax < 1e9) f = fmin(f, dp_line(b, start, dir, smax, t, q));
        if (prev - f < 1e-16) break;
        prev = f;
    }
    return f;
}

// BROJA against the search: min I_Q = I_P - Syn, and Q* in Delta_P.
static void expect_search(const st_dist3 *d, const char *name) {
    dp_box b;
    double q[1024];
    assert_int_equal(dp_box_make(d, &b), 0);
    double best = dp_min(&b, q);
    st_pid o;
    assert_int_equal(st_pid_discrete(d, ST_PID_BROJA, 0, &o), 0);
    assert_true(isfinite(o.red) && isfinite(o.unq0) && isfinite(o.unq1) && isfinite(o.syn));
    if (fabs(o.i01 - o.syn - best) > 1e-6)
        fail_msg("%s: BROJA min I_Q %.9f, search %.9f", name, o.i01 - o.syn, best);
    if (o.unq0 < -1e-9 || o.unq1 < -1e-9 || o.syn < -1e-9)
        fail_msg("%s: negative atom %g %g %g", name, o.unq0, o.unq1, o.syn);
    assert_int_equal(st_broja_q(d, 0, q, NULL), 0);
    for (int y = 0; y < d->ny; y++) {
        for (int a = 0; a < d->n0; a++) {
            double sq = 0, sp = 0;
            for (int x1 = 0; x1 < d->n1; x1++) sq += q[(a * d->n1 + x1) * d->ny + y], sp += cell(d, a, x1, y);
            assert_float_equal(sq, sp, 1e-12);
        }
        for (int x1 = 0; x1 < d->n1; x1++) {
            double sq = 0, sp = 0;
            for (int a = 0; a < d->n0; a++) sq += q[(a * d->n1 + x1) * d->ny + y], sp += cell(d, a, x1, y);
            assert_float_equal(sq, sp, 1e-12);
        }
    }
}

// BROJA on random 2x2x2 tables against the search.
static void test_broja_vs_search(void **st) {
    (void)st;
    gn_rng r;
    gn_rng_seed(&r, 17, 1);
    for (int trial = 0; trial < 8; trial++) {
        double p[8], s = 0;
        for (int i = 0; i < 8; i++) s += p[i] = 0.05 + gn_rng_uniform(&r);
        for (int i = 0; i < 8; i++) p[i] /= s;
        st_dist3 d = {2, 2, 2, p};
        expect_search(&d, "random");
    }
}

// The bivariate distributions of the PID literature as dit ships them (outcomes "x0 x1 y"), each
// against the search, and the closed forms where they exist:
// - uni, null: Y independent of (X0, X1) -> all 0.
// - simple, dup: X0 = X1 under P, so min I_Q >= max I(Xi;Y) = I_P, reached at Q = P: Syn 0, Red = I(X0;Y).
// - f1, wb1, wb2, imperfect rdn: every y slice has one active row or column, Delta_P = {P}: Syn 0,
//   Red = I0 + I1 - I01 (f1: I0 = 1/2, I1 = 1, I01 = 3/2; wb1: I0 = I1 = log2 3 - 2/3, I01 = log2 3;
//   wb2: I0 = 1/2, I1 = 1, I01 = 3/2; imperfect rdn: I0 = I01 = 1).
// - gband: a shared block bit plus AND inside each block; Delta_P keeps the blocks, so min I_Q =
//   1 + AND's 1.5 - 0.75 log2 3, I0 = I1 = that too: Red = min I_Q, Unq 0, Syn = AND's 1/2.
// - pwu: the free cells t, s of the y = 1, 2 slices meet only in the x = 00 cell, so
//   H_Q(Y|X) = (t + s) h(t / (t + s)) <= 1/2 at t = s = 1/4 (the boundary): min I_Q = 1/2 = I0 = I1.
// - xor-and (Y = (X0 xor X1, X0 and X1)) is sum relabelled: Red 1/2, Syn 1.
// - rdn-unq-xor (X0 = (r, a, b0), X1 = (r, c, b1), Y = (r, a, c, b0 xor b1)): 1, 1, 1, 1.
static void test_broja_dit_set(void **st) {
    (void)st;
    static const struct {
        const char *name, *out[8];
        double pr[8];
    } set[] = {
        {"uni", {"000", "001", "010", "011", "100", "101", "110", "111"}, {0}},
        {"null", {"000", "001", "110", "111"}, {0}},
        {"rdn", {"000", "111"}, {0}},
        {"simple", {"000", "110", "111"}, {0.5, 0.25, 0.25}},
        {"unq1", {"000", "011", "100", "111"}, {0}},
        {"cat", {"000", "011", "102", "113"}, {0}},
        {"xor", {"000", "011", "101", "110"}, {0}},
        {"and", {"000", "010", "100", "111"}, {0}},
        {"or", {"000", "011", "101", "111"}, {0}},
        {"f1", {"002", "010", "102", "111"}, {0}},
        {"reduced or", {"000", "011", "101"}, {0.5, 0.25, 0.25}},
        {"sum", {"000", "011", "101", "112"}, {0}},
        {"xor-and", {"000", "012", "102", "111"}, {0}},
        {"rand", {"000", "010", "011", "100", "101", "111"}, {0.25, 0.125, 0.125, 0.125, 0.125, 0.25}},
        {"wb1", {"000", "011", "102"}, {0}},
        {"wb2", {"000", "011", "111", "102"}, {0}},
        {"wb3", {"000", "110", "011", "111", "012", "102"}, {0}},
        {"imperfect rdn", {"000", "010", "111"}, {0.499, 0.001, 0.5}},
        {"rdn xor", {"000", "011", "101", "110", "222", "233", "323", "332"}, {0}},
        {"prob1", {"000", "001", "010", "011", "100"}, {0}},
        {"prob2", {"000", "010", "021", "101"}, {0}},
        {"diff", {"000", "001", "010", "101"}, {0}},
        {"gband", {"000", "010", "100", "111", "222", "232", "322", "333"}, {0}},
        {"boom", {"001", "002", "020", "121", "202", "212"}, {0}},
        {"not two", {"000", "001", "010", "100", "111"}, {0}},
        {"dup", {"000", "001", "111", "112"}, {0}},
        {"pwu", {"011", "101", "022", "202"}, {0}},
    };
    double buf[1024];
    const double L3 = log2(3.0), AND_RED = 1.5 - 0.75 * L3;
    const double H1 = 0.001 / 0.501, IRDN = 1 + 0.501 * (H1 * log2(H1) + (1 - H1) * log2(1 - H1));
    const double closed[][4] = {{0, 0, 0, 0},
                                {0, 0, 0, 0},
                                {1, 0, 0, 0},
                                {AND_RED, 0, 0, 0},
                                {0, 0, 1, 0},
                                {0, 1, 1, 0},
                                {0, 0, 0, 1},
                                {AND_RED, 0, 0, 0.5},
                                {AND_RED, 0, 0, 0.5},
                                {0, 0.5, 1, 0},
                                {NAN},
                                {0.5, 0, 0, 1},
                                {0.5, 0, 0, 1},
                                {NAN},
                                {L3 - 4.0 / 3, 2.0 / 3, 2.0 / 3, 0},
                                {0, 0.5, 1, 0},
                                {NAN},
                                {IRDN, 1 - IRDN, 0, 0},
                                {1, 0, 0, 1},
                                {NAN},
                                {NAN},
                                {NAN},
                                {1 + AND_RED, 0, 0, 0.5},
                                {NAN},
                                {NAN},
                                {0.5, 0, 0, 0},
                                {0.5, 0, 0, 0.5}};
    _Static_assert(sizeof(set) / sizeof(set[0]) == sizeof(closed) / sizeof(closed[0]), "one row each");
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
        int m = 0;
        while (m < 8 && set[i].out[m]) m++;
        st_dist3 d = dist(set[i].out, set[i].pr[0] > 0 ? set[i].pr : NULL, m, buf);
        expect_search(&d, set[i].name);
        if (!isnan(closed[i][0]))
            expect(&d, ST_PID_BROJA, closed[i][0], closed[i][1], closed[i][2], closed[i][3], 1e-6);
    }
    // rdn-unq-xor: 8 x 8 x 16, 32 equally likely outcomes
    st_dist3 d = {8, 8, 16, buf};
    memset(buf, 0, sizeof(buf));
    for (int v = 0; v < 32; v++) {
        int r = v >> 4 & 1, a = v >> 3 & 1, c = v >> 2 & 1, b0 = v >> 1 & 1, b1 = v & 1;
        buf[((r * 4 + a * 2 + b0) * 8 + r * 4 + c * 2 + b1) * 16 + r * 8 + a * 4 + c * 2 + (b0 ^ b1)] =
            1.0 / 32;
    }
    expect_search(&d, "rdn unq xor");
    expect(&d, ST_PID_BROJA, 1, 1, 1, 1, 1e-6);
}

// §B.4: jointly Gaussian sources, univariate target: MMI exact (nats).
static void test_pid_gauss(void **st) {
    (void)st;
    const size_t n = 200000;
    double *x0 = malloc(sizeof(double) * n), *x1 = malloc(sizeof(double) * n),
           *y = malloc(sizeof(double) * n);
    const double abs_[3][3] = {{1, 1, 1}, {1, 0.5, 1}, {2, 1, 0.5}};
    const double want[3][4] = {{0.2027325541, 0, 0, 0.3465735903},
                               {0.0588915178, 0.2350018146, 0, 0.1115717757},
                               {0.1056545468, 0.6118877158, 0, 0.8047189562}};
    gn_rng r;
    gn_rng_seed(&r, 5, 1);
    for (int c = 0; c < 3; c++) {
        for (size_t i = 0; i < n; i++) {
            x0[i] = gn_rng_normal(&r), x1[i] = gn_rng_normal(&r);
            y[i] = abs_[c][0] * x0[i] + abs_[c][1] * x1[i] + abs_[c][2] * gn_rng_normal(&r);
        }
        st_pid o;
        assert_int_equal(st_pid_gauss(x0, 1, x1, 1, y, 1, n, &o), 0);
        assert_float_equal(o.red, want[c][0], 0.006), assert_float_equal(o.unq0, want[c][1], 0.006);
        assert_float_equal(o.unq1, want[c][2], 0.006), assert_float_equal(o.syn, want[c][3], 0.008);
        if (c == 1) { // KSG-MMI at n = 10^4 within a few x 0.01 nats (spec §B.4)
            st_pid k;
            assert_int_equal(st_pid_ksg(x0, 1, x1, 1, y, 1, 10000, 3, &k), 0);
            assert_float_equal(k.red, want[c][0], 0.03), assert_float_equal(k.unq0, want[c][1], 0.04);
            assert_float_equal(k.syn, want[c][3], 0.05);
        }
    }
    // binned: XOR of two fair coins as continuous values
    for (size_t i = 0; i < 4000; i++) {
        int a = gn_rng_below(&r, 2), b = gn_rng_below(&r, 2);
        x0[i] = a + 0.1 * gn_rng_uniform(&r), x1[i] = b + 0.1 * gn_rng_uniform(&r), y[i] = (a ^ b);
    }
    st_pid o;
    assert_int_equal(st_pid_binned(x0, 1, x1, 1, y, 1, 4000, 2, 0, ST_PID_IMIN, &o), 0);
    assert_float_equal(o.syn, 1, 0.01), assert_float_equal(o.red, 0, 0.01);
    free(x0), free(x1), free(y);
}

// §1.11: pointwise MMI per galaxy, negative values kept; bootstrap CI.
static void test_pid_pointwise(void **st) {
    (void)st;
    double l1[3] = {log(0.2), log(0.01), NAN}, l2[3] = {log(0.05), log(0.04), 0},
           l12[3] = {log(0.3), log(0.02), 0};
    double lp[3] = {log(0.1), log(0.1), log(0.1)}, R[3], U1[3], U2[3], S[3];
    st_pid_pointwise(l1, l2, l12, lp, 3, R, U1, U2, S);
    assert_float_equal(R[0], log(0.5), 1e-12), assert_float_equal(U1[0], log(2.0) - log(0.5), 1e-12);
    assert_float_equal(U2[0], 0, 1e-12), assert_float_equal(S[0], log(3.0) - log(2.0), 1e-12);
    assert_float_equal(R[1], log(0.1), 1e-12); // negative: misinformation kept
    assert_float_equal(S[1], log(0.2) - log(0.4), 1e-12);
    assert_true(isnan(R[2]) && isnan(S[2]));
    double v[400], mean, lo, hi;
    gn_rng r;
    gn_rng_seed(&r, 3, 1);
    for (int i = 0; i < 400; i++) v[i] = gn_rng_normal(&r);
    assert_int_equal(st_bootstrap_mean(v, 400, 2000, 0.68, 9, &mean, &lo, &hi), 0);
    assert_float_equal((hi - lo) / 2, 1 / sqrt(400.0), 0.008); // standard error of the mean
    assert_true(lo < mean && mean < hi);
}

static void test_pid_errors(void **st) {
    (void)st;
    double p[8] = {0.5, 0.5, 0.5, 0, 0, 0, 0, 0};
    st_dist3 d = {2, 2, 2, p};
    st_pid o;
    assert_int_not_equal(st_pid_discrete(&d, ST_PID_IMIN, 0, &o), 0);
    assert_non_null(strstr(gn_errmsg(), "sum to 1.5"));
    p[0] = -0.5, p[1] = 1.0, p[2] = 0.5;
    assert_int_not_equal(st_pid_discrete(&d, ST_PID_IMIN, 0, &o), 0);
    assert_non_null(strstr(gn_errmsg(), "negative"));
    p[0] = NAN;
    assert_int_not_equal(st_pid_discrete(&d, ST_PID_MMI, 0, &o), 0);
    p[0] = 0.5, p[1] = 0.5, p[2] = 0;
    assert_int_not_equal(st_pid_discrete(&d, 9, 0, &o), 0);
    assert_non_null(strstr(gn_errmsg(), "unknown measure"));
}

int main(void) {
    gn_set_threads(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pid_table),       cmocka_unit_test(test_pid_extra),
        cmocka_unit_test(test_broja_vs_search), cmocka_unit_test(test_broja_dit_set),
        cmocka_unit_test(test_pid_gauss),       cmocka_unit_test(test_pid_pointwise),
        cmocka_unit_test(test_pid_errors)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
