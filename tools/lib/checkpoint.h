/* checkpoint.h: a model's training state in a checkpoint file (schemas/checkpoint.schema):
 * the settings, the schedule position, the loss last used, and every tensor by name. */
#ifndef AMLFS_CHECKPOINT_H
#define AMLFS_CHECKPOINT_H

#include "data.h"
#include "model.h"

#include <stdint.h>

/* diverged: the loss became non-finite during the last epoch (eval files carry it on). */
typedef enum { AMLFS_STATUS_OK = 0, AMLFS_STATUS_DIVERGED = 1 } amlfs_status;

/* The names the files spell the state with, each indexed by its enum, NULL-ended (the
 * space's is amlfs_space_names, search.h). */
extern const char *const amlfs_status_names[];   /* amlfs_status */
extern const char *const amlfs_schedule_names[]; /* amlfs_schedule_kind (amlfs_layers.h) */
extern const char *const amlfs_augment_names[];  /* amlfs_augment (data.h) */
extern const char *const amlfs_sampler_names[];  /* amlfs_sampler (data.h) */

/* The string attributes that carry state are held as their enums, parsed on read and
 * written back as the same names; dataset and device are free text. */
typedef struct {
    amlfs_model_shape shape; /* model, classes, channels, height, width, batch */
    char dataset[32], device[160];
    amlfs_schedule_kind schedule;
    amlfs_augment augment;
    amlfs_sampler sampler; /* /@sampler (absent: random); pk: p x k = batch */
    int64_t p, k;          /* pk: identities per batch, images per identity (else 0) */
    amlfs_status status;
    amlfs_space space;
    int64_t epoch, epochs, seed, optim_steps, nesterov, intervals, threads;
    double lr, momentum, weight_decay, warmup, step, gamma;
    int nmilestones;                         /* step schedule: 0, or its milestones' */
    double milestones[AMLFS_MAX_MILESTONES]; /* epochs, increasing, > 0 (/milestones) */
    double train_loss, train_top1, clamp_fraction;
    double *theta; /* 4M */
} amlfs_train_state;

/* Reads the settings and theta of a checkpoint (validated; exit 2 naming the file). */
void amlfs_state_read(amlfs_train_state *st, const char *path);
void amlfs_state_free(amlfs_train_state *st);

/* v (n): increasing epochs > 0, else exit 2 naming path (NULL: the option --milestones). */
void amlfs_check_milestones(const char *path, const double *v, int n);

/* Loads every tensor of the model from the checkpoint: each must be there with the
 * model's shape (exit 2 naming the file and the tensor), and nothing else may be. */
void amlfs_checkpoint_load(amlfs_model *m, amlfs_context *ctx, const char *path);

/* Writes state and every tensor of the model, atomically. */
void amlfs_checkpoint_write(const amlfs_train_state *st, amlfs_model *m, amlfs_context *ctx,
                            const char *path);

#endif
