/* checkpoint.h: a model's training state in a checkpoint file (schemas/checkpoint.schema):
 * the settings, the schedule position, the loss last used, and every tensor by name. */
#ifndef AMLFS_CHECKPOINT_H
#define AMLFS_CHECKPOINT_H

#include "model.h"

#include <stdint.h>

typedef struct {
    amlfs_model_shape shape; /* model, classes, channels, height, width, batch */
    char dataset[32], schedule[16], augment[16], status[16], space[16], device[160];
    int64_t epoch, epochs, seed, optim_steps, nesterov, intervals, threads;
    double lr, momentum, weight_decay, warmup, step, gamma;
    double train_loss, train_top1, clamp_fraction;
    double *theta; /* 4M */
} amlfs_train_state;

/* Reads the settings and theta of a checkpoint (validated; exit 2 naming the file). */
void amlfs_state_read(amlfs_train_state *st, const char *path);
void amlfs_state_free(amlfs_train_state *st);

/* Loads every tensor of the model from the checkpoint: each must be there with the
 * model's shape (exit 2 naming the file and the tensor), and nothing else may be. */
void amlfs_checkpoint_load(amlfs_model *m, amlfs_context *ctx, const char *path);

/* Writes state and every tensor of the model, atomically. */
void amlfs_checkpoint_write(const amlfs_train_state *st, amlfs_model *m, amlfs_context *ctx,
                            const char *path);

#endif
