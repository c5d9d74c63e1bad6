/* Random numbers from the seed alone. dl_rng is a small xoshiro256** stream for
 * fillers and shuffles; dl_hash64 gives counter-based randomness (dropout masks)
 * that needs no saved state to resume exactly. */
#ifndef DL_RNG_H
#define DL_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct { uint64_t s[4]; } dl_rng;

uint64_t dl_hash64(uint64_t x); /* splitmix64 finalizer */
/* Mixes several words into one seed, e.g. (seed, layer index, param index). */
uint64_t dl_seed_mix(uint64_t a, uint64_t b, uint64_t c);

void dl_rng_seed(dl_rng *r, uint64_t seed);
uint64_t dl_rng_u64(dl_rng *r);
float dl_rng_uniform(dl_rng *r);           /* [0, 1) */
float dl_rng_uniform_range(dl_rng *r, float lo, float hi);
float dl_rng_gaussian(dl_rng *r, float mean, float std);
uint64_t dl_rng_below(dl_rng *r, uint64_t n); /* [0, n), unbiased */
void dl_rng_shuffle(dl_rng *r, int *v, int n);

#ifdef __CUDACC__
#define DL_RNG_HD __host__ __device__
#else
#define DL_RNG_HD
#endif

/* dl_hash64, inline for the loops and the GPU kernels that draw masks. */
static inline DL_RNG_HD uint64_t dl_hash64_inline(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* A float in [0, 1) from a counter: same inputs, same value, on every device
 * (the CPU code and GPU kernels alike). */
static inline DL_RNG_HD float dl_uniform_at(uint64_t key, uint64_t counter) {
  return (float)(dl_hash64_inline(key ^ dl_hash64_inline(counter)) >> 40) *
         (1.0f / 16777216.0f);
}

#ifdef __cplusplus
}
#endif

#endif
