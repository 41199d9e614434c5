/* run.h: a run directory in memory (DESIGN.md 2, run directory): its policies, the
 * epochs that have rewards (each checked against its thetas), the test evaluation of
 * final/ and the driver's RUN/STOPPED. It reads what exists, so an unfinished run gives
 * the epochs rewarded so far. The config and logs/ are left to the caller.
 * Depends on: policy (the files' readers), h5io and h5get (final/eval-test.h5), tool. */
#ifndef AMLFS_RUN_H
#define AMLFS_RUN_H

#include "amlfs_kernels.h"
#include "checkpoint.h"
#include "policy.h"

#include <stddef.h>
#include <stdint.h>

#define AMLFS_RUN_PATH_LEN 4096

typedef struct {
    amlfs_rewards r;
    double min, mean, max; /* over the finite rewards; NaN when there are none */
    int excluded;          /* samples without a reward */
} amlfs_run_epoch;

typedef struct {
    char dir[AMLFS_RUN_PATH_LEN]; /* RUN as given, trailing slashes removed */
    amlfs_policy *policy;         /* policy[k] samples epoch k + 1 */
    int npolicies;
    amlfs_run_epoch *epoch; /* epoch[k] is epoch k + 1 */
    int nepochs;
    int intervals;
    amlfs_space space;
    char stopped[1024]; /* the first line of RUN/STOPPED (the driver's reason), or "" */
    int has_final;      /* final/eval-test.h5 exists */
    amlfs_status final_status;
    double final_top1, final_top5, final_loss;
    int64_t final_epoch, final_images;
    int final_face;     /* the test eval is a face eval (/@task face) */
    double final_accuracy, final_tar, final_rank1; /* face: verification, TAR, rank-1 */
    int final_reid;     /* the test eval is a re-ID eval (/@task reid) */
    double final_map;   /* re-ID: mAP (final_rank1 its CMC rank-1) */
} amlfs_run;

/* The test figure a run is judged by: top-1 (classification), verification accuracy
 * (face) or mAP (re-ID), and its name. */
double amlfs_run_headline(const amlfs_run *run);
const char *amlfs_run_headline_name(const amlfs_run *run);

/* Reads the run directory dir. Exit 2 naming the file when dir is not a run directory
 * (no config, no policy/epoch-0001.h5) or a file is invalid or inconsistent with the
 * others (an epoch's number, M, B). */
void amlfs_run_read(amlfs_run *run, const char *dir);
void amlfs_run_free(amlfs_run *run);

/* What followed epoch e's rewards (e from 1): the next policy's last_update, or
 * "not updated" while there is no next policy. */
const char *amlfs_run_update_of(const amlfs_run *run, int e);
/* |mu_{e+1} - mu_e| (L2), NaN while there is no next policy. */
double amlfs_run_mu_step(const amlfs_run *run, int e);
/* The best reward of epoch e, NaN when it has none or the run has fewer epochs. */
double amlfs_run_best_of(const amlfs_run *run, int e);

/* buf = dir "/" fmt...; exit 2 when it does not fit. */
void amlfs_run_path(char *buf, size_t n, const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Whether path is a regular file. */
int amlfs_run_is_file(const char *path);

#endif
