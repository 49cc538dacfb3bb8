#include "image.h"

#include <errno.h>
#include <fitsio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../common/gn_common.h"
#include "npy.h"

// stb_image is linked from Debian's libstb (no implementation compiled here).
#include <stb/stb_image.h>

void io_image_free(io_image *img) {
    free(img->data);
    img->data = NULL;
}

int io_image_sniff(const unsigned char *b, size_t n) {
    if (n >= 9 && !memcmp(b, "SIMPLE  =", 9)) return IO_FMT_FITS;
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return IO_FMT_FITS; // gzip: cfitsio reads .fits.gz
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return IO_FMT_PNG;
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return IO_FMT_JPEG;
    if (n >= 6 && !memcmp(b, "\x93NUMPY", 6)) return IO_FMT_NPY;
    return IO_FMT_UNKNOWN;
}

static int check_dims(const char *name, long c, long h, long w) {
    if (c < 1 || h < 1 || w < 1)
        return gn_err(GN_EFORMAT, "%s: empty image (%ld x %ld x %ld)", name, c, h, w);
    if (c > IO_IMAGE_MAX_BANDS)
        return gn_err(GN_EFORMAT, "%s: %ld bands (at most %d)", name, c, IO_IMAGE_MAX_BANDS);
    if (h > IO_IMAGE_MAX_SIDE || w > IO_IMAGE_MAX_SIDE || c * h * w > IO_IMAGE_MAX_PIXELS)
        return gn_err(GN_EFORMAT, "%s: image of %ld x %ld x %ld is too large for a cutout", name, c, h, w);
    return GN_OK;
}

static int alloc_image(io_image *img, int c, int h, int w) {
    img->c = c, img->h = h, img->w = w;
    img->data = gn_malloc(sizeof(float) * (size_t)c * h * w);
    return img->data ? GN_OK : GN_ENOMEM;
}

// ---- FITS ----

int io_fits_error(const char *name, int status, const char *what) {
    char msg[FLEN_STATUS];
    fits_get_errstatus(status, msg);
    fits_clear_errmsg();
    return gn_err(GN_EFORMAT, "%s: %s: %s (cfitsio status %d)", name, what, msg, status);
}

// avail: bytes in the file (0: unknown). cfitsio zero-fills a short read
// from memory, so the data extent is checked against the size here.
static int fits_read_opened(fitsfile *f, const char *name, io_image *img, size_t avail) {
    int st = 0, bitpix, naxis;
    LONGLONG nax[4] = {0};
    if (fits_get_img_paramll(f, 4, &bitpix, &naxis, nax, &st))
        return io_fits_error(name, st, "reading the image header");
    long c, h, w;
    if (naxis == 2) {
        c = 1, h = (long)nax[1], w = (long)nax[0];
    } else if (naxis == 3) {
        c = (long)nax[2], h = (long)nax[1], w = (long)nax[0];
    } else if (naxis == 0)
        return gn_err(GN_EFORMAT, "%s: the HDU holds no image data (name an extension: file.fits[NAME])",
                      name);
    else
        return gn_err(GN_EFORMAT, "%s: %d-dimensional image (expected 2-D per band or a 3-D band cube)", name,
                      naxis);
    int rc = check_dims(name, c, h, w); // each axis is bounded before their product is formed
    if (rc) return rc;
    LONGLONG head, data, end;
    if (avail && !fits_get_hduaddrll(f, &head, &data, &end, &st) &&
        (size_t)data + (size_t)(c * h * w) * (size_t)(bitpix < 0 ? -bitpix : bitpix) / 8 > avail)
        return gn_err(GN_EFORMAT,
                      "%s: truncated: the header promises %ld x %ld x %ld pixels that the file does not hold",
                      name, c, h, w);
    if ((rc = alloc_image(img, (int)c, (int)h, (int)w))) return rc;
    float nulval = NAN;
    int anynul = 0;
    if (fits_read_img(f, TFLOAT, 1, (LONGLONG)c * h * w, &nulval, img->data, &anynul, &st)) {
        io_image_free(img);
        return io_fits_error(name, st, "reading pixels (truncated file?)");
    }
    return GN_OK;
}

static int fits_read_path(const char *path, io_image *img) {
    fitsfile *f = NULL;
    int st = 0;
    if (fits_open_image(&f, path, READONLY, &st)) return io_fits_error(path, st, "cannot open as FITS");
    char fp[4096];
    snprintf(fp, sizeof fp, "%s", path);
    char *br = strrchr(fp, '[');
    if (br && fp[strlen(fp) - 1] == ']') *br = 0;
    struct stat sb;
    size_t avail = 0;
    unsigned char m[2] = {0};
    FILE *g = fopen(fp, "rb");
    if (g) {
        if (fread(m, 1, 2, g) == 2 && !(m[0] == 0x1f && m[1] == 0x8b) && !fstat(fileno(g), &sb))
            avail = (size_t)sb.st_size; // (a gzipped file's size says nothing about its data)
        fclose(g);
    }
    int rc = fits_read_opened(f, path, img, avail);
    st = 0;
    fits_close_file(f, &st);
    return rc;
}

static int fits_decode(const unsigned char *buf, size_t len, const char *name, io_image *img) {
    fitsfile *f = NULL;
    int st = 0;
    // cfitsio's memory driver reads whole 2880-byte records: give it a copy
    // padded to a record multiple (the data-extent check below still rejects
    // pixels that the original bytes do not hold).
    size_t size = (len + 2879) / 2880 * 2880;
    void *mem = gn_calloc(1, size ? size : 2880);
    if (!mem) return GN_ENOMEM;
    memcpy(mem, buf, len);
    void *owned = mem;
    if (fits_open_memfile(&f, "mem://", READONLY, &mem, &size, 0, NULL, &st)) {
        free(owned);
        return io_fits_error(name, st, "not a valid FITS file");
    }
    // the first HDU with an image, as fits_open_image does for files
    int bitpix, naxis;
    LONGLONG nax[4];
    if (!fits_get_img_paramll(f, 4, &bitpix, &naxis, nax, &st) && naxis == 0) {
        int type;
        fits_movrel_hdu(f, 1, &type, &st);
        if (!st && type != IMAGE_HDU) st = NOT_IMAGE;
    }
    int rc = st ? io_fits_error(name, st, "no image HDU") : fits_read_opened(f, name, img, len);
    st = 0;
    fits_close_file(f, &st);
    free(owned);
    return rc;
}

// ---- PNG / JPEG ----

static int stb_decode(const unsigned char *buf, size_t len, const char *name, io_image *img) {
    if (len > 0x7fffffff) return gn_err(GN_EFORMAT, "%s: file too large", name);
    int w, h, comp;
    if (!stbi_info_from_memory(buf, (int)len, &w, &h, &comp))
        return gn_err(GN_EFORMAT, "%s: cannot decode image header: %s", name, stbi_failure_reason());
    int bands = comp >= 3 ? 3 : 1;
    int rc = check_dims(name, bands, h, w);
    if (rc) return rc;
    int sixteen = stbi_is_16_bit_from_memory(buf, (int)len);
    void *pix = sixteen ? (void *)stbi_load_16_from_memory(buf, (int)len, &w, &h, &comp, 0)
                        : (void *)stbi_load_from_memory(buf, (int)len, &w, &h, &comp, 0);
    if (!pix) return gn_err(GN_EFORMAT, "%s: cannot decode image: %s", name, stbi_failure_reason());
    bands = comp >= 3 ? 3 : 1;
    if ((rc = check_dims(name, bands, h, w)) || (rc = alloc_image(img, bands, h, w))) {
        stbi_image_free(pix);
        return rc;
    }
    size_t P = (size_t)w * h;
    for (size_t p = 0; p < P; p++)
        for (int b = 0; b < bands; b++) {
            size_t k = p * (size_t)comp + (size_t)b;
            img->data[(size_t)b * P + p] =
                sixteen ? (float)((unsigned short *)pix)[k] : (float)((unsigned char *)pix)[k];
        }
    stbi_image_free(pix);
    return GN_OK;
}

// ---- NPY ----

static int npy_image(const unsigned char *buf, size_t len, const char *name, io_image *img) {
    io_array a;
    int rc = io_npy_decode(buf, len, &a);
    if (rc) return gn_err_prefix(rc, "%s: ", name);
    long c, h, w;
    if (a.ndim == 2) c = 1, h = (long)a.shape[0], w = (long)a.shape[1];
    else if (a.ndim == 3) c = (long)a.shape[0], h = (long)a.shape[1], w = (long)a.shape[2];
    else {
        io_array_free(&a);
        return gn_err(GN_EFORMAT, "%s: NPY array has %d axes (expected (H, W) or (C, H, W))", name, a.ndim);
    }
    if ((rc = check_dims(name, c, h, w))) {
        io_array_free(&a);
        return rc;
    }
    img->c = (int)c, img->h = (int)h, img->w = (int)w;
    img->data = io_array_to_f32(&a);
    io_array_free(&a);
    return img->data ? GN_OK : GN_ENOMEM;
}

int io_image_decode(const unsigned char *buf, size_t len, const char *name, io_image *img) {
    return io_image_decode_as(buf, len, name, io_image_sniff(buf, len), img);
}

int io_image_decode_as(const unsigned char *buf, size_t len, const char *name, int fmt, io_image *img) {
    memset(img, 0, sizeof *img);
    switch (fmt) {
    case IO_FMT_FITS: return fits_decode(buf, len, name, img);
    case IO_FMT_PNG:
    case IO_FMT_JPEG: return stb_decode(buf, len, name, img);
    case IO_FMT_NPY: return npy_image(buf, len, name, img);
    default:
        return gn_err(GN_EFORMAT, "%s: not a FITS, PNG, JPEG or NPY file (%s)", name,
                      len ? "unrecognised leading bytes" : "empty file");
    }
}

int io_image_read(const char *path, io_image *img) {
    memset(img, 0, sizeof *img);
    // cfitsio extension syntax: "file.fits[NAME]" or "file.fits[1]"
    const char *br = strchr(path, '[');
    if (br && path[strlen(path) - 1] == ']') return fits_read_path(path, img);
    FILE *f = fopen(path, "rb");
    if (!f) return gn_err(GN_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char head[16];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    int fmt = io_image_sniff(head, n);
    if (fmt == IO_FMT_FITS) return fits_read_path(path, img); // cfitsio streams (and gunzips) itself
    unsigned char *buf;
    size_t len;
    int rc = io_read_file(path, &buf, &len);
    if (rc) return rc;
    rc = io_image_decode(buf, len, path, img);
    free(buf);
    return rc;
}

// ---- writers ----

int io_fits_write(const char *path, const io_image *img, const io_fits_card *cards) {
    char tmp[4096], bang[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    snprintf(bang, sizeof bang, "!%s", tmp); // '!' lets cfitsio overwrite
    fitsfile *f = NULL;
    int st = 0;
    long nax[3] = {img->w, img->h, img->c};
    if (fits_create_file(&f, bang, &st)) return io_fits_error(path, st, "cannot create");
    fits_create_img(f, FLOAT_IMG, img->c == 1 ? 2 : 3, nax, &st);
    for (const io_fits_card *k = cards; k && k->key && !st; k++)
        fits_update_key(f, TSTRING, k->key, (void *)k->value, k->comment, &st);
    fits_write_img(f, TFLOAT, 1, (LONGLONG)img->c * img->h * img->w, img->data, &st);
    int st2 = 0;
    fits_close_file(f, &st2);
    if (st || st2) {
        remove(tmp);
        return io_fits_error(path, st ? st : st2, "writing");
    }
    if (rename(tmp, path)) {
        remove(tmp);
        return gn_err(GN_EIO, "%s: cannot rename temp file into place: %s", path, strerror(errno));
    }
    return GN_OK;
}

static void put32be(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
    p[3] = (unsigned char)v;
}

static int png_chunk(FILE *f, const char *type, const unsigned char *data, size_t n) {
    unsigned char h[8];
    put32be(h, (uint32_t)n);
    memcpy(h + 4, type, 4);
    uint32_t crc = (uint32_t)crc32(0, h + 4, 4);
    if (n) crc = (uint32_t)crc32(crc, data, (uInt)n);
    unsigned char c[4];
    put32be(c, crc);
    return fwrite(h, 1, 8, f) == 8 && (!n || fwrite(data, 1, n, f) == n) && fwrite(c, 1, 4, f) == 4 ? GN_OK
                                                                                                    : GN_EIO;
}

// PNG (ISO/IEC 15948): signature, IHDR, one zlib IDAT of filter-0 scanlines, IEND.
int io_png_write(const char *path, const io_image *img, int depth) {
    if (img->c < 1 || img->c > 4 || (depth != 8 && depth != 16))
        return gn_err(GN_EINVAL, "%s: PNG needs 1-4 bands (gray, gray+alpha, RGB, RGBA) and 8 or 16 bits",
                      path);
    size_t bpp = (size_t)img->c * (size_t)(depth / 8), row = 1 + bpp * (size_t)img->w,
           P = (size_t)img->w * img->h;
    unsigned char *raw = gn_malloc(row * (size_t)img->h);
    if (!raw) return GN_ENOMEM;
    float top = depth == 8 ? 255.0f : 65535.0f;
    for (int y = 0; y < img->h; y++) {
        unsigned char *r = raw + (size_t)y * row;
        *r++ = 0;
        for (int x = 0; x < img->w; x++)
            for (int b = 0; b < img->c; b++) {
                float v = img->data[(size_t)b * P + (size_t)y * img->w + x];
                v = v < 0 || v != v ? 0 : v > top ? top : v;
                unsigned q = (unsigned)lrintf(v);
                if (depth == 16) *r++ = (unsigned char)(q >> 8);
                *r++ = (unsigned char)q;
            }
    }
    uLongf zlen = compressBound((uLong)(row * (size_t)img->h));
    unsigned char *z = gn_malloc(zlen);
    if (!z) return free(raw), GN_ENOMEM;
    int zr = compress2(z, &zlen, raw, (uLong)(row * (size_t)img->h), 6);
    free(raw);
    if (zr != Z_OK) return free(z), gn_err(GN_EIO, "%s: zlib compression failed", path);
    unsigned char ihdr[13];
    put32be(ihdr, (uint32_t)img->w);
    put32be(ihdr + 4, (uint32_t)img->h);
    static const unsigned char ctype[5] = {0, 0, 4, 2, 6}; // PNG colour types by channel count
    ihdr[8] = (unsigned char)depth, ihdr[9] = ctype[img->c], ihdr[10] = ihdr[11] = ihdr[12] = 0;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return free(z), gn_err(GN_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    int rc = fwrite("\x89PNG\r\n\x1a\n", 1, 8, f) == 8 ? GN_OK : GN_EIO;
    if (!rc) rc = png_chunk(f, "IHDR", ihdr, 13);
    if (!rc) rc = png_chunk(f, "IDAT", z, zlen);
    if (!rc) rc = png_chunk(f, "IEND", NULL, 0);
    free(z);
    if (fclose(f) || rc || rename(tmp, path)) {
        remove(tmp);
        return gn_err(GN_EIO, "%s: write failed: %s", path, strerror(errno));
    }
    return GN_OK;
}
