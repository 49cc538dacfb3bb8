#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"

#define MAX_DEPTH 64

typedef struct parser {
    const char *s, *end, *name, *start;
} parser;

static int fail(const parser *p, const char *what) {
    int line = 1;
    for (const char *q = p->start; q < p->s && q < p->end; q++) line += *q == '\n';
    return gn_err(GN_EFORMAT, "%s: line %d: invalid JSON: %s", p->name, line, what);
}

static void ws(parser *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static int hex4(const char *s, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

static char *string(parser *p) {
    p->s++; // opening quote
    char *out = gn_malloc((size_t)(p->end - p->s) + 1);
    if (!out) return NULL;
    size_t n = 0;
    while (p->s < p->end && *p->s != '"') {
        unsigned char c = (unsigned char)*p->s++;
        if (c < 0x20) break;
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        if (p->s >= p->end) break;
        char e = *p->s++;
        const char *map = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *m = strchr(map, e);
        if (m && e) {
            out[n++] = to[m - map];
            continue;
        }
        unsigned u;
        if (e != 'u' || p->end - p->s < 4 || hex4(p->s, &u)) break;
        p->s += 4;
        if (u >= 0xD800 && u < 0xDC00 && p->end - p->s >= 6 && p->s[0] == '\\' && p->s[1] == 'u') {
            unsigned lo;
            if (!hex4(p->s + 2, &lo) && lo >= 0xDC00 && lo < 0xE000)
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00), p->s += 6;
        }
        if (u < 0x80)
            out[n++] = (char)u;
        else if (u < 0x800)
            out[n++] = (char)(0xC0 | u >> 6), out[n++] = (char)(0x80 | (u & 63));
        else if (u < 0x10000)
            out[n++] = (char)(0xE0 | u >> 12), out[n++] = (char)(0x80 | (u >> 6 & 63)),
            out[n++] = (char)(0x80 | (u & 63));
        else
            out[n++] = (char)(0xF0 | u >> 18), out[n++] = (char)(0x80 | (u >> 12 & 63)),
            out[n++] = (char)(0x80 | (u >> 6 & 63)), out[n++] = (char)(0x80 | (u & 63));
    }
    if (p->s >= p->end || *p->s != '"') {
        free(out);
        fail(p, "unterminated or malformed string");
        return NULL;
    }
    p->s++;
    out[n] = 0;
    return out;
}

static int value(parser *p, io_json *v, int depth);

static int push(io_json *v, int *cap, io_json **slot) {
    if (v->n == *cap) {
        *cap = *cap ? 2 * *cap : 4;
        io_json *k = gn_realloc(v->kids, sizeof(io_json) * (size_t)*cap);
        if (!k) return GN_ENOMEM;
        v->kids = k;
    }
    *slot = &v->kids[v->n++];
    memset(*slot, 0, sizeof **slot);
    return GN_OK;
}

static int container(parser *p, io_json *v, int depth) {
    int obj = *p->s == '{', cap = 0, rc;
    char close = obj ? '}' : ']';
    v->type = obj ? IO_JSON_OBJ : IO_JSON_ARR;
    p->s++;
    ws(p);
    if (p->s < p->end && *p->s == close) return p->s++, GN_OK;
    for (;;) {
        io_json *k;
        if ((rc = push(v, &cap, &k))) return rc;
        ws(p);
        if (obj) {
            if (p->s >= p->end || *p->s != '"') return fail(p, "expected a member name");
            if (!(k->key = string(p))) return GN_EFORMAT;
            ws(p);
            if (p->s >= p->end || *p->s != ':') return fail(p, "expected ':'");
            p->s++;
        }
        if ((rc = value(p, k, depth + 1))) return rc;
        ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == close) return p->s++, GN_OK;
        return fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int value(parser *p, io_json *v, int depth) {
    if (depth > MAX_DEPTH) return fail(p, "nested too deeply");
    ws(p);
    if (p->s >= p->end) return fail(p, "unexpected end");
    char c = *p->s;
    if (c == '{' || c == '[') return container(p, v, depth);
    if (c == '"') {
        v->type = IO_JSON_STR;
        return (v->str = string(p)) ? GN_OK : GN_EFORMAT;
    }
    static const char *words[3] = {"null", "true", "false"};
    for (int w = 0; w < 3; w++) {
        size_t L = strlen(words[w]);
        if ((size_t)(p->end - p->s) >= L && !memcmp(p->s, words[w], L)) {
            v->type = w ? IO_JSON_BOOL : IO_JSON_NULL;
            v->num = w == 1;
            p->s += L;
            return GN_OK;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char buf[64];
        size_t L = 0;
        while (p->s + L < p->end && L < sizeof buf - 1 && strchr("+-0123456789.eE", p->s[L])) L++;
        memcpy(buf, p->s, L);
        buf[L] = 0;
        char *e;
        v->type = IO_JSON_NUM;
        v->num = strtod(buf, &e);
        if (e != buf + L) return fail(p, "malformed number");
        p->s += L;
        return GN_OK;
    }
    return fail(p, "unexpected character");
}

int io_json_parse(const char *text, size_t len, const char *name, io_json *out) {
    memset(out, 0, sizeof *out);
    parser p = {text, text + len, name ? name : "(json)", text};
    int rc = value(&p, out, 0);
    if (!rc) {
        ws(&p);
        if (p.s != p.end) rc = fail(&p, "trailing characters after the value");
    }
    if (rc) io_json_free(out);
    return rc;
}

int io_json_read(const char *path, io_json *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return gn_err(GN_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = gn_malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *b = gn_realloc(buf, cap *= 2);
        if (!b) free(buf);
        buf = b;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf) return GN_ENOMEM;
    int rc = err ? gn_err(GN_EIO, "%s: read error", path) : io_json_parse(buf, n, path, out);
    free(buf);
    return rc;
}

void io_json_free(io_json *j) {
    if (!j) return;
    for (int i = 0; i < j->n; i++) io_json_free(&j->kids[i]);
    free(j->kids), free(j->str), free(j->key);
    memset(j, 0, sizeof *j);
}

const io_json *io_json_get(const io_json *j, const char *key) {
    if (!j || j->type != IO_JSON_OBJ) return NULL;
    for (int i = 0; i < j->n; i++)
        if (!strcmp(j->kids[i].key, key)) return &j->kids[i];
    return NULL;
}

const io_json *io_json_path(const io_json *j, ...) {
    va_list ap;
    va_start(ap, j);
    for (const char *k; j && (k = va_arg(ap, const char *));) j = io_json_get(j, k);
    va_end(ap);
    return j;
}

double io_json_num(const io_json *j, int i) {
    if (j && i >= 0) j = j->type == IO_JSON_ARR && i < j->n ? &j->kids[i] : NULL;
    return j && (j->type == IO_JSON_NUM || j->type == IO_JSON_BOOL) ? j->num : NAN;
}

void io_json_put_num(FILE *f, const char *fmt, double v) {
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("null", f);
}

void io_json_put_kv(FILE *f, const char *key, const char *fmt, double v) {
    fprintf(f, ", \"%s\": ", key);
    io_json_put_num(f, fmt, v);
}
