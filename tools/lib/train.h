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

/* The learning-rate schedule of a checkpoint's settings (kind, base rate, epochs, warm-up,
 * step and decay). */
amlfs_schedule amlfs_state_schedule(const amlfs_train_state *st);

/* One SGD step on batch b (0 to batches-1) of epoch `epoch` (from 1) of the run st
 * trains: the rate at (epoch - 1) + b / batches epochs of the schedule (per batch, a
 * function of the epoch and the batch alone), the run's first step (st->optim_steps == 0)
 * starting the momentum from the gradient, st's momentum, weight decay and Nesterov
 * flag. A finite loss counts the step in st->optim_steps. Returns the batch's mean loss
 * (not finite: the step was not taken). x (count,C,H,W), y (count). */
double amlfs_train_batch(amlfs_model *m, amlfs_train_state *st, const amlfs_schedule *sched,
                         int64_t epoch, int b, int batches, const float *x, const int32_t *y,
                         int count, const amlfs_loss_spec *spec, int64_t *correct,
                         int64_t *clamped);

#endif
