/* train.c: model defaults, devices, checkpoint-dataset agreement.
 * Depends on: tool (and checkpoint.h, data.h for their types). */
#include "train.h"
#include "tool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int amlfs_model_defaults(amlfs_train_state *st, const char *model)
{
    int kind = amlfs_choice_index(amlfs_model_names, model);
    if (kind < 0)
        return -1;
    st->shape.model = (amlfs_model_kind)kind;
    st->schedule = AMLFS_SCHEDULE_COSINE;
    st->momentum = 0.9;
    st->weight_decay = 5e-4;
    st->nesterov = 0;
    st->warmup = 0;
    st->step = 30;
    st->gamma = 0.1;
    if (st->shape.model == AMLFS_MODEL_SMALL_CNN) {
        st->shape.batch = 100;
        st->lr = 0.05;
        st->epochs = 12;
        st->augment = AUGMENT_NONE;
    } else if (st->shape.model == AMLFS_MODEL_RESNET20) {
        st->shape.batch = 128;
        st->lr = 0.1;
        st->epochs = 200;
        st->augment = AUGMENT_CROP_FLIP;
    } else if (st->shape.model == AMLFS_MODEL_SPHERE20) {
        /* CosFace / SphereFace on CASIA-WebFace: batch 256 (over the GPUs), lr 0.1 divided
         * by 10 at 16k and 24k of 28k iterations. At 256 an epoch of CASIA's 494,414 images
         * is 1,931 iterations: 15 epochs, a decay every 8 (15.4k iterations; the second
         * falls past the end: the exact 16k/24k need the multi-step schedule). No
         * augmentation: the faces are aligned (the papers flip only). */
        st->shape.batch = 256;
        st->lr = 0.1;
        st->epochs = 15;
        st->schedule = AMLFS_SCHEDULE_STEP;
        st->step = 8;
        st->augment = AUGMENT_NONE;
        st->shape.scale = AMLFS_DEFAULT_SCALE;
        st->shape.embedding = 512;
    } else if (st->shape.model == AMLFS_MODEL_RESNET50) {
        /* SphereReID (Fan et al. 2019, as quoted from the paper): P = 16 x K = 4 = 64,
         * 256x128 crops, 140 epochs, a linear warm-up of 20 epochs, decays at epochs 80
         * and 100 - but with Adam (lr 1e-3 -> 1e-4 -> 1e-5), which amlfs does not have.
         * With SGD (momentum 0.9, weight decay 5e-4) the rate is not SphereReID's: 0.05
         * (torchreid-like for SGD from ImageNet weights; not measured here) with their
         * warm-up and their milestones (80, 100; decay 0.1). */
        st->shape.batch = 64;
        st->lr = 0.05;
        st->epochs = 140;
        st->warmup = 20;
        st->schedule = AMLFS_SCHEDULE_STEP;
        st->nmilestones = 2;
        st->milestones[0] = 80;
        st->milestones[1] = 100;
        st->augment = AUGMENT_REID; /* flip, pad-crop, random erasing (torchreid's) */
        st->shape.scale = AMLFS_DEFAULT_REID_SCALE;
        st->shape.embedding = 2048;
    } else if (st->shape.model == AMLFS_MODEL_REID_SMALL) {
        /* tests and 2 cores: a few thousand 64x32 images, batch 32, lr 0.1 as face-small */
        st->shape.batch = 32;
        st->lr = 0.1;
        st->epochs = 8;
        st->augment = AUGMENT_REID;
        st->shape.scale = AMLFS_DEFAULT_REID_SCALE;
        st->shape.embedding = 128;
    } else { /* face-small */
        /* a few thousand synthetic faces on 2 cores: batch 64 gives ~50 steps an epoch
         * where 256 would give a dozen; lr 0.1 as sphere20's, since the cosine head's
         * normalisation keeps the gradients' scale independent of the features' norm */
        st->shape.batch = 64;
        st->lr = 0.1;
        st->epochs = 8;
        st->augment = AUGMENT_NONE;
        st->shape.scale = AMLFS_DEFAULT_SCALE;
        st->shape.embedding = 128;
    }
    return 0;
}

amlfs_context *amlfs_open_device(const char *device, int threads)
{
    /* AMLFS_CUDA_LOG=1: the backend reports its choices (the kernels read no environment) */
    const char *log = getenv("AMLFS_CUDA_LOG");
    amlfs_device dev = {AMLFS_DEVICE_CPU, 0, log && !strcmp(log, "1")};
    if (!strncmp(device, "cuda:", 5)) {
        char *end;
        long idx = strtol(device + 5, &end, 10);
        if (end == device + 5 || *end || idx < 0 || idx > 64)
            amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--device: '%s', expected cpu or cuda:N", device);
        dev.kind = AMLFS_DEVICE_CUDA;
        dev.index = (int)idx;
    } else if (strcmp(device, "cpu")) {
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--device: '%s', expected cpu or cuda:N", device);
    }
    char err[256] = "";
    amlfs_context *ctx = amlfs_context_create(dev, threads, err, sizeof err);
    if (!ctx)
        amlfs_fail(AMLFS_EXIT_USAGE, NULL, "--device %s: %s", device, err);
    return ctx;
}

void amlfs_check_fit(const amlfs_train_state *st, const char *ckpt_path, const amlfs_split *s,
                     const char *data_path)
{
    if (s->channels != st->shape.channels || s->height != st->shape.height ||
        s->width != st->shape.width || s->classes != st->shape.classes)
        amlfs_fail(AMLFS_EXIT_USAGE, data_path,
                   "holds %d-channel %dx%d images of %d classes, but %s is a %s for "
                   "%d-channel %dx%d images of %d classes",
                   s->channels, s->height, s->width, s->classes, ckpt_path,
                   amlfs_model_names[st->shape.model],
                   st->shape.channels, st->shape.height, st->shape.width, st->shape.classes);
}

amlfs_schedule amlfs_state_schedule(const amlfs_train_state *st)
{
    amlfs_schedule s = {.kind = st->schedule, .base_lr = st->lr, .epochs = (double)st->epochs,
                        .warmup = st->warmup, .step = st->step, .gamma = st->gamma,
                        .nmilestones = st->nmilestones};
    for (int i = 0; i < st->nmilestones && i < AMLFS_MAX_MILESTONES; i++)
        s.milestones[i] = st->milestones[i];
    return s;
}

double amlfs_train_batch(amlfs_model *m, amlfs_train_state *st, const amlfs_schedule *sched,
                         int64_t epoch, int b, int batches, const float *x, const int32_t *y,
                         int count, const amlfs_loss_spec *spec, int64_t *correct,
                         int64_t *clamped)
{
    /* the schedule steps per batch (PyTorch's CosineAnnealingLR stepped each batch over
     * the run), a function of the epoch and the batch alone: a run resumed from any
     * epoch's checkpoint has the rates of an unbroken one */
    double lr = amlfs_lr_at(sched, (double)(epoch - 1) + (double)b / batches);
    double loss = amlfs_model_train_step(m, x, y, count, spec, lr, st->momentum,
                                         st->weight_decay, (int)st->nesterov,
                                         st->optim_steps == 0, correct, clamped);
    if (isfinite(loss))
        st->optim_steps++;
    return loss;
}
