/* layers.cu: the CUDA backend of the layer interface (amlfs_layers.h, part 4): one GPU,
 * one stream, cuDNN for convolution, cuBLAS for linear, and the kernels of
 * elementwise.cuh, pool.cuh and batchnorm.cuh for the rest. Semantics: the reference,
 * kernels/cpu/layers_ref.c.
 *
 * Device state: the GPU's ordinal, a stream of its own (blocking, so that work on the
 * legacy default stream still orders with it), cuDNN and cuBLAS handles bound to that
 * stream. Every call is issued on the stream and returns without waiting, except the
 * copies (upload, download: synchronous, as the interface says), alloc and wait.
 * Activations are NCHW in both layouts: NATIVE is PLAIN on CUDA.
 *
 * Precision and reproducibility:
 *   - float32 stays float32: convolutions run with CUDNN_FMA_MATH (CUDNN_DEFAULT_MATH
 *     lets cuDNN use TF32 tensor cores on Ampere and later, 10-bit mantissas; FMA_MATH
 *     is what PyTorch sets when allow_tf32 is off), cuBLAS in CUBLAS_PEDANTIC_MATH (no
 *     TF32, no reduced-precision emulation);
 *   - the same bits on every run: each convolution algorithm is chosen once, from
 *     cuDNN's heuristics (a fixed ranking, never a timed search whose winner could
 *     change between runs), among those cuDNN reports CUDNN_DETERMINISTIC; every other
 *     sum is ours and has a fixed order (no floating-point atomics); one stream.
 *   - parameter gradients are accumulated (+=): cuDNN's backward filter writes a plan's
 *     scratch, which is then added, as the CPU backend does; bias gradients and batch
 *     norm's sums are ours, in double.
 * A failing CUDA, cuDNN or cuBLAS call after a plan exists (not expected) prints
 * "amlfs: cuda: <what>: <error>" and aborts, as the CPU backend does; creation failures
 * return NULL with the message in err. A device with log = 1 (the tools set it from
 * AMLFS_CUDA_LOG=1) prints each convolution plan's algorithms to stderr.
 */
#include "amlfs_layers.h"
#include "cuda/batchnorm.cuh"
#include "cuda/elementwise.cuh"
#include "cuda/face.cuh"
#include "cuda/pool.cuh"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int index;
    int log; /* amlfs_device.log: each convolution's algorithms on stderr */
    cudaStream_t stream;
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    cudaDeviceProp prop;
    /* The convolutions' workspace, one for every plan of the context: all work runs in
     * order on the one stream, so plans take turns with it. It grows when a plan needs
     * more (at a convolution plan's creation, after the stream is drained). */
    void *workspace;
    size_t workspace_bytes;
} cuda_dev;

/* ---- Errors ----------------------------------------------------------------------- */

static void die(const char *what, const char *why)
{
    fprintf(stderr, "amlfs: cuda: %s: %s\n", what, why);
    abort();
}

static void cuda_ok(cudaError_t e, const char *what)
{
    if (e != cudaSuccess)
        die(what, cudaGetErrorString(e));
}

static void cudnn_ok(cudnnStatus_t s, const char *what)
{
    if (s != CUDNN_STATUS_SUCCESS)
        die(what, cudnnGetErrorString(s));
}

static void cublas_ok(cublasStatus_t s, const char *what)
{
    if (s != CUBLAS_STATUS_SUCCESS)
        die(what, cublasGetStatusString(s));
}

/* A kernel launch: its configuration errors show at once, its faults at the next
 * synchronisation (a copy or wait), under that call's name. */
static void launched(const char *what) { cuda_ok(cudaGetLastError(), what); }

/* Calls on a context may come from any host thread: make its GPU current. */
static void use(const cuda_dev *d) { cuda_ok(cudaSetDevice(d->index), "cudaSetDevice"); }

/* Creation steps: on failure the message into err and a jump to the cleanup. */
#define TRY_CUDA(call, what)                                                             \
    do {                                                                                 \
        cudaError_t e_ = (call);                                                         \
        if (e_ != cudaSuccess) {                                                         \
            snprintf(err, errlen, "cuda:%d: %s: %s", d->index, (what),                   \
                     cudaGetErrorString(e_));                                            \
            cudaGetLastError();                                                          \
            goto fail;                                                                   \
        }                                                                                \
    } while (0)
#define TRY_CUDNN(call, what)                                                            \
    do {                                                                                 \
        cudnnStatus_t s_ = (call);                                                       \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                \
            snprintf(err, errlen, "cuda:%d: cuDNN: %s: %s", d->index, (what),            \
                     cudnnGetErrorString(s_));                                           \
            goto fail;                                                                   \
        }                                                                                \
    } while (0)
#define TRY_CUBLAS(call, what)                                                           \
    do {                                                                                 \
        cublasStatus_t s_ = (call);                                                      \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                               \
            snprintf(err, errlen, "cuda:%d: cuBLAS: %s: %s", d->index, (what),           \
                     cublasGetStatusString(s_));                                         \
            goto fail;                                                                   \
        }                                                                                \
    } while (0)

/* Blocks for n elements of a grid-stride kernel: enough to fill the GPU, capped. */
static unsigned grid_for(size_t n)
{
    size_t blocks = (n + EW_BLOCK - 1) / EW_BLOCK;
    return (unsigned)(blocks < (1u << 20) ? blocks : (1u << 20));
}

static unsigned grid_channels(int channels) { return (unsigned)((channels + 127) / 128); }

/* ---- Device state and memory ------------------------------------------------------ */

static void cuda_context_destroy(void *dev);

static void *cuda_context_create(amlfs_device device, int threads, char *err, size_t errlen)
{
    (void)threads; /* CPU threads: nothing to set on a GPU */
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(err, errlen, "cuda:%d: no usable GPU (%s)", device.index, cudaGetErrorString(e));
        cudaGetLastError();
        return NULL;
    }
    if (device.index < 0 || device.index >= count) {
        snprintf(err, errlen, "cuda:%d: no such GPU (%d found)", device.index, count);
        return NULL;
    }
    cuda_dev *d = (cuda_dev *)calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->index = device.index;
    d->log = device.log;
    TRY_CUDA(cudaSetDevice(d->index), "cudaSetDevice");
    TRY_CUDA(cudaGetDeviceProperties(&d->prop, d->index), "cudaGetDeviceProperties");
    TRY_CUDA(cudaStreamCreate(&d->stream), "cudaStreamCreate");
    TRY_CUDNN(cudnnCreate(&d->cudnn), "cudnnCreate");
    TRY_CUDNN(cudnnSetStream(d->cudnn, d->stream), "cudnnSetStream");
    TRY_CUBLAS(cublasCreate(&d->cublas), "cublasCreate");
    TRY_CUBLAS(cublasSetStream(d->cublas, d->stream), "cublasSetStream");
    TRY_CUBLAS(cublasSetMathMode(d->cublas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
    return d;
fail:
    cuda_context_destroy(d);
    return NULL;
}

static void cuda_context_destroy(void *dev)
{
    cuda_dev *d = (cuda_dev *)dev;
    if (!d)
        return;
    cudaSetDevice(d->index);
    if (d->stream)
        cudaStreamSynchronize(d->stream);
    if (d->cublas)
        cublasDestroy(d->cublas);
    if (d->cudnn)
        cudnnDestroy(d->cudnn);
    if (d->stream)
        cudaStreamDestroy(d->stream);
    cudaFree(d->workspace);
    free(d);
}

static void cuda_describe(void *dev, char *buf, size_t len)
{
    cuda_dev *d = (cuda_dev *)dev;
    int runtime = 0;
    cudaRuntimeGetVersion(&runtime);
    size_t v = cudnnGetVersion(); /* cuDNN 9: major 10000 + minor 100 + patch */
    snprintf(buf, len, "cuda:%d: %s, CUDA %d.%d, cuDNN %zu.%zu.%zu, %.1f GiB", d->index,
             d->prop.name, runtime / 1000, runtime % 1000 / 10, v / 10000, v % 10000 / 100,
             v % 100, (double)d->prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
}

/* Zeroed, 256-byte aligned (cudaMalloc's), or NULL when the GPU's memory is full. */
static void *cuda_alloc(void *dev, size_t bytes)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure is not sticky: clear it */
        return NULL;
    }
    cuda_ok(cudaMemsetAsync(p, 0, bytes ? bytes : 1, d->stream), "alloc: zeroing");
    cuda_ok(cudaStreamSynchronize(d->stream), "alloc: zeroing");
    return p;
}

static void cuda_free(void *dev, void *ptr)
{
    use((cuda_dev *)dev);
    cuda_ok(cudaFree(ptr), "cudaFree");
}

static void cuda_upload(void *dev, void *dst, const void *src, size_t bytes)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, d->stream), "upload");
    cuda_ok(cudaStreamSynchronize(d->stream), "upload");
}

static void cuda_download(void *dev, void *dst, const void *src, size_t bytes)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, d->stream), "download");
    cuda_ok(cudaStreamSynchronize(d->stream), "download");
}

static void cuda_memzero(void *dev, void *ptr, size_t bytes)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    if (bytes)
        cuda_ok(cudaMemsetAsync(ptr, 0, bytes, d->stream), "memzero");
}

static void cuda_wait(void *dev)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    cuda_ok(cudaStreamSynchronize(d->stream), "wait");
}

static size_t cuda_act_floats(void *dev, amlfs_layout layout, int n, int c, int h, int w)
{
    (void)dev, (void)layout; /* NATIVE is NCHW, as PLAIN */
    return (size_t)n * c * h * w;
}

static void cuda_act_convert(void *dev, float *dst, amlfs_layout to, const float *src,
                             amlfs_layout from, int n, int c, int h, int w)
{
    (void)to, (void)from;
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    size_t bytes = (size_t)n * c * h * w * sizeof(float);
    if (dst != src && bytes)
        cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, d->stream),
                "act_convert");
}

/* ---- Per-channel sums (batch norm, convolution's bias gradient) -------------------- */

/* How a channel's M elements are cut into parts: about 2 blocks per SM of an H100 over
 * all channels, at least 4096 elements a part. A function of the shape alone, so the
 * sums are the same on any GPU. */
static int channel_parts(int channels, long long m)
{
    long long by_size = (m + 4095) / 4096, by_blocks = 512 / channels;
    long long parts = by_size < by_blocks ? by_size : by_blocks;
    return parts < 1 ? 1 : (int)parts;
}

typedef struct {
    int channels, hw, parts;
    long long m, chunk;
    double2 *partials; /* channels x parts */
} channel_sums;

static int channel_sums_init(channel_sums *cs, int n, int channels, int hw, char *err,
                             size_t errlen, const cuda_dev *d)
{
    cs->channels = channels;
    cs->hw = hw;
    cs->m = (long long)n * hw;
    cs->parts = channel_parts(channels, cs->m);
    cs->chunk = (cs->m + cs->parts - 1) / cs->parts;
    if (channels > 65535) { /* gridDim.y */
        snprintf(err, errlen, "cuda:%d: %d channels: at most 65535", d->index, channels);
        return -1;
    }
    TRY_CUDA(cudaMalloc(&cs->partials, (size_t)channels * cs->parts * sizeof(double2)),
             "cudaMalloc (channel sums)");
    return 0;
fail:
    return -1;
}

template <class Term>
static void channel_partials(const cuda_dev *d, const channel_sums *cs, Term term,
                             const char *what)
{
    dim3 grid((unsigned)cs->parts, (unsigned)cs->channels);
    channel_partials_kernel<Term><<<grid, CS_BLOCK, 0, d->stream>>>(
        cs->partials, term, cs->channels, cs->hw, cs->m, cs->chunk, cs->parts);
    launched(what);
}

/* ---- Convolution ------------------------------------------------------------------ */

/* A convolution plan: cuDNN's descriptors, the three algorithms chosen once, the size of
 * the workspace they need (the context's, shared by all plans), the weight gradient's
 * scratch and the bias gradient's sums. */
typedef struct {
    cuda_dev *d;
    amlfs_conv_shape s;
    int oh, ow;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t workspace_bytes; /* this plan's need; the context's workspace has it */
    float *dw_scratch; /* backward filter's result, then added to dw */
    channel_sums bias_sums;
} conv_plan;

/* No algorithm may take more workspace than this (one, shared by the context's plans). */
#define CONV_WORKSPACE_LIMIT ((size_t)256 << 20)

/* From cuDNN's heuristic ranking (perf, best first), the first algorithm that is
 * deterministic, in FMA math (full float32), whose workspace cuDNN sizes and that fits:
 * 0 with *algo and *bytes; else the fallback when cuDNN sizes it: 1; else -1. The
 * fallbacks: implicit GEMM forward and the ALGO_1 backward ones, which cuDNN documents
 * as deterministic. */
template <class Perf, class Algo, class Size>
static int choose_algo(const Perf *perf, int returned, Algo fallback, Size size, Algo *algo,
                       size_t *bytes)
{
    for (int i = 0; i < returned; i++) {
        size_t b = 0;
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC &&
            perf[i].mathType == CUDNN_FMA_MATH && size(perf[i].algo, &b) == CUDNN_STATUS_SUCCESS &&
            b <= CONV_WORKSPACE_LIMIT) {
            *algo = perf[i].algo;
            *bytes = b;
            return 0;
        }
    }
    if (size(fallback, bytes) != CUDNN_STATUS_SUCCESS)
        return -1;
    *algo = fallback;
    return 1;
}

static void cuda_conv_destroy(void *impl)
{
    conv_plan *p = (conv_plan *)impl;
    if (!p)
        return;
    cudaSetDevice(p->d->index);
    cudaStreamSynchronize(p->d->stream);
    if (p->x)
        cudnnDestroyTensorDescriptor(p->x);
    if (p->y)
        cudnnDestroyTensorDescriptor(p->y);
    if (p->w)
        cudnnDestroyFilterDescriptor(p->w);
    if (p->conv)
        cudnnDestroyConvolutionDescriptor(p->conv);
    cudaFree(p->dw_scratch);
    cudaFree(p->bias_sums.partials);
    free(p);
}

static void *cuda_conv_create(void *dev, const amlfs_conv_shape *s, char *err, size_t errlen)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    conv_plan *p = (conv_plan *)calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->d = d;
    p->s = *s; /* in_layout, out_layout: NCHW either way on CUDA */
    p->oh = amlfs_conv_out_h(s);
    p->ow = amlfs_conv_out_w(s);
    int on = 0, oc = 0, oh = 0, ow = 0, fallback[3] = {0, 0, 0};
    size_t bytes = 0, most = 0;
    TRY_CUDNN(cudnnCreateTensorDescriptor(&p->x), "tensor descriptor");
    TRY_CUDNN(cudnnCreateTensorDescriptor(&p->y), "tensor descriptor");
    TRY_CUDNN(cudnnCreateFilterDescriptor(&p->w), "filter descriptor");
    TRY_CUDNN(cudnnCreateConvolutionDescriptor(&p->conv), "convolution descriptor");
    TRY_CUDNN(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->c,
                                         s->h, s->w),
              "input descriptor");
    TRY_CUDNN(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->k, s->c,
                                         s->r, s->s),
              "filter descriptor");
    TRY_CUDNN(cudnnSetConvolution2dDescriptor(p->conv, s->pad, s->pad, s->stride, s->stride, 1,
                                              1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
              "convolution descriptor");
    TRY_CUDNN(cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH), "math type");
    TRY_CUDNN(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &oh, &ow),
              "output size");
    if (on != s->n || oc != s->k || oh != p->oh || ow != p->ow) {
        snprintf(err, errlen, "cuda:%d: cuDNN's output %dx%dx%dx%d, expected %dx%dx%dx%d",
                 d->index, on, oc, oh, ow, s->n, s->k, p->oh, p->ow);
        goto fail;
    }
    TRY_CUDNN(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->k,
                                         p->oh, p->ow),
              "output descriptor");

    /* The heuristics' ranking, best first: the first deterministic FMA-math algorithm
     * whose workspace cuDNN can size and that fits, else the fallback. */
    {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int returned = 0;
        TRY_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(d->cudnn, p->x, p->w, p->conv, p->y,
                                                         CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                         &returned, perf),
                  "forward algorithms");
        auto size = [&](cudnnConvolutionFwdAlgo_t a, size_t *b) {
            return cudnnGetConvolutionForwardWorkspaceSize(d->cudnn, p->x, p->w, p->conv, p->y, a,
                                                           b);
        };
        fallback[0] = choose_algo(perf, returned, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, size,
                                  &p->fwd, &bytes);
        if (fallback[0] < 0) {
            snprintf(err, errlen, "cuda:%d: cuDNN: no forward algorithm for this convolution",
                     d->index);
            goto fail;
        }
        most = bytes > most ? bytes : most;
    }
    {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        int returned = 0;
        TRY_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(
                      d->cudnn, p->w, p->y, p->conv, p->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                      &returned, perf),
                  "backward data algorithms");
        auto size = [&](cudnnConvolutionBwdDataAlgo_t a, size_t *b) {
            return cudnnGetConvolutionBackwardDataWorkspaceSize(d->cudnn, p->w, p->y, p->conv,
                                                                p->x, a, b);
        };
        fallback[1] = choose_algo(perf, returned, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, size,
                                  &p->bwd_data, &bytes);
        if (fallback[1] < 0) {
            snprintf(err, errlen,
                     "cuda:%d: cuDNN: no deterministic backward data algorithm for this "
                     "convolution",
                     d->index);
            goto fail;
        }
        most = bytes > most ? bytes : most;
    }
    {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        int returned = 0;
        TRY_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                      d->cudnn, p->x, p->y, p->conv, p->w,
                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, perf),
                  "backward filter algorithms");
        auto size = [&](cudnnConvolutionBwdFilterAlgo_t a, size_t *b) {
            return cudnnGetConvolutionBackwardFilterWorkspaceSize(d->cudnn, p->x, p->y, p->conv,
                                                                  p->w, a, b);
        };
        fallback[2] = choose_algo(perf, returned, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, size,
                                  &p->bwd_filter, &bytes);
        if (fallback[2] < 0) {
            snprintf(err, errlen,
                     "cuda:%d: cuDNN: no deterministic backward filter algorithm for this "
                     "convolution",
                     d->index);
            goto fail;
        }
        most = bytes > most ? bytes : most;
    }
    p->workspace_bytes = most;
    if (most > d->workspace_bytes) { /* the context's shared workspace grows to fit */
        TRY_CUDA(cudaStreamSynchronize(d->stream), "cudaStreamSynchronize");
        cudaFree(d->workspace);
        d->workspace = NULL;
        d->workspace_bytes = 0;
        TRY_CUDA(cudaMalloc(&d->workspace, most), "cudaMalloc (convolution workspace)");
        d->workspace_bytes = most;
    }
    TRY_CUDA(cudaMalloc(&p->dw_scratch, (size_t)s->k * s->c * s->r * s->s * sizeof(float)),
             "cudaMalloc (weight gradient)");
    if (s->has_bias &&
        channel_sums_init(&p->bias_sums, s->n, s->k, p->oh * p->ow, err, errlen, d) != 0)
        goto fail;
    if (d->log)
        fprintf(stderr,
                "amlfs: cuda: conv n %d c %d h %d w %d k %d r %d s %d stride %d pad %d: "
                "forward algo %d%s, backward data algo %d%s, backward filter algo %d%s, "
                "workspace %zu bytes\n",
                s->n, s->c, s->h, s->w, s->k, s->r, s->s, s->stride, s->pad, (int)p->fwd,
                fallback[0] ? " (fallback)" : "", (int)p->bwd_data,
                fallback[1] ? " (fallback)" : "", (int)p->bwd_filter,
                fallback[2] ? " (fallback)" : "", most);
    return p;
fail:
    cuda_conv_destroy(p);
    return NULL;
}

static void cuda_conv_forward(void *impl, float *out, const float *in, const float *w,
                              const float *bias)
{
    conv_plan *p = (conv_plan *)impl;
    const cuda_dev *d = p->d;
    use(d);
    const float one = 1.0f, zero = 0.0f;
    cudnn_ok(cudnnConvolutionForward(d->cudnn, &one, p->x, in, p->w, w, p->conv, p->fwd,
                                     d->workspace, p->workspace_bytes, &zero, p->y, out),
             "convolution forward");
    if (bias && p->s.has_bias) {
        size_t hw = (size_t)p->oh * p->ow, n = (size_t)p->s.n * p->s.k * hw;
        bias_planes_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(out, bias, p->s.k, hw, n);
        launched("convolution bias");
    }
}

static void cuda_conv_backward(void *impl, float *din, float *dw, float *dbias, const float *dout,
                               const float *in, const float *w)
{
    conv_plan *p = (conv_plan *)impl;
    const cuda_dev *d = p->d;
    const amlfs_conv_shape *s = &p->s;
    use(d);
    const float one = 1.0f, zero = 0.0f;
    if (din)
        cudnn_ok(cudnnConvolutionBackwardData(d->cudnn, &one, p->w, w, p->y, dout, p->conv,
                                              p->bwd_data, d->workspace, p->workspace_bytes,
                                              &zero, p->x, din),
                 "convolution backward data");
    if (dw) {
        size_t n = (size_t)s->k * s->c * s->r * s->s;
        cudnn_ok(cudnnConvolutionBackwardFilter(d->cudnn, &one, p->x, in, p->y, dout, p->conv,
                                                p->bwd_filter, d->workspace, p->workspace_bytes,
                                                &zero, p->w, p->dw_scratch),
                 "convolution backward filter");
        accumulate_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(dw, p->dw_scratch, n);
        launched("convolution weight gradient");
    }
    if (dbias && s->has_bias) {
        const channel_sums *cs = &p->bias_sums;
        channel_partials(d, cs, term_sum{dout}, "convolution bias gradient");
        channel_sums_accumulate_kernel<<<grid_channels(s->k), 128, 0, d->stream>>>(
            dbias, cs->partials, s->k, cs->parts);
        launched("convolution bias gradient");
    }
}

/* ---- Batch norm ------------------------------------------------------------------- */

typedef struct {
    cuda_dev *d;
    amlfs_bn_shape s;
    channel_sums sums;
    double *mean, *invstd; /* (C) each: the statistics a call normalises with */
    double2 *backward_sums; /* (C): sum dy, sum dy xhat */
} bn_plan;

static void cuda_bn_destroy(void *impl)
{
    bn_plan *p = (bn_plan *)impl;
    if (!p)
        return;
    cudaSetDevice(p->d->index);
    cudaStreamSynchronize(p->d->stream);
    cudaFree(p->sums.partials);
    cudaFree(p->mean);
    cudaFree(p->invstd);
    cudaFree(p->backward_sums);
    free(p);
}

static void *cuda_bn_create(void *dev, const amlfs_bn_shape *s, char *err, size_t errlen)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    bn_plan *p = (bn_plan *)calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->d = d;
    p->s = *s; /* layout: NCHW either way on CUDA */
    if (channel_sums_init(&p->sums, s->n, s->c, s->h * s->w, err, errlen, d) != 0)
        goto fail;
    TRY_CUDA(cudaMalloc(&p->mean, (size_t)s->c * sizeof(double)), "cudaMalloc (batch norm)");
    TRY_CUDA(cudaMalloc(&p->invstd, (size_t)s->c * sizeof(double)), "cudaMalloc (batch norm)");
    TRY_CUDA(cudaMalloc(&p->backward_sums, (size_t)s->c * sizeof(double2)),
             "cudaMalloc (batch norm)");
    return p;
fail:
    cuda_bn_destroy(p);
    return NULL;
}

static size_t bn_elements(const bn_plan *p) { return (size_t)p->s.n * p->s.c * p->s.h * p->s.w; }

static void cuda_bn_forward_train(void *impl, float *out, float *save_mean, float *save_var,
                                  float *running_mean, float *running_var, const float *in,
                                  const float *gamma, const float *beta)
{
    bn_plan *p = (bn_plan *)impl;
    const cuda_dev *d = p->d;
    const channel_sums *cs = &p->sums;
    const int c = p->s.c;
    const double m = (double)cs->m;
    use(d);
    /* two passes, as the reference: the mean, then the squared deviations from it */
    channel_partials(d, cs, term_sum{in}, "batch norm mean");
    bn_mean_kernel<<<grid_channels(c), 128, 0, d->stream>>>(p->mean, cs->partials, c, cs->parts,
                                                             m);
    launched("batch norm mean");
    channel_partials(d, cs, term_square_deviation{in, p->mean}, "batch norm variance");
    bn_variance_kernel<<<grid_channels(c), 128, 0, d->stream>>>(
        p->invstd, save_mean, save_var, running_mean, running_var, p->mean, cs->partials, c,
        cs->parts, m, p->s.eps, p->s.momentum);
    launched("batch norm variance");
    size_t n = bn_elements(p);
    bn_normalize_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(
        out, in, p->mean, p->invstd, gamma, beta, c, p->s.h * p->s.w, n);
    launched("batch norm forward");
}

static void cuda_bn_forward_infer(void *impl, float *out, const float *in, const float *gamma,
                                  const float *beta, const float *running_mean,
                                  const float *running_var)
{
    bn_plan *p = (bn_plan *)impl;
    const cuda_dev *d = p->d;
    const int c = p->s.c;
    use(d);
    bn_stats_kernel<<<grid_channels(c), 128, 0, d->stream>>>(p->mean, p->invstd, running_mean,
                                                              running_var, c, p->s.eps);
    launched("batch norm statistics");
    size_t n = bn_elements(p);
    bn_normalize_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(
        out, in, p->mean, p->invstd, gamma, beta, c, p->s.h * p->s.w, n);
    launched("batch norm inference");
}

/* Both modes: the statistics in double from the float ones given, the sums of dy and
 * dy xhat (dgamma, dbeta +=), then din, through the statistics when training. */
static void bn_backward(bn_plan *p, float *din, float *dgamma, float *dbeta, const float *dout,
                        const float *in, const float *gamma, const float *mean,
                        const float *var, int through_stats)
{
    const cuda_dev *d = p->d;
    const channel_sums *cs = &p->sums;
    const int c = p->s.c;
    use(d);
    if (!din && !dgamma && !dbeta)
        return;
    bn_stats_kernel<<<grid_channels(c), 128, 0, d->stream>>>(p->mean, p->invstd, mean, var, c,
                                                              p->s.eps);
    launched("batch norm backward statistics");
    if (dgamma || dbeta || through_stats) {
        channel_partials(d, cs, term_bn_backward{dout, in, p->mean, p->invstd},
                         "batch norm backward sums");
        bn_backward_sums_kernel<<<grid_channels(c), 128, 0, d->stream>>>(
            p->backward_sums, dgamma, dbeta, cs->partials, c, cs->parts);
        launched("batch norm backward sums");
    }
    if (din) {
        size_t n = bn_elements(p);
        bn_backward_data_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(
            din, dout, in, gamma, p->mean, p->invstd, p->backward_sums, through_stats, c,
            p->s.h * p->s.w, (double)cs->m, n);
        launched("batch norm backward");
    }
}

static void cuda_bn_backward_train(void *impl, float *din, float *dgamma, float *dbeta,
                                   const float *dout, const float *in, const float *gamma,
                                   const float *save_mean, const float *save_var)
{
    bn_backward((bn_plan *)impl, din, dgamma, dbeta, dout, in, gamma, save_mean, save_var, 1);
}

static void cuda_bn_backward_infer(void *impl, float *din, float *dgamma, float *dbeta,
                                   const float *dout, const float *in, const float *gamma,
                                   const float *running_mean, const float *running_var)
{
    bn_backward((bn_plan *)impl, din, dgamma, dbeta, dout, in, gamma, running_mean, running_var,
                0);
}

/* ---- Pooling ---------------------------------------------------------------------- */

typedef struct {
    cuda_dev *d;
    amlfs_pool_shape s;
    pool_geom g;
} pool_plan;

static void *cuda_pool_create(void *dev, const amlfs_pool_shape *s, char *err, size_t errlen)
{
    pool_plan *p = (pool_plan *)calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->d = (cuda_dev *)dev;
    p->s = *s; /* layout: NCHW either way on CUDA */
    p->g.h = s->h;
    p->g.w = s->w;
    p->g.oh = amlfs_pool_out_h(s);
    p->g.ow = amlfs_pool_out_w(s);
    p->g.kernel = s->kernel;
    p->g.stride = s->stride;
    p->g.pad = s->pad;
    p->g.max = s->kind == AMLFS_POOL_MAX;
    p->g.count_include_pad = s->count_include_pad;
    return p;
}

static void cuda_pool_destroy(void *impl) { free(impl); }

/* The backward finds the maxima again from `in`: no workspace. */
static size_t cuda_pool_workspace_bytes(const void *impl)
{
    (void)impl;
    return 0;
}

static void cuda_pool_forward(void *impl, float *out, const float *in, void *workspace)
{
    (void)workspace;
    pool_plan *p = (pool_plan *)impl;
    use(p->d);
    size_t n = (size_t)p->s.n * p->s.c * p->g.oh * p->g.ow;
    pool_forward_kernel<<<grid_for(n), EW_BLOCK, 0, p->d->stream>>>(out, in, p->g, n);
    launched("pooling forward");
}

static void cuda_pool_backward(void *impl, float *din, const float *dout, const float *in,
                               const float *out, const void *workspace)
{
    (void)out, (void)workspace;
    pool_plan *p = (pool_plan *)impl;
    use(p->d);
    size_t n = (size_t)p->s.n * p->s.c * p->s.h * p->s.w;
    pool_backward_kernel<<<grid_for(n), EW_BLOCK, 0, p->d->stream>>>(din, dout, in, p->g, n);
    launched("pooling backward");
}

/* ---- Linear ----------------------------------------------------------------------- */

/* cuBLAS is column-major: a row-major (R, C) matrix is its column-major (C, R)
 * transpose, so out (N,OUT) = in w^T is, column-major, out^T = w^T' in^T' with w read
 * as (IN, OUT) and in as (IN, N). */
typedef struct {
    cuda_dev *d;
    amlfs_linear_shape s;
} linear_plan;

static void *cuda_linear_create(void *dev, const amlfs_linear_shape *s, char *err, size_t errlen)
{
    linear_plan *p = (linear_plan *)calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->d = (cuda_dev *)dev;
    p->s = *s;
    return p;
}

static void cuda_linear_destroy(void *impl) { free(impl); }

static void cuda_linear_forward(void *impl, float *out, const float *in, const float *w,
                                const float *bias)
{
    linear_plan *p = (linear_plan *)impl;
    const cuda_dev *d = p->d;
    const amlfs_linear_shape *s = &p->s;
    use(d);
    const float one = 1.0f, zero = 0.0f;
    const int with_bias = bias && s->has_bias;
    if (with_bias) { /* out = bias, then out = in w^T + out */
        size_t n = (size_t)s->n * s->out;
        bias_rows_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(out, bias, s->out, n);
        launched("linear bias");
    }
    /* column-major: out^T (OUT,N) = (w as (IN,OUT))^T (in as (IN,N)) */
    cublas_ok(cublasSgemm(d->cublas, CUBLAS_OP_T, CUBLAS_OP_N, s->out, s->n, s->in, &one, w, s->in,
                          in, s->in, with_bias ? &one : &zero, out, s->out),
              "linear forward (sgemm)");
}

static void cuda_linear_backward(void *impl, float *din, float *dw, float *dbias,
                                 const float *dout, const float *in, const float *w)
{
    linear_plan *p = (linear_plan *)impl;
    const cuda_dev *d = p->d;
    const amlfs_linear_shape *s = &p->s;
    use(d);
    const float one = 1.0f, zero = 0.0f;
    if (din) /* din^T (IN,N) = (w as (IN,OUT)) (dout as (OUT,N)) */
        cublas_ok(cublasSgemm(d->cublas, CUBLAS_OP_N, CUBLAS_OP_N, s->in, s->n, s->out, &one, w,
                              s->in, dout, s->out, &zero, din, s->in),
                  "linear backward data (sgemm)");
    if (dw) /* dw^T (IN,OUT) += (in as (IN,N)) (dout as (OUT,N))^T */
        cublas_ok(cublasSgemm(d->cublas, CUBLAS_OP_N, CUBLAS_OP_T, s->in, s->out, s->n, &one, in,
                              s->in, dout, s->out, &one, dw, s->in),
                  "linear backward weights (sgemm)");
    if (dbias && s->has_bias) {
        column_sums_kernel<<<(unsigned)((s->out + 127) / 128), 128, 0, d->stream>>>(
            dbias, dout, s->n, s->out);
        launched("linear bias gradient");
    }
}

/* ---- The cosine head -------------------------------------------------------------- */

/* cos = u v^T on the normalised rows (face.cuh), one sgemm as linear's; the backward
 * recomputes u and v, du = dout v and dv = dout^T u by sgemm, then projects them. */
typedef struct {
    cuda_dev *d;
    amlfs_cosine_shape s;
    float *u, *v, *nx, *nw, *du, *dv; /* device: (N,IN), (OUT,IN), (N), (OUT), (N,IN), (OUT,IN) */
} cosine_plan;

static void cuda_cosine_destroy(void *impl)
{
    cosine_plan *p = (cosine_plan *)impl;
    if (!p)
        return;
    use(p->d);
    float *bufs[6] = {p->u, p->v, p->nx, p->nw, p->du, p->dv};
    for (int i = 0; i < 6; i++)
        if (bufs[i])
            cudaFree(bufs[i]);
    free(p);
}

static void *cuda_cosine_create(void *dev, const amlfs_cosine_shape *s, char *err, size_t errlen)
{
    cuda_dev *d = (cuda_dev *)dev;
    cosine_plan *p = (cosine_plan *)calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->d = d;
    p->s = *s;
    use(d);
    const size_t nd = (size_t)s->n * s->in, cd = (size_t)s->out * s->in;
    TRY_CUDA(cudaMalloc((void **)&p->u, nd * sizeof(float)), "cosine head scratch");
    TRY_CUDA(cudaMalloc((void **)&p->v, cd * sizeof(float)), "cosine head scratch");
    TRY_CUDA(cudaMalloc((void **)&p->nx, (size_t)s->n * sizeof(float)), "cosine head scratch");
    TRY_CUDA(cudaMalloc((void **)&p->nw, (size_t)s->out * sizeof(float)), "cosine head scratch");
    TRY_CUDA(cudaMalloc((void **)&p->du, nd * sizeof(float)), "cosine head scratch");
    TRY_CUDA(cudaMalloc((void **)&p->dv, cd * sizeof(float)), "cosine head scratch");
    return p;
fail:
    cuda_cosine_destroy(p);
    return NULL;
}

static void cosine_normalize(cosine_plan *p, const float *x, const float *w)
{
    const cuda_dev *d = p->d;
    const amlfs_cosine_shape *s = &p->s;
    rows_normalize_kernel<<<(unsigned)s->n, FACE_BLOCK, 0, d->stream>>>(p->u, p->nx, x, s->in,
                                                                         AMLFS_NORM_EPS);
    launched("cosine head: normalise the features");
    rows_normalize_kernel<<<(unsigned)s->out, FACE_BLOCK, 0, d->stream>>>(p->v, p->nw, w, s->in,
                                                                           AMLFS_NORM_EPS);
    launched("cosine head: normalise the weights");
}

static void cuda_cosine_forward(void *impl, float *out, const float *x, const float *w)
{
    cosine_plan *p = (cosine_plan *)impl;
    const cuda_dev *d = p->d;
    const amlfs_cosine_shape *s = &p->s;
    use(d);
    cosine_normalize(p, x, w);
    const float one = 1.0f, zero = 0.0f;
    /* column-major: out^T (OUT,N) = (v as (IN,OUT))^T (u as (IN,N)) */
    cublas_ok(cublasSgemm(d->cublas, CUBLAS_OP_T, CUBLAS_OP_N, s->out, s->n, s->in, &one, p->v,
                          s->in, p->u, s->in, &zero, out, s->out),
              "cosine head forward (sgemm)");
}

static void cuda_cosine_backward(void *impl, float *dx, float *dw, const float *dout,
                                 const float *x, const float *w)
{
    cosine_plan *p = (cosine_plan *)impl;
    const cuda_dev *d = p->d;
    const amlfs_cosine_shape *s = &p->s;
    if (!dx && !dw)
        return;
    use(d);
    cosine_normalize(p, x, w);
    const float one = 1.0f, zero = 0.0f;
    if (dx) { /* du^T (IN,N) = (v as (IN,OUT)) (dout as (OUT,N)) */
        cublas_ok(cublasSgemm(d->cublas, CUBLAS_OP_N, CUBLAS_OP_N, s->in, s->n, s->out, &one, p->v,
                              s->in, dout, s->out, &zero, p->du, s->in),
                  "cosine head backward data (sgemm)");
        rows_project_kernel<<<(unsigned)s->n, FACE_BLOCK, 0, d->stream>>>(
            dx, p->du, p->u, p->nx, s->in, (float)AMLFS_NORM_EPS, 0);
        launched("cosine head: project the feature gradient");
    }
    if (dw) { /* dv^T (IN,OUT) = (u as (IN,N)) (dout as (OUT,N))^T */
        cublas_ok(cublasSgemm(d->cublas, CUBLAS_OP_N, CUBLAS_OP_T, s->in, s->out, s->n, &one, p->u,
                              s->in, dout, s->out, &zero, p->dv, s->in),
                  "cosine head backward weights (sgemm)");
        rows_project_kernel<<<(unsigned)s->out, FACE_BLOCK, 0, d->stream>>>(
            dw, p->dv, p->v, p->nw, s->in, (float)AMLFS_NORM_EPS, 1);
        launched("cosine head: project the weight gradient");
    }
}

/* ---- Plan-free layers and SGD ------------------------------------------------------ */

static void cuda_prelu_forward(void *dev, float *out, const float *in, const float *slope,
                               const amlfs_prelu_shape *s)
{
    const cuda_dev *d = (const cuda_dev *)dev;
    size_t hw = (size_t)s->h * s->w, n = (size_t)s->n * s->c * hw;
    use(d);
    prelu_forward_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(out, in, slope, s->c, hw, n);
    launched("prelu forward");
}

static void cuda_prelu_backward(void *dev, float *din, float *dslope, const float *dout,
                                const float *in, const float *slope, const amlfs_prelu_shape *s)
{
    const cuda_dev *d = (const cuda_dev *)dev;
    size_t hw = (size_t)s->h * s->w, n = (size_t)s->n * s->c * hw;
    use(d);
    if (dslope) {
        prelu_slope_grad_kernel<<<(unsigned)s->c, FACE_BLOCK, 0, d->stream>>>(dslope, dout, in,
                                                                              s->n, s->c, hw);
        launched("prelu slope gradient");
    }
    if (din) {
        prelu_backward_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(din, dout, in, slope, s->c,
                                                                        hw, n);
        launched("prelu backward");
    }
}

static void cuda_relu_forward(void *dev, float *out, const float *in, size_t n)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    if (!n)
        return;
    relu_forward_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(out, in, n);
    launched("relu forward");
}

static void cuda_relu_backward(void *dev, float *din, const float *dout, const float *out,
                               size_t n)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    if (!n)
        return;
    relu_backward_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(din, dout, out, n);
    launched("relu backward");
}

static void cuda_add_forward(void *dev, float *out, const float *a, const float *b, size_t n)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    if (!n)
        return;
    add_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(out, a, b, n);
    launched("add forward");
}

/* da = db = dout; any of them may be the same buffer. */
static void cuda_add_backward(void *dev, float *da, float *db, const float *dout, size_t n)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    if (!n)
        return;
    if (da != dout)
        cuda_ok(cudaMemcpyAsync(da, dout, n * sizeof(float), cudaMemcpyDeviceToDevice, d->stream),
                "add backward");
    if (db != dout && db != da)
        cuda_ok(cudaMemcpyAsync(db, dout, n * sizeof(float), cudaMemcpyDeviceToDevice, d->stream),
                "add backward");
}

static void cuda_global_avgpool_forward(void *dev, float *out, const float *in, int n, int c,
                                        int h, int w, amlfs_layout layout)
{
    (void)layout; /* NCHW either way on CUDA */
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    size_t planes = (size_t)n * c;
    if (!planes)
        return;
    global_avgpool_forward_kernel<<<grid_for(planes), EW_BLOCK, 0, d->stream>>>(out, in, planes,
                                                                                h * w);
    launched("global average pooling forward");
}

static void cuda_global_avgpool_backward(void *dev, float *din, const float *dout, int n, int c,
                                         int h, int w, amlfs_layout layout)
{
    (void)layout;
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    size_t count = (size_t)n * c * h * w;
    if (!count)
        return;
    global_avgpool_backward_kernel<<<grid_for(count), EW_BLOCK, 0, d->stream>>>(din, dout, h * w,
                                                                                count);
    launched("global average pooling backward");
}

static shortcut_geom shortcut_of(const amlfs_shortcut_shape *s)
{
    shortcut_geom g;
    g.n = s->n;
    g.c = s->c;
    g.h = s->h;
    g.w = s->w;
    g.k = s->k;
    g.stride = s->stride;
    g.oh = amlfs_shortcut_out_h(s);
    g.ow = amlfs_shortcut_out_w(s);
    g.lo = (s->k - s->c) / 2;
    return g;
}

static void cuda_shortcut_forward(void *dev, float *out, const float *in,
                                  const amlfs_shortcut_shape *s)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    shortcut_geom g = shortcut_of(s);
    size_t n = (size_t)g.n * g.k * g.oh * g.ow;
    if (!n)
        return;
    shortcut_forward_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(out, in, g, n);
    launched("shortcut forward");
}

static void cuda_shortcut_backward(void *dev, float *din, const float *dout,
                                   const amlfs_shortcut_shape *s)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    shortcut_geom g = shortcut_of(s);
    size_t n = (size_t)g.n * g.c * g.h * g.w;
    if (!n)
        return;
    shortcut_backward_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(din, dout, g, n);
    launched("shortcut backward");
}

static void cuda_sgd_step(void *dev, float *param, float *momentum_buf, const float *grad,
                          size_t n, double lr, double momentum, double weight_decay, int nesterov,
                          int first_step)
{
    cuda_dev *d = (cuda_dev *)dev;
    use(d);
    if (!n)
        return;
    /* the hyper-parameters rounded to float on the host, as the reference does */
    sgd_kernel<<<grid_for(n), EW_BLOCK, 0, d->stream>>>(
        param, momentum_buf, grad, n, (float)lr, (float)momentum, (float)weight_decay,
        weight_decay != 0.0, momentum != 0.0, nesterov, first_step);
    launched("sgd step");
}

/* ---- The table -------------------------------------------------------------------- */

static amlfs_backend make_backend(void)
{
    amlfs_backend b;
    memset(&b, 0, sizeof b);
    b.name = "cuda";
    b.context_create = cuda_context_create;
    b.context_destroy = cuda_context_destroy;
    b.describe = cuda_describe;
    b.alloc = cuda_alloc;
    b.free = cuda_free;
    b.upload = cuda_upload;
    b.download = cuda_download;
    b.memzero = cuda_memzero;
    b.wait = cuda_wait;
    b.act_floats = cuda_act_floats;
    b.act_convert = cuda_act_convert;
    b.conv_create = cuda_conv_create;
    b.conv_destroy = cuda_conv_destroy;
    b.conv_forward = cuda_conv_forward;
    b.conv_backward = cuda_conv_backward;
    b.bn_create = cuda_bn_create;
    b.bn_destroy = cuda_bn_destroy;
    b.bn_forward_train = cuda_bn_forward_train;
    b.bn_forward_infer = cuda_bn_forward_infer;
    b.bn_backward_train = cuda_bn_backward_train;
    b.bn_backward_infer = cuda_bn_backward_infer;
    b.pool_create = cuda_pool_create;
    b.pool_destroy = cuda_pool_destroy;
    b.pool_workspace_bytes = cuda_pool_workspace_bytes;
    b.pool_forward = cuda_pool_forward;
    b.pool_backward = cuda_pool_backward;
    b.linear_create = cuda_linear_create;
    b.linear_destroy = cuda_linear_destroy;
    b.linear_forward = cuda_linear_forward;
    b.linear_backward = cuda_linear_backward;
    b.cosine_create = cuda_cosine_create;
    b.cosine_destroy = cuda_cosine_destroy;
    b.cosine_forward = cuda_cosine_forward;
    b.cosine_backward = cuda_cosine_backward;
    b.prelu_forward = cuda_prelu_forward;
    b.prelu_backward = cuda_prelu_backward;
    b.relu_forward = cuda_relu_forward;
    b.relu_backward = cuda_relu_backward;
    b.add_forward = cuda_add_forward;
    b.add_backward = cuda_add_backward;
    b.global_avgpool_forward = cuda_global_avgpool_forward;
    b.global_avgpool_backward = cuda_global_avgpool_backward;
    b.shortcut_forward = cuda_shortcut_forward;
    b.shortcut_backward = cuda_shortcut_backward;
    b.sgd_step = cuda_sgd_step;
    return b;
}

const amlfs_backend *amlfs_cuda_backend(void)
{
    static const amlfs_backend backend = make_backend(); /* C++: initialised once, safely */
    return &backend;
}
