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
 *   sphere20:  the SphereFace / CosFace 20-layer residual face net ("sphere20a", 112x96
 *              input): four stages of 64, 128, 256, 512 channels, each a stride-2 conv3x3
 *              with bias and a PReLU, then 1, 2, 4, 1 residual units x + PReLU(conv3x3(
 *              PReLU(conv3x3(x)))) (convolutions without bias, identity shortcut, no BN);
 *              a linear layer to the embedding (512); the cosine head.
 *   face-small: three stages conv3x3 (16, 32, 64), BN, PReLU, maxpool 2; a linear
 *              embedding (128); the cosine head (tests and 2 cores).
 *   resnet50:  torchvision's ResNet-50 (v1.5: the stride on the bottleneck's 3x3) for
 *              re-ID: conv7x7/2 64, BN, ReLU, maxpool 3x3/2 pad 1; four stages of 3, 4,
 *              6, 3 bottleneck units (1x1 w, 3x3 w, 1x1 4w; w = 64, 128, 256, 512; the
 *              first unit of each stage has a 1x1 conv + BN downsample shortcut) with
 *              strides 1, 2, 2 and 1 (the last stride 1 as re-ID uses it: 256x128 ->
 *              16x8); global average pooling; BNNeck (Luo et al.): a BatchNorm1d of the
 *              2048-d feature whose bias is frozen at 0, its output the embedding; the
 *              cosine head. Tensor names are torchvision's (layer1.0.conv1.weight,
 *              layer1.0.downsample.0.weight, ...), then bnneck.* and head.weight, so
 *              ImageNet weights load as they are (workflow/amlfs-convert-torchvision).
 *              From scratch it is initialised as every model here (PyTorch's default
 *              bounds below), not as torchvision's resnet50() (He normal, fan-out).
 *              Measured on 2 shared cores: a training step of batch 16 at 256x128
 *              takes 7.0 s (2.3 images/s; PyTorch 1.13 on the same cores: 10.5 s),
 *              peak RSS 1.8 GB; activations scale with the batch (about 100 MB an image).
 *   reid-small: conv3x3 32, BN, ReLU, maxpool 2; conv3x3 64, BN, ReLU, maxpool 2;
 *              conv3x3 E (embedding, 128), BN, ReLU; global average pooling; BNNeck of
 *              E; the cosine head (tests and 2 cores: a step of batch 32 at 64x32
 *              takes 0.17 s, 186 images/s, on 2 shared cores).
 * A frozen tensor (the BNNeck bias) is a parameter whose gradient is computed but which
 * no SGD step changes (nor weight decay): it stays at its initial 0, as PyTorch's
 * requires_grad_(False) on the bias; its momentum buffer stays 0.
 * small-cnn's and resnet20's convolutions have no bias (batch norm follows each); linear
 * layers do. A cosine head (sphere20, face-small) has one weight W (classes, embedding)
 * and outputs cos (N, classes) = normalised W times the normalised embedding, no bias.
 * PReLU slopes start at 0.25 (torch.nn.PReLU's default); the head's W is drawn as a
 * linear weight of fan-in = embedding (uniform in +-1/sqrt(embedding): only its rows'
 * directions matter to the cosines).
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
    int frozen;      /* parameters only: 1 when no SGD step changes it (BNNeck's bias) */
} amlfs_tensor;

typedef struct amlfs_model amlfs_model;

/* The architectures; amlfs_model_names (indexed by it, NULL-ended) spells them as the
 * checkpoints and --model do. */
typedef enum {
    AMLFS_MODEL_SMALL_CNN = 0,
    AMLFS_MODEL_RESNET20 = 1,
    AMLFS_MODEL_SPHERE20 = 2,
    AMLFS_MODEL_FACE_SMALL = 3,
    AMLFS_MODEL_RESNET50 = 4,
    AMLFS_MODEL_REID_SMALL = 5
} amlfs_model_kind;
extern const char *const amlfs_model_names[];

/* 1 when the architecture ends in a cosine head (sphere20, face-small, resnet50,
 * reid-small). */
int amlfs_model_kind_is_cosine(amlfs_model_kind kind);
/* The cosine head's default scale s of a cosine-head architecture (DESIGN.md 1: 64 for
 * the face nets, 16 for re-ID); 0 for a linear head. */
double amlfs_model_default_scale(amlfs_model_kind kind);
/* The default embedding width of a cosine-head architecture (512 sphere20, 128
 * face-small and reid-small, 2048 resnet50: fixed by its last stage); 0 else. */
int amlfs_model_default_embedding(amlfs_model_kind kind);

typedef struct {
    amlfs_model_kind model;
    int classes, channels, height, width;
    int batch; /* the largest batch a step or an inference is given */
    double scale;  /* the cosine head's s (the caller's loss spec uses it); 0 for a linear
                      head; a cosine head given 0 gets amlfs_model_default_scale */
    int embedding; /* the embedding width of a cosine-head model; 0: its default (512
                      sphere20, 128 face-small and reid-small, 2048 resnet50: the only
                      width it has); 0 for a linear head */
} amlfs_model_shape;

#define AMLFS_DEFAULT_SCALE 64.0      /* face (sphere20, face-small) */
#define AMLFS_DEFAULT_REID_SCALE 16.0 /* re-ID (resnet50, reid-small) */

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
/* Number of learnable parameters (elements; frozen ones not counted). */
size_t amlfs_model_parameters(const amlfs_model *m);

/* 1 when the model ends in a cosine head (its outputs are cosines in [-1, 1], trained
 * with a cosine-space loss of scale shape.scale), else 0 (logits). */
int amlfs_model_head_is_cosine(const amlfs_model *m);
/* The width D of the features the head reads: the embedding of a cosine-head model, the
 * last linear layer's input for the others. */
int amlfs_model_embedding_dim(const amlfs_model *m);
/* features (n, D) host memory: the embedding the head reads (before its
   normalisation), inference mode; n <= batch */
void amlfs_model_embed(amlfs_model *m, const float *x, int n, float *features);
/* The shape as built (scale and embedding with their defaults filled in). */
const amlfs_model_shape *amlfs_model_get_shape(const amlfs_model *m);

/* One SGD step on a batch x (n,C,H,W) float32 in host memory, y (n), n <= batch:
 * forward in training mode, the searchable loss of spec on the logits (a cosine head:
 * on the cosines, spec a cosine-space loss with spec->scale), backward, SGD
 * with lr, momentum, weight decay (all parameters but the frozen), nesterov. first_step: no momentum
 * buffer yet. Returns the batch's mean loss (non-finite: the step is not applied) and
 * adds to *correct the batch's top-1 hits and to *clamped its clamped samples. */
double amlfs_model_train_step(amlfs_model *m, const float *x, const int32_t *y, int n,
                              const amlfs_loss_spec *spec, double lr, double momentum,
                              double weight_decay, int nesterov, int first_step,
                              int64_t *correct, int64_t *clamped);

/* The logits (cosines for a cosine head) of the last training step, (n, classes), host
 * memory. */
const float *amlfs_model_last_logits(const amlfs_model *m);

/* Inference: logits (cosines for a cosine head) (n, classes) in host memory for x (n,C,H,W), n <= batch, with the
 * running batch-norm statistics. */
void amlfs_model_infer(amlfs_model *m, const float *x, int n, float *logits);

#endif
