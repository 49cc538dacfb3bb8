// galnn inspect: what a checkpoint (or any NPZ) holds.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../io/ckpt.h"
#include "cmd.h"
#include "flags.h"

static void inspect_usage(void) {
    printf("usage: galnn inspect FILE.npz [--config]\n\n"
           "Lists a checkpoint's tensors (name, dtype, shape), its training position (epoch, step) and best\n"
           "validation loss; --config prints the configuration it was trained with. Works on any NPZ.\n");
}

typedef struct inspect_cli {
    int config;
} inspect_cli;

#define CLI inspect_cli
static const cmd_flag inspect_flags[] = {
    F_ON("--config", config, "print the configuration it was trained with"), F_END};

// The file is the one argument that is not a flag.
static int inspect_main(int argc, char **argv) {
    const char *path = NULL;
    int na = 0, rc = 0;
    char *args[64];
    for (int i = 0; i < argc && na < 64; i++)
        if (i && argv[i][0] != '-' && !path)
            path = argv[i];
        else
            args[na++] = argv[i];
    inspect_cli o = {0};
    if (cmd_flags_parse("inspect", inspect_flags, &o, na, args, NULL)) return 1;
    int show_cfg = o.config;
    if (!path) return cmd_error("inspect: give a checkpoint file");
    io_npz z;
    if (io_npz_read(path, &z)) return cmd_error("%s", gn_errmsg());
    size_t params = 0, bytes = 0;
    int np = 0;
    printf("%s: %d arrays (all CRCs verified)\n", path, z.n);
    for (int i = 0; i < z.n; i++) {
        const io_array *a = &z.arrays[i];
        bytes += a->n * io_dtype_size(a->dtype);
        if (!strncmp(z.names[i], "param.", 6)) params += a->n, np++;
        if (!strcmp(z.names[i], "meta.config") || !strcmp(z.names[i], "meta.log")) continue;
        char shape[128] = "(";
        for (int d = 0; d < a->ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), d ? ", %lld" : "%lld",
                     (long long)a->shape[d]);
        strcat(shape, a->ndim == 1 ? ",)" : ")");
        printf("  %-48s %-8s %s\n", z.names[i], io_dtype_name(a->dtype), shape);
    }
    const io_array *e = io_npz_get(&z, "data.epoch"), *s = io_npz_get(&z, "opt.step"),
                   *b = io_npz_get(&z, "meta.loss_sum_best_val");
    printf("\n%d parameter tensors, %zu values; %.1f MiB in all\n", np, params, bytes / 1048576.0);
    if (e && e->dtype == IO_I64 && s && s->dtype == IO_I64)
        printf("position: %lld epoch(s) completed, optimizer step %lld\n", (long long)((int64_t *)e->data)[0],
               (long long)((int64_t *)s->data)[0]);
    if (b && b->dtype == IO_F64 && b->n == 2)
        printf("best validation loss so far: %.6g\n", ((double *)b->data)[1]);
    if (show_cfg) {
        char *cfg = io_ckpt_config(path, &z);
        if (cfg)
            printf("\nconfiguration:\n%s", cfg);
        else
            rc = cmd_error("%s", gn_errmsg());
        free(cfg);
    }
    io_npz_free(&z);
    return rc;
}

CMD_DEF(cmd_inspect, "inspect", "what a checkpoint holds: tensors, training position, configuration",
        inspect_usage, inspect_flags, sizeof(inspect_cli), NULL, NULL, -1, inspect_main);
