// [model] kind = flow: the conditional-flow posterior (models/posterior.h)
// over the column branches' values, side by side; standardised targets.
#include <stdio.h>
#include <string.h>

#include "branchnet.h"

static int parse_keys(md_post_spec *p, io_config *c) {
    struct {
        const char *key;
        long def;
        int *dst;
    } ik[] = {{"context", 256, &p->ctx},       {"context_depth", 2, &p->ctx_depth},
              {"mean_hidden", 128, &p->mean_hidden}, {"layers", 12, &p->flow.layers},
              {"flow_hidden", 128, &p->flow.hidden}, {"flow_depth", 2, &p->flow.depth},
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
    if (strcmp(sc, "tanh") && strcmp(sc, "exp"))
        return gn_err(GN_EINVAL, "%s: [model] scale '%s' is not tanh or exp", c->name, sc);
    p->flow.scale = strcmp(sc, "tanh") ? MD_FLOW_EXP : MD_FLOW_TANH;
    return GN_OK;
}

static int parse(md_net *m, io_config *c, const md_data_info *d) {
    if (m->head != MD_HEAD_REGRESSION)
        return gn_err(GN_EINVAL, "%s: a flow model has its own posterior: leave [target] head unset",
                      c->name);
    md_post_spec *p = &m->post.sp;
    p->in_dim = 0;
    for (int b = 0; b < m->n_branch; b++) {
        if (m->spec[b].input != MD_IN_COLUMNS)
            return gn_err(GN_EINVAL,
                          "%s: [branch.%s]: a flow model takes catalog columns (join a VAE's mu/sigma with "
                          "[data] join)",
                          c->name, m->spec[b].name);
        p->in_dim += m->spec[b].in_ch;
    }
    p->dim = d->n_targets;
    const char *chain = io_config_str(c, "model", "chain", NULL);
    if (chain) { // the chain-rule target: listed last, may be missing
        if (d->n_targets < 2 || strcmp(d->target_names[d->n_targets - 1], chain))
            return gn_err(GN_EINVAL, "%s: [model] chain = %s must be the last of at least two [target] names",
                          c->name, chain);
        p->chain = 1, p->dim = d->n_targets - 1;
        m->optional_target = d->n_targets - 1;
    }
    return parse_keys(p, c);
}

static int make(md_net *m, nn_store *s) {
    m->n_out = m->n_targets; // outputs: the mean head
    return md_post_make(&m->post, s);
}

static nn_tensor *train_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *const *in_m,
                             const float *y, int N) {
    (void)in_m;
    nn_tensor *Y = nn_tensor_from(c, NN_SHAPE(N, m->n_targets), y);
    return Y ? md_post_loss(c, &m->post, md_net_flow_features(c, m, in), Y) : NULL;
}

static nn_tensor *val_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *out, const float *y,
                           int N, gn_rng *eps) {
    (void)out, (void)eps;
    return train_loss(c, m, in, NULL, y, N);
}

static nn_tensor *forward(nn_ctx *c, const md_net *m, nn_tensor *const *in) {
    return md_post_point(c, &m->post, md_net_flow_features(c, m, in));
}

static int no_embed(const md_net *m, int full) { return (void)m, (void)full, 0; }

const md_kind md_kind_flow = {"flow", "a flow model", 1,          1,       MD_REPORT_POSTERIOR,
                              parse,  make,           train_loss, forward, val_loss,
                              NULL,   no_embed,       0};
