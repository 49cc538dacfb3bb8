#include "run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/gn_common.h"
#include "../../io/specset.h"
#include "../../stats/metrics.h"

static void say(void *u, const char *line) {
    if (*(int *)u) printf("  %s\n", line);
}

static int parse_int_list(const char *s, int *out, int max, const char *what) {
    int n = 0;
    const char *p = s;
    while (*p && n < max) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0) return gn_err(GN_EINVAL, "%s: '%s' is not a list of positive integers", what, s);
        out[n++] = (int)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    return n;
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
    if (!ss.template) return gn_err(GN_EINVAL, "%s: [%s] input = spectrum needs spectra = 'spectra/{id}.npy'", c->name, sec);
    ss.wave = io_config_str(c, sec, "wave", NULL);
    ss.z_col = io_config_str(c, sec, "redshift", "z");
    if (!strcmp(ss.z_col, "none")) ss.z_col = NULL;
    const char *grid = io_config_str(c, sec, "grid", "3400,8400,4000");
    int np = 0;
    if (sscanf(grid, "%lf , %lf , %d%n", &ss.lo, &ss.hi, &ss.pixels, &np) != 3 || grid[np])
        return gn_err(GN_EINVAL, "%s: [%s] grid = '%s': give LO,HI,PIXELS (Å, Å, count)", c->name, sec, grid);
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
    ss.cache_dir = io_config_str(c, "data", "cache_dir", NULL);
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
        if (!(rb->col[k] = io_catalog_values(&r->cat, rb->col_names[k]))) return gn_err_prefix(GN_EINVAL, "[%s] ", sec);
    sp->in_ch = rb->n_cols;
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
    long v;
    int rc;
    if (!strcmp(bb, "resnet18")) sp->backbone = MD_BB_RESNET18;
    else if (!strcmp(bb, "smallcnn")) sp->backbone = MD_BB_SMALLCNN;
    else if (!strcmp(bb, "mlp")) sp->backbone = MD_BB_MLP;
    else return gn_err(GN_EINVAL, "%s: [%s] backbone '%s' is not resnet18, smallcnn or mlp", c->name, sec, bb);
    if ((rc = io_config_int(c, sec, "width", sp->backbone == MD_BB_RESNET18 ? 64 : 32, &v))) return rc;
    sp->width = (int)v;
    if ((rc = io_config_int(c, sec, "stem_kernel", 3, &v))) return rc;
    sp->stem_kernel = (int)v;
    if ((rc = io_config_int(c, sec, "stem_stride", 2, &v))) return rc;
    sp->stem_stride = (int)v;
    if ((rc = io_config_int(c, sec, "stem_pool", 0, &v))) return rc;
    sp->stem_pool = (int)v;
    const char *hid = io_config_str(c, sec, "hidden", "128,128");
    if ((sp->n_hidden = parse_int_list(hid, sp->hidden, 7, sec)) < 0) return GN_EINVAL;
    if (!strcmp(input, "columns")) {
        if (sp->backbone != MD_BB_MLP) return gn_err(GN_EINVAL, "%s: [%s] column inputs need backbone = mlp", c->name, sec);
        const char *cols = io_config_str(c, sec, "columns", NULL);
        if (!cols) return gn_err(GN_EINVAL, "%s: [%s] needs columns = a,b,c", c->name, sec);
        return setup_columns(r, b, sec, cols);
    }
    if (strcmp(input, "image")) return gn_err(GN_EINVAL, "%s: [%s] input '%s' is not image or columns", c->name, sec, input);
    if (sp->backbone == MD_BB_MLP) return gn_err(GN_EINVAL, "%s: [%s] image inputs need resnet18 or smallcnn", c->name, sec);
    sp->input = MD_IN_IMAGE;
    // its own images (e.g. kinematic maps), or a band subset of [data]'s
    const char *tmpl = io_config_str(c, sec, "images", NULL);
    const char *bands = io_config_str(c, sec, "bands", NULL);
    io_dataset_spec ds;
    memset(&ds, 0, sizeof ds);
    ds.cat = &r->cat;
    ds.log = say;
    ds.log_user = verbose;
    const char *tf = io_config_str(c, tmpl ? sec : "data", "transform", "signlog");
    ds.transform = !strcmp(tf, "none") ? IO_TF_NONE : !strcmp(tf, "asinh") ? IO_TF_ASINH : IO_TF_SIGNLOG;
    if (strcmp(tf, "none") && strcmp(tf, "asinh") && strcmp(tf, "signlog"))
        return gn_err(GN_EINVAL, "%s: transform '%s' is not none, signlog or asinh", c->name, tf);
    double a;
    if ((rc = io_config_double(c, tmpl ? sec : "data", "asinh_scale", 1, &a))) return rc;
    ds.asinh_scale = (float)a;
    if ((rc = io_config_int(c, tmpl ? sec : "data", "size", 0, &v))) return rc;
    ds.size = (int)v;
    if ((rc = io_config_int(c, tmpl ? sec : "data", "bin", 1, &v))) return rc;
    if (v < 1 || v > 16) return gn_err(GN_EINVAL, "%s: bin = %ld: give a block size 1..16", c->name, v);
    ds.bin = (int)v;
    ds.fluxnorm = io_config_str(c, tmpl ? sec : "data", "fluxnorm", NULL);
    ds.cache_dir = io_config_str(c, "data", "cache_dir", NULL);
    ds.strict = 0;
    int di = -1;
    if (tmpl) {
        ds.template = tmpl;
        if (bands && io_parse_bands(bands, &ds)) return GN_EINVAL;
        di = r->n_ds;
    } else {
        ds.template = io_config_str(c, "data", "images", NULL);
        if (!ds.template) return gn_err(GN_EINVAL, "no images: give --images (or [data] images, or [%s] images)", sec);
        const char *db = io_config_str(c, "data", "bands", NULL);
        if (db && io_parse_bands(db, &ds)) return GN_EINVAL;
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
    rb->ro.n_channels = 0;
    if (!tmpl && bands) { // a subset of the shared dataset's bands
        char buf[256];
        snprintf(buf, sizeof buf, "%s", bands);
        char *items[IO_MAX_BANDS];
        int nb = io_split_list(buf, items, IO_MAX_BANDS);
        for (int k = 0; k < nb; k++) {
            int f = -1;
            for (int j = 0; j < D->c; j++)
                if (!strcmp(D->bands[j], items[k])) f = j;
            if (f < 0) return gn_err(GN_EINVAL, "%s: [%s] band '%s' is not among the dataset's bands", c->name, sec, items[k]);
            rb->ro.channels[rb->ro.n_channels++] = f;
        }
    }
    sp->in_ch = rb->ro.n_channels ? rb->ro.n_channels : D->c;
    return GN_OK;
}

// The VAEs' input: [model] main (default: the only branch) as lat_x, which
// must be of the given input kind; nonzero if it is not.
static int find_main(run *r, int input) {
    md_net *m = &r->net;
    const char *main = io_config_str(&r->cfg, "model", "main", m->n_branch == 1 ? m->spec[0].name : NULL);
    m->lat_x = m->lat_a = -1;
    for (int b = 0; main && b < m->n_branch; b++)
        if (!strcmp(m->spec[b].name, main)) m->lat_x = b;
    return m->lat_x < 0 || m->spec[m->lat_x].input != input;
}

// [model] kind = vae: the image VAE (models/vae.h) over the branch `main`.
static int setup_vae(run *r) {
    io_config *c = &r->cfg;
    md_net *m = &r->net;
    m->kind = MD_KIND_VAE;
    md_vae_spec *p = &m->vae.sp;
    if (find_main(r, MD_IN_IMAGE)) return gn_err(GN_EINVAL, "%s: a VAE needs [model] main = an image branch", c->name);
    int h = r->ds[r->br[m->lat_x].ds].h;
    p->in_c = m->spec[m->lat_x].in_ch;
    p->size = r->crop > 0 && r->crop < h ? r->crop : h;
    long v;
    int rc;
    if ((rc = io_config_int(c, "model", "latent", 32, &v))) return rc;
    p->latent = (int)v;
    double d;
    if ((rc = io_config_double(c, "model", "beta", 1, &d))) return rc;
    p->beta = (float)d;
    if ((rc = io_config_double(c, "model", "leaky_slope", 0.2, &d))) return rc;
    p->slope = (float)d;
    const char *w = io_config_str(c, "model", "widths", "32,64,128");
    if ((p->n_down = parse_int_list(w, p->width, MD_VAE_MAXDOWN, "[model] widths")) < 1) return GN_EINVAL;
    return GN_OK;
}

// [model] kind = specvae: the spectral VAE / CVAE (models/specvae.h) over the
// spectrum branch `main`; [model] conditions = a,b,... (catalog columns,
// standardised with the training statistics) become the column branch "cond".
static int setup_specvae(run *r) {
    io_config *c = &r->cfg;
    md_net *m = &r->net;
    m->kind = MD_KIND_SPECVAE;
    md_specvae_spec *p = &m->svae.sp;
    for (int b = 0; b < m->n_branch; b++)
        if (m->spec[b].input == MD_IN_IMAGE)
            return gn_err(GN_EINVAL, "%s: [branch.%s]: a spectral VAE takes a spectrum (and conditions), not images", c->name, m->spec[b].name);
    if (find_main(r, MD_IN_SPECTRUM))
        return gn_err(GN_EINVAL, "%s: a spectral VAE needs [model] main = a branch with input = spectrum", c->name);
    const char *cond = io_config_str(c, "model", "conditions", "none");
    if (strcmp(cond, "none") && *cond) {
        if (m->n_branch == MD_MAX_BRANCH) return gn_err(GN_EINVAL, "%s: no room for the conditions' branch", c->name);
        int b = m->n_branch;
        snprintf(m->spec[b].name, sizeof m->spec[b].name, "cond");
        for (int k = 0; k < b; k++)
            if (!strcmp(m->spec[k].name, "cond")) return gn_err(GN_EINVAL, "%s: [branch.cond] is reserved for [model] conditions", c->name);
        int rc = setup_columns(r, b, "model", cond);
        if (rc) return rc;
        m->spec[b].backbone = MD_BB_MLP;
        m->n_branch++;
        m->lat_a = b;
        p->n_cond = r->br[b].n_cols;
    }
    p->pixels = m->spec[m->lat_x].in_ch;
    long v;
    int rc;
    if ((rc = io_config_int(c, "model", "latent", 4, &v))) return rc;
    p->latent = (int)v;
    double d;
    if ((rc = io_config_double(c, "model", "alpha", 1e3, &d))) return rc;
    p->alpha = (float)d;
    if ((rc = io_config_double(c, "model", "beta", 0.1, &d))) return rc;
    p->beta = (float)d;
    if ((rc = io_config_double(c, "model", "leaky_slope", 0.01, &d))) return rc;
    p->slope = (float)d;
    p->out_bias = (float)r->br[m->lat_x].median;
    if (p->latent < 1 || p->latent > 64) return gn_err(GN_EINVAL, "%s: [model] latent = %d: give 1..64", c->name, p->latent);
    return GN_OK;
}

// [model] kind = flow: the conditional-flow posterior over the column branches.
static int setup_flow(run *r) {
    io_config *c = &r->cfg;
    md_net *m = &r->net;
    m->kind = MD_KIND_FLOW;
    if (m->head != MD_HEAD_REGRESSION)
        return gn_err(GN_EINVAL, "%s: a flow model has its own posterior: leave [target] head unset", c->name);
    md_post_spec *p = &m->post.sp;
    p->in_dim = 0;
    for (int b = 0; b < m->n_branch; b++) {
        if (m->spec[b].input != MD_IN_COLUMNS)
            return gn_err(GN_EINVAL, "%s: [branch.%s]: a flow model takes catalog columns (join a VAE's mu/sigma with [data] join)",
                          c->name, m->spec[b].name);
        p->in_dim += m->spec[b].in_ch;
    }
    p->dim = r->n_targets;
    const char *chain = io_config_str(c, "model", "chain", NULL);
    if (chain) { // the chain-rule target: listed last, may be missing
        if (r->n_targets < 2 || strcmp(r->target_names[r->n_targets - 1], chain))
            return gn_err(GN_EINVAL, "%s: [model] chain = %s must be the last of at least two [target] names", c->name, chain);
        p->chain = 1, p->dim = r->n_targets - 1;
        r->optional_target = r->n_targets - 1;
    }
    struct {
        const char *key;
        long def;
        int *dst;
    } ik[] = {{"context", 256, &p->ctx},         {"context_depth", 2, &p->ctx_depth},   {"mean_hidden", 128, &p->mean_hidden},
              {"layers", 12, &p->flow.layers},   {"flow_hidden", 128, &p->flow.hidden}, {"flow_depth", 2, &p->flow.depth},
              {"chain_layers", 1, &p->chain_layers}};
    for (int k = 0; k < 7; k++) {
        long v;
        int rc = io_config_int(c, "model", ik[k].key, ik[k].def, &v);
        if (rc) return rc;
        *ik[k].dst = (int)v;
    }
    double d;
    int rc;
    if ((rc = io_config_double(c, "model", "mean_weight", 1, &d))) return rc;
    p->mean_weight = (float)d;
    if ((rc = io_config_double(c, "model", "det_weight", 1, &d))) return rc;
    p->det_weight = (float)d;
    if ((rc = io_config_double(c, "model", "clamp", 2, &d))) return rc;
    p->flow.clamp = (float)d;
    const char *sc = io_config_str(c, "model", "scale", "tanh");
    if (strcmp(sc, "tanh") && strcmp(sc, "exp")) return gn_err(GN_EINVAL, "%s: [model] scale '%s' is not tanh or exp", c->name, sc);
    p->flow.scale = strcmp(sc, "tanh") ? MD_FLOW_EXP : MD_FLOW_TANH;
    return GN_OK;
}

// [model] kind = latent: the S-space model (models/latent.h) over the inputs of
// the branches named by `main` (x) and `extra` (a).
static int setup_latent(run *r) {
    io_config *c = &r->cfg;
    md_net *m = &r->net;
    const char *kind = io_config_str(c, "model", "kind", "branches");
    if (!strcmp(kind, "branches")) return GN_OK;
    if (!strcmp(kind, "vae")) return setup_vae(r);
    if (!strcmp(kind, "flow")) return setup_flow(r);
    if (!strcmp(kind, "specvae")) return setup_specvae(r);
    if (strcmp(kind, "latent"))
        return gn_err(GN_EINVAL, "%s: [model] kind '%s' is not branches, latent, vae, flow or specvae", c->name, kind);
    m->kind = MD_KIND_LATENT;
    md_latent_spec *p = &m->lat.sp;
    if (m->head != MD_HEAD_BINNED) return gn_err(GN_EINVAL, "%s: latent models need [target] head = binned", c->name);
    const char *obj = io_config_str(c, "model", "objective", "scl");
    const char *objs[] = {"scl", "ce", "supcon", "rnc"};
    p->objective = -1;
    for (int k = 0; k < 4; k++)
        if (!strcmp(obj, objs[k])) p->objective = k;
    if (p->objective < 0) return gn_err(GN_EINVAL, "%s: [model] objective '%s' is not scl, ce, supcon or rnc", c->name, obj);
    const char *enc = io_config_str(c, "model", "encoder", "mlp");
    if (strcmp(enc, "mlp") && strcmp(enc, "inception"))
        return gn_err(GN_EINVAL, "%s: [model] encoder '%s' is not mlp or inception", c->name, enc);
    p->encoder = strcmp(enc, "mlp") ? MD_ENC_INCEPTION : MD_ENC_MLP;
    int img = p->encoder == MD_ENC_INCEPTION;
    const char *names[2] = {io_config_str(c, "model", "main", NULL), io_config_str(c, "model", "extra", NULL)};
    int *which[2] = {&m->lat_x, &m->lat_a};
    for (int k = 0; k < 2; k++) {
        *which[k] = -1;
        if (!names[k]) continue;
        for (int b = 0; b < m->n_branch; b++)
            if (!strcmp(m->spec[b].name, names[k])) *which[k] = b;
        if (*which[k] < 0) return gn_err(GN_EINVAL, "%s: [model] %s = %s names no [branch.%s]", c->name, k ? "extra" : "main", names[k], names[k]);
        int want = k == 0 && img ? MD_IN_IMAGE : MD_IN_COLUMNS;
        if (m->spec[*which[k]].input != want)
            return gn_err(GN_EINVAL, "%s: [branch.%s] must be %s for the %s encoder", c->name, names[k],
                          want == MD_IN_IMAGE ? "an image input" : "catalog columns", enc);
    }
    if (m->lat_x < 0) return gn_err(GN_EINVAL, "%s: [model] main = BRANCH names the main input", c->name);
    p->x_dim = m->spec[m->lat_x].in_ch;
    p->a_dim = m->lat_a >= 0 ? m->spec[m->lat_a].in_ch : 0;
    if (img) {
        int h = r->ds[r->br[m->lat_x].ds].h; // the size run_batch renders (train.crop is read before this)
        p->img_c = p->x_dim;
        p->img_size = r->crop > 0 && r->crop < h ? r->crop : h;
    }
    struct {
        const char *key;
        long def;
        int *dst;
    } ik[] = {{"dim_main", img ? 16 : 8, &p->dim_main}, {"dim_ext", p->objective == MD_OBJ_CE ? 0 : img ? 512 : 8, &p->dim_ext},
              {"depth", 20, &p->depth},         {"hidden", 128, &p->hidden},
              {"est_hidden", img ? 1024 : 128, &p->est_hidden},
              {"conv_width", 96, &p->conv_w},   {"inception_width", 156, &p->inc_w},
              {"fc_width", 1024, &p->fc_w},     {"decoder_channels", 16, &p->dec_ch},
              {"decoder_width", 32, &p->dec_w}};
    for (int k = 0; k < (int)(sizeof ik / sizeof ik[0]); k++) {
        if (!img && k >= 5) break; // the image keys mean nothing to the MLP encoder
        long v;
        int rc = io_config_int(c, "model", ik[k].key, ik[k].def, &v);
        if (rc) return rc;
        *ik[k].dst = (int)v;
    }
    struct {
        const char *key;
        double def;
        float *dst;
    } fk[] = {{"lambda_rec", img ? 100 : 1, &p->lambda_rec},
              {"tau", p->objective == MD_OBJ_RNC ? 2 : 0.1, &p->tau},
              {"base_tau", 0.07, &p->base_tau},
              {"supcon_width", 0.1, &p->supcon_width},
              {"leaky_slope", 0.2, &p->slope}};
    for (int k = 0; k < 5; k++) {
        double v;
        int rc = io_config_double(c, "model", fk[k].key, fk[k].def, &v);
        if (rc) return rc;
        *fk[k].dst = (float)v;
    }
    if (!(p->supcon_width > 0) || !(p->tau > 0) || !(p->base_tau > 0))
        return gn_err(GN_EINVAL, "%s: [model] tau, base_tau and supcon_width must be positive", c->name);
    p->bins = m->bins, p->lo = m->lo, p->hi = m->hi;
    if (p->objective != MD_OBJ_CE && r->batch_hint % 2)
        return gn_err(GN_EINVAL, "%s: a contrastive batch is set-1/set-2 pairs: [train] batch must be even", c->name);
    return GN_OK;
}

// norm.<what>.mean / .std from a checkpoint, n values each.
static int load_norm(const char *path, const io_npz *ck, const char *what, size_t n, double *mean, double *sd) {
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
static int train_stats(const run *r, const double *v, double *mean, double *sd) {
    size_t n = r->n_rows[IO_SPLIT_TRAIN];
    double *tmp = gn_malloc(sizeof(double) * (n ? n : 1));
    if (!tmp) return GN_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) // present values only (an optional target may be missing)
        if (!isnan(v[r->rows[IO_SPLIT_TRAIN][i]])) tmp[m++] = v[r->rows[IO_SPLIT_TRAIN][i]];
    st_mean_std(tmp, m, mean, sd);
    free(tmp);
    if (!(*sd > 0)) *sd = 1;
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
    long v;
    static int vflag;
    vflag = verbose;
    // catalog
    const char *catp = io_config_str(c, "data", "catalog", NULL);
    if (!catp) return gn_err(GN_EINVAL, "no catalog: give --catalog (or [data] catalog)");
    double thr;
    if ((rc = io_config_double(c, "data", "null_threshold", 9000, &thr))) return rc;
    io_catalog_opts co = {thr, 1};
    if ((rc = io_catalog_read(catp, &co, &r->cat))) return rc;
    const char *join = io_config_str(c, "data", "join", NULL); // "S.csv; vae_mu.csv": more columns by id
    if (join) {
        char *d = gn_strdup(join), *save = NULL;
        if (!d) return GN_ENOMEM;
        for (char *t = strtok_r(d, ";", &save); t && !rc; t = strtok_r(NULL, ";", &save)) {
            while (*t == ' ') t++;
            size_t L = strlen(t), hit = 0;
            while (L && t[L - 1] == ' ') t[--L] = 0;
            if (!L) continue;
            rc = io_catalog_join(&r->cat, t, &hit);
            if (!rc && verbose) printf("  joined %s: %zu of %zu galaxies matched by id\n", t, hit, r->cat.n_rows);
        }
        free(d);
        if (rc) return rc;
    }
    const char *der = io_config_str(c, "data", "derive", NULL); // "a=x-y; b=..."
    if (der) {
        char *d = gn_strdup(der), *save = NULL;
        if (!d) return GN_ENOMEM;
        for (char *t = strtok_r(d, ";", &save); t && !rc; t = strtok_r(NULL, ";", &save)) rc = io_catalog_derive_spec(&r->cat, t);
        free(d);
        if (rc) return rc;
    }
    double ft, fv;
    if ((rc = io_config_double(c, "data", "train_frac", 0.7, &ft)) || (rc = io_config_double(c, "data", "val_frac", 0.15, &fv)))
        return rc;
    r->split = gn_malloc(r->cat.n_rows ? r->cat.n_rows : 1);
    if (!r->split) return GN_ENOMEM;
    if ((rc = io_catalog_splits(&r->cat, ft, fv, r->split))) return rc;
    // targets and head
    const char *tn = io_config_str(c, "target", "names", NULL);
    const char *mk = io_config_str(c, "model", "kind", "branches");
    int vae = !strcmp(mk, "vae") || !strcmp(mk, "specvae"); // a VAE needs no target
    if (!tn && !vae) return gn_err(GN_EINVAL, "no target: give --target (or [target] names)");
    if (tn && !(r->list_buf[MD_MAX_BRANCH] = gn_strdup(tn))) return GN_ENOMEM;
    r->n_targets = tn ? io_split_list(r->list_buf[MD_MAX_BRANCH], r->target_names, MD_MAX_TARGETS) : 0;
    for (int t = 0; t < r->n_targets; t++)
        if (!(r->target[t] = io_catalog_values(&r->cat, r->target_names[t]))) return gn_err_prefix(GN_EINVAL, "[target] ");
    md_net *m = &r->net;
    m->n_targets = r->n_targets;
    const char *head = io_config_str(c, "target", "head", "regression");
    m->head = !strcmp(head, "gaussian") ? MD_HEAD_GAUSSIAN : !strcmp(head, "binned") ? MD_HEAD_BINNED : MD_HEAD_REGRESSION;
    if (strcmp(head, "gaussian") && strcmp(head, "binned") && strcmp(head, "regression"))
        return gn_err(GN_EINVAL, "%s: [target] head '%s' is not regression, gaussian or binned", c->name, head);
    if ((rc = io_config_int(c, "target", "bins", 520, &v))) return rc;
    m->bins = (int)v;
    if ((rc = io_config_double(c, "target", "lo", 6.0, &m->lo)) || (rc = io_config_double(c, "target", "hi", 12.5, &m->hi)))
        return rc;
    if (m->head == MD_HEAD_BINNED && (r->n_targets != 1 || m->bins < 2 || !(m->hi > m->lo)))
        return gn_err(GN_EINVAL, "%s: the binned head needs one target, bins >= 2 and hi > lo", c->name);
    // training-side data options
    if ((rc = io_config_int(c, "train", "crop", 0, &v))) return rc;
    r->crop = (int)v;
    const char *aug = io_config_str(c, "train", "augment", "dihedral");
    r->augment = !strcmp(aug, "dihedral");
    if (!r->augment && strcmp(aug, "none")) return gn_err(GN_EINVAL, "%s: [train] augment '%s' is not dihedral or none", c->name, aug);
    // branches
    const char *secs[MD_MAX_BRANCH + 1];
    m->n_branch = io_config_sections(c, "branch.", secs, MD_MAX_BRANCH + 1);
    if (m->n_branch == 0) return gn_err(GN_EINVAL, "%s: no [branch.NAME] section", c->name);
    if (m->n_branch > MD_MAX_BRANCH) return gn_err(GN_EINVAL, "%s: at most %d branches", c->name, MD_MAX_BRANCH);
    for (int b = 0; b < m->n_branch; b++)
        if ((rc = setup_branch(r, b, secs[b], &vflag))) return rc;
    if ((rc = io_config_int(c, "train", "batch", 32, &v))) return rc;
    r->batch_hint = (int)v;
    if ((rc = setup_latent(r))) return rc;
    // usable rows per split
    for (int s = 0; s < 3; s++) {
        r->rows[s] = gn_malloc(sizeof(uint32_t) * (r->cat.n_rows ? r->cat.n_rows : 1));
        if (!r->rows[s]) return GN_ENOMEM;
    }
    for (size_t row = 0; row < r->cat.n_rows; row++) {
        int ok = 1;
        for (int t = 0; need_targets && t < r->n_targets; t++) ok &= t == r->optional_target || !isnan(r->target[t][row]);
        for (int b = 0; b < m->n_branch; b++) {
            if (m->spec[b].input != MD_IN_COLUMNS) ok &= r->entry[r->br[b].ds][row] >= 0;
            else
                for (int k = 0; k < r->br[b].n_cols; k++) ok &= !isnan(r->br[b].col[k][row]);
        }
        if (!ok) {
            r->n_unusable++;
            continue;
        }
        int s = r->split[row];
        r->rows[s][r->n_rows[s]++] = (uint32_t)row;
    }
    // normalisation: from the training split, or from the checkpoint
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
        } else if (ck)
            rc = load_norm(ck_path, ck, m->spec[b].name, (size_t)rb->n_cols, rb->cmean, rb->cstd);
        else
            for (int k = 0; k < rb->n_cols && !rc; k++) rc = train_stats(r, rb->col[k], &rb->cmean[k], &rb->cstd[k]);
        if (rc) return rc;
    }
    if (ck) rc = load_norm(ck_path, ck, "target", (size_t)r->n_targets, r->tmean, r->tstd);
    for (int t = 0; !ck && t < r->n_targets && !rc; t++) rc = train_stats(r, r->target[t], &r->tmean[t], &r->tstd[t]);
    if (rc) return rc;
    if ((rc = md_net_make(m, &r->st)) || (rc = nn_store_finalize(&r->st))) return rc;
    if (verbose)
        printf("  samples: train %zu, val %zu, test %zu (%zu catalog rows lack a target, an input column or an image)\n",
               r->n_rows[0], r->n_rows[1], r->n_rows[2], r->n_unusable);
    return GN_OK;
}

void run_free(run *r) {
    for (int d = 0; d < r->n_ds; d++) io_dataset_close(&r->ds[d]), free(r->entry[d]);
    for (int s = 0; s < 3; s++) free(r->rows[s]);
    for (int k = 0; k <= MD_MAX_BRANCH; k++) free(r->list_buf[k]);
    free(r->split);
    nn_store_free(&r->st);
    io_catalog_free(&r->cat);
    io_config_free(&r->cfg);
}

int run_norm_arrays(const run *r, io_named_array *out, int max) {
    static char names[2 * MD_MAX_BRANCH + 2][160];
    static int64_t shapes[2 * MD_MAX_BRANCH + 2];
    int n = 0;
    for (int b = 0; b < r->net.n_branch && n + 2 <= max; b++) {
        const run_branch *rb = &r->br[b];
        int img = r->net.spec[b].input != MD_IN_COLUMNS; // images: per band; spectra: one (identity) entry
        shapes[n] = shapes[n + 1] = img ? r->ds[rb->ds].c : rb->n_cols;
        snprintf(names[n], sizeof names[n], "norm.%s.mean", r->net.spec[b].name);
        snprintf(names[n + 1], sizeof names[n + 1], "norm.%s.std", r->net.spec[b].name);
        out[n] = (io_named_array){names[n], io_array_view(IO_F64, 1, &shapes[n], img ? rb->mean : rb->cmean)};
        out[n + 1] = (io_named_array){names[n + 1], io_array_view(IO_F64, 1, &shapes[n + 1], img ? rb->std : rb->cstd)};
        n += 2;
    }
    if (n + 2 <= max) {
        shapes[n] = shapes[n + 1] = r->n_targets;
        out[n] = (io_named_array){"norm.target.mean", io_array_view(IO_F64, 1, &shapes[n], r->tmean)};
        out[n + 1] = (io_named_array){"norm.target.std", io_array_view(IO_F64, 1, &shapes[n + 1], r->tstd)};
        n += 2;
    }
    return n;
}

int run_batch(const run *r, nn_ctx *c, const uint32_t *ids, const io_aug *aug, int n, nn_tensor **in, float *y,
              float *scratch) {
    const md_net *m = &r->net;
    for (int b = 0; b < m->n_branch; b++) {
        const run_branch *rb = &r->br[b];
        if (m->spec[b].input == MD_IN_SPECTRUM) {
            const io_dataset *D = &r->ds[rb->ds];
            in[b] = nn_tensor_new(c, NN_SHAPE(n, D->w));
            if (!in[b]) return GN_ENOMEM;
            for (int i = 0; i < n; i++)
                memcpy(in[b]->data + (size_t)i * D->w, io_dataset_image(D, (size_t)r->entry[rb->ds][ids[i]]), sizeof(float) * D->w);
        } else if (m->spec[b].input == MD_IN_IMAGE) {
            const io_dataset *D = &r->ds[rb->ds];
            int C = m->spec[b].in_ch, S = rb->ro.crop ? rb->ro.crop : D->h;
            in[b] = nn_tensor_new(c, NN_SHAPE(n, C, S, S));
            if (!in[b]) return GN_ENOMEM;
            for (int i = 0; i < n; i++)
                io_render(D, (uint32_t)r->entry[rb->ds][ids[i]], &rb->ro, &aug[i], in[b]->data + (size_t)i * C * S * S, scratch);
        } else {
            in[b] = nn_tensor_new(c, NN_SHAPE(n, rb->n_cols));
            if (!in[b]) return GN_ENOMEM;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < rb->n_cols; k++)
                    in[b]->data[i * rb->n_cols + k] = (float)((rb->col[k][ids[i]] - rb->cmean[k]) / rb->cstd[k]);
        }
    }
    if (y)
        for (int i = 0; i < n; i++)
            for (int t = 0; t < r->n_targets; t++) {
                double v = r->target[t][ids[i]];
                y[i * r->n_targets + t] = (float)(m->head == MD_HEAD_BINNED ? v : (v - r->tmean[t]) / r->tstd[t]);
            }
    return GN_OK;
}

// Evaluation-mode forward passes in batches: head outputs (embed < 0) or the
// latent model's S (embed 0) / full latent (embed 1), width `dim` per row.
static int infer(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, int embed, int dim, float *out) {
    int B = r->batch > 0 ? r->batch : 64, maxS = 1;
    for (int d = 0; d < r->n_ds; d++) maxS = r->ds[d].h > maxS ? r->ds[d].h : maxS;
    float *scratch = gn_malloc(sizeof(float) * (size_t)maxS * maxS);
    io_aug *none = gn_malloc(sizeof(io_aug) * (size_t)B);
    if (!scratch || !none) return free(scratch), free(none), GN_ENOMEM;
    for (int i = 0; i < B; i++) none[i] = (io_aug){0, 0.5f, 0.5f};
    int tr = c->training, ge = c->grad_enabled, rc = GN_OK;
    c->training = 0, c->grad_enabled = 0;
    for (size_t o = 0; o < n && !rc; o += (size_t)B) {
        int b = (int)(n - o < (size_t)B ? n - o : (size_t)B);
        nn_tensor *in[MD_MAX_BRANCH];
        nn_ctx_reset(c);
        if ((rc = run_batch(r, c, rows + o, none, b, in, NULL, scratch))) break;
        nn_tensor *y = embed < 0 ? md_net_fwd(c, &r->net, in) : md_net_embed(c, &r->net, in, embed);
        if (!y) {
            rc = GN_EINVAL;
            break;
        }
        memcpy(out + o * (size_t)dim, y->data, sizeof(float) * y->n);
    }
    c->training = tr, c->grad_enabled = ge;
    free(scratch), free(none);
    return rc;
}

int run_infer(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, float *out) {
    return infer(r, c, rows, n, -1, r->net.n_out, out);
}

int run_embed(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, int full, float *out) {
    int D = md_net_embed_dim(&r->net, full);
    if (!D) return gn_err(GN_EINVAL, "embed: the checkpoint is not a latent (S-space) model or a VAE");
    return infer(r, c, rows, n, full, D, out);
}

int run_select_rows(const run *r, int only, uint32_t **rows, size_t *n) {
    *n = 0;
    *rows = gn_malloc(sizeof(uint32_t) * (r->cat.n_rows ? r->cat.n_rows : 1));
    uint8_t *use = gn_calloc(r->cat.n_rows ? r->cat.n_rows : 1, 1);
    if (!*rows || !use) return free(use), GN_ENOMEM;
    for (int s = 0; s < 3; s++)
        if (only < 0 || only == s)
            for (size_t k = 0; k < r->n_rows[s]; k++) use[r->rows[s][k]] = 1;
    for (size_t row = 0; row < r->cat.n_rows; row++) // catalog order
        if (use[row]) (*rows)[(*n)++] = (uint32_t)row;
    free(use);
    return GN_OK;
}

void run_estimate(const run *r, const float *o, run_est *est) {
    const md_net *m = &r->net;
    int T = m->n_targets;
    for (int t = 0; t < T; t++) {
        run_est *e = &est[t];
        if (m->head == MD_HEAD_BINNED) {
            double mx = o[0], s = 0, m1 = 0, m2 = 0, w = (m->hi - m->lo) / m->bins, best = -1;
            for (int k = 1; k < m->bins; k++) mx = o[k] > mx ? o[k] : mx;
            for (int k = 0; k < m->bins; k++) s += exp(o[k] - mx);
            double cdf = 0, dmed = 2;
            e->p16 = e->p84 = e->median = NAN;
            for (int k = 0; k < m->bins; k++) {
                double p = exp(o[k] - mx) / s, yk = m->lo + (k + 0.5) * w;
                m1 += p * yk, m2 += p * yk * yk;
                if (p > best) best = p, e->mode = yk;
                cdf += p;
                if (fabs(cdf - 0.5) < dmed) dmed = fabs(cdf - 0.5), e->median = yk; // spec §1.8
                if (isnan(e->p16) && cdf >= 0.16) e->p16 = yk;
                if (isnan(e->p84) && cdf >= 0.84) e->p84 = yk;
            }
            e->mean = m1;
            e->sd = sqrt(fmax(m2 - m1 * m1, 0));
        } else {
            e->mean = o[t] * r->tstd[t] + r->tmean[t];
            e->sd = m->head == MD_HEAD_GAUSSIAN ? exp(0.5 * o[T + t]) * r->tstd[t] : 0;
            e->median = e->mode = e->mean;
            e->p16 = e->mean - e->sd, e->p84 = e->mean + e->sd;
        }
    }
}

int run_from_checkpoint(run *r, const char *ckpt, const char **ov, int n_ov, int need_targets, int verbose) {
    io_npz z;
    memset(r, 0, sizeof *r);
    int rc = io_npz_read(ckpt, &z);
    if (rc) return rc;
    char *text = io_ckpt_config(ckpt, &z);
    io_config cfg;
    if (!text) return io_npz_free(&z), GN_EFORMAT;
    rc = io_config_parse(ckpt, text, &cfg);
    free(text);
    for (int k = 0; !rc && k < n_ov; k++) rc = io_config_set(&cfg, ov[k]);
    if (!rc) rc = run_setup(r, &cfg, ckpt, &z, need_targets, verbose);
    else io_config_free(&cfg);
    if (!rc) rc = io_ckpt_restore(ckpt, &z, &r->st, NULL);
    long b;
    if (!rc) rc = io_config_int(&r->cfg, "train", "batch", 64, &b);
    r->batch = (int)b;
    for (int i = 0; i < r->cfg.n; i++) r->cfg.e[i].used = 1; // training keys are not ours to check here
    io_npz_free(&z);
    return rc;
}
