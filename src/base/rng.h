// Seeded pseudo-random numbers (xoshiro256**, seeded through splitmix64). Used for sampling, data
// shuffling, dropout and weight init, so one seed reproduces a whole run. State is plain data so
// checkpoints can save and restore it.
#ifndef SLLM_BASE_RNG_H
#define SLLM_BASE_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } rng_state;

void rng_seed(rng_state *r, uint64_t seed);
uint64_t rng_u64(rng_state *r);
// Uniform in [0, 1) with 24 random bits (float) / 53 bits (double).
float rng_float(rng_state *r);
double rng_double(rng_state *r);
// Standard normal (Box–Muller).
float rng_normal(rng_state *r);
// Uniform integer in [0, n).
uint64_t rng_below(rng_state *r, uint64_t n);
#endif
