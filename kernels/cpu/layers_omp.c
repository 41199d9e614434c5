/* layers_omp.c: the CPU backend's element-wise layers, global average pooling, the
 * option-A shortcut and SGD, with OpenMP (amlfs_layers.h; semantics in layers_ref.c).
 *
 * Each output element is computed by one thread in the reference's order of operations
 * (sums in double, serially), so the results equal the reference's to the bit, for any
 * thread count. `dev` is the CPU backend's state, unused here.
 */
#include "amlfs_layers.h"

#include <string.h>

/* Below this many elements a parallel region costs more than it saves. */
#define PARALLEL_MIN 16384

void amlfs_cpu_relu_forward(void *dev, float *out, const float *in, size_t n)
{
    (void)dev;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void amlfs_cpu_relu_backward(void *dev, float *din, const float *dout, const float *out, size_t n)
{
    (void)dev;
    /* dout loaded unconditionally, so the loop vectorises (a blend, no branch); simd,
     * since the -O2 cost model will not version the loop for din aliasing dout (which
     * is allowed: element i is read before it is written) */
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = dout[i];
        din[i] = out[i] > 0.0f ? g : 0.0f;
    }
}

void amlfs_cpu_add_forward(void *dev, float *out, const float *a, const float *b, size_t n)
{
    (void)dev;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void amlfs_cpu_add_backward(void *dev, float *da, float *db, const float *dout, size_t n)
{
    (void)dev;
    /* memmove: da or db may be dout itself */
    if (da != dout) memmove(da, dout, n * sizeof *da);
    if (db != dout) memmove(db, dout, n * sizeof *db);
}

void amlfs_cpu_global_avgpool_forward(void *dev, float *out, const float *in, int n, int c, int hw)
{
    (void)dev;
    const int planes = n * c;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= PARALLEL_MIN)
    for (int i = 0; i < planes; i++) {
        double acc = 0.0;
        for (int j = 0; j < hw; j++) acc += (double)in[(size_t)i * hw + j];
        out[i] = (float)(acc / hw);
    }
}

void amlfs_cpu_global_avgpool_backward(void *dev, float *din, const float *dout, int n, int c,
                                       int hw)
{
    (void)dev;
    const int planes = n * c;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= PARALLEL_MIN)
    for (int i = 0; i < planes; i++) {
        float g = (float)((double)dout[i] / hw);
        for (int j = 0; j < hw; j++) din[(size_t)i * hw + j] = g;
    }
}

void amlfs_cpu_shortcut_forward(void *dev, float *out, const float *in,
                                const amlfs_shortcut_shape *s)
{
    (void)dev;
    const int oh_n = amlfs_shortcut_out_h(s), ow_n = amlfs_shortcut_out_w(s);
    const int lo = (s->k - s->c) / 2;
    const int planes = s->n * s->k;
#pragma omp parallel for schedule(static) if ((size_t)planes * oh_n * ow_n >= PARALLEL_MIN)
    for (int p = 0; p < planes; p++) {
        int n = p / s->k, c = p % s->k - lo;
        float *y = out + (size_t)p * oh_n * ow_n;
        if (c < 0 || c >= s->c) {
            memset(y, 0, (size_t)oh_n * ow_n * sizeof *y);
            continue;
        }
        const float *x = in + ((size_t)n * s->c + c) * s->h * s->w;
        for (int oh = 0; oh < oh_n; oh++)
            for (int ow = 0; ow < ow_n; ow++)
                y[oh * ow_n + ow] = x[(size_t)oh * s->stride * s->w + (size_t)ow * s->stride];
    }
}

void amlfs_cpu_shortcut_backward(void *dev, float *din, const float *dout,
                                 const amlfs_shortcut_shape *s)
{
    (void)dev;
    const int oh_n = amlfs_shortcut_out_h(s), ow_n = amlfs_shortcut_out_w(s);
    const int lo = (s->k - s->c) / 2;
    const int planes = s->n * s->c;
#pragma omp parallel for schedule(static) if ((size_t)planes * s->h * s->w >= PARALLEL_MIN)
    for (int p = 0; p < planes; p++) {
        int n = p / s->c, c = p % s->c;
        float *dx = din + (size_t)p * s->h * s->w;
        const float *dy = dout + ((size_t)n * s->k + c + lo) * oh_n * ow_n;
        memset(dx, 0, (size_t)s->h * s->w * sizeof *dx);
        for (int oh = 0; oh < oh_n; oh++)
            for (int ow = 0; ow < ow_n; ow++)
                dx[(size_t)oh * s->stride * s->w + (size_t)ow * s->stride] = dy[oh * ow_n + ow];
    }
}

void amlfs_cpu_sgd_step(void *dev, float *param, float *momentum_buf, const float *grad, size_t n,
                        double lr, double momentum, double weight_decay, int nesterov,
                        int first_step)
{
    (void)dev;
    /* float32 arithmetic step by step, as ref_sgd_step and PyTorch's float tensors */
    const float lr_f = (float)lr, mom_f = (float)momentum, wd_f = (float)weight_decay;
    const int decay = weight_decay != 0.0, use_momentum = momentum != 0.0;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        if (decay) g = g + wd_f * param[i];
        if (use_momentum) {
            float buf = first_step ? g : mom_f * momentum_buf[i] + g;
            momentum_buf[i] = buf;
            g = nesterov ? g + mom_f * buf : buf;
        }
        param[i] = param[i] - lr_f * g;
    }
}
