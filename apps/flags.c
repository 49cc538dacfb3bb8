#include "flags.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

int cmd_strs_add(cmd_strs *l, const char *s) {
    if (l->n == CMD_MAX_STRS) return cmd_error("at most %d values or overrides", CMD_MAX_STRS);
    l->v[l->n++] = s;
    return 0;
}

int cmd_strs_addf(cmd_strs *l, const char *fmt, ...) {
    char *o = l->own + l->n_own;
    size_t room = sizeof l->own - l->n_own;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) return cmd_error("options too long (%zu bytes in all)", sizeof l->own);
    l->n_own += (size_t)n + 1;
    return cmd_strs_add(l, o);
}

int cmd_split_frac(void *sets, const char *v) {
    double t, w;
    char c;
    if (sscanf(v, "%lf,%lf%c", &t, &w, &c) != 2 || !(t >= 0 && w >= 0 && t + w <= 1))
        return cmd_error("--split-frac: '%s' is not TRAIN,VAL fractions adding to at most 1", v);
    return cmd_strs_addf(sets, "data.train_frac=%.17g", t) || cmd_strs_addf(sets, "data.val_frac=%.17g", w);
}

int cmd_strs_split(cmd_strs *l, const char *list, char sep) {
    for (const char *p = list; p && *p;) {
        while (*p == ' ') p++;
        const char *e = strchr(p, sep);
        size_t L = e ? (size_t)(e - p) : strlen(p);
        while (L && p[L - 1] == ' ') L--;
        if (L && cmd_strs_addf(l, "%.*s", (int)L, p)) return 1;
        p = e ? e + 1 : p + strlen(p);
    }
    return 0;
}

int cmd_dump_opts(const cmd_strs *d, long *n, const char **file) {
    *n = 0, *file = NULL;
    if (!d->n) return 0;
    if (cmd_parse_int("--dump", d->v[0], 1, 100000000, n)) return 1;
    *file = d->v[1];
    return 0;
}

static int parse_double(const char *flag, const char *val, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !(v >= lo && v <= hi))
        return cmd_error("%s: '%s' is not a number in [%g, %g]", flag, val, lo, hi);
    *out = v;
    return 0;
}

// One flag with its value v (NULL for FL_ON/FL_OFF) into the options struct o.
static int take(const cmd_flag *f, void *o, const char *v) {
    void *t = (char *)o + f->off;
    switch (f->type) {
    case FL_STR: *(const char **)t = v; return 0;
    case FL_INT: return cmd_parse_int(f->name, v, (long)f->lo, (long)f->hi, t);
    case FL_DBL: return parse_double(f->name, v, f->lo, f->hi, t);
    case FL_ON: *(int *)t = 1; return 0;
    case FL_OFF: *(int *)t = 0; return 0;
    case FL_STRS: return cmd_strs_add(t, v);
    case FL_SET: return cmd_strs_addf(t, "%s=%s", f->key, v);
    case FL_FN: return f->fn(t, v);
    case FL_SETON: return cmd_strs_addf(t, "%s=1", f->key);
    case FL_PAIR: break; // cmd_flags_parse adds both values
    }
    return 1;
}

int cmd_flags_parse(const char *cmd, const cmd_flag *f, void *o, int argc, char **argv, cmd_strs *sets) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const cmd_flag *hit = NULL;
        for (const cmd_flag *p = f; p->name && !hit; p++)
            if (!strcmp(a, p->name)) hit = p;
        if (!hit) {
            if (sets && a[0] != '-' && strchr(a, '=') && strchr(a, '.')) {
                if (cmd_strs_add(sets, a)) return 1;
                continue;
            }
            return cmd_error("%s: unknown option '%s' (see `galnn help %s`)", cmd, a, cmd);
        }
        const char *v = NULL;
        if (hit->type == FL_PAIR) {
            cmd_strs *t = (cmd_strs *)((char *)o + hit->off);
            if (i + 2 >= argc || t->n) return cmd_error("%s needs two values, %s, once", a, hit->arg);
            if (cmd_strs_add(t, argv[i + 1]) || cmd_strs_add(t, argv[i + 2])) return 1;
            i += 2;
            continue;
        }
        if (hit->type != FL_ON && hit->type != FL_OFF && hit->type != FL_SETON) {
            if (i + 1 >= argc) return cmd_error("%s needs a value", a);
            v = argv[++i];
        }
        if (take(hit, o, v)) return 1;
    }
    return 0;
}

void cmd_flags_help(const cmd_flag *f, const void *o) {
    printf("options:\n");
    for (; f->name; f++) {
        const void *t = (const char *)o + f->off;
        char lhs[64];
        snprintf(lhs, sizeof lhs, "%s%s%s", f->name, f->arg ? " " : "", f->arg ? f->arg : "");
        printf("  %-22s %s", lhs, f->help ? f->help : "");
        long l = f->type == FL_INT ? *(const long *)t : 0;
        if (f->type == FL_INT && l && l >= f->lo && l <= f->hi) printf(" (default %ld)", l);
        if (f->type == FL_DBL) printf(" (default %g)", *(const double *)t);
        if (f->type == FL_STR && *(const char *const *)t) printf(" (default %s)", *(const char *const *)t);
        printf("\n");
    }
}
