/* model.c: small-cnn, resnet20, sphere20, face-small, resnet50 and reid-small as a list
 * of layers over the fast path.
 *
 * Activations: the input and (N,C) features are plain; every (N,C,H,W) activation a
 * layer computes is in the device's native layout (amlfs_layers.h), so on the CPU the
 * convolutions, batch norms and pooling of oneDNN run on their blocked layout from layer
 * to layer with no conversion; a linear layer over an image-shaped input gets an
 * explicit conversion to plain (L_TOPLAIN) first, which is PyTorch's flatten order.
 *
 * Memory, as a training step needs it:
 *   - a ReLU or residual add whose input has no other reader writes over it (in place),
 *     so a basic block keeps 4 activations instead of 7;
 *   - activation gradients live only from the first consumer's backward to the
 *     producer's: they take buffers from a small pool, assigned once per model by
 *     walking the backward (gradient_slots); a ReLU's, a PReLU's or an add's input
 *     gradient takes
 *     over its output gradient's buffer (their backward runs in place). */
#include "model.h"
#include "amlfs_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const amlfs_model_names[] = {"small-cnn", "resnet20", "sphere20", "face-small",
                                         "resnet50", "reid-small", NULL};

int amlfs_model_kind_is_cosine(amlfs_model_kind kind)
{
    return kind == AMLFS_MODEL_SPHERE20 || kind == AMLFS_MODEL_FACE_SMALL ||
           kind == AMLFS_MODEL_RESNET50 || kind == AMLFS_MODEL_REID_SMALL;
}

double amlfs_model_default_scale(amlfs_model_kind kind)
{
    if (kind == AMLFS_MODEL_RESNET50 || kind == AMLFS_MODEL_REID_SMALL)
        return AMLFS_DEFAULT_REID_SCALE;
    return amlfs_model_kind_is_cosine(kind) ? AMLFS_DEFAULT_SCALE : 0;
}

int amlfs_model_default_embedding(amlfs_model_kind kind)
{
    switch (kind) {
    case AMLFS_MODEL_SPHERE20: return 512;
    case AMLFS_MODEL_FACE_SMALL: return 128;
    case AMLFS_MODEL_RESNET50: return 2048;
    case AMLFS_MODEL_REID_SMALL: return 128;
    default: return 0;
    }
}

typedef enum {
    L_CONV, L_BN, L_RELU, L_MAXPOOL, L_GAP, L_LINEAR, L_ADD, L_SHORTCUT, L_TOPLAIN, L_PRELU,
    L_COSINE
} layer_kind;

/* One layer: reads activation `in` (and `in2` for the add), writes activation `out`.
 * Activation 0 is the model's input. Shapes are per sample (C,H,W); the batch size
 * is the plan set's. */
typedef struct {
    layer_kind kind;
    int in, in2, out;
    int c, h, w;          /* input, per sample */
    int k, oh, ow;        /* output, per sample */
    int kernel, stride, pad;
    int weight, bias;     /* tensor indices, -1 none (conv, linear, cosine; PReLU's slope) */
    int gamma, beta, mean, var; /* batch norm */
    float *save_mean, *save_var; /* batch norm: the batch's statistics */
    void *workspace;      /* max pooling: where the maxima were */
} layer;

/* The plans of every layer for one batch size. */
typedef struct {
    int n;
    void **plan; /* per layer: conv/bn/pool/linear plan, or NULL */
} plan_set;

/* resnet50: 175 layers, 270 tensors; the tables are a few hundred kB in all */
#define MAX_TENSORS 320
#define MAX_LAYERS 192
#define MAX_PLAN_SETS 4

struct amlfs_model {
    amlfs_context *ctx;
    amlfs_model_shape shape;
    int ntensors, nlayers, nacts;
    amlfs_tensor tensor[MAX_TENSORS];
    layer layer[MAX_LAYERS];
    layer spare;   /* what a layer past MAX_LAYERS is built into, to be refused */
    int too_big;   /* 1: the model needs more than MAX_LAYERS or MAX_TENSORS */
    size_t act_size[MAX_LAYERS + 1];   /* per sample, floats in its layout */
    amlfs_layout layout[MAX_LAYERS + 1];
    float *act[MAX_LAYERS + 1];        /* in-place layers share their input's buffer */
    int act_owner[MAX_LAYERS + 1];     /* 1: act[a] was allocated for a */
    float *dact[MAX_LAYERS + 1];       /* from the gradient pool (gradient_slots) */
    float *grad_pool[MAX_LAYERS + 1];
    int ngrad;
    float *scratch;
    int consumers[MAX_LAYERS + 1];
    plan_set sets[MAX_PLAN_SETS];
    int nsets;
    int32_t *labels; /* host copy of the batch's targets */
    float *logits_host, *grad_host;
    double *loss_host;
    char err[256];
};

/* ---- building --------------------------------------------------------------------- */

static int add_tensor(amlfs_model *m, const char *name, amlfs_tensor_kind kind, int rank,
                      const int64_t *dims, int fan_in, float fill)
{
    if (m->ntensors >= MAX_TENSORS) {
        m->too_big = 1;
        return -1;
    }
    amlfs_tensor *t = &m->tensor[m->ntensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->rank = rank;
    t->size = 1;
    for (int i = 0; i < rank; i++) {
        t->dims[i] = dims[i];
        t->size *= (size_t)dims[i];
    }
    t->fan_in = fan_in;
    t->fill = fill;
    return m->ntensors++;
}

/* Current activation shape while building: the last layer's output. */
typedef struct {
    amlfs_model *m;
    int act, c, h, w;
    amlfs_layout layout;
} builder;

static layer *new_layer(builder *b, layer_kind kind)
{
    amlfs_model *m = b->m;
    layer *l = &m->spare;
    if (m->nlayers < MAX_LAYERS)
        l = &m->layer[m->nlayers++];
    else
        m->too_big = 1;
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->in = b->act;
    l->in2 = -1;
    l->c = b->c;
    l->h = b->h;
    l->w = b->w;
    l->weight = l->bias = l->gamma = l->beta = l->mean = l->var = -1;
    return l;
}

/* The layer's output: a new activation of shape (k, oh, ow) in `layout`. */
static void finish_layer_as(builder *b, layer *l, int k, int oh, int ow, amlfs_layout layout)
{
    amlfs_model *m = b->m;
    l->k = k;
    l->oh = oh;
    l->ow = ow;
    if (l == &m->spare || m->nacts >= MAX_LAYERS) { /* refused by build */
        m->too_big = 1;
        return;
    }
    l->out = ++m->nacts;
    m->layout[l->out] = layout;
    m->act_size[l->out] = amlfs_act_floats(m->ctx, layout, 1, k, oh, ow);
    b->act = l->out;
    b->c = k;
    b->h = oh;
    b->w = ow;
    b->layout = layout;
}

/* Image-shaped outputs are native, features (N,C) plain. */
static void finish_layer(builder *b, layer *l, int k, int oh, int ow)
{
    finish_layer_as(b, l, k, oh, ow, AMLFS_LAYOUT_NATIVE);
}

static void conv_with(builder *b, const char *name, int k, int kernel, int stride, int pad,
                      int has_bias)
{
    layer *l = new_layer(b, L_CONV);
    char tn[64];
    snprintf(tn, sizeof tn, "%s.weight", name);
    int64_t dims[4] = {k, b->c, kernel, kernel}, bd[1] = {k};
    l->weight = add_tensor(b->m, tn, TENSOR_PARAM, 4, dims, b->c * kernel * kernel, 0);
    if (has_bias) { /* nn.Conv2d's bias: uniform in +-1/sqrt(fan_in) as its weight */
        snprintf(tn, sizeof tn, "%s.bias", name);
        l->bias = add_tensor(b->m, tn, TENSOR_PARAM, 1, bd, b->c * kernel * kernel, 0);
    }
    l->kernel = kernel;
    l->stride = stride;
    l->pad = pad;
    finish_layer(b, l, k, (b->h + 2 * pad - kernel) / stride + 1,
                 (b->w + 2 * pad - kernel) / stride + 1);
}

static void conv(builder *b, const char *name, int k, int kernel, int stride, int pad)
{
    conv_with(b, name, k, kernel, stride, pad, 0);
}

static int batchnorm_layer(builder *b, const char *name)
{
    layer *l = new_layer(b, L_BN);
    char tn[64];
    int64_t dims[1] = {b->c};
    snprintf(tn, sizeof tn, "%s.weight", name);
    l->gamma = add_tensor(b->m, tn, TENSOR_PARAM, 1, dims, 0, 1.0f);
    snprintf(tn, sizeof tn, "%s.bias", name);
    l->beta = add_tensor(b->m, tn, TENSOR_PARAM, 1, dims, 0, 0.0f);
    snprintf(tn, sizeof tn, "%s.running_mean", name);
    l->mean = add_tensor(b->m, tn, TENSOR_BUFFER, 1, dims, 0, 0.0f);
    snprintf(tn, sizeof tn, "%s.running_var", name);
    l->var = add_tensor(b->m, tn, TENSOR_BUFFER, 1, dims, 0, 1.0f);
    finish_layer_as(b, l, b->c, b->h, b->w, b->layout); /* BNNeck on (N,C) features: plain */
    return l->beta;
}

static void batchnorm(builder *b, const char *name) { batchnorm_layer(b, name); }

/* BNNeck (Luo et al. 2019): a BatchNorm1d of the pooled (N,C) features whose bias is
 * frozen at 0 (requires_grad_(False) in their code): the parameter "NAME.bias" stays 0. */
static void bnneck(builder *b, const char *name)
{
    int beta = batchnorm_layer(b, name);
    if (beta >= 0)
        b->m->tensor[beta].frozen = 1;
}

static void relu(builder *b)
{
    layer *l = new_layer(b, L_RELU);
    finish_layer_as(b, l, b->c, b->h, b->w, b->layout); /* after a linear layer: plain */
}

/* torch.nn.PReLU(C): one slope per channel, 0.25 at first; "NAME.weight" as PyTorch
 * names it. */
static void prelu(builder *b, const char *name)
{
    layer *l = new_layer(b, L_PRELU);
    char tn[64];
    int64_t dims[1] = {b->c};
    snprintf(tn, sizeof tn, "%s.weight", name);
    l->weight = add_tensor(b->m, tn, TENSOR_PARAM, 1, dims, 0, 0.25f);
    finish_layer_as(b, l, b->c, b->h, b->w, b->layout);
}

static void maxpool_pad(builder *b, int kernel, int stride, int pad)
{
    layer *l = new_layer(b, L_MAXPOOL);
    l->kernel = kernel;
    l->stride = stride;
    l->pad = pad;
    finish_layer(b, l, b->c, (b->h + 2 * pad - kernel) / stride + 1,
                 (b->w + 2 * pad - kernel) / stride + 1);
}

static void maxpool(builder *b, int kernel, int stride) { maxpool_pad(b, kernel, stride, 0); }

static void gap(builder *b)
{
    layer *l = new_layer(b, L_GAP);
    finish_layer_as(b, l, b->c, 1, 1, AMLFS_LAYOUT_PLAIN);
}

static void linear(builder *b, const char *name, int out)
{
    if (b->layout != AMLFS_LAYOUT_PLAIN) { /* flatten: (N,C,H,W) plain is (N, C H W) */
        layer *t = new_layer(b, L_TOPLAIN);
        finish_layer_as(b, t, b->c, b->h, b->w, AMLFS_LAYOUT_PLAIN);
    }
    layer *l = new_layer(b, L_LINEAR);
    int in = b->c * b->h * b->w;
    l->c = in; /* a linear layer sees (N, IN) */
    l->h = l->w = 1;
    char tn[64];
    int64_t wd[2] = {out, in}, bd[1] = {out};
    snprintf(tn, sizeof tn, "%s.weight", name);
    l->weight = add_tensor(b->m, tn, TENSOR_PARAM, 2, wd, in, 0);
    snprintf(tn, sizeof tn, "%s.bias", name);
    l->bias = add_tensor(b->m, tn, TENSOR_PARAM, 1, bd, in, 0.0f);
    finish_layer_as(b, l, out, 1, 1, AMLFS_LAYOUT_PLAIN);
}

/* The cosine head over plain (N, D) features: W (classes, D), drawn as a linear weight. */
static void cosine_head(builder *b, const char *name, int classes)
{
    layer *l = new_layer(b, L_COSINE);
    char tn[64];
    int64_t wd[2] = {classes, b->c};
    snprintf(tn, sizeof tn, "%s.weight", name);
    l->weight = add_tensor(b->m, tn, TENSOR_PARAM, 2, wd, b->c, 0);
    finish_layer_as(b, l, classes, 1, 1, AMLFS_LAYOUT_PLAIN);
}

/* sphere20's residual unit: x + PReLU(conv(PReLU(conv(x)))), convolutions without bias. */
static void sphere_unit(builder *b, const char *name)
{
    int unit_in = b->act, k = b->c;
    char n[64];
    snprintf(n, sizeof n, "%s.conv1", name);
    conv(b, n, k, 3, 1, 1);
    snprintf(n, sizeof n, "%s.prelu1", name);
    prelu(b, n);
    snprintf(n, sizeof n, "%s.conv2", name);
    conv(b, n, k, 3, 1, 1);
    snprintf(n, sizeof n, "%s.prelu2", name);
    prelu(b, n);
    layer *add = new_layer(b, L_ADD); /* in: the branch (written over), in2: the unit's input */
    add->in2 = unit_in;
    finish_layer(b, add, k, b->h, b->w);
}

/* He et al.'s basic block with an option-A shortcut. */
static void basic_block(builder *b, const char *name, int k, int stride)
{
    int block_in = b->act, c = b->c, h = b->h, w = b->w;
    char n[64];
    snprintf(n, sizeof n, "%s.conv1", name);
    conv(b, n, k, 3, stride, 1);
    snprintf(n, sizeof n, "%s.bn1", name);
    batchnorm(b, n);
    relu(b);
    snprintf(n, sizeof n, "%s.conv2", name);
    conv(b, n, k, 3, 1, 1);
    snprintf(n, sizeof n, "%s.bn2", name);
    batchnorm(b, n);
    int branch = b->act, oh = b->h, ow = b->w;
    int shortcut = block_in;
    if (stride != 1 || c != k) {
        builder sb = {b->m, block_in, c, h, w, b->layout};
        layer *l = new_layer(&sb, L_SHORTCUT);
        l->stride = stride;
        finish_layer(&sb, l, k, (h - 1) / stride + 1, (w - 1) / stride + 1);
        shortcut = sb.act;
    }
    b->act = branch;
    layer *add = new_layer(b, L_ADD);
    add->in2 = shortcut;
    finish_layer(b, add, k, oh, ow);
    relu(b);
}

/* torchvision's Bottleneck (ResNet v1.5): conv1x1 w, BN, ReLU, conv3x3 w (stride), BN,
 * ReLU, conv1x1 4w, BN; + the input, or downsample(input) = BN(conv1x1 4w, stride) when
 * the shape changes; ReLU. Built in torchvision's parameter order. */
static void bottleneck(builder *b, const char *name, int width, int stride)
{
    int unit_in = b->act, c = b->c, h = b->h, w = b->w, k = 4 * width;
    amlfs_layout layout = b->layout;
    char n[64];
    snprintf(n, sizeof n, "%s.conv1", name);
    conv(b, n, width, 1, 1, 0);
    snprintf(n, sizeof n, "%s.bn1", name);
    batchnorm(b, n);
    relu(b);
    snprintf(n, sizeof n, "%s.conv2", name);
    conv(b, n, width, 3, stride, 1);
    snprintf(n, sizeof n, "%s.bn2", name);
    batchnorm(b, n);
    relu(b);
    snprintf(n, sizeof n, "%s.conv3", name);
    conv(b, n, k, 1, 1, 0);
    snprintf(n, sizeof n, "%s.bn3", name);
    batchnorm(b, n);
    int branch = b->act, oh = b->h, ow = b->w, shortcut = unit_in;
    if (stride != 1 || c != k) {
        builder sb = {b->m, unit_in, c, h, w, layout};
        snprintf(n, sizeof n, "%s.downsample.0", name);
        conv(&sb, n, k, 1, stride, 0);
        snprintf(n, sizeof n, "%s.downsample.1", name);
        batchnorm(&sb, n);
        shortcut = sb.act;
    }
    b->act = branch;
    layer *add = new_layer(b, L_ADD); /* in: the branch (written over), in2: the shortcut */
    add->in2 = shortcut;
    finish_layer(b, add, k, oh, ow);
    relu(b);
}

static int build_layers(amlfs_model *m);

/* The model's layers and tensors, refused when they outgrow the fixed tables. */
static int build(amlfs_model *m)
{
    if (build_layers(m) != 0)
        return -1;
    if (m->too_big)
        return snprintf(m->err, sizeof m->err,
                        "%s needs more than %d layers or %d tensors (MAX_LAYERS, "
                        "MAX_TENSORS in tools/lib/model.c)",
                        amlfs_model_names[m->shape.model], MAX_LAYERS, MAX_TENSORS), -1;
    return 0;
}

static int build_layers(amlfs_model *m)
{
    const amlfs_model_shape *s = &m->shape;
    builder b = {m, 0, s->channels, s->height, s->width, AMLFS_LAYOUT_PLAIN};
    m->act_size[0] = (size_t)s->channels * s->height * s->width;
    m->layout[0] = AMLFS_LAYOUT_PLAIN;
    if (s->model == AMLFS_MODEL_SMALL_CNN) {
        if (s->height < 4 || s->width < 4)
            return snprintf(m->err, sizeof m->err, "small-cnn needs images of 4x4 or more"), -1;
        conv(&b, "conv1", 16, 3, 1, 1);
        batchnorm(&b, "bn1");
        relu(&b);
        maxpool(&b, 2, 2);
        conv(&b, "conv2", 32, 3, 1, 1);
        batchnorm(&b, "bn2");
        relu(&b);
        maxpool(&b, 2, 2);
        linear(&b, "fc1", 64);
        relu(&b);
        linear(&b, "fc2", s->classes);
        return 0;
    }
    if (s->model == AMLFS_MODEL_RESNET20) {
        if (s->height < 4 || s->width < 4)
            return snprintf(m->err, sizeof m->err, "resnet20 needs images of 4x4 or more"), -1;
        conv(&b, "conv1", 16, 3, 1, 1);
        batchnorm(&b, "bn1");
        relu(&b);
        static const int width[3] = {16, 32, 64};
        for (int stage = 0; stage < 3; stage++)
            for (int blk = 0; blk < 3; blk++) {
                char n[32];
                snprintf(n, sizeof n, "layer%d.%d", stage + 1, blk);
                basic_block(&b, n, width[stage], stage > 0 && blk == 0 ? 2 : 1);
            }
        gap(&b);
        linear(&b, "fc", s->classes);
        return 0;
    }
    if (s->model == AMLFS_MODEL_SPHERE20) {
        if (s->height < 16 || s->width < 16)
            return snprintf(m->err, sizeof m->err, "sphere20 needs images of 16x16 or more "
                            "(112x96 as in the paper)"), -1;
        static const int width[4] = {64, 128, 256, 512}, units[4] = {1, 2, 4, 1};
        for (int stage = 0; stage < 4; stage++) {
            char n[48];
            snprintf(n, sizeof n, "stage%d.conv", stage + 1);
            conv_with(&b, n, width[stage], 3, 2, 1, 1);
            snprintf(n, sizeof n, "stage%d.prelu", stage + 1);
            prelu(&b, n);
            for (int u = 0; u < units[stage]; u++) {
                snprintf(n, sizeof n, "stage%d.unit%d", stage + 1, u);
                sphere_unit(&b, n);
            }
        }
        linear(&b, "fc", s->embedding);
        cosine_head(&b, "head", s->classes);
        return 0;
    }
    if (s->model == AMLFS_MODEL_FACE_SMALL) {
        if (s->height < 8 || s->width < 8)
            return snprintf(m->err, sizeof m->err, "face-small needs images of 8x8 or more"), -1;
        static const int width[3] = {16, 32, 64};
        for (int stage = 0; stage < 3; stage++) {
            char n[32];
            snprintf(n, sizeof n, "conv%d", stage + 1);
            conv(&b, n, width[stage], 3, 1, 1);
            snprintf(n, sizeof n, "bn%d", stage + 1);
            batchnorm(&b, n);
            snprintf(n, sizeof n, "prelu%d", stage + 1);
            prelu(&b, n);
            maxpool(&b, 2, 2);
        }
        linear(&b, "fc", s->embedding);
        cosine_head(&b, "head", s->classes);
        return 0;
    }
    if (s->model == AMLFS_MODEL_RESNET50) {
        if (s->height < 32 || s->width < 32)
            return snprintf(m->err, sizeof m->err, "resnet50 needs images of 32x32 or more "
                            "(256x128 for re-ID)"), -1;
        if (s->embedding != 2048)
            return snprintf(m->err, sizeof m->err, "resnet50's embedding is its 2048-d "
                            "feature (asked for %d)", s->embedding), -1;
        conv(&b, "conv1", 64, 7, 2, 3);
        batchnorm(&b, "bn1");
        relu(&b);
        maxpool_pad(&b, 3, 2, 1);
        static const int width[4] = {64, 128, 256, 512}, units[4] = {3, 4, 6, 3},
                         stride[4] = {1, 2, 2, 1}; /* the last: re-ID's stride 1 */
        for (int stage = 0; stage < 4; stage++)
            for (int u = 0; u < units[stage]; u++) {
                char n[32];
                snprintf(n, sizeof n, "layer%d.%d", stage + 1, u);
                bottleneck(&b, n, width[stage], u == 0 ? stride[stage] : 1);
            }
        gap(&b);
        bnneck(&b, "bnneck");
        cosine_head(&b, "head", s->classes);
        return 0;
    }
    if (s->model == AMLFS_MODEL_REID_SMALL) {
        if (s->height < 8 || s->width < 8)
            return snprintf(m->err, sizeof m->err, "reid-small needs images of 8x8 or more"), -1;
        const int width[3] = {32, 64, s->embedding};
        for (int stage = 0; stage < 3; stage++) {
            char n[32];
            snprintf(n, sizeof n, "conv%d", stage + 1);
            conv(&b, n, width[stage], 3, 1, 1);
            snprintf(n, sizeof n, "bn%d", stage + 1);
            batchnorm(&b, n);
            relu(&b);
            if (stage < 2)
                maxpool(&b, 2, 2);
        }
        gap(&b);
        bnneck(&b, "bnneck");
        cosine_head(&b, "head", s->classes);
        return 0;
    }
    return snprintf(m->err, sizeof m->err, "unknown model %d (small-cnn, resnet20, sphere20, "
                    "face-small, resnet50, reid-small)",
                    (int)s->model), -1;
}

/* ---- plans ------------------------------------------------------------------------ */

static void destroy_set(amlfs_model *m, plan_set *ps)
{
    for (int i = 0; i < m->nlayers; i++) {
        if (!ps->plan[i])
            continue;
        switch (m->layer[i].kind) {
        case L_CONV: amlfs_conv_plan_destroy(ps->plan[i]); break;
        case L_BN: amlfs_bn_plan_destroy(ps->plan[i]); break;
        case L_MAXPOOL: amlfs_pool_plan_destroy(ps->plan[i]); break;
        case L_LINEAR: amlfs_linear_plan_destroy(ps->plan[i]); break;
        case L_COSINE: amlfs_cosine_plan_destroy(ps->plan[i]); break;
        default: break;
        }
    }
    free(ps->plan);
    ps->plan = NULL;
}

static amlfs_conv_shape conv_shape(const amlfs_model *m, const layer *l, int n)
{
    amlfs_conv_shape s = {n, l->c, l->h, l->w, l->k, l->kernel, l->kernel, l->stride, l->pad,
                          l->bias >= 0, m->layout[l->in], m->layout[l->out]};
    return s;
}

static amlfs_bn_shape bn_shape(const amlfs_model *m, const layer *l, int n)
{
    amlfs_bn_shape s = {n, l->c, l->h, l->w, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, m->layout[l->in]};
    return s;
}

static amlfs_pool_shape pool_shape(const amlfs_model *m, const layer *l, int n)
{
    amlfs_pool_shape s = {n, l->c, l->h, l->w, l->kernel, l->stride, l->pad, AMLFS_POOL_MAX, 1,
                          m->layout[l->in]};
    return s;
}

static amlfs_linear_shape linear_shape(const layer *l, int n)
{
    amlfs_linear_shape s = {n, l->c, l->k, l->bias >= 0};
    return s;
}

static amlfs_prelu_shape prelu_shape(const amlfs_model *m, const layer *l, int n)
{
    amlfs_prelu_shape s = {n, l->c, l->h, l->w, m->layout[l->in]};
    return s;
}

static amlfs_shortcut_shape shortcut_shape(const amlfs_model *m, const layer *l, int n)
{
    amlfs_shortcut_shape s = {n, l->c, l->h, l->w, l->k, l->stride, m->layout[l->in]};
    return s;
}

/* The plans for batch size n, made on first use (a final partial batch gets its own). */
static plan_set *plans_for(amlfs_model *m, int n)
{
    for (int i = 0; i < m->nsets; i++)
        if (m->sets[i].n == n)
            return &m->sets[i];
    if (m->nsets == MAX_PLAN_SETS) { /* the oldest goes */
        destroy_set(m, &m->sets[0]);
        memmove(&m->sets[0], &m->sets[1], sizeof m->sets[0] * (MAX_PLAN_SETS - 1));
        m->nsets--;
    }
    plan_set *ps = &m->sets[m->nsets];
    ps->n = n;
    ps->plan = calloc((size_t)m->nlayers, sizeof(void *));
    if (!ps->plan)
        return NULL;
    char err[256] = "";
    for (int i = 0; i < m->nlayers; i++) {
        const layer *l = &m->layer[i];
        switch (l->kind) {
        case L_CONV: {
            amlfs_conv_shape s = conv_shape(m, l, n);
            ps->plan[i] = amlfs_conv_plan_create(m->ctx, &s, err, sizeof err);
            break;
        }
        case L_BN: {
            amlfs_bn_shape s = bn_shape(m, l, n);
            ps->plan[i] = amlfs_bn_plan_create(m->ctx, &s, err, sizeof err);
            break;
        }
        case L_MAXPOOL: {
            amlfs_pool_shape s = pool_shape(m, l, n);
            ps->plan[i] = amlfs_pool_plan_create(m->ctx, &s, err, sizeof err);
            break;
        }
        case L_LINEAR: {
            amlfs_linear_shape s = linear_shape(l, n);
            ps->plan[i] = amlfs_linear_plan_create(m->ctx, &s, err, sizeof err);
            break;
        }
        case L_COSINE: {
            amlfs_cosine_shape s = {n, l->c, l->k};
            ps->plan[i] = amlfs_cosine_plan_create(m->ctx, &s, err, sizeof err);
            break;
        }
        default: continue;
        }
        if (!ps->plan[i]) {
            snprintf(m->err, sizeof m->err, "layer %d: %s", i, err);
            destroy_set(m, ps);
            return NULL;
        }
    }
    m->nsets++;
    return ps;
}

/* ---- buffers ---------------------------------------------------------------------- */

/* Whether layer l writes its output over its input: a ReLU or an add whose input has no
 * other reader, is not the image, and whose producer's backward does not read its own
 * output (a ReLU's does; pooling's may). Their backward needs neither input. */
static int in_place(const amlfs_model *m, const layer *l, const int *producer)
{
    if (l->kind != L_RELU && l->kind != L_ADD)
        return 0;
    if (l->in == 0 || m->consumers[l->in] != 1 || m->layout[l->in] != m->layout[l->out])
        return 0;
    layer_kind pk = m->layer[producer[l->in]].kind;
    return pk != L_RELU && pk != L_MAXPOOL;
}

/* The gradient buffers: walks the backward as backward() runs it and gives each
 * activation's gradient a slot of the pool from the first consumer that writes it to its
 * producer, after which the slot is free again. A ReLU's, a PReLU's or an add's first input
 * gradient takes over its output gradient's slot (the two run in place, and the output
 * gradient has no other reader). slot[a] for every activation but the image (-1);
 * returns the number of slots. */
static int gradient_slots(const amlfs_model *m, int *slot)
{
    int free_slots[MAX_LAYERS + 1], nfree = 0, nslots = 0, seen[MAX_LAYERS + 1] = {0};
    for (int a = 0; a <= m->nacts; a++)
        slot[a] = -1;
    slot[m->layer[m->nlayers - 1].out] = nslots++;
    for (int i = m->nlayers - 1; i >= 0; i--) {
        const layer *l = &m->layer[i];
        int taken_over = 0;
        const int inputs[2] = {l->in, l->in2};
        for (int j = 0; j < 2; j++) {
            int a = inputs[j];
            if (a <= 0 || seen[a]++ > 0) /* the image, none, or summed in via scratch */
                continue;
            if (j == 0 && (l->kind == L_RELU || l->kind == L_ADD || l->kind == L_PRELU)) {
                slot[a] = slot[l->out];
                taken_over = 1;
            } else {
                slot[a] = nfree > 0 ? free_slots[--nfree] : nslots++;
            }
        }
        if (!taken_over)
            free_slots[nfree++] = slot[l->out];
    }
    return nslots;
}

/* ---- life ------------------------------------------------------------------------- */

/* PyTorch's default initialisation (nn.Conv2d and nn.Linear reset_parameters): a weight
 * is kaiming_uniform_(a = sqrt(5)), which is uniform in +-1/sqrt(fan_in) (the gain
 * sqrt(2 / (1 + 5)) times sqrt(3 / fan_in)), a linear bias uniform in +-1/sqrt(fan_in) of
 * its weight's fan-in. Not He's normal (std sqrt(2 / fan_in), 2.45 times larger): it
 * starts with larger logits, and under batch norm a larger convolution weight takes
 * relatively smaller steps (their relative size falls as 1/|w|^2); one epoch from it,
 * all a sample of the search trains, learned far less than PyTorch's (val top-1 0.51
 * against 0.76 on 3,000 Fashion-MNIST images; bench/first-epoch). The uniforms come
 * from Philox stream (seed, 0, 0, AMLFS_STREAM_INIT), one cursor tensor after tensor in
 * build order: w = bound (2u - 1) in double, rounded to float. */
static int init_tensors(amlfs_model *m, uint32_t seed)
{
    amlfs_rng_cursor r = {amlfs_rng(seed, 0, 0, AMLFS_STREAM_INIT), 0};
    for (int i = 0; i < m->ntensors; i++) {
        amlfs_tensor *t = &m->tensor[i];
        float *host = malloc(t->size * sizeof(float));
        if (!host)
            return -1;
        if (t->fan_in > 0) {
            double bound = 1.0 / sqrt((double)t->fan_in);
            for (size_t j = 0; j < t->size; j++)
                host[j] = (float)(bound * (2.0 * amlfs_next_uniform(&r) - 1.0));
        } else {
            for (size_t j = 0; j < t->size; j++)
                host[j] = t->fill;
        }
        amlfs_upload(m->ctx, t->data, host, t->size * sizeof(float));
        if (t->frozen) /* no step ever writes its momentum: 0 in every checkpoint */
            amlfs_memzero(m->ctx, t->momentum, t->size * sizeof(float));
        free(host);
    }
    return 0;
}

amlfs_model *amlfs_model_create(amlfs_context *ctx, const amlfs_model_shape *shape,
                                uint32_t seed, char *err, size_t errlen)
{
    amlfs_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->ctx = ctx;
    m->shape = *shape;
    if (shape->classes < 2 || shape->batch < 1 || shape->channels < 1) {
        snprintf(err, errlen, "bad model shape: %d classes, batch %d, %d channels",
                 shape->classes, shape->batch, shape->channels);
        free(m);
        return NULL;
    }
    int cosine = amlfs_model_kind_is_cosine(shape->model);
    if (!cosine) {
        m->shape.scale = 0;
        m->shape.embedding = 0;
    } else {
        if (m->shape.scale == 0)
            m->shape.scale = amlfs_model_default_scale(shape->model);
        if (m->shape.embedding == 0)
            m->shape.embedding = amlfs_model_default_embedding(shape->model);
        if (!(m->shape.scale > 0) || !isfinite(m->shape.scale) || m->shape.embedding < 1) {
            snprintf(err, errlen, "bad cosine head: scale %g, embedding %d", m->shape.scale,
                     m->shape.embedding);
            free(m);
            return NULL;
        }
    }
    if (build(m) != 0) {
        snprintf(err, errlen, "%s", m->err);
        free(m);
        return NULL;
    }
    size_t nb = (size_t)shape->batch, largest = 0;
    int ok = 1;
    for (int i = 0; i < m->ntensors; i++) {
        amlfs_tensor *t = &m->tensor[i];
        size_t bytes = t->size * sizeof(float);
        ok &= (t->data = amlfs_alloc(ctx, bytes)) != NULL;
        if (t->kind == TENSOR_PARAM) {
            ok &= (t->grad = amlfs_alloc(ctx, bytes)) != NULL;
            ok &= (t->momentum = amlfs_alloc(ctx, bytes)) != NULL;
        }
    }
    int producer[MAX_LAYERS + 1];
    for (int i = 0; i < m->nlayers; i++) {
        const layer *l = &m->layer[i];
        producer[l->out] = i;
        m->consumers[l->in]++;
        if (l->in2 >= 0)
            m->consumers[l->in2]++;
    }
    for (int a = 0; a <= m->nacts; a++)
        largest = m->act_size[a] > largest ? m->act_size[a] : largest;
    for (int a = 0; a <= m->nacts; a++) {
        const layer *l = a > 0 ? &m->layer[producer[a]] : NULL;
        if (l && in_place(m, l, producer)) {
            m->act[a] = m->act[l->in];
            continue;
        }
        m->act_owner[a] = 1;
        ok &= (m->act[a] = amlfs_alloc(ctx, nb * m->act_size[a] * sizeof(float))) != NULL;
    }
    int slot[MAX_LAYERS + 1];
    m->ngrad = gradient_slots(m, slot);
    for (int g = 0; g < m->ngrad; g++)
        ok &= (m->grad_pool[g] = amlfs_alloc(ctx, nb * largest * sizeof(float))) != NULL;
    for (int a = 1; a <= m->nacts; a++)
        m->dact[a] = slot[a] >= 0 ? m->grad_pool[slot[a]] : NULL;
    ok &= (m->scratch = amlfs_alloc(ctx, nb * largest * sizeof(float))) != NULL;
    for (int i = 0; i < m->nlayers; i++) {
        layer *l = &m->layer[i];
        if (l->kind == L_BN) {
            ok &= (l->save_mean = amlfs_alloc(ctx, (size_t)l->c * sizeof(float))) != NULL;
            ok &= (l->save_var = amlfs_alloc(ctx, (size_t)l->c * sizeof(float))) != NULL;
        }
    }
    m->labels = calloc(nb, sizeof(int32_t));
    m->logits_host = calloc(nb * (size_t)shape->classes, sizeof(float));
    m->grad_host = calloc(nb * (size_t)shape->classes, sizeof(float));
    m->loss_host = calloc(nb, sizeof(double));
    ok &= m->labels && m->logits_host && m->grad_host && m->loss_host;
    plan_set *ps = ok ? plans_for(m, shape->batch) : NULL;
    if (ps) { /* max pooling keeps its maxima per layer, sized for the full batch */
        for (int i = 0; i < m->nlayers; i++)
            if (m->layer[i].kind == L_MAXPOOL) {
                size_t ws = amlfs_pool_workspace_bytes(ps->plan[i]);
                if (ws)
                    ok &= (m->layer[i].workspace = amlfs_alloc(ctx, ws)) != NULL;
            }
    }
    if (!ok || !ps) {
        snprintf(err, errlen, "%s", m->err[0] ? m->err : "out of memory");
        amlfs_model_destroy(m);
        return NULL;
    }
    if (init_tensors(m, seed) != 0) {
        snprintf(err, errlen, "out of memory (the initial weights on the host)");
        amlfs_model_destroy(m);
        return NULL;
    }
    return m;
}

void amlfs_model_destroy(amlfs_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nsets; i++)
        destroy_set(m, &m->sets[i]);
    for (int i = 0; i < m->ntensors; i++) {
        amlfs_free(m->ctx, m->tensor[i].data);
        amlfs_free(m->ctx, m->tensor[i].grad);
        amlfs_free(m->ctx, m->tensor[i].momentum);
    }
    for (int a = 0; a <= m->nacts; a++)
        if (m->act_owner[a])
            amlfs_free(m->ctx, m->act[a]);
    for (int g = 0; g < m->ngrad; g++)
        amlfs_free(m->ctx, m->grad_pool[g]);
    for (int i = 0; i < m->nlayers; i++) {
        amlfs_free(m->ctx, m->layer[i].save_mean);
        amlfs_free(m->ctx, m->layer[i].save_var);
        amlfs_free(m->ctx, m->layer[i].workspace);
    }
    amlfs_free(m->ctx, m->scratch);
    free(m->labels);
    free(m->logits_host);
    free(m->grad_host);
    free(m->loss_host);
    free(m);
}

int amlfs_model_tensor_count(const amlfs_model *m) { return m->ntensors; }
amlfs_tensor *amlfs_model_tensor(amlfs_model *m, int i) { return &m->tensor[i]; }

amlfs_tensor *amlfs_model_find(amlfs_model *m, const char *name)
{
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tensor[i].name, name))
            return &m->tensor[i];
    return NULL;
}

size_t amlfs_model_parameters(const amlfs_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensor[i].kind == TENSOR_PARAM && !m->tensor[i].frozen)
            n += m->tensor[i].size;
    return n;
}

/* ---- forward and backward --------------------------------------------------------- */

#define T(i) (m->tensor[(i)].data)
#define G(i) ((i) >= 0 ? m->tensor[(i)].grad : NULL)

static void forward(amlfs_model *m, plan_set *ps, int n, int training)
{
    for (int i = 0; i < m->nlayers; i++) {
        layer *l = &m->layer[i];
        float *out = m->act[l->out];
        const float *in = m->act[l->in];
        switch (l->kind) {
        case L_CONV:
            amlfs_conv_forward(ps->plan[i], out, in, T(l->weight), l->bias >= 0 ? T(l->bias) : NULL);
            break;
        case L_PRELU: {
            amlfs_prelu_shape s = prelu_shape(m, l, n);
            amlfs_prelu_forward(m->ctx, out, in, T(l->weight), &s);
            break;
        }
        case L_COSINE: amlfs_cosine_forward(ps->plan[i], out, in, T(l->weight)); break;
        case L_BN:
            if (training)
                amlfs_bn_forward_train(ps->plan[i], out, l->save_mean, l->save_var, T(l->mean),
                                       T(l->var), in, T(l->gamma), T(l->beta));
            else
                amlfs_bn_forward_infer(ps->plan[i], out, in, T(l->gamma), T(l->beta),
                                       T(l->mean), T(l->var));
            break;
        case L_RELU:
            amlfs_relu_forward(m->ctx, out, in, (size_t)n * m->act_size[l->in]);
            break;
        case L_MAXPOOL:
            amlfs_pool_forward(ps->plan[i], out, in, training ? l->workspace : NULL);
            break;
        case L_GAP:
            amlfs_global_avgpool_forward(m->ctx, out, in, n, l->c, l->h, l->w, m->layout[l->in]);
            break;
        case L_TOPLAIN:
            amlfs_act_convert(m->ctx, out, AMLFS_LAYOUT_PLAIN, in, m->layout[l->in], n, l->c,
                              l->h, l->w);
            break;
        case L_LINEAR:
            amlfs_linear_forward(ps->plan[i], out, in, T(l->weight), T(l->bias));
            break;
        case L_ADD:
            amlfs_add_forward(m->ctx, out, in, m->act[l->in2], (size_t)n * m->act_size[l->out]);
            break;
        case L_SHORTCUT: {
            amlfs_shortcut_shape s = shortcut_shape(m, l, n);
            amlfs_shortcut_forward(m->ctx, out, in, &s);
            break;
        }
        }
    }
}

/* Where a layer writes the gradient of its input activation a: straight into dact[a]
 * when it is a's only consumer or the first to reach it, else into scratch, which is
 * then added (returned by gradient_target, folded in by gradient_done). */
static float *gradient_target(amlfs_model *m, int a, int *seen)
{
    return seen[a]++ == 0 ? m->dact[a] : m->scratch;
}

static void gradient_done(amlfs_model *m, int a, const float *target, int n)
{
    if (target == m->scratch)
        amlfs_add_forward(m->ctx, m->dact[a], m->dact[a], m->scratch,
                          (size_t)n * m->act_size[a]);
}

static void backward(amlfs_model *m, plan_set *ps, int n)
{
    int seen[MAX_LAYERS + 1] = {0};
    for (int i = m->nlayers - 1; i >= 0; i--) {
        layer *l = &m->layer[i];
        const float *dout = m->dact[l->out];
        const float *in = m->act[l->in];
        /* the input image needs no gradient */
        float *din = l->in == 0 ? NULL : gradient_target(m, l->in, seen);
        switch (l->kind) {
        case L_CONV:
            amlfs_conv_backward(ps->plan[i], din, G(l->weight), G(l->bias), dout, in, T(l->weight));
            break;
        case L_PRELU: {
            amlfs_prelu_shape s = prelu_shape(m, l, n);
            amlfs_prelu_backward(m->ctx, din, G(l->weight), dout, in, T(l->weight), &s);
            break;
        }
        case L_COSINE:
            amlfs_cosine_backward(ps->plan[i], din, G(l->weight), dout, in, T(l->weight));
            break;
        case L_BN:
            amlfs_bn_backward_train(ps->plan[i], din, G(l->gamma), G(l->beta), dout, in,
                                    T(l->gamma), l->save_mean, l->save_var);
            break;
        case L_RELU:
            if (din)
                amlfs_relu_backward(m->ctx, din, dout, m->act[l->out],
                                    (size_t)n * m->act_size[l->out]);
            break;
        case L_MAXPOOL:
            if (din)
                amlfs_pool_backward(ps->plan[i], din, dout, in, m->act[l->out], l->workspace);
            break;
        case L_GAP:
            if (din)
                amlfs_global_avgpool_backward(m->ctx, din, dout, n, l->c, l->h, l->w,
                                              m->layout[l->in]);
            break;
        case L_TOPLAIN:
            if (din)
                amlfs_act_convert(m->ctx, din, m->layout[l->in], dout, AMLFS_LAYOUT_PLAIN, n,
                                  l->c, l->h, l->w);
            break;
        case L_LINEAR:
            amlfs_linear_backward(ps->plan[i], din, G(l->weight), G(l->bias), dout, in,
                                  T(l->weight));
            break;
        case L_ADD: {
            /* both inputs receive dout, one after the other: the two may share the
             * scratch buffer (add_backward with da = db copies dout once). The first
             * gradient of the input is dout itself, in the same buffer (gradient_slots). */
            size_t count = (size_t)n * m->act_size[l->out];
            if (din != dout) {
                amlfs_add_backward(m->ctx, din, din, dout, count);
                gradient_done(m, l->in, din, n);
            }
            float *d2 = gradient_target(m, l->in2, seen);
            amlfs_add_backward(m->ctx, d2, d2, dout, count);
            gradient_done(m, l->in2, d2, n);
            continue;
        }
        case L_SHORTCUT:
            if (din) {
                amlfs_shortcut_shape s = shortcut_shape(m, l, n);
                amlfs_shortcut_backward(m->ctx, din, dout, &s);
            }
            break;
        }
        if (din)
            gradient_done(m, l->in, din, n);
    }
}

double amlfs_model_train_step(amlfs_model *m, const float *x, const int32_t *y, int n,
                              const amlfs_loss_spec *spec, double lr, double momentum,
                              double weight_decay, int nesterov, int first_step,
                              int64_t *correct, int64_t *clamped)
{
    plan_set *ps = plans_for(m, n);
    if (!ps)
        return NAN;
    int classes = m->shape.classes;
    amlfs_upload(m->ctx, m->act[0], x, (size_t)n * m->act_size[0] * sizeof(float));
    forward(m, ps, n, 1);
    int last = m->layer[m->nlayers - 1].out;
    amlfs_download(m->ctx, m->logits_host, m->act[last], (size_t)n * classes * sizeof(float));
    int hit_clamp = 0;
    double loss = amlfs_searchable_loss(spec, m->logits_host, y, n, classes, m->loss_host,
                                        m->grad_host, NULL, &hit_clamp);
    for (int i = 0; i < n; i++) {
        const float *row = m->logits_host + (size_t)i * classes;
        int best = 0;
        for (int j = 1; j < classes; j++)
            if (row[j] > row[best])
                best = j;
        *correct += best == y[i];
    }
    *clamped += hit_clamp;
    if (!isfinite(loss))
        return loss;
    amlfs_upload(m->ctx, m->dact[last], m->grad_host, (size_t)n * classes * sizeof(float));
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensor[i].kind == TENSOR_PARAM)
            amlfs_memzero(m->ctx, m->tensor[i].grad, m->tensor[i].size * sizeof(float));
    backward(m, ps, n);
    for (int i = 0; i < m->ntensors; i++) {
        amlfs_tensor *t = &m->tensor[i];
        if (t->kind == TENSOR_PARAM && !t->frozen) /* a frozen tensor: no step, no decay */
            amlfs_sgd_step(m->ctx, t->data, t->momentum, t->grad, t->size, lr, momentum,
                           weight_decay, nesterov, first_step);
    }
    return loss;
}

const float *amlfs_model_last_logits(const amlfs_model *m) { return m->logits_host; }

void amlfs_model_infer(amlfs_model *m, const float *x, int n, float *logits)
{
    plan_set *ps = plans_for(m, n);
    if (!ps) {
        for (size_t i = 0; i < (size_t)n * m->shape.classes; i++)
            logits[i] = NAN;
        return;
    }
    amlfs_upload(m->ctx, m->act[0], x, (size_t)n * m->act_size[0] * sizeof(float));
    forward(m, ps, n, 0);
    int last = m->layer[m->nlayers - 1].out;
    amlfs_download(m->ctx, logits, m->act[last], (size_t)n * m->shape.classes * sizeof(float));
}

int amlfs_model_head_is_cosine(const amlfs_model *m)
{
    return m->layer[m->nlayers - 1].kind == L_COSINE;
}

int amlfs_model_embedding_dim(const amlfs_model *m)
{
    return (int)m->act_size[m->layer[m->nlayers - 1].in];
}

const amlfs_model_shape *amlfs_model_get_shape(const amlfs_model *m) { return &m->shape; }

void amlfs_model_embed(amlfs_model *m, const float *x, int n, float *features)
{
    int d = amlfs_model_embedding_dim(m);
    plan_set *ps = plans_for(m, n);
    if (!ps) {
        for (size_t i = 0; i < (size_t)n * d; i++)
            features[i] = NAN;
        return;
    }
    amlfs_upload(m->ctx, m->act[0], x, (size_t)n * m->act_size[0] * sizeof(float));
    forward(m, ps, n, 0);
    /* the head's input: plain (N, D) features, kept (the head writes a new activation) */
    amlfs_download(m->ctx, features, m->act[m->layer[m->nlayers - 1].in],
                   (size_t)n * d * sizeof(float));
}
