// Engine infrastructure: RNG streams, parameter store and initializers, LR
// schedules, gradient clipping, and bit-identical results for a fixed seed
// and thread count.
#define _GNU_SOURCE // sched_setaffinity
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "testutil.h"

static void test_rng(void **st) {
    (void)st;
    gn_rng a, b;
    gn_rng_seed(&a, 42, GN_STREAM_SHUFFLE);
    gn_rng_seed(&b, 42, GN_STREAM_SHUFFLE);
    for (int i = 0; i < 100; i++) assert_true(gn_rng_u64(&a) == gn_rng_u64(&b));
    // saving the state = copying four words; the copy continues identically
    gn_rng saved = a;
    uint64_t next[5];
    for (int i = 0; i < 5; i++) next[i] = gn_rng_u64(&a);
    for (int i = 0; i < 5; i++) assert_true(gn_rng_u64(&saved) == next[i]);
    // streams differ
    gn_rng_seed(&b, 42, GN_STREAM_INIT);
    gn_rng_seed(&a, 42, GN_STREAM_SHUFFLE);
    assert_true(gn_rng_u64(&a) != gn_rng_u64(&b));
    // moments: uniform mean 1/2, var 1/12; normal mean 0, var 1 (n = 2e5: 5-sigma bands)
    const int n = 200000;
    double su = 0, su2 = 0, sn = 0, sn2 = 0;
    for (int i = 0; i < n; i++) {
        double u = gn_rng_uniform(&a), z = gn_rng_normal(&a);
        assert_true(u >= 0 && u < 1);
        su += u, su2 += u * u, sn += z, sn2 += z * z;
    }
    assert_true(fabs(su / n - 0.5) < 5 * sqrt(1.0 / 12 / n));
    assert_true(fabs(su2 / n - su * su / n / n - 1.0 / 12) < 1e-3);
    assert_true(fabs(sn / n) < 5 / sqrt(n));
    assert_true(fabs(sn2 / n - 1) < 5 * sqrt(2.0 / n));
    // below(n): every value, roughly equally often
    int cnt[7] = {0};
    for (int i = 0; i < 70000; i++) cnt[gn_rng_below(&a, 7)]++;
    for (int k = 0; k < 7; k++) assert_in_range(cnt[k], 10000 - 450, 10000 + 450);
    // permutation is a permutation
    uint32_t p[1000];
    int seen[1000] = {0};
    gn_rng_permutation(&a, p, 1000);
    for (int i = 0; i < 1000; i++) seen[p[i]]++;
    for (int i = 0; i < 1000; i++) assert_int_equal(seen[i], 1);
}

static void test_store(void **st) {
    (void)st;
    nn_store s;
    nn_store_init(&s);
    nn_tensor *w = nn_store_param(&s, "fc.weight", NN_SHAPE(300, 200), nn_init_glorot());
    nn_tensor *c = nn_store_param(&s, "conv.weight", NN_SHAPE(64, 32, 3, 3), nn_init_he());
    nn_tensor *b = nn_store_param(&s, "fc.bias", NN_SHAPE(300), nn_init_const(0.1f));
    nn_tensor *rm = nn_store_buffer(&s, "bn.running_var", NN_SHAPE(5), nn_init_const(1));
    assert_non_null(w);
    assert_null(nn_store_param(&s, "fc.weight", NN_SHAPE(1), nn_init_const(0))); // duplicate
    assert_non_null(strstr(gn_errmsg(), "duplicate"));
    assert_int_equal(nn_store_finalize(&s), 0);
    assert_null(nn_store_param(&s, "late", NN_SHAPE(1), nn_init_const(0)));
    // one slab: views are inside it, in order, 64-byte aligned
    assert_true(w->data == s.data);
    assert_true(c->data > w->data && b->data > c->data && b->data + b->n <= s.data + s.n_param_floats);
    assert_true(((uintptr_t)c->data & 63) == 0 && ((uintptr_t)b->data & 63) == 0);
    assert_true(w->grad == s.grad && c->grad - s.grad == c->data - s.data);
    assert_int_equal(s.n_param_values, 300 * 200 + 64 * 32 * 9 + 300);
    assert_ptr_equal(nn_store_find(&s, "bn.running_var"), rm);
    gn_rng r;
    gn_rng_seed(&r, 3, GN_STREAM_INIT);
    nn_store_reset_values(&s, &r);
    // Glorot-uniform: |w| <= sqrt(6/(in+out)), variance limit^2/3
    double lim = sqrt(6.0 / 500), var = 0;
    for (size_t i = 0; i < w->n; i++) {
        assert_true(fabs(w->data[i]) <= lim);
        var += (double)w->data[i] * w->data[i];
    }
    assert_true(fabs(var / w->n / (lim * lim / 3) - 1) < 0.02);
    // He-normal: std sqrt(2/fan_in), fan_in = 32*3*3
    var = 0;
    for (size_t i = 0; i < c->n; i++) var += (double)c->data[i] * c->data[i];
    assert_true(fabs(sqrt(var / c->n) / sqrt(2.0 / 288) - 1) < 0.02);
    assert_float_equal(b->data[299], 0.1f, 0);
    assert_float_equal(rm->data[4], 1.0f, 0);
    nn_store_free(&s);
}

// Each initializer's moments against its formula: mean 0, the variance (uniform: bound^2 / 3), the
// bound of the uniform ones and half of their mass inside half the bound.
static void check_init(nn_init in, int ndim, const int *shape, double var_want, double bound) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *x = malloc(sizeof(float) * n);
    gn_rng r;
    gn_rng_seed(&r, 11, GN_STREAM_INIT);
    nn_init_fill(x, n, in, ndim, shape, &r);
    double m = 0, v = 0, inside = 0;
    for (size_t i = 0; i < n; i++) m += x[i], v += (double)x[i] * x[i];
    m /= (double)n, v /= (double)n;
    assert_true(fabs(m) < 4 * sqrt(var_want / (double)n));
    if (fabs(v / var_want - 1) > 0.03) fail_msg("init kind %d: variance %g, want %g", (int)in.kind, v, var_want);
    for (size_t i = 0; bound > 0 && i < n; i++) {
        assert_true(fabs(x[i]) <= bound);
        inside += fabs(x[i]) <= bound / 2;
    }
    if (bound > 0) assert_float_equal(inside / (double)n, 0.5, 0.02);
    free(x);
}

static void test_initializers(void **st) {
    (void)st;
    // PyTorch Linear (out 256, in 128): weights and biases U(+-1/sqrt(128))
    check_init(nn_init_torch(0), 2, (int[]){256, 128}, 1.0 / (3 * 128.0), 1 / sqrt(128.0));
    check_init(nn_init_torch(128), 1, (int[]){20000}, 1.0 / (3 * 128.0), 1 / sqrt(128.0));
    // PyTorch Conv2d (64, 32, 3, 3): fan_in 288
    check_init(nn_init_torch(0), 4, (int[]){64, 32, 3, 3}, 1.0 / (3 * 288.0), 1 / sqrt(288.0));
    // torchvision ResNet convs: N(0, 2 / fan_out), fan_out = 64 * 9
    check_init(nn_init_he_out(), 4, (int[]){64, 32, 3, 3}, 2.0 / 576, 0);
    check_init(nn_init_he(), 4, (int[]){64, 32, 3, 3}, 2.0 / 288, 0);
    check_init(nn_init_glorot(), 2, (int[]){300, 200}, 6.0 / 500 / 3, sqrt(6.0 / 500));
}

static void test_schedules(void **st) {
    (void)st;
    nn_sched c = {.kind = NN_SCHED_CONST, .base_lr = 0.1f};
    assert_float_equal(nn_sched_lr(&c, 12345), 0.1f, 0);
    // the paper's drop 1e-4 -> 2e-5 at 60k (explicit values)
    nn_sched p = {.kind = NN_SCHED_STEP, .base_lr = 1e-4f, .n_drops = 1, .drop_steps = {60000},
                  .drop_values = {2e-5f}, .use_values = 1};
    assert_float_equal(nn_sched_lr(&p, 59999), 1e-4f, 0);
    assert_float_equal(nn_sched_lr(&p, 60000), 2e-5f, 0);
    nn_sched f = {.kind = NN_SCHED_STEP, .base_lr = 1.0f, .n_drops = 2, .drop_steps = {10, 20}, .factor = 0.1f};
    assert_float_equal(nn_sched_lr(&f, 9), 1.0f, 1e-7);
    assert_float_equal(nn_sched_lr(&f, 10), 0.1f, 1e-7);
    assert_float_equal(nn_sched_lr(&f, 25), 0.01f, 1e-7);
    nn_sched cs = {.kind = NN_SCHED_COSINE, .base_lr = 1.0f, .warmup = 10, .total = 110, .min_lr = 0.0f};
    assert_float_equal(nn_sched_lr(&cs, 0), 0.1f, 1e-7);  // warm-up 1/10
    assert_float_equal(nn_sched_lr(&cs, 9), 1.0f, 1e-7);  // end of warm-up
    assert_float_equal(nn_sched_lr(&cs, 10), 1.0f, 1e-7); // cosine starts at the top
    assert_float_equal(nn_sched_lr(&cs, 60), 0.5f, 1e-6); // half way
    assert_float_equal(nn_sched_lr(&cs, 110), 0.0f, 1e-7);
    // Chu et al.: lr = 1e-4 cos(n / 200), n the epoch
    nn_sched ch = {.kind = NN_SCHED_EPOCH_COS, .base_lr = 1e-4f, .steps_per_epoch = 50, .period = 200};
    assert_float_equal(nn_sched_lr(&ch, 49), 1e-4f, 1e-12);
    assert_float_equal(nn_sched_lr(&ch, 100 * 50), 1e-4f * cosf(0.5f), 1e-12);
    assert_float_equal(nn_sched_lr(&ch, 200 * 50), 1e-4f * cosf(1.0f), 1e-12);
}

static void test_clip(void **st) {
    (void)st;
    nn_store s;
    nn_store_init(&s);
    nn_tensor *a = nn_store_param(&s, "a", NN_SHAPE(2), nn_init_const(0));
    nn_tensor *b = nn_store_param(&s, "b", NN_SHAPE(1), nn_init_const(0));
    nn_store_finalize(&s);
    a->grad[0] = 3, a->grad[1] = 0, b->grad[0] = 4; // norm 5
    assert_float_equal(nn_clip_grad_norm(&s, 10), 5, 1e-6);
    assert_float_equal(b->grad[0], 4, 0); // under the limit: untouched
    assert_float_equal(nn_clip_grad_norm(&s, 1), 5, 1e-6);
    assert_float_equal(a->grad[0], 0.6f, 1e-6);
    assert_float_equal(b->grad[0], 0.8f, 1e-6);
    assert_float_equal(nn_grad_norm(&s), 1, 1e-5);
    nn_store_free(&s);
}

// A conv/bn/pool/linear forward+backward on a batch big enough for the
// parallel paths; returns the CRC of all parameter gradients and the output.
static uint32_t run_once(int threads) {
    gn_set_threads(threads);
    nn_store s;
    nn_store_init(&s);
    nn_conv c1, c2;
    nn_bn bn;
    nn_dense fc;
    nn_conv_make(&c1, &s, "c1", 3, 16, 3, 1, -1, 1, nn_init_he(), nn_init_const(0));
    nn_bn_make(&bn, &s, "bn", 16);
    nn_conv_make(&c2, &s, "c2", 16, 32, 3, 2, 1, 0, nn_init_he(), nn_init_const(0));
    nn_dense_make(&fc, &s, "fc", 32, 5, 1, nn_init_glorot(), nn_init_const(0.1f));
    nn_store_finalize(&s);
    gn_rng r;
    gn_rng_seed(&r, 9, GN_STREAM_INIT);
    nn_store_reset_values(&s, &r);
    nn_ctx c;
    nn_ctx_init(&c, 16u << 20);
    float *x = malloc(sizeof(float) * 16 * 3 * 32 * 32);
    tu_randn(x, 16 * 3 * 32 * 32, 1, 5);
    nn_tensor *xt = nn_tensor_from(&c, NN_SHAPE(16, 3, 32, 32), x);
    nn_tensor *h = nn_maxpool2d(&c, nn_relu(&c, nn_bn_fwd(&c, &bn, nn_conv_fwd(&c, &c1, xt))), 2, 2, 2, 2, nn_pad_sym(0));
    h = nn_dropout(&c, nn_relu(&c, nn_conv_fwd(&c, &c2, h)), 0.2f);
    nn_tensor *out = nn_dense_fwd(&c, &fc, nn_global_avgpool(&c, h));
    nn_tensor *loss = nn_cross_entropy(&c, out, (int32_t[]){0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0});
    assert_non_null(loss);
    assert_int_equal(nn_backward(&c, loss), 0);
    uint32_t crc = (uint32_t)crc32(0, (unsigned char *)s.grad, (uInt)(s.n_param_floats * 4));
    crc = (uint32_t)crc32(crc, (unsigned char *)out->data, (uInt)(out->n * 4));
    free(x);
    nn_ctx_free(&c);
    nn_store_free(&s);
    return crc;
}

static void test_determinism(void **st) {
    (void)st;
    uint32_t a = run_once(2), b = run_once(2), c1 = run_once(1), c2 = run_once(1);
    assert_true(a == b);
    assert_true(c1 == c2);
    gn_set_threads(0);
}

// The default thread count: the cores of the affinity mask, a cgroup quota in whole cores, MPI ranks
// sharing an unbound node.
static void test_threads(void **st) {
    (void)st;
    assert_int_equal(gn_cpu_quota("max 100000"), 0);
    assert_int_equal(gn_cpu_quota("150000 100000\n"), 2);
    assert_int_equal(gn_cpu_quota("200000 100000"), 2);
    assert_int_equal(gn_cpu_quota("50000 100000"), 1);
    assert_int_equal(gn_cpu_quota(""), 0);
    assert_int_equal(gn_cpu_quota("junk"), 0);
    assert_int_equal(gn_cpu_quota(NULL), 0);
    cpu_set_t all, one;
    assert_int_equal(sched_getaffinity(0, sizeof all, &all), 0);
    int base = gn_default_threads(), first = 0;
    assert_true(base >= 1 && base <= CPU_COUNT(&all));
    while (!CPU_ISSET(first, &all)) first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0); // as taskset -c, or Slurm's binding
    assert_int_equal(gn_default_threads(), 1);
    assert_int_equal(sched_setaffinity(0, sizeof all, &all), 0);
    assert_int_equal(gn_default_threads(), base);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1); // two unbound ranks on this node share its cores
    assert_int_equal(gn_default_threads(), base == online && base >= 2 ? base / 2 : base);
    unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng),  cmocka_unit_test(test_store),       cmocka_unit_test(test_initializers), cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_clip), cmocka_unit_test(test_determinism), cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
