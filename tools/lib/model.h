/* model.h: the built-in architectures (DESIGN.md 4) as a list of layers over the
 * device-neutral fast path of kernels/amlfs_layers.h, with their named tensors, a
 * training step (forward, backward through the searchable loss, SGD) and inference.
 *
 *   small-cnn: conv3x3 16, BN, ReLU, maxpool 2; conv3x3 32, BN, ReLU, maxpool 2;
 *              linear 64, ReLU; linear C (DESIGN.md 2, defaults table).
 *   resnet20:  He et al.'s CIFAR ResNet-20: conv3x3 16, BN, ReLU; three stages of three
 *              basic blocks (16, 32, 64 channels; the first block of stages 2 and 3
 *              strides 2); global average pooling; linear C. Shortcuts are option A
 *              (parameter-free: subsample and zero-pad channels), as in the paper's
 *              CIFAR experiments.
 * Convolutions have no bias (batch norm follows each); linear layers do.
 * Initialisation: PyTorch's default, uniform in +-1/sqrt(fan_in) for convolution and
 * linear weights and for linear biases (fan_in: the weight's inputs per output), from
 * Philox stream (seed, 0, 0, AMLFS_STREAM_INIT), tensor after tensor in build order;
 * BN gammas 1, betas 0, running mean 0, running variance 1 (model.c, init_tensors).
 */
#ifndef AMLFS_MODEL_H
#define AMLFS_MODEL_H

#include "amlfs_kernels.h"
#include "amlfs_layers.h"

#include <stdint.h>

typedef enum { TENSOR_PARAM = 0, TENSOR_BUFFER = 1 } amlfs_tensor_kind;

typedef struct {
    char name[64]; /* "conv1.weight", "bn1.running_mean", ... */
    amlfs_tensor_kind kind;
    int rank;
    int64_t dims[4];
    size_t size;     /* elements */
    float *data;     /* the context's memory */
    float *grad;     /* parameters only */
    float *momentum; /* parameters only: SGD's buffer */
    int fan_in;      /* > 0: drawn uniform in +-1/sqrt(fan_in) (a weight, a linear bias) */
    float fill;      /* otherwise the initial value */
} amlfs_tensor;

typedef struct amlfs_model amlfs_model;

/* The architectures; amlfs_model_names (indexed by it, NULL-ended) spells them as the
 * checkpoints and --model do. */
typedef enum { AMLFS_MODEL_SMALL_CNN = 0, AMLFS_MODEL_RESNET20 = 1 } amlfs_model_kind;
extern const char *const amlfs_model_names[];

typedef struct {
    amlfs_model_kind model;
    int classes, channels, height, width;
    int batch; /* the largest batch a step or an inference is given */
} amlfs_model_shape;

/* Builds the named model for shape on ctx, tensors initialised from seed.
 * Returns NULL with a message in err (unknown model, images too small, a backend
 * failure). */
amlfs_model *amlfs_model_create(amlfs_context *ctx, const amlfs_model_shape *shape,
                                uint32_t seed, char *err, size_t errlen);
void amlfs_model_destroy(amlfs_model *m);

int amlfs_model_tensor_count(const amlfs_model *m);
amlfs_tensor *amlfs_model_tensor(amlfs_model *m, int i);
/* The tensor of that name, or NULL. */
amlfs_tensor *amlfs_model_find(amlfs_model *m, const char *name);
/* Number of learnable parameters (elements). */
size_t amlfs_model_parameters(const amlfs_model *m);

/* One SGD step on a batch x (n,C,H,W) float32 in host memory, y (n), n <= batch:
 * forward in training mode, the searchable loss of spec on the logits, backward, SGD
 * with lr, momentum, weight decay (all parameters), nesterov. first_step: no momentum
 * buffer yet. Returns the batch's mean loss (non-finite: the step is not applied) and
 * adds to *correct the batch's top-1 hits and to *clamped its clamped samples. */
double amlfs_model_train_step(amlfs_model *m, const float *x, const int32_t *y, int n,
                              const amlfs_loss_spec *spec, double lr, double momentum,
                              double weight_decay, int nesterov, int first_step,
                              int64_t *correct, int64_t *clamped);

/* The logits of the last training step, (n, classes), host memory. */
const float *amlfs_model_last_logits(const amlfs_model *m);

/* Inference: logits (n, classes) in host memory for x (n,C,H,W), n <= batch, with the
 * running batch-norm statistics. */
void amlfs_model_infer(amlfs_model *m, const float *x, int n, float *logits);

#endif
