#include "gn_mpi.h"

#include <stdlib.h>
#include <string.h>

#include "gn_common.h"

#ifdef GN_MPI
#include <mpi.h>

static int joined, rank_, size_ = 1, solo;

int gn_mpi_init(int *argc, char ***argv) {
    // a launcher's environment: OpenMPI's mpirun, PMIx (srun, prterun), MPICH's PMI
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_SIZE")) return GN_OK;
    // funnelled: only the main thread calls MPI (a training step's worker 0 is that thread: nn/team.c)
    int got = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &got) != MPI_SUCCESS)
        return gn_err(GN_EIO, "MPI_Init_thread failed");
    joined = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    return GN_OK;
}

void gn_mpi_finalize(void) {
    if (joined) MPI_Finalize(), joined = 0;
}

int gn_mpi_rank(void) { return solo ? 0 : rank_; }
int gn_mpi_size(void) { return solo ? 1 : size_; }
void gn_mpi_solo(int on) { solo = on; }

void gn_mpi_barrier(void) {
    if (joined && !solo) MPI_Barrier(MPI_COMM_WORLD);
}

_Noreturn void gn_mpi_abort(int code) {
    if (joined) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

// The ordered sum of doubles (f = 0) or floats (f = 1): segment `rank_` of every rank's vector comes here
// (all-to-all), is summed in rank order, and every rank gets every segment back (all-gather).
static int sum_ordered(void *v, size_t n, int f) {
    if (!joined || size_ < 2 || solo) return GN_OK;
    int P = size_;
    size_t es = f ? sizeof(float) : sizeof(double);
    MPI_Datatype T = f ? MPI_FLOAT : MPI_DOUBLE;
    int *cnt = calloc((size_t)P, sizeof(int)), *off = calloc((size_t)P, sizeof(int));
    int *rc = malloc(sizeof(int) * P), *ro = malloc(sizeof(int) * P);
    for (int p = 0; cnt && off && p < P; p++)
        off[p] = (int)(n * (size_t)p / P), cnt[p] = (int)(n * (size_t)(p + 1) / P) - off[p];
    int mine = (int)(n * (size_t)(rank_ + 1) / P - n * (size_t)rank_ / P); // this rank's segment
    char *in = malloc(es * ((size_t)mine * P + 1));
    int bad = !cnt || !off || !rc || !ro || !in || n > (size_t)0x7fffffff;
    for (int p = 0; !bad && p < P; p++) rc[p] = mine, ro[p] = mine * p; // segment `rank_` from every rank
    bad = bad || MPI_Alltoallv(v, cnt, off, T, in, rc, ro, T, MPI_COMM_WORLD) != MPI_SUCCESS;
    for (int j = 0; !bad && j < mine; j++) { // rank order, for every element
        if (f) {
            float s = ((float *)in)[j];
            for (int p = 1; p < P; p++) s += ((float *)in)[(size_t)p * mine + j];
            ((float *)v)[off[rank_] + j] = s;
        } else {
            double s = ((double *)in)[j];
            for (int p = 1; p < P; p++) s += ((double *)in)[(size_t)p * mine + j];
            ((double *)v)[off[rank_] + j] = s;
        }
    }
    bad = bad || MPI_Allgatherv(MPI_IN_PLACE, 0, T, v, cnt, off, T, MPI_COMM_WORLD) != MPI_SUCCESS;
    free(cnt), free(off), free(rc), free(ro), free(in);
    return bad ? gn_err(GN_EIO, "MPI: the ordered sum over %d ranks failed", P) : GN_OK;
}

int gn_mpi_sum_ordered(double *v, size_t n) { return sum_ordered(v, n, 0); }
int gn_mpi_sum_ordered_f(float *v, size_t n) { return sum_ordered(v, n, 1); }

int gn_mpi_bcast(void *buf, size_t n) {
    if (!joined || size_ < 2 || solo) return GN_OK;
    if (n > 0x7fffffff || MPI_Bcast(buf, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return gn_err(GN_EIO, "MPI: broadcast of %zu bytes failed", n);
    return GN_OK;
}

#else // one process

int gn_mpi_init(int *argc, char ***argv) { return (void)argc, (void)argv, GN_OK; }
void gn_mpi_finalize(void) {}
int gn_mpi_rank(void) { return 0; }
int gn_mpi_size(void) { return 1; }
void gn_mpi_solo(int on) { (void)on; }
void gn_mpi_barrier(void) {}
_Noreturn void gn_mpi_abort(int code) { exit(code); }
int gn_mpi_sum_ordered(double *v, size_t n) { return (void)v, (void)n, GN_OK; }
int gn_mpi_sum_ordered_f(float *v, size_t n) { return (void)v, (void)n, GN_OK; }
int gn_mpi_bcast(void *buf, size_t n) { return (void)buf, (void)n, GN_OK; }

#endif
