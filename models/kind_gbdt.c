// [model] kind = gbdt: gradient-boosted trees (models/gbdt.h) over every column branch's values, one
// ensemble per target (and with intervals = 1 two more per target: its 16 % and 84 % quantiles). The
// trees are fitted by the run layer (apps/pipeline/gbdt.c), not by gradient steps: the row has no
// network functions, and the store no parameters.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "branchnet.h"

typedef struct gb_keys {
    int rounds, num_leaves, max_depth, min_data_in_leaf, max_bins, patience, loss, intervals;
    double min_sum_hessian, lambda_l2, learning_rate, feature_fraction, bagging_fraction, alpha, delta;
} gb_keys;

static int parse(md_net *m, io_config *c, const md_data_info *d) {
    (void)d;
    for (int b = 0; b < m->n_branch; b++)
        if (m->spec[b].input != MD_IN_COLUMNS)
            return gn_err(GN_EINVAL, "%s: kind = gbdt takes column branches only ([branch.%s] is not)",
                          c->name, m->spec[b].name);
    gb_keys k;
#define IO_KEY_TYPE gb_keys
    static const io_key keys[] = {IO_KI(rounds, 1, 1000000, 500),
                                  IO_KI(num_leaves, 2, 4096, 31),
                                  IO_KI(max_depth, -1, 64, -1),
                                  IO_KI(min_data_in_leaf, 1, 1000000000, 20),
                                  IO_KI(max_bins, 2, 255, 255),
                                  IO_KI(patience, 0, 1000000, 50),
                                  IO_KC(loss, "l2", "l2|l1|huber|quantile"),
                                  IO_KI(intervals, 0, 1, 0),
                                  IO_KD(min_sum_hessian, 0, IO_KEY_BIG, 1e-3),
                                  IO_KD(lambda_l2, 0, IO_KEY_BIG, 0),
                                  IO_KD(learning_rate, 1e-6, 1, 0.1),
                                  IO_KD(feature_fraction, 1e-6, 1, 1),
                                  IO_KD(bagging_fraction, 1e-6, 1, 1),
                                  IO_KD(alpha, 1e-6, 1 - 1e-6, 0.5),
                                  IO_KD(delta, 1e-9, IO_KEY_BIG, 1),
                                  IO_KEND};
#undef IO_KEY_TYPE
    int rc = io_config_keys(c, "model", keys, &k);
    if (rc) return rc;
    long seed = 1, epochs = 0;
    if ((rc = io_config_int(c, "train", "seed", 1, &seed))) return rc;
    // galnn train --epochs E (also on --resume) sets [train] epochs: for trees, the number of rounds
    if ((rc = io_config_int(c, "train", "epochs", 0, &epochs))) return rc;
    if (epochs > 0 && io_config_str(c, "train", "epochs", NULL)) k.rounds = (int)epochs;
    m->gbp = (gb_params){.num_leaves = k.num_leaves,
                         .max_depth = k.max_depth,
                         .min_data_in_leaf = k.min_data_in_leaf,
                         .max_bins = k.max_bins,
                         .rounds = k.rounds,
                         .patience = k.patience,
                         .min_sum_hessian = k.min_sum_hessian,
                         .lambda_l2 = k.lambda_l2,
                         .learning_rate = k.learning_rate,
                         .feature_fraction = k.feature_fraction,
                         .bagging_fraction = k.bagging_fraction,
                         .loss = k.loss,
                         .alpha = k.loss == GB_HUBER ? k.delta : k.alpha,
                         .seed = (uint64_t)seed};
    m->gb_intervals = k.intervals;
    if (k.intervals)
        m->head = MD_HEAD_QUANTILES;
    else if (m->head != MD_HEAD_REGRESSION)
        return gn_err(GN_EINVAL,
                      "%s: kind = gbdt predicts values (head = regression), or quantiles with "
                      "[model] intervals = 1",
                      c->name);
    return GN_OK;
}

static int make(md_net *m, nn_store *s) {
    (void)s;
    m->n_out = m->n_targets * (m->gb_intervals ? 3 : 1);
    return GN_OK;
}

static int embed_dim(const md_net *m, int full) { return (void)m, (void)full, 0; }

const md_kind md_kind_gbdt = {.name = "gbdt",
                              .what = "a gradient-boosted tree model",
                              .needs_target = 1,
                              .val_metrics = 1,
                              .report = MD_REPORT_POINT,
                              .parse = parse,
                              .make = make,
                              .embed_dim = embed_dim,
                              .loss_unit = "loss of the standardised targets ([model] loss)",
                              .missing_inputs = 1};
