/* layers_ref.c: the plain C reference of every layer (amlfs_layers.h, part 1), and the
 * shape arithmetic and checks every backend shares.
 *
 * amlfs_real is float, or double under -DAMLFS_REAL_DOUBLE (the finite-difference test
 * compiles this file a second time that way). Sums are accumulated in double either
 * way, so in float the reference is at least as accurate as the fast paths it judges.
 * Single-threaded and loop-for-loop obvious: it defines the semantics, it is not fast.
 */
#include "amlfs_layers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef amlfs_real real;

/* ---- Shapes ----------------------------------------------------------------------- */

int amlfs_conv_out_h(const amlfs_conv_shape *s) { return (s->h + 2 * s->pad - s->r) / s->stride + 1; }
int amlfs_conv_out_w(const amlfs_conv_shape *s) { return (s->w + 2 * s->pad - s->s) / s->stride + 1; }
int amlfs_pool_out_h(const amlfs_pool_shape *s)
{
    return (s->h + 2 * s->pad - s->kernel) / s->stride + 1;
}
int amlfs_pool_out_w(const amlfs_pool_shape *s)
{
    return (s->w + 2 * s->pad - s->kernel) / s->stride + 1;
}
int amlfs_shortcut_out_h(const amlfs_shortcut_shape *s) { return (s->h - 1) / s->stride + 1; }
int amlfs_shortcut_out_w(const amlfs_shortcut_shape *s) { return (s->w - 1) / s->stride + 1; }

/* Tensors are indexed with int offsets in places; keep every tensor below 2^31 elements. */
static int too_big(double elements) { return elements >= 2147483647.0; }

static int bad_layout(amlfs_layout l) { return l != AMLFS_LAYOUT_PLAIN && l != AMLFS_LAYOUT_NATIVE; }

int amlfs_conv_shape_check(const amlfs_conv_shape *s, char *err, size_t errlen)
{
    if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1 || s->k < 1 || s->r < 1 || s->s < 1 ||
        s->stride < 1 || s->pad < 0) {
        snprintf(err, errlen, "convolution: sizes must be positive and padding >= 0 (n %d c %d "
                 "h %d w %d k %d r %d s %d stride %d pad %d)", s->n, s->c, s->h, s->w, s->k,
                 s->r, s->s, s->stride, s->pad);
        return -1;
    }
    if (bad_layout(s->in_layout) || bad_layout(s->out_layout)) {
        snprintf(err, errlen, "convolution: unknown layout %d or %d", (int)s->in_layout,
                 (int)s->out_layout);
        return -1;
    }
    if (s->h + 2 * s->pad < s->r || s->w + 2 * s->pad < s->s) {
        snprintf(err, errlen, "convolution: kernel %dx%d larger than the padded input %dx%d",
                 s->r, s->s, s->h + 2 * s->pad, s->w + 2 * s->pad);
        return -1;
    }
    double oh = amlfs_conv_out_h(s), ow = amlfs_conv_out_w(s);
    if (too_big((double)s->n * s->c * s->h * s->w) || too_big((double)s->n * s->k * oh * ow) ||
        too_big((double)s->k * s->c * s->r * s->s)) {
        snprintf(err, errlen, "convolution: a tensor has 2^31 elements or more");
        return -1;
    }
    return 0;
}

int amlfs_bn_shape_check(const amlfs_bn_shape *s, char *err, size_t errlen)
{
    if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1) {
        snprintf(err, errlen, "batch norm: sizes must be positive (n %d c %d h %d w %d)", s->n,
                 s->c, s->h, s->w);
        return -1;
    }
    if (!(s->eps > 0.0) || !(s->momentum >= 0.0 && s->momentum <= 1.0)) {
        snprintf(err, errlen, "batch norm: eps %g must be > 0 and momentum %g in [0, 1]", s->eps,
                 s->momentum);
        return -1;
    }
    if (bad_layout(s->layout)) {
        snprintf(err, errlen, "batch norm: unknown layout %d", (int)s->layout);
        return -1;
    }
    if (too_big((double)s->n * s->c * s->h * s->w)) {
        snprintf(err, errlen, "batch norm: the tensor has 2^31 elements or more");
        return -1;
    }
    return 0;
}

int amlfs_pool_shape_check(const amlfs_pool_shape *s, char *err, size_t errlen)
{
    if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1 || s->kernel < 1 || s->stride < 1 ||
        s->pad < 0) {
        snprintf(err, errlen, "pooling: sizes must be positive and padding >= 0 (n %d c %d h %d "
                 "w %d kernel %d stride %d pad %d)", s->n, s->c, s->h, s->w, s->kernel,
                 s->stride, s->pad);
        return -1;
    }
    if (s->kind != AMLFS_POOL_MAX && s->kind != AMLFS_POOL_AVG) {
        snprintf(err, errlen, "pooling: unknown kind %d", (int)s->kind);
        return -1;
    }
    if (bad_layout(s->layout)) {
        snprintf(err, errlen, "pooling: unknown layout %d", (int)s->layout);
        return -1;
    }
    /* PyTorch's rule: every window then holds an input element. */
    if (2 * s->pad > s->kernel) {
        snprintf(err, errlen, "pooling: padding %d more than half the kernel %d", s->pad,
                 s->kernel);
        return -1;
    }
    if (s->h + 2 * s->pad < s->kernel || s->w + 2 * s->pad < s->kernel) {
        snprintf(err, errlen, "pooling: kernel %d larger than the padded input %dx%d", s->kernel,
                 s->h + 2 * s->pad, s->w + 2 * s->pad);
        return -1;
    }
    if (too_big((double)s->n * s->c * s->h * s->w)) {
        snprintf(err, errlen, "pooling: the tensor has 2^31 elements or more");
        return -1;
    }
    return 0;
}

int amlfs_linear_shape_check(const amlfs_linear_shape *s, char *err, size_t errlen)
{
    if (s->n < 1 || s->in < 1 || s->out < 1) {
        snprintf(err, errlen, "linear: sizes must be positive (n %d in %d out %d)", s->n, s->in,
                 s->out);
        return -1;
    }
    if (too_big((double)s->n * s->in) || too_big((double)s->n * s->out) ||
        too_big((double)s->in * s->out)) {
        snprintf(err, errlen, "linear: a tensor has 2^31 elements or more");
        return -1;
    }
    return 0;
}

int amlfs_shortcut_shape_check(const amlfs_shortcut_shape *s, char *err, size_t errlen)
{
    if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1 || s->stride < 1) {
        snprintf(err, errlen, "shortcut: sizes must be positive (n %d c %d h %d w %d stride %d)",
                 s->n, s->c, s->h, s->w, s->stride);
        return -1;
    }
    if (s->k < s->c || (s->k - s->c) % 2 != 0) {
        snprintf(err, errlen, "shortcut: output channels %d must be >= input channels %d, the "
                 "difference even", s->k, s->c);
        return -1;
    }
    if (bad_layout(s->layout)) {
        snprintf(err, errlen, "shortcut: unknown layout %d", (int)s->layout);
        return -1;
    }
    if (too_big((double)s->n * s->k * s->h * s->w)) {
        snprintf(err, errlen, "shortcut: a tensor has 2^31 elements or more");
        return -1;
    }
    return 0;
}

int amlfs_prelu_shape_check(const amlfs_prelu_shape *s, char *err, size_t errlen)
{
    if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1) {
        snprintf(err, errlen, "prelu: sizes must be positive (n %d c %d h %d w %d)", s->n, s->c,
                 s->h, s->w);
        return -1;
    }
    if (bad_layout(s->layout)) {
        snprintf(err, errlen, "prelu: unknown layout %d", (int)s->layout);
        return -1;
    }
    if (too_big((double)s->n * s->c * s->h * s->w)) {
        snprintf(err, errlen, "prelu: the tensor has 2^31 elements or more");
        return -1;
    }
    return 0;
}

int amlfs_cosine_shape_check(const amlfs_cosine_shape *s, char *err, size_t errlen)
{
    if (s->n < 1 || s->in < 1 || s->out < 1) {
        snprintf(err, errlen, "cosine head: sizes must be positive (n %d in %d out %d)", s->n,
                 s->in, s->out);
        return -1;
    }
    if (too_big((double)s->n * s->in) || too_big((double)s->n * s->out) ||
        too_big((double)s->in * s->out)) {
        snprintf(err, errlen, "cosine head: a tensor has 2^31 elements or more");
        return -1;
    }
    return 0;
}

/* ---- Convolution ------------------------------------------------------------------ */

void ref_conv2d_forward(real *out, const real *in, const real *w, const real *bias,
                        const amlfs_conv_shape *s)
{
    const int oh_n = amlfs_conv_out_h(s), ow_n = amlfs_conv_out_w(s);
    for (int n = 0; n < s->n; n++)
        for (int k = 0; k < s->k; k++)
            for (int oh = 0; oh < oh_n; oh++)
                for (int ow = 0; ow < ow_n; ow++) {
                    double acc = bias ? (double)bias[k] : 0.0;
                    for (int c = 0; c < s->c; c++)
                        for (int r = 0; r < s->r; r++) {
                            int ih = oh * s->stride - s->pad + r;
                            if (ih < 0 || ih >= s->h) continue;
                            for (int q = 0; q < s->s; q++) {
                                int iw = ow * s->stride - s->pad + q;
                                if (iw < 0 || iw >= s->w) continue;
                                acc += (double)in[((size_t)(n * s->c + c) * s->h + ih) * s->w + iw] *
                                       (double)w[((size_t)(k * s->c + c) * s->r + r) * s->s + q];
                            }
                        }
                    out[((size_t)(n * s->k + k) * oh_n + oh) * ow_n + ow] = (real)acc;
                }
}

void ref_conv2d_backward(real *din, real *dw, real *dbias, const real *dout, const real *in,
                         const real *w, const amlfs_conv_shape *s)
{
    const int oh_n = amlfs_conv_out_h(s), ow_n = amlfs_conv_out_w(s);
#define DOUT(n, k, oh, ow) dout[((size_t)((n) * s->k + (k)) * oh_n + (oh)) * ow_n + (ow)]
    if (din) {
        /* Gathered per input element: out (oh, ow) saw in (ih, iw) through kernel tap
         * (r, q) when oh stride - pad + r = ih. */
        for (int n = 0; n < s->n; n++)
            for (int c = 0; c < s->c; c++)
                for (int ih = 0; ih < s->h; ih++)
                    for (int iw = 0; iw < s->w; iw++) {
                        double acc = 0.0;
                        for (int k = 0; k < s->k; k++)
                            for (int r = 0; r < s->r; r++) {
                                int th = ih + s->pad - r;
                                if (th < 0 || th % s->stride) continue;
                                int oh = th / s->stride;
                                if (oh >= oh_n) continue;
                                for (int q = 0; q < s->s; q++) {
                                    int tw = iw + s->pad - q;
                                    if (tw < 0 || tw % s->stride) continue;
                                    int ow = tw / s->stride;
                                    if (ow >= ow_n) continue;
                                    acc += (double)DOUT(n, k, oh, ow) *
                                           (double)w[((size_t)(k * s->c + c) * s->r + r) * s->s + q];
                                }
                            }
                        din[((size_t)(n * s->c + c) * s->h + ih) * s->w + iw] = (real)acc;
                    }
    }
    if (dw) {
        for (int k = 0; k < s->k; k++)
            for (int c = 0; c < s->c; c++)
                for (int r = 0; r < s->r; r++)
                    for (int q = 0; q < s->s; q++) {
                        double acc = 0.0;
                        for (int n = 0; n < s->n; n++)
                            for (int oh = 0; oh < oh_n; oh++) {
                                int ih = oh * s->stride - s->pad + r;
                                if (ih < 0 || ih >= s->h) continue;
                                for (int ow = 0; ow < ow_n; ow++) {
                                    int iw = ow * s->stride - s->pad + q;
                                    if (iw < 0 || iw >= s->w) continue;
                                    acc += (double)DOUT(n, k, oh, ow) *
                                           (double)in[((size_t)(n * s->c + c) * s->h + ih) * s->w + iw];
                                }
                            }
                        dw[((size_t)(k * s->c + c) * s->r + r) * s->s + q] += (real)acc;
                    }
    }
    if (dbias) {
        for (int k = 0; k < s->k; k++) {
            double acc = 0.0;
            for (int n = 0; n < s->n; n++)
                for (int oh = 0; oh < oh_n; oh++)
                    for (int ow = 0; ow < ow_n; ow++) acc += (double)DOUT(n, k, oh, ow);
            dbias[k] += (real)acc;
        }
    }
#undef DOUT
}

/* ---- Batch norm ------------------------------------------------------------------- */

/* Element i of channel c at sample n: in[(n C + c) HW + i]. */
static double channel_sum(const real *x, const amlfs_bn_shape *s, int c)
{
    const size_t hw = (size_t)s->h * s->w;
    double acc = 0.0;
    for (int n = 0; n < s->n; n++) {
        const real *xc = x + ((size_t)n * s->c + c) * hw;
        for (size_t i = 0; i < hw; i++) acc += (double)xc[i];
    }
    return acc;
}

void ref_batchnorm_forward_train(real *out, real *save_mean, real *save_var, real *running_mean,
                                 real *running_var, const real *in, const real *gamma,
                                 const real *beta, const amlfs_bn_shape *s)
{
    const size_t hw = (size_t)s->h * s->w;
    const double m = (double)s->n * (double)hw; /* elements per channel */
    for (int c = 0; c < s->c; c++) {
        double mean = channel_sum(in, s, c) / m;
        double ss = 0.0; /* two passes: no cancellation in the variance */
        for (int n = 0; n < s->n; n++) {
            const real *xc = in + ((size_t)n * s->c + c) * hw;
            for (size_t i = 0; i < hw; i++) ss += ((double)xc[i] - mean) * ((double)xc[i] - mean);
        }
        double var = ss / m;
        double invstd = 1.0 / sqrt(var + s->eps);
        for (int n = 0; n < s->n; n++) {
            const real *xc = in + ((size_t)n * s->c + c) * hw;
            real *yc = out + ((size_t)n * s->c + c) * hw;
            for (size_t i = 0; i < hw; i++)
                yc[i] = (real)(((double)xc[i] - mean) * invstd * (double)gamma[c] + (double)beta[c]);
        }
        save_mean[c] = (real)mean;
        save_var[c] = (real)var;
        /* With one element per channel the unbiased variance is undefined; PyTorch
         * refuses that batch in training, we keep the running variance finite. */
        double unbiased = m > 1.0 ? var * m / (m - 1.0) : var;
        running_mean[c] = (real)((1.0 - s->momentum) * (double)running_mean[c] + s->momentum * mean);
        running_var[c] = (real)((1.0 - s->momentum) * (double)running_var[c] + s->momentum * unbiased);
    }
}

void ref_batchnorm_forward_infer(real *out, const real *in, const real *gamma, const real *beta,
                                 const real *running_mean, const real *running_var,
                                 const amlfs_bn_shape *s)
{
    const size_t hw = (size_t)s->h * s->w;
    for (int n = 0; n < s->n; n++)
        for (int c = 0; c < s->c; c++) {
            double invstd = 1.0 / sqrt((double)running_var[c] + s->eps);
            const real *xc = in + ((size_t)n * s->c + c) * hw;
            real *yc = out + ((size_t)n * s->c + c) * hw;
            for (size_t i = 0; i < hw; i++)
                yc[i] = (real)(((double)xc[i] - (double)running_mean[c]) * invstd * (double)gamma[c] +
                               (double)beta[c]);
        }
}

/* Shared by both modes: with xhat = (x - mean) invstd,
 *   dgamma = sum dy xhat, dbeta = sum dy;
 *   training:  dx = gamma invstd (dy - dbeta/M - xhat dgamma/M)  (mean and variance
 *              depend on x);
 *   inference: dx = gamma invstd dy. */
static void batchnorm_backward(real *din, real *dgamma, real *dbeta, const real *dout,
                               const real *in, const real *gamma, const real *mean,
                               const real *var, const amlfs_bn_shape *s, int through_stats)
{
    const size_t hw = (size_t)s->h * s->w;
    const double m = (double)s->n * (double)hw;
    for (int c = 0; c < s->c; c++) {
        double mu = (double)mean[c], invstd = 1.0 / sqrt((double)var[c] + s->eps);
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int n = 0; n < s->n; n++) {
            const real *xc = in + ((size_t)n * s->c + c) * hw;
            const real *dyc = dout + ((size_t)n * s->c + c) * hw;
            for (size_t i = 0; i < hw; i++) {
                sum_dy += (double)dyc[i];
                sum_dy_xhat += (double)dyc[i] * ((double)xc[i] - mu) * invstd;
            }
        }
        if (din) {
            double scale = (double)gamma[c] * invstd;
            for (int n = 0; n < s->n; n++) {
                const real *xc = in + ((size_t)n * s->c + c) * hw;
                const real *dyc = dout + ((size_t)n * s->c + c) * hw;
                real *dxc = din + ((size_t)n * s->c + c) * hw;
                for (size_t i = 0; i < hw; i++) {
                    double g = (double)dyc[i];
                    if (through_stats) {
                        double xhat = ((double)xc[i] - mu) * invstd;
                        g -= sum_dy / m + xhat * sum_dy_xhat / m;
                    }
                    dxc[i] = (real)(scale * g);
                }
            }
        }
        if (dgamma) dgamma[c] += (real)sum_dy_xhat;
        if (dbeta) dbeta[c] += (real)sum_dy;
    }
}

void ref_batchnorm_backward_train(real *din, real *dgamma, real *dbeta, const real *dout,
                                  const real *in, const real *gamma, const real *save_mean,
                                  const real *save_var, const amlfs_bn_shape *s)
{
    batchnorm_backward(din, dgamma, dbeta, dout, in, gamma, save_mean, save_var, s, 1);
}

void ref_batchnorm_backward_infer(real *din, real *dgamma, real *dbeta, const real *dout,
                                  const real *in, const real *gamma, const real *running_mean,
                                  const real *running_var, const amlfs_bn_shape *s)
{
    batchnorm_backward(din, dgamma, dbeta, dout, in, gamma, running_mean, running_var, s, 0);
}

/* ---- ReLU, add --------------------------------------------------------------------- */

void ref_relu_forward(real *out, const real *in, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = in[i] > 0 ? in[i] : 0;
}

void ref_relu_backward(real *din, const real *dout, const real *out, size_t n)
{
    for (size_t i = 0; i < n; i++) din[i] = out[i] > 0 ? dout[i] : 0;
}

void ref_add_forward(real *out, const real *a, const real *b, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void ref_add_backward(real *da, real *db, const real *dout, size_t n)
{
    /* memmove: da or db may be dout itself */
    if (da != dout) memmove(da, dout, n * sizeof *da);
    if (db != dout) memmove(db, dout, n * sizeof *db);
}

/* ---- Pooling ----------------------------------------------------------------------- */

/* The window of output (oh, ow): input rows [h0, h1) and columns [w0, w1), clipped to
 * the input; *divisor the average's denominator (PyTorch's rule: with count_include_pad
 * the window clipped to the padded input, else the clipped window). */
static void pool_window(const amlfs_pool_shape *s, int oh, int ow, int *h0, int *h1, int *w0,
                        int *w1, int *divisor)
{
    int hs = oh * s->stride - s->pad, ws = ow * s->stride - s->pad;
    int he = hs + s->kernel, we = ws + s->kernel;
    int he_pad = he < s->h + s->pad ? he : s->h + s->pad;
    int we_pad = we < s->w + s->pad ? we : s->w + s->pad;
    int padded = (he_pad - hs) * (we_pad - ws);
    *h0 = hs > 0 ? hs : 0;
    *w0 = ws > 0 ? ws : 0;
    *h1 = he < s->h ? he : s->h;
    *w1 = we < s->w ? we : s->w;
    *divisor = s->count_include_pad ? padded : (*h1 - *h0) * (*w1 - *w0);
}

void ref_pool_forward(real *out, const real *in, const amlfs_pool_shape *s)
{
    const int oh_n = amlfs_pool_out_h(s), ow_n = amlfs_pool_out_w(s);
    for (int nc = 0; nc < s->n * s->c; nc++) {
        const real *x = in + (size_t)nc * s->h * s->w;
        real *y = out + (size_t)nc * oh_n * ow_n;
        for (int oh = 0; oh < oh_n; oh++)
            for (int ow = 0; ow < ow_n; ow++) {
                int h0, h1, w0, w1, divisor;
                pool_window(s, oh, ow, &h0, &h1, &w0, &w1, &divisor);
                if (s->kind == AMLFS_POOL_MAX) {
                    real best = x[h0 * s->w + w0];
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++)
                            if (x[ih * s->w + iw] > best) best = x[ih * s->w + iw];
                    y[oh * ow_n + ow] = best;
                } else {
                    double acc = 0.0;
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++) acc += (double)x[ih * s->w + iw];
                    y[oh * ow_n + ow] = (real)(acc / divisor);
                }
            }
    }
}

void ref_pool_backward(real *din, const real *dout, const real *in, const amlfs_pool_shape *s)
{
    const int oh_n = amlfs_pool_out_h(s), ow_n = amlfs_pool_out_w(s);
    memset(din, 0, (size_t)s->n * s->c * s->h * s->w * sizeof *din);
    for (int nc = 0; nc < s->n * s->c; nc++) {
        const real *x = in + (size_t)nc * s->h * s->w;
        const real *dy = dout + (size_t)nc * oh_n * ow_n;
        real *dx = din + (size_t)nc * s->h * s->w;
        for (int oh = 0; oh < oh_n; oh++)
            for (int ow = 0; ow < ow_n; ow++) {
                int h0, h1, w0, w1, divisor;
                pool_window(s, oh, ow, &h0, &h1, &w0, &w1, &divisor);
                real g = dy[oh * ow_n + ow];
                if (s->kind == AMLFS_POOL_MAX) {
                    int arg = h0 * s->w + w0;
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++)
                            if (x[ih * s->w + iw] > x[arg]) arg = ih * s->w + iw;
                    dx[arg] += g;
                } else {
                    real share = (real)((double)g / divisor);
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++) dx[ih * s->w + iw] += share;
                }
            }
    }
}

void ref_global_avgpool_forward(real *out, const real *in, int n, int c, int hw)
{
    for (int i = 0; i < n * c; i++) {
        double acc = 0.0;
        for (int j = 0; j < hw; j++) acc += (double)in[(size_t)i * hw + j];
        out[i] = (real)(acc / hw);
    }
}

void ref_global_avgpool_backward(real *din, const real *dout, int n, int c, int hw)
{
    for (int i = 0; i < n * c; i++) {
        real g = (real)((double)dout[i] / hw);
        for (int j = 0; j < hw; j++) din[(size_t)i * hw + j] = g;
    }
}

/* ---- Linear ------------------------------------------------------------------------ */

void ref_linear_forward(real *out, const real *in, const real *w, const real *bias,
                        const amlfs_linear_shape *s)
{
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->out; o++) {
            double acc = bias ? (double)bias[o] : 0.0;
            for (int i = 0; i < s->in; i++)
                acc += (double)in[(size_t)n * s->in + i] * (double)w[(size_t)o * s->in + i];
            out[(size_t)n * s->out + o] = (real)acc;
        }
}

void ref_linear_backward(real *din, real *dw, real *dbias, const real *dout, const real *in,
                         const real *w, const amlfs_linear_shape *s)
{
    if (din)
        for (int n = 0; n < s->n; n++)
            for (int i = 0; i < s->in; i++) {
                double acc = 0.0;
                for (int o = 0; o < s->out; o++)
                    acc += (double)dout[(size_t)n * s->out + o] * (double)w[(size_t)o * s->in + i];
                din[(size_t)n * s->in + i] = (real)acc;
            }
    if (dw)
        for (int o = 0; o < s->out; o++)
            for (int i = 0; i < s->in; i++) {
                double acc = 0.0;
                for (int n = 0; n < s->n; n++)
                    acc += (double)dout[(size_t)n * s->out + o] * (double)in[(size_t)n * s->in + i];
                dw[(size_t)o * s->in + i] += (real)acc;
            }
    if (dbias)
        for (int o = 0; o < s->out; o++) {
            double acc = 0.0;
            for (int n = 0; n < s->n; n++) acc += (double)dout[(size_t)n * s->out + o];
            dbias[o] += (real)acc;
        }
}

/* ---- PReLU ------------------------------------------------------------------------ */

void ref_prelu_forward(real *out, const real *in, const real *slope, const amlfs_prelu_shape *s)
{
    const size_t hw = (size_t)s->h * s->w;
    for (int n = 0; n < s->n; n++)
        for (int c = 0; c < s->c; c++) {
            const real *x = in + ((size_t)n * s->c + c) * hw;
            real *y = out + ((size_t)n * s->c + c) * hw;
            for (size_t i = 0; i < hw; i++) y[i] = x[i] > 0 ? x[i] : slope[c] * x[i];
        }
}

void ref_prelu_backward(real *din, real *dslope, const real *dout, const real *in,
                        const real *slope, const amlfs_prelu_shape *s)
{
    const size_t hw = (size_t)s->h * s->w;
    if (din)
        for (int n = 0; n < s->n; n++)
            for (int c = 0; c < s->c; c++) {
                size_t base = ((size_t)n * s->c + c) * hw;
                for (size_t i = 0; i < hw; i++)
                    din[base + i] = in[base + i] > 0 ? dout[base + i] : slope[c] * dout[base + i];
            }
    if (dslope)
        for (int c = 0; c < s->c; c++) {
            /* each sample's pixels summed in order, then the samples' sums in order (the
             * fast path sums the samples in parallel and matches this to the bit) */
            double acc = 0.0;
            for (int n = 0; n < s->n; n++) {
                size_t base = ((size_t)n * s->c + c) * hw;
                double part = 0.0;
                for (size_t i = 0; i < hw; i++)
                    if (!(in[base + i] > 0)) part += (double)dout[base + i] * (double)in[base + i];
                acc += part;
            }
            dslope[c] += (real)acc;
        }
}

/* ---- The cosine head ------------------------------------------------------------- */

/* max(|a_r|, eps), the norm F.normalize divides by */
static double row_norm(const real *a, int cols)
{
    double ss = 0.0;
    for (int i = 0; i < cols; i++) ss += (double)a[i] * (double)a[i];
    double norm = sqrt(ss);
    return norm > AMLFS_NORM_EPS ? norm : AMLFS_NORM_EPS;
}

void ref_cosine_forward(real *out, const real *x, const real *w, const amlfs_cosine_shape *s)
{
    for (int n = 0; n < s->n; n++) {
        const real *xn = x + (size_t)n * s->in;
        double nx = row_norm(xn, s->in);
        for (int j = 0; j < s->out; j++) {
            const real *wj = w + (size_t)j * s->in;
            double acc = 0.0;
            for (int i = 0; i < s->in; i++) acc += (double)xn[i] * (double)wj[i];
            out[(size_t)n * s->out + j] = (real)(acc / (nx * row_norm(wj, s->in)));
        }
    }
}

/* g_r (cols) from the gradient du_r wrt the normalised row u_r = a_r / norm:
 * (du - u (u . du)) / norm when |a_r| > eps (the norm moves with a_r), du / eps else. */
static void project_row(double *g, const double *du, const real *a, int cols)
{
    double ss = 0.0;
    for (int i = 0; i < cols; i++) ss += (double)a[i] * (double)a[i];
    double norm = sqrt(ss);
    if (!(norm > AMLFS_NORM_EPS)) {
        for (int i = 0; i < cols; i++) g[i] = du[i] / AMLFS_NORM_EPS;
        return;
    }
    double udu = 0.0;
    for (int i = 0; i < cols; i++) udu += (double)a[i] / norm * du[i];
    for (int i = 0; i < cols; i++) g[i] = (du[i] - (double)a[i] / norm * udu) / norm;
}

void ref_cosine_backward(real *dx, real *dw, const real *dout, const real *x, const real *w,
                         const amlfs_cosine_shape *s)
{
    const int d = s->in;
    double *du = calloc((size_t)d, sizeof *du), *g = calloc((size_t)d, sizeof *g);
    if (!du || !g) {
        fprintf(stderr, "ref_cosine_backward: out of memory\n");
        abort();
    }
    if (dx)
        for (int n = 0; n < s->n; n++) {
            for (int i = 0; i < d; i++) du[i] = 0.0;
            for (int j = 0; j < s->out; j++) {
                const real *wj = w + (size_t)j * d;
                double scale = (double)dout[(size_t)n * s->out + j] / row_norm(wj, d);
                for (int i = 0; i < d; i++) du[i] += scale * (double)wj[i];
            }
            project_row(g, du, x + (size_t)n * d, d);
            for (int i = 0; i < d; i++) dx[(size_t)n * d + i] = (real)g[i];
        }
    if (dw)
        for (int j = 0; j < s->out; j++) {
            for (int i = 0; i < d; i++) du[i] = 0.0;
            for (int n = 0; n < s->n; n++) {
                const real *xn = x + (size_t)n * d;
                double scale = (double)dout[(size_t)n * s->out + j] / row_norm(xn, d);
                for (int i = 0; i < d; i++) du[i] += scale * (double)xn[i];
            }
            project_row(g, du, w + (size_t)j * d, d);
            for (int i = 0; i < d; i++) dw[(size_t)j * d + i] += (real)g[i];
        }
    free(du);
    free(g);
}

/* ---- The option-A shortcut --------------------------------------------------------- */

void ref_shortcut_forward(real *out, const real *in, const amlfs_shortcut_shape *s)
{
    const int oh_n = amlfs_shortcut_out_h(s), ow_n = amlfs_shortcut_out_w(s);
    const int lo = (s->k - s->c) / 2; /* zero channels below the copied ones */
    for (int n = 0; n < s->n; n++)
        for (int k = 0; k < s->k; k++) {
            int c = k - lo;
            real *y = out + ((size_t)n * s->k + k) * oh_n * ow_n;
            for (int oh = 0; oh < oh_n; oh++)
                for (int ow = 0; ow < ow_n; ow++)
                    y[oh * ow_n + ow] =
                        (c >= 0 && c < s->c)
                            ? in[(((size_t)n * s->c + c) * s->h + (size_t)oh * s->stride) * s->w +
                                 (size_t)ow * s->stride]
                            : 0;
        }
}

void ref_shortcut_backward(real *din, const real *dout, const amlfs_shortcut_shape *s)
{
    const int oh_n = amlfs_shortcut_out_h(s), ow_n = amlfs_shortcut_out_w(s);
    const int lo = (s->k - s->c) / 2;
    memset(din, 0, (size_t)s->n * s->c * s->h * s->w * sizeof *din);
    for (int n = 0; n < s->n; n++)
        for (int c = 0; c < s->c; c++) {
            const real *dy = dout + ((size_t)n * s->k + c + lo) * oh_n * ow_n;
            real *dx = din + ((size_t)n * s->c + c) * s->h * s->w;
            for (int oh = 0; oh < oh_n; oh++)
                for (int ow = 0; ow < ow_n; ow++)
                    dx[(size_t)oh * s->stride * s->w + (size_t)ow * s->stride] = dy[oh * ow_n + ow];
        }
}

/* ---- SGD --------------------------------------------------------------------------- */

void ref_sgd_step(real *param, real *momentum_buf, const real *grad, size_t n, double lr,
                  double momentum, double weight_decay, int nesterov, int first_step)
{
    /* The hyper-parameters in the tensors' precision, as PyTorch casts its scalars. */
    const real lr_r = (real)lr, mom_r = (real)momentum, wd_r = (real)weight_decay;
    for (size_t i = 0; i < n; i++) {
        real g = grad[i];
        if (weight_decay != 0.0) g = g + wd_r * param[i];
        if (momentum != 0.0) {
            real buf = first_step ? g : mom_r * momentum_buf[i] + g;
            momentum_buf[i] = buf;
            g = nesterov ? g + mom_r * buf : buf;
        }
        param[i] = param[i] - lr_r * g;
    }
}
