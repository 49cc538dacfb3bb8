// Commands on MPI ranks (`mpirun -np P galnn predict | embed`): the data opened in rank order, each rank's
// block of whole batches, and the ranks' parts of one output file joined in order (cmd.h).
#include <stdio.h>
#include <stdlib.h>

#include "../common/gn_common.h"
#include "../common/gn_mpi.h"
#include "../io/file.h"
#include "cmd.h"
#include "pipeline/run.h"

int cmd_open_ranked(run *r, const char *cmd, const char *ckpt, const cmd_strs *sets) {
    if (gn_mpi_rank() > 0) gn_mpi_barrier(); // rank 0 opens the data first (and builds a cache it lacks)
    int bad = run_from_checkpoint(r, ckpt, sets->v, sets->n, 0, 0);
    if (bad) cmd_error("%s: %s", cmd, gn_errmsg());
    if (bad && gn_mpi_size() > 1) gn_mpi_abort(1); // the other ranks wait in the barrier below
    if (gn_mpi_rank() == 0) gn_mpi_barrier();
    if (bad) run_free(r);
    return bad;
}

int cmd_write_ranked(const char *out, char **buf, size_t *len, int (*write)(const char *, char **, size_t)) {
    int R = gn_mpi_rank(), P = gn_mpi_size(), rc;
    if (P == 1) return write(out, buf, *len);
    char part[4200];
    snprintf(part, sizeof part, "%s.part.%d", out, R);
    if ((rc = io_write_atomic(part, *buf, *len))) return rc;
    gn_mpi_barrier(); // every part is there
    if (R > 0) return GN_OK;
    free(*buf), *buf = NULL, *len = 0;
    FILE *f = open_memstream(buf, len);
    for (int q = 0; f && !rc && q < P; q++) {
        unsigned char *t;
        size_t tl;
        snprintf(part, sizeof part, "%s.part.%d", out, q);
        if (!(rc = io_read_file(part, &t, &tl))) fwrite(t, 1, tl, f), free(t), remove(part);
    }
    if (!f) return gn_err(GN_ENOMEM, "out of memory joining the ranks' parts of %s", out);
    fclose(f);
    return rc ? rc : write(out, buf, *len);
}
