// The data path with real files made here: catalogs (nulls, derived columns,
// splits, malformed tables), every cutout format round-tripping, every reader
// refusing truncated/empty/wrong-magic/wrong-dimension/huge/random files with a
// clear error, the dataset cache (reuse, rebuild on change or corruption,
// skips), the loader (coverage, determinism, exact resume, dihedral group) and
// the mock survey (determinism, thread independence).
#include <fcntl.h>
#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../io/catalog.h"
#include "../io/dataset.h"
#include "../io/image.h"
#include "../io/json.h"
#include "../io/loader.h"
#include "../io/mock.h"
#include "../io/npy.h"
#include "testutil.h"

#include <stb/stb_image_write.h>

static void write_text(const char *p, const char *s) {
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

static void write_bytes(const char *p, const void *b, size_t n) {
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

// ---- catalogs ----

static void test_catalog_csv(void **st) {
    (void)st;
    write_text(tu_tmp("a.csv"), "# a comment line\r\n"
                              "id, mag_g ,mag_r,name,flag\r\n"
                              "g1,18.5,17.9,\"NGC, 1\",1\r\n"
                              "\n"
                              "g2,,17.0,\"say \"\"hi\"\"\",2\r\n"
                              "# another comment\n"
                              "g3,NaN,-9999,x,3\n"
                              "g4,nan,9000.5,y,4\n"
                              "g5,19.25,18.0,z,8999.9\n");
    io_catalog c;
    assert_int_equal(io_catalog_read(tu_tmp("a.csv"), NULL, &c), 0);
    assert_int_equal(c.n_rows, 5);
    assert_int_equal(c.n_cols, 5);
    const double *g = io_catalog_values(&c, "mag_g"), *r = io_catalog_values(&c, "mag_r"), *f = io_catalog_values(&c, "flag");
    assert_non_null(g);
    assert_float_equal(g[0], 18.5, 0);
    assert_true(isnan(g[1]) && isnan(g[2]) && isnan(g[3])); // empty, NaN, nan
    assert_true(isnan(r[2]) && isnan(r[3]));                 // -9999, 9000.5 sentinels
    assert_float_equal(f[4], 8999.9, 1e-9);                 // below the threshold: kept
    assert_int_equal(c.cols[io_catalog_find(&c, "mag_g")].n_null, 3);
    assert_int_equal(c.cols[io_catalog_find(&c, "mag_r")].n_null, 2);
    assert_string_equal(io_catalog_id(&c, 1), "g2");
    assert_string_equal(c.cols[io_catalog_find(&c, "name")].s[0], "NGC, 1");
    assert_string_equal(c.cols[io_catalog_find(&c, "name")].s[1], "say \"hi\"");
    assert_null(io_catalog_values(&c, "name")); // text
    assert_non_null(strstr(gn_errmsg(), "holds text"));
    assert_null(io_catalog_values(&c, "mag_i"));
    assert_non_null(strstr(gn_errmsg(), "no column 'mag_i'"));
    assert_non_null(strstr(gn_errmsg(), "a.csv"));
    assert_null(io_catalog_values(&c, "mag_gg"));
    assert_non_null(strstr(gn_errmsg(), "did you mean 'mag_g'"));
    // derived: colour, null propagation, functions
    assert_int_equal(io_catalog_derive_spec(&c, "g-r = mag_g - mag_r"), 0);
    const double *gr = io_catalog_values(&c, "g-r");
    assert_float_equal(gr[0], 0.6, 1e-12);
    assert_true(isnan(gr[1]) && isnan(gr[2]));
    assert_float_equal(gr[4], 1.25, 1e-12);
    assert_int_equal(io_catalog_derive(&c, "x", "-(mag_r - 2*mag_g) / 4 + pow(2, 3) + log10(100)"), 0);
    assert_float_equal(io_catalog_values(&c, "x")[0], -(17.9 - 37.0) / 4 + 8 + 2, 1e-12);
    assert_int_not_equal(io_catalog_derive(&c, "bad", "mag_g - nosuch"), 0);
    assert_non_null(strstr(gn_errmsg(), "nosuch"));
    assert_int_not_equal(io_catalog_derive(&c, "bad", "mag_g -"), 0);
    assert_int_not_equal(io_catalog_derive(&c, "bad2", "(mag_g"), 0);
    assert_int_not_equal(io_catalog_derive(&c, "g-r", "mag_g"), 0); // exists
    io_catalog_free(&c);
    // whitespace-separated
    write_text(tu_tmp("w.txt"), "id ra  dec\n a1 10.5\t-3\n a2 11 4\n");
    assert_int_equal(io_catalog_read(tu_tmp("w.txt"), NULL, &c), 0);
    assert_int_equal(c.n_rows, 2);
    assert_float_equal(io_catalog_values(&c, "dec")[0], -3, 0);
    io_catalog_free(&c);
}

// Axis units from column names: the conventions of galaxy catalogs, NULL when a name says nothing.
static void test_column_units(void **st) {
    (void)st;
    assert_string_equal(io_column_unit("logmstar"), "log10 M*/Msun");
    assert_string_equal(io_column_unit("logsfr"), "log10 SFR/(Msun/yr)");
    assert_string_equal(io_column_unit("logssfr"), "log10 sSFR/yr^-1");
    assert_string_equal(io_column_unit("mag_r"), "mag");
    assert_string_equal(io_column_unit("magerr_r"), "mag");
    assert_string_equal(io_column_unit("zspec"), "unitless");
    assert_string_equal(io_column_unit("z"), "unitless");
    assert_null(io_column_unit("zeta")); // "z" matches whole names only
    assert_null(io_column_unit("flux_r"));
    assert_null(io_column_unit(NULL));
}

static void test_catalog_errors(void **st) {
    (void)st;
    io_catalog c;
    write_text(tu_tmp("short.csv"), "id,a,b\nx,1,2\ny,3\n");
    assert_int_not_equal(io_catalog_read(tu_tmp("short.csv"), NULL, &c), 0);
    assert_non_null(strstr(gn_errmsg(), "short.csv:3"));
    assert_non_null(strstr(gn_errmsg(), "2 fields, but the header has 3"));
    write_text(tu_tmp("empty.csv"), "# only comments\n\n");
    assert_int_not_equal(io_catalog_read(tu_tmp("empty.csv"), NULL, &c), 0);
    assert_non_null(strstr(gn_errmsg(), "empty catalog"));
    write_text(tu_tmp("dup.csv"), "id,a,a\n");
    assert_int_not_equal(io_catalog_read(tu_tmp("dup.csv"), NULL, &c), 0);
    write_text(tu_tmp("noid.csv"), "name,a\nx,1\n");
    io_catalog_opts o = {0, 1, NULL};
    assert_int_not_equal(io_catalog_read(tu_tmp("noid.csv"), &o, &c), 0);
    assert_non_null(strstr(gn_errmsg(), "no 'id' column"));
    write_text(tu_tmp("dupid.csv"), "id,a\ng1,1\ng2,2\ng1,3\n"); // a galaxy twice: an error naming it
    assert_int_not_equal(io_catalog_read(tu_tmp("dupid.csv"), &o, &c), 0);
    assert_non_null(strstr(gn_errmsg(), "id 'g1' appears twice (data rows 1 and 3)"));
    write_text(tu_tmp("objid.csv"), "objid,a\n1237648702966005915,1\n1237648702966005916,2\n"); // SDSS style
    io_catalog_opts oo = {0, 1, "objid"};
    assert_int_equal(io_catalog_read(tu_tmp("objid.csv"), &oo, &c), 0);
    assert_string_equal(io_catalog_id(&c, 1), "1237648702966005916"); // ids are text: no float rounding
    io_catalog_free(&c);
    assert_int_not_equal(io_catalog_read(tu_tmp("objid.csv"), &o, &c), 0); // no `id` column
    assert_non_null(strstr(gn_errmsg(), "--id-column"));
    write_text(tu_tmp("lup.csv"), "id,f\ng1,0\ng2,3\n"); // asinh in derived columns (luptitudes)
    assert_int_equal(io_catalog_read(tu_tmp("lup.csv"), &o, &c), 0);
    assert_int_equal(io_catalog_derive(&c, "mu", "22.5 - 2.5 / ln(10) * (asinh(f / 2) + ln(1))"), 0);
    assert_float_equal(io_catalog_values(&c, "mu")[0], 22.5, 1e-12);
    assert_float_equal(io_catalog_values(&c, "mu")[1], 22.5 - 2.5 / log(10) * asinh(1.5), 1e-12);
    io_catalog_free(&c);
    unsigned char bin[8] = {1, 2, 0, 3, 4, 5, 6, 7};
    write_bytes(tu_tmp("bin.csv"), bin, 8);
    assert_int_not_equal(io_catalog_read(tu_tmp("bin.csv"), NULL, &c), 0);
    assert_int_not_equal(io_catalog_read(tu_tmp("missing.csv"), NULL, &c), 0);
    assert_non_null(strstr(gn_errmsg(), "missing.csv"));
}

// A FITS binary table read as a catalog: string ids, float columns with NaN, an integer column with
// TNULL, a vector column as name_0..name_2, and the extension syntax cat.fits[1].
static void test_catalog_fits(void **st) {
    (void)st;
    char path[512], ext[520];
    snprintf(path, sizeof path, "!%s", tu_tmp("cat.fits")); // '!': overwrite
    fitsfile *f;
    int s = 0;
    char *ttype[4] = {"objid", "mag_r", "flag", "vec"}, *tform[4] = {"20A", "1E", "1J", "3D"};
    fits_create_file(&f, path, &s);
    fits_create_tbl(f, BINARY_TBL, 3, 4, ttype, tform, NULL, "CAT", &s);
    char *ids[3] = {"1237648702966005915", "g,2", "g3"};
    float mag[3] = {17.5f, NAN, 18.25f};
    int flag[3] = {1, -1, 3};
    double vec[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    int tnull = -1;
    fits_write_key(f, TINT, "TNULL3", &tnull, "null flag", &s);
    fits_write_col(f, TSTRING, 1, 1, 1, 3, ids, &s);
    fits_write_col(f, TFLOAT, 2, 1, 1, 3, mag, &s);
    fits_write_col(f, TINT, 3, 1, 1, 3, flag, &s);
    fits_write_col(f, TDOUBLE, 4, 1, 1, 9, vec, &s);
    fits_close_file(f, &s);
    assert_int_equal(s, 0);
    io_catalog c;
    io_catalog_opts o = {0, 1, "objid"};
    snprintf(ext, sizeof ext, "%s[1]", tu_tmp("cat.fits"));
    for (int k = 0; k < 2; k++) {
        assert_int_equal(io_catalog_read(k ? ext : tu_tmp("cat.fits"), &o, &c), 0);
        assert_int_equal(c.n_rows, 3);
        assert_string_equal(io_catalog_id(&c, 0), "1237648702966005915");
        assert_string_equal(io_catalog_id(&c, 1), "g,2"); // a comma inside a string survives
        const double *m = io_catalog_values(&c, "mag_r"), *fl = io_catalog_values(&c, "flag"),
                     *v2 = io_catalog_values(&c, "vec_2");
        assert_non_null(m), assert_non_null(fl), assert_non_null(v2);
        assert_float_equal(m[0], 17.5, 0), assert_true(isnan(m[1]));
        assert_true(isnan(fl[1])), assert_float_equal(fl[2], 3, 0); // TNULL -> null
        assert_float_equal(v2[1], 6, 0);
        assert_int_equal(c.cols[io_catalog_find(&c, "mag_r")].n_null, 1);
        io_catalog_free(&c);
    }
    write_text(tu_tmp("bad.fits"), "SIMPLE  =                    T / not really");
    assert_int_not_equal(io_catalog_read(tu_tmp("bad.fits"), &o, &c), 0);
    assert_non_null(strstr(gn_errmsg(), "bad.fits"));
}

static void test_splits(void **st) {
    (void)st;
    write_text(tu_tmp("s.csv"), "id,split\na,train\nb,Validation\nc,TEST\n");
    io_catalog c;
    uint8_t sp[20000];
    assert_int_equal(io_catalog_read(tu_tmp("s.csv"), NULL, &c), 0);
    assert_int_equal(io_catalog_splits(&c, 0.7, 0.15, sp), 0);
    assert_true(sp[0] == IO_SPLIT_TRAIN && sp[1] == IO_SPLIT_VAL && sp[2] == IO_SPLIT_TEST);
    io_catalog_free(&c);
    write_text(tu_tmp("s2.csv"), "id,split\na,train\nb,holdout\n");
    assert_int_equal(io_catalog_read(tu_tmp("s2.csv"), NULL, &c), 0);
    assert_int_not_equal(io_catalog_splits(&c, 0.7, 0.15, sp), 0);
    assert_non_null(strstr(gn_errmsg(), "holdout"));
    io_catalog_free(&c);
    // hash splits: fixed per id, fractions ~70/15/15
    int cnt[3] = {0};
    char id[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "J%07d", i);
        int s = io_split_from_id(id, 0.7, 0.15);
        assert_int_equal(s, io_split_from_id(id, 0.7, 0.15));
        cnt[s]++;
    }
    assert_in_range(cnt[0], 14000 - 330, 14000 + 330); // 5 sigma
    assert_in_range(cnt[1], 3000 - 250, 3000 + 250);
    assert_int_equal(io_split_from_id("G000001", 0.7, 0.15), io_split_from_id("G000001", 0.7, 0.15));
}

// ---- images ----

static io_image ramp(int c, int h, int w, float scale) {
    io_image im = {c, h, w, malloc(sizeof(float) * (size_t)c * h * w)};
    for (int i = 0; i < c * h * w; i++) im.data[i] = scale * (float)((i * 37) % 251);
    return im;
}

static void expect_same(const io_image *a, const io_image *b) {
    assert_int_equal(a->c, b->c);
    assert_int_equal(a->h, b->h);
    assert_int_equal(a->w, b->w);
    for (int i = 0; i < a->c * a->h * a->w; i++) assert_float_equal(a->data[i], b->data[i], 1e-4);
}

static void test_image_roundtrip(void **st) {
    (void)st;
    io_image in = ramp(3, 7, 5, 0.5f), out;
    // FITS cube and 2-D
    assert_int_equal(io_fits_write(tu_tmp("c.fits"), &in, NULL), 0);
    assert_int_equal(io_image_read(tu_tmp("c.fits"), &out), 0);
    expect_same(&in, &out);
    io_image_free(&out);
    io_image one = {1, 7, 5, in.data};
    assert_int_equal(io_fits_write(tu_tmp("p.fits"), &one, NULL), 0);
    assert_int_equal(io_image_read(tu_tmp("p.fits"), &out), 0);
    expect_same(&one, &out);
    io_image_free(&out);
    // FITS integer BITPIX with BSCALE/BZERO, in a named extension after an empty primary
    {
        fitsfile *f;
        int s = 0;
        char name[600];
        snprintf(name, sizeof name, "!%s", tu_tmp("i16.fits"));
        fits_create_file(&f, name, &s);
        long nax0[1] = {0};
        fits_create_img(f, SHORT_IMG, 0, nax0, &s);
        long nax[2] = {4, 3};
        fits_create_img(f, SHORT_IMG, 2, nax, &s);
        fits_write_key(f, TSTRING, "EXTNAME", "SCI", NULL, &s);
        double bs = 0.5, bz = 100;
        fits_write_key(f, TDOUBLE, "BSCALE", &bs, NULL, &s);
        fits_write_key(f, TDOUBLE, "BZERO", &bz, NULL, &s);
        fits_set_bscale(f, 1.0, 0.0, &s); // write raw stored integers
        short raw[12];
        for (int i = 0; i < 12; i++) raw[i] = (short)(i * 10 - 50);
        fits_write_img(f, TSHORT, 1, 12, raw, &s);
        fits_close_file(f, &s);
        assert_int_equal(s, 0);
        snprintf(name, sizeof name, "%s[SCI]", tu_tmp("i16.fits"));
        assert_int_equal(io_image_read(name, &out), 0);
        assert_int_equal(out.c, 1);
        assert_int_equal(out.h, 3);
        assert_int_equal(out.w, 4);
        for (int i = 0; i < 12; i++) assert_float_equal(out.data[i], 0.5f * (i * 10 - 50) + 100, 1e-5);
        io_image_free(&out);
        assert_int_equal(io_image_read(tu_tmp("i16.fits"), &out), 0); // first HDU with data
        io_image_free(&out);
        snprintf(name, sizeof name, "%s[NOPE]", tu_tmp("i16.fits"));
        assert_int_not_equal(io_image_read(name, &out), 0);
        assert_non_null(strstr(gn_errmsg(), "i16.fits"));
    }
    // PNG 8/16-bit, gray/gray+alpha/RGB/RGBA -> 1 or 3 bands
    for (int depth = 8; depth <= 16; depth += 8)
        for (int c = 1; c <= 4; c++) {
            io_image p = ramp(c, 6, 9, depth == 8 ? 1.0f : 200.0f);
            assert_int_equal(io_png_write(tu_tmp("x.png"), &p, depth), 0);
            assert_int_equal(io_image_read(tu_tmp("x.png"), &out), 0);
            io_image want = {c >= 3 ? 3 : 1, 6, 9, p.data}; // alpha dropped
            expect_same(&want, &out);
            io_image_free(&out);
            free(p.data);
        }
    // JPEG (lossy): gray and RGB, values close
    unsigned char jp[3 * 16 * 16];
    for (int i = 0; i < 3 * 256; i++) jp[i] = (unsigned char)(100 + (i % 3) * 40);
    assert_true(stbi_write_jpg(tu_tmp("x.jpg"), 16, 16, 3, jp, 95));
    assert_int_equal(io_image_read(tu_tmp("x.jpg"), &out), 0);
    assert_int_equal(out.c, 3);
    assert_float_equal(out.data[0], 100, 3);
    assert_float_equal(out.data[2 * 256], 180, 3);
    io_image_free(&out);
    // NPY (C,H,W) float64 and (H,W) int32
    double dv[2 * 3 * 4];
    for (int i = 0; i < 24; i++) dv[i] = i * 0.25;
    int64_t s3[3] = {2, 3, 4}, s2[2] = {3, 4};
    io_array a = io_array_view(IO_F64, 3, s3, dv);
    assert_int_equal(io_npy_write(tu_tmp("x.npy"), &a), 0);
    assert_int_equal(io_image_read(tu_tmp("x.npy"), &out), 0);
    assert_true(out.c == 2 && out.h == 3 && out.w == 4);
    assert_float_equal(out.data[23], 5.75, 0);
    io_image_free(&out);
    int32_t iv[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -11};
    a = io_array_view(IO_I32, 2, s2, iv);
    assert_int_equal(io_npy_write(tu_tmp("y.npy"), &a), 0);
    assert_int_equal(io_image_read(tu_tmp("y.npy"), &out), 0);
    assert_float_equal(out.data[11], -11, 0);
    io_image_free(&out);
    free(in.data);
}

static void expect_decode_error(const char *what, const unsigned char *b, size_t n) {
    io_image im;
    if (io_image_decode(b, n, what, &im) == 0) {
        io_image_free(&im);
        fail_msg("%s: decoded, expected an error", what);
    }
    if (!strstr(gn_errmsg(), what)) fail_msg("%s: error does not name the file: %s", what, gn_errmsg());
}

static unsigned char *slurp(const char *p, size_t *n) {
    unsigned char *b;
    assert_int_equal(io_read_file(p, &b, n), 0);
    return b;
}

static void test_image_bad_inputs(void **st) {
    (void)st;
    io_image im = ramp(3, 8, 8, 1.0f), tmp;
    assert_int_equal(io_fits_write(tu_tmp("g.fits"), &im, NULL), 0);
    assert_int_equal(io_png_write(tu_tmp("g.png"), &im, 16), 0);
    int64_t s3[3] = {3, 8, 8};
    io_array a = io_array_view(IO_F32, 3, s3, im.data);
    assert_int_equal(io_npy_write(tu_tmp("g.npy"), &a), 0);
    unsigned char jp[64 * 3];
    memset(jp, 90, sizeof jp);
    assert_true(stbi_write_jpg(tu_tmp("g.jpg"), 8, 8, 3, jp, 90));
    const char *files[] = {"g.fits", "g.png", "g.npy", "g.jpg"};
    for (int k = 0; k < 4; k++) {
        size_t n;
        unsigned char *b = slurp(tu_tmp(files[k]), &n);
        // every truncation is an error, never a crash (JPEG decoders accept some
        // truncated streams by design; only the header truncations must fail)
        for (size_t cut = 0; cut < n; cut += cut < 64 ? 1 : 97) {
            if (k == 3 && cut > 200) break;
            if (io_image_decode(b, cut, files[k], &tmp) == 0) {
                io_image_free(&tmp);
                if (k == 3 && cut > 150) continue;
                if (k == 0 && cut >= 2880 + 3 * 8 * 8 * 4) continue; // all pixels present, only FITS padding cut
                fail_msg("%s truncated to %zu bytes decoded", files[k], cut);
            }
        }
        // random bytes after a valid magic
        gn_rng r;
        gn_rng_seed(&r, (uint64_t)k, 1);
        unsigned char *junk = malloc(n);
        for (int t = 0; t < 50; t++) {
            memcpy(junk, b, 16);
            for (size_t i = 16; i < n; i++) junk[i] = (unsigned char)gn_rng_u64(&r);
            if (io_image_decode(junk, n, files[k], &tmp) == 0) io_image_free(&tmp); // may decode garbage: only no crash
        }
        free(junk);
        free(b);
    }
    expect_decode_error("empty.fits", (const unsigned char *)"", 0);
    expect_decode_error("magic.png", (const unsigned char *)"\x89PNX\r\n\x1a\nxxxxxxxx", 16);
    // FITS: 1-D and 4-D images, a huge NAXIS1 with no data
    char hdr[2880 + 1];
    const char *cases[][2] = {{"1", "NAXIS1  =                   10"},
                              {"4", "NAXIS1  =                    2"},
                              {"2", "NAXIS1  =            100000000"}};
    for (int k = 0; k < 3; k++) {
        memset(hdr, ' ', 2880);
        char cards[6][81];
        snprintf(cards[0], 81, "%-80s", "SIMPLE  =                    T");
        snprintf(cards[1], 81, "%-80s", "BITPIX  =                  -32");
        snprintf(cards[2], 81, "NAXIS   =                    %s%-50s", cases[k][0], "");
        snprintf(cards[3], 81, "%-80s", cases[k][1]);
        snprintf(cards[4], 81, "%-80s", "NAXIS2  =                    2");
        int nc = 5;
        if (k == 1) {
            snprintf(cards[5], 81, "%-80s", "NAXIS3  =                    2");
            nc = 6;
        }
        for (int i = 0; i < nc; i++) memcpy(hdr + 80 * i, cards[i], 80);
        int skip2 = k == 0; // 1-D: no NAXIS2
        if (skip2) memmove(hdr + 320, hdr + 400, 80), memset(hdr + 400, ' ', 80);
        memcpy(hdr + 80 * (nc - skip2), "END", 3);
        char name[32];
        snprintf(name, sizeof name, "dims%d.fits", k);
        unsigned char *buf = calloc(1, 2880 * 3);
        memcpy(buf, hdr, 2880);
        expect_decode_error(name, buf, 2880 * 3);
        free(buf);
    }
    // NPY: 1-D and 4-D arrays; a huge shape
    int64_t s1[1] = {16}, s4[4] = {1, 2, 2, 4};
    float z[16] = {0};
    a = io_array_view(IO_F32, 1, s1, z);
    unsigned char *eb;
    size_t en;
    assert_int_equal(io_npy_encode(&a, &eb, &en), 0);
    expect_decode_error("one_d.npy", eb, en);
    free(eb);
    a = io_array_view(IO_F32, 4, s4, z);
    assert_int_equal(io_npy_encode(&a, &eb, &en), 0);
    expect_decode_error("four_d.npy", eb, en);
    free(eb);
    const char *big = "\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }     \n";
    expect_decode_error("huge.npy", (const unsigned char *)big, strlen(big + 10) + 10);
    // PNG with a 2^30-pixel-wide header
    io_image p1 = {1, 1, 1, z};
    assert_int_equal(io_png_write(tu_tmp("w.png"), &p1, 8), 0);
    size_t n;
    unsigned char *b = slurp(tu_tmp("w.png"), &n);
    b[16] = 0x40, b[17] = 0, b[18] = 0, b[19] = 0; // width 2^30 (CRC now wrong too)
    expect_decode_error("wide.png", b, n);
    free(b);
    free(im.data);
}

// ---- dataset and loader, on a small mock survey ----

static void mock_survey(const char *d, int n, int png) {
    io_mock_opts o = {0};
    o.out = d;
    o.n = n;
    o.seed = 11;
    o.size = 32;
    o.png = png;
    o.npy = png;
    if (io_mock_write(&o)) fail_msg("mock: %s", gn_errmsg());
}

static int open_ds(const char *tmpl, const char *bands, io_catalog *cat, io_dataset *ds, int strict, int tf) {
    io_dataset_spec s;
    memset(&s, 0, sizeof s);
    s.cat = cat;
    s.template = tmpl;
    if (bands) assert_int_equal(io_parse_bands(bands, &s), 0);
    s.transform = tf;
    s.strict = strict;
    int rc = io_dataset_open(&s, ds);
    if (rc) print_message("    (dataset: %s)\n", gn_errmsg());
    return rc;
}

static void test_dataset_cache(void **st) {
    (void)st;
    mock_survey(tu_tmp("m"), 40, 1);
    io_catalog cat;
    io_catalog_opts co = {0, 1, NULL};
    assert_int_equal(io_catalog_read(tu_tmp("m/catalog.csv"), &co, &cat), 0);
    assert_int_equal(cat.n_rows, 40);
    char tf[512], tp[512], tn[512];
    snprintf(tf, sizeof tf, "%s/m/cutouts/{id}.fits", tu_tmpdir());
    snprintf(tp, sizeof tp, "%s/m/png/{id}_{band}.png", tu_tmpdir());
    snprintf(tn, sizeof tn, "%s/m/npy/{id}.npy", tu_tmpdir());
    io_dataset a, b;
    assert_int_equal(open_ds(tf, "u,g,r,i,z", &cat, &a, 0, IO_TF_NONE), 0);
    assert_true(a.built);
    assert_int_equal(a.n, 40);
    assert_true(a.c == 5 && a.h == 32);
    // the same pixels as the file
    io_image im;
    char p0[600];
    snprintf(p0, sizeof p0, "%s/m/cutouts/%s.fits", tu_tmpdir(), io_catalog_id(&cat, a.row[7]));
    assert_int_equal(io_image_read(p0, &im), 0);
    assert_memory_equal(io_dataset_image(&a, 7), im.data, sizeof(float) * 5 * 32 * 32);
    io_image_free(&im);
    // reopen: read from the cache
    assert_int_equal(open_ds(tf, "u,g,r,i,z", &cat, &b, 0, IO_TF_NONE), 0);
    assert_false(b.built);
    assert_string_equal(a.cache_path, b.cache_path);
    io_dataset_close(&b);
    // NPY and per-band PNG templates give the same data (PNG: 1e-3 quantisation)
    assert_int_equal(open_ds(tn, "u,g,r,i,z", &cat, &b, 0, IO_TF_NONE), 0);
    assert_memory_equal(io_dataset_image(&a, 3), io_dataset_image(&b, 3), sizeof(float) * 5 * 32 * 32);
    io_dataset_close(&b);
    assert_int_equal(open_ds(tp, "u,g,r,i,z", &cat, &b, 0, IO_TF_NONE), 0);
    const float *x = io_dataset_image(&a, 5), *y = io_dataset_image(&b, 5);
    for (int i = 0; i < 5 * 32 * 32; i++) assert_float_equal(y[i], (x[i] * 1000 + 1000 < 0 ? 0 : rintf(x[i] * 1000 + 1000)), 0.5);
    io_dataset_close(&b);
    // transform: signlog of the same pixels
    assert_int_equal(open_ds(tf, "u,g,r,i,z", &cat, &b, 0, IO_TF_SIGNLOG), 0);
    assert_string_not_equal(a.cache_path, b.cache_path);
    for (int i = 0; i < 200; i++) {
        float v = io_dataset_image(&a, 2)[i];
        assert_float_equal(io_dataset_image(&b, 2)[i], copysignf(log1pf(fabsf(v)), v), 1e-6);
    }
    io_dataset_close(&b);
    // a changed cutout (new mtime/size) -> rebuilt
    char p1[600];
    snprintf(p1, sizeof p1, "%s/m/cutouts/%s.fits", tu_tmpdir(), io_catalog_id(&cat, 0));
    struct stat sb;
    stat(p1, &sb);
    struct timespec ts[2] = {sb.st_atim, {sb.st_mtim.tv_sec + 10, 0}};
    utimensat(AT_FDCWD, p1, ts, 0);
    assert_int_equal(open_ds(tf, "u,g,r,i,z", &cat, &b, 0, IO_TF_NONE), 0);
    assert_true(b.built);
    char cache[4096];
    strcpy(cache, b.cache_path);
    io_dataset_close(&b);
    // a corrupted cache file -> CRC mismatch -> rebuilt
    FILE *f = fopen(cache, "r+b");
    fseek(f, 5000, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    assert_int_equal(open_ds(tf, "u,g,r,i,z", &cat, &b, 0, IO_TF_NONE), 0);
    assert_true(b.built);
    io_dataset_close(&b);
    // a truncated cache -> rebuilt
    assert_int_equal(truncate(cache, 6000), 0);
    assert_int_equal(open_ds(tf, "u,g,r,i,z", &cat, &b, 0, IO_TF_NONE), 0);
    assert_true(b.built);
    io_dataset_close(&b);
    // missing and unreadable cutouts: skipped and counted, or an error with --strict
    char p2[600], p3[600];
    snprintf(p2, sizeof p2, "%s/m/cutouts/%s.fits", tu_tmpdir(), io_catalog_id(&cat, 3));
    snprintf(p3, sizeof p3, "%s/m/cutouts/%s.fits", tu_tmpdir(), io_catalog_id(&cat, 4));
    unlink(p2);
    write_text(p3, "SIMPLE  = garbage");
    assert_int_equal(open_ds(tf, "u,g,r,i,z", &cat, &b, 0, IO_TF_NONE), 0);
    assert_int_equal(b.n, 38);
    assert_int_equal(b.n_skipped, 2);
    for (size_t i = 0; i < b.n; i++) assert_true(b.row[i] != 3 && b.row[i] != 4);
    io_dataset_close(&b);
    assert_int_not_equal(open_ds(tf, "u,g,r,i,z", &cat, &b, 1, IO_TF_NONE), 0);
    assert_non_null(strstr(gn_errmsg(), "--strict"));
    // wrong band count for the files
    assert_int_not_equal(open_ds(tf, "g,r,i", &cat, &b, 0, IO_TF_NONE), 0);
    io_dataset_close(&a);
    io_catalog_free(&cat);
}

// A mock survey of n galaxies in the temp dir `sub`, its catalog, and a
// dataset spec over its cutouts (template in tf).
static void mock_spec(const char *sub, int n, io_catalog *cat, io_dataset_spec *s, char *tf, size_t len) {
    char cp[600];
    mock_survey(tu_tmp(sub), n, 0);
    snprintf(cp, sizeof cp, "%s/%s/catalog.csv", tu_tmpdir(), sub);
    assert_int_equal(io_catalog_read(cp, NULL, cat), 0);
    snprintf(tf, len, "%s/%s/cutouts/{id}.fits", tu_tmpdir(), sub);
    memset(s, 0, sizeof *s);
    s->cat = cat;
    s->template = tf;
}

static void test_fluxnorm(void **st) {
    (void)st;
    io_catalog cat;
    io_dataset_spec s;
    char tf[512];
    mock_spec("f", 30, &cat, &s, tf, sizeof tf);
    io_parse_bands("u,g,r,i,z", &s);
    io_dataset raw, nrm;
    assert_int_equal(io_dataset_open(&s, &raw), 0);
    s.fluxnorm = "flux_{band}";
    assert_int_equal(io_dataset_open(&s, &nrm), 0);
    const double *fr = io_catalog_values(&cat, "flux_r");
    double hi = -1e30;
    for (size_t r = 0; r < cat.n_rows; r++) hi = fr[r] > hi ? fr[r] : hi;
    size_t i = 6, P = 32 * 32;
    double f = fr[raw.row[i]];
    assert_true(f <= hi); // inside the clip range for band r (0.1th pct .. max)
    for (size_t p = 0; p < 50; p++)
        assert_float_equal(io_dataset_image(&nrm, i)[2 * P + p], io_dataset_image(&raw, i)[2 * P + p] / f, 1e-6);
    s.fluxnorm = "nosuch_{band}";
    io_dataset bad;
    assert_int_not_equal(io_dataset_open(&s, &bad), 0);
    assert_non_null(strstr(gn_errmsg(), "nosuch_u"));
    io_dataset_close(&raw);
    io_dataset_close(&nrm);
    io_catalog_free(&cat);
}

static void test_band_list(void **st) {
    (void)st;
    io_dataset_spec s;
    memset(&s, 0, sizeof s);
    assert_int_equal(io_parse_bands(" u, g ,r,\ti , z", &s), 0);
    assert_int_equal(s.n_bands, 5);
    assert_string_equal(s.bands[0], "u");
    assert_string_equal(s.bands[1], "g");
    assert_string_equal(s.bands[3], "i");
    assert_string_equal(s.bands[4], "z");
    assert_int_not_equal(io_parse_bands("u,,g", &s), 0);
}

static void test_dihedral(void **st) {
    (void)st;
    float a[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, b[9], c[9];
    io_dihedral(a, b, 3, 1); // a quarter turn counter-clockwise
    float want[9] = {3, 6, 9, 2, 5, 8, 1, 4, 7};
    assert_memory_equal(b, want, sizeof want);
    io_dihedral(a, b, 3, 4); // a left-right flip
    float flip[9] = {3, 2, 1, 6, 5, 4, 9, 8, 7};
    assert_memory_equal(b, flip, sizeof flip);
    // the 8 transforms are distinct; each flip is its own inverse; 4 quarter turns = identity
    float all[8][9];
    for (int k = 0; k < 8; k++) io_dihedral(a, all[k], 3, k);
    for (int k = 0; k < 8; k++)
        for (int j = k + 1; j < 8; j++) assert_memory_not_equal(all[k], all[j], sizeof a);
    for (int k = 4; k < 8; k++) {
        io_dihedral(all[k], c, 3, k);
        assert_memory_equal(c, a, sizeof a);
    }
    memcpy(c, a, sizeof a);
    for (int t = 0; t < 4; t++) {
        io_dihedral(c, b, 3, 1);
        memcpy(c, b, sizeof b);
    }
    assert_memory_equal(c, a, sizeof a);
}

// io_dihedral_then(k1, k2) is the transform k1 followed by k2, for all 64
// pairs; the morphology view's transform is never the identity, and its
// probabilities are spec 1.4's (0.25 a vertical flip alone, 0.125 each for the
// three rotations and the three rotations followed by a vertical flip).
static void test_dihedral_compose(void **st) {
    (void)st;
    float a[16], b[16], c[16], d[16];
    for (int i = 0; i < 16; i++) a[i] = (float)i;
    for (int k1 = 0; k1 < 8; k1++)
        for (int k2 = 0; k2 < 8; k2++) {
            io_dihedral(a, b, 4, k1);
            io_dihedral(b, c, 4, k2);
            io_dihedral(a, d, 4, io_dihedral_then(k1, k2));
            assert_memory_equal(c, d, sizeof c);
        }
    float vflip[16];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) vflip[y * 4 + x] = a[(3 - y) * 4 + x];
    double p[8] = {0};
    int n = 4000;
    for (int i = 0; i < n; i++) {
        double u1 = (i + 0.5) / n;
        for (int j = 0; j < 2; j++) {
            int k = io_dihedral_morph(u1, j ? 0.75 : 0.25);
            assert_true(k > 0 && k < 8);
            p[k] += 0.5 / n;
        }
    }
    io_dihedral(a, b, 4, io_dihedral_morph(0.1, 0.9)); // p 0.25: the vertical flip alone
    assert_memory_equal(b, vflip, sizeof b);
    // a rotation by r then a vertical flip
    io_dihedral(a, c, 4, 1);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) d[y * 4 + x] = c[(3 - y) * 4 + x];
    io_dihedral(a, b, 4, io_dihedral_morph(0.3, 0.9));
    assert_memory_equal(b, d, sizeof b);
    int vf = io_dihedral_morph(0.1, 0.1);
    for (int k = 1; k < 8; k++) assert_float_equal(p[k], k == vf ? 0.25 : 0.125, 1e-3);
}

// Joining a table by id: its numeric columns appended in catalog order, NaN
// where the id is absent; a column both have is an error naming it.
static void test_catalog_join(void **st) {
    (void)st;
    FILE *f = fopen(tu_tmp("j_cat.csv"), "w");
    fputs("id,mag_r\nA,17\nB,18\nC,19\n", f);
    fclose(f);
    f = fopen(tu_tmp("j_s.csv"), "w");
    fputs("id,split,s0,s1,label\nC,test,3.5,-1,x\nA,train,1.5,2,y\n", f);
    fclose(f);
    f = fopen(tu_tmp("j_dup.csv"), "w");
    fputs("id,mag_r\nA,1\n", f);
    fclose(f);
    io_catalog c;
    assert_int_equal(io_catalog_read(tu_tmp("j_cat.csv"), NULL, &c), 0);
    size_t hit = 0;
    assert_int_equal(io_catalog_join(&c, tu_tmp("j_s.csv"), &hit), 0);
    assert_int_equal(hit, 2);
    const double *s0 = io_catalog_values(&c, "s0"), *s1 = io_catalog_values(&c, "s1");
    assert_non_null(s0), assert_non_null(s1);
    assert_float_equal(s0[0], 1.5, 0), assert_float_equal(s1[0], 2, 0);
    assert_true(isnan(s0[1]));
    assert_float_equal(s0[2], 3.5, 0), assert_float_equal(s1[2], -1, 0);
    assert_int_equal(io_catalog_find(&c, "label"), -1); // text columns are not joined
    assert_int_not_equal(io_catalog_join(&c, tu_tmp("j_dup.csv"), NULL), 0);
    assert_non_null(strstr(gn_errmsg(), "'mag_r'"));
    io_catalog_free(&c);
}

// Mock spectra: the 4000 Å break weakens and Hα strengthens with the specific
// SFR; the sky line is masked; the catalog is the same with or without them.
static double pearson(const double *x, const double *y, size_t n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) mx += x[i] / n, my += y[i] / n;
    for (size_t i = 0; i < n; i++) sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
    return sxy / sqrt(sxx * syy);
}

static void test_mock_spectra(void **st) {
    (void)st;
    io_mock_opts o = {.out = tu_tmp("msp"), .n = 150, .seed = 4, .size = 16, .spectra = 1};
    assert_int_equal(io_mock_write(&o), 0);
    io_mock_opts o2 = o;
    o2.out = tu_tmp("msp2"), o2.spectra = 0;
    assert_int_equal(io_mock_write(&o2), 0);
    char a[600], b[600], cmd[1300];
    snprintf(a, sizeof a, "%s/msp/catalog.csv", tu_tmpdir());
    snprintf(b, sizeof b, "%s/msp2/catalog.csv", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    assert_int_equal(system(cmd), 0);
    io_catalog cat;
    assert_int_equal(io_catalog_read(a, NULL, &cat), 0);
    const double *z = io_catalog_values(&cat, "z"), *sfr = io_catalog_values(&cat, "logsfr"), *m = io_catalog_values(&cat, "logmstar");
    char p[700];
    snprintf(p, sizeof p, "%s/msp/spectra/wave.npy", tu_tmpdir());
    io_array w;
    assert_int_equal(io_npy_read(p, &w), 0);
    assert_int_equal(w.shape[0], IO_MOCK_SPEC_PIXELS);
    const double *wl = w.data;
    double d4[150], ha[150], ls[150];
    for (size_t i = 0; i < cat.n_rows; i++) {
        snprintf(p, sizeof p, "%s/msp/spectra/%s.npy", tu_tmpdir(), io_catalog_id(&cat, i));
        io_array s;
        assert_int_equal(io_npy_read(p, &s), 0);
        assert_int_equal(s.ndim, 2), assert_int_equal(s.shape[0], 2);
        const float *f = s.data, *iv = f + IO_MOCK_SPEC_PIXELS;
        double sb = 0, sr = 0, nb = 0, nr = 0, sl = 0, nl = 0, sc = 0, nc = 0;
        for (int k = 0; k < IO_MOCK_SPEC_PIXELS; k++) {
            if (fabs(wl[k] - 5577) < 5) assert_true(iv[k] == 0);
            if (!(iv[k] > 0)) continue;
            double lr = wl[k] / (1 + z[i]), d = fabs(lr - 6563);
            if (lr > 3850 && lr < 3950) sb += f[k], nb++;
            if (lr > 4000 && lr < 4100) sr += f[k], nr++;
            if (d < 4) sl += f[k], nl++;
            if (d > 20 && d < 60) sc += f[k], nc++;
        }
        d4[i] = (sr / nr) / (sb / nb), ha[i] = (sl / nl) / (sc / nc), ls[i] = sfr[i] - m[i];
        io_array_free(&s);
    }
    double r1 = pearson(d4, ls, cat.n_rows), r2 = pearson(ha, ls, cat.n_rows);
    printf("    mock spectra: r(D4000, log sSFR) = %.3f, r(Hα / continuum, log sSFR) = %.3f\n", r1, r2);
    assert_true(r1 < -0.8 && r2 > 0.5);
    io_array_free(&w);
    io_catalog_free(&cat);
}

// The JSON reader: values of every type, nesting, escapes (incl. a surrogate
// pair), paths; malformed text is an error naming the file and line.
static void test_json(void **st) {
    (void)st;
    const char *t = "{\"a\": 1.5e2, \"b\": [true, null, -3, \"x\\u00e9\\n\\ud83d\\ude00\"],\n \"c\": {\"d\": {\"e\": [0.25, 7]}}, \"f\": false}";
    io_json j;
    assert_int_equal(io_json_parse(t, strlen(t), "t.json", &j), 0);
    assert_int_equal(j.type, IO_JSON_OBJ);
    assert_int_equal(j.n, 4);
    assert_float_equal(io_json_num(io_json_get(&j, "a"), -1), 150, 0);
    const io_json *b = io_json_get(&j, "b");
    assert_int_equal(b->n, 4);
    assert_float_equal(io_json_num(b, 0), 1, 0);
    assert_int_equal(b->kids[1].type, IO_JSON_NULL);
    assert_true(isnan(io_json_num(b, 1)));
    assert_float_equal(io_json_num(b, 2), -3, 0);
    assert_string_equal(b->kids[3].str, "x\xc3\xa9\n\xf0\x9f\x98\x80");
    assert_float_equal(io_json_num(io_json_path(&j, "c", "d", "e", NULL), 1), 7, 0);
    assert_null(io_json_path(&j, "c", "nope", "e", NULL));
    assert_true(isnan(io_json_num(io_json_get(&j, "zzz"), -1)));
    assert_float_equal(io_json_num(io_json_get(&j, "f"), -1), 0, 0);
    io_json_free(&j);
    const char *bad[] = {"{\"a\": 1,}", "[1 2]", "{\"a\" 1}", "\"open", "{\"a\": tru}", "[1]]", "", "{\"a\":\n [1, -]}"};
    for (int k = 0; k < 8; k++) {
        assert_int_not_equal(io_json_parse(bad[k], strlen(bad[k]), "bad.json", &j), 0);
        assert_non_null(strstr(gn_errmsg(), "bad.json: line"));
    }
    assert_int_not_equal(io_json_parse(bad[7], strlen(bad[7]), "bad.json", &j), 0);
    assert_non_null(strstr(gn_errmsg(), "line 2"));
    assert_int_not_equal(io_json_read("/nonexistent/x.json", &j), 0);
    assert_non_null(strstr(gn_errmsg(), "/nonexistent/x.json"));
}

// The paired-batch sampler never pairs a galaxy with itself — also with two
// training galaxies, where every partner is forced — and draws the others
// uniformly (each of the n - 1 allowed rows about equally often).
static void test_partners(void **st) {
    (void)st;
    gn_rng r;
    gn_rng_seed(&r, 5, GN_STREAM_SAMPLE);
    uint32_t rows[6] = {3, 8, 11, 20, 21, 40}, set1[64], set2[64];
    io_aug aug[64];
    size_t count[6] = {0};
    for (int rep = 0; rep < 500; rep++) {
        for (int i = 0; i < 64; i++) set1[i] = rows[(i + rep) % 6];
        io_draw_partners(&r, rows, 6, set1, 64, 1, set2, aug);
        for (int i = 0; i < 64; i++) {
            assert_int_not_equal(set2[i], set1[i]);
            assert_true(aug[i].k >= 0 && aug[i].k < 8);
            int f = -1;
            for (int k = 0; k < 6; k++) f = rows[k] == set2[i] ? k : f;
            assert_true(f >= 0);
            count[f]++;
        }
    }
    for (int k = 0; k < 6; k++) assert_true(count[k] > 500 * 64 / 6 * 0.9 && count[k] < 500 * 64 / 6 * 1.1);
    uint32_t two[2] = {7, 9};
    for (int i = 0; i < 64; i++) set1[i] = two[i & 1];
    io_draw_partners(&r, two, 2, set1, 64, 0, set2, aug);
    for (int i = 0; i < 64; i++) assert_int_equal(set2[i], two[1 - (i & 1)]), assert_int_equal(aug[i].k, 0);
}

// [data] bin: each output pixel is the sum of a bin x bin block (flux kept).
static void test_dataset_bin(void **st) {
    (void)st;
    io_catalog cat;
    io_dataset_spec s;
    char tf[512];
    mock_spec("bn", 12, &cat, &s, tf, sizeof tf);
    s.transform = IO_TF_NONE;
    io_dataset raw, b2;
    assert_int_equal(io_dataset_open(&s, &raw), 0);
    s.bin = 2;
    assert_int_equal(io_dataset_open(&s, &b2), 0);
    assert_int_equal(b2.h, raw.h / 2);
    assert_int_equal(b2.n, raw.n);
    int H = raw.h, h = b2.h;
    for (size_t i = 0; i < raw.n; i += 5)
        for (int c = 0; c < raw.c; c++) {
            const float *R = io_dataset_image(&raw, i) + (size_t)c * H * H, *B = io_dataset_image(&b2, i) + (size_t)c * h * h;
            double tr = 0, tb = 0;
            for (int p = 0; p < H * H; p++) tr += R[p];
            for (int p = 0; p < h * h; p++) tb += B[p];
            assert_float_equal(tb, tr, 1e-4 * (fabs(tr) + 1));
            int y = h / 2, x = h / 3;
            double blk = R[(2 * y) * H + 2 * x] + R[(2 * y) * H + 2 * x + 1] + R[(2 * y + 1) * H + 2 * x] + R[(2 * y + 1) * H + 2 * x + 1];
            assert_float_equal(B[y * h + x], blk, 1e-5 * (fabs(blk) + 1));
        }
    s.bin = 3; // 32 is not a multiple of 3
    io_dataset bad;
    assert_int_not_equal(io_dataset_open(&s, &bad), 0);
    assert_non_null(strstr(gn_errmsg(), "multiple"));
    io_dataset_close(&raw);
    io_dataset_close(&b2);
    io_catalog_free(&cat);
}

// The dataset's size is the cutouts' majority size, not the first file's: a 32x32 file first in the
// catalog is skipped with its reason while the 64x64 ones are kept whole.
static void test_dataset_majority_size(void **st) {
    (void)st;
    char csv[256] = "id\n", line[64];
    for (int i = 0; i < 6; i++) {
        int S = i == 0 ? 32 : 64;
        float *px = calloc((size_t)S * S, sizeof(float));
        assert_non_null(px);
        for (int p = 0; p < S * S; p++) px[p] = (float)(p % 7) + i;
        int64_t sh[3] = {1, S, S};
        io_array a = io_array_view(IO_F32, 3, sh, px);
        snprintf(line, sizeof line, "ms_g%d.npy", i);
        assert_int_equal(io_npy_write(tu_tmp(line), &a), 0);
        free(px);
        snprintf(line, sizeof line, "g%d\n", i);
        strcat(csv, line);
    }
    write_text(tu_tmp("ms.csv"), csv);
    io_catalog cat;
    assert_int_equal(io_catalog_read(tu_tmp("ms.csv"), NULL, &cat), 0);
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/ms_{id}.npy", tu_tmpdir());
    io_dataset_spec s = {.cat = &cat, .template = tmpl, .transform = IO_TF_NONE, .cache_dir = tu_tmpdir()};
    io_dataset d;
    assert_int_equal(io_dataset_open(&s, &d), 0);
    assert_int_equal(d.h, 64), assert_int_equal(d.w, 64);
    assert_int_equal(d.n, 5), assert_int_equal(d.n_skipped, 1);
    assert_int_equal(d.row[0], 1); // g0 (32x32) is the one left out
    io_dataset_close(&d);
    io_catalog_free(&cat);
}

static void test_loader(void **st) {
    (void)st;
    io_catalog cat;
    assert_int_equal(io_catalog_read(tu_tmp("m/catalog.csv"), NULL, &cat), 0); // made by test_dataset_cache
    char tf[512];
    snprintf(tf, sizeof tf, "%s/m/npy/{id}.npy", tu_tmpdir());
    io_dataset ds;
    assert_int_equal(open_ds(tf, "u,g,r,i,z", &cat, &ds, 0, IO_TF_NONE), 0);
    uint8_t split[64];
    assert_int_equal(io_catalog_splits(&cat, 0.7, 0.15, split), 0);
    double mean[5] = {1, 2, 3, 4, 5}, sd[5] = {2, 2, 2, 2, 4};
    io_loader_opts o = {.batch = 4, .shuffle = 1, .dihedral = 1, .crop = 24, .random_crop = 1, .mean = mean, .std = sd,
                        .n_channels = 2, .channels = {2, 4}};
    io_loader L, M;
    assert_int_equal(io_loader_init(&L, &ds, split, IO_SPLIT_TRAIN, &o, 5), 0);
    assert_int_equal(io_loader_out_channels(&L), 2);
    assert_int_equal(io_loader_out_size(&L), 24);
    static float x[8 * 5 * 24 * 24], y[8 * 5 * 24 * 24];
    uint32_t e[8], f[8];
    // one epoch covers every training member exactly once
    int *seen = calloc(ds.n, sizeof(int)), b, batches = 0;
    size_t total = 0;
    while ((b = io_loader_next(&L, x, e)) > 0) {
        for (int i = 0; i < b; i++) {
            seen[e[i]]++;
            assert_int_equal(split[ds.row[e[i]]], IO_SPLIT_TRAIN);
        }
        total += (size_t)b;
        batches++;
    }
    assert_int_equal(total, L.n);
    assert_int_equal(batches, (int)io_loader_batches_per_epoch(&L));
    for (size_t i = 0; i < ds.n; i++) assert_true(seen[i] == (split[ds.row[i]] == IO_SPLIT_TRAIN));
    assert_int_equal(L.epoch, 1);
    // resume: a copy of the state mid-epoch continues identically
    assert_int_equal(io_loader_next(&L, x, e), 4);
    assert_int_equal(io_loader_init(&M, &ds, split, IO_SPLIT_TRAIN, &o, 999), 0); // different seed...
    M.epoch = L.epoch, M.cursor = L.cursor, M.shuffle = L.shuffle, M.augment = L.augment; // ...then the saved state
    memcpy(M.perm, L.perm, sizeof(uint32_t) * L.n);
    for (int k = 0; k < 12; k++) { // across the epoch boundary
        int b1 = io_loader_next(&L, x, e), b2 = io_loader_next(&M, y, f);
        assert_int_equal(b1, b2);
        if (b1 > 0) {
            assert_memory_equal(e, f, sizeof(uint32_t) * (size_t)b1);
            assert_memory_equal(x, y, sizeof(float) * (size_t)b1 * 2 * 24 * 24);
        }
    }
    io_loader_free(&M);
    io_loader_free(&L);
    // evaluation mode: catalog order, centred crop, standardised values
    io_loader_opts ev = {.batch = 8, .crop = 24, .mean = mean, .std = sd};
    if (io_loader_init(&L, &ds, split, IO_SPLIT_VAL, &ev, 1)) fail_msg("%s", gn_errmsg());
    assert_true(io_loader_next(&L, x, e) > 0);
    const float *im = io_dataset_image(&ds, e[0]);
    assert_float_equal(x[24 * 5 + 7], (im[(4 + 5) * 32 + 4 + 7] - 1) / 2, 1e-6); // band 0 = u, offset (32-24)/2
    for (int i = 1; i < 8 && e[i]; i++) assert_true(e[i] > e[i - 1]);
    io_loader_free(&L);
    free(seen);
    io_dataset_close(&ds);
    io_catalog_free(&cat);
}

static void test_mock(void **st) {
    (void)st;
    // deterministic and thread-independent: pixels and catalog
    io_mock_galaxy g1, g2;
    io_mock_draw(3, 17, &g1);
    io_mock_draw(3, 17, &g2);
    assert_memory_equal(&g1, &g2, sizeof g1);
    assert_true(g1.mag_true[2] < 17.77); // the magnitude limit
    float *a = malloc(sizeof(float) * 5 * 64 * 64), *b = malloc(sizeof(float) * 5 * 64 * 64);
    io_mock_render(3, 17, &g1, 64, a);
    io_mock_render(3, 17, &g1, 64, b);
    assert_memory_equal(a, b, sizeof(float) * 5 * 64 * 64);
    free(a);
    free(b);
    gn_set_threads(1);
    mock_survey(tu_tmp("t1"), 24, 0);
    gn_set_threads(2);
    mock_survey(tu_tmp("t2"), 24, 0);
    size_t n1, n2;
    unsigned char *c1 = slurp(tu_tmp("t1/catalog.csv"), &n1), *c2 = slurp(tu_tmp("t2/catalog.csv"), &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(c1, c2, n1);
    free(c1);
    free(c2);
    io_image i1, i2;
    assert_int_equal(io_image_read(tu_tmp("t1/cutouts/G000009.fits"), &i1), 0);
    assert_int_equal(io_image_read(tu_tmp("t2/cutouts/G000009.fits"), &i2), 0);
    assert_memory_equal(i1.data, i2.data, sizeof(float) * 5 * 32 * 32);
    io_image_free(&i1);
    io_image_free(&i2);
    // the stellar M/L depends on colour and on morphology (Sersic n), by construction
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int n = 0;
    for (int i = 0; i < 400; i++) {
        io_mock_galaxy g;
        io_mock_draw(5, i, &g);
        double res = g.logml_r - (-0.306 + 1.097 * g.gr0);
        sx += g.n, sy += res, sxx += g.n * g.n, sxy += g.n * res, n++;
    }
    double slope = (sxy - sx * sy / n) / (sxx - sx * sx / n);
    assert_float_equal(slope, 0.05, 0.01);
    io_catalog cat;
    assert_int_equal(io_catalog_read(tu_tmp("t1/catalog.csv"), NULL, &cat), 0);
    assert_non_null(io_catalog_values(&cat, "logmstar"));
    assert_non_null(io_catalog_values(&cat, "w3")); // -9999 nulls masked, still numeric
    io_catalog_free(&cat);
}

int main(void) {
    gn_set_threads(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_csv),    cmocka_unit_test(test_catalog_errors), cmocka_unit_test(test_column_units),  cmocka_unit_test(test_splits),
        cmocka_unit_test(test_image_roundtrip), cmocka_unit_test(test_image_bad_inputs),
        cmocka_unit_test(test_dataset_cache),  cmocka_unit_test(test_fluxnorm),         cmocka_unit_test(test_dihedral), cmocka_unit_test(test_band_list),
        cmocka_unit_test(test_dihedral_compose), cmocka_unit_test(test_catalog_fits), cmocka_unit_test(test_dataset_bin), cmocka_unit_test(test_dataset_majority_size), cmocka_unit_test(test_partners),
        cmocka_unit_test(test_json), cmocka_unit_test(test_catalog_join), cmocka_unit_test(test_mock_spectra),
        cmocka_unit_test(test_loader),          cmocka_unit_test(test_mock),
    };
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
