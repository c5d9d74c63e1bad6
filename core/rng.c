/* xoshiro256** (Blackman and Vigna), seeded through splitmix64. */
#include "core/rng.h"

#include <math.h>

uint64_t dl_hash64(uint64_t x) { return dl_hash64_inline(x); }

uint64_t dl_seed_mix(uint64_t a, uint64_t b, uint64_t c) {
  return dl_hash64(dl_hash64(dl_hash64(a) ^ b) ^ c);
}

void dl_rng_seed(dl_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) {
    x = dl_hash64(x);
    r->s[i] = x;
  }
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dl_rng_u64(dl_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

float dl_rng_uniform(dl_rng *r) { return (float)(dl_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

float dl_rng_uniform_range(dl_rng *r, float lo, float hi) {
  return lo + (hi - lo) * dl_rng_uniform(r);
}

/* Box-Muller on doubles; one value per call keeps the stream simple to resume. */
float dl_rng_gaussian(dl_rng *r, float mean, float std) {
  double u1 = ((double)(dl_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
  double u2 = (double)(dl_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
  return mean + std * (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t dl_rng_below(dl_rng *r, uint64_t n) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
  do x = dl_rng_u64(r);
  while (x >= limit);
  return x % n;
}

void dl_rng_shuffle(dl_rng *r, int *v, int n) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)dl_rng_below(r, (uint64_t)i + 1), t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
}
