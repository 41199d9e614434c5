/* search.h: the search's own maths (DESIGN.md 1, the search): drawing theta from the
 * policy, shaping rewards, and the REINFORCE + Adam step on mu. */
#ifndef AMLFS_SEARCH_H
#define AMLFS_SEARCH_H

#include "amlfs_kernels.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { SAMPLING_PLAIN = 0, SAMPLING_ANTITHETIC = 1 } amlfs_sampling;
typedef enum { SHAPING_ZSCORE = 0, SHAPING_RANK = 1 } amlfs_shaping;
typedef enum { MODE_AMLFS = 0, MODE_RANDOM = 1, MODE_FIXED = 2, MODE_REPLAY = 3 } amlfs_mode;
/* The eval attribute a reward is made of (loss is negated: higher is better). */
/* accuracy: face verification on the validation pairs; rank1: face identification or
 * re-ID's CMC rank-1; mAP: re-ID's mean average precision */
typedef enum {
    METRIC_TOP1 = 0, METRIC_TOP5 = 1, METRIC_LOSS = 2, METRIC_ACCURACY = 3, METRIC_RANK1 = 4,
    METRIC_MAP = 5
} amlfs_metric;

/* The names the files and the options spell these with, each table indexed by its enum
 * and NULL-ended: readers parse with them (amlfs_attr_enum), writers write them. */
extern const char *const amlfs_mode_names[];     /* amlfs_mode */
extern const char *const amlfs_sampling_names[]; /* amlfs_sampling */
extern const char *const amlfs_shaping_names[];  /* amlfs_shaping */
extern const char *const amlfs_form_names[];     /* amlfs_form (amlfs_kernels.h) */
extern const char *const amlfs_space_names[];    /* amlfs_space (amlfs_kernels.h) */
extern const char *const amlfs_init_names[];     /* amlfs_init_kind (amlfs_kernels.h) */
extern const char *const amlfs_metric_names[];   /* amlfs_metric */
/* amlfs_exact_loss (amlfs_kernels.h): searched (the loss of theta), cosface, arcface,
 * sphereface: the policy's and the thetas' attribute loss */
extern const char *const amlfs_loss_names[];

/* The per-coordinate sigma (4M) of a form: sigma for searched slopes, sigma_intercept
 * for searched intercepts, 0 for what the form does not search. */
void amlfs_sigma_vector(amlfs_form form, amlfs_space space, int m, double sigma,
                        double sigma_intercept, double *sigma_of);

/* draw (B,D): row i = mu + sigma (.) eps_i (per coordinate), eps_i = normals 0..D-1 of
 * the Philox stream (seed, epoch, i, AMLFS_STREAM_THETA). Antithetic (B even): rows
 * j < B/2 as plain, row j + B/2 = mu - sigma (.) eps_j. Fixed and replay modes: B copies
 * of mu. A coordinate with sigma 0 is mu's in every row. */
void amlfs_draw_thetas(const double *mu, int d, int b, const double *sigma, uint32_t seed,
                       uint32_t epoch, amlfs_mode mode, amlfs_sampling sampling,
                       double *draw);

/* Shapes raw rewards (B) into normalized (B). Excluded samples (excluded[i] != 0) get 0
 * and do not count. zscore: (R - mean)/std, population std; rank: r_i/(F-1) - 1/2 with
 * r_i the rank from 0 among the finite rewards, ties broken by index.
 * Returns F, the number of included samples. When F < 2 or all included rewards are
 * equal, normalized is all 0 and skip (size n) gets the reason; else skip is "". */
int amlfs_shape_rewards(const double *raw, const uint8_t *excluded, int b,
                        amlfs_shaping shaping, double *normalized, char *skip, size_t n);

/* The best sample: highest reward, lowest index on ties; -1 when none is included. */
int amlfs_best_sample(const double *raw, const uint8_t *excluded, int b);

/* One Adam step that increases J (DESIGN.md 1 step 5), on the searched coordinates
 * (sigma_j > 0) only:
 *   g_j = (1/F) sum_i normalized_i (d_ij - mu_j) / sigma_j^2 over included samples,
 *   t = step + 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   mu += lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 * Coordinates with sigma_j = 0 keep mu, m and v (g_j = 0 there). Updates mu, m, v in
 * place (each D) and returns t. grad (D) receives g, or NULL. */
int64_t amlfs_adam_ascent(double *mu, double *m, double *v, int64_t step, const double *draw,
                          const double *normalized, const uint8_t *excluded, int b, int d,
                          const double *sigma, double lr, double beta1, double beta2,
                          double eps, double *grad);

#endif
