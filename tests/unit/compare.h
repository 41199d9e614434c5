/* compare.h: the layer tests' tensors and comparisons (test_layers, test_layers_native):
 * float32 test data from a Philox cursor of the test stream, and one CHECK per tensor,
 * the worst element printed and, on failure, named. */
#ifndef AMLFS_COMPARE_H
#define AMLFS_COMPARE_H

#include "check.h"

#include "amlfs_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* n zeroed floats (exit 1 when memory runs out). */
static inline float *test_zeros(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "layer test: out of memory\n");
        exit(1);
    }
    return p;
}

/* n floats N(shift, scale^2) from the cursor. */
static inline float *test_randn(amlfs_rng_cursor *rng, size_t n, double scale, double shift)
{
    float *p = test_zeros(n);
    for (size_t i = 0; i < n; i++) p[i] = (float)(amlfs_next_normal(rng) * scale + shift);
    return p;
}

/* The fast path against the reference: |fast - ref| <= FAST_TOL (|ref| + max |ref|), for
 * oneDNN's float32 sums against the reference's double ones. */
#define FAST_TOL 1e-5

/* One CHECK per tensor: every element within atol + rtol |want|, the worst reported. */
static inline void compare(const char *what, const float *got, const float *want, size_t n, double atol,
                    double rtol)
{
    double worst_abs = 0.0, worst_rel = 0.0, worst_excess = -1.0;
    size_t worst_i = 0;
    int nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i], e = fabs(g - w);
        if (!isfinite(g) || !isfinite(w)) nonfinite++;
        if (e > worst_abs) worst_abs = e;
        if (w != 0.0 && e / fabs(w) > worst_rel) worst_rel = e / fabs(w);
        double tol = atol + rtol * fabs(w);
        double excess = e == 0.0 ? 0.0 : tol > 0.0 ? e / tol : INFINITY;
        if (excess > worst_excess || excess != excess) {
            worst_excess = excess;
            worst_i = i;
        }
    }
    printf("  %-44s n %6zu  max abs err %.3g  max rel err %.3g  (%.2f of tolerance)\n", what, n,
           worst_abs, worst_rel, worst_excess);
    CHECK(nonfinite == 0 && worst_excess <= 1.0,
          "%s: element %zu got %.9g want %.9g (atol %g rtol %g; %d non-finite)", what, worst_i,
          (double)got[worst_i], (double)want[worst_i], atol, rtol, nonfinite);
}

/* Fast path against the reference: the tolerance scales with the tensor's largest
 * value, as float32 sums err relative to their terms, not to a cancelled result. */
static inline void compare_fast(const char *what, const float *fast, const float *ref, size_t n)
{
    double biggest = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > biggest) biggest = fabs(ref[i]);
    compare(what, fast, ref, n, FAST_TOL * biggest + 1e-30, FAST_TOL);
}

static inline void compare_bits(const char *what, const float *a, const float *b, size_t n)
{
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += memcmp(&a[i], &b[i], sizeof *a) != 0;
    printf("  %-44s n %6zu  %zu elements differ in bits\n", what, n, diff);
    CHECK(diff == 0, "%s: %zu of %zu elements differ in bits", what, diff, n);
}

#endif
