/* test_layers_fd.c: every layer's reference backward (kernels/cpu/layers_ref.c, compiled
 * with -DAMLFS_REAL_DOUBLE) against central finite differences in double precision.
 *
 * For a random upstream gradient dout, L(x) = sum(dout * forward(x)) and each analytic
 * gradient element must match (L(x + h e_i) - L(x - h e_i)) / 2h, h = FD_STEP, within
 * FD_ATOL max|g| + FD_RTOL |g|: the truncation error is O(h^2) and the rounding error
 * about 1e-16 |L| / h, both far below the tolerance. Every element of every input and
 * parameter is checked. ReLU inputs stay at least 0.05 from 0 and max-pooling inputs are
 * distinct by at least 0.01, so no step crosses a kink.
 * Links with the float64 reference object alone (Makefile: test_layers_fd).
 */
#ifndef AMLFS_REAL_DOUBLE
#error "test_layers_fd.c is built with -DAMLFS_REAL_DOUBLE (see the Makefile)"
#endif

#include "amlfs_rng.h"
#include "amlfs_layers.h"
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FD_STEP 1e-5
#define FD_RTOL 1e-6
#define FD_ATOL 1e-7

/* ---- Test data -------------------------------------------------------------------- */

/* Test data from the project's own Philox streams (the test stream, never the tools'). */
static amlfs_rng_cursor test_rng = {{0xfd5eedu, 0, 0, AMLFS_STREAM_TEST}, 0};
static double uniform01(void) { return amlfs_next_uniform(&test_rng); }
static double normal01(void) { return amlfs_next_normal(&test_rng); }

static double *zeros(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "test_layers_fd: out of memory\n");
        exit(1);
    }
    return p;
}

static double *randn(size_t n, double scale, double shift)
{
    double *p = zeros(n);
    for (size_t i = 0; i < n; i++) p[i] = normal01() * scale + shift;
    return p;
}

/* Values spaced 0.01 apart in random order: no ties, no step changes a maximum. */
static double *distinct(size_t n)
{
    double *p = zeros(n);
    for (size_t i = 0; i < n; i++) p[i] = 0.01 * (double)i - 0.005 * (double)n;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(uniform01() * (double)(i + 1));
        double t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

/* ---- The check --------------------------------------------------------------------- */

/* L as a function of the layer's current inputs. */
typedef double (*loss_fn)(void *layer);

static double dot(const double *a, const double *b, size_t n)
{
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

/* Each element of x (n) perturbed in turn; analytic (n) the backward's gradient. */
static void fd_check(const char *what, double *x, size_t n, const double *analytic, loss_fn loss,
                     void *layer)
{
    double biggest = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(analytic[i]) > biggest) biggest = fabs(analytic[i]);
    double worst_abs = 0.0, worst_excess = 0.0;
    size_t worst_i = 0;
    double worst_num = 0.0;
    for (size_t i = 0; i < n; i++) {
        double saved = x[i];
        x[i] = saved + FD_STEP;
        double up = loss(layer);
        x[i] = saved - FD_STEP;
        double down = loss(layer);
        x[i] = saved;
        double numeric = (up - down) / (2.0 * FD_STEP), e = fabs(numeric - analytic[i]);
        double excess = e / (FD_ATOL * biggest + FD_RTOL * fabs(analytic[i]) + 1e-300);
        if (e > worst_abs) worst_abs = e;
        if (excess > worst_excess || excess != excess) {
            worst_excess = excess;
            worst_i = i;
            worst_num = numeric;
        }
    }
    printf("  %-36s n %5zu  max |g| %.3g  max abs err %.3g  (%.3f of tolerance)\n", what, n,
           biggest, worst_abs, worst_excess);
    CHECK(worst_excess <= 1.0 && biggest > 0.0,
          "%s: element %zu analytic %.15g, finite difference %.15g (max |g| %g)", what, worst_i,
          analytic[worst_i], worst_num, biggest);
}

/* ---- Convolution -------------------------------------------------------------------- */

typedef struct {
    amlfs_conv_shape s;
    double *in, *w, *bias, *dout, *out;
    size_t n_in, n_w, n_out;
} conv_layer;

static double conv_loss(void *p)
{
    conv_layer *l = p;
    ref_conv2d_forward(l->out, l->in, l->w, l->s.has_bias ? l->bias : NULL, &l->s);
    return dot(l->dout, l->out, l->n_out);
}

static void test_conv(const char *name, amlfs_conv_shape s)
{
    conv_layer l = {.s = s};
    l.n_in = (size_t)s.n * s.c * s.h * s.w;
    l.n_w = (size_t)s.k * s.c * s.r * s.s;
    l.n_out = (size_t)s.n * s.k * amlfs_conv_out_h(&s) * amlfs_conv_out_w(&s);
    l.in = randn(l.n_in, 1, 0), l.w = randn(l.n_w, 0.3, 0), l.bias = randn(s.k, 0.1, 0);
    l.dout = randn(l.n_out, 1, 0), l.out = zeros(l.n_out);
    double *din = zeros(l.n_in), *dw = zeros(l.n_w), *db = zeros(s.k);
    ref_conv2d_backward(din, dw, s.has_bias ? db : NULL, l.dout, l.in, l.w, &s);
    char what[96];
    snprintf(what, sizeof what, "%s din", name);
    fd_check(what, l.in, l.n_in, din, conv_loss, &l);
    snprintf(what, sizeof what, "%s dw", name);
    fd_check(what, l.w, l.n_w, dw, conv_loss, &l);
    if (s.has_bias) {
        snprintf(what, sizeof what, "%s dbias", name);
        fd_check(what, l.bias, s.k, db, conv_loss, &l);
    }
    free(l.in), free(l.w), free(l.bias), free(l.dout), free(l.out), free(din), free(dw), free(db);
}

/* ---- Batch norm --------------------------------------------------------------------- */

typedef struct {
    amlfs_bn_shape s;
    int train;
    double *in, *gamma, *beta, *rm, *rv, *dout, *out, *mean, *var, *rm_scratch, *rv_scratch;
    size_t n;
} bn_layer;

static double bn_loss(void *p)
{
    bn_layer *l = p;
    if (l->train) {
        /* the running statistics change on every call: scratch copies */
        memcpy(l->rm_scratch, l->rm, l->s.c * sizeof(double));
        memcpy(l->rv_scratch, l->rv, l->s.c * sizeof(double));
        ref_batchnorm_forward_train(l->out, l->mean, l->var, l->rm_scratch, l->rv_scratch, l->in,
                                    l->gamma, l->beta, &l->s);
    } else {
        ref_batchnorm_forward_infer(l->out, l->in, l->gamma, l->beta, l->rm, l->rv, &l->s);
    }
    return dot(l->dout, l->out, l->n);
}

static void test_bn(const char *name, amlfs_bn_shape s, int train)
{
    bn_layer l = {.s = s, .train = train};
    const size_t c = (size_t)s.c;
    l.n = (size_t)s.n * s.c * s.h * s.w;
    l.in = randn(l.n, 2, 0.5), l.gamma = randn(c, 0.3, 1), l.beta = randn(c, 0.2, 0);
    l.rm = randn(c, 0.5, 0), l.rv = zeros(c), l.dout = randn(l.n, 1, 0), l.out = zeros(l.n);
    l.mean = zeros(c), l.var = zeros(c), l.rm_scratch = zeros(c), l.rv_scratch = zeros(c);
    for (size_t i = 0; i < c; i++) l.rv[i] = 0.5 + uniform01();
    double *din = zeros(l.n), *dg = zeros(c), *db = zeros(c);
    bn_loss(&l); /* the saved statistics of the unperturbed input */
    if (train)
        ref_batchnorm_backward_train(din, dg, db, l.dout, l.in, l.gamma, l.mean, l.var, &s);
    else
        ref_batchnorm_backward_infer(din, dg, db, l.dout, l.in, l.gamma, l.rm, l.rv, &s);
    char what[96];
    snprintf(what, sizeof what, "%s din", name);
    fd_check(what, l.in, l.n, din, bn_loss, &l);
    snprintf(what, sizeof what, "%s dgamma", name);
    fd_check(what, l.gamma, c, dg, bn_loss, &l);
    snprintf(what, sizeof what, "%s dbeta", name);
    fd_check(what, l.beta, c, db, bn_loss, &l);
    free(l.in), free(l.gamma), free(l.beta), free(l.rm), free(l.rv), free(l.dout), free(l.out);
    free(l.mean), free(l.var), free(l.rm_scratch), free(l.rv_scratch), free(din), free(dg), free(db);
}

/* ---- Pooling ------------------------------------------------------------------------ */

typedef struct {
    amlfs_pool_shape s;
    double *in, *dout, *out;
    size_t n_in, n_out;
} pool_layer;

static double pool_loss(void *p)
{
    pool_layer *l = p;
    ref_pool_forward(l->out, l->in, &l->s);
    return dot(l->dout, l->out, l->n_out);
}

static void test_pool(const char *name, amlfs_pool_shape s)
{
    pool_layer l = {.s = s};
    l.n_in = (size_t)s.n * s.c * s.h * s.w;
    l.n_out = (size_t)s.n * s.c * amlfs_pool_out_h(&s) * amlfs_pool_out_w(&s);
    l.in = distinct(l.n_in), l.dout = randn(l.n_out, 1, 0), l.out = zeros(l.n_out);
    double *din = zeros(l.n_in);
    ref_pool_backward(din, l.dout, l.in, &s);
    char what[96];
    snprintf(what, sizeof what, "%s din", name);
    fd_check(what, l.in, l.n_in, din, pool_loss, &l);
    free(l.in), free(l.dout), free(l.out), free(din);
}

typedef struct {
    int n, c, hw;
    double *in, *dout, *out;
} gap_layer;

static double gap_loss(void *p)
{
    gap_layer *l = p;
    ref_global_avgpool_forward(l->out, l->in, l->n, l->c, l->hw);
    return dot(l->dout, l->out, (size_t)l->n * l->c);
}

static void test_gap(void)
{
    gap_layer l = {3, 4, 5 * 5, NULL, NULL, NULL};
    size_t n_in = (size_t)l.n * l.c * l.hw, n_out = (size_t)l.n * l.c;
    l.in = randn(n_in, 1, 0), l.dout = randn(n_out, 1, 0), l.out = zeros(n_out);
    double *din = zeros(n_in);
    ref_global_avgpool_backward(din, l.dout, l.n, l.c, l.hw);
    fd_check("global avgpool 3x4x5x5 din", l.in, n_in, din, gap_loss, &l);
    free(l.in), free(l.dout), free(l.out), free(din);
}

/* ---- Linear ------------------------------------------------------------------------- */

typedef struct {
    amlfs_linear_shape s;
    double *in, *w, *bias, *dout, *out;
} linear_layer;

static double linear_loss(void *p)
{
    linear_layer *l = p;
    ref_linear_forward(l->out, l->in, l->w, l->s.has_bias ? l->bias : NULL, &l->s);
    return dot(l->dout, l->out, (size_t)l->s.n * l->s.out);
}

static void test_linear(const char *name, amlfs_linear_shape s)
{
    linear_layer l = {.s = s};
    size_t n_in = (size_t)s.n * s.in, n_w = (size_t)s.out * s.in, n_out = (size_t)s.n * s.out;
    l.in = randn(n_in, 1, 0), l.w = randn(n_w, 0.3, 0), l.bias = randn(s.out, 0.1, 0);
    l.dout = randn(n_out, 1, 0), l.out = zeros(n_out);
    double *din = zeros(n_in), *dw = zeros(n_w), *db = zeros(s.out);
    ref_linear_backward(din, dw, s.has_bias ? db : NULL, l.dout, l.in, l.w, &s);
    char what[96];
    snprintf(what, sizeof what, "%s din", name);
    fd_check(what, l.in, n_in, din, linear_loss, &l);
    snprintf(what, sizeof what, "%s dw", name);
    fd_check(what, l.w, n_w, dw, linear_loss, &l);
    if (s.has_bias) {
        snprintf(what, sizeof what, "%s dbias", name);
        fd_check(what, l.bias, s.out, db, linear_loss, &l);
    }
    free(l.in), free(l.w), free(l.bias), free(l.dout), free(l.out), free(din), free(dw), free(db);
}

/* ---- PReLU and the cosine head -------------------------------------------------------- */

typedef struct {
    amlfs_prelu_shape s;
    double *in, *slope, *dout, *out;
    size_t n;
} prelu_layer;

static double prelu_loss(void *p)
{
    prelu_layer *l = p;
    ref_prelu_forward(l->out, l->in, l->slope, &l->s);
    return dot(l->dout, l->out, l->n);
}

static void test_prelu(const char *name, amlfs_prelu_shape s)
{
    prelu_layer l = {.s = s, .n = (size_t)s.n * s.c * s.h * s.w};
    l.in = randn(l.n, 1, 0), l.slope = randn((size_t)s.c, 0.2, 0.25), l.dout = randn(l.n, 1, 0);
    l.out = zeros(l.n);
    for (size_t i = 0; i < l.n; i++) /* keep 0.05 away from the kink */
        if (fabs(l.in[i]) < 0.05) l.in[i] = l.in[i] < 0 ? -0.05 - l.in[i] : 0.05 + l.in[i];
    double *din = zeros(l.n), *ds = zeros((size_t)s.c);
    ref_prelu_backward(din, ds, l.dout, l.in, l.slope, &s);
    char what[96];
    snprintf(what, sizeof what, "%s din", name);
    fd_check(what, l.in, l.n, din, prelu_loss, &l);
    snprintf(what, sizeof what, "%s dslope", name);
    fd_check(what, l.slope, (size_t)s.c, ds, prelu_loss, &l);
    free(l.in), free(l.slope), free(l.dout), free(l.out), free(din), free(ds);
}

typedef struct {
    amlfs_cosine_shape s;
    double *x, *w, *dout, *out;
} cosine_layer;

static double cosine_loss(void *p)
{
    cosine_layer *l = p;
    ref_cosine_forward(l->out, l->x, l->w, &l->s);
    return dot(l->dout, l->out, (size_t)l->s.n * l->s.out);
}

/* tiny_row >= 0: that feature row scaled to norm 1e-13, below eps: x / eps is linear there */
static void test_cosine(const char *name, amlfs_cosine_shape s, int tiny_row)
{
    cosine_layer l = {.s = s};
    size_t n_x = (size_t)s.n * s.in, n_w = (size_t)s.out * s.in, n_out = (size_t)s.n * s.out;
    l.x = randn(n_x, 2, 0), l.w = randn(n_w, 0.3, 0), l.dout = randn(n_out, 1, 0);
    l.out = zeros(n_out);
    if (tiny_row >= 0) {
        double ss = 0;
        for (int i = 0; i < s.in; i++) ss += l.x[(size_t)tiny_row * s.in + i] * l.x[(size_t)tiny_row * s.in + i];
        for (int i = 0; i < s.in; i++) l.x[(size_t)tiny_row * s.in + i] *= 1e-13 / sqrt(ss);
    }
    double *dx = zeros(n_x), *dw = zeros(n_w);
    ref_cosine_backward(dx, dw, l.dout, l.x, l.w, &s);
    char what[96];
    if (tiny_row < 0) {
        snprintf(what, sizeof what, "%s dx", name);
        fd_check(what, l.x, n_x, dx, cosine_loss, &l);
    } else { /* a step of 1e-5 would leave the floor: check the tiny row's gradient by its
                definition (the plain gradient over eps) and the other rows by differences */
        double worst = 0;
        for (int i = 0; i < s.in; i++) {
            double du = 0;
            for (int j = 0; j < s.out; j++) {
                double nw = 0;
                for (int q = 0; q < s.in; q++) nw += l.w[(size_t)j * s.in + q] * l.w[(size_t)j * s.in + q];
                du += l.dout[(size_t)tiny_row * s.out + j] * l.w[(size_t)j * s.in + i] / sqrt(nw);
            }
            double want = du / AMLFS_NORM_EPS, got = dx[(size_t)tiny_row * s.in + i];
            worst = fmax(worst, fabs(got - want) / fabs(want));
        }
        printf("  %-36s row %d: dx = du / eps, worst rel err %.3g\n", name, tiny_row, worst);
        CHECK(worst < 1e-12, "%s: the row below eps has gradient off by %g", name, worst);
    }
    snprintf(what, sizeof what, "%s dw", name);
    fd_check(what, l.w, n_w, dw, cosine_loss, &l);
    free(l.x), free(l.w), free(l.dout), free(l.out), free(dx), free(dw);
}

/* ---- ReLU, add, shortcut ------------------------------------------------------------ */

typedef struct {
    size_t n;
    double *a, *b, *dout, *out;
} pointwise_layer;

static double relu_loss(void *p)
{
    pointwise_layer *l = p;
    ref_relu_forward(l->out, l->a, l->n);
    return dot(l->dout, l->out, l->n);
}

static double add_loss(void *p)
{
    pointwise_layer *l = p;
    ref_add_forward(l->out, l->a, l->b, l->n);
    return dot(l->dout, l->out, l->n);
}

static void test_pointwise(void)
{
    pointwise_layer l = {2 * 3 * 4 * 4, NULL, NULL, NULL, NULL};
    l.a = randn(l.n, 1, 0), l.b = randn(l.n, 1, 0), l.dout = randn(l.n, 1, 0), l.out = zeros(l.n);
    for (size_t i = 0; i < l.n; i++) /* keep 0.05 away from the kink */
        if (fabs(l.a[i]) < 0.05) l.a[i] = l.a[i] < 0 ? -0.05 - l.a[i] : 0.05 + l.a[i];
    double *din = zeros(l.n), *da = zeros(l.n), *db = zeros(l.n);
    relu_loss(&l);
    ref_relu_backward(din, l.dout, l.out, l.n);
    fd_check("relu 2x3x4x4 din", l.a, l.n, din, relu_loss, &l);
    ref_add_backward(da, db, l.dout, l.n);
    fd_check("add 2x3x4x4 da", l.a, l.n, da, add_loss, &l);
    fd_check("add 2x3x4x4 db", l.b, l.n, db, add_loss, &l);
    free(l.a), free(l.b), free(l.dout), free(l.out), free(din), free(da), free(db);
}

typedef struct {
    amlfs_shortcut_shape s;
    double *in, *dout, *out;
    size_t n_out;
} shortcut_layer;

static double shortcut_loss(void *p)
{
    shortcut_layer *l = p;
    ref_shortcut_forward(l->out, l->in, &l->s);
    return dot(l->dout, l->out, l->n_out);
}

static void test_shortcut(void)
{
    shortcut_layer l = {.s = {2, 4, 7, 7, 8, 2}};
    size_t n_in = (size_t)2 * 4 * 7 * 7;
    l.n_out = (size_t)2 * 8 * amlfs_shortcut_out_h(&l.s) * amlfs_shortcut_out_w(&l.s);
    l.in = randn(n_in, 1, 0), l.dout = randn(l.n_out, 1, 0), l.out = zeros(l.n_out);
    double *din = zeros(n_in);
    ref_shortcut_backward(din, l.dout, &l.s);
    fd_check("shortcut 2x4x7x7 -> 8 stride 2 din", l.in, n_in, din, shortcut_loss, &l);
    free(l.in), free(l.dout), free(l.out), free(din);
}

int main(void)
{
    printf("central differences, h %g: |fd - g| <= %g max|g| + %g |g|\n", FD_STEP, FD_ATOL,
           FD_RTOL);
    test_conv("conv 2x3x6x6 k4 3x3 s1 p1 bias", (amlfs_conv_shape){2, 3, 6, 6, 4, 3, 3, 1, 1, 1, AMLFS_LAYOUT_PLAIN, AMLFS_LAYOUT_PLAIN});
    test_conv("conv 2x3x7x7 k4 3x3 s2 p1", (amlfs_conv_shape){2, 3, 7, 7, 4, 3, 3, 2, 1, 0, AMLFS_LAYOUT_PLAIN, AMLFS_LAYOUT_PLAIN});
    test_conv("conv 2x3x8x8 k5 3x3 s2 p1", (amlfs_conv_shape){2, 3, 8, 8, 5, 3, 3, 2, 1, 0, AMLFS_LAYOUT_PLAIN, AMLFS_LAYOUT_PLAIN});
    test_conv("conv 2x4x5x5 k3 1x1 s2 p0 bias", (amlfs_conv_shape){2, 4, 5, 5, 3, 1, 1, 2, 0, 1, AMLFS_LAYOUT_PLAIN, AMLFS_LAYOUT_PLAIN});
    test_bn("bn train 4x3x5x5", (amlfs_bn_shape){4, 3, 5, 5, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, AMLFS_LAYOUT_PLAIN}, 1);
    test_bn("bn infer 4x3x5x5", (amlfs_bn_shape){4, 3, 5, 5, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, AMLFS_LAYOUT_PLAIN}, 0);
    test_bn("bn1d train 8x6", (amlfs_bn_shape){8, 6, 1, 1, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, AMLFS_LAYOUT_PLAIN}, 1);
    test_pool("maxpool 2x3x8x8 2x2 s2", (amlfs_pool_shape){2, 3, 8, 8, 2, 2, 0, AMLFS_POOL_MAX, 1, AMLFS_LAYOUT_PLAIN});
    test_pool("maxpool 2x3x9x9 3x3 s2 p1", (amlfs_pool_shape){2, 3, 9, 9, 3, 2, 1, AMLFS_POOL_MAX, 1, AMLFS_LAYOUT_PLAIN});
    test_pool("avgpool 2x3x8x8 2x2 s2", (amlfs_pool_shape){2, 3, 8, 8, 2, 2, 0, AMLFS_POOL_AVG, 1, AMLFS_LAYOUT_PLAIN});
    test_pool("avgpool 2x3x9x9 3x3 s2 p1", (amlfs_pool_shape){2, 3, 9, 9, 3, 2, 1, AMLFS_POOL_AVG, 1, AMLFS_LAYOUT_PLAIN});
    test_pool("avgpool excl 2x3x9x9 3x3 s2 p1",
              (amlfs_pool_shape){2, 3, 9, 9, 3, 2, 1, AMLFS_POOL_AVG, 0, AMLFS_LAYOUT_PLAIN});
    test_gap();
    test_linear("linear 5x12 -> 7 bias", (amlfs_linear_shape){5, 12, 7, 1});
    test_linear("linear 3x9 -> 4", (amlfs_linear_shape){3, 9, 4, 0});
    test_pointwise();
    test_shortcut();
    test_prelu("prelu 2x3x4x5", (amlfs_prelu_shape){2, 3, 4, 5, AMLFS_LAYOUT_PLAIN});
    test_prelu("prelu features 6x7", (amlfs_prelu_shape){6, 7, 1, 1, AMLFS_LAYOUT_PLAIN});
    test_cosine("cosine head 5x12 -> 7", (amlfs_cosine_shape){5, 12, 7}, -1);
    test_cosine("cosine head 3x9 -> 4, a row below eps", (amlfs_cosine_shape){3, 9, 4}, 1);
    return check_done("test_layers_fd");
}
