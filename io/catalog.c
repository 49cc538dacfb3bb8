#include "catalog.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/gn_common.h"
#include "config.h"
#include "fitstable.h"
#include "npy.h"

uint64_t io_fnv1a(const void *data, size_t n, uint64_t h) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void io_catalog_free(io_catalog *c) {
    for (int j = 0; j < c->n_cols; j++) {
        free(c->cols[j].name);
        free(c->cols[j].v);
        free(c->cols[j].s);
    }
    free(c->cols);
    free(c->path);
    free(c->buf);
    memset(c, 0, sizeof *c);
    c->id_col = c->split_col = -1;
}

int io_catalog_find(const io_catalog *c, const char *name) {
    for (int j = 0; j < c->n_cols; j++)
        if (!strcmp(c->cols[j].name, name)) return j;
    return -1;
}

const char *io_catalog_id(const io_catalog *c, size_t row) {
    return c->id_col >= 0 ? c->cols[c->id_col].s[row] : NULL;
}

// Levenshtein distance, for "did you mean" hints.
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 60 || lb > 60) return 99;
    int d[61][61];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int s = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            int t = d[i - 1][j] + 1, u = d[i][j - 1] + 1;
            d[i][j] = s < t ? (s < u ? s : u) : (t < u ? t : u);
        }
    return d[la][lb];
}

static int missing_column(const io_catalog *c, const char *name) {
    int best = -1, bd = 99;
    for (int j = 0; j < c->n_cols; j++) {
        int d = edit_distance(name, c->cols[j].name);
        if (d < bd) bd = d, best = j;
    }
    if (best >= 0 && bd <= 3)
        return gn_err(GN_EINVAL, "%s: no column '%s' (did you mean '%s'?)", c->path, name,
                      c->cols[best].name);
    return gn_err(GN_EINVAL, "%s: no column '%s' (%d columns, see the header line)", c->path, name,
                  c->n_cols);
}

const double *io_catalog_values(const io_catalog *c, const char *name) {
    int j = io_catalog_find(c, name);
    if (j < 0) {
        missing_column(c, name);
        return NULL;
    }
    if (!c->cols[j].numeric) {
        gn_err(GN_EINVAL, "%s: column '%s' holds text (e.g. '%s'), not numbers", c->path, name,
               c->cols[j].s[0] ? c->cols[j].s[0] : "");
        for (size_t r = 0; r < c->n_rows; r++) // name the first text field precisely
            if (c->cols[j].s[r][0] && isnan(c->cols[j].v[r])) {
                char *end;
                strtod(c->cols[j].s[r], &end);
                if (*end) {
                    gn_err(GN_EINVAL, "%s: column '%s' holds text ('%s' in data row %zu), not numbers",
                           c->path, name, c->cols[j].s[r], r + 1);
                    break;
                }
            }
        return NULL;
    }
    return c->cols[j].v;
}

// Parse one field as a number; *null set for empty/NaN/sentinel; returns 0 if text.
static int parse_num(const char *s, double thr, double *v, int *null) {
    *null = 0;
    while (isspace((unsigned char)*s)) s++;
    if (!*s) {
        *null = 1;
        *v = NAN;
        return 1;
    }
    char *end;
    double x = strtod(s, &end);
    while (isspace((unsigned char)*end)) end++;
    if (end == s || *end) {
        *v = NAN;
        return 0;
    }
    if (isnan(x) || fabs(x) >= thr) {
        *null = 1;
        *v = NAN;
        return 1;
    }
    *v = x; // +-inf below the threshold cannot happen: |inf| >= thr
    return 1;
}

static int add_column(io_catalog *c, const char *name) {
    if (c->n_cols == c->cap_cols) {
        int nc = c->cap_cols ? c->cap_cols * 2 : 16;
        io_column *n = gn_realloc(c->cols, sizeof(io_column) * (size_t)nc);
        if (!n) return GN_ENOMEM;
        c->cols = n;
        c->cap_cols = nc;
    }
    io_column *col = &c->cols[c->n_cols];
    memset(col, 0, sizeof *col);
    col->name = gn_strdup(name);
    size_t n = c->n_rows ? c->n_rows : 1;
    col->v = gn_malloc(sizeof(double) * n);
    col->s = gn_calloc(n, sizeof(char *));
    if (!col->name || !col->v || !col->s) {
        free(col->name), free(col->v), free(col->s);
        return GN_ENOMEM;
    }
    c->n_cols++;
    return GN_OK;
}

// Split a line into fields in place. Comma mode honours double quotes ("" is a
// quote inside a quoted field). Returns the number of fields (up to max).
static int split_fields(char *line, int comma, char **f, int max) {
    int n = 0;
    char *p = line;
    if (!comma) {
        for (;;) {
            while (*p == ' ' || *p == '\t') p++;
            if (!*p) break;
            if (n < max) f[n] = p;
            n++;
            while (*p && *p != ' ' && *p != '\t') p++;
            if (*p) *p++ = 0;
        }
        return n;
    }
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        char *start = p;
        if (*p == '"') {
            char *w = ++p;
            start = w;
            for (;;) {
                if (!*p) break;
                if (*p == '"') {
                    if (p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            while (*p && *p != ',') p++;
            char *endq = w;
            if (n < max) f[n] = start;
            n++;
            int more = *p == ',';
            *endq = 0;
            if (!more) break;
            p++;
            continue;
        }
        while (*p && *p != ',') p++;
        char *e = p;
        while (e > start && (e[-1] == ' ' || e[-1] == '\t')) e--;
        int more = *p == ',';
        *e = 0;
        if (n < max) f[n] = start;
        n++;
        if (!more) break;
        p++;
    }
    return n;
}

int io_catalog_read(const char *path, const io_catalog_opts *o, io_catalog *c) {
    unsigned char *raw;
    size_t len;
    memset(c, 0, sizeof *c);
    c->id_col = c->split_col = -1;
    int rc = io_is_fits_table(path) ? io_fits_table_csv(path, NULL, 0, (char **)&raw, &len)
                                    : io_read_file(path, &raw, &len);
    if (rc) return rc;
    return io_catalog_parse(path, (char *)raw, len, o, c);
}

// The id and split columns; every row has an id, and no id appears twice.
static int find_ids(io_catalog *c, const char *path, const io_catalog_opts *o) {
    int rc;
    const char *idn = o && o->id_column ? o->id_column : "id";
    c->id_col = io_catalog_find(c, idn);
    c->split_col = io_catalog_find(c, "split");
    if (o && o->require_id && c->id_col < 0) {
        rc = gn_err(GN_EINVAL,
                    "%s: no '%s' column (the header must name the id column, or --id-column / [data] "
                    "id_column another one)",
                    path, idn);
        return rc;
    }
    if (c->id_col >= 0)
        for (size_t r = 0; r < c->n_rows; r++)
            if (!c->cols[c->id_col].s[r][0]) {
                rc = gn_err(GN_EFORMAT, "%s: data row %zu has an empty id", path, r + 1);
                return rc;
            }
    if (c->id_col >= 0 && o && o->require_id) { // ids name galaxies: two rows with one id is an error
        io_id_index ix;
        if ((rc = io_id_index_build(c, &ix))) return rc;
        io_id_index_free(&ix);
    }
    return GN_OK;
}

// The text's lines, split in place: CR, comment lines (#) and blank lines dropped; lineno: 1-based.
static int split_lines(char *buf, size_t len, const char *path, char ***lines_out, size_t **lineno_out,
                       size_t *n_out) {
    size_t n_lines = 1, nl = 0, ln = 0;
    for (size_t i = 0; i < len; i++) n_lines += buf[i] == '\n';
    char **lines = gn_malloc(sizeof(char *) * n_lines);
    size_t *lineno = gn_malloc(sizeof(size_t) * n_lines);
    if (!lines || !lineno) return free(lines), free(lineno), GN_ENOMEM;
    for (char *p = buf; p;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        ln++;
        size_t L = strlen(p);
        if (L && p[L - 1] == '\r') p[--L] = 0;
        char *q = p;
        while (*q == ' ' || *q == '\t') q++;
        if (*q && *q != '#') lines[nl] = p, lineno[nl++] = ln;
        p = e ? e + 1 : NULL;
    }
    if (nl == 0) {
        free(lines), free(lineno);
        return gn_err(GN_EFORMAT, "%s: empty catalog (no header line)", path);
    }
    *lines_out = lines, *lineno_out = lineno, *n_out = nl;
    return GN_OK;
}

int io_catalog_parse(const char *path, char *raw, size_t len, const io_catalog_opts *o, io_catalog *c) {
    memset(c, 0, sizeof *c);
    c->id_col = c->split_col = -1;
    c->null_threshold = o && o->null_threshold > 0 ? o->null_threshold : 9000;
    int rc;
    if (!(c->path = gn_strdup(path))) return free(raw), GN_ENOMEM;
    c->content_hash = io_fnv1a(raw, len, IO_FNV_INIT);
    c->buf = gn_realloc(raw, len + 1);
    if (!c->buf) {
        free(raw);
        io_catalog_free(c);
        return GN_ENOMEM;
    }
    c->buf[len] = 0;
    if (memchr(c->buf, 0, len)) {
        rc = gn_err(GN_EFORMAT, "%s: contains NUL bytes (binary file, not a CSV table)", path);
        goto fail;
    }
    char **lines = NULL;
    size_t *lineno = NULL, nl = 0;
    if ((rc = split_lines(c->buf, len, path, &lines, &lineno, &nl))) goto fail;
    int comma = strchr(lines[0], ',') != NULL;
    int maxf = 1;
    for (char *p = lines[0]; *p; p++) maxf += (*p == ',' || *p == ' ' || *p == '\t');
    char **f = gn_malloc(sizeof(char *) * (size_t)(maxf + 1));
    if (!f) {
        free(lines), free(lineno);
        rc = GN_ENOMEM;
        goto fail;
    }
    int nf = split_fields(lines[0], comma, f, maxf);
    c->n_rows = nl - 1;
    for (int j = 0; j < nf; j++) {
        if (!f[j][0]) {
            rc = gn_err(GN_EFORMAT, "%s:%zu: header column %d has no name", path, lineno[0], j + 1);
            break;
        }
        if (io_catalog_find(c, f[j]) >= 0) {
            rc = gn_err(GN_EFORMAT, "%s:%zu: column '%s' appears twice in the header", path, lineno[0], f[j]);
            break;
        }
        if ((rc = add_column(c, f[j]))) break;
    }
    char **g = rc ? NULL : gn_malloc(sizeof(char *) * (size_t)(nf + 1));
    if (!rc && !g) rc = GN_ENOMEM;
    for (size_t r = 0; !rc && r < c->n_rows; r++) {
        int n = split_fields(lines[r + 1], comma, g, nf + 1);
        if (n != nf) {
            rc = gn_err(GN_EFORMAT, "%s:%zu: %d field%s, but the header has %d", path, lineno[r + 1], n,
                        n == 1 ? "" : "s", nf);
            break;
        }
        for (int j = 0; j < nf; j++) {
            io_column *col = &c->cols[j];
            int null;
            col->s[r] = g[j];
            if (parse_num(g[j], c->null_threshold, &col->v[r], &null)) {
                col->n_null += (size_t)null;
            } else
                col->n_text++;
        }
    }
    free(g);
    free(f);
    free(lines);
    free(lineno);
    if (rc) goto fail;
    for (int j = 0; j < c->n_cols; j++) c->cols[j].numeric = c->cols[j].n_text == 0;
    if ((rc = find_ids(c, path, o))) goto fail;
    return GN_OK;
fail:
    io_catalog_free(c);
    return rc;
}

void io_catalog_report_nulls(const io_catalog *c, void (*print)(void *, const char *), void *user) {
    char line[256];
    for (int j = 0; j < c->n_cols; j++)
        if (c->cols[j].numeric && c->cols[j].n_null) {
            snprintf(line, sizeof line,
                     "  %s: %zu of %zu value(s) null (empty, NaN, |v| >= %g or a null rule), masked",
                     c->cols[j].name, c->cols[j].n_null, c->n_rows, c->null_threshold);
            print(user, line);
        }
}

// ---- derived columns: a small recursive-descent expression evaluator ----

typedef struct expr {
    const io_catalog *cat;
    const char *s, *p;
    int err;
} expr;

// Parse and evaluate for row r (re-parsed per row: catalogs are small, and
// it keeps the evaluator trivial). Returns NaN for null inputs.
static double e_sum(expr *e, size_t r);

static void skipws(expr *e) {
    while (isspace((unsigned char)*e->p)) e->p++;
}

static double e_atom(expr *e, size_t r) {
    skipws(e);
    if (*e->p == '(') {
        e->p++;
        double v = e_sum(e, r);
        skipws(e);
        if (*e->p != ')') {
            if (!e->err) e->err = gn_err(GN_EINVAL, "expression '%s': missing ')'", e->s);
            return NAN;
        }
        e->p++;
        return v;
    }
    if (*e->p == '-') {
        e->p++;
        return -e_atom(e, r);
    }
    if (isdigit((unsigned char)*e->p) || *e->p == '.') {
        char *end;
        double v = strtod(e->p, &end);
        e->p = end;
        return v;
    }
    if (isalpha((unsigned char)*e->p) || *e->p == '_') {
        const char *st = e->p;
        while (isalnum((unsigned char)*e->p) || *e->p == '_' || *e->p == '.') e->p++;
        char name[128];
        size_t L = (size_t)(e->p - st) < sizeof name - 1 ? (size_t)(e->p - st) : sizeof name - 1;
        memcpy(name, st, L);
        name[L] = 0;
        skipws(e);
        if (*e->p == '(') { // function
            e->p++;
            double a = e_sum(e, r), b = NAN;
            skipws(e);
            if (!strcmp(name, "pow") && *e->p == ',') {
                e->p++;
                b = e_sum(e, r);
                skipws(e);
            }
            if (*e->p != ')') {
                if (!e->err) e->err = gn_err(GN_EINVAL, "expression '%s': missing ')' after %s(", e->s, name);
                return NAN;
            }
            e->p++;
            if (!strcmp(name, "log10")) return log10(a);
            if (!strcmp(name, "ln") || !strcmp(name, "log")) return log(a);
            if (!strcmp(name, "exp")) return exp(a);
            if (!strcmp(name, "sqrt")) return sqrt(a);
            if (!strcmp(name, "abs")) return fabs(a);
            if (!strcmp(name, "asinh")) return asinh(a); // luptitudes: 22.5 - 2.5/ln(10) (asinh(f/2b) + ln b)
            if (!strcmp(name, "pow")) return pow(a, b);
            if (!e->err) e->err = gn_err(GN_EINVAL, "expression '%s': unknown function '%s'", e->s, name);
            return NAN;
        }
        const double *v = io_catalog_values(e->cat, name);
        if (!v) {
            if (!e->err) e->err = gn_err_prefix(GN_EINVAL, "expression '%s': ", e->s);
            return NAN;
        }
        return v[r];
    }
    if (!e->err)
        e->err =
            gn_err(GN_EINVAL, "expression '%s': unexpected '%s'", e->s, *e->p ? e->p : "end of expression");
    return NAN;
}

static double e_prod(expr *e, size_t r) {
    double v = e_atom(e, r);
    for (;;) {
        skipws(e);
        if (*e->p == '*')
            e->p++, v *= e_atom(e, r);
        else if (*e->p == '/')
            e->p++, v /= e_atom(e, r);
        else
            return v;
    }
}

static double e_sum(expr *e, size_t r) {
    double v = e_prod(e, r);
    for (;;) {
        skipws(e);
        if (*e->p == '+')
            e->p++, v += e_prod(e, r);
        else if (*e->p == '-')
            e->p++, v -= e_prod(e, r);
        else
            return v;
    }
}

int io_catalog_derive(io_catalog *c, const char *name, const char *text) {
    if (io_catalog_find(c, name) >= 0)
        return gn_err(GN_EINVAL, "%s: column '%s' exists already", c->path, name);
    size_t n = c->n_rows ? c->n_rows : 1;
    double *vals = gn_malloc(sizeof(double) * n);
    if (!vals) return GN_ENOMEM;
    for (size_t r = 0; r < c->n_rows; r++) {
        expr e = {c, text, text, 0};
        double v = e_sum(&e, r);
        skipws(&e);
        if (!e.err && *e.p) e.err = gn_err(GN_EINVAL, "expression '%s': unexpected '%s'", text, e.p);
        if (e.err) {
            free(vals);
            return e.err;
        }
        vals[r] = isfinite(v) ? v : NAN;
    }
    int rc = add_column(c, name);
    if (rc) return free(vals), rc;
    io_column *col = &c->cols[c->n_cols - 1];
    free(col->v);
    col->v = vals;
    col->numeric = 1;
    static char empty[1] = "";
    for (size_t r = 0; r < c->n_rows; r++) {
        col->s[r] = empty; // derived columns have no source text
        col->n_null += isnan(vals[r]);
    }
    return GN_OK;
}

int io_catalog_join(io_catalog *c, const char *path, size_t *matched) {
    io_catalog o;
    io_catalog_opts op = {c->null_threshold, 1, NULL};
    int rc = io_catalog_read(path, &op, &o);
    if (rc) return rc;
    io_id_index ix;
    if ((rc = io_id_index_build(&o, &ix))) return io_catalog_free(&o), rc;
    long *at = gn_malloc(sizeof(long) * (c->n_rows ? c->n_rows : 1));
    if (!at) rc = GN_ENOMEM;
    size_t hit = 0;
    for (size_t r = 0; !rc && r < c->n_rows; r++) hit += (at[r] = io_id_find(&ix, io_catalog_id(c, r))) >= 0;
    static char empty[1] = "";
    for (int k = 0; !rc && k < o.n_cols; k++) {
        const io_column *src = &o.cols[k];
        if (k == o.id_col || k == o.split_col || !src->numeric) continue;
        if (io_catalog_find(c, src->name) >= 0) {
            rc = gn_err(GN_EINVAL, "%s: column '%s' is in %s already", path, src->name, c->path);
            break;
        }
        if ((rc = add_column(c, src->name))) break;
        io_column *col = &c->cols[c->n_cols - 1];
        col->numeric = 1;
        for (size_t r = 0; r < c->n_rows; r++) {
            col->v[r] = at[r] >= 0 ? src->v[at[r]] : NAN;
            col->s[r] = empty;
            col->n_null += isnan(col->v[r]);
        }
    }
    if (matched) *matched = hit;
    free(at);
    io_id_index_free(&ix);
    io_catalog_free(&o);
    return rc;
}

int io_catalog_derive_spec(io_catalog *c, const char *spec) {
    while (*spec == ' ' || *spec == '\t') spec++; // "a=x; b=y" lists leave a space before b
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec) return gn_err(GN_EINVAL, "derived column '%s': expected NAME=EXPRESSION", spec);
    char name[128];
    size_t L = (size_t)(eq - spec);
    while (L && spec[L - 1] == ' ') L--;
    if (L >= sizeof name) return gn_err(GN_EINVAL, "derived column name too long in '%s'", spec);
    memcpy(name, spec, L);
    name[L] = 0;
    return io_catalog_derive(c, name, eq + 1);
}

// ---- splits ----

const char *io_split_name(int s) {
    static const char *n[] = {"train", "val", "test", "none"};
    return s >= 0 && s <= 3 ? n[s] : "?";
}

int io_split_parse(const char *s) {
    if (!strcasecmp(s, "train") || !strcasecmp(s, "training")) return IO_SPLIT_TRAIN;
    if (!strcasecmp(s, "val") || !strcasecmp(s, "valid") || !strcasecmp(s, "validation")) return IO_SPLIT_VAL;
    if (!strcasecmp(s, "test")) return IO_SPLIT_TEST;
    return -1;
}

int io_split_from_id(const char *id, double ft, double fv) {
    uint64_t h = io_fnv1a(id, strlen(id), IO_FNV_INIT);
    // FNV-1a's high bits barely change between ids like G000001 and G000002:
    // finish with a full avalanche (the splitmix64 finaliser) before using them.
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    h ^= h >> 31;
    double u = (double)(h >> 11) * 0x1.0p-53;
    return u < ft ? IO_SPLIT_TRAIN : u < ft + fv ? IO_SPLIT_VAL : IO_SPLIT_TEST;
}

int io_catalog_splits(const io_catalog *c, double ft, double fv, uint8_t *split) {
    if (!(ft >= 0 && fv >= 0 && ft + fv <= 1))
        return gn_err(GN_EINVAL, "split fractions %g (train) and %g (val) must be >= 0 and add to <= 1", ft,
                      fv);
    for (size_t r = 0; r < c->n_rows; r++) {
        if (c->split_col >= 0) {
            int s = io_split_parse(c->cols[c->split_col].s[r]);
            if (s < 0)
                return gn_err(GN_EFORMAT, "%s: data row %zu: split '%s' is not train, val or test", c->path,
                              r + 1, c->cols[c->split_col].s[r]);
            split[r] = (uint8_t)s;
        } else if (c->id_col >= 0)
            split[r] = (uint8_t)io_split_from_id(c->cols[c->id_col].s[r], ft, fv);
        else
            return gn_err(GN_EINVAL, "%s: needs an 'id' or a 'split' column to assign splits", c->path);
    }
    return GN_OK;
}

int io_id_index_build(const io_catalog *cat, io_id_index *ix) {
    memset(ix, 0, sizeof *ix);
    if (cat->id_col < 0) return gn_err(GN_EFORMAT, "%s: no `id` column to join on", cat->path);
    size_t cap = 16;
    while (cap < 2 * cat->n_rows) cap *= 2;
    ix->cat = cat, ix->cap = cap;
    if (!(ix->slot = gn_calloc(cap, sizeof(uint32_t)))) return GN_ENOMEM;
    for (size_t r = 0; r < cat->n_rows; r++) {
        const char *id = io_catalog_id(cat, r);
        size_t h = (size_t)io_fnv1a(id, strlen(id), IO_FNV_INIT) & (cap - 1);
        while (ix->slot[h]) {
            if (!strcmp(io_catalog_id(cat, ix->slot[h] - 1), id)) {
                size_t first = ix->slot[h] - 1;
                io_id_index_free(ix);
                return gn_err(GN_EFORMAT, "%s: id '%s' appears twice (data rows %zu and %zu)", cat->path, id,
                              first + 1, r + 1);
            }
            h = (h + 1) & (cap - 1);
        }
        ix->slot[h] = (uint32_t)r + 1;
    }
    return GN_OK;
}

long io_id_find(const io_id_index *ix, const char *id) {
    size_t h = (size_t)io_fnv1a(id, strlen(id), IO_FNV_INIT) & (ix->cap - 1);
    while (ix->slot[h]) {
        if (!strcmp(io_catalog_id(ix->cat, ix->slot[h] - 1), id)) return (long)ix->slot[h] - 1;
        h = (h + 1) & (ix->cap - 1);
    }
    return -1;
}

void io_id_index_free(io_id_index *ix) {
    free(ix->slot);
    memset(ix, 0, sizeof *ix);
}

size_t io_gather_complete(size_t N, int n_sets, const double *const *const *cols, const int *dims,
                          double *const *out) {
    size_t n = 0;
    for (size_t r = 0; r < N; r++) {
        int ok = 1;
        for (int s = 0; s < n_sets; s++)
            for (int j = 0; j < dims[s]; j++) ok &= !isnan(cols[s][j][r]);
        if (!ok) continue;
        for (int s = 0; s < n_sets; s++)
            for (int j = 0; j < dims[s]; j++) out[s][n * (size_t)dims[s] + (size_t)j] = cols[s][j][r];
        n++;
    }
    return n;
}

// One null-rule term: "V" (equal), "<=V", "<V", ">=V", ">V". op: 0 =, 1 <=, 2 <, 3 >=, 4 >.
static int null_term(const char *t, int *op, double *v) {
    while (isspace((unsigned char)*t)) t++;
    *op = t[0] == '<' ? (t[1] == '=' ? 1 : 2) : t[0] == '>' ? (t[1] == '=' ? 3 : 4) : 0;
    t += *op == 0 ? 0 : *op == 1 || *op == 3 ? 2 : 1;
    char *end;
    *v = strtod(t, &end);
    while (isspace((unsigned char)*end)) end++;
    return end != t && !*end && !isnan(*v);
}

static int null_match(int op, double r, double x) {
    return op == 0 ? x == r : op == 1 ? x <= r : op == 2 ? x < r : op == 3 ? x >= r : x > r;
}

int io_catalog_null_rule(io_catalog *c, const char *pattern, const char *rules, size_t *masked) {
    int op[32];
    double val[32];
    char buf[1024], *items[32];
    snprintf(buf, sizeof buf, "%s", rules);
    int nt = io_split_list(buf, items, 32);
    for (int k = 0; k < nt; k++)
        if (!null_term(items[k], &op[k], &val[k]))
            return gn_err(GN_EINVAL, "%s: null rule '%s': '%s' is not V, <=V, <V, >=V or >V", c->path, rules,
                          items[k]);
    if (nt < 1) return gn_err(GN_EINVAL, "%s: null rule for %s lists no value", c->path, pattern);
    size_t L = strlen(pattern), n = 0;
    int prefix = L && pattern[L - 1] == '*', hits = 0;
    for (int j = 0; j < c->n_cols; j++) {
        io_column *col = &c->cols[j];
        if (!col->numeric || j == c->id_col || j == c->split_col) continue;
        if (prefix ? strncmp(col->name, pattern, L - 1) : strcmp(col->name, pattern)) continue;
        hits++;
        for (size_t r = 0; r < c->n_rows; r++) {
            int hit = 0;
            for (int k = 0; k < nt && !isnan(col->v[r]); k++) hit |= null_match(op[k], val[k], col->v[r]);
            if (hit) col->v[r] = NAN, col->n_null++, n++;
        }
    }
    if (!hits)
        return gn_err(GN_EINVAL, "%s: a null rule names '%s', which matches no numeric column", c->path,
                      pattern);
    if (masked) *masked = n;
    return GN_OK;
}

// Name patterns: a prefix (or the whole name when exact) and its unit, the first match wins.
const char *io_column_unit(const char *name) {
    static const struct {
        const char *pre, *unit;
        int exact;
    } U[] = {
        {"logssfr", "log10 sSFR/yr^-1", 0},
        {"logsfr", "log10 SFR/(Msun/yr)", 0},
        {"logmstar", "log10 M*/Msun", 0},
        {"logmtot", "log10 M/Msun", 0},
        {"logmhalo", "log10 Mhalo/Msun", 0},
        {"logm", "log10 M/Msun", 0},
        {"logl", "log10 L/Lsun", 0},
        {"mag", "mag", 0},
        {"ebv", "mag", 1},
        {"absmag", "mag", 0},
        {"z", "unitless", 1},
        {"zspec", "unitless", 1},
        {"zphot", "unitless", 1},
        {"redshift", "unitless", 1},
        {"ba", "unitless", 1},
        {"b_a", "unitless", 1},
        {"logn", "log10 n", 1},
        {"sersic_n", "unitless", 1},
        {"r50", "arcsec", 0},
        {"logr50", "log10 r50/arcsec", 0},
        {"veldisp", "km/s", 0},
        {"sigma_v", "km/s", 0},
        {"w1", "mag", 0},
        {"w2", "mag", 0},
        {"w3", "mag", 0},
        {"w4", "mag", 0},
        {"av", "mag", 1},
        {"gr0", "mag", 1},
        {"re_kpc", "kpc", 1},
        {"logml", "log10 (M/L)/(Msun/Lsun)", 0},
        {"oh12", "12 + log10 O/H", 1},
    };
    for (size_t i = 0; name && i < sizeof U / sizeof U[0]; i++) {
        size_t n = strlen(U[i].pre);
        if (U[i].exact ? !strcmp(name, U[i].pre) : !strncmp(name, U[i].pre, n)) return U[i].unit;
    }
    return NULL;
}
