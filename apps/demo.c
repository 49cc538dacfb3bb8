// galnn demo: the main job on built-in data. For now: the engine end to end —
// a small CNN learns to tell two synthetic shapes apart, and an MLP fits a
// curve; the loss falls epoch by epoch.
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/gn_common.h"
#include "../models/toy.h"
#include "cmd.h"

void cmd_demo_help(void) {
    printf("usage: galnn demo [--seed S] [--threads N] [--epochs E]\n\n"
           "Trains a small CNN (conv-BN-ReLU-maxpool-conv-GAP-linear) to classify two\n"
           "synthetic shapes (square outline vs plus sign, 16x16, noisy), then an MLP\n"
           "to fit y = sin(2x) + 0.3x^2, printing the training loss as it falls and the\n"
           "held-out accuracy / error. Defaults: seed 1, all cores, 10 epochs.\n");
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void show_cnn(void *u, int ep, int eps, double loss, double acc) {
    printf("  epoch %2d/%d  train loss %.4f  test accuracy %5.1f %%  (%.1f s)\n", ep, eps, loss, 100 * acc,
           now() - *(double *)u);
    fflush(stdout);
}

static void show_mlp(void *u, int step, int steps, double loss, double mse) {
    (void)u;
    (void)mse;
    if (step % 500 == 0 || step == steps) printf("  step %4d/%d  train MSE %.5f\n", step, steps, loss);
    fflush(stdout);
}

int cmd_demo(int argc, char **argv) {
    long seed = 1, threads = 0, epochs = 10;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--seed")) {
            if (cmd_parse_int("--seed", v, 0, 0x7fffffffL, &seed)) return 1;
        } else if (!strcmp(argv[i], "--threads")) {
            if (cmd_parse_int("--threads", v, 0, 1024, &threads)) return 1;
        } else if (!strcmp(argv[i], "--epochs")) {
            if (cmd_parse_int("--epochs", v, 1, 1000, &epochs)) return 1;
        } else
            return cmd_error("demo: unknown option '%s' (see `galnn help demo`)", argv[i]);
        i++;
    }
    gn_set_threads((int)threads);
    printf("galnn demo (seed %ld, %d threads)\n\n", seed, gn_threads());
    printf("1. CNN: square outline vs plus sign, 4096 training images of 16x16\n");
    double t0 = now();
    md_toy_result r = {0};
    if (md_train_shapes((uint64_t)seed, 4096, (int)epochs, show_cnn, &t0, &r))
        return cmd_error("demo: %s", gn_errmsg());
    printf("  loss %.4f -> %.4f, test accuracy %.1f %%\n\n", r.first_loss, r.final_loss, 100 * r.metric);
    printf("2. MLP 1-32-32-1 (tanh): y = sin(2x) + 0.3x^2 on [-2, 2], 256 points\n");
    md_toy_result q = {0};
    if (md_train_curve((uint64_t)seed, 3000, show_mlp, NULL, &q)) return cmd_error("demo: %s", gn_errmsg());
    printf("  MSE %.4f -> %.6f, test MSE on a 1000-point grid %.6f\n", q.first_loss, q.final_loss, q.metric);
    return 0;
}
