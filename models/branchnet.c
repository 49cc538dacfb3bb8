#include "branchnet.h"
#include <omp.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

// The weight and bias initializers of a layer kind under a branch's init choice.
static nn_init w_init(int init, int conv) {
    if (init == MD_INIT_HE) return nn_init_he();
    if (init == MD_INIT_GLOROT) return nn_init_glorot();
    if (init == MD_INIT_UNIFORM) return nn_init_torch(0);
    return conv ? nn_init_he_out() : nn_init_torch(0); // torchvision's convs; PyTorch's Linear
}
static nn_init b_init(int init, int fan_in) {
    return init == MD_INIT_TORCH || init == MD_INIT_UNIFORM ? nn_init_torch(fan_in) : nn_init_const(0);
}

static int norm_make(md_norm *nm, nn_store *s, const char *name, int ch, int kind, float gamma0) {
    nm->kind = kind;
    if (kind == MD_NORM_NONE) return GN_OK;
    if (kind == MD_NORM_BATCH) {
        int rc = nn_bn_make(&nm->bn, s, name, ch);
        if (!rc && gamma0 != 1) nn_store_set_init(s, nm->bn.gamma, nn_init_const(gamma0));
        return rc;
    }
    nm->groups = 32;
    while (ch % nm->groups) nm->groups--;
    char n1[160], n2[160];
    snprintf(n1, sizeof n1, "%s.weight", name), snprintf(n2, sizeof n2, "%s.bias", name);
    nm->gamma = nn_store_param(s, n1, 1, (int[]){ch}, nn_init_const(gamma0));
    nm->beta = nn_store_param(s, n2, 1, (int[]){ch}, nn_init_const(0));
    return nm->gamma && nm->beta ? GN_OK : GN_ENOMEM;
}

// relu(norm(conv(x)) + res) (res may be NULL; relu 0: no activation, 2: ReLU with a transient output
// for batch norm, see nn_batchnorm_act); batch norm by nn_conv_bn_act
// (folded into the conv when evaluated without a tape)
static nn_tensor *conv_norm_act(nn_ctx *c, const nn_conv *cv, const md_norm *nm, nn_tensor *x, nn_tensor *res,
                                int relu) {
    if (nm->kind == MD_NORM_BATCH) return nn_conv_bn_act(c, cv, &nm->bn, x, res, relu);
    x = nn_conv_fwd(c, cv, x);
    if (nm->kind == MD_NORM_GROUP) x = nn_groupnorm(c, x, nm->groups, nm->gamma, nm->beta, 1e-5f);
    if (res) x = nn_add(c, x, res);
    return relu ? nn_relu(c, x) : x;
}

static int conv_bn(nn_conv *cv, md_norm *bn, nn_store *s, const char *pre, const char *name, int cin,
                   int cout, int k, int stride, int pad, const md_branch_spec *b, float gamma0) {
    char n1[128], n2[128];
    snprintf(n1, sizeof n1, "%s.%s", pre, name);
    snprintf(n2, sizeof n2, "%s.%s_bn", pre, name);
    int bias = b->norm == MD_NORM_NONE; // a norm's beta makes a conv bias redundant
    int rc = nn_conv_make(cv, s, n1, cin, cout, k, stride, pad, bias, w_init(b->init, 1),
                          b_init(b->init, cin * k * k));
    return rc ? rc : norm_make(bn, s, n2, cout, b->norm, gamma0);
}

// ResNet-18: stem, 4 stages x 2 basic blocks (w, 2w, 4w, 8w), stride 2 at the
// start of stages 2-4 with a 1x1/2 conv + BN projection shortcut.
static int resnet_make(md_resnet *r, nn_store *s, const char *pre, const md_branch_spec *b) {
    int w = b->width, k = b->stem_kernel;
    int rc = conv_bn(&r->stem, &r->stem_bn, s, pre, "stem", b->in_ch, w, k, b->stem_stride, k / 2, b, 1);
    r->stem_pool = b->stem_pool;
    int cin = w;
    float g2 = b->zero_init_residual ? 0.0f : 1.0f; // torchvision's zero_init_residual
    for (int i = 0; i < 8 && !rc; i++) {
        int stage = i / 2, cout = w << stage, stride = (i % 2 == 0 && stage > 0) ? 2 : 1;
        md_block *B = &r->block[i];
        char nm[64];
        snprintf(nm, sizeof nm, "layer%d.%d.conv1", stage + 1, i % 2);
        rc = conv_bn(&B->c1, &B->b1, s, pre, nm, cin, cout, 3, stride, 1, b, 1);
        snprintf(nm, sizeof nm, "layer%d.%d.conv2", stage + 1, i % 2);
        if (!rc) rc = conv_bn(&B->c2, &B->b2, s, pre, nm, cout, cout, 3, 1, 1, b, g2);
        B->has_proj = stride != 1 || cin != cout;
        snprintf(nm, sizeof nm, "layer%d.%d.downsample", stage + 1, i % 2);
        if (!rc && B->has_proj) rc = conv_bn(&B->proj, &B->bp, s, pre, nm, cin, cout, 1, stride, 0, b, 1);
        cin = cout;
    }
    r->out_dim = cin;
    return rc;
}

// The stem (from i0 = 0) and blocks [i0, i1) on x. The stem's and the blocks' outputs and the projections (in
// inference the first convs' outputs too) are pooled: each is dropped once the block that reads it has run,
// and backward recomputes it from the conv outputs (nn_tensor_pooled).
static nn_tensor *resnet_blocks(nn_ctx *c, const md_resnet *r, nn_tensor *x, int i0, int i1) {
    if (i0 == 0) {
        x = conv_norm_act(c, &r->stem, &r->stem_bn, x, NULL, r->stem_pool ? 1 : 1 | NN_ACT_POOLED);
        if (r->stem_pool) x = nn_maxpool2d(c, x, 3, 3, 2, 2, nn_pad_sym(1));
    }
    for (int i = i0; i < i1 && x; i++) {
        const md_block *B = &r->block[i];
        // read by conv2 only: deferred (conv2 reads relu(bn1(conv1(x))) from conv1(x) in its input
        // transform); in inference in conv2's Winograd input layout where both take it (NN_ACT_WINO)
        nn_tensor *h = conv_norm_act(c, &B->c1, &B->b1, x, NULL, 2 | NN_ACT_DEFER | NN_ACT_WINO);
        nn_tensor *sc = B->has_proj ? conv_norm_act(c, &B->proj, &B->bp, x, NULL, NN_ACT_POOLED) : x;
        nn_tensor *y = conv_norm_act(c, &B->c2, &B->b2, h, sc, 1 | NN_ACT_POOLED); // relu(bn2(conv2(h)) + sc)
        if (sc != x) nn_tensor_drop(c, sc);
        nn_tensor_drop(c, h); // (pooled in inference: nn_conv_bn_act)
        nn_tensor_drop(c, x);
        x = y;
    }
    return x;
}

// Inference: the stem and the first `split` blocks by sub-groups of `sub` rows, into one tensor of all the
// rows, and the deeper blocks on all of them at once. The wide early layers' activations of a few images stay
// in the caches; the deep layers' filter transforms are read once for all the rows. The same values as all
// the rows at once: every row's arithmetic is its own.
static nn_tensor *resnet_front_sub(nn_ctx *c, const md_resnet *r, nn_tensor *x, int sub, int split) {
    int N = x->shape[0], shape[4];
    size_t per = x->n / (size_t)N;
    nn_tensor *f = NULL;
    memcpy(shape, x->shape, sizeof shape);
    for (int i0 = 0; i0 < N; i0 += sub) {
        nn_arena_mark mk = nn_arena_get_mark(&c->arena);
        shape[0] = N - i0 < sub ? N - i0 : sub;
        nn_tensor *g = resnet_blocks(c, r, nn_tensor_wrap(c, 4, shape, x->data + (size_t)i0 * per), 0, split);
        if (!g) return NULL;
        if (!f) { // its shape known from the first sub-group's, made before that group's arena is released
            nn_tensor *t = nn_tensor_new(c, NN_SHAPE(N, g->shape[1], g->shape[2], g->shape[3]));
            if (!t) return NULL;
            memcpy(t->data, g->data, sizeof(float) * g->n), nn_tensor_drop(c, g), f = t;
            continue;
        }
        memcpy(f->data + (size_t)i0 * (g->n / (size_t)g->shape[0]), g->data, sizeof(float) * g->n);
        nn_tensor_drop(c, g);
        nn_arena_release(&c->arena, mk);
    }
    return f;
}

// In inference the front (the stem and the first two stages' blocks, RESNET_FRONT: the layers of the most
// values per image) by sub-groups of 8 rows (ctx->tune.infer_front): a group of 32 rows' 32-channel
// activations at 32x32 take 4 MiB each, 8 rows' 1 MiB, and the deep layers still read their filter
// transforms once for all the rows (the multi-branch net's inference, AMD Zen 5, 2 threads: +3.1 % while
// the machine ran slow, 10 of 10 alternated pairs faster, -1.5 % while it ran fast; one thread +1.5 to
// +1.9 %; 4 rows 14 % slower, 16 rows 3 %; the front to the second or the third stage's first block 2 %;
// with the first convs' outputs in the Winograd layout, NN_ACT_WINO, switching it off costs 4.3 %).
#define RESNET_FRONT 4
static nn_tensor *resnet_fwd(nn_ctx *c, const md_resnet *r, nn_tensor *x) {
    int sub = c->tune.infer_front >= 0 ? c->tune.infer_front : 8;
    int front = !c->grad_enabled && !c->training && sub > 0 && x->shape[0] > sub;
    x = front ? resnet_front_sub(c, r, x, sub, RESNET_FRONT) : x;
    x = x ? resnet_blocks(c, r, x, front ? RESNET_FRONT : 0, 8) : NULL;
    nn_tensor *f = x ? nn_global_avgpool(c, x) : NULL;
    nn_tensor_drop(c, x);
    return f;
}

// Small CNN: 3 x [conv3x3 -> BN -> ReLU] (w, 2w, 4w), max-pool after the first two, GAP.
static int smallcnn_make(md_smallcnn *m, nn_store *s, const char *pre, const md_branch_spec *b) {
    int cin = b->in_ch, rc = 0;
    for (int i = 0; i < 3 && !rc; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "conv%d", i + 1);
        rc = conv_bn(&m->c[i], &m->b[i], s, pre, nm, cin, b->width << i, 3, 1, 1, b, 1);
        cin = b->width << i;
    }
    m->out_dim = cin;
    return rc;
}

static nn_tensor *smallcnn_fwd(nn_ctx *c, const md_smallcnn *m, nn_tensor *x) {
    for (int i = 0; i < 3; i++) {
        x = conv_norm_act(c, &m->c[i], &m->b[i], x, NULL, 1);
        if (i < 2) x = nn_maxpool2d(c, x, 2, 2, 2, 2, nn_pad_sym(0));
    }
    return nn_global_avgpool(c, x);
}

static nn_tensor *act_fwd(nn_ctx *c, int act, nn_tensor *x) {
    switch (act) {
    case MD_ACT_SILU: return nn_silu(c, x);
    case MD_ACT_GELU: return nn_gelu(c, x);
    case MD_ACT_LEAKY: return nn_leaky_relu(c, x, 0.01f);
    case MD_ACT_TANH: return nn_tanh(c, x);
    default: return nn_relu(c, x);
    }
}

static int mlp_make(md_mlpnet *m, nn_store *s, const char *pre, const md_branch_spec *b) {
    int cin = b->in_ch;
    m->n = b->n_hidden, m->act = b->act;
    for (int i = 0; i < b->n_hidden; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "%s.fc%d", pre, i + 1);
        int rc =
            nn_dense_make(&m->l[i], s, nm, cin, b->hidden[i], 1, w_init(b->init, 0), b_init(b->init, cin));
        if (rc) return rc;
        cin = b->hidden[i];
    }
    m->out_dim = cin;
    return GN_OK;
}

static nn_tensor *mlp_fwd(nn_ctx *c, const md_mlpnet *m, nn_tensor *x) {
    for (int i = 0; i < m->n; i++) x = act_fwd(c, m->act, nn_dense_fwd(c, &m->l[i], x));
    return x;
}

static int branches_make(md_net *m, nn_store *s) {
    int feat = 0, rc = 0;
    for (int b = 0; b < m->n_branch && !rc; b++) {
        const md_branch_spec *sp = &m->spec[b];
        switch (sp->backbone) {
        case MD_BB_RESNET18: rc = resnet_make(&m->rn[b], s, sp->name, sp), feat += m->rn[b].out_dim; break;
        case MD_BB_SMALLCNN: rc = smallcnn_make(&m->sc[b], s, sp->name, sp), feat += m->sc[b].out_dim; break;
        default: rc = mlp_make(&m->mlp[b], s, sp->name, sp), feat += m->mlp[b].out_dim; break;
        }
        int d = sp->backbone == MD_BB_RESNET18   ? m->rn[b].out_dim
                : sp->backbone == MD_BB_SMALLCNN ? m->sc[b].out_dim
                                                 : m->mlp[b].out_dim;
        char n1[64], n2[64];
        snprintf(n1, sizeof n1, "%s.feat_norm.weight", sp->name),
            snprintf(n2, sizeof n2, "%s.feat_norm.bias", sp->name);
        if (!rc && sp->feature_norm) {
            m->feat_g[b] = nn_store_param(s, n1, 1, (int[]){d}, nn_init_const(1));
            m->feat_b[b] = nn_store_param(s, n2, 1, (int[]){d}, nn_init_const(0));
            if (!m->feat_g[b] || !m->feat_b[b]) rc = GN_ENOMEM;
        }
    }
    if (rc) return rc;
    m->n_out = m->head == MD_HEAD_BINNED     ? m->bins
               : m->head == MD_HEAD_GAUSSIAN ? 2 * m->n_targets
                                             : m->n_targets;
    int hi = m->head_init, rc2 = GN_OK;
    if (m->head_hidden > 0) {
        rc2 = nn_dense_make(&m->fc_hidden, s, "head.hidden", feat, m->head_hidden, 1, w_init(hi, 0),
                            b_init(hi, feat));
        feat = m->head_hidden;
    }
    return rc2 ? rc2
               : nn_dense_make(&m->fc, s, "head.fc", feat, m->n_out, 1, w_init(hi, 0), b_init(hi, feat));
}

static nn_tensor *backbone_fwd(nn_ctx *c, const md_net *m, int b, nn_tensor *x) {
    switch (m->spec[b].backbone) {
    case MD_BB_RESNET18: return resnet_fwd(c, &m->rn[b], x);
    case MD_BB_SMALLCNN: return smallcnn_fwd(c, &m->sc[b], x);
    default: return mlp_fwd(c, &m->mlp[b], x);
    }
}

// Rows of a group of an image branch's inference pass (each group on one thread): 32. The whole batch's
// activations outgrow the caches, and each layer would read its input back from memory (the multi-branch
// net of make bench, Intel AVX-512, one thread: 470-480 samples/s by 16 or 32 rows, 425-430 at once).
// Fewer rows read the deep layers' filter transforms (9.4 MiB for 256 channels) from memory for too few
// tiles (AMD Zen 5, one thread: 662 by 16 rows, 685 by 32 or 64).
static int infer_rows(const nn_ctx *c, const md_net *m, int b, const nn_tensor *x) {
    if (c->grad_enabled || c->training || m->spec[b].backbone == MD_BB_MLP || x->ndim != 4) return 0;
    return c->tune.infer_rows >= 0 ? c->tune.infer_rows : 32;
}

// The groups of rows on the threads at once, each thread with one group at a time in a context of its own
// (nn_ctx_workers) and no other thread: a layer split among the threads passes its data between their
// caches, whole images per thread share nothing but the weights (AMD Zen 5, 2 threads: 1,740 samples/s
// against 1,250 when the two cores' caches are far apart). The same values as one thread: every row's
// arithmetic is that of its group alone.
static nn_tensor *backbone_rows_par(nn_ctx *c, const md_net *m, int b, nn_tensor *x, nn_tensor *f, int rows,
                                    int nt) {
    int N = x->shape[0], D = f->shape[1], ng = (N + rows - 1) / rows, failed = 0;
    size_t per = x->n / (size_t)N;
    char msg[1024] = "";
    if (nn_ctx_workers(c, nt)) return NULL;
#pragma omp parallel num_threads(nt)
    {
        nn_ctx *w = &c->workers[omp_get_thread_num()];
        gn_threads_local(1);
#pragma omp for schedule(static)
        for (int gi = 0; gi < ng; gi++) {
            int shape[4] = {N - gi * rows < rows ? N - gi * rows : rows, x->shape[1], x->shape[2],
                            x->shape[3]};
            nn_tensor *g =
                failed ? NULL : backbone_fwd(w, m, b, nn_tensor_wrap(w, 4, shape, x->data + gi * rows * per));
            if (g) memcpy(f->data + (size_t)gi * rows * D, g->data, sizeof(float) * g->n);
#pragma omp critical(md_rows_failed)
            if (!g && !failed) failed = 1, snprintf(msg, sizeof msg, "%s", gn_errmsg());
            nn_ctx_reset(w);
        }
        gn_threads_local(0);
    }
    return failed ? (gn_err(GN_ENOMEM, "%s", msg), NULL) : f;
}

// An image branch's features in inference by groups of rows, each group's activations released before the
// next (every row's features are its own: no batch statistics outside training); with more than one thread
// and group, the groups shared among the threads (backbone_rows_par), as many per thread.
static nn_tensor *backbone_fwd_rows(nn_ctx *c, const md_net *m, int b, nn_tensor *x) {
    int N = x ? x->shape[0] : 0, rows = x ? infer_rows(c, m, b, x) : 0, nt = gn_threads();
    if (rows <= 0 || (rows >= N && nt < 2)) return backbone_fwd(c, m, b, x);
    int D = m->spec[b].backbone == MD_BB_RESNET18 ? m->rn[b].out_dim : m->sc[b].out_dim, shape[4];
    nn_tensor *f = nn_tensor_new(c, NN_SHAPE(N, D));
    if (f && nt > 1 && N > 1) {
        int ng = (N + rows - 1) / rows;
        ng = ng < nt ? (N < nt ? N : nt) : (ng + nt - 1) / nt * nt;
        return backbone_rows_par(c, m, b, x, f, (N + ng - 1) / ng, nt < ng ? nt : ng);
    }
    size_t per = x->n / (size_t)N;
    memcpy(shape, x->shape, sizeof shape);
    for (int i0 = 0; f && i0 < N; i0 += rows) {
        nn_arena_mark mk = nn_arena_get_mark(&c->arena);
        shape[0] = N - i0 < rows ? N - i0 : rows;
        nn_tensor *g = backbone_fwd(c, m, b, nn_tensor_wrap(c, 4, shape, x->data + (size_t)i0 * per));
        if (!g) return NULL;
        memcpy(f->data + (size_t)i0 * D, g->data, sizeof(float) * g->n);
        nn_arena_release(&c->arena, mk);
    }
    return f;
}

static nn_tensor *branches_fwd(nn_ctx *c, const md_net *m, nn_tensor *const *in) {
    nn_tensor *f[MD_MAX_BRANCH];
    for (int b = 0; b < m->n_branch; b++) {
        f[b] = backbone_fwd_rows(c, m, b, in[b]);
        if (m->spec[b].feature_norm) f[b] = nn_layernorm(c, f[b], m->feat_g[b], m->feat_b[b], 1e-5f);
        if (m->spec[b].dropout > 0) f[b] = nn_dropout(c, f[b], m->spec[b].dropout);
    }
    nn_tensor *z = m->n_branch == 1 ? f[0] : nn_concat(c, m->n_branch, f, 1);
    if (m->head_hidden > 0) z = act_fwd(c, m->head_act, nn_dense_fwd(c, &m->fc_hidden, z));
    return nn_dense_fwd(c, &m->fc, z);
}

static int branches_parse(md_net *m, io_config *c, const md_data_info *d) {
    return (void)m, (void)c, (void)d, GN_OK;
}

static nn_tensor *branches_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *const *in_m,
                                const float *y, int N) {
    (void)in_m;
    return md_net_loss(c, m, branches_fwd(c, m, in), y, N);
}

static nn_tensor *branches_val_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *out,
                                    const float *y, int N, gn_rng *eps) {
    (void)in, (void)eps;
    return md_net_loss(c, m, out, y, N);
}

static int no_embed(const md_net *m, int full) { return (void)m, (void)full, 0; }

const md_kind md_kind_branches = {"branches",
                                  "a multi-branch network",
                                  1,
                                  1,
                                  MD_REPORT_POINT,
                                  branches_parse,
                                  branches_make,
                                  branches_loss,
                                  branches_fwd,
                                  branches_val_loss,
                                  NULL,
                                  no_embed,
                                  0,
                                  NULL, 0, 1}; // the loss depends on the head: the trainer names it

void md_net_multibranch(md_net *m, int width) {
    memset(m, 0, sizeof *m);
    md_branch_spec a = {.name = "img",
                        .input = MD_IN_IMAGE,
                        .backbone = MD_BB_RESNET18,
                        .in_ch = 5,
                        .width = width,
                        .stem_kernel = 3,
                        .stem_stride = 2};
    m->n_branch = 2, m->spec[0] = a, m->spec[1] = a;
    snprintf(m->spec[1].name, sizeof m->spec[1].name, "kin");
    m->spec[1].in_ch = 2;
    m->head = MD_HEAD_REGRESSION, m->n_targets = 2;
}

int md_net_make(md_net *m, nn_store *s) { return md_kind_of(m)->make(m, s); }

// The flow model's features: every branch's columns side by side.
nn_tensor *md_net_flow_features(nn_ctx *c, const md_net *m, nn_tensor *const *in) {
    return m->n_branch == 1 ? in[0] : nn_concat(c, m->n_branch, (nn_tensor **)in, 1);
}

nn_tensor *md_net_embed(nn_ctx *c, const md_net *m, nn_tensor *const *in, int full) {
    const md_kind *k = md_kind_of(m);
    return k->embed ? k->embed(c, m, in, full) : NULL;
}

int md_net_embed_dim(const md_net *m, int full) { return md_kind_of(m)->embed_dim(m, full); }

void md_net_embed_name(const md_net *m, int d, char *buf, size_t len) {
    int L = md_net_embed_dim(m, 0);
    if (md_kind_of(m)->latent_names)
        snprintf(buf, len, "%s%d", d < L ? "mu" : "sigma", d < L ? d : d - L);
    else
        snprintf(buf, len, "s%d", d);
}

nn_tensor *md_net_train_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *const *in_m,
                             const float *y, int N) {
    return md_kind_of(m)->train_loss(c, m, in, in_m, y, N);
}

nn_tensor *md_net_fwd(nn_ctx *c, const md_net *m, nn_tensor *const *in) {
    return md_kind_of(m)->forward(c, m, in);
}

int md_bin_label(const md_net *m, double y) {
    double w = (m->hi - m->lo) / m->bins;
    int k = (int)floor((y - m->lo) / w);
    return k < 0 ? 0 : k >= m->bins ? m->bins - 1 : k;
}

nn_tensor *md_net_loss(nn_ctx *c, const md_net *m, nn_tensor *out, const float *y, int N) {
    if (!out) return NULL;
    int T = m->n_targets;
    if (m->head == MD_HEAD_BINNED) {
        int32_t *lab = nn_arena_alloc(&c->arena, sizeof(int32_t) * (size_t)N);
        if (!lab) return NULL;
        for (int i = 0; i < N; i++) lab[i] = md_bin_label(m, y[i]);
        return nn_cross_entropy(c, out, lab);
    }
    nn_tensor *yt = nn_tensor_from(c, NN_SHAPE(N, T), y);
    if (m->head == MD_HEAD_REGRESSION) return nn_mse_loss(c, out, yt);
    nn_tensor *mu = nn_slice(c, out, 1, 0, T), *lv = nn_slice(c, out, 1, T, 2 * T);
    return nn_gaussian_nll(c, mu, lv, yt, 0);
}

void md_net_predict(const md_net *m, const nn_tensor *out, float *pred, float *sd) {
    int N = out->shape[0], T = m->n_targets;
    for (int i = 0; i < N; i++) {
        const float *o = out->data + (size_t)i * m->n_out;
        if (m->head == MD_HEAD_REGRESSION) {
            for (int t = 0; t < T; t++) {
                pred[i * T + t] = o[t];
                if (sd) sd[i * T + t] = 0;
            }
        } else if (m->head == MD_HEAD_GAUSSIAN) {
            for (int t = 0; t < T; t++) {
                pred[i * T + t] = o[t];
                if (sd) sd[i * T + t] = expf(0.5f * o[T + t]);
            }
        } else { // binned: posterior mean and standard deviation over the bin centres
            double mx = o[0], s = 0, m1 = 0, m2 = 0, w = (m->hi - m->lo) / m->bins;
            for (int k = 1; k < m->bins; k++) mx = o[k] > mx ? o[k] : mx;
            for (int k = 0; k < m->bins; k++) {
                double p = exp(o[k] - mx), yk = m->lo + (k + 0.5) * w;
                s += p, m1 += p * yk, m2 += p * yk * yk;
            }
            m1 /= s, m2 /= s;
            pred[i] = (float)m1;
            if (sd) sd[i] = (float)sqrt(fmax(m2 - m1 * m1, 0));
        }
    }
}
