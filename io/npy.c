#include "npy.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../common/gn_common.h"

static const struct {
    const char *descr;
    size_t size;
} DT[] = {{"<f4", 4}, {"<f8", 8}, {"<i4", 4}, {"<i8", 8}, {"|u1", 1}};

size_t io_dtype_size(io_dtype t) { return DT[t].size; }
const char *io_dtype_name(io_dtype t) {
    static const char *nm[] = {"float32", "float64", "int32", "int64", "uint8"};
    return nm[t];
}

io_array io_array_view(io_dtype t, int ndim, const int64_t *shape, const void *data) {
    io_array a = {0};
    a.dtype = t;
    a.ndim = ndim;
    a.n = 1;
    for (int i = 0; i < ndim; i++) {
        a.shape[i] = shape[i];
        a.n *= (size_t)shape[i];
    }
    a.data = (void *)data;
    return a;
}

void io_array_free(io_array *a) {
    free(a->data);
    a->data = NULL;
}

float *io_array_to_f32(const io_array *a) {
    float *f = gn_malloc(sizeof(float) * (a->n ? a->n : 1));
    if (!f) return NULL;
    for (size_t i = 0; i < a->n; i++) {
        switch (a->dtype) {
        case IO_F32: f[i] = ((const float *)a->data)[i]; break;
        case IO_F64: f[i] = (float)((const double *)a->data)[i]; break;
        case IO_I32: f[i] = (float)((const int32_t *)a->data)[i]; break;
        case IO_I64: f[i] = (float)((const int64_t *)a->data)[i]; break;
        case IO_U8: f[i] = ((const uint8_t *)a->data)[i]; break;
        }
    }
    return f;
}

// ---- NPY ----

int io_npy_encode(const io_array *a, unsigned char **buf, size_t *len) {
    if (a->ndim < 0 || a->ndim > IO_MAXDIM) return gn_err(GN_EINVAL, "npy: rank %d unsupported", a->ndim);
    char hdr[512];
    int o =
        snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", DT[a->dtype].descr);
    for (int i = 0; i < a->ndim; i++)
        o += snprintf(hdr + o, sizeof hdr - (size_t)o, "%lld, ", (long long)a->shape[i]);
    if (a->ndim >= 2) o -= 2; // "(2, 3)" but "(5,)" for rank 1
    else if (a->ndim == 1) o -= 1;
    o += snprintf(hdr + o, sizeof hdr - (size_t)o, "), }");
    size_t total = 10 + (size_t)o + 1;
    size_t pad = (64 - total % 64) % 64; // numpy aligns the data to 64 bytes
    size_t hlen = (size_t)o + pad + 1;
    size_t dbytes = a->n * DT[a->dtype].size;
    unsigned char *b = gn_malloc(10 + hlen + dbytes);
    if (!b) return GN_ENOMEM;
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hlen & 0xff);
    b[9] = (unsigned char)(hlen >> 8);
    memcpy(b + 10, hdr, (size_t)o);
    memset(b + 10 + o, ' ', pad);
    b[10 + hlen - 1] = '\n';
    if (dbytes) memcpy(b + 10 + hlen, a->data, dbytes);
    *buf = b;
    *len = 10 + hlen + dbytes;
    return GN_OK;
}

static const char *skip_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    return p;
}

// Find the value that follows 'key': in the header dict.
static const char *dict_value(const char *h, const char *e, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = h; p + kl + 2 < e; p++) {
        if ((*p == '\'' || *p == '"') && !strncmp(p + 1, key, kl) && p[kl + 1] == *p) {
            p = skip_ws(p + kl + 2, e);
            if (p < e && *p == ':') return skip_ws(p + 1, e);
            return NULL;
        }
    }
    return NULL;
}

int io_npy_decode(const unsigned char *buf, size_t len, io_array *out) {
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6)) return gn_err(GN_EFORMAT, "not an NPY array (bad magic)");
    int major = buf[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return gn_err(GN_EFORMAT, "truncated NPY header");
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hoff = 12;
    } else
        return gn_err(GN_EFORMAT, "NPY format version %d.%d unsupported", major, buf[7]);
    if (hoff + hlen > len)
        return gn_err(GN_EFORMAT, "truncated NPY header (%zu of %zu bytes)", len, hoff + hlen);
    const char *h = (const char *)buf + hoff, *e = h + hlen;
    const char *d = dict_value(h, e, "descr");
    if (!d || d + 1 >= e || (*d != '\'' && *d != '"')) return gn_err(GN_EFORMAT, "NPY header has no 'descr'");
    char descr[16] = {0};
    const char *q = memchr(d + 1, *d, (size_t)(e - d - 1));
    if (!q || q - d - 1 >= (long)sizeof descr) return gn_err(GN_EFORMAT, "NPY header: bad 'descr'");
    memcpy(descr, d + 1, (size_t)(q - d - 1));
    int dt = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(descr, DT[i].descr) || (descr[0] == '=' && !strcmp(descr + 1, DT[i].descr + 1))) dt = i;
    if (!strcmp(descr, "<u1")) dt = IO_U8;
    if (dt < 0)
        return gn_err(GN_EFORMAT,
                      "NPY dtype '%s' unsupported (float32/float64/int32/int64/uint8, little-endian)", descr);
    const char *fo = dict_value(h, e, "fortran_order");
    if (!fo || fo >= e) return gn_err(GN_EFORMAT, "NPY header has no 'fortran_order'");
    if (e - fo >= 4 && !strncmp(fo, "True", 4))
        return gn_err(GN_EFORMAT,
                      "NPY array is in Fortran order; save it with numpy.ascontiguousarray first");
    const char *s = dict_value(h, e, "shape");
    if (!s || s >= e || *s != '(') return gn_err(GN_EFORMAT, "NPY header has no 'shape'");
    s++;
    out->dtype = (io_dtype)dt;
    out->ndim = 0;
    out->n = 1;
    for (;;) {
        s = skip_ws(s, e);
        if (s >= e) return gn_err(GN_EFORMAT, "NPY header: unterminated shape");
        if (*s == ')') break;
        long long v = 0;
        const char *st = s;
        while (s < e && *s >= '0' && *s <= '9' && v < (1LL << 40)) v = v * 10 + (*s++ - '0');
        if (s == st || v >= (1LL << 40)) return gn_err(GN_EFORMAT, "NPY header: bad shape");
        if (out->ndim == IO_MAXDIM) return gn_err(GN_EFORMAT, "NPY array has more than %d axes", IO_MAXDIM);
        out->shape[out->ndim++] = v;
        if (v && out->n > ((size_t)1 << 50) / (size_t)v)
            return gn_err(GN_EFORMAT, "NPY header: shape too large");
        out->n *= (size_t)v;
        s = skip_ws(s, e);
        if (s < e && *s == 'L') s++; // Python 2 longs
        s = skip_ws(s, e);
        if (s < e && *s == ',') s++;
    }
    size_t dbytes = out->n * DT[dt].size, off = hoff + hlen;
    if (len - off != dbytes)
        return gn_err(GN_EFORMAT, "NPY data is %zu bytes but shape and dtype need %zu%s", len - off, dbytes,
                      len - off < dbytes ? " (truncated)" : "");
    out->data = gn_malloc(dbytes ? dbytes : 1);
    if (!out->data) return GN_ENOMEM;
    memcpy(out->data, buf + off, dbytes);
    return GN_OK;
}


int io_npy_write(const char *path, const io_array *a) {
    unsigned char *b;
    size_t n;
    int rc = io_npy_encode(a, &b, &n);
    if (rc) return gn_err_prefix(rc, "%s: ", path);
    rc = io_write_atomic(path, b, n);
    free(b);
    return rc;
}

int io_npy_read(const char *path, io_array *out) {
    unsigned char *b;
    size_t n;
    int rc = io_read_file(path, &b, &n);
    if (rc) return rc;
    rc = io_npy_decode(b, n, out);
    free(b);
    return rc ? gn_err_prefix(rc, "%s: ", path) : GN_OK;
}

// ---- ZIP container (PKWARE APPNOTE 6.3: local headers, central directory, EOCD; zip64 read) ----

static void put16(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static unsigned get16(const unsigned char *p) { return p[0] | (unsigned)p[1] << 8; }
static uint32_t get32(const unsigned char *p) {
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

#define DOS_DATE 0x0021 // 1980-01-01: fixed, so equal contents give equal files
#define DOS_TIME 0x0000

typedef struct zentry {
    char *name;
    uint32_t crc, csize, usize, offset;
    unsigned method;
} zentry;

struct io_npz_writer {
    FILE *f;
    char *path;
    char tmp[4096];
    int compress;
    zentry *e;
    int n, cap;
    uint64_t pos;
    int failed;
};

io_npz_writer *io_npz_create(const char *path, int compress) {
    io_npz_writer *w = gn_calloc(1, sizeof *w);
    if (!w) return NULL;
    w->path = gn_strdup(path);
    w->compress = compress;
    if (!w->path || !(w->f = io_open_temp(path, w->tmp, sizeof w->tmp))) {
        free(w->path);
        free(w);
        return NULL;
    }
    return w;
}

static int wbytes(io_npz_writer *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->f) != n) {
        w->failed = 1;
        return gn_err(GN_EIO, "%s: write failed: %s", w->path, strerror(errno));
    }
    w->pos += n;
    return GN_OK;
}

// Deflate one member (raw deflate, level 6) into *out (caller frees), *clen bytes.
static int deflate_member(const io_npz_writer *w, const char *name, unsigned char *npy, size_t nlen,
                          unsigned char **out, size_t *clen) {
    z_stream zs = {0};
    if (deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return gn_err(GN_ENOMEM, "%s: deflate init failed", w->path);
    size_t bound = deflateBound(&zs, (uLong)nlen);
    if (!(*out = gn_malloc(bound))) return deflateEnd(&zs), GN_ENOMEM;
    zs.next_in = npy;
    zs.avail_in = (uInt)nlen;
    zs.next_out = *out;
    zs.avail_out = (uInt)bound;
    int zr = deflate(&zs, Z_FINISH);
    *clen = zs.total_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END) {
        free(*out), *out = NULL;
        return gn_err(GN_EIO, "%s: deflate failed for '%s'", w->path, name);
    }
    return GN_OK;
}

int io_npz_add(io_npz_writer *w, const char *name, const io_array *a) {
    if (w->failed) return GN_EIO;
    // Fault injection for the crash-safety tests: GALNN_NPZ_DELAY_US widens the
    // window in which an archive is half written, so a test can kill the
    // process inside it and check that the previous file survives.
    static long delay = -1;
    if (delay < 0) {
        const char *e = getenv("GALNN_NPZ_DELAY_US");
        delay = e ? atol(e) : 0;
    }
    if (delay > 0) usleep((useconds_t)delay);
    unsigned char *npy, *out = NULL;
    size_t nlen;
    int rc = io_npy_encode(a, &npy, &nlen);
    if (rc) return gn_err_prefix(rc, "%s: member '%s': ", w->path, name);
    uint32_t crc = (uint32_t)crc32(0L, npy, (uInt)0);
    // crc32 takes uInt lengths: feed in chunks so members over 4 GiB would still checksum
    for (size_t o = 0; o < nlen; o += 1u << 30) {
        size_t k = nlen - o < (1u << 30) ? nlen - o : (1u << 30);
        crc = (uint32_t)crc32(crc, npy + o, (uInt)k);
    }
    const unsigned char *data = npy;
    size_t clen = nlen;
    unsigned method = 0;
    if (w->compress) {
        if ((rc = deflate_member(w, name, npy, nlen, &out, &clen))) return free(npy), rc;
        data = out;
        method = 8;
    }
    char fname[512];
    snprintf(fname, sizeof fname, "%s.npy", name);
    size_t fl = strlen(fname);
    if (w->pos + 30 + fl + clen > 0xFFFFFFFFull || nlen > 0xFFFFFFFFull) {
        free(npy);
        free(out);
        w->failed = 1;
        return gn_err(GN_EINVAL,
                      "%s: archive would exceed 4 GiB (zip64 writing is not supported); split the data",
                      w->path);
    }
    if (w->n == w->cap) {
        int nc = w->cap ? w->cap * 2 : 64;
        zentry *ne = gn_realloc(w->e, sizeof(zentry) * (size_t)nc);
        if (!ne) {
            free(npy);
            free(out);
            return GN_ENOMEM;
        }
        w->e = ne;
        w->cap = nc;
    }
    zentry *z = &w->e[w->n];
    z->name = gn_strdup(fname);
    if (!z->name) {
        free(npy);
        free(out);
        return GN_ENOMEM;
    }
    z->crc = crc;
    z->csize = (uint32_t)clen;
    z->usize = (uint32_t)nlen;
    z->offset = (uint32_t)w->pos;
    z->method = method;
    w->n++;
    unsigned char h[30];
    put32(h, 0x04034b50);
    put16(h + 4, 20);
    put16(h + 6, 0);
    put16(h + 8, method);
    put16(h + 10, DOS_TIME);
    put16(h + 12, DOS_DATE);
    put32(h + 14, crc);
    put32(h + 18, z->csize);
    put32(h + 22, z->usize);
    put16(h + 26, (unsigned)fl);
    put16(h + 28, 0);
    rc = wbytes(w, h, 30);
    if (!rc) rc = wbytes(w, fname, fl);
    if (!rc) rc = wbytes(w, data, clen);
    free(npy);
    free(out);
    return rc;
}

int io_npz_add_f32(io_npz_writer *w, const char *name, int ndim, const int *shape, const float *data) {
    int64_t s[IO_MAXDIM];
    for (int i = 0; i < ndim; i++) s[i] = shape[i];
    io_array a = io_array_view(IO_F32, ndim, s, data);
    return io_npz_add(w, name, &a);
}

static void writer_free(io_npz_writer *w) {
    for (int i = 0; i < w->n; i++) free(w->e[i].name);
    free(w->e);
    free(w->path);
    free(w);
}

void io_npz_abort(io_npz_writer *w) {
    if (!w) return;
    fclose(w->f);
    unlink(w->tmp);
    writer_free(w);
}

int io_npz_close(io_npz_writer *w) {
    if (w->failed) {
        io_npz_abort(w);
        return GN_EIO;
    }
    uint64_t cd_start = w->pos;
    int rc = GN_OK;
    for (int i = 0; i < w->n && !rc; i++) {
        zentry *z = &w->e[i];
        unsigned char h[46];
        size_t fl = strlen(z->name);
        put32(h, 0x02014b50);
        put16(h + 4, 20);
        put16(h + 6, 20);
        put16(h + 8, 0);
        put16(h + 10, z->method);
        put16(h + 12, DOS_TIME);
        put16(h + 14, DOS_DATE);
        put32(h + 16, z->crc);
        put32(h + 20, z->csize);
        put32(h + 24, z->usize);
        put16(h + 28, (unsigned)fl);
        put16(h + 30, 0);
        put16(h + 32, 0);
        put16(h + 34, 0);
        put16(h + 36, 0);
        put32(h + 38, 0100644u << 16); // external attributes: a regular file, rw-r--r--
        put32(h + 42, z->offset);
        rc = wbytes(w, h, 46);
        if (!rc) rc = wbytes(w, z->name, fl);
    }
    if (!rc && (w->n > 0xFFFF || w->pos > 0xFFFFFFFFull)) {
        w->failed = 1;
        rc = gn_err(GN_EINVAL, "%s: too many members or too large for a zip without zip64", w->path);
    }
    if (!rc) {
        unsigned char e[22];
        put32(e, 0x06054b50);
        put16(e + 4, 0);
        put16(e + 6, 0);
        put16(e + 8, (unsigned)w->n);
        put16(e + 10, (unsigned)w->n);
        put32(e + 12, (uint32_t)(w->pos - cd_start));
        put32(e + 16, (uint32_t)cd_start);
        put16(e + 20, 0);
        rc = wbytes(w, e, 22);
    }
    if (rc) {
        io_npz_abort(w);
        return rc;
    }
    rc = io_commit_temp(w->f, w->tmp, w->path);
    writer_free(w);
    return rc;
}

// ---- NPZ reading ----

void io_npz_free(io_npz *z) {
    for (int i = 0; i < z->n; i++) {
        free(z->names[i]);
        io_array_free(&z->arrays[i]);
    }
    free(z->names);
    free(z->arrays);
    memset(z, 0, sizeof *z);
}

const io_array *io_npz_get(const io_npz *z, const char *name) {
    for (int i = 0; i < z->n; i++)
        if (!strcmp(z->names[i], name)) return &z->arrays[i];
    return NULL;
}

static int inflate_raw(const unsigned char *in, size_t inlen, unsigned char *out, size_t outlen) {
    z_stream zs = {0};
    if (inflateInit2(&zs, -15) != Z_OK) return GN_ENOMEM;
    zs.next_in = (unsigned char *)in;
    zs.avail_in = (uInt)inlen;
    zs.next_out = out;
    zs.avail_out = (uInt)outlen;
    int r = inflate(&zs, Z_FINISH);
    size_t got = zs.total_out;
    inflateEnd(&zs);
    if (r != Z_STREAM_END || got != outlen)
        return gn_err(GN_EFORMAT, "deflate stream is corrupt or truncated (%s)",
                      r == Z_DATA_ERROR ? "invalid data" : r == Z_BUF_ERROR ? "ends early" : "size mismatch");
    return GN_OK;
}

// One member's bytes: inflated (or copied), checked against its CRC-32 and decoded as NPY.
static int load_member(const unsigned char *src, uint64_t csize, uint64_t usize, unsigned method,
                       uint32_t crc, const char *name, io_array *out) {
    unsigned char *raw = gn_malloc(usize ? usize : 1);
    if (!raw) return GN_ENOMEM;
    int rc = GN_OK;
    if (method == 0) {
        if (csize != usize) rc = gn_err(GN_EFORMAT, "stored sizes differ");
        else memcpy(raw, src, usize);
    } else
        rc = inflate_raw(src, csize, raw, usize);
    uint32_t c = (uint32_t)crc32(0L, NULL, 0);
    for (uint64_t o = 0; !rc && o < usize; o += 1u << 30) {
        uint64_t kk = usize - o < (1u << 30) ? usize - o : (1u << 30);
        c = (uint32_t)crc32(c, raw + o, (uInt)kk);
    }
    if (!rc && c != crc) rc = gn_err(GN_EFORMAT, "CRC-32 mismatch (data corrupt)");
    size_t nl = strlen(name);
    if (!rc && (nl < 4 || strcmp(name + nl - 4, ".npy"))) rc = gn_err(GN_EFORMAT, "not a .npy member");
    if (!rc) rc = io_npy_decode(raw, usize, out);
    free(raw);
    return rc;
}

static int parse_npz(const char *path, const unsigned char *b, size_t len, io_npz *z) {
    if (len < 22)
        return gn_err(GN_EFORMAT, "%s: too short to be an NPZ (zip) archive (%zu bytes)", path, len);
    // The end-of-central-directory record is within the last 64 KiB + 22 bytes.
    size_t eo = (size_t)-1;
    size_t lo = len > 65557 ? len - 65557 : 0;
    for (size_t i = len - 22 + 1; i-- > lo;)
        if (get32(b + i) == 0x06054b50) {
            eo = i;
            break;
        }
    if (eo == (size_t)-1)
        return gn_err(GN_EFORMAT, "%s: not a zip archive (no end-of-directory record; truncated?)", path);
    uint64_t count = get16(b + eo + 10), cd_size = get32(b + eo + 12), cd_off = get32(b + eo + 16);
    if ((count == 0xFFFF || cd_off == 0xFFFFFFFF || cd_size == 0xFFFFFFFF) && eo >= 20 &&
        get32(b + eo - 20) == 0x07064b50) {
        uint64_t z64 = get64(b + eo - 20 + 8);
        if (z64 + 56 > len || get32(b + z64) != 0x06064b50)
            return gn_err(GN_EFORMAT, "%s: bad zip64 end-of-directory record", path);
        count = get64(b + z64 + 32);
        cd_size = get64(b + z64 + 40);
        cd_off = get64(b + z64 + 48);
    }
    if (cd_off + cd_size > len)
        return gn_err(GN_EFORMAT, "%s: central directory lies past the end (truncated?)", path);
    if (count > cd_size / 46)
        return gn_err(GN_EFORMAT, "%s: central directory too small for %llu entries", path,
                      (unsigned long long)count);
    z->names = gn_calloc(count ? count : 1, sizeof(char *));
    z->arrays = gn_calloc(count ? count : 1, sizeof(io_array));
    if (!z->names || !z->arrays) return GN_ENOMEM;
    size_t p = cd_off;
    for (uint64_t k = 0; k < count; k++) {
        if (p + 46 > cd_off + cd_size || get32(b + p) != 0x02014b50)
            return gn_err(GN_EFORMAT, "%s: corrupt central directory entry %llu", path,
                          (unsigned long long)k);
        unsigned flags = get16(b + p + 8), method = get16(b + p + 10);
        uint32_t crc = get32(b + p + 16);
        uint64_t csize = get32(b + p + 20), usize = get32(b + p + 24);
        unsigned fl = get16(b + p + 28), xl = get16(b + p + 30), cl = get16(b + p + 32);
        uint64_t loff = get32(b + p + 42);
        if (p + 46 + fl + xl + cl > cd_off + cd_size)
            return gn_err(GN_EFORMAT, "%s: central directory entry %llu overruns", path,
                          (unsigned long long)k);
        char name[1024];
        if (fl >= sizeof name) return gn_err(GN_EFORMAT, "%s: member name too long", path);
        memcpy(name, b + p + 46, fl);
        name[fl] = 0;
        // zip64 extra field: replaces the fields that are 0xFFFFFFFF, in order
        const unsigned char *x = b + p + 46 + fl, *xe = x + xl;
        while (x + 4 <= xe) {
            unsigned id = get16(x), sz = get16(x + 2);
            if (x + 4 + sz > xe) break;
            if (id == 0x0001) {
                const unsigned char *q = x + 4, *qe = q + sz;
                if (usize == 0xFFFFFFFF && q + 8 <= qe) usize = get64(q), q += 8;
                if (csize == 0xFFFFFFFF && q + 8 <= qe) csize = get64(q), q += 8;
                if (loff == 0xFFFFFFFF && q + 8 <= qe) loff = get64(q);
            }
            x += 4 + sz;
        }
        p += 46 + fl + xl + cl;
        if (flags & 1) return gn_err(GN_EFORMAT, "%s: member '%s' is encrypted", path, name);
        if (method != 0 && method != 8)
            return gn_err(GN_EFORMAT, "%s: member '%s' uses compression method %u (only stored/deflate)",
                          path, name, method);
        if (loff + 30 > len || get32(b + loff) != 0x04034b50)
            return gn_err(GN_EFORMAT, "%s: member '%s': bad local header (corrupt or truncated)", path, name);
        uint64_t doff = loff + 30 + get16(b + loff + 26) + get16(b + loff + 28);
        if (doff + csize > len)
            return gn_err(GN_EFORMAT, "%s: member '%s' is truncated (%llu of %llu bytes present)", path, name,
                          (unsigned long long)(len > doff ? len - doff : 0), (unsigned long long)csize);
        // deflate cannot expand more than ~1032:1; stored members are as long as their data
        if ((method == 0 && usize != csize) || (method == 8 && usize > csize * 1032 + 64))
            return gn_err(GN_EFORMAT,
                          "%s: member '%s': size %llu is impossible for %llu %s bytes (corrupt directory)",
                          path, name, (unsigned long long)usize, (unsigned long long)csize,
                          method ? "compressed" : "stored");
        size_t nl = strlen(name);
        int rc = load_member(b + doff, csize, usize, method, crc, name, &z->arrays[z->n]);
        if (rc) return gn_err_prefix(rc, "%s: member '%s': ", path, name);
        name[nl - 4] = 0;
        if (!(z->names[z->n] = gn_strdup(name))) return GN_ENOMEM;
        z->n++;
    }
    return GN_OK;
}

int io_npz_parse(const unsigned char *b, size_t len, const char *name, io_npz *z) {
    memset(z, 0, sizeof *z);
    int rc = parse_npz(name, b, len, z);
    if (rc) io_npz_free(z);
    return rc;
}

int io_npz_read(const char *path, io_npz *z) {
    memset(z, 0, sizeof *z);
    unsigned char *b;
    size_t len;
    int rc = io_read_file(path, &b, &len);
    if (rc) return rc;
    rc = io_npz_parse(b, len, path, z);
    free(b);
    return rc;
}
