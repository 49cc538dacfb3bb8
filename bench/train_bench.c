// Training and inference throughput of the multi-branch ResNet-18 (two
// branches: 5x64x64 cutouts and 2x48x48 maps, width 32, stride-2 3x3 stem,
// regression head with 2 targets), batch 64, Adam, random inputs; and the
// process's peak resident memory. bench/train_bench_torch.py runs the same
// model in PyTorch; `make bench` prints both and their ratios.
//   usage: train_bench [--threads N] [--steps S] [--batch B] [--width W] [--winograd 0|1|2|4]
//                      [--keep-im2col 0|1] [--batched -1|0|1]  (non-Winograd convs: as --keep-im2col says,
//                      by groups of images, by one im2col + sgemm) [--infer-only 1] [--infer-rows R]
//                      (inference by groups of R rows; 0 the batch at once) [--infer-front F] (a group's
//                      first two stages by sub-groups of F rows; 0 not) [--wino-batch -1|0|1]
//                      [--report-mem 1] (the arena's and the gradient pool's peaks, to stderr)
//                      [--wino-s2 -1|0|1] (3x3 stride-2 convs by Winograd on their phases: by the rule,
//                      never, always) [--split-rows 1|0] (a step's rows cut among the threads, one worker
//                      each, as galnn train's [train] split_rows = 1; 0: every op split among them)
// Under mpirun (-np P): data-parallel as `galnn train` runs it, rank r computing its P-th of each batch of B
// and the gradient slab summed in rank order (gn_mpi_sum_ordered_f); rank 0 reports samples/s of the whole
// job and the time of that ordered sum alone, per step and at sizes from 4 KiB to the slab (an alpha-beta
// model of it: docs/cluster.md).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../common/gn_common.h"
#include "../common/gn_mpi.h"
#include "../models/branchnet.h"
#include "../nn/gemm.h"
#include "../nn/team.h"

// The ordered sum of n floats, best of reps (seconds).
static double time_sum(float *v, size_t n, int reps) {
    double best = 1e30;
    for (int k = 0; k < reps; k++) {
        gn_mpi_barrier();
        double t0 = gn_now();
        if (gn_mpi_sum_ordered_f(v, n)) return -1;
        double t = gn_now() - t0;
        best = t < best ? t : best;
    }
    return best;
}

// Rank 0's report of a data-parallel run: samples/s, and the ordered sum's share of a step and its times.
static void report_ranks(const nn_store *st, int B, int steps, double t_train) {
    size_t n = st->n_param_floats;
    float *v = calloc(n, sizeof(float));
    double ts = time_sum(v, n, 5), step = t_train / steps;
    static const size_t sz[5] = {1024, 16384, 262144, 2097152, 0};
    double t[5];
    for (int k = 0; k < 5; k++) t[k] = time_sum(v, sz[k] ? (sz[k] < n ? sz[k] : n) : n, 7);
    free(v);
    if (gn_mpi_rank()) return;
    printf("galnn np=%d x %d thread(s) train %8.1f samples/s   (global batch %d; ordered sum of the %.1f MiB "
           "gradient slab %.1f ms = %.0f %% of a %.0f ms step)\n",
           gn_mpi_size(), gn_threads(), steps * B / t_train, B, n * 4.0 / 1048576, 1e3 * ts, 100 * ts / step,
           1e3 * step);
    printf("  ordered sum, %d ranks, best of 7:", gn_mpi_size());
    for (int k = 0; k < 5; k++) printf("  %zu B %.3f ms", 4 * (sz[k] && sz[k] < n ? sz[k] : n), 1e3 * t[k]);
    printf("\n");
}

// A worker's rows of the batch: forward, loss, backward (nn_team_step)
typedef struct tb_part {
    const md_net *m;
    const float *x1, *x2, *y;
    int lo, b, W;
} tb_part;
static int tb_worker(nn_ctx *w, int k, void *arg) {
    const tb_part *p = arg;
    int lo = p->lo + p->b * k / p->W, n = p->lo + p->b * (k + 1) / p->W - lo;
    nn_tensor *in[2] = {nn_tensor_wrap(w, NN_SHAPE(n, 5, 64, 64), p->x1 + (size_t)lo * 5 * 64 * 64),
                        nn_tensor_wrap(w, NN_SHAPE(n, 2, 48, 48), p->x2 + (size_t)lo * 2 * 48 * 48)};
    nn_tensor *L = md_net_loss(w, p->m, md_net_fwd(w, p->m, in), p->y + 2 * lo, n);
    return L ? nn_backward(w, L) : GN_EINVAL;
}

// The command line's options (usage above)
typedef struct tb_opts {
    int threads, steps, B, width, keep, wino, batched, infer_only, infer_rows, wino_batch, report_mem,
        wino_s2, infer_front, split_rows;
} tb_opts;
static tb_opts tb_parse(int argc, char **argv) {
    tb_opts o = {0, 10, 64, 32, 0, 1, -1, 0, -1, -1, 0, -1, -1, 1};
    const struct {
        const char *name;
        int *v;
    } keys[] = {{"--threads", &o.threads},
                {"--steps", &o.steps},
                {"--batch", &o.B},
                {"--width", &o.width},
                {"--keep-im2col", &o.keep},
                {"--winograd", &o.wino},
                {"--batched", &o.batched},
                {"--infer-only", &o.infer_only},
                {"--infer-rows", &o.infer_rows},
                {"--wino-batch", &o.wino_batch},
                {"--wino-s2", &o.wino_s2},
                {"--report-mem", &o.report_mem},
                {"--infer-front", &o.infer_front},
                {"--split-rows", &o.split_rows}};
    for (int i = 1; i + 1 < argc; i += 2)
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (!strcmp(argv[i], keys[k].name)) *keys[k].v = atoi(argv[i + 1]);
    return o;
}

int main(int argc, char **argv) {
    gn_runtime_init(argv);
    if (gn_mpi_init(&argc, &argv)) return fprintf(stderr, "%s\n", gn_errmsg()), 1;
    int P = gn_mpi_size(), R = gn_mpi_rank();
    tb_opts o = tb_parse(argc, argv);
    int threads = o.threads, steps = o.steps, B = o.B, width = o.width, keep = o.keep, wino = o.wino,
        batched = o.batched, infer_only = o.infer_only, infer_rows = o.infer_rows, wino_batch = o.wino_batch,
        report_mem = o.report_mem, wino_s2 = o.wino_s2;
    gn_set_threads(threads);
    md_net m;
    md_net_multibranch(&m, width);
    nn_store st;
    nn_store_init(&st);
    nn_optim opt;
    nn_optim_defaults(&opt, NN_OPT_ADAM);
    nn_ctx c;
    if (md_net_make(&m, &st) || nn_store_finalize(&st) || nn_optim_init(&opt, &st) ||
        nn_ctx_init(&c, 256u << 20))
        return fprintf(stderr, "%s\n", gn_errmsg()), 1;
    c.keep_im2col = keep;
    c.winograd = wino;
    c.tune.conv_batched = batched;
    c.tune.infer_rows = infer_rows;
    c.tune.infer_front = o.infer_front;
    c.tune.wino_batch = wino_batch;
    c.tune.wino_s2 = wino_s2;
    gn_rng r;
    gn_rng_seed(&r, 1, GN_STREAM_INIT);
    nn_store_reset_values(&st, &r);
    size_t n1 = (size_t)B * 5 * 64 * 64, n2 = (size_t)B * 2 * 48 * 48;
    float *x1 = malloc(sizeof(float) * n1), *x2 = malloc(sizeof(float) * n2), y[1024];
    for (size_t i = 0; i < n1; i++) x1[i] = (float)gn_rng_normal(&r);
    for (size_t i = 0; i < n2; i++) x2[i] = (float)gn_rng_normal(&r);
    for (int i = 0; i < 2 * B; i++) y[i] = (float)gn_rng_normal(&r);
    double t_train = 0, t_inf = 0;
    int lo = B * R / P, b = B * (R + 1) / P - lo;          // this rank's rows of each batch
    for (int s = 0; s <= (infer_only ? -1 : steps); s++) { // step 0 warms up (arena growth, BLAS buffers)
        gn_mpi_barrier();
        double t0 = gn_now();
        nn_store_zero_grad(&st);
        // the batch's one copy, as galnn train decodes a batch straight into its input tensors
        int W = o.split_rows && gn_threads() > 1 ? gn_threads() : 1; // as galnn train: [train] split_rows
        double share[NN_TEAM_MAX];
        for (int k = 0; k < W; k++) share[k] = (double)(b * (k + 1) / W - b * k / W) / b;
        tb_part part = {&m, x1, x2, y, lo, b, W};
        if (nn_team_step(&c, &st, W, share, tb_worker, &part) ||
            gn_mpi_sum_ordered_f(st.grad, st.n_param_floats))
            return fprintf(stderr, "%s\n", gn_errmsg()), 1;
        nn_optim_step(&opt, &st, 1e-3f);
        if (s) t_train += gn_now() - t0;
    }
    if (P > 1) return report_ranks(&st, B, steps, t_train), gn_mpi_finalize(), 0;
    struct rusage ru; // the training's peak (the inference below adds its kept filter transforms)
    if (report_mem)
        fprintf(stderr, "arena peak %.1f MiB (capacity %.1f), gradient pool %.1f MiB\n",
                c.arena.peak / 1048576.0, c.arena.total_cap / 1048576.0, c.gpool_bytes / 1048576.0);
    for (int k = 0; report_mem && c.team_own && k < c.n_workers; k++)
        fprintf(stderr, "worker %d: arena peak %.1f MiB (capacity %.1f), gradient pool %.1f MiB\n", k,
                c.workers[k].arena.peak / 1048576.0, c.workers[k].arena.total_cap / 1048576.0,
                c.workers[k].gpool_bytes / 1048576.0);
    getrusage(RUSAGE_SELF, &ru);
    c.training = 0, c.grad_enabled = 0, c.frozen = 1; // the weights are fixed from here: as galnn predict
    for (int s = 0; s <= steps; s++) {
        double t0 = gn_now();
        nn_ctx_reset(&c);
        nn_tensor *in[2] = {nn_tensor_wrap(&c, NN_SHAPE(B, 5, 64, 64), x1),
                            nn_tensor_wrap(&c, NN_SHAPE(B, 2, 48, 48), x2)};
        if (!md_net_fwd(&c, &m, in)) return fprintf(stderr, "%s\n", gn_errmsg()), 1;
        if (s) t_inf += gn_now() - t0;
    }
    char label[48];
    snprintf(label, sizeof label, "galnn (%s%s)",
             wino == 2   ? "Winograd F(2x2)"
             : wino == 4 ? "Winograd F(4x4)"
             : wino      ? "Winograd"
                         : "im2col",
             keep ? ", im2col kept" : "");
    printf("%-23s train %8.1f samples/s   inference %8.1f samples/s   peak RSS %7.1f MiB   (%zu parameters, "
           "%d threads)\n",
           label, steps * B / t_train, steps * B / t_inf, ru.ru_maxrss / 1024.0, st.n_param_values,
           gn_threads());
    gn_mpi_finalize();
    return 0;
}
