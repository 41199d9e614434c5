/* policy.h: the search's files in memory: the policy, the thetas of an epoch and its
 * rewards (schemas/policy.schema, thetas.schema, rewards.schema). Readers validate
 * (exit 2 naming the file on any violation) and check the values' ranges. */
#ifndef AMLFS_POLICY_H
#define AMLFS_POLICY_H

#include <stdint.h>

typedef struct {
    int64_t epoch, intervals, adam_step, seed;
    char space[16], mode[16], sampling[16], shaping[16], init[16], last_update[512];
    double sigma, lr, beta1, beta2, adam_eps, init_max_error;
    double *mu, *mu_init, *adam_m, *adam_v; /* each 4M */
} amlfs_policy;

typedef struct {
    int64_t epoch, samples, intervals, seed;
    char space[16], mode[16], sampling[16], shaping[16];
    double sigma;
    double *mu;    /* 4M */
    double *theta; /* (B, 4M) */
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
