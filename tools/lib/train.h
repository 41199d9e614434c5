/* train.h: what amlfs-init --model, amlfs-train-epoch and amlfs-eval share: the
 * defaults of each model (DESIGN.md 2, defaults table), the device context, the check
 * that a checkpoint fits a dataset. */
#ifndef AMLFS_TRAIN_H
#define AMLFS_TRAIN_H

#include "checkpoint.h"
#include "data.h"

/* Fills st with model's defaults (batch, lr, momentum, weight decay, schedule, epochs,
 * augmentation); returns -1 for an unknown model. */
int amlfs_model_defaults(amlfs_train_state *st, const char *model);

/* The context of --device (cpu, cuda:N) with threads (0: the OpenMP default), or exit 2
 * with the reason. */
amlfs_context *amlfs_open_device(const char *device, int threads);

/* Exit 2 naming the data file when its images or classes differ from the checkpoint's. */
void amlfs_check_fit(const amlfs_train_state *st, const char *ckpt_path, const amlfs_split *s,
                     const char *data_path);

#endif
