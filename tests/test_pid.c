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

// A table from outcome strings "x0 x1 y" (digits), uniform unless pr given.
static st_dist3 dist(const char *const *out, const double *pr, int m, double *buf) {
    st_dist3 d = {0, 0, 0, buf};
    for (int i = 0; i < m; i++) {
        int a = out[i][0] - '0', b = out[i][1] - '0', c = out[i][2] - '0';
        d.n0 = a + 1 > d.n0 ? a + 1 : d.n0, d.n1 = b + 1 > d.n1 ? b + 1 : d.n1, d.ny = c + 1 > d.ny ? c + 1 : d.ny;
    }
    memset(buf, 0, sizeof(double) * (size_t)d.n0 * d.n1 * d.ny);
    for (int i = 0; i < m; i++) {
        int a = out[i][0] - '0', b = out[i][1] - '0', c = out[i][2] - '0';
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
    const char *XOR[] = {"000", "011", "101", "110"}, *AND[] = {"000", "010", "100", "111"}, *RDN[] = {"000", "111"};
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
    const char *RX[] = {"000", "011", "101", "110", "222", "233", "323", "332"}, *SUM[] = {"000", "011", "101", "112"};
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

// BROJA on random 2x2x2 tables: each y slice of Delta_P has one free cell, so
// min I_Q(Y;X0X1) is a 2-D convex problem that a fine grid plus golden
// section refinement solves independently.
static double iq(const double *p, double t0, double t1) {
    // slices y: q = [[a - t, t], [c - a + t, ...]] parameterised by the (0,1) cell
    double q[8];
    double ts[2] = {t0, t1};
    for (int c = 0; c < 2; c++) {
        double r0 = p[0 * 2 + c] + p[(0 * 2 + 1) * 2 + c], c0 = p[0 * 2 + c] + p[(1 * 2 + 0) * 2 + c];
        double tot = r0 + p[(1 * 2 + 0) * 2 + c] + p[(1 * 2 + 1) * 2 + c];
        double q01 = ts[c], q00 = r0 - q01, q10 = c0 - q00, q11 = tot - q00 - q01 - q10;
        q[(0 * 2 + 0) * 2 + c] = q00, q[(0 * 2 + 1) * 2 + c] = q01, q[(1 * 2 + 0) * 2 + c] = q10, q[(1 * 2 + 1) * 2 + c] = q11;
    }
    double py[2] = {0, 0}, s = 0;
    for (int i = 0; i < 8; i++) {
        if (q[i] < -1e-15) return INFINITY;
        py[i % 2] += q[i];
    }
    for (int ab = 0; ab < 4; ab++) {
        double qab = q[ab * 2] + q[ab * 2 + 1];
        for (int c = 0; c < 2; c++)
            if (q[ab * 2 + c] > 0) s += q[ab * 2 + c] * log2(q[ab * 2 + c] / (qab * py[c]));
    }
    return s;
}

static void test_broja_vs_search(void **st) {
    (void)st;
    gn_rng r;
    gn_rng_seed(&r, 17, 1);
    for (int trial = 0; trial < 6; trial++) {
        double p[8], s = 0;
        for (int i = 0; i < 8; i++) s += p[i] = 0.05 + gn_rng_uniform(&r);
        for (int i = 0; i < 8; i++) p[i] /= s;
        // feasible range of the free cell in each slice
        double lo[2], hi[2];
        for (int c = 0; c < 2; c++) {
            double r0 = p[0 * 2 + c] + p[(0 * 2 + 1) * 2 + c], c1 = p[(0 * 2 + 1) * 2 + c] + p[(1 * 2 + 1) * 2 + c];
            double tot = r0 + p[(1 * 2 + 0) * 2 + c] + p[(1 * 2 + 1) * 2 + c];
            lo[c] = fmax(0, r0 + c1 - tot), hi[c] = fmin(r0, c1);
        }
        double best = INFINITY, b0 = 0, b1 = 0;
        for (int i = 0; i <= 400; i++)
            for (int j = 0; j <= 400; j++) {
                double t0 = lo[0] + (hi[0] - lo[0]) * i / 400, t1 = lo[1] + (hi[1] - lo[1]) * j / 400, v = iq(p, t0, t1);
                if (v < best) best = v, b0 = t0, b1 = t1;
            }
        double w0 = (hi[0] - lo[0]) / 200, w1 = (hi[1] - lo[1]) / 200;
        for (int round = 0; round < 60; round++) { // coordinate-wise golden refinement
            for (int c = 0; c < 2; c++) {
                double a = fmax(lo[c], (c ? b1 : b0) - (c ? w1 : w0)), b = fmin(hi[c], (c ? b1 : b0) + (c ? w1 : w0));
                for (int g = 0; g < 80; g++) {
                    double m1 = b - 0.618033988749895 * (b - a), m2 = a + 0.618033988749895 * (b - a);
                    double f1 = c ? iq(p, b0, m1) : iq(p, m1, b1), f2 = c ? iq(p, b0, m2) : iq(p, m2, b1);
                    if (f1 < f2) b = m2;
                    else a = m1;
                }
                if (c) b1 = (a + b) / 2;
                else b0 = (a + b) / 2;
            }
        }
        best = iq(p, b0, b1);
        st_dist3 d = {2, 2, 2, p};
        st_pid o;
        assert_int_equal(st_pid_discrete(&d, ST_PID_BROJA, 0, &o), 0);
        assert_float_equal(o.i01 - o.syn, best, 1e-7); // min I_Q = I_P - Syn
        // and Q* lies in Delta_P
        double q[8];
        assert_int_equal(st_broja_q(&d, 0, q, NULL), 0);
        for (int a = 0; a < 2; a++)
            for (int c = 0; c < 2; c++) {
                assert_float_equal(q[(a * 2 + 0) * 2 + c] + q[(a * 2 + 1) * 2 + c], p[(a * 2 + 0) * 2 + c] + p[(a * 2 + 1) * 2 + c], 1e-13);
                assert_float_equal(q[(0 * 2 + a) * 2 + c] + q[(1 * 2 + a) * 2 + c], p[(0 * 2 + a) * 2 + c] + p[(1 * 2 + a) * 2 + c], 1e-13);
            }
    }
}

// §B.4: jointly Gaussian sources, univariate target: MMI exact (nats).
static void test_pid_gauss(void **st) {
    (void)st;
    const size_t n = 200000;
    double *x0 = malloc(sizeof(double) * n), *x1 = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n);
    const double abs_[3][3] = {{1, 1, 1}, {1, 0.5, 1}, {2, 1, 0.5}};
    const double want[3][4] = {{0.2027325541, 0, 0, 0.3465735903}, {0.0588915178, 0.2350018146, 0, 0.1115717757},
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
    double l1[3] = {log(0.2), log(0.01), NAN}, l2[3] = {log(0.05), log(0.04), 0}, l12[3] = {log(0.3), log(0.02), 0};
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
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pid_table), cmocka_unit_test(test_pid_extra),
                                       cmocka_unit_test(test_broja_vs_search), cmocka_unit_test(test_pid_gauss),
                                       cmocka_unit_test(test_pid_pointwise), cmocka_unit_test(test_pid_errors)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
