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

/* A per-channel slope in the native layout: element (n, c, hw) sits at act_at; one
 * thread per (sample, channel block) for the element-wise parts, one per channel block
 * for the slope's gradient, whose B sums run side by side, each over samples then pixels
 * in order as ref_prelu_backward's: the same bits. */
void amlfs_cpu_prelu_forward(void *dev, float *out, const float *in, const float *slope,
                             const amlfs_prelu_shape *s)
{
    (void)dev;
    act_index x = act_index_of(s->layout, s->c, s->h, s->w);
    const int blocks = s->n * x.cb, b = x.b;
    const size_t hw_n = x.hw;
#pragma omp parallel for schedule(static) if ((size_t)blocks * b * hw_n >= PARALLEL_MIN)
    for (int blk = 0; blk < blocks; blk++) {
        int n = blk / x.cb, c0 = (blk % x.cb) * b;
        for (size_t hw = 0; hw < hw_n; hw++)
            for (int cc = 0; cc < b; cc++) {
                int c = c0 + cc;
                size_t at = act_at(&x, n, c, hw);
                if (c >= s->c) { /* the native padding stays zero */
                    out[at] = 0.0f;
                    continue;
                }
                float v = in[at];
                out[at] = v > 0.0f ? v : slope[c] * v;
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
    /* the slope's gradient first: din may be dout (in place) */
    if (dslope) {
        const int cb = x.cb;
#pragma omp parallel for schedule(static) if ((size_t)blocks * b * hw_n >= PARALLEL_MIN)
        for (int k = 0; k < cb; k++) {
            double acc[16] = {0}; /* b <= 16 */
            int c0 = k * b;
            for (int n = 0; n < s->n; n++)
                for (int cc = 0; cc < b && c0 + cc < s->c; cc++) {
                    for (size_t hw = 0; hw < hw_n; hw++) {
                        size_t at = act_at(&x, n, c0 + cc, hw);
                        if (!(in[at] > 0.0f)) acc[cc] += (double)dout[at] * (double)in[at];
                    }
                }
            for (int cc = 0; cc < b && c0 + cc < s->c; cc++) dslope[c0 + cc] += (float)acc[cc];
        }
    }
    if (din) {
#pragma omp parallel for schedule(static) if ((size_t)blocks * b * hw_n >= PARALLEL_MIN)
        for (int blk = 0; blk < blocks; blk++) {
            int n = blk / x.cb, c0 = (blk % x.cb) * b;
            for (size_t hw = 0; hw < hw_n; hw++)
                for (int cc = 0; cc < b; cc++) {
                    int c = c0 + cc;
                    size_t at = act_at(&x, n, c, hw);
                    if (c >= s->c) {
                        din[at] = 0.0f;
                        continue;
                    }
                    float g = dout[at];
                    din[at] = in[at] > 0.0f ? g : slope[c] * g;
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
