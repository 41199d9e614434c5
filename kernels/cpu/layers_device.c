/* layers_device.c: the one place the device is chosen (amlfs_layers.h, parts 2 and 4).
 * A context holds its backend's table; plans hold their context and the backend's own
 * plan; every fast-path call goes through the table. No layer code looks at the device.
 */
#include "amlfs_layers.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

/* Defined only when the CUDA objects are linked; NULL otherwise (a weak reference). */
#pragma weak amlfs_cuda_backend

struct amlfs_context {
    amlfs_device device;
    const amlfs_backend *backend;
    void *dev; /* the backend's state */
    int threads; /* the CPU threads: as asked, or OpenMP's default */
    char description[256];
};

struct amlfs_conv_plan {
    amlfs_context *ctx;
    void *impl;
};
struct amlfs_bn_plan {
    amlfs_context *ctx;
    void *impl;
};
struct amlfs_pool_plan {
    amlfs_context *ctx;
    void *impl;
};
struct amlfs_linear_plan {
    amlfs_context *ctx;
    void *impl;
};
struct amlfs_cosine_plan {
    amlfs_context *ctx;
    void *impl;
};

amlfs_context *amlfs_context_create(amlfs_device device, int threads, char *err, size_t errlen)
{
    const amlfs_backend *backend = NULL;
    switch (device.kind) {
    case AMLFS_DEVICE_CPU:
        backend = amlfs_cpu_backend();
        break;
    case AMLFS_DEVICE_CUDA:
        if (!amlfs_cuda_backend) {
            snprintf(err, errlen, "cuda:%d: this build has no CUDA backend (build with make cuda)",
                     device.index);
            return NULL;
        }
        backend = amlfs_cuda_backend();
        break;
    }
    if (!backend) {
        snprintf(err, errlen, "unknown device kind %d", (int)device.kind);
        return NULL;
    }
    if (threads < 0) {
        snprintf(err, errlen, "threads %d must be >= 0 (0: the OpenMP default)", threads);
        return NULL;
    }
    amlfs_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ctx->device = device;
    ctx->threads = threads ? threads : omp_get_max_threads();
    ctx->backend = backend;
    ctx->dev = backend->context_create(device, threads, err, errlen);
    if (!ctx->dev) {
        free(ctx);
        return NULL;
    }
    backend->describe(ctx->dev, ctx->description, sizeof ctx->description);
    return ctx;
}

void amlfs_context_destroy(amlfs_context *ctx)
{
    if (!ctx) return;
    ctx->backend->context_destroy(ctx->dev);
    free(ctx);
}

amlfs_device amlfs_context_device(const amlfs_context *ctx) { return ctx->device; }
int amlfs_context_threads(const amlfs_context *ctx) { return ctx->threads; }
const char *amlfs_context_describe(const amlfs_context *ctx) { return ctx->description; }

void *amlfs_alloc(amlfs_context *ctx, size_t bytes) { return ctx->backend->alloc(ctx->dev, bytes); }
void amlfs_free(amlfs_context *ctx, void *ptr)
{
    if (ptr) ctx->backend->free(ctx->dev, ptr);
}
void amlfs_upload(amlfs_context *ctx, void *dst, const void *src, size_t bytes)
{
    ctx->backend->upload(ctx->dev, dst, src, bytes);
}
void amlfs_download(amlfs_context *ctx, void *dst, const void *src, size_t bytes)
{
    ctx->backend->download(ctx->dev, dst, src, bytes);
}
void amlfs_memzero(amlfs_context *ctx, void *ptr, size_t bytes)
{
    ctx->backend->memzero(ctx->dev, ptr, bytes);
}
void amlfs_wait(amlfs_context *ctx) { ctx->backend->wait(ctx->dev); }

size_t amlfs_act_floats(amlfs_context *ctx, amlfs_layout layout, int n, int c, int h, int w)
{
    return ctx->backend->act_floats(ctx->dev, layout, n, c, h, w);
}
void amlfs_act_convert(amlfs_context *ctx, float *dst, amlfs_layout to, const float *src,
                       amlfs_layout from, int n, int c, int h, int w)
{
    ctx->backend->act_convert(ctx->dev, dst, to, src, from, n, c, h, w);
}

/* ---- Plans ------------------------------------------------------------------------ */

/* Plan creation is the same for every layer: check the shape, let the backend build. */
#define PLAN_CREATE(plan_type, check, create)                                            \
    do {                                                                                 \
        if (check(s, err, errlen)) return NULL;                                          \
        plan_type *plan = calloc(1, sizeof *plan);                                       \
        if (!plan) {                                                                     \
            snprintf(err, errlen, "out of memory");                                      \
            return NULL;                                                                 \
        }                                                                                \
        plan->ctx = ctx;                                                                 \
        plan->impl = ctx->backend->create(ctx->dev, s, err, errlen);                     \
        if (!plan->impl) {                                                               \
            free(plan);                                                                  \
            return NULL;                                                                 \
        }                                                                                \
        return plan;                                                                     \
    } while (0)

#define PLAN_DESTROY(plan, destroy)                                                      \
    do {                                                                                 \
        if (!plan) return;                                                               \
        plan->ctx->backend->destroy(plan->impl);                                         \
        free(plan);                                                                      \
    } while (0)

amlfs_conv_plan *amlfs_conv_plan_create(amlfs_context *ctx, const amlfs_conv_shape *s, char *err,
                                        size_t errlen)
{
    PLAN_CREATE(amlfs_conv_plan, amlfs_conv_shape_check, conv_create);
}
void amlfs_conv_plan_destroy(amlfs_conv_plan *plan) { PLAN_DESTROY(plan, conv_destroy); }
void amlfs_conv_forward(amlfs_conv_plan *plan, float *out, const float *in, const float *w,
                        const float *bias)
{
    plan->ctx->backend->conv_forward(plan->impl, out, in, w, bias);
}
void amlfs_conv_backward(amlfs_conv_plan *plan, float *din, float *dw, float *dbias,
                         const float *dout, const float *in, const float *w)
{
    plan->ctx->backend->conv_backward(plan->impl, din, dw, dbias, dout, in, w);
}

amlfs_bn_plan *amlfs_bn_plan_create(amlfs_context *ctx, const amlfs_bn_shape *s, char *err,
                                    size_t errlen)
{
    PLAN_CREATE(amlfs_bn_plan, amlfs_bn_shape_check, bn_create);
}
void amlfs_bn_plan_destroy(amlfs_bn_plan *plan) { PLAN_DESTROY(plan, bn_destroy); }
void amlfs_bn_forward_train(amlfs_bn_plan *plan, float *out, float *save_mean, float *save_var,
                            float *running_mean, float *running_var, const float *in,
                            const float *gamma, const float *beta)
{
    plan->ctx->backend->bn_forward_train(plan->impl, out, save_mean, save_var, running_mean,
                                         running_var, in, gamma, beta);
}
void amlfs_bn_forward_infer(amlfs_bn_plan *plan, float *out, const float *in, const float *gamma,
                            const float *beta, const float *running_mean,
                            const float *running_var)
{
    plan->ctx->backend->bn_forward_infer(plan->impl, out, in, gamma, beta, running_mean,
                                         running_var);
}
void amlfs_bn_backward_train(amlfs_bn_plan *plan, float *din, float *dgamma, float *dbeta,
                             const float *dout, const float *in, const float *gamma,
                             const float *save_mean, const float *save_var)
{
    plan->ctx->backend->bn_backward_train(plan->impl, din, dgamma, dbeta, dout, in, gamma,
                                          save_mean, save_var);
}
void amlfs_bn_backward_infer(amlfs_bn_plan *plan, float *din, float *dgamma, float *dbeta,
                             const float *dout, const float *in, const float *gamma,
                             const float *running_mean, const float *running_var)
{
    plan->ctx->backend->bn_backward_infer(plan->impl, din, dgamma, dbeta, dout, in, gamma,
                                          running_mean, running_var);
}

amlfs_pool_plan *amlfs_pool_plan_create(amlfs_context *ctx, const amlfs_pool_shape *s, char *err,
                                        size_t errlen)
{
    PLAN_CREATE(amlfs_pool_plan, amlfs_pool_shape_check, pool_create);
}
void amlfs_pool_plan_destroy(amlfs_pool_plan *plan) { PLAN_DESTROY(plan, pool_destroy); }
size_t amlfs_pool_workspace_bytes(const amlfs_pool_plan *plan)
{
    return plan->ctx->backend->pool_workspace_bytes(plan->impl);
}
void amlfs_pool_forward(amlfs_pool_plan *plan, float *out, const float *in, void *workspace)
{
    plan->ctx->backend->pool_forward(plan->impl, out, in, workspace);
}
void amlfs_pool_backward(amlfs_pool_plan *plan, float *din, const float *dout, const float *in,
                         const float *out, const void *workspace)
{
    plan->ctx->backend->pool_backward(plan->impl, din, dout, in, out, workspace);
}

amlfs_linear_plan *amlfs_linear_plan_create(amlfs_context *ctx, const amlfs_linear_shape *s,
                                            char *err, size_t errlen)
{
    PLAN_CREATE(amlfs_linear_plan, amlfs_linear_shape_check, linear_create);
}
void amlfs_linear_plan_destroy(amlfs_linear_plan *plan) { PLAN_DESTROY(plan, linear_destroy); }
void amlfs_linear_forward(amlfs_linear_plan *plan, float *out, const float *in, const float *w,
                          const float *bias)
{
    plan->ctx->backend->linear_forward(plan->impl, out, in, w, bias);
}
void amlfs_linear_backward(amlfs_linear_plan *plan, float *din, float *dw, float *dbias,
                           const float *dout, const float *in, const float *w)
{
    plan->ctx->backend->linear_backward(plan->impl, din, dw, dbias, dout, in, w);
}

amlfs_cosine_plan *amlfs_cosine_plan_create(amlfs_context *ctx, const amlfs_cosine_shape *s,
                                            char *err, size_t errlen)
{
    PLAN_CREATE(amlfs_cosine_plan, amlfs_cosine_shape_check, cosine_create);
}
void amlfs_cosine_plan_destroy(amlfs_cosine_plan *plan) { PLAN_DESTROY(plan, cosine_destroy); }
void amlfs_cosine_forward(amlfs_cosine_plan *plan, float *out, const float *x, const float *w)
{
    plan->ctx->backend->cosine_forward(plan->impl, out, x, w);
}
void amlfs_cosine_backward(amlfs_cosine_plan *plan, float *dx, float *dw, const float *dout,
                           const float *x, const float *w)
{
    plan->ctx->backend->cosine_backward(plan->impl, dx, dw, dout, x, w);
}

/* ---- Plan-free layers and the optimiser -------------------------------------------- */

void amlfs_relu_forward(amlfs_context *ctx, float *out, const float *in, size_t n)
{
    ctx->backend->relu_forward(ctx->dev, out, in, n);
}
void amlfs_relu_backward(amlfs_context *ctx, float *din, const float *dout, const float *out,
                         size_t n)
{
    ctx->backend->relu_backward(ctx->dev, din, dout, out, n);
}
void amlfs_prelu_forward(amlfs_context *ctx, float *out, const float *in, const float *slope,
                         const amlfs_prelu_shape *s)
{
    ctx->backend->prelu_forward(ctx->dev, out, in, slope, s);
}
void amlfs_prelu_backward(amlfs_context *ctx, float *din, float *dslope, const float *dout,
                          const float *in, const float *slope, const amlfs_prelu_shape *s)
{
    ctx->backend->prelu_backward(ctx->dev, din, dslope, dout, in, slope, s);
}
void amlfs_add_forward(amlfs_context *ctx, float *out, const float *a, const float *b, size_t n)
{
    ctx->backend->add_forward(ctx->dev, out, a, b, n);
}
void amlfs_add_backward(amlfs_context *ctx, float *da, float *db, const float *dout, size_t n)
{
    ctx->backend->add_backward(ctx->dev, da, db, dout, n);
}
void amlfs_global_avgpool_forward(amlfs_context *ctx, float *out, const float *in, int n, int c,
                                  int h, int w, amlfs_layout layout)
{
    ctx->backend->global_avgpool_forward(ctx->dev, out, in, n, c, h, w, layout);
}
void amlfs_global_avgpool_backward(amlfs_context *ctx, float *din, const float *dout, int n,
                                   int c, int h, int w, amlfs_layout layout)
{
    ctx->backend->global_avgpool_backward(ctx->dev, din, dout, n, c, h, w, layout);
}
void amlfs_shortcut_forward(amlfs_context *ctx, float *out, const float *in,
                            const amlfs_shortcut_shape *s)
{
    ctx->backend->shortcut_forward(ctx->dev, out, in, s);
}
void amlfs_shortcut_backward(amlfs_context *ctx, float *din, const float *dout,
                             const amlfs_shortcut_shape *s)
{
    ctx->backend->shortcut_backward(ctx->dev, din, dout, s);
}
void amlfs_sgd_step(amlfs_context *ctx, float *param, float *momentum_buf, const float *grad,
                    size_t n, double lr, double momentum, double weight_decay, int nesterov,
                    int first_step)
{
    ctx->backend->sgd_step(ctx->dev, param, momentum_buf, grad, n, lr, momentum, weight_decay,
                           nesterov, first_step);
}
