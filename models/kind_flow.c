// [model] kind = flow: the conditional-flow posterior (models/posterior.h)
// over the column branches' values, side by side; standardised targets.
#include <stdio.h>
#include <string.h>

#include "branchnet.h"

static int parse_keys(md_post_spec *p, io_config *c) {
#define IO_KEY_TYPE md_post_spec
    static const io_key keys[] = {IO_K("context", IO_KEY_INT, ctx, 1, 65536, 256),
                                  IO_K("context_depth", IO_KEY_INT, ctx_depth, 1, MD_POST_MAXDEPTH, 2),
                                  IO_KI(mean_hidden, 1, 65536, 128),
                                  IO_K("layers", IO_KEY_INT, flow.layers, 1, MD_FLOW_MAXLAYERS, 12),
                                  IO_K("flow_hidden", IO_KEY_INT, flow.hidden, 1, 65536, 128),
                                  IO_K("flow_depth", IO_KEY_INT, flow.depth, 1, MD_FLOW_MAXDEPTH, 2),
                                  IO_KI(chain_layers, 1, 1024, 1),
                                  IO_KF(mean_weight, 0, IO_KEY_BIG, 1),
                                  IO_KF(det_weight, 0, IO_KEY_BIG, 1),
                                  IO_K("clamp", IO_KEY_FLOAT, flow.clamp, IO_KEY_POS, IO_KEY_BIG, 2),
                                  IO_KEND};
#undef IO_KEY_TYPE
    int rc = io_config_keys(c, "model", keys, p);
    if (rc) return rc;
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

const md_kind md_kind_flow = {"flow",
                              "a flow model",
                              1,
                              1,
                              MD_REPORT_POSTERIOR,
                              parse,
                              make,
                              train_loss,
                              forward,
                              val_loss,
                              NULL,
                              no_embed,
                              0,
                              "-log p(targets | x) per galaxy (nats)", 0, 0};
