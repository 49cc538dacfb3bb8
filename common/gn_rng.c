#include "gn_rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void gn_rng_seed(gn_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1; // never the all-zero state
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gn_rng_u64(gn_rng *r) {
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double gn_rng_uniform(gn_rng *r) { return (double)(gn_rng_u64(r) >> 11) * 0x1.0p-53; }

uint32_t gn_rng_below(gn_rng *r, uint32_t n) {
    if (n <= 1) return 0;
    // Lemire's multiply-shift with rejection of the biased low band.
    uint64_t m = (uint64_t)(uint32_t)(gn_rng_u64(r) >> 32) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t thresh = (uint32_t)(-n) % n;
        while (lo < thresh) {
            m = (uint64_t)(uint32_t)(gn_rng_u64(r) >> 32) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double gn_rng_normal(gn_rng *r) {
    double u1 = 1.0 - gn_rng_uniform(r); // (0, 1]: log is finite
    double u2 = gn_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void gn_rng_skip(gn_rng *r, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) (void)gn_rng_u64(r);
}

void gn_rng_permutation(gn_rng *r, uint32_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        uint32_t j = gn_rng_below(r, (uint32_t)i);
        uint32_t t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
}
