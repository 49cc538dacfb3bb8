// Training a run: the loop (batches, optimizer steps, validation each epoch,
// early stopping) and the checkpoint that holds its whole state — weights,
// batch-norm statistics, optimizer moments, schedule step, every random
// stream, data order and position, normalisation, configuration, log — so a
// resumed run continues bit-identically for the same thread count.
#ifndef RUN_TRAINER_H
#define RUN_TRAINER_H

#include "run.h"

typedef struct run_trainer {
    run r;
    nn_optim opt;
    nn_sched sched;
    io_loader L;
    nn_ctx ctx;
    long epochs, ckpt_every;
    float clip;
    double best_val, loss_sum;
    long patience, stall; // early stopping: epochs without a better validation loss (checkpointed)
    int64_t loss_n;
    char dir[2048];
    char *log; // log.csv text so far (also kept in the checkpoint)
    size_t log_len;
    float *scratch, *y;
    uint32_t *ids;
    io_aug *aug, *aug_m;
    int pairs;   // contrastive latent objective: batches are set-1/set-2 pairs
    int morph;   // image contrastive objective: every row also has a morphology-augmented view (aug_m)
    double last_note; // progress: when the last plain (non-terminal) line was written
    char paths[4][4096]; // the catalog and image template: absolute, and relative to the run directory
    gn_rng pair; // draws the set-2 partners (checkpointed)
    float *ema, *live; // [train] ema: the averaged parameter slab, and room to set the live one aside
    void *gb;          // kind = gbdt: its fitting state (apps/pipeline/gbdt.c)
    struct {           // the batch in slices, on this process and the MPI ranks (apps/pipeline/parallel.c)
        int n, first, count;  // slices of a batch in all, this rank's first and how many
        long check_every;     // steps between comparisons of the ranks' states
        float *acc, *pre;     // the slices' summed gradient and statistics' moves; the statistics before
        uint32_t *ids;        // one slice: its rows, their augmentations, their places in the batch
        io_aug *aug, *aug_m;
        int32_t *grow;
        int workers;          // threads that each take a part of a slice's rows (nn_team_step); 1: not cut
        size_t scratch_per;   // the floats of T->scratch each worker renders with
    } dp;
} run_trainer;

// After run_setup (T->r) and with T->dir set: the loader, optimizer and
// schedule; a fresh initialisation, or the state of checkpoint ck (at resume).
int run_trainer_open(run_trainer *T, const char *resume, const io_npz *ck);
// Train to the configured length (or early stop), checkpointing as configured.
int run_trainer_fit(run_trainer *T);
void run_trainer_free(run_trainer *T);
// Append a line to log.csv (kept in memory for the checkpoint); loss.png from it.
int run_trainer_log(run_trainer *T, const char *line);
int run_trainer_plot(const run_trainer *T);
// Data-parallel steps (apps/pipeline/parallel.c): set up after the weights are (rank 0's broadcast and
// checked on MPI ranks); the gradient of the batch's b rows in T->ids into the store, the batch-norm
// statistics moved, *loss its weighted loss; a comparison of the ranks' states (an error if they differ).
int run_dp_open(run_trainer *T);
int run_dp_step(run_trainer *T, int b, double *loss);
int run_dp_check(run_trainer *T);
void run_dp_free(run_trainer *T);
// kind = gbdt: the boosting loop in place of gradient steps (apps/pipeline/gbdt.c).
int run_gbdt_open(run_trainer *T, const char *resume, const io_npz *ck);
int run_gbdt_fit(run_trainer *T);
void run_gbdt_free(run_trainer *T);

#endif
