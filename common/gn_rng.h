// Explicit-state random numbers (shared by nn/, io/ and stats/) (xoshiro256**, seeded through splitmix64).
// There is no global generator: every purpose owns a stream, and a stream's
// whole state is the four words below, so checkpoints save and restore it.
#ifndef GN_RNG_H
#define GN_RNG_H

#include <stddef.h>
#include <stdint.h>

// Stream identifiers: the same seed gives independent streams per purpose.
enum {
    GN_STREAM_INIT = 1,
    GN_STREAM_SHUFFLE = 2,
    GN_STREAM_AUGMENT = 3,
    GN_STREAM_DROPOUT = 4,
    GN_STREAM_SAMPLE = 5,
    GN_STREAM_DATA = 6,
};

typedef struct gn_rng {
    uint64_t s[4];
} gn_rng;

void gn_rng_seed(gn_rng *r, uint64_t seed, uint64_t stream);
uint64_t gn_rng_u64(gn_rng *r);
double gn_rng_uniform(gn_rng *r);                          // [0, 1), 53 random bits
uint32_t gn_rng_below(gn_rng *r, uint32_t n);              // uniform in [0, n), unbiased
double gn_rng_normal(gn_rng *r);                           // standard normal (Box-Muller, no cached pair)
void gn_rng_permutation(gn_rng *r, uint32_t *p, size_t n); // Fisher-Yates on 0..n-1
// Advance the stream by n 64-bit draws (a uniform takes one, a normal two): where it would be after them.
void gn_rng_skip(gn_rng *r, uint64_t n);

#endif
