// Explicit-state random numbers (xoshiro256**, seeded through splitmix64).
// There is no global generator: every purpose owns a stream, and a stream's
// whole state is the four words below, so checkpoints save and restore it.
#ifndef NN_RNG_H
#define NN_RNG_H

#include <stddef.h>
#include <stdint.h>

// Stream identifiers: the same seed gives independent streams per purpose.
enum {
    NN_STREAM_INIT = 1,
    NN_STREAM_SHUFFLE = 2,
    NN_STREAM_AUGMENT = 3,
    NN_STREAM_DROPOUT = 4,
    NN_STREAM_SAMPLE = 5,
    NN_STREAM_DATA = 6,
};

typedef struct nn_rng {
    uint64_t s[4];
} nn_rng;

void nn_rng_seed(nn_rng *r, uint64_t seed, uint64_t stream);
uint64_t nn_rng_u64(nn_rng *r);
double nn_rng_uniform(nn_rng *r);              // [0, 1), 53 random bits
uint32_t nn_rng_below(nn_rng *r, uint32_t n);  // uniform in [0, n), unbiased
double nn_rng_normal(nn_rng *r);               // standard normal (Box-Muller, no cached pair)
void nn_rng_permutation(nn_rng *r, uint32_t *p, size_t n); // Fisher-Yates on 0..n-1

#endif
