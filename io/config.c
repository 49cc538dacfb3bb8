#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "npy.h"

void io_config_free(io_config *c) {
    for (int i = 0; i < c->n; i++) free(c->e[i].section), free(c->e[i].key), free(c->e[i].value);
    free(c->e);
    free(c->name);
    memset(c, 0, sizeof *c);
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static io_config_entry *find(const io_config *c, const char *sec, const char *key) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].section, sec) && !strcmp(c->e[i].key, key)) return &c->e[i];
    return NULL;
}

static int put(io_config *c, const char *sec, const char *key, const char *val, int line) {
    io_config_entry *e = find(c, sec, key);
    if (e) {
        char *v = gn_strdup(val);
        if (!v) return GN_ENOMEM;
        free(e->value);
        e->value = v;
        e->line = line;
        return GN_OK;
    }
    if (c->n == c->cap) {
        int nc = c->cap ? c->cap * 2 : 32;
        io_config_entry *ne = gn_realloc(c->e, sizeof *ne * (size_t)nc);
        if (!ne) return GN_ENOMEM;
        c->e = ne;
        c->cap = nc;
    }
    e = &c->e[c->n];
    e->section = gn_strdup(sec), e->key = gn_strdup(key), e->value = gn_strdup(val);
    e->line = line, e->used = 0;
    if (!e->section || !e->key || !e->value) return GN_ENOMEM;
    c->n++;
    return GN_OK;
}

int io_config_put(io_config *c, const char *sec, const char *key, const char *val) {
    return put(c, sec, key, val, 0);
}

int io_config_parse(const char *name, const char *text, io_config *c) {
    memset(c, 0, sizeof *c);
    if (!(c->name = gn_strdup(name))) return GN_ENOMEM;
    char *buf = gn_strdup(text);
    if (!buf) return GN_ENOMEM;
    char sec[128] = "";
    int line = 0, rc = GN_OK;
    for (char *p = buf; p && !rc;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        char *cm = p;
        // strip comments: '#' or ';' at the start or after whitespace
        for (char *q = p; *q; q++)
            if ((*q == '#' || *q == ';') && (q == p || isspace((unsigned char)q[-1]))) {
                *q = 0;
                break;
            }
        char *s = trim(cm);
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e || e[1])
                rc = gn_err(GN_EFORMAT, "%s:%d: bad section header '%s'", name, line, s);
            else {
                *e = 0;
                char *t = trim(s + 1);
                if (!*t || strlen(t) >= sizeof sec)
                    rc = gn_err(GN_EFORMAT, "%s:%d: bad section name", name, line);
                else
                    strcpy(sec, t);
            }
        } else if (*s) {
            char *eq = strchr(s, '=');
            if (!eq)
                rc = gn_err(GN_EFORMAT, "%s:%d: expected 'key = value', got '%s'", name, line, s);
            else if (!*sec)
                rc = gn_err(GN_EFORMAT, "%s:%d: key outside any [section]", name, line);
            else {
                *eq = 0;
                char *k = trim(s), *v = trim(eq + 1);
                if (!*k)
                    rc = gn_err(GN_EFORMAT, "%s:%d: empty key", name, line);
                else if (find(c, sec, k))
                    rc = gn_err(GN_EFORMAT, "%s:%d: [%s] %s given twice", name, line, sec, k);
                else
                    rc = put(c, sec, k, v, line);
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    free(buf);
    if (rc) io_config_free(c);
    return rc;
}

int io_config_read(const char *path, io_config *c) {
    unsigned char *b;
    size_t n;
    int rc = io_read_file(path, &b, &n);
    if (rc) return rc;
    char *t = gn_realloc(b, n + 1);
    if (!t) return free(b), GN_ENOMEM;
    t[n] = 0;
    if (memchr(t, 0, n)) return free(t), gn_err(GN_EFORMAT, "%s: binary file, not a configuration", path);
    rc = io_config_parse(path, t, c);
    free(t);
    return rc;
}

int io_config_set(io_config *c, const char *a) {
    const char *dot = strchr(a, '.'), *eq = strchr(a, '=');
    // the section may itself contain dots (branch.img): the key is after the last dot before '='
    if (!eq || !dot || dot > eq) return gn_err(GN_EINVAL, "override '%s': expected section.key=value", a);
    const char *kd = eq;
    while (kd > a && *kd != '.') kd--;
    char sec[128], key[128];
    size_t ls = (size_t)(kd - a), lk = (size_t)(eq - kd - 1);
    if (!ls || !lk || ls >= sizeof sec || lk >= sizeof key)
        return gn_err(GN_EINVAL, "override '%s': bad name", a);
    memcpy(sec, a, ls), sec[ls] = 0;
    memcpy(key, kd + 1, lk), key[lk] = 0;
    return put(c, trim(sec), trim(key), eq + 1, 0);
}

char *io_config_text(const io_config *c) {
    size_t cap = 256;
    for (int i = 0; i < c->n; i++)
        cap += strlen(c->e[i].section) + strlen(c->e[i].key) + strlen(c->e[i].value) + 16;
    char *t = gn_malloc(cap);
    if (!t) return NULL;
    size_t o = 0;
    // sections in first-appearance order
    for (int i = 0; i < c->n; i++) {
        int first = 1;
        for (int j = 0; j < i; j++)
            if (!strcmp(c->e[j].section, c->e[i].section)) first = 0;
        if (!first) continue;
        o += (size_t)snprintf(t + o, cap - o, "%s[%s]\n", o ? "\n" : "", c->e[i].section);
        for (int j = i; j < c->n; j++)
            if (!strcmp(c->e[j].section, c->e[i].section))
                o += (size_t)snprintf(t + o, cap - o, "%s = %s\n", c->e[j].key, c->e[j].value);
    }
    return t;
}

const char *io_config_str(io_config *c, const char *sec, const char *key, const char *def) {
    io_config_entry *e = find(c, sec, key);
    if (!e) return def;
    e->used = 1;
    return e->value;
}

static void where(const io_config *c, const io_config_entry *e, char *buf, size_t n) {
    if (e->line)
        snprintf(buf, n, "%s:%d", c->name, e->line);
    else
        snprintf(buf, n, "%s (override)", c->name);
}

int io_config_int(io_config *c, const char *sec, const char *key, long def, long *out) {
    io_config_entry *e = find(c, sec, key);
    if (!e) return *out = def, GN_OK;
    e->used = 1;
    char *end, w[600];
    errno = 0;
    long v = strtol(e->value, &end, 10);
    if (errno || end == e->value || *end) {
        where(c, e, w, sizeof w);
        return gn_err(GN_EINVAL, "%s: [%s] %s = '%s' is not an integer", w, sec, key, e->value);
    }
    *out = v;
    return GN_OK;
}

int io_config_double(io_config *c, const char *sec, const char *key, double def, double *out) {
    io_config_entry *e = find(c, sec, key);
    if (!e) return *out = def, GN_OK;
    e->used = 1;
    char *end, w[600];
    double v = strtod(e->value, &end);
    if (end == e->value || *end || v != v) {
        where(c, e, w, sizeof w);
        return gn_err(GN_EINVAL, "%s: [%s] %s = '%s' is not a number", w, sec, key, e->value);
    }
    *out = v;
    return GN_OK;
}

int io_config_has_section(const io_config *c, const char *sec) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].section, sec)) return 1;
    return 0;
}

int io_config_sections(const io_config *c, const char *prefix, const char **names, int max) {
    int n = 0;
    size_t L = strlen(prefix);
    for (int i = 0; i < c->n; i++) {
        if (strncmp(c->e[i].section, prefix, L)) continue;
        int seen = 0;
        for (int j = 0; j < n; j++)
            if (!strcmp(names[j], c->e[i].section)) seen = 1;
        if (!seen && n < max) names[n++] = c->e[i].section;
    }
    return n;
}

int io_config_check_unused(const io_config *c) {
    for (int i = 0; i < c->n; i++)
        if (!c->e[i].used) {
            char w[600];
            where(c, &c->e[i], w, sizeof w);
            return gn_err(GN_EINVAL, "%s: unknown setting [%s] %s (misspelt?)", w, c->e[i].section,
                          c->e[i].key);
        }
    return GN_OK;
}

int io_split_list(char *s, char **items, int max) {
    int n = 0;
    for (char *p = s; p && *p && n < max;) {
        char *cm = strchr(p, ',');
        if (cm) *cm = 0;
        items[n++] = trim(p);
        p = cm ? cm + 1 : NULL;
    }
    return n;
}

// The value's position among the choices (*at; 0 without choices).
static int check_choice(const io_config *c, const char *sec, const io_key *k, const char *v, int *at) {
    size_t L = strlen(v);
    *at = 0;
    for (const char *p = k->choices; p && *p; ++*at) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == L && !strncmp(p, v, n)) return GN_OK;
        p = e ? e + 1 : p + n;
    }
    return k->choices
               ? gn_err(GN_EINVAL, "%s: [%s] %s = '%s' is not one of %s", c->name, sec, k->key, v, k->choices)
               : GN_OK;
}

static int range_error(const io_config *c, const char *sec, const io_key *k, double v) {
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, k->lo == IO_KEY_POS ? "> 0" : ">= %g", k->lo);
    snprintf(hi, sizeof hi, k->hi >= IO_KEY_BIG ? "" : " and <= %g", k->hi);
    return gn_err(GN_EINVAL, "%s: [%s] %s = %g: give a value %s%s", c->name, sec, k->key, v, lo, hi);
}

// One numeric key into its field (absent with a NAN default: the field is left as it is).
static int read_number(io_config *c, const char *sec, const io_key *k, void *f) {
    int rc, integer = k->type == IO_KEY_INT || k->type == IO_KEY_LONG;
    double v;
    long l = 0;
    if (isnan(k->def) && !io_config_str(c, sec, k->key, NULL)) return GN_OK;
    if (integer)
        rc = io_config_int(c, sec, k->key, (long)k->def, &l), v = (double)l;
    else
        rc = io_config_double(c, sec, k->key, k->def, &v);
    if (rc) return rc;
    if (!(v >= k->lo && v <= k->hi)) return range_error(c, sec, k, v);
    switch (k->type) {
    case IO_KEY_INT: *(int *)f = (int)l; break;
    case IO_KEY_LONG: *(long *)f = l; break;
    case IO_KEY_FLOAT: *(float *)f = (float)v; break;
    default: *(double *)f = v;
    }
    return GN_OK;
}

int io_config_keys(io_config *c, const char *sec, const io_key *t, void *base) {
    int rc;
    for (const io_key *k = t; k->key; k++) {
        char *f = (char *)base + k->off;
        if (k->type != IO_KEY_STR && k->type != IO_KEY_CHOICE) {
            if ((rc = read_number(c, sec, k, f))) return rc;
            continue;
        }
        const char *v = io_config_str(c, sec, k->key, k->sdef);
        int at = 0;
        if (v && (rc = check_choice(c, sec, k, v, &at))) return rc;
        if (k->type == IO_KEY_CHOICE)
            *(int *)f = at;
        else
            *(const char **)f = v;
    }
    return GN_OK;
}
