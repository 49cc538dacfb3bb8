#include "run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/gn_common.h"
#include "../../io/specset.h"
#include "../../stats/metrics.h"

static void say(void *u, const char *line) {
    if (*(int *)u) printf("  %s\n", line);
}

// A dataset's entry per catalog row (-1: none) for dataset di.
static int map_entries(run *r, int di) {
    r->entry[di] = gn_malloc(sizeof(int32_t) * (r->cat.n_rows ? r->cat.n_rows : 1));
    if (!r->entry[di]) return GN_ENOMEM;
    for (size_t k = 0; k < r->cat.n_rows; k++) r->entry[di][k] = -1;
    for (size_t e = 0; e < r->ds[di].n; e++) r->entry[di][r->ds[di].row[e]] = (int32_t)e;
    return GN_OK;
}

// [branch.NAME] input = spectrum: one spectrum per galaxy through the
// pre-processing chain of io/specset.h (its own cached dataset).
static int setup_spectrum(run *r, int b, const char *sec, int *verbose) {
    io_config *c = &r->cfg;
    md_branch_spec *sp = &r->net.spec[b];
    io_specset_spec ss;
    memset(&ss, 0, sizeof ss);
    io_specset_defaults(&ss);
    ss.cat = &r->cat;
    ss.log = say;
    ss.log_user = verbose;
    ss.template = io_config_str(c, sec, "spectra", NULL);
    if (!ss.template)
        return gn_err(GN_EINVAL, "%s: [%s] input = spectrum needs spectra = 'spectra/{id}.npy'", c->name,
                      sec);
    ss.wave = io_config_str(c, sec, "wave", NULL);
    ss.z_col = io_config_str(c, sec, "redshift", "z");
    if (!strcmp(ss.z_col, "none")) ss.z_col = NULL;
    const char *grid = io_config_str(c, sec, "grid", "3400,8400,4000");
    int np = 0;
    if (sscanf(grid, "%lf , %lf , %d%n", &ss.lo, &ss.hi, &ss.pixels, &np) != 3 || grid[np])
        return gn_err(GN_EINVAL,
                      "%s: [%s] grid = '%s': give LO,HI,PIXELS "
                      "(Å, Å, count)",
                      c->name, sec, grid);
    long v;
    int rc;
    if ((rc = io_config_double(c, sec, "max_gap", ss.max_gap, &ss.max_gap)) ||
        (rc = io_config_double(c, sec, "err_percentile", ss.err_pct, &ss.err_pct)) ||
        (rc = io_config_double(c, sec, "median", ss.median, &ss.median)))
        return rc;
    if ((rc = io_config_int(c, sec, "pca_components", ss.n_ev, &v))) return rc;
    ss.n_ev = (int)v;
    if ((rc = io_config_int(c, sec, "pca_iters", ss.iters, &v))) return rc;
    ss.iters = (int)v;
    ss.cache_dir = r->data.cache_dir;
    if (r->n_ds == MD_MAX_BRANCH) return gn_err(GN_EINVAL, "too many datasets");
    int di = r->n_ds;
    if ((rc = io_specset_open(&ss, &r->ds[di]))) return gn_err_prefix(rc, "[%s] ", sec);
    r->n_ds++;
    if ((rc = map_entries(r, di))) return rc;
    snprintf(sp->name, sizeof sp->name, "%s", sec + strlen("branch."));
    sp->input = MD_IN_SPECTRUM;
    sp->in_ch = r->ds[di].w; // pixels
    r->br[b].ds = di;
    r->br[b].median = ss.median;
    r->br[b].grid_lo = ss.lo, r->br[b].grid_hi = ss.hi;
    return GN_OK;
}

// Branch b takes the catalog columns of the list cols (sec: for messages).
static int setup_columns(run *r, int b, const char *sec, const char *cols) {
    md_branch_spec *sp = &r->net.spec[b];
    run_branch *rb = &r->br[b];
    sp->input = MD_IN_COLUMNS;
    if (!(r->list_buf[b] = gn_strdup(cols))) return GN_ENOMEM;
    rb->n_cols = io_split_list(r->list_buf[b], rb->col_names, RUN_MAX_COLS);
    for (int k = 0; k < rb->n_cols; k++)
        if (!(rb->col[k] = io_catalog_values(&r->cat, rb->col_names[k])))
            return gn_err_prefix(GN_EINVAL, "[%s] ", sec);
    sp->in_ch = rb->n_cols;
    return GN_OK;
}

// Branch b reads the bands of the list `bands` of its (shared) dataset.
static int band_subset(run *r, int b, const char *sec, const char *bands) {
    io_config *c = &r->cfg;
    run_branch *rb = &r->br[b];
    const io_dataset *D = &r->ds[rb->ds];
    char buf[256];
    snprintf(buf, sizeof buf, "%s", bands);
    char *items[IO_MAX_BANDS];
    int nb = io_split_list(buf, items, IO_MAX_BANDS);
    for (int k = 0; k < nb; k++) {
        int f = -1;
        for (int j = 0; j < D->c; j++)
            if (!strcmp(D->bands[j], items[k])) f = j;
        if (f < 0)
            return gn_err(GN_EINVAL, "%s: [%s] band '%s' is not among the dataset's bands", c->name, sec,
                          items[k]);
        rb->ro.channels[rb->ro.n_channels++] = f;
    }
    return GN_OK;
}

// One [branch.NAME] section into spec + data wiring.
static int setup_branch(run *r, int b, const char *sec, int *verbose) {
    io_config *c = &r->cfg;
    md_branch_spec *sp = &r->net.spec[b];
    run_branch *rb = &r->br[b];
    snprintf(sp->name, sizeof sp->name, "%s", sec + strlen("branch."));
    const char *input = io_config_str(c, sec, "input", "image");
    if (!strcmp(input, "spectrum")) return setup_spectrum(r, b, sec, verbose);
    const char *bb = io_config_str(c, sec, "backbone", strcmp(input, "columns") ? "resnet18" : "mlp");
    int rc;
    if (!strcmp(bb, "resnet18"))
        sp->backbone = MD_BB_RESNET18;
    else if (!strcmp(bb, "smallcnn"))
        sp->backbone = MD_BB_SMALLCNN;
    else if (!strcmp(bb, "mlp"))
        sp->backbone = MD_BB_MLP;
    else
        return gn_err(GN_EINVAL, "%s: [%s] backbone '%s' is not resnet18, smallcnn or mlp", c->name, sec, bb);
#define IO_KEY_TYPE md_branch_spec
    const io_key keys[] = {
        IO_KI(width, 1, 4096, sp->backbone == MD_BB_RESNET18 ? 64 : 32),
        IO_KI(stem_kernel, 1, 15, 3),
        IO_KI(stem_stride, 1, 8, 2),
        IO_KI(stem_pool, 0, 1, 0),
        IO_KC(init, "torch", "torch|he|glorot|uniform"),
        {"activation", IO_KEY_CHOICE, offsetof(md_branch_spec, act), 0, 0, 0, "relu", MD_ACT_CHOICES},
        IO_KC(norm, "batch", "batch|group|none"),
        IO_KI(zero_init_residual, 0, 1, 0),
        IO_KC(feature_norm, "none", "none|layer"),
        IO_KF(dropout, 0, 0.95, 0),
        IO_KF(weight_decay, 0, 1e6, NAN),
        IO_KEND};
#undef IO_KEY_TYPE
    sp->weight_decay = NAN;
    if ((rc = io_config_keys(c, sec, keys, sp))) return rc;
    sp->wd_set = !isnan(sp->weight_decay);
    const char *hid = io_config_str(c, sec, "hidden", "128,128");
    if ((sp->n_hidden = md_parse_int_list(hid, sp->hidden, 7, sec)) < 0) return GN_EINVAL;
    if (!strcmp(input, "columns")) {
        if (sp->backbone != MD_BB_MLP)
            return gn_err(GN_EINVAL, "%s: [%s] column inputs need backbone = mlp", c->name, sec);
        const char *cols = io_config_str(c, sec, "columns", NULL);
        if (!cols) return gn_err(GN_EINVAL, "%s: [%s] needs columns = a,b,c", c->name, sec);
        return setup_columns(r, b, sec, cols);
    }
    if (strcmp(input, "image"))
        return gn_err(GN_EINVAL, "%s: [%s] input '%s' is not image or columns", c->name, sec, input);
    if (sp->backbone == MD_BB_MLP)
        return gn_err(GN_EINVAL, "%s: [%s] image inputs need resnet18 or smallcnn", c->name, sec);
    sp->input = MD_IN_IMAGE;
    // its own images (e.g. kinematic maps), or a band subset of [data]'s
    const char *tmpl = io_config_str(c, sec, "images", NULL);
    run_image_opts own;
    const run_image_opts *io = &r->data.img;
    if (tmpl && (rc = run_image_opts_read(c, sec, &own))) return rc;
    if (tmpl) io = &own;
    const char *bands = tmpl ? own.bands : io_config_str(c, sec, "bands", NULL);
    if (!io->images)
        return gn_err(GN_EINVAL, "no images: give --images (or [data] images, or [%s] images)", sec);
    io_dataset_spec ds;
    memset(&ds, 0, sizeof ds);
    ds.cat = &r->cat;
    ds.log = say;
    ds.log_user = verbose;
    ds.cache_dir = r->data.cache_dir;
    ds.strict = (int)r->data.strict;
    if ((rc = run_image_spec(io, &ds))) return rc;
    int di = -1;
    if (tmpl)
        di = r->n_ds;
    else {
        di = r->shared_ds >= 0 ? r->shared_ds : r->n_ds; // one [data] dataset for every branch that uses it
        if (r->shared_ds < 0) r->shared_ds = di;
    }
    if (di == r->n_ds) {
        if (r->n_ds == MD_MAX_BRANCH) return gn_err(GN_EINVAL, "too many image datasets");
        if ((rc = io_dataset_open(&ds, &r->ds[di]))) return rc;
        r->n_ds++;
        if ((rc = map_entries(r, di))) return rc;
    }
    rb->ds = di;
    const io_dataset *D = &r->ds[di];
    if (r->crop > D->h)
        return gn_err(GN_EINVAL, "%s: [train] crop = %d is larger than the %dx%d cutouts of [%s]", c->name,
                      r->crop, D->h, D->w, sec);
    rb->ro.n_channels = 0;
    if (!tmpl && bands && (rc = band_subset(r, b, sec, bands))) return rc; // a subset of [data]'s bands
    sp->in_ch = rb->ro.n_channels ? rb->ro.n_channels : D->c;
    return GN_OK;
}

static int add_columns(void *user, int b, const char *cols) { return setup_columns(user, b, "model", cols); }

// [model]: the kind's own section, through its row of models/kind.h.
static int setup_kind(run *r, const md_kind *k) {
    md_net *m = &r->net;
    md_data_info d = {.n_targets = r->n_targets,
                      .target_names = r->target_names,
                      .batch = r->batch,
                      .add_columns = add_columns,
                      .user = r};
    for (int b = 0; b < m->n_branch; b++) {
        if (m->spec[b].input == MD_IN_IMAGE) {
            int h = r->ds[r->br[b].ds].h; // the size run_batch renders
            d.img_size[b] = r->crop > 0 && r->crop < h ? r->crop : h;
        }
        d.median[b] = r->br[b].median;
    }
    m->kind = md_kind_index(k);
    m->optional_target = -1;
    int rc = k->parse(m, &r->cfg, &d);
    r->optional_target = m->optional_target;
    return rc;
}

// norm.<what>.mean / .std from a checkpoint, n values each.
static int load_norm(const char *path, const io_npz *ck, const char *what, size_t n, double *mean,
                     double *sd) {
    char name[300];
    snprintf(name, sizeof name, "norm.%s.mean", what);
    const io_array *am = io_ckpt_get(path, ck, name, IO_F64, n);
    snprintf(name, sizeof name, "norm.%s.std", what);
    const io_array *as = io_ckpt_get(path, ck, name, IO_F64, n);
    if (!am || !as) return GN_EFORMAT;
    memcpy(mean, am->data, sizeof(double) * n);
    memcpy(sd, as->data, sizeof(double) * n);
    return GN_OK;
}

// Mean and standard deviation of v over the training rows (std 1 if constant).
static int train_stats(const run *r, const double *v, double *mean, double *sd, double *range) {
    size_t n = r->n_rows[IO_SPLIT_TRAIN];
    double *tmp = gn_malloc(sizeof(double) * (n ? n : 1));
    if (!tmp) return GN_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) // present values only (an optional target may be missing)
        if (!isnan(v[r->rows[IO_SPLIT_TRAIN][i]])) tmp[m++] = v[r->rows[IO_SPLIT_TRAIN][i]];
    st_mean_std(tmp, m, mean, sd);
    range[0] = INFINITY, range[1] = -INFINITY;
    for (size_t i = 0; i < m; i++) range[0] = fmin(range[0], tmp[i]), range[1] = fmax(range[1], tmp[i]);
    if (!m) range[0] = -INFINITY, range[1] = INFINITY; // nothing to compare with
    free(tmp);
    if (!(*sd > 0)) *sd = 1;
    return GN_OK;
}

// The null rules of [data]: `nulls = V, ...` for every numeric column, `null.COL = V, <=V, ...` (COL may
// end in '*') for some; applied before the derived columns, which inherit the nulls.
static int apply_nulls(run *r, int verbose) {
    io_config *c = &r->cfg;
    size_t n = 0, m = 0;
    int rc = r->data.nulls ? io_catalog_null_rule(&r->cat, "*", r->data.nulls, &n) : GN_OK;
    for (int i = 0; !rc && i < c->n; i++) {
        io_config_entry *e = &c->e[i]; // [data] null.COL = ..., or data.null.COL=... on the command line
        int in_data = !strcmp(e->section, "data") && !strncmp(e->key, "null.", 5);
        if (!in_data && strcmp(e->section, "data.null")) continue;
        e->used = 1;
        rc = io_catalog_null_rule(&r->cat, e->key + (in_data ? 5 : 0), e->value, &m), n += m;
    }
    if (!rc && n && verbose) printf("  null rules masked %zu catalog value(s)\n", n);
    return rc;
}

// The catalog with its joined and derived columns, and the split of every row.
static int setup_catalog(run *r, int verbose) {
    io_config *c = &r->cfg;
    int rc;
    if ((rc = run_data_opts_read(c, &r->data))) return rc;
    const char *catp = r->data.catalog;
    if (!catp) return gn_err(GN_EINVAL, "no catalog: give --catalog (or [data] catalog)");
    io_catalog_opts co = {r->data.null_threshold, 1, r->data.id_column};
    if ((rc = io_catalog_read(catp, &co, &r->cat))) return rc;
    const char *join = r->data.join;
    if (join) {
        char *d = gn_strdup(join), *save = NULL;
        if (!d) return GN_ENOMEM;
        for (char *t = strtok_r(d, ";", &save); t && !rc; t = strtok_r(NULL, ";", &save)) {
            while (*t == ' ') t++;
            size_t L = strlen(t), hit = 0;
            while (L && t[L - 1] == ' ') t[--L] = 0;
            if (!L) continue;
            rc = io_catalog_join(&r->cat, t, &hit);
            if (!rc && verbose)
                printf("  joined %s: %zu of %zu galaxies matched by id\n", t, hit, r->cat.n_rows);
        }
        free(d);
        if (rc) return rc;
    }
    if ((rc = apply_nulls(r, verbose))) return rc;
    const char *der = r->data.derive;
    if (der) {
        char *d = gn_strdup(der), *save = NULL;
        if (!d) return GN_ENOMEM;
        for (char *t = strtok_r(d, ";", &save); t && !rc; t = strtok_r(NULL, ";", &save))
            rc = io_catalog_derive_spec(&r->cat, t);
        free(d);
        if (rc) return rc;
    }
    r->split = gn_malloc(r->cat.n_rows ? r->cat.n_rows : 1);
    if (!r->split) return GN_ENOMEM;
    if ((rc = io_catalog_splits(&r->cat, r->data.train_frac, r->data.val_frac, r->split))) return rc;
    return GN_OK;
}

// [target] units = "log10 M*/Msun, mag": one per target, for axis labels; by default the unit the
// column's name conventionally carries, else "catalog units".
static int target_units(run *r) {
    const char *u = io_config_str(&r->cfg, "target", "units", NULL);
    char buf[1024], *v[MD_MAX_TARGETS];
    int n = 0;
    if (u) snprintf(buf, sizeof buf, "%s", u), n = io_split_list(buf, v, MD_MAX_TARGETS);
    if (u && n != r->n_targets)
        return gn_err(GN_EINVAL, "%s: [target] units lists %d units for %d targets", r->cfg.name, n,
                      r->n_targets);
    for (int t = 0; t < r->n_targets; t++) {
        const char *g = u ? v[t] : io_column_unit(r->target_names[t]);
        snprintf(r->target_units[t], sizeof r->target_units[t], "%s", g ? g : "catalog units");
    }
    return GN_OK;
}

// [target]: the target columns and the head.
// need_targets 0 (applying a model to new galaxies): a target column the catalog lacks stays NULL.
static int setup_targets(run *r, const md_kind *kind, int need_targets) {
    io_config *c = &r->cfg;
    md_net *m = &r->net;
    long v;
    int rc;
    const char *tn = io_config_str(c, "target", "names", NULL);
    if (!tn && kind->needs_target) return gn_err(GN_EINVAL, "no target: give --target (or [target] names)");
    if (tn && !(r->list_buf[MD_MAX_BRANCH] = gn_strdup(tn))) return GN_ENOMEM;
    r->n_targets = tn ? io_split_list(r->list_buf[MD_MAX_BRANCH], r->target_names, MD_MAX_TARGETS) : 0;
    for (int t = 0; t < r->n_targets; t++) {
        int have = io_catalog_find(&r->cat, r->target_names[t]) >= 0;
        if (!have && !need_targets) continue;
        if (!(r->target[t] = io_catalog_values(&r->cat, r->target_names[t])))
            return gn_err_prefix(GN_EINVAL, "[target] ");
    }
    m->n_targets = r->n_targets;
    if ((rc = target_units(r))) return rc;
        // [target] hidden = 64: one hidden layer mixing the branches' features before the output layer
#define IO_KEY_TYPE md_net
    const io_key hk[] = {
        IO_K("hidden", IO_KEY_INT, head_hidden, 0, 4096, 0),
        {"activation", IO_KEY_CHOICE, offsetof(md_net, head_act), 0, 0, 0, "relu", MD_ACT_CHOICES},
        {"init", IO_KEY_CHOICE, offsetof(md_net, head_init), 0, 0, 0, "torch", "torch|he|glorot|uniform"},
        IO_KEND};
#undef IO_KEY_TYPE
    if ((rc = io_config_keys(c, "target", hk, m))) return rc;
    const char *head = io_config_str(c, "target", "head", "regression");
    m->head = !strcmp(head, "gaussian") ? MD_HEAD_GAUSSIAN
              : !strcmp(head, "binned") ? MD_HEAD_BINNED
                                        : MD_HEAD_REGRESSION;
    if (strcmp(head, "gaussian") && strcmp(head, "binned") && strcmp(head, "regression"))
        return gn_err(GN_EINVAL, "%s: [target] head '%s' is not regression, gaussian or binned", c->name,
                      head);
    if ((rc = io_config_int(c, "target", "bins", 520, &v))) return rc;
    m->bins = (int)v;
    if ((rc = io_config_double(c, "target", "lo", 6.0, &m->lo)) ||
        (rc = io_config_double(c, "target", "hi", 12.5, &m->hi)))
        return rc;
    if (m->head == MD_HEAD_BINNED && (r->n_targets != 1 || m->bins < 2 || !(m->hi > m->lo)))
        return gn_err(GN_EINVAL, "%s: the binned head needs one target, bins >= 2 and hi > lo", c->name);
    return GN_OK;
}

// The usable catalog rows of each split: every input present (and the targets, if need_targets).
static int select_usable(run *r, int need_targets) {
    const md_net *m = &r->net;
    for (int s = 0; s < 3; s++) {
        r->rows[s] = gn_malloc(sizeof(uint32_t) * (r->cat.n_rows ? r->cat.n_rows : 1));
        if (!r->rows[s]) return GN_ENOMEM;
    }
    for (size_t row = 0; row < r->cat.n_rows; row++) {
        int ok = 1;
        for (int t = 0; need_targets && t < r->n_targets; t++)
            ok &= t == r->optional_target || !isnan(r->target[t][row]);
        for (int b = 0; b < m->n_branch; b++) {
            if (m->spec[b].input != MD_IN_COLUMNS)
                ok &= r->entry[r->br[b].ds][row] >= 0;
            else
                for (int k = 0; k < r->br[b].n_cols && !md_kind_of(m)->missing_inputs; k++)
                    ok &= !isnan(r->br[b].col[k][row]);
        }
        if (!ok) {
            r->n_unusable++;
            continue;
        }
        int s = r->split[row];
        r->rows[s][r->n_rows[s]++] = (uint32_t)row;
    }
    return GN_OK;
}

// Normalisation statistics: from the training split, or from the checkpoint ck.
// The training ranges norm.<what>.range (n (min, max) pairs); absent in older checkpoints.
static int load_range(run *r, const char *path, const io_npz *ck, const char *what, size_t n,
                      double (*range)[2]) {
    char name[300];
    snprintf(name, sizeof name, "norm.%s.range", what);
    if (!io_npz_get(ck, name)) return r->has_range = 0, GN_OK;
    const io_array *a = io_ckpt_get(path, ck, name, IO_F64, 2 * n);
    if (!a) return GN_EFORMAT;
    memcpy(range, a->data, sizeof(double) * 2 * n);
    return GN_OK;
}

static int setup_norm(run *r, const char *ck_path, const io_npz *ck) {
    const md_net *m = &r->net;
    int rc = GN_OK;
    r->has_range = 1; // until a checkpoint from before the ranges lacks them
    for (int b = 0; b < m->n_branch; b++) {
        run_branch *rb = &r->br[b];
        if (m->spec[b].input == MD_IN_SPECTRUM) { // median-normalised already: kept as they are
            rb->mean[0] = 0, rb->std[0] = 1;
        } else if (m->spec[b].input == MD_IN_IMAGE) {
            const io_dataset *D = &r->ds[rb->ds];
            rc = ck ? load_norm(ck_path, ck, m->spec[b].name, (size_t)D->c, rb->mean, rb->std)
                    : io_dataset_band_stats(D, r->split, IO_SPLIT_TRAIN, rb->mean, rb->std);
            rb->ro.mean = rb->mean;
            rb->ro.std = rb->std;
            rb->ro.crop = r->crop > 0 && r->crop < D->h ? r->crop : 0;
        } else if (ck) {
            rc = load_norm(ck_path, ck, m->spec[b].name, (size_t)rb->n_cols, rb->cmean, rb->cstd);
            if (!rc) rc = load_range(r, ck_path, ck, m->spec[b].name, (size_t)rb->n_cols, rb->crange);
        } else
            for (int k = 0; k < rb->n_cols && !rc; k++)
                rc = train_stats(r, rb->col[k], &rb->cmean[k], &rb->cstd[k], rb->crange[k]);
        if (rc) return rc;
    }
    if (ck) rc = load_norm(ck_path, ck, "target", (size_t)r->n_targets, r->tmean, r->tstd);
    if (ck && !rc) rc = load_range(r, ck_path, ck, "target", (size_t)r->n_targets, r->trange);
    const size_t NC = (size_t)r->n_targets * RUN_CALIB_LEVELS; // a flow's recalibration, when fitted
    const io_array *ca =
        ck && !rc && io_npz_get(ck, "calib.pit") ? io_ckpt_get(ck_path, ck, "calib.pit", IO_F64, NC) : NULL;
    if (ck && !rc && io_npz_get(ck, "calib.pit") && !ca) rc = GN_EFORMAT;
    if (ca) memcpy(r->calib, ca->data, sizeof(double) * NC), r->has_calib = 1;
    for (int t = 0; !ck && t < r->n_targets && !rc; t++)
        rc = train_stats(r, r->target[t], &r->tmean[t], &r->tstd[t], r->trange[t]);
    if (rc) return rc;
    return GN_OK;
}

int run_setup(run *r, io_config *cfg, const char *ck_path, const io_npz *ck, int need_targets, int verbose) {
    memset(r, 0, sizeof *r);
    r->shared_ds = -1;
    r->optional_target = -1;
    r->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    io_config *c = &r->cfg;
    nn_store_init(&r->st);
    int rc;
    static int vflag;
    vflag = verbose;
    if ((rc = setup_catalog(r, verbose))) return rc;
    const md_kind *kind = md_kind_find(c->name, io_config_str(c, "model", "kind", "branches"));
    if (!kind) return GN_EINVAL;
    if ((rc = setup_targets(r, kind, need_targets))) return rc;
    md_net *m = &r->net;
    // training-side data options
    if ((rc = run_train_opts_read(c, &r->train))) return rc;
    r->crop = (int)r->train.crop;
    r->augment = !strcmp(r->train.augment, "dihedral");
    r->batch = (int)r->train.batch;
    // branches
    const char *secs[MD_MAX_BRANCH + 1];
    m->n_branch = io_config_sections(c, "branch.", secs, MD_MAX_BRANCH + 1);
    if (m->n_branch == 0) return gn_err(GN_EINVAL, "%s: no [branch.NAME] section", c->name);
    if (m->n_branch > MD_MAX_BRANCH)
        return gn_err(GN_EINVAL, "%s: at most %d branches", c->name, MD_MAX_BRANCH);
    for (int b = 0; b < m->n_branch; b++)
        if ((rc = setup_branch(r, b, secs[b], &vflag))) return rc;
    if ((rc = setup_kind(r, kind))) return rc;
    if ((rc = select_usable(r, need_targets))) return rc;
    if ((rc = setup_norm(r, ck_path, ck))) return rc;
    if ((rc = md_net_make(m, &r->st)) || (rc = nn_store_finalize(&r->st))) return rc;
    if (verbose)
        printf("  samples: train %zu, val %zu, test %zu (%zu catalog rows lack a target, an input column or "
               "an image)\n",
               r->n_rows[0], r->n_rows[1], r->n_rows[2], r->n_unusable);
    return GN_OK;
}

void run_free(run *r) {
    for (int d = 0; d < r->n_ds; d++) io_dataset_close(&r->ds[d]), free(r->entry[d]);
    for (int s = 0; s < 3; s++) free(r->rows[s]);
    for (int k = 0; k <= MD_MAX_BRANCH; k++) free(r->list_buf[k]);
    free(r->split);
    nn_store_free(&r->st);
    gb_model_free(&r->net.gb);
    io_catalog_free(&r->cat);
    io_config_free(&r->cfg);
}

int run_norm_arrays(const run *r, io_named_array *out, int max) {
    static char names[3 * MD_MAX_BRANCH + 4][160];
    static int64_t shapes[3 * MD_MAX_BRANCH + 4];
    int n = 0;
    for (int b = 0; b < r->net.n_branch && n + 2 <= max; b++) {
        const run_branch *rb = &r->br[b];
        int img = r->net.spec[b].input != MD_IN_COLUMNS; // images: per band; spectra: one (identity) entry
        shapes[n] = shapes[n + 1] = img ? r->ds[rb->ds].c : rb->n_cols;
        snprintf(names[n], sizeof names[n], "norm.%s.mean", r->net.spec[b].name);
        snprintf(names[n + 1], sizeof names[n + 1], "norm.%s.std", r->net.spec[b].name);
        out[n] = (io_named_array){names[n], io_array_view(IO_F64, 1, &shapes[n], img ? rb->mean : rb->cmean)};
        out[n + 1] = (io_named_array){names[n + 1],
                                      io_array_view(IO_F64, 1, &shapes[n + 1], img ? rb->std : rb->cstd)};
        n += 2;
    }
    if (n + 2 <= max) {
        shapes[n] = shapes[n + 1] = r->n_targets;
        out[n] = (io_named_array){"norm.target.mean", io_array_view(IO_F64, 1, &shapes[n], r->tmean)};
        out[n + 1] = (io_named_array){"norm.target.std", io_array_view(IO_F64, 1, &shapes[n + 1], r->tstd)};
        n += 2;
    }
    if (r->has_calib && n < max) {
        shapes[n] = (int64_t)r->n_targets * RUN_CALIB_LEVELS;
        out[n] = (io_named_array){"calib.pit", io_array_view(IO_F64, 1, &shapes[n], &r->calib[0][0])};
        n++;
    }
    for (int b = 0; r->has_range && b <= r->net.n_branch && n < max; b++) { // the training ranges
        int tgt = b == r->net.n_branch;
        if (!tgt && r->net.spec[b].input != MD_IN_COLUMNS) continue;
        shapes[n] = 2 * (tgt ? r->n_targets : r->br[b].n_cols);
        snprintf(names[n], sizeof names[n], "norm.%s.range", tgt ? "target" : r->net.spec[b].name);
        out[n] = (io_named_array){
            names[n], io_array_view(IO_F64, 1, &shapes[n], tgt ? &r->trange[0][0] : &r->br[b].crange[0][0])};
        n++;
    }
    return n;
}

// Two paths name the same file (or, where either is missing, the same text).
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (!stat(a, &sa) && !stat(b, &sb)) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    return !strcmp(a, b);
}

// Whether a data path is there: the catalog file, or an image template's directory (the part before {id}).
static int data_there(const char *path, int tmpl) {
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    char *brace = tmpl ? strchr(p, '{') : NULL, *slash;
    if (brace) *brace = 0, slash = strrchr(p, '/'), slash ? (void)(*slash = 0) : (void)(p[0] = '.', p[1] = 0);
    struct stat st;
    return !stat(p, &st);
}

// Data the checkpoint's configuration names but that is not there (the run was read from another directory,
// or the run and its data moved together): the checkpoint's absolute path, else its path relative to the run.
static void find_moved_data(io_config *cfg, const char *ckpt, const io_npz *z) {
    static const char *key[2] = {"catalog", "images"},
                      *arr[2][2] = {{"meta.path.catalog", "meta.path.catalog_rel"},
                                    {"meta.path.images", "meta.path.images_rel"}};
    char dir[4096], cand[8300];
    snprintf(dir, sizeof dir, "%s", ckpt);
    char *sl = strrchr(dir, '/');
    if (sl)
        *sl = 0;
    else
        snprintf(dir, sizeof dir, ".");
    for (int k = 0; k < 2; k++) {
        const char *v = io_config_str(cfg, "data", key[k], NULL);
        if (!v || data_there(v, k)) continue;
        for (int w = 0; w < 2; w++) {
            const io_array *a = io_npz_get(z, arr[k][w]);
            if (!a || a->dtype != IO_U8 || !a->n || a->n > 4000) continue;
            snprintf(cand, sizeof cand, "%s%s%.*s", w ? dir : "", w ? "/" : "", (int)a->n,
                     (const char *)a->data);
            if (!data_there(cand, k)) continue;
            fprintf(stderr, "galnn: [data] %s: %s is not there; using %s (from the checkpoint)\n", key[k], v,
                    cand);
            io_config_put(cfg, "data", key[k], cand);
            break;
        }
    }
}

int run_from_checkpoint(run *r, const char *ckpt, const char *const *ov, int n_ov, int need_targets,
                        int verbose) {
    io_npz z;
    memset(r, 0, sizeof *r);
    int rc = io_npz_read(ckpt, &z);
    if (rc) return rc;
    char *text = io_ckpt_config(ckpt, &z), *trained = NULL;
    io_config cfg;
    if (!text) return io_npz_free(&z), GN_EFORMAT;
    rc = io_config_parse(ckpt, text, &cfg);
    free(text);
    const char *tc = rc ? NULL : io_config_str(&cfg, "data", "catalog", NULL);
    if (tc && !(trained = gn_strdup(tc))) rc = GN_ENOMEM;
    for (int k = 0; !rc && k < n_ov; k++) rc = io_config_set(&cfg, ov[k]);
    if (!rc) find_moved_data(&cfg, ckpt, &z);
    if (!rc)
        rc = run_setup(r, &cfg, ckpt, &z, need_targets, verbose);
    else
        io_config_free(&cfg);
    struct stat st;
    if (rc && r->data.catalog && stat(r->data.catalog, &st)) { // the data moved since training
        char why[512];
        snprintf(why, sizeof why, "%s", gn_errmsg());
        gn_err(rc,
               "%s (the checkpoint's catalog %s is not there: pass --catalog CSV, and --images TEMPLATE if "
               "the cutouts moved too)",
               why, r->data.catalog);
    }
    if (!rc) r->foreign_catalog = !trained || !same_file(trained, r->data.catalog);
    free(trained);
    if (!rc) rc = io_ckpt_restore(ckpt, &z, &r->st, NULL);
    if (!rc && r->net.kind == MD_KIND_GBDT) rc = run_gbdt_load(r, ckpt, &z);
    for (int i = 0; i < r->cfg.n; i++) r->cfg.e[i].used = 1; // training keys are not ours to check here
    io_npz_free(&z);
    return rc;
}
