/* amlfs_rng.h: the project's random streams, from Random123's Philox4x32-10.
 *
 * One stream is named by (seed, epoch, sample, stream): any tool, on any machine,
 * CPU or GPU, that asks for the same name gets the same numbers.
 *   key     = { seed, stream }                     (2 x 32 bits)
 *   counter = { block, 0, epoch, sample }          (4 x 32 bits)
 * Block n of a stream is philox4x32_10(counter with block = n, key): four 32-bit words.
 *
 * Uniforms: two words make one 64-bit integer u = (w[2j+1] << 32) | w[2j]; its top 53
 * bits give U = ((u >> 11) + 0.5) * 2^-53, in the open interval (0, 1).
 * Normals (Box-Muller): a block gives U1 (words 0,1) and U2 (words 2,3), then
 *   z0 = sqrt(-2 ln U1) cos(2 pi U2),  z1 = sqrt(-2 ln U1) sin(2 pi U2),
 * so normal number 2n and 2n+1 of a stream come from block n.
 *
 * Header-only so that CUDA kernels include it too (AMLFS_HD marks both sides).
 */
#ifndef AMLFS_RNG_H
#define AMLFS_RNG_H

#include <stdint.h>
#include <math.h>
#include <Random123/philox.h>

#ifdef __CUDACC__
#define AMLFS_HD __host__ __device__
#else
#define AMLFS_HD
#endif

/* The streams the project draws from; a new use gets a new number, never reuses one. */
enum amlfs_stream {
    AMLFS_STREAM_THETA = 1,      /* the policy's epsilon for theta_i */
    AMLFS_STREAM_DATA_ORDER = 2, /* a sample's shuffle of the training set */
    AMLFS_STREAM_AUGMENT = 3,    /* crops and flips */
    AMLFS_STREAM_INIT = 4,       /* weight initialisation */
    AMLFS_STREAM_NOISE = 5,      /* label noise in amlfs-prep */
    AMLFS_STREAM_SPLIT = 6,      /* the stratified validation split */
    AMLFS_STREAM_FACE_PAIRS = 7, /* amlfs-prep face: held-out identities and their pairs */
    AMLFS_STREAM_SYNTH = 8,      /* amlfs-synth: templates and per-image jitter */
    AMLFS_STREAM_TEST = 100      /* test data and benchmarks, never the tools */
};

typedef struct {
    uint32_t seed, epoch, sample, stream;
} amlfs_rng_name;

static inline AMLFS_HD amlfs_rng_name amlfs_rng(uint32_t seed, uint32_t epoch, uint32_t sample,
                                                uint32_t stream)
{
    amlfs_rng_name r;
    r.seed = seed;
    r.epoch = epoch;
    r.sample = sample;
    r.stream = stream;
    return r;
}

/* Block n of a stream: four 32-bit words. */
static inline AMLFS_HD void amlfs_rng_block(amlfs_rng_name r, uint32_t n, uint32_t out[4])
{
    philox4x32_ctr_t c = {{n, 0u, r.epoch, r.sample}};
    philox4x32_key_t k = {{r.seed, r.stream}};
    philox4x32_ctr_t v = philox4x32_R(10, c, k);
    out[0] = v.v[0];
    out[1] = v.v[1];
    out[2] = v.v[2];
    out[3] = v.v[3];
}

/* Two 32-bit words to a double in (0, 1): 53 random bits, centred in their cell. */
static inline AMLFS_HD double amlfs_u01(uint32_t lo, uint32_t hi)
{
    uint64_t u = ((uint64_t)hi << 32) | (uint64_t)lo;
    return ((double)(u >> 11) + 0.5) * 0x1.0p-53;
}

/* Uniform number i of a stream, in (0, 1): block i/2, words 2(i%2) and 2(i%2)+1. */
static inline AMLFS_HD double amlfs_rng_uniform(amlfs_rng_name r, uint64_t i)
{
    uint32_t w[4];
    amlfs_rng_block(r, (uint32_t)(i >> 1), w);
    int j = (int)(i & 1) * 2;
    return amlfs_u01(w[j], w[j + 1]);
}

/* Normal number i of a stream, N(0, 1), by Box-Muller on block i/2. */
static inline AMLFS_HD double amlfs_rng_normal(amlfs_rng_name r, uint64_t i)
{
    uint32_t w[4];
    amlfs_rng_block(r, (uint32_t)(i >> 1), w);
    double u1 = amlfs_u01(w[0], w[1]);
    double u2 = amlfs_u01(w[2], w[3]);
    double rad = sqrt(-2.0 * log(u1));
    double ang = 2.0 * 3.14159265358979323846 * u2;
    return (i & 1) ? rad * sin(ang) : rad * cos(ang);
}

/* A uniform integer in [0, n), n >= 1, from uniform number i (bias below 2^-53 * n). */
static inline AMLFS_HD uint32_t amlfs_rng_below(amlfs_rng_name r, uint64_t i, uint32_t n)
{
    uint32_t k = (uint32_t)(amlfs_rng_uniform(r, i) * (double)n);
    return k < n ? k : n - 1;
}

/* Successive draws from one stream, for test data and benchmarks. */
typedef struct {
    amlfs_rng_name name;
    uint64_t next;
} amlfs_rng_cursor;

static inline AMLFS_HD double amlfs_next_uniform(amlfs_rng_cursor *c)
{
    return amlfs_rng_uniform(c->name, c->next++);
}

static inline AMLFS_HD double amlfs_next_normal(amlfs_rng_cursor *c)
{
    return amlfs_rng_normal(c->name, c->next++);
}

#endif
