// NPY/NPZ: round trips for every dtype, byte-identical rewrites, numpy-written
// archives (zip64 local headers, deflate), numpy.load on ours, and a clear
// error — never a crash — for truncated, corrupt or malformed files and for a
// write that runs out of space (the previous file survives).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static void test_npy_roundtrip(void **st) {
    (void)st;
    float f[6] = {1.5f, -2, 3e-8f, 0, 1e30f, -0.25f};
    double d[3] = {1.0 / 3, -1e-300, 42};
    int32_t i4[4] = {-1, 0, 7, 2147483647};
    int64_t i8[2] = {-5, 1LL << 40};
    uint8_t u1[5] = {0, 1, 127, 128, 255};
    struct {
        io_dtype t;
        int nd;
        int64_t shape[3];
        const void *data;
    } cases[] = {
        {IO_F32, 2, {2, 3}, f}, {IO_F64, 1, {3}, d},  {IO_I32, 3, {1, 2, 2}, i4},
        {IO_I64, 1, {2}, i8},   {IO_U8, 1, {5}, u1}, {IO_F32, 0, {0}, f}, // 0-d scalar
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        io_array a = io_array_view(cases[k].t, cases[k].nd, cases[k].shape, cases[k].data), b;
        assert_int_equal(io_npy_write(tu_tmp("a.npy"), &a), 0);
        assert_int_equal(io_npy_read(tu_tmp("a.npy"), &b), 0);
        assert_int_equal(b.dtype, a.dtype);
        assert_int_equal(b.ndim, a.ndim);
        for (int i = 0; i < a.ndim; i++) assert_int_equal(b.shape[i], a.shape[i]);
        assert_memory_equal(b.data, a.data, a.n * io_dtype_size(a.dtype));
        io_array_free(&b);
    }
}

static void write_sample(const char *p, int compress) {
    io_npz_writer *w = io_npz_create(p, compress);
    assert_non_null(w);
    float big[1000];
    for (int i = 0; i < 1000; i++) big[i] = (float)(i % 17) * 0.5f;
    int32_t lab[3] = {3, 1, 4};
    int64_t s3[1] = {3};
    io_array a = io_array_view(IO_I32, 1, s3, lab);
    assert_int_equal(io_npz_add_f32(w, "param.conv1.weight", NN_SHAPE(10, 100), big), 0);
    assert_int_equal(io_npz_add(w, "labels", &a), 0);
    assert_int_equal(io_npz_close(w), 0);
}

static void test_npz_roundtrip(void **st) {
    (void)st;
    for (int compress = 0; compress < 2; compress++) {
        write_sample(tu_tmp("a.npz"), compress);
        io_npz z;
        assert_int_equal(io_npz_read(tu_tmp("a.npz"), &z), 0);
        assert_int_equal(z.n, 2);
        const io_array *w = io_npz_get(&z, "param.conv1.weight");
        assert_non_null(w);
        assert_int_equal(w->ndim, 2);
        assert_int_equal(w->shape[1], 100);
        assert_float_equal(((float *)w->data)[999], (999 % 17) * 0.5f, 0);
        assert_int_equal(((int32_t *)io_npz_get(&z, "labels")->data)[2], 4);
        assert_null(io_npz_get(&z, "missing"));
        io_npz_free(&z);
    }
    // same arrays -> byte-identical file (fixed timestamps)
    unsigned char *b1, *b2;
    size_t n1, n2;
    write_sample(tu_tmp("b.npz"), 1);
    write_sample(tu_tmp("c.npz"), 1);
    assert_int_equal(io_read_file(tu_tmp("b.npz"), &b1, &n1), 0);
    assert_int_equal(io_read_file(tu_tmp("c.npz"), &b2, &n2), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
}

static void test_numpy_written(void **st) {
    (void)st;
    // np.savez (stored, zip64 local extra fields) and np.savez_compressed (deflate)
    io_npz z;
    assert_int_equal(io_npz_read(tu_data("golden_net.npz"), &z), 0);
    const io_array *x = io_npz_get(&z, "x");
    assert_non_null(x);
    assert_int_equal(x->ndim, 4);
    assert_int_equal(x->shape[1], 3);
    io_npz_free(&z);
    assert_int_equal(io_npz_read(tu_data("golden_ops.npz"), &z), 0);
    assert_true(z.n > 30);
    io_npz_free(&z);
}

static const char *find_numpy_python(void) {
    static const char *cands[] = {"/usr/bin/python3", "python3"};
    for (int i = 0; i < 2; i++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) return cands[i];
    }
    return NULL;
}

static void test_numpy_loads_ours(void **st) {
    (void)st;
    const char *py = find_numpy_python();
    if (!py) {
        printf("    python3-numpy not present: skipped\n");
        skip();
    }
    for (int compress = 0; compress < 2; compress++) {
        write_sample(tu_tmp("np.npz"), compress);
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "%s -c \"import numpy as np, sys; z = np.load('%s'); w = z['param.conv1.weight']; "
                 "sys.exit(0 if w.dtype == np.float32 and w.shape == (10, 100) and w[9, 99] == (999 %% 17) * 0.5 "
                 "and list(z['labels']) == [3, 1, 4] and z['labels'].dtype == np.int32 else 1)\"",
                 py, tu_tmp("np.npz"));
        assert_int_equal(system(cmd), 0);
    }
    float v[3] = {1, 2, 3};
    int64_t s[1] = {3};
    io_array a = io_array_view(IO_F32, 1, s, v);
    assert_int_equal(io_npy_write(tu_tmp("v.npy"), &a), 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -c \"import numpy as np, sys; sys.exit(0 if list(np.load('%s')) == [1, 2, 3] else 1)\"",
             py, tu_tmp("v.npy"));
    assert_int_equal(system(cmd), 0);
}

static void write_bytes(const char *p, const unsigned char *b, size_t n) {
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void expect_error(const char *p, const char *needle) {
    io_npz z;
    int rc = io_npz_read(p, &z);
    if (rc == 0) fail_msg("%s: read succeeded, expected an error containing '%s'", p, needle);
    const char *m = gn_errmsg();
    if (!strstr(m, p)) fail_msg("error does not name the file: %s", m);
    if (needle && !strstr(m, needle)) fail_msg("error '%s' lacks '%s'", m, needle);
}

static void test_corrupt_npz(void **st) {
    (void)st;
    write_sample(tu_tmp("good.npz"), 1);
    unsigned char *b;
    size_t n;
    assert_int_equal(io_read_file(tu_tmp("good.npz"), &b, &n), 0);
    // every truncation length gives an error, never a crash
    for (size_t cut = 0; cut < n; cut += (cut < 64 ? 1 : 37)) {
        write_bytes(tu_tmp("cut.npz"), b, cut);
        expect_error(tu_tmp("cut.npz"), NULL);
    }
    // a flipped bit inside the first member's data: deflate error or CRC mismatch
    unsigned char *c = malloc(n);
    memcpy(c, b, n);
    c[30 + strlen("param.conv1.weight.npy") + 40] ^= 0x10;
    write_bytes(tu_tmp("flip.npz"), c, n);
    expect_error(tu_tmp("flip.npz"), "param.conv1.weight");
    free(c);
    // stored archive with a flipped data byte: must be the CRC
    write_sample(tu_tmp("stored.npz"), 0);
    free(b);
    assert_int_equal(io_read_file(tu_tmp("stored.npz"), &b, &n), 0);
    b[30 + strlen("param.conv1.weight.npy") + 200] ^= 0x01;
    write_bytes(tu_tmp("stored_flip.npz"), b, n);
    expect_error(tu_tmp("stored_flip.npz"), "CRC");
    free(b);
    write_bytes(tu_tmp("text.npz"), (const unsigned char *)"hello, not a zip at all, just some text", 39);
    expect_error(tu_tmp("text.npz"), "not a zip");
    expect_error(tu_tmp("does_not_exist.npz"), "cannot open");
}

// An NPY file with the given header dict and data_bytes zero bytes of data.
static void write_npy_raw(const char *p, const char *dict, size_t data_bytes) {
    unsigned char buf[512] = {0};
    size_t hl = strlen(dict);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)hl;
    memcpy(buf + 10, dict, hl);
    write_bytes(p, buf, 10 + hl + data_bytes);
}

static void expect_npy_error(const char *p, const char *needle) {
    io_array a;
    assert_int_not_equal(io_npy_read(p, &a), 0);
    if (!strstr(gn_errmsg(), needle) || !strstr(gn_errmsg(), p)) fail_msg("error '%s' lacks '%s' or the file", gn_errmsg(), needle);
}

static void test_bad_npy(void **st) {
    (void)st;
    write_npy_raw(tu_tmp("short.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 20);
    expect_npy_error(tu_tmp("short.npy"), "truncated");
    write_npy_raw(tu_tmp("cplx.npy"), "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8);
    expect_npy_error(tu_tmp("cplx.npy"), "<c8");
    write_npy_raw(tu_tmp("fort.npy"), "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16);
    expect_npy_error(tu_tmp("fort.npy"), "Fortran");
    write_npy_raw(tu_tmp("noshape.npy"), "{'descr': '<f4', 'fortran_order': False, }", 16);
    expect_npy_error(tu_tmp("noshape.npy"), "shape");
    write_bytes(tu_tmp("junk.npy"), (const unsigned char *)"junk", 4);
    expect_npy_error(tu_tmp("junk.npy"), "magic");
}

// A write that runs out of space (RLIMIT_FSIZE stands in for a full disk):
// a clear error, no temp file left behind, and the previous archive intact.
static void test_full_disk(void **st) {
    (void)st;
    write_sample(tu_tmp("keep.npz"), 0);
    unsigned char *before, *after;
    size_t nb, na;
    assert_int_equal(io_read_file(tu_tmp("keep.npz"), &before, &nb), 0);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 2048;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    io_npz_writer *w = io_npz_create(tu_tmp("keep.npz"), 0);
    assert_non_null(w);
    float big[4096] = {0};
    int rc = io_npz_add_f32(w, "big", NN_SHAPE(4096), big);
    if (rc == 0) rc = io_npz_close(w);
    else io_npz_abort(w);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(gn_errmsg(), "keep.npz"));
    assert_int_equal(io_read_file(tu_tmp("keep.npz"), &after, &na), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(after, before, nb);
    free(before);
    free(after);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", tu_tmp("keep.npz"), (long)getpid());
    struct stat sb;
    assert_int_not_equal(stat(tmp, &sb), 0);
    // and a directory that does not exist
    io_npz_writer *w2 = io_npz_create("/nonexistent_dir_galnn/x.npz", 0);
    assert_null(w2);
    assert_non_null(strstr(gn_errmsg(), "/nonexistent_dir_galnn/x.npz"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_roundtrip), cmocka_unit_test(test_npz_roundtrip),
        cmocka_unit_test(test_numpy_written), cmocka_unit_test(test_numpy_loads_ours),
        cmocka_unit_test(test_corrupt_npz),   cmocka_unit_test(test_bad_npy),
        cmocka_unit_test(test_full_disk),
    };
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
