// Shared test helpers: cmocka includes, closeness checks, the finite-difference
// gradient checker, and reference-file access.
#ifndef TESTUTIL_H
#define TESTUTIL_H

// cmocka needs these first
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// clang-format off
#include <cmocka.h>
// clang-format on

#include "../io/npy.h"
#include "../nn/nn.h"

// max |a - b| / max(max |b|, floor): error relative to the reference's scale.
double tu_rel_err(const float *a, const float *b, size_t n, double floor);
// Fail (naming `what`) unless tu_rel_err <= tol; returns the error.
double tu_check_close(const char *what, const float *got, const float *want, size_t n, double tol);

// Reference array `name` from an NPZ (fails the test if missing), as float32.
const io_array *tu_npz_get(const io_npz *z, const char *name);
float *tu_npz_f32(const io_npz *z, const char *name); // caller frees
// Path to tests/data/<file> (tests run from the project root).
const char *tu_data(const char *file);

// Finite-difference gradient check.
// Inputs are described by shape and initial values; the function builds the
// graph from arena tensors made from them each evaluation. The checked scalar
// is L = sum_i w_i * out_i with fixed random weights w (computed in double), so
// every output element contributes. Central differences with step h in
// float32; pass when |analytic - numeric| <= atol + rtol * |numeric| for every
// element of every input that requires grad (defaults: h 1e-2, rtol 1e-3,
// atol 2e-4; tests/test_grad.c says why).
typedef struct tu_input {
    int ndim;
    int shape[NN_MAXDIM];
    float *data; // owned by the caller
    int grad;    // check the gradient w.r.t. this input
} tu_input;

typedef nn_tensor *(*tu_fn)(nn_ctx *c, nn_tensor **in, void *user);

typedef struct tu_gc_opts {
    double h, rtol, atol;
    int training; // ctx->training during the check
    int winograd; // nonzero: ctx->winograd during the check (-1: im2col); 0: the engine's default
} tu_gc_opts;

extern const tu_gc_opts TU_GC_DEFAULT;

// Returns the worst |a - n| / (atol + rtol |n|) seen (<= 1 means pass) and
// fails the test when above 1.
double tu_gradcheck(const char *what, tu_fn f, void *user, int nin, tu_input *in, tu_gc_opts o);

// Fill with N(0, s^2) / uniform [lo, hi) values from a seeded stream.
void tu_randn(float *x, size_t n, float s, uint64_t seed);
void tu_uniform(float *x, size_t n, float lo, float hi, uint64_t seed);
// Values bounded away from zero: sign random, |x| in [lo, hi).
void tu_away_from_zero(float *x, size_t n, float lo, float hi, uint64_t seed);
tu_input tu_in(int ndim, const int *shape, float *data, int grad);

// A fresh temporary directory for a test group (cmocka setup/teardown), and
// paths inside it (8 rotating buffers: valid until 8 more calls).
int tu_tmpdir_setup(void **state);
int tu_tmpdir_teardown(void **state);
const char *tu_tmp(const char *file);
const char *tu_tmpdir(void);

// True when running under the sanitizer pass (GALNN_SAN set): long training
// tests may use smaller problems there.
int tu_sanitized(void);

#endif
