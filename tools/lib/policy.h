/* policy.h: the search's files in memory: the policy, the thetas of an epoch and its
 * rewards (schemas/policy.schema, thetas.schema, rewards.schema). Readers validate
 * (exit 2 naming the file on any violation) and check the values' ranges. */
#ifndef AMLFS_POLICY_H
#define AMLFS_POLICY_H

#include <stdint.h>

/* Version-1 files (schemas/old/) read as the free form: every sigma the one sigma, the
 * draws equal to theta. Files are written in the current version. */
typedef struct {
    int64_t epoch, intervals, adam_step, seed;
    char space[16], mode[16], sampling[16], shaping[16], init[16], form[16],
        last_update[512];
    double sigma, sigma_intercept, slope_floor, lr, beta1, beta2, adam_eps, init_max_error;
    double *mu, *mu_init, *adam_m, *adam_v; /* each 4M, in the draw's coordinates */
    double *sigma_of;                       /* 4M, per coordinate; 0: not searched */
} amlfs_policy;

typedef struct {
    int64_t epoch, samples, intervals, seed, floored;
    char space[16], mode[16], sampling[16], shaping[16], form[16];
    double sigma, sigma_intercept, slope_floor;
    double *mu, *sigma_of; /* 4M */
    double *draw;          /* (B, 4M), what the update uses */
    double *theta;         /* (B, 4M), the slopes and biases the losses apply */
} amlfs_thetas;

typedef struct {
    int64_t epoch, samples, finite, best;
    char metric[16], shaping[16], update_skipped[512];
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

void amlfs_policy_alloc(amlfs_policy *p, int64_t intervals);
void amlfs_policy_read(amlfs_policy *p, const char *path);
void amlfs_policy_write(const amlfs_policy *p, const char *path);
void amlfs_policy_free(amlfs_policy *p);

void amlfs_thetas_alloc(amlfs_thetas *t, int64_t samples, int64_t intervals);
void amlfs_thetas_read(amlfs_thetas *t, const char *path);
void amlfs_thetas_write(const amlfs_thetas *t, const char *path);
void amlfs_thetas_free(amlfs_thetas *t);

void amlfs_rewards_alloc(amlfs_rewards *r, int64_t samples);
void amlfs_rewards_read(amlfs_rewards *r, const char *path);
void amlfs_rewards_write(const amlfs_rewards *r, const char *path);
void amlfs_rewards_free(amlfs_rewards *r);

#endif
