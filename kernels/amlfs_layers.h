/* amlfs_layers.h: the layers the built-in models (small-cnn, resnet20, sphere20, face-small)
 * are built from, their optimiser and learning-rate schedules (DESIGN.md 4).
 *
 * Three parts:
 *   1. the plain C reference: free functions on amlfs_real (float, or double when
 *      compiled with -DAMLFS_REAL_DOUBLE for the finite-difference test), in
 *      kernels/cpu/layers_ref.c. They define the semantics; every fast path is tested
 *      against them, and they against PyTorch.
 *   2. the fast path, device-neutral: a context per device, a plan per layer and shape
 *      (created once, reused every batch), float32 tensors in the context's memory
 *      (host memory on the CPU, device memory on a GPU). kernels/cpu implements it with
 *      oneDNN and OpenMP; a CUDA backend fills the same table (part 4).
 *   3. SGD with momentum and the learning-rate schedules.
 *
 * Conventions, the same for the reference and every backend:
 *   - tensors are dense, row-major: activations (N,C,H,W), convolution weights (K,C,R,S),
 *     linear weights (OUT,IN) and features (N,IN), as PyTorch stores them;
 *   - forward outputs are assigned;
 *   - activation gradients (din, da, db) are assigned;
 *   - parameter gradients (dw, dbias, dgamma, dbeta) are accumulated (+=), so the caller
 *     zeroes them once per batch; a NULL parameter gradient is not computed;
 *   - din may be NULL where the input needs no gradient (the first layer).
 * Output sizes follow PyTorch's floor rule: OH = (H + 2 pad - R) / stride + 1.
 */
#ifndef AMLFS_LAYERS_H
#define AMLFS_LAYERS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Activation layouts of the fast path (part 2). The reference (part 1) is plain only.
 *   PLAIN:  dense NCHW, as above.
 *   NATIVE: the backend's own layout for activations, the one its fastest kernels take:
 *           on the CPU oneDNN's blocked nChw16c (AVX-512) or nChw8c (otherwise):
 *           channels in blocks of B, element (n, c, h, w) at
 *           ((n ceil(C/B) + c/B) H W + h W + w) B + c%B, the last block padded with
 *           zeros; on CUDA the same as PLAIN.
 * A model keeps its activations native from layer to layer and converts only at its
 * edges (amlfs_act_convert); parameters and their gradients are always plain, and so
 * are (N,C) features. */
typedef enum { AMLFS_LAYOUT_PLAIN = 0, AMLFS_LAYOUT_NATIVE = 1 } amlfs_layout;

#ifdef AMLFS_REAL_DOUBLE
typedef double amlfs_real;
#else
typedef float amlfs_real;
#endif

/* ---- Shapes ----------------------------------------------------------------------- */

/* 2-D convolution, square kernel, the same stride and zero padding in both dims.
 * in (N,C,H,W), w (K,C,R,S), bias (K) when has_bias, out (N,K,OH,OW). */
typedef struct {
    int n, c, h, w; /* input */
    int k;          /* output channels */
    int r, s;       /* kernel height, width */
    int stride, pad;
    int has_bias;
    amlfs_layout in_layout, out_layout; /* the fast path's; weights are plain */
} amlfs_conv_shape;

int amlfs_conv_out_h(const amlfs_conv_shape *s);
int amlfs_conv_out_w(const amlfs_conv_shape *s);

/* Batch norm over (N,H,W) per channel, in and out (N,C,H,W); h = w = 1 for features
 * (N,C). PyTorch's defaults: eps 1e-5, momentum 0.1, running variance unbiased. */
typedef struct {
    int n, c, h, w;
    double eps;      /* AMLFS_BN_EPS */
    double momentum; /* AMLFS_BN_MOMENTUM: running = (1 - m) running + m batch */
    amlfs_layout layout; /* of in, out and their gradients, on the fast path */
} amlfs_bn_shape;

#define AMLFS_BN_EPS 1e-5
#define AMLFS_BN_MOMENTUM 0.1

/* Max or average pooling, square window, zero padding, floor output size.
 * in (N,C,H,W), out (N,C,OH,OW). Max pooling ignores the padding (never selected);
 * average pooling divides by kernel^2 when count_include_pad (PyTorch's default), else
 * by the number of input elements in the window. */
typedef enum { AMLFS_POOL_MAX = 0, AMLFS_POOL_AVG = 1 } amlfs_pool_kind;

typedef struct {
    int n, c, h, w;
    int kernel, stride, pad;
    amlfs_pool_kind kind;
    int count_include_pad; /* average pooling only */
    amlfs_layout layout;   /* of in, out and their gradients, on the fast path */
} amlfs_pool_shape;

int amlfs_pool_out_h(const amlfs_pool_shape *s);
int amlfs_pool_out_w(const amlfs_pool_shape *s);

/* Fully connected: in (N,IN), w (OUT,IN), bias (OUT) when has_bias, out (N,OUT);
 * out = in w^T + bias, as torch.nn.Linear. */
typedef struct {
    int n, in, out;
    int has_bias;
} amlfs_linear_shape;

/* The parameter-free shortcut of the CIFAR ResNets (He et al., option A): subsample by
 * `stride` and pad channels with zeros on both sides. in (N,C,H,W),
 * out (N,K,OH,OW) with K >= C, K - C even, OH = (H - 1) / stride + 1;
 * out[:, (K-C)/2 + c] = in[:, c, ::stride, ::stride], the other channels 0. */
typedef struct {
    int n, c, h, w;
    int k, stride;
    amlfs_layout layout; /* of in and out, on the fast path */
} amlfs_shortcut_shape;

int amlfs_shortcut_out_h(const amlfs_shortcut_shape *s);
int amlfs_shortcut_out_w(const amlfs_shortcut_shape *s);

/* PReLU with one slope per channel (torch.nn.PReLU(num_parameters = C)):
 * out = in where in > 0, else slope[c] in; in, out (N,C,H,W), slope (C). h = w = 1 for
 * features (N,C). */
typedef struct {
    int n, c, h, w;
    amlfs_layout layout; /* of in, out and their gradients, on the fast path */
} amlfs_prelu_shape;

/* The cosine head of CosFace / ArcFace before the margin: x (N,IN) features, w (OUT,IN)
 * class weights -> cos (N,OUT), cos[n][j] = (w_j / max(|w_j|, eps)) . (x_n / max(|x_n|,
 * eps)), eps = AMLFS_NORM_EPS (F.normalize's semantics: a row shorter than eps is
 * divided by eps, and its gradient is then the plain one divided by eps). */
typedef struct {
    int n, in, out;
} amlfs_cosine_shape;

#define AMLFS_NORM_EPS 1e-12

/* ---- 1. The reference (kernels/cpu/layers_ref.c) ---------------------------------- */
/* Single-threaded loops, sums accumulated in double. Written for clarity, not speed. */

/* in (N,C,H,W), w (K,C,R,S), bias (K) or NULL -> out (N,K,OH,OW) */
void ref_conv2d_forward(amlfs_real *out, const amlfs_real *in, const amlfs_real *w,
                        const amlfs_real *bias, const amlfs_conv_shape *s);
/* dout (N,K,OH,OW) -> din (N,C,H,W) assigned or NULL; dw (K,C,R,S) +=, dbias (K) +=
 * or NULL */
void ref_conv2d_backward(amlfs_real *din, amlfs_real *dw, amlfs_real *dbias,
                         const amlfs_real *dout, const amlfs_real *in, const amlfs_real *w,
                         const amlfs_conv_shape *s);

/* Training mode: normalise with the batch mean and biased variance; save them
 * (save_mean, save_var (C)) for the backward; update running_mean and running_var (C)
 * in place with the momentum, the variance unbiased (times M/(M-1), M = N H W).
 * in, out (N,C,H,W); gamma, beta (C). */
void ref_batchnorm_forward_train(amlfs_real *out, amlfs_real *save_mean, amlfs_real *save_var,
                                 amlfs_real *running_mean, amlfs_real *running_var,
                                 const amlfs_real *in, const amlfs_real *gamma,
                                 const amlfs_real *beta, const amlfs_bn_shape *s);
/* Inference mode: normalise with running_mean and running_var (C), which stay. */
void ref_batchnorm_forward_infer(amlfs_real *out, const amlfs_real *in, const amlfs_real *gamma,
                                 const amlfs_real *beta, const amlfs_real *running_mean,
                                 const amlfs_real *running_var, const amlfs_bn_shape *s);
/* Training mode backward, through the batch statistics. dout, in (N,C,H,W);
 * save_mean, save_var (C) from the forward -> din assigned or NULL; dgamma, dbeta +=. */
void ref_batchnorm_backward_train(amlfs_real *din, amlfs_real *dgamma, amlfs_real *dbeta,
                                  const amlfs_real *dout, const amlfs_real *in,
                                  const amlfs_real *gamma, const amlfs_real *save_mean,
                                  const amlfs_real *save_var, const amlfs_bn_shape *s);
/* Inference mode backward: the running statistics are constants. */
void ref_batchnorm_backward_infer(amlfs_real *din, amlfs_real *dgamma, amlfs_real *dbeta,
                                  const amlfs_real *dout, const amlfs_real *in,
                                  const amlfs_real *gamma, const amlfs_real *running_mean,
                                  const amlfs_real *running_var, const amlfs_bn_shape *s);

/* out = max(in, 0), n elements; out may equal in. */
void ref_relu_forward(amlfs_real *out, const amlfs_real *in, size_t n);
/* din = dout where out > 0, else 0 (the forward's output decides, as in PyTorch);
 * din may equal dout. */
void ref_relu_backward(amlfs_real *din, const amlfs_real *dout, const amlfs_real *out, size_t n);

/* in (N,C,H,W) -> out (N,C,OH,OW) */
void ref_pool_forward(amlfs_real *out, const amlfs_real *in, const amlfs_pool_shape *s);
/* dout (N,C,OH,OW) -> din (N,C,H,W) assigned. Max pooling routes each output's gradient
 * to the first maximum of its window in row-major order (PyTorch's choice on ties),
 * found again from in. */
void ref_pool_backward(amlfs_real *din, const amlfs_real *dout, const amlfs_real *in,
                       const amlfs_pool_shape *s);

/* Global average pooling: in (N,C,H,W) -> out (N,C), the mean over H W. */
void ref_global_avgpool_forward(amlfs_real *out, const amlfs_real *in, int n, int c, int hw);
/* dout (N,C) -> din (N,C,H,W) = dout / (H W), assigned. */
void ref_global_avgpool_backward(amlfs_real *din, const amlfs_real *dout, int n, int c, int hw);

/* in (N,IN), w (OUT,IN), bias (OUT) or NULL -> out (N,OUT) */
void ref_linear_forward(amlfs_real *out, const amlfs_real *in, const amlfs_real *w,
                        const amlfs_real *bias, const amlfs_linear_shape *s);
/* dout (N,OUT) -> din (N,IN) assigned or NULL; dw (OUT,IN) +=; dbias (OUT) += or NULL */
void ref_linear_backward(amlfs_real *din, amlfs_real *dw, amlfs_real *dbias,
                         const amlfs_real *dout, const amlfs_real *in, const amlfs_real *w,
                         const amlfs_linear_shape *s);

/* PReLU: in, out (N,C,H,W), slope (C); backward: din assigned (or NULL), dslope (C) +=
 * sum over n, h, w of dout in where in <= 0 (PyTorch's gradient: the slope branch is
 * taken where in > 0 is false). */
void ref_prelu_forward(amlfs_real *out, const amlfs_real *in, const amlfs_real *slope,
                       const amlfs_prelu_shape *s);
void ref_prelu_backward(amlfs_real *din, amlfs_real *dslope, const amlfs_real *dout,
                        const amlfs_real *in, const amlfs_real *slope, const amlfs_prelu_shape *s);

/* The cosine head: x (N,IN), w (OUT,IN) -> out (N,OUT). Backward: dout (N,OUT) ->
 * dx (N,IN) assigned or NULL, dw (OUT,IN) += or NULL. With u = x / |x| and
 * du = dout v (v the normalised w), dx = (du - u (u . du)) / |x| for |x| > eps, du / eps
 * otherwise; the same for w with dv = dout^T u. */
void ref_cosine_forward(amlfs_real *out, const amlfs_real *x, const amlfs_real *w,
                        const amlfs_cosine_shape *s);
void ref_cosine_backward(amlfs_real *dx, amlfs_real *dw, const amlfs_real *dout,
                         const amlfs_real *x, const amlfs_real *w, const amlfs_cosine_shape *s);

/* Residual add: out = a + b, n elements (out may equal a or b). Its backward is
 * da = db = dout; where one tensor feeds two branches, its gradient is the add of the
 * two branch gradients, so the forward serves for that join too. */
void ref_add_forward(amlfs_real *out, const amlfs_real *a, const amlfs_real *b, size_t n);
void ref_add_backward(amlfs_real *da, amlfs_real *db, const amlfs_real *dout, size_t n);

/* The option-A shortcut: in (N,C,H,W) -> out (N,K,OH,OW); backward dout -> din assigned. */
void ref_shortcut_forward(amlfs_real *out, const amlfs_real *in, const amlfs_shortcut_shape *s);
void ref_shortcut_backward(amlfs_real *din, const amlfs_real *dout,
                           const amlfs_shortcut_shape *s);

/* One SGD step, torch.optim.SGD's semantics (dampening 0), n elements:
 *   g = grad + weight_decay param
 *   buf = g on the first step, else momentum buf + g      (skipped when momentum = 0)
 *   d = g + momentum buf when nesterov, else buf           (d = g when momentum = 0)
 *   param -= lr d
 * momentum_buf (n) is read and written; NULL when momentum = 0. first_step: the
 * parameter has no momentum buffer yet (PyTorch's None). Rounded to float32 after each
 * operation in a float build, as PyTorch's float32 tensors are. */
void ref_sgd_step(amlfs_real *param, amlfs_real *momentum_buf, const amlfs_real *grad,
                  size_t n, double lr, double momentum, double weight_decay, int nesterov,
                  int first_step);

/* ---- 2. The fast path ------------------------------------------------------------- */

typedef enum { AMLFS_DEVICE_CPU = 0, AMLFS_DEVICE_CUDA = 1 } amlfs_device_kind;

typedef struct {
    amlfs_device_kind kind;
    int index; /* the GPU's ordinal; 0 on the CPU */
    int log;   /* 1: the backend says what it chose on stderr (CUDA: each convolution's
                * algorithms); the caller decides, the kernels read no environment */
} amlfs_device;

/* A device's state: the oneDNN engine and stream on the CPU; a CUDA backend's handles
 * and stream. Every plan and call below names one, and all tensors passed with it live
 * in its memory. The device is chosen here and nowhere else.
 * threads (CPU): the OpenMP thread count for oneDNN and the OpenMP loops
 * (omp_set_num_threads); 0 keeps the OpenMP default (OMP_NUM_THREADS, else the cores).
 * Set it before creating plans and leave it: oneDNN sizes a primitive's work split at
 * creation, and results are reproducible to the bit only for the same thread count and
 * CPU ISA (ONEDNN_MAX_CPU_ISA caps the ISA).
 * Returns NULL with a message in err when the device is unknown or absent (a build
 * without CUDA, a missing GPU). */
typedef struct amlfs_context amlfs_context;

amlfs_context *amlfs_context_create(amlfs_device device, int threads, char *err,
                                    size_t errlen);
void amlfs_context_destroy(amlfs_context *ctx);
amlfs_device amlfs_context_device(const amlfs_context *ctx);
/* The CPU threads the context uses: as asked, or with 0 the OpenMP default. */
int amlfs_context_threads(const amlfs_context *ctx);
/* One line for logs and the run's config: "cpu: oneDNN 2.6.3, ISA avx2, 2 threads". */
const char *amlfs_context_describe(const amlfs_context *ctx);

/* Memory of the context's device. alloc returns zeroed memory aligned to 64 bytes, or
 * NULL; the copies are synchronous; upload copies host -> device, download the other
 * way. wait() returns when all work issued on the context is done (a no-op on the CPU,
 * whose calls return when done). On the CPU any host memory serves (malloc'd too); code
 * meant for every device allocates with amlfs_alloc and copies with upload/download. */
void *amlfs_alloc(amlfs_context *ctx, size_t bytes);
void amlfs_free(amlfs_context *ctx, void *ptr);
void amlfs_upload(amlfs_context *ctx, void *dst_device, const void *src_host, size_t bytes);
void amlfs_download(amlfs_context *ctx, void *dst_host, const void *src_device, size_t bytes);
void amlfs_memzero(amlfs_context *ctx, void *ptr, size_t bytes);
void amlfs_wait(amlfs_context *ctx);

/* Activations: the number of floats an (N,C,H,W) activation takes in a layout (more
 * than N C H W where a native layout pads channels), and the conversion between layouts
 * (dst and src distinct, both in the context's memory; to == from copies). Padding a
 * native layout adds is zero after a conversion and after every layer that writes the
 * activation; element-wise layers over amlfs_act_floats elements keep it zero. */
size_t amlfs_act_floats(amlfs_context *ctx, amlfs_layout layout, int n, int c, int h, int w);
void amlfs_act_convert(amlfs_context *ctx, float *dst, amlfs_layout to, const float *src,
                       amlfs_layout from, int n, int c, int h, int w);

/* Plans: one per layer and shape (the batch size included), created once. Creation
 * returns NULL with a message in err on an invalid shape or a backend failure. Calls on
 * a plan are not thread-safe (a plan owns scratch space); separate plans may run on
 * separate threads. All calls have the reference's semantics above (float32 instead of
 * amlfs_real), parameter gradients accumulated the same way, on activations in the
 * layouts their shape names (plain when 0); only ReLU (out = in, din = dout), add
 * (out = a or b; da, db = dout), add_backward, PReLU's backward (din = dout) and batch
 * norm's training backward (din = dout) may run in place.
 * A CPU call that fails after its plan was made (not expected) prints why and aborts. */
typedef struct amlfs_conv_plan amlfs_conv_plan;
typedef struct amlfs_bn_plan amlfs_bn_plan;
typedef struct amlfs_pool_plan amlfs_pool_plan;
typedef struct amlfs_linear_plan amlfs_linear_plan;
typedef struct amlfs_cosine_plan amlfs_cosine_plan;

amlfs_conv_plan *amlfs_conv_plan_create(amlfs_context *ctx, const amlfs_conv_shape *s,
                                        char *err, size_t errlen);
void amlfs_conv_plan_destroy(amlfs_conv_plan *plan);
/* in (N,C,H,W), w (K,C,R,S), bias (K) or NULL (as the shape says) -> out (N,K,OH,OW) */
void amlfs_conv_forward(amlfs_conv_plan *plan, float *out, const float *in, const float *w,
                        const float *bias);
/* din assigned or NULL; dw +=; dbias += (NULL when the shape has no bias) */
void amlfs_conv_backward(amlfs_conv_plan *plan, float *din, float *dw, float *dbias,
                         const float *dout, const float *in, const float *w);

amlfs_bn_plan *amlfs_bn_plan_create(amlfs_context *ctx, const amlfs_bn_shape *s, char *err,
                                    size_t errlen);
void amlfs_bn_plan_destroy(amlfs_bn_plan *plan);
/* save_mean, save_var (C): the batch mean and biased variance, for the backward */
void amlfs_bn_forward_train(amlfs_bn_plan *plan, float *out, float *save_mean, float *save_var,
                            float *running_mean, float *running_var, const float *in,
                            const float *gamma, const float *beta);
void amlfs_bn_forward_infer(amlfs_bn_plan *plan, float *out, const float *in,
                            const float *gamma, const float *beta, const float *running_mean,
                            const float *running_var);
void amlfs_bn_backward_train(amlfs_bn_plan *plan, float *din, float *dgamma, float *dbeta,
                             const float *dout, const float *in, const float *gamma,
                             const float *save_mean, const float *save_var);
void amlfs_bn_backward_infer(amlfs_bn_plan *plan, float *din, float *dgamma, float *dbeta,
                             const float *dout, const float *in, const float *gamma,
                             const float *running_mean, const float *running_var);

amlfs_pool_plan *amlfs_pool_plan_create(amlfs_context *ctx, const amlfs_pool_shape *s,
                                        char *err, size_t errlen);
void amlfs_pool_plan_destroy(amlfs_pool_plan *plan);
/* Bytes of the workspace a training forward leaves for its backward (where the maxima
 * were); 0 when the backend needs none. The caller allocates it (amlfs_alloc) per
 * pooling layer, as it keeps the layer's activations. */
size_t amlfs_pool_workspace_bytes(const amlfs_pool_plan *plan);
/* in (N,C,H,W) -> out (N,C,OH,OW). workspace: for a backward to follow, else NULL
 * (inference). */
void amlfs_pool_forward(amlfs_pool_plan *plan, float *out, const float *in, void *workspace);
/* dout -> din assigned; in, out and workspace as the training forward left them. */
void amlfs_pool_backward(amlfs_pool_plan *plan, float *din, const float *dout, const float *in,
                         const float *out, const void *workspace);

amlfs_linear_plan *amlfs_linear_plan_create(amlfs_context *ctx, const amlfs_linear_shape *s,
                                            char *err, size_t errlen);
void amlfs_linear_plan_destroy(amlfs_linear_plan *plan);
void amlfs_linear_forward(amlfs_linear_plan *plan, float *out, const float *in, const float *w,
                          const float *bias);
void amlfs_linear_backward(amlfs_linear_plan *plan, float *din, float *dw, float *dbias,
                           const float *dout, const float *in, const float *w);

/* The cosine head: a plan (it keeps the normalised rows and their norms as scratch). */
amlfs_cosine_plan *amlfs_cosine_plan_create(amlfs_context *ctx, const amlfs_cosine_shape *s,
                                            char *err, size_t errlen);
void amlfs_cosine_plan_destroy(amlfs_cosine_plan *plan);
/* x (N,IN), w (OUT,IN) -> out (N,OUT) */
void amlfs_cosine_forward(amlfs_cosine_plan *plan, float *out, const float *x, const float *w);
/* dx assigned or NULL; dw += or NULL */
void amlfs_cosine_backward(amlfs_cosine_plan *plan, float *dx, float *dw, const float *dout,
                           const float *x, const float *w);

/* Element-wise layers and global pooling need no plan. The element-wise ones take n
 * floats in any one layout (amlfs_act_floats). Global average pooling reads (N,C,H,W)
 * in `layout` and writes or reads plain (N,C) features. */
void amlfs_relu_forward(amlfs_context *ctx, float *out, const float *in, size_t n);
void amlfs_relu_backward(amlfs_context *ctx, float *din, const float *dout, const float *out,
                         size_t n);
/* PReLU on (N,C,H,W) in the shape's layout; dslope (C) += or NULL, din or NULL. */
void amlfs_prelu_forward(amlfs_context *ctx, float *out, const float *in, const float *slope,
                         const amlfs_prelu_shape *s);
void amlfs_prelu_backward(amlfs_context *ctx, float *din, float *dslope, const float *dout,
                          const float *in, const float *slope, const amlfs_prelu_shape *s);
void amlfs_add_forward(amlfs_context *ctx, float *out, const float *a, const float *b,
                       size_t n);
void amlfs_add_backward(amlfs_context *ctx, float *da, float *db, const float *dout, size_t n);
void amlfs_global_avgpool_forward(amlfs_context *ctx, float *out, const float *in, int n,
                                  int c, int h, int w, amlfs_layout layout);
void amlfs_global_avgpool_backward(amlfs_context *ctx, float *din, const float *dout, int n,
                                   int c, int h, int w, amlfs_layout layout);
void amlfs_shortcut_forward(amlfs_context *ctx, float *out, const float *in,
                            const amlfs_shortcut_shape *s);
void amlfs_shortcut_backward(amlfs_context *ctx, float *din, const float *dout,
                             const amlfs_shortcut_shape *s);

/* ---- 3. Optimiser and schedules --------------------------------------------------- */

/* ref_sgd_step's semantics on the context's memory; param, momentum_buf, grad (n). */
void amlfs_sgd_step(amlfs_context *ctx, float *param, float *momentum_buf, const float *grad,
                    size_t n, double lr, double momentum, double weight_decay, int nesterov,
                    int first_step);

/* Learning rate as a function of training progress t in epochs: t = (e - 1) + b / B at
 * the start of batch b (from 0) of B in epoch e (from 1), so per-iteration granularity.
 *   warm-up, t < warmup:  lr = base_lr t / warmup (linear from 0; the first batch of a
 *                         warm-up has lr 0)
 *   cosine, t >= warmup:  lr = base_lr (1 + cos(pi (t - warmup) / (epochs - warmup))) / 2,
 *                         reaching 0 at t = epochs and staying there
 *   step, t >= warmup:    lr = base_lr gamma^floor(t / step), steps counted from t = 0
 *   step with milestones m_1 < m_2 < ... (epochs), t >= warmup:
 *                         lr = base_lr gamma^#{i : m_i <= t}, PyTorch's MultiStepLR:
 *                         with integer milestones the rate of every batch of epoch e is
 *                         MultiStepLR's for epoch e - 1 (stepped once per epoch), since
 *                         #{m_i <= (e - 1) + b/B} = #{m_i <= e - 1}; a fractional
 *                         milestone (an iteration count over the batches per epoch) takes
 *                         effect at the first batch whose start t reaches it
 * t < 0 is taken as 0. */
typedef enum { AMLFS_SCHEDULE_COSINE = 0, AMLFS_SCHEDULE_STEP = 1 } amlfs_schedule_kind;

#define AMLFS_MAX_MILESTONES 32

typedef struct {
    amlfs_schedule_kind kind;
    double base_lr;
    double epochs; /* cosine: the run's length in epochs (> warmup) */
    double warmup; /* epochs of linear warm-up, >= 0 */
    double step;   /* step: epochs between decays (> 0) */
    double gamma;  /* step: the decay factor */
    int nmilestones; /* step: 0 (every `step` epochs), or the number of milestones */
    double milestones[AMLFS_MAX_MILESTONES]; /* step: increasing epochs > 0 */
} amlfs_schedule;

double amlfs_lr_at(const amlfs_schedule *s, double epoch_progress);

/* ---- 4. Backends (for kernels/cpu and kernels/cuda only) ------------------------- */
/* The dispatch (kernels/cpu/layers_device.c) calls through one table per device; a
 * backend implements every entry. Plans reach the backend as its own opaque `impl`.
 * The CUDA backend provides amlfs_cuda_backend(); a build without it has none, and
 * amlfs_context_create refuses a CUDA device. */
typedef struct {
    const char *name;
    /* the device's state; describe writes one line into buf */
    void *(*context_create)(amlfs_device device, int threads, char *err, size_t errlen);
    void (*context_destroy)(void *dev);
    void (*describe)(void *dev, char *buf, size_t len);
    void *(*alloc)(void *dev, size_t bytes);
    void (*free)(void *dev, void *ptr);
    void (*upload)(void *dev, void *dst, const void *src, size_t bytes);
    void (*download)(void *dev, void *dst, const void *src, size_t bytes);
    void (*memzero)(void *dev, void *ptr, size_t bytes);
    void (*wait)(void *dev);
    size_t (*act_floats)(void *dev, amlfs_layout layout, int n, int c, int h, int w);
    void (*act_convert)(void *dev, float *dst, amlfs_layout to, const float *src,
                        amlfs_layout from, int n, int c, int h, int w);

    void *(*conv_create)(void *dev, const amlfs_conv_shape *s, char *err, size_t errlen);
    void (*conv_destroy)(void *impl);
    void (*conv_forward)(void *impl, float *out, const float *in, const float *w,
                         const float *bias);
    void (*conv_backward)(void *impl, float *din, float *dw, float *dbias, const float *dout,
                          const float *in, const float *w);

    void *(*bn_create)(void *dev, const amlfs_bn_shape *s, char *err, size_t errlen);
    void (*bn_destroy)(void *impl);
    void (*bn_forward_train)(void *impl, float *out, float *save_mean, float *save_var,
                             float *running_mean, float *running_var, const float *in,
                             const float *gamma, const float *beta);
    void (*bn_forward_infer)(void *impl, float *out, const float *in, const float *gamma,
                             const float *beta, const float *running_mean,
                             const float *running_var);
    void (*bn_backward_train)(void *impl, float *din, float *dgamma, float *dbeta,
                              const float *dout, const float *in, const float *gamma,
                              const float *save_mean, const float *save_var);
    void (*bn_backward_infer)(void *impl, float *din, float *dgamma, float *dbeta,
                              const float *dout, const float *in, const float *gamma,
                              const float *running_mean, const float *running_var);

    void *(*pool_create)(void *dev, const amlfs_pool_shape *s, char *err, size_t errlen);
    void (*pool_destroy)(void *impl);
    size_t (*pool_workspace_bytes)(const void *impl);
    void (*pool_forward)(void *impl, float *out, const float *in, void *workspace);
    void (*pool_backward)(void *impl, float *din, const float *dout, const float *in,
                          const float *out, const void *workspace);

    void *(*linear_create)(void *dev, const amlfs_linear_shape *s, char *err, size_t errlen);
    void (*linear_destroy)(void *impl);
    void (*linear_forward)(void *impl, float *out, const float *in, const float *w,
                           const float *bias);
    void (*linear_backward)(void *impl, float *din, float *dw, float *dbias,
                            const float *dout, const float *in, const float *w);

    void *(*cosine_create)(void *dev, const amlfs_cosine_shape *s, char *err, size_t errlen);
    void (*cosine_destroy)(void *impl);
    void (*cosine_forward)(void *impl, float *out, const float *x, const float *w);
    void (*cosine_backward)(void *impl, float *dx, float *dw, const float *dout,
                            const float *x, const float *w);
    void (*prelu_forward)(void *dev, float *out, const float *in, const float *slope,
                          const amlfs_prelu_shape *s);
    void (*prelu_backward)(void *dev, float *din, float *dslope, const float *dout,
                           const float *in, const float *slope, const amlfs_prelu_shape *s);

    void (*relu_forward)(void *dev, float *out, const float *in, size_t n);
    void (*relu_backward)(void *dev, float *din, const float *dout, const float *out,
                          size_t n);
    void (*add_forward)(void *dev, float *out, const float *a, const float *b, size_t n);
    void (*add_backward)(void *dev, float *da, float *db, const float *dout, size_t n);
    void (*global_avgpool_forward)(void *dev, float *out, const float *in, int n, int c,
                                   int h, int w, amlfs_layout layout);
    void (*global_avgpool_backward)(void *dev, float *din, const float *dout, int n, int c,
                                    int h, int w, amlfs_layout layout);
    void (*shortcut_forward)(void *dev, float *out, const float *in,
                             const amlfs_shortcut_shape *s);
    void (*shortcut_backward)(void *dev, float *din, const float *dout,
                              const amlfs_shortcut_shape *s);
    void (*sgd_step)(void *dev, float *param, float *momentum_buf, const float *grad,
                     size_t n, double lr, double momentum, double weight_decay, int nesterov,
                     int first_step);
} amlfs_backend;

/* kernels/cpu: oneDNN (layers_dnnl.c) and OpenMP (layers_omp.c). */
const amlfs_backend *amlfs_cpu_backend(void);
/* kernels/cuda, when linked: the dispatch refers to it weakly, so the object defining it
 * must be linked as an object, not only from an archive. */
const amlfs_backend *amlfs_cuda_backend(void);

/* The CPU backend's OpenMP entries (layers_omp.c), for its table in layers_dnnl.c. */
void amlfs_cpu_relu_forward(void *dev, float *out, const float *in, size_t n);
void amlfs_cpu_relu_backward(void *dev, float *din, const float *dout, const float *out,
                             size_t n);
void amlfs_cpu_add_forward(void *dev, float *out, const float *a, const float *b, size_t n);
void amlfs_cpu_add_backward(void *dev, float *da, float *db, const float *dout, size_t n);
void amlfs_cpu_global_avgpool_forward(void *dev, float *out, const float *in, int n, int c,
                                      int h, int w, amlfs_layout layout);
void amlfs_cpu_global_avgpool_backward(void *dev, float *din, const float *dout, int n, int c,
                                       int h, int w, amlfs_layout layout);
/* The CPU's native layout: its channel block (16 or 8), the floats of an activation, and
 * the conversion (layers_omp.c). */
int amlfs_cpu_block(void);
size_t amlfs_cpu_act_floats(void *dev, amlfs_layout layout, int n, int c, int h, int w);
void amlfs_cpu_act_convert(void *dev, float *dst, amlfs_layout to, const float *src,
                           amlfs_layout from, int n, int c, int h, int w);
void amlfs_cpu_shortcut_forward(void *dev, float *out, const float *in,
                                const amlfs_shortcut_shape *s);
void amlfs_cpu_shortcut_backward(void *dev, float *din, const float *dout,
                                 const amlfs_shortcut_shape *s);
void amlfs_cpu_prelu_forward(void *dev, float *out, const float *in, const float *slope,
                             const amlfs_prelu_shape *s);
void amlfs_cpu_prelu_backward(void *dev, float *din, float *dslope, const float *dout,
                              const float *in, const float *slope, const amlfs_prelu_shape *s);
/* The cosine head's row arithmetic (layers_omp.c), for its plan in layers_dnnl.c:
 * norm[r] = max(|a_r|, eps) and u_r = a_r / norm[r] for the rows of a (rows, cols);
 * and the projection g_r = (du_r - u_r (u_r . du_r)) / norm[r] (du_r / eps where the row
 * is shorter than eps), assigned (accumulate 0) or added (1) to g. */
void amlfs_cpu_rows_normalize(float *u, float *norm, const float *a, int rows, int cols);
void amlfs_cpu_rows_project(float *g, const float *du, const float *u, const float *norm,
                            int rows, int cols, int accumulate);
void amlfs_cpu_sgd_step(void *dev, float *param, float *momentum_buf, const float *grad,
                        size_t n, double lr, double momentum, double weight_decay, int nesterov,
                        int first_step);

/* Shape checks shared by the backends: 0 when valid, else -1 with a message in err. */
int amlfs_conv_shape_check(const amlfs_conv_shape *s, char *err, size_t errlen);
int amlfs_bn_shape_check(const amlfs_bn_shape *s, char *err, size_t errlen);
int amlfs_pool_shape_check(const amlfs_pool_shape *s, char *err, size_t errlen);
int amlfs_linear_shape_check(const amlfs_linear_shape *s, char *err, size_t errlen);
int amlfs_shortcut_shape_check(const amlfs_shortcut_shape *s, char *err, size_t errlen);
int amlfs_prelu_shape_check(const amlfs_prelu_shape *s, char *err, size_t errlen);
int amlfs_cosine_shape_check(const amlfs_cosine_shape *s, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
