/* policy.h: the search's files in memory: the policy, the thetas of an epoch and its
 * rewards (schemas/policy.schema, thetas.schema, rewards.schema). Readers validate
 * (exit 2 naming the file on any violation) and check the values' ranges. */
#ifndef AMLFS_POLICY_H
#define AMLFS_POLICY_H

#include "search.h"

#include <stdint.h>

/* The string attributes that carry state (space, mode, sampling, shaping, init, form,
 * loss, metric) are held as their enums: parsed on read with their names tables (search.h),
 * written back as the same names.
 *
 * Version-1 files (schemas/old/) read as the free form: every sigma the one sigma, the
 * draws equal to theta. Files are written in the current version.
 *
 * Hand-written files without the root attribute 'schema' (plain.h) are read too:
 * - thetas: /theta (B,4M) or (4M), float64 or float32, the slopes and biases applied as
 *   they are (the free form, /draw = /theta, nothing searched: sigma 0 everywhere);
 *   optional root attributes space (prob), epoch (1), seed (1);
 * - policy: /mu (4M), float64 or float32, in the draw's coordinates of its form;
 *   optional root attributes space (prob), form (free: mu is the slopes and biases),
 *   sigma, sigma_intercept (sigma), slope_floor, lr, seed, epoch (1), mode, sampling,
 *   shaping (the defaults below, amlfs-init's), and an optional /sigma (4M); the Adam
 *   state starts at zero, mu_init is mu, init is recorded as identity with
 *   init_max_error NaN (not a fit). */
typedef struct {
    int64_t epoch, intervals, adam_step, seed;
    amlfs_space space;
    amlfs_mode mode;
    amlfs_sampling sampling;
    amlfs_shaping shaping;
    amlfs_init_kind init;
    amlfs_form form;
    amlfs_exact_loss loss; /* searched (theta's), or an exact margin loss (fixed mode,
                            * cosine space); the attribute loss, absent: searched */
    char last_update[512];
    double sigma, sigma_intercept, slope_floor, lr, beta1, beta2, adam_eps, init_max_error;
    double *mu, *mu_init, *adam_m, *adam_v; /* each 4M, in the draw's coordinates */
    double *sigma_of;                       /* 4M, per coordinate; 0: not searched */
    int plain;                              /* read from a file without 'schema' */
} amlfs_policy;

typedef struct {
    int64_t epoch, samples, intervals, seed, floored;
    amlfs_space space;
    amlfs_mode mode;
    amlfs_sampling sampling;
    amlfs_shaping shaping;
    amlfs_form form;
    amlfs_exact_loss loss; /* the policy's: what every sample trains with */
    double sigma, sigma_intercept, slope_floor;
    double *mu, *sigma_of; /* 4M */
    double *draw;          /* (B, 4M), what the update uses */
    double *theta;         /* (B, 4M), the slopes and biases the losses apply */
    int plain;             /* read from a file without 'schema' */
    int space_given;       /* the file names its space (always, unless plain) */
} amlfs_thetas;

typedef struct {
    int64_t epoch, samples, finite, best;
    amlfs_metric metric;
    amlfs_shaping shaping;
    char update_skipped[512];
    double best_reward;
    double *raw, *normalized; /* B */
    uint8_t *excluded;        /* B, codes below */
} amlfs_rewards;

/* /excluded codes (rewards.schema) */
enum {
    EXCLUDED_NO = 0,
    EXCLUDED_MISSING = 1,
    EXCLUDED_INVALID = 2,
    EXCLUDED_DIVERGED = 3,
    EXCLUDED_NONFINITE = 4,
    EXCLUDED_WRONG_EPOCH = 5
};
#define EXCLUDED_CODES \
    "0 included; 1 eval missing; 2 eval unreadable or invalid; 3 diverged; " \
    "4 non-finite metric; 5 eval of another epoch"

/* The search's defaults (amlfs-init's, DESIGN.md 1): what a hand-written policy that
 * does not set them gets. */
#define AMLFS_DEFAULT_SIGMA 0.2
#define AMLFS_DEFAULT_POLICY_LR 0.05
#define AMLFS_DEFAULT_SEED 1
#define AMLFS_ADAM_BETA1 0.9
#define AMLFS_ADAM_BETA2 0.999
#define AMLFS_ADAM_EPS 1e-8

void amlfs_policy_alloc(amlfs_policy *p, int64_t intervals);
void amlfs_policy_read(amlfs_policy *p, const char *path);
void amlfs_policy_write(const amlfs_policy *p, const char *path);
void amlfs_policy_free(amlfs_policy *p);

void amlfs_thetas_alloc(amlfs_thetas *t, int64_t samples, int64_t intervals);
void amlfs_thetas_read(amlfs_thetas *t, const char *path);
void amlfs_thetas_write(const amlfs_thetas *t, const char *path);
void amlfs_thetas_free(amlfs_thetas *t);

/* The loss of sample i (0 to B-1) of t: its theta row, t's space and t's loss (an exact
 * margin loss ignores theta), with the cosine head's scale s (0 in the prob space). */
amlfs_loss_spec amlfs_thetas_spec(const amlfs_thetas *t, int64_t i, double scale);

/* An exact loss (loss != searched) is a fixed-mode baseline in the cosine space: exit 2
 * naming path (or the option, path NULL) otherwise. */
void amlfs_check_exact_loss(const char *path, amlfs_exact_loss loss, amlfs_mode mode,
                            amlfs_space space);

void amlfs_rewards_alloc(amlfs_rewards *r, int64_t samples);
void amlfs_rewards_read(amlfs_rewards *r, const char *path);
void amlfs_rewards_write(const amlfs_rewards *r, const char *path);
void amlfs_rewards_free(amlfs_rewards *r);

#endif
