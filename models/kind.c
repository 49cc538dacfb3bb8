#include "kind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "branchnet.h"

#define MD_KIND_ROW_(E, row) [MD_KIND_##E] = &md_kind_##row,
const md_kind *const md_kinds[] = {MD_KINDS(MD_KIND_ROW_)};
_Static_assert(sizeof md_kinds / sizeof md_kinds[0] == MD_KIND_COUNT, "one row per model kind");

const md_kind *md_kind_find(const char *cfg_name, const char *name) {
    for (int k = 0; k < MD_KIND_COUNT; k++)
        if (!strcmp(md_kinds[k]->name, name)) return md_kinds[k];
    char list[256] = "";
    for (int k = 0; k < MD_KIND_COUNT; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                 k ? (k == MD_KIND_COUNT - 1 ? " or " : ", ") : "", md_kinds[k]->name);
    gn_err(GN_EINVAL, "%s: [model] kind '%s' is not %s", cfg_name, name, list);
    return NULL;
}

const md_kind *md_kind_of(const md_net *m) { return md_kinds[m->kind]; }

int md_kind_index(const md_kind *k) {
    for (int i = 0; i < MD_KIND_COUNT; i++)
        if (md_kinds[i] == k) return i;
    return 0;
}

int md_kind_main(md_net *m, io_config *c, int input) {
    const char *main = io_config_str(c, "model", "main", m->n_branch == 1 ? m->spec[0].name : NULL);
    m->lat_x = m->lat_a = -1;
    for (int b = 0; main && b < m->n_branch; b++)
        if (!strcmp(m->spec[b].name, main)) m->lat_x = b;
    return m->lat_x < 0 || m->spec[m->lat_x].input != input;
}

int md_parse_int_list(const char *s, int *out, int max, const char *what) {
    int n = 0;
    const char *p = s;
    while (*p && n < max) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0)
            return gn_err(GN_EINVAL, "%s: '%s' is not a list of positive integers", what, s);
        out[n++] = (int)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    return n;
}
_Static_assert(MD_MAX_BRANCH <= 8, "md_data_info holds 8 branches");
