/* layers_omp.c: the CPU backend's element-wise layers, the native layout's arithmetic and
 * conversions, global average pooling, the option-A shortcut and SGD, with OpenMP
 * (amlfs_layers.h; semantics in layers_ref.c).
 *
 * Each output element is computed by one thread in the reference's order of operations
 * (sums in double, serially), so the results equal the reference's to the bit, for any
 * thread count. `dev` is the CPU backend's state, unused here.
 */
#include "amlfs_layers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- The native layout: channels in blocks of B = amlfs_cpu_block() -------------- */

/* The offset of element (n, c, h, w) of an (N,C,H,W) activation in a layout; cb is the
 * number of channel blocks, ceil(C/B). */
typedef struct {
    int native, b, c, cb;
    size_t hw, w;
} act_index;

static act_index act_index_of(amlfs_layout layout, int c, int h, int w)
{
    act_index x = {layout == AMLFS_LAYOUT_NATIVE, 1, c, c, (size_t)h * w, (size_t)w};
    if (x.native) {
        x.b = amlfs_cpu_block();
        x.cb = (c + x.b - 1) / x.b;
    }
    return x;
}

static inline size_t act_at(const act_index *x, int n, int c, size_t hw)
{
    if (!x->native) return ((size_t)n * x->c + c) * x->hw + hw;
    return (((size_t)n * x->cb + c / x->b) * x->hw + hw) * x->b + c % x->b;
}

size_t amlfs_cpu_act_floats(void *dev, amlfs_layout layout, int n, int c, int h, int w)
{
    (void)dev;
    act_index x = act_index_of(layout, c, h, w);
    return (size_t)n * x.cb * x.b * x.hw;
}

void amlfs_cpu_act_convert(void *dev, float *dst, amlfs_layout to, const float *src,
                           amlfs_layout from, int n, int c, int h, int w)
{
    (void)dev;
    if (to == from) {
        memcpy(dst, src, amlfs_cpu_act_floats(dev, to, n, c, h, w) * sizeof *dst);
        return;
    }
    act_index xt = act_index_of(to, c, h, w), xf = act_index_of(from, c, h, w);
    /* one thread per (sample, channel block) of the native side */
    const act_index *nat = xt.native ? &xt : &xf;
    const int blocks = n * nat->cb, b = nat->b;
    const size_t hw_n = nat->hw;
#pragma omp parallel for schedule(static) if ((size_t)blocks * b * hw_n >= PARALLEL_MIN)
    for (int blk = 0; blk < blocks; blk++) {
        int s = blk / nat->cb, c0 = (blk % nat->cb) * b;
        for (size_t hw = 0; hw < hw_n; hw++)
            for (int cc = 0; cc < b; cc++) {
                int ch = c0 + cc;
                if (ch >= c) {
                    if (xt.native) dst[act_at(&xt, s, ch, hw)] = 0.0f;
                    continue;
                }
                dst[act_at(&xt, s, ch, hw)] = src[act_at(&xf, s, ch, hw)];
            }
    }
}

/* ---- Global average pooling and the option-A shortcut, in either layout ------------ */

void amlfs_cpu_global_avgpool_forward(void *dev, float *out, const float *in, int n, int c,
                                      int h, int w, amlfs_layout layout)
{
    (void)dev;
    act_index x = act_index_of(layout, c, h, w);
    const int planes = n * c;
    const size_t hw_n = x.hw;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw_n >= PARALLEL_MIN)
    for (int i = 0; i < planes; i++) {
        double acc = 0.0;
        for (size_t j = 0; j < hw_n; j++) acc += (double)in[act_at(&x, i / c, i % c, j)];
        out[i] = (float)(acc / (double)hw_n);
    }
}

void amlfs_cpu_global_avgpool_backward(void *dev, float *din, const float *dout, int n, int c,
                                       int h, int w, amlfs_layout layout)
{
    (void)dev;
    act_index x = act_index_of(layout, c, h, w);
    const size_t hw_n = x.hw;
    if (x.native) /* the padding channels */
        memset(din, 0, amlfs_cpu_act_floats(dev, layout, n, c, h, w) * sizeof *din);
    const int planes = n * c;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw_n >= PARALLEL_MIN)
    for (int i = 0; i < planes; i++) {
        float g = (float)((double)dout[i] / (double)hw_n);
        for (size_t j = 0; j < hw_n; j++) din[act_at(&x, i / c, i % c, j)] = g;
    }
}

void amlfs_cpu_shortcut_forward(void *dev, float *out, const float *in,
                                const amlfs_shortcut_shape *s)
{
    (void)dev;
    const int oh_n = amlfs_shortcut_out_h(s), ow_n = amlfs_shortcut_out_w(s);
    const int lo = (s->k - s->c) / 2;
    act_index xi = act_index_of(s->layout, s->c, s->h, s->w),
              xo = act_index_of(s->layout, s->k, oh_n, ow_n);
    /* one thread per (sample, output channel block); a channel block of 1 when plain */
    const int blocks = s->n * xo.cb, b = xo.b;
#pragma omp parallel for schedule(static) if ((size_t)blocks * b * oh_n * ow_n >= PARALLEL_MIN)
    for (int blk = 0; blk < blocks; blk++) {
        int n = blk / xo.cb, k0 = (blk % xo.cb) * b;
        for (int oh = 0; oh < oh_n; oh++)
            for (int ow = 0; ow < ow_n; ow++) {
                size_t ohw = (size_t)oh * ow_n + ow;
                size_t ihw = (size_t)oh * s->stride * s->w + (size_t)ow * s->stride;
                for (int kk = 0; kk < b; kk++) {
                    int k = k0 + kk, c = k - lo;
                    out[act_at(&xo, n, k, ohw)] =
                        k < s->k && c >= 0 && c < s->c ? in[act_at(&xi, n, c, ihw)] : 0.0f;
                }
            }
    }
}

void amlfs_cpu_shortcut_backward(void *dev, float *din, const float *dout,
                                 const amlfs_shortcut_shape *s)
{
    (void)dev;
    const int oh_n = amlfs_shortcut_out_h(s), ow_n = amlfs_shortcut_out_w(s);
    const int lo = (s->k - s->c) / 2;
    act_index xi = act_index_of(s->layout, s->c, s->h, s->w),
              xo = act_index_of(s->layout, s->k, oh_n, ow_n);
    const int blocks = s->n * xi.cb, b = xi.b;
#pragma omp parallel for schedule(static) if ((size_t)blocks * b * s->h * s->w >= PARALLEL_MIN)
    for (int blk = 0; blk < blocks; blk++) {
        int n = blk / xi.cb, c0 = (blk % xi.cb) * b;
        for (int h = 0; h < s->h; h++)
            for (int w = 0; w < s->w; w++) {
                size_t ihw = (size_t)h * s->w + w;
                int on_grid = h % s->stride == 0 && w % s->stride == 0;
                size_t ohw = on_grid ? (size_t)(h / s->stride) * ow_n + w / s->stride : 0;
                for (int cc = 0; cc < b; cc++) {
                    int c = c0 + cc;
                    din[act_at(&xi, n, c, ihw)] =
                        c < s->c && on_grid ? dout[act_at(&xo, n, c + lo, ohw)] : 0.0f;
                }
            }
    }
}

/* ---- PReLU, in either layout -------------------------------------------------------- */

/* A per-channel slope in either layout: (sample, channel block) `blk` is the contiguous
 * run of hw B floats from blk hw B (B = 1 when plain, so a channel plane), element
 * (i, cc) of it at i B + cc. One thread per (sample, channel block); the slope's gradient
 * sums each (sample, channel) over its pixels in order into a partial, then the samples'
 * partials in order, as ref_prelu_backward: the same bits, for any thread count. */
void amlfs_cpu_prelu_forward(void *dev, float *out, const float *in, const float *slope,
                             const amlfs_prelu_shape *s)
{
    (void)dev;
    act_index x = act_index_of(s->layout, s->c, s->h, s->w);
    const int blocks = s->n * x.cb, b = x.b;
    const size_t hw_n = x.hw;
#pragma omp parallel for schedule(static) if ((size_t)blocks * b * hw_n >= PARALLEL_MIN)
    for (int blk = 0; blk < blocks; blk++) {
        int c0 = (blk % x.cb) * b;
        float sl[16]; /* b <= 16; 0 for the padding channels, which stay 0 */
        for (int cc = 0; cc < b; cc++) sl[cc] = c0 + cc < s->c ? slope[c0 + cc] : 0.0f;
        const float *xi = in + (size_t)blk * hw_n * b;
        float *yo = out + (size_t)blk * hw_n * b;
        if (c0 + b > s->c) { /* a padded block: its padding written 0 */
            for (size_t i = 0; i < hw_n; i++)
                for (int cc = 0; cc < b; cc++) {
                    float v = xi[i * b + cc];
                    yo[i * b + cc] = c0 + cc < s->c ? (v > 0.0f ? v : sl[cc] * v) : 0.0f;
                }
            continue;
        }
        for (size_t i = 0; i < hw_n; i++)
            for (int cc = 0; cc < b; cc++) {
                float v = xi[i * b + cc];
                yo[i * b + cc] = v > 0.0f ? v : sl[cc] * v;
            }
    }
}

void amlfs_cpu_prelu_backward(void *dev, float *din, float *dslope, const float *dout,
                              const float *in, const float *slope, const amlfs_prelu_shape *s)
{
    (void)dev;
    act_index x = act_index_of(s->layout, s->c, s->h, s->w);
    const int blocks = s->n * x.cb, b = x.b;
    const size_t hw_n = x.hw;
    const int parallel = (size_t)blocks * b * hw_n >= PARALLEL_MIN;
    /* the slope's gradient first: din may be dout (in place) */
    if (dslope) {
        double *part = calloc((size_t)blocks * b, sizeof *part); /* (sample, channel) sums */
        if (!part) {
            fprintf(stderr, "amlfs: prelu backward: out of memory\n");
            abort();
        }
#pragma omp parallel for schedule(static) if (parallel)
        for (int blk = 0; blk < blocks; blk++) {
            const float *xi = in + (size_t)blk * hw_n * b, *gi = dout + (size_t)blk * hw_n * b;
            double acc[16] = {0};
            for (size_t i = 0; i < hw_n; i++)
                for (int cc = 0; cc < b; cc++) {
                    float v = xi[i * b + cc];
                    acc[cc] += v > 0.0f ? 0.0 : (double)gi[i * b + cc] * (double)v;
                }
            for (int cc = 0; cc < b; cc++) part[(size_t)blk * b + cc] = acc[cc];
        }
        for (int c = 0; c < s->c; c++) {
            double acc = 0.0;
            for (int n = 0; n < s->n; n++)
                acc += part[((size_t)n * x.cb + c / b) * b + c % b];
            dslope[c] += (float)acc;
        }
        free(part);
    }
    if (din) {
#pragma omp parallel for schedule(static) if (parallel)
        for (int blk = 0; blk < blocks; blk++) {
            int c0 = (blk % x.cb) * b;
            float sl[16];
            for (int cc = 0; cc < b; cc++) sl[cc] = c0 + cc < s->c ? slope[c0 + cc] : 0.0f;
            const float *xi = in + (size_t)blk * hw_n * b, *gi = dout + (size_t)blk * hw_n * b;
            float *di = din + (size_t)blk * hw_n * b;
            for (size_t i = 0; i < hw_n; i++)
                for (int cc = 0; cc < b; cc++) {
                    float g = gi[i * b + cc]; /* read before din (maybe dout) is written */
                    di[i * b + cc] = xi[i * b + cc] > 0.0f ? g : sl[cc] * g;
                }
        }
    }
}

/* ---- The cosine head's rows ----------------------------------------------------------- */

void amlfs_cpu_rows_normalize(float *u, float *norm, const float *a, int rows, int cols)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= PARALLEL_MIN)
    for (int r = 0; r < rows; r++) {
        const float *ar = a + (size_t)r * cols;
        double ss = 0.0;
        for (int i = 0; i < cols; i++) ss += (double)ar[i] * (double)ar[i];
        double nr = sqrt(ss);
        nr = nr > AMLFS_NORM_EPS ? nr : AMLFS_NORM_EPS;
        norm[r] = (float)nr;
        for (int i = 0; i < cols; i++) u[(size_t)r * cols + i] = (float)((double)ar[i] / nr);
    }
}

void amlfs_cpu_rows_project(float *g, const float *du, const float *u, const float *norm,
                            int rows, int cols, int accumulate)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= PARALLEL_MIN)
    for (int r = 0; r < rows; r++) {
        const float *dur = du + (size_t)r * cols, *ur = u + (size_t)r * cols;
        float *gr = g + (size_t)r * cols;
        double nr = norm[r];
        /* a row at the floor: u = a / eps, a constant divisor (norm holds float(eps)) */
        double udu = 0.0;
        if (norm[r] > (float)AMLFS_NORM_EPS)
            for (int i = 0; i < cols; i++) udu += (double)ur[i] * (double)dur[i];
        for (int i = 0; i < cols; i++) {
            float v = (float)(((double)dur[i] - (double)ur[i] * udu) / nr);
            gr[i] = accumulate ? gr[i] + v : v;
        }
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
