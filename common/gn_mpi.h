// Running on many processes (MPI: `mpirun -np P galnn ...`): the ranks and the few collective steps
// galnn's commands need. Built with mpicc (GN_MPI, the Makefile's choice when OpenMPI is installed) and
// started by a launcher (mpirun, srun: it sets the PMI/PMIx environment), the process joins the job;
// otherwise it is rank 0 of 1 and every call below is a no-op, so one binary serves both.
#ifndef GN_MPI_H
#define GN_MPI_H

#include <stddef.h>

// MPI_Init when started by a launcher; 0, or an error code with a message.
int gn_mpi_init(int *argc, char ***argv);
void gn_mpi_finalize(void);
int gn_mpi_rank(void);
int gn_mpi_size(void);
void gn_mpi_barrier(void);
// on = 1: this rank acts alone, as rank 0 of 1 (every collective call a no-op), until gn_mpi_solo(0); for
// a step one rank does while the others wait (the caller's barrier or broadcast after it).
void gn_mpi_solo(int on);
// End every rank of the job now with this exit status (MPI_Abort; exit() on one process).
_Noreturn void gn_mpi_abort(int code);
// Every rank's v summed element by element, each element in rank order (0 + 1 + ... + P-1), so the
// result does not depend on the reduction algorithm the MPI library picks; in place, on every rank
// (a reduce-scatter by all-to-all, ordered local sums, an all-gather).
int gn_mpi_sum_ordered(double *v, size_t n);
int gn_mpi_sum_ordered_f(float *v, size_t n); // the same for floats, summed in float
// Rank 0's n bytes to every rank.
int gn_mpi_bcast(void *buf, size_t n);

#endif
