// FITS binary-table catalogs (BINTABLE, via cfitsio) as CSV text for the
// catalog parser: numeric columns of any type (a vector column of repeat r
// becomes name_0 .. name_{r-1}), TNULL and NaN as empty (null) fields,
// string columns quoted; logical, complex and bit columns are left out (they
// are not catalog values).
#include "fitstable.h"

#include <fitsio.h>
#include <unistd.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "catalog.h"
#include "file.h"
#include "image.h"

#define CHUNK 4096

typedef struct tcol {
    char name[72];
    int type;    // cfitsio type code (TSTRING, TLOGICAL, or numeric)
    long repeat; // values per row (strings: 1)
    long width;  // strings: characters
    int use;
} tcol;

static int columns(fitsfile *f, const char *name, tcol *c, int n) {
    int st = 0;
    for (int j = 0; j < n; j++) {
        char key[16], v[FLEN_VALUE] = "", cm[FLEN_COMMENT];
        int t;
        long rep, w;
        snprintf(key, sizeof key, "TTYPE%d", j + 1);
        if (fits_read_key(f, TSTRING, key, v, cm, &st)) st = 0, snprintf(v, sizeof v, "col%d", j + 1);
        if (fits_get_coltype(f, j + 1, &t, &rep, &w, &st))
            return io_fits_error(name, st, "reading the column types");
        snprintf(c[j].name, sizeof c[j].name, "%s", v);
        c[j].type = t, c[j].repeat = t == TSTRING ? 1 : rep, c[j].width = w;
        c[j].use = t != TCOMPLEX && t != TDBLCOMPLEX && t != TBIT && t != TLOGICAL && rep >= 1 &&
                   (t == TSTRING || rep <= 4096);
    }
    return GN_OK;
}

static void put_string(FILE *m, const char *s) {
    fputc('"', m);
    for (; *s; s++) {
        if (*s == '"') fputc('"', m);
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, m);
    }
    fputc('"', m);
}

static void header(FILE *m, const tcol *c, int n) {
    int first = 1;
    for (int j = 0; j < n; j++) {
        if (!c[j].use) continue;
        for (long k = 0; k < c[j].repeat; k++, first = 0) {
            fputs(first ? "" : ",", m);
            if (c[j].repeat > 1)
                fprintf(m, "%s_%ld", c[j].name, k);
            else
                fputs(c[j].name, m);
        }
    }
    fputc('\n', m);
}

// Rows [r0, r0 + nr) of every used column: numbers (null/NaN -> empty field) and strings.
static int rows_csv(fitsfile *f, const char *name, const tcol *c, int n, long r0, long nr, double **num,
                    char ***str, FILE *m) {
    int st = 0, anynul;
    for (int j = 0; j < n; j++) {
        if (!c[j].use) continue;
        if (c[j].type == TSTRING)
            fits_read_col_str(f, j + 1, r0 + 1, 1, nr, "", str[j], &anynul, &st);
        else
            fits_read_col(f, TDOUBLE, j + 1, r0 + 1, 1, nr * c[j].repeat, &(double){NAN}, num[j], &anynul,
                          &st);
        if (st) return io_fits_error(name, st, "reading the table (truncated file?)");
    }
    for (long r = 0; r < nr; r++) {
        int first = 1;
        for (int j = 0; j < n; j++) {
            if (!c[j].use) continue;
            for (long k = 0; k < c[j].repeat; k++, first = 0) {
                if (!first) fputc(',', m);
                if (c[j].type == TSTRING)
                    put_string(m, str[j][r]);
                else {
                    double v = num[j][r * c[j].repeat + k];
                    if (isfinite(v)) fprintf(m, "%.17g", v);
                }
            }
        }
        fputc('\n', m);
    }
    return GN_OK;
}

static int table_csv(fitsfile *f, const char *name, char **text, size_t *len) {
    int st = 0, n = 0;
    long nrows = 0;
    if (fits_get_num_rows(f, &nrows, &st) || fits_get_num_cols(f, &n, &st))
        return io_fits_error(name, st, "reading the table's size");
    if (n < 1) return gn_err(GN_EFORMAT, "%s: the table has no columns", name);
    tcol *c = gn_calloc((size_t)n, sizeof *c);
    double **num = gn_calloc((size_t)n, sizeof *num);
    char ***str = gn_calloc((size_t)n, sizeof *str);
    FILE *m = c && num && str ? open_memstream(text, len) : NULL;
    int rc = m ? columns(f, name, c, n) : GN_ENOMEM;
    for (int j = 0; !rc && j < n; j++) {
        if (!c[j].use) continue;
        if (c[j].type != TSTRING) {
            if (!(num[j] = gn_malloc(sizeof(double) * CHUNK * (size_t)c[j].repeat))) rc = GN_ENOMEM;
            continue;
        }
        if (!(str[j] = gn_calloc(CHUNK, sizeof(char *)))) rc = GN_ENOMEM;
        for (int r = 0; !rc && r < CHUNK; r++)
            if (!(str[j][r] = gn_malloc((size_t)c[j].width + 1))) rc = GN_ENOMEM;
    }
    if (!rc) header(m, c, n);
    for (long r0 = 0; !rc && r0 < nrows; r0 += CHUNK)
        rc = rows_csv(f, name, c, n, r0, nrows - r0 < CHUNK ? nrows - r0 : CHUNK, num, str, m);
    for (int j = 0; j < n; j++) {
        for (int r = 0; str && str[j] && r < CHUNK; r++) free(str[j][r]);
        if (num) free(num[j]);
        if (str) free(str[j]);
    }
    free(c), free(num), free(str);
    if (m) fclose(m);
    if (rc) free(*text), *text = NULL;
    return rc;
}

int io_is_fits_table(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return strstr(b, ".fits") || strstr(b, ".fit[") || strstr(b, ".fts") ||
           (strlen(b) > 4 && !strcmp(b + strlen(b) - 4, ".fit"));
}

// The header cards of every HDU (blocks that begin with SIMPLE or XTENSION, up to their END card) must
// be printable ASCII, as the FITS standard says: cfitsio's own header parsing is not safe on other bytes.
static int headers_ascii(const unsigned char *b, size_t n) {
    for (size_t blk = 0; blk + 2880 <= n; blk += 2880) {
        if (memcmp(b + blk, "SIMPLE  =", 9) && memcmp(b + blk, "XTENSION=", 9)) continue;
        for (size_t c = blk; c + 80 <= n; c += 80) {
            for (int i = 0; i < 80; i++)
                if (b[c + i] < 0x20 || b[c + i] > 0x7e) return 0;
            if (!memcmp(b + c, "END     ", 8)) break;
        }
    }
    return 1;
}

// Move to the table: ext given ("1", "CAT"), or the first table after the primary HDU.
static int to_table(fitsfile *f, const char *path, const char *ext) {
    int st = 0, type = 0;
    if (ext && *ext) {
        char *end;
        long k = strtol(ext, &end, 10);
        if (!*end)
            fits_movabs_hdu(f, (int)k + 1, &type, &st);
        else
            fits_movnam_hdu(f, ANY_HDU, (char *)ext, 0, &st);
        return st ? io_fits_error(path, st, "no such extension") : GN_OK;
    }
    for (int h = 2; !st; h++)
        if (!fits_movabs_hdu(f, h, &type, &st) && (type == BINARY_TBL || type == ASCII_TBL)) return GN_OK;
    return gn_err(GN_EFORMAT, "%s: no table extension", path);
}

int io_fits_table_csv(const char *path, const void *mem, size_t memlen, char **text, size_t *len) {
    char file[4096], ext[128] = "";
    snprintf(file, sizeof file, "%s", path);
    char *br = strrchr(file, '[');
    if (!mem && br && br[strlen(br) - 1] == ']') // cat.fits[1] or cat.fits[CAT]
        snprintf(ext, sizeof ext, "%.*s", (int)(strlen(br) - 2), br + 1), *br = 0;
    unsigned char *own = NULL;
    size_t n = memlen;
    if (!mem) {
        int rc = io_read_file(file, &own, &n);
        if (rc) return rc;
        mem = own;
    }
    *text = NULL, *len = 0;
    int rc = headers_ascii(mem, n)
                 ? GN_OK
                 : gn_err(GN_EFORMAT, "%s: a header card holds bytes that are not ASCII", path);
    fitsfile *f = NULL;
    int st = 0;
    void *buf = (void *)mem;
    size_t sz = n;
    if (!rc && fits_open_memfile(&f, file, READONLY, &buf, &sz, 0, NULL, &st))
        rc = io_fits_error(path, st, "not a FITS file");
    if (!rc) rc = to_table(f, path, ext);
    LONGLONG head, data, end;
    if (!rc &&
        (fits_get_hduaddrll(f, &head, &data, &end, &st) || (size_t)end > n)) // claims more than there is
        rc = st ? io_fits_error(path, st, "reading the table header")
                : gn_err(GN_EFORMAT, "%s: truncated table", path);
    int type = 0;
    if (!rc && (fits_get_hdu_type(f, &type, &st), type != BINARY_TBL && type != ASCII_TBL))
        rc = gn_err(GN_EFORMAT, "%s: extension %s is not a table", path, ext);
    if (!rc) rc = table_csv(f, path, text, len);
    if (f) fits_close_file(f, &(int){0});
    free(own);
    return rc;
}

// One catalog column into the table being written: numbers as 'D' (null: NaN), text as 'wA'.
static int put_column(fitsfile *f, const io_catalog *c, int j, int k, int *st) {
    const io_column *col = &c->cols[j];
    if (col->numeric && j != c->id_col)
        return fits_write_col(f, TDOUBLE, k, 1, 1, (LONGLONG)c->n_rows, col->v, st);
    return fits_write_col(f, TSTRING, k, 1, 1, (LONGLONG)c->n_rows, col->s, st);
}

int io_catalog_write_fits(const io_catalog *c, const char *path) {
    int n = c->n_cols, st = 0;
    char **ttype = gn_calloc((size_t)n, sizeof(char *)), (*tform)[16] = gn_calloc((size_t)n, 16), **tf;
    tf = gn_calloc((size_t)n, sizeof(char *));
    if (!ttype || !tform || !tf) return free(ttype), free(tform), free(tf), GN_ENOMEM;
    for (int j = 0; j < n; j++) {
        const io_column *col = &c->cols[j];
        size_t w = 1;
        for (size_t r = 0; !(col->numeric && j != c->id_col) && r < c->n_rows; r++)
            w = strlen(col->s[r]) > w ? strlen(col->s[r]) : w;
        if (col->numeric && j != c->id_col) snprintf(tform[j], 16, "1D");
        else snprintf(tform[j], 16, "%dA", (int)(w < 99999 ? w : 99999));
        ttype[j] = col->name, tf[j] = tform[j];
    }
    char tmp[4200], bang[4210];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    snprintf(bang, sizeof bang, "!%s", tmp);
    fitsfile *f = NULL;
    fits_create_file(&f, bang, &st);
    fits_create_tbl(f, BINARY_TBL, (LONGLONG)c->n_rows, n, ttype, tf, NULL, "GALNN", &st);
    for (int j = 0; j < n && !st; j++) put_column(f, c, j, j + 1, &st);
    int rc = st ? io_fits_error(path, st, "writing the FITS table") : GN_OK;
    if (f) fits_close_file(f, &st);
    if (!rc && st) rc = io_fits_error(path, st, "closing the FITS table");
    if (!rc && rename(tmp, path)) rc = gn_err(GN_EIO, "%s: cannot write: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    free(ttype), free(tform), free(tf);
    return rc;
}
