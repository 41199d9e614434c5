/* test_layers.c: the layers, SGD and the schedules (kernels/amlfs_layers.h).
 *   1. the reference (layers_ref.c) against PyTorch: tests/fixtures/layers.h5, written
 *      by tests/fixtures/make_layer_fixtures.py; per element
 *      |ref - torch| <= TORCH_ATOL + TORCH_RTOL |torch| (float32 PyTorch against a
 *      reference that sums in double); SGD per step, schedules to 1e-12;
 *   2. the CPU fast path (oneDNN, OpenMP) against the reference, on the fixture shapes
 *      and on larger ones (N = 16, C = 16, 28x28, the small-cnn shapes): per element
 *      |fast - ref| <= FAST_TOL (|ref| + max |ref|) for oneDNN's float32 sums; the
 *      OpenMP layers and SGD to the bit;
 *   3. parameter gradients accumulate (each backward runs twice: din the same, the
 *      parameter gradients doubled);
 *   4. determinism: the fast path run twice gives the same bytes;
 *   5. refusals: invalid shapes, a CUDA device in a build without CUDA.
 * Run from the repository root (or with AMLFS_ROOT). Prints the worst error per tensor.
 */
#include "amlfs_rng.h"
#include "amlfs_layers.h"
#include "check.h"
#include "compare.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TORCH_ATOL 1e-6
#define TORCH_RTOL 1e-5

static amlfs_context *ctx;

/* ---- Test data, tensors, comparisons ----------------------------------------------- */

/* Test data from the project's own Philox streams (the test stream, never the tools'). */
static amlfs_rng_cursor test_rng = {{0x1a7e55u, 0, 0, AMLFS_STREAM_TEST}, 0};
static double uniform01(void) { return amlfs_next_uniform(&test_rng); }

static float *zeros(size_t n) { return test_zeros(n); }
static float *randn(size_t n, double scale, double shift)
{
    return test_randn(&test_rng, n, scale, shift);
}

static float *copy_of(const float *src, size_t n)
{
    float *p = zeros(n);
    memcpy(p, src, n * sizeof *p);
    return p;
}

static float *scaled(const float *src, size_t n, float factor)
{
    float *p = zeros(n);
    for (size_t i = 0; i < n; i++) p[i] = src[i] * factor;
    return p;
}

/* ---- Fixture access ----------------------------------------------------------------- */

static hid_t fixtures;

/* The dataset group/name as n floats (checked), or NULL with a failed check. */
static float *read_f(const char *group, const char *name, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "/%s/%s", group, name);
    int rank;
    hsize_t dims[8];
    if (H5LTget_dataset_ndims(fixtures, path, &rank) < 0 || rank > 8 ||
        H5LTget_dataset_info(fixtures, path, dims, NULL, NULL) < 0) {
        CHECK(0, "fixture has no %s", path);
        return NULL;
    }
    size_t count = 1;
    for (int i = 0; i < rank; i++) count *= dims[i];
    if (count != n) {
        CHECK(0, "fixture %s has %zu elements, the shape says %zu", path, count, n);
        return NULL;
    }
    float *p = zeros(n);
    if (H5LTread_dataset_float(fixtures, path, p) < 0) {
        CHECK(0, "cannot read %s", path);
        free(p);
        return NULL;
    }
    return p;
}

static double *read_d(const char *group, const char *name, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "/%s/%s", group, name);
    hsize_t dims[1];
    int rank;
    if (H5LTget_dataset_ndims(fixtures, path, &rank) < 0 || rank != 1 ||
        H5LTget_dataset_info(fixtures, path, dims, NULL, NULL) < 0 || dims[0] != n) {
        CHECK(0, "fixture %s missing or not (%zu)", path, n);
        return NULL;
    }
    double *p = calloc(n, sizeof *p);
    if (!p || H5LTread_dataset_double(fixtures, path, p) < 0) {
        CHECK(0, "cannot read %s", path);
        free(p);
        return NULL;
    }
    return p;
}

static int attr_i(const char *group, const char *name)
{
    int v = -1;
    char path[256];
    snprintf(path, sizeof path, "/%s", group);
    CHECK(H5LTget_attribute_int(fixtures, path, name, &v) >= 0, "fixture %s has no attribute %s",
          path, name);
    return v;
}

static double attr_d(const char *group, const char *name)
{
    double v = NAN;
    char path[256];
    snprintf(path, sizeof path, "/%s", group);
    CHECK(H5LTget_attribute_double(fixtures, path, name, &v) >= 0,
          "fixture %s has no attribute %s", path, name);
    return v;
}

static size_t dims_of(const char *group, size_t *out_dims)
{
    char path[256];
    snprintf(path, sizeof path, "/%s/%s", group, "dout");
    hsize_t d[8];
    int rank = 0;
    H5LTget_dataset_ndims(fixtures, path, &rank);
    H5LTget_dataset_info(fixtures, path, d, NULL, NULL);
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= d[i];
    if (out_dims) *out_dims = n;
    return n;
}

/* ---- Convolution and linear: a weight and an optional bias --------------------------- */

/* The two layers with parameters, checked the same way (run_weighted): their sizes, and
 * the reference's and the fast path's calls behind one signature each. */
typedef struct {
    size_t n_in, n_out, n_w, n_b;
    int has_bias;
    const void *shape;
    void (*ref_forward)(const void *s, float *out, const float *in, const float *w,
                        const float *bias);
    void (*ref_backward)(const void *s, float *din, float *dw, float *dbias, const float *dout,
                         const float *in, const float *w);
    void *(*plan_create)(const void *s, char *err, size_t errlen);
    void (*plan_destroy)(void *plan);
    void (*forward)(void *plan, float *out, const float *in, const float *w, const float *bias);
    void (*backward)(void *plan, float *din, float *dw, float *dbias, const float *dout,
                     const float *in, const float *w);
} weighted_layer;

/* Reference and fast path on one shape; want (PyTorch's out, din, dw, dbias) may be NULL
 * (random data). */
static void run_weighted(const char *name, const weighted_layer *L, const float *in,
                         const float *w, const float *bias, const float *dout,
                         float *const *want)
{
    const size_t n_in = L->n_in, n_out = L->n_out, n_w = L->n_w, n_b = L->n_b;
    char what[128];
    float *out = zeros(n_out), *din = zeros(n_in), *dw = zeros(n_w), *db = zeros(n_b);
    L->ref_forward(L->shape, out, in, w, L->has_bias ? bias : NULL);
    /* twice: din assigned, dw and dbias accumulated */
    L->ref_backward(L->shape, din, dw, L->has_bias ? db : NULL, dout, in, w);
    L->ref_backward(L->shape, din, dw, L->has_bias ? db : NULL, dout, in, w);
    if (want) {
        float *dw2 = scaled(want[2], n_w, 2.0f);
        snprintf(what, sizeof what, "%s ref out", name);
        compare(what, out, want[0], n_out, TORCH_ATOL, TORCH_RTOL);
        snprintf(what, sizeof what, "%s ref din", name);
        compare(what, din, want[1], n_in, TORCH_ATOL, TORCH_RTOL);
        snprintf(what, sizeof what, "%s ref dw (two backwards)", name);
        compare(what, dw, dw2, n_w, 2 * TORCH_ATOL, TORCH_RTOL);
        free(dw2);
        if (L->has_bias) {
            float *db2 = scaled(want[3], n_b, 2.0f);
            snprintf(what, sizeof what, "%s ref dbias (two backwards)", name);
            compare(what, db, db2, n_b, 2 * TORCH_ATOL, TORCH_RTOL);
            free(db2);
        }
    }

    char err[256] = "";
    void *plan = L->plan_create(L->shape, err, sizeof err);
    CHECK(plan != NULL, "%s: plan: %s", name, err);
    if (plan) {
        float *f_out = zeros(n_out), *f_din = zeros(n_in), *f_dw = zeros(n_w), *f_db = zeros(n_b);
        L->forward(plan, f_out, in, w, bias);
        L->backward(plan, f_din, f_dw, L->has_bias ? f_db : NULL, dout, in, w);
        L->backward(plan, f_din, f_dw, L->has_bias ? f_db : NULL, dout, in, w);
        snprintf(what, sizeof what, "%s fast out", name);
        compare_fast(what, f_out, out, n_out);
        snprintf(what, sizeof what, "%s fast din", name);
        compare_fast(what, f_din, din, n_in);
        snprintf(what, sizeof what, "%s fast dw (two backwards)", name);
        compare_fast(what, f_dw, dw, n_w);
        if (L->has_bias) {
            snprintf(what, sizeof what, "%s fast dbias (two backwards)", name);
            compare_fast(what, f_db, db, n_b);
        }
        /* determinism: the same calls again, the same bytes */
        float *g_out = zeros(n_out), *g_din = zeros(n_in), *g_dw = zeros(n_w), *g_db = zeros(n_b);
        L->forward(plan, g_out, in, w, bias);
        L->backward(plan, g_din, g_dw, L->has_bias ? g_db : NULL, dout, in, w);
        L->backward(plan, g_din, g_dw, L->has_bias ? g_db : NULL, dout, in, w);
        snprintf(what, sizeof what, "%s fast rerun out", name);
        compare_bits(what, g_out, f_out, n_out);
        snprintf(what, sizeof what, "%s fast rerun din", name);
        compare_bits(what, g_din, f_din, n_in);
        snprintf(what, sizeof what, "%s fast rerun dw", name);
        compare_bits(what, g_dw, f_dw, n_w);
        snprintf(what, sizeof what, "%s fast rerun dbias", name);
        compare_bits(what, g_db, f_db, n_b);
        /* din NULL (a first layer): the parameter gradients alone */
        float *h_dw = zeros(n_w);
        L->backward(plan, NULL, h_dw, NULL, dout, in, w);
        float *half = scaled(f_dw, n_w, 0.5f);
        snprintf(what, sizeof what, "%s fast dw without din", name);
        compare_fast(what, h_dw, half, n_w);
        free(half);
        free(h_dw);
        free(g_out), free(g_din), free(g_dw), free(g_db);
        free(f_out), free(f_din), free(f_dw), free(f_db);
        L->plan_destroy(plan);
    }
    free(out), free(din), free(dw), free(db);
}

/* ---- Convolution -------------------------------------------------------------------- */

static void conv_ref_forward(const void *s, float *out, const float *in, const float *w,
                             const float *bias)
{
    ref_conv2d_forward(out, in, w, bias, s);
}
static void conv_ref_backward(const void *s, float *din, float *dw, float *dbias,
                              const float *dout, const float *in, const float *w)
{
    ref_conv2d_backward(din, dw, dbias, dout, in, w, s);
}
static void *conv_plan_create(const void *s, char *err, size_t errlen)
{
    return amlfs_conv_plan_create(ctx, s, err, errlen);
}
static void conv_plan_destroy(void *plan) { amlfs_conv_plan_destroy(plan); }
static void conv_forward(void *plan, float *out, const float *in, const float *w,
                         const float *bias)
{
    amlfs_conv_forward(plan, out, in, w, bias);
}
static void conv_backward(void *plan, float *din, float *dw, float *dbias, const float *dout,
                          const float *in, const float *w)
{
    amlfs_conv_backward(plan, din, dw, dbias, dout, in, w);
}

static void run_conv(const char *name, const amlfs_conv_shape *s, const float *in, const float *w,
                     const float *bias, const float *dout, float *const *want)
{
    weighted_layer L = {(size_t)s->n * s->c * s->h * s->w,
                        (size_t)s->n * s->k * amlfs_conv_out_h(s) * amlfs_conv_out_w(s),
                        (size_t)s->k * s->c * s->r * s->s, (size_t)s->k, s->has_bias, s,
                        conv_ref_forward, conv_ref_backward, conv_plan_create,
                        conv_plan_destroy, conv_forward, conv_backward};
    run_weighted(name, &L, in, w, bias, dout, want);
}

static void fixture_conv(const char *g)
{
    amlfs_conv_shape s = {attr_i(g, "n"), attr_i(g, "c"), attr_i(g, "h"), attr_i(g, "w"),
                          attr_i(g, "k"), attr_i(g, "r"), attr_i(g, "s"), attr_i(g, "stride"),
                          attr_i(g, "pad"), attr_i(g, "has_bias"), AMLFS_LAYOUT_PLAIN, AMLFS_LAYOUT_PLAIN};
    const size_t n_in = (size_t)s.n * s.c * s.h * s.w,
                 n_out = (size_t)s.n * s.k * amlfs_conv_out_h(&s) * amlfs_conv_out_w(&s),
                 n_w = (size_t)s.k * s.c * s.r * s.s;
    float *in = read_f(g, "in", n_in), *w = read_f(g, "w", n_w), *dout = read_f(g, "dout", n_out),
          *out = read_f(g, "out", n_out), *din = read_f(g, "din", n_in), *dw = read_f(g, "dw", n_w);
    float *bias = s.has_bias ? read_f(g, "bias", s.k) : NULL;
    float *dbias = s.has_bias ? read_f(g, "dbias", s.k) : NULL;
    float *want[4] = {out, din, dw, dbias};
    if (in && w && dout && out && din && dw && (!s.has_bias || (bias && dbias)))
        run_conv(g, &s, in, w, bias, dout, want);
    free(in), free(w), free(dout), free(out), free(din), free(dw), free(bias), free(dbias);
}

static void random_conv(const char *name, amlfs_conv_shape s)
{
    const size_t n_in = (size_t)s.n * s.c * s.h * s.w,
                 n_out = (size_t)s.n * s.k * amlfs_conv_out_h(&s) * amlfs_conv_out_w(&s),
                 n_w = (size_t)s.k * s.c * s.r * s.s;
    float *in = randn(n_in, 1.0, 0.0), *w = randn(n_w, 1.0 / sqrt((double)s.c * s.r * s.s), 0.0),
          *bias = randn((size_t)s.k, 0.1, 0.0), *dout = randn(n_out, 1.0, 0.0);
    run_conv(name, &s, in, w, bias, dout, NULL);
    free(in), free(w), free(bias), free(dout);
}

/* ---- Batch norm --------------------------------------------------------------------- */

typedef struct {
    const float *in, *gamma, *beta, *rm, *rv, *dout;
} bn_inputs;

/* The training and inference modes, reference and fast path. want: PyTorch's values in
 * the order out, save_mean, save_var, running_mean, running_var, din, dgamma, dbeta
 * (training) or out, din, dgamma, dbeta (inference); NULL for random data. */
static void run_bn(const char *name, const amlfs_bn_shape *s, const bn_inputs *x, int train,
                   float *const *want)
{
    const size_t n = (size_t)s->n * s->c * s->h * s->w, c = (size_t)s->c;
    char what[128];
    float *out = zeros(n), *din = zeros(n), *dg = zeros(c), *db = zeros(c), *mean = zeros(c),
          *var = zeros(c), *rm = copy_of(x->rm, c), *rv = copy_of(x->rv, c);
    if (train) {
        ref_batchnorm_forward_train(out, mean, var, rm, rv, x->in, x->gamma, x->beta, s);
        ref_batchnorm_backward_train(din, dg, db, x->dout, x->in, x->gamma, mean, var, s);
        ref_batchnorm_backward_train(din, dg, db, x->dout, x->in, x->gamma, mean, var, s);
    } else {
        ref_batchnorm_forward_infer(out, x->in, x->gamma, x->beta, rm, rv, s);
        ref_batchnorm_backward_infer(din, dg, db, x->dout, x->in, x->gamma, rm, rv, s);
        ref_batchnorm_backward_infer(din, dg, db, x->dout, x->in, x->gamma, rm, rv, s);
    }
    if (want) {
        int i = 0;
        snprintf(what, sizeof what, "%s ref out", name);
        compare(what, out, want[i++], n, TORCH_ATOL, TORCH_RTOL);
        if (train) {
            snprintf(what, sizeof what, "%s ref save_mean", name);
            compare(what, mean, want[i++], c, TORCH_ATOL, TORCH_RTOL);
            snprintf(what, sizeof what, "%s ref save_var", name);
            compare(what, var, want[i++], c, TORCH_ATOL, TORCH_RTOL);
            snprintf(what, sizeof what, "%s ref running_mean", name);
            compare(what, rm, want[i++], c, TORCH_ATOL, TORCH_RTOL);
            snprintf(what, sizeof what, "%s ref running_var", name);
            compare(what, rv, want[i++], c, TORCH_ATOL, TORCH_RTOL);
        }
        snprintf(what, sizeof what, "%s ref din", name);
        compare(what, din, want[i++], n, TORCH_ATOL, TORCH_RTOL);
        float *dg2 = scaled(want[i++], c, 2.0f), *db2 = scaled(want[i++], c, 2.0f);
        snprintf(what, sizeof what, "%s ref dgamma (two backwards)", name);
        compare(what, dg, dg2, c, 2 * TORCH_ATOL, TORCH_RTOL);
        snprintf(what, sizeof what, "%s ref dbeta (two backwards)", name);
        compare(what, db, db2, c, 2 * TORCH_ATOL, TORCH_RTOL);
        free(dg2), free(db2);
    }

    char err[256] = "";
    amlfs_bn_plan *plan = amlfs_bn_plan_create(ctx, s, err, sizeof err);
    CHECK(plan != NULL, "%s: bn plan: %s", name, err);
    if (plan) {
        float *f_out = zeros(n), *f_din = zeros(n), *f_dg = zeros(c), *f_db = zeros(c),
              *f_mean = zeros(c), *f_var = zeros(c), *f_rm = copy_of(x->rm, c),
              *f_rv = copy_of(x->rv, c);
        for (int rerun = 0; rerun < 2; rerun++) {
            float *o = zeros(n), *di = zeros(n), *g = zeros(c), *b = zeros(c), *mu = zeros(c),
                  *va = zeros(c), *r_m = copy_of(x->rm, c), *r_v = copy_of(x->rv, c);
            if (train) {
                amlfs_bn_forward_train(plan, o, mu, va, r_m, r_v, x->in, x->gamma, x->beta);
                amlfs_bn_backward_train(plan, di, g, b, x->dout, x->in, x->gamma, mu, va);
                amlfs_bn_backward_train(plan, di, g, b, x->dout, x->in, x->gamma, mu, va);
            } else {
                amlfs_bn_forward_infer(plan, o, x->in, x->gamma, x->beta, r_m, r_v);
                amlfs_bn_backward_infer(plan, di, g, b, x->dout, x->in, x->gamma, r_m, r_v);
                amlfs_bn_backward_infer(plan, di, g, b, x->dout, x->in, x->gamma, r_m, r_v);
            }
            if (rerun == 0) {
                memcpy(f_out, o, n * 4), memcpy(f_din, di, n * 4), memcpy(f_dg, g, c * 4);
                memcpy(f_db, b, c * 4), memcpy(f_mean, mu, c * 4), memcpy(f_var, va, c * 4);
                memcpy(f_rm, r_m, c * 4), memcpy(f_rv, r_v, c * 4);
            } else {
                int same = !memcmp(f_out, o, n * 4) && !memcmp(f_din, di, n * 4) &&
                           !memcmp(f_dg, g, c * 4) && !memcmp(f_db, b, c * 4) &&
                           !memcmp(f_mean, mu, c * 4) && !memcmp(f_var, va, c * 4) &&
                           !memcmp(f_rm, r_m, c * 4) && !memcmp(f_rv, r_v, c * 4);
                printf("  %-44s %s\n", name, same ? "fast rerun: same bytes" : "fast rerun DIFFERS");
                CHECK(same, "%s: the fast path run twice gave different bytes", name);
            }
            free(o), free(di), free(g), free(b), free(mu), free(va), free(r_m), free(r_v);
        }
        snprintf(what, sizeof what, "%s fast out", name);
        compare_fast(what, f_out, out, n);
        if (train) {
            snprintf(what, sizeof what, "%s fast save_mean", name);
            compare_fast(what, f_mean, mean, c);
            snprintf(what, sizeof what, "%s fast save_var", name);
            compare_fast(what, f_var, var, c);
            snprintf(what, sizeof what, "%s fast running_mean", name);
            compare_fast(what, f_rm, rm, c);
            snprintf(what, sizeof what, "%s fast running_var", name);
            compare_fast(what, f_rv, rv, c);
        }
        snprintf(what, sizeof what, "%s fast din", name);
        compare_fast(what, f_din, din, n);
        snprintf(what, sizeof what, "%s fast dgamma (two backwards)", name);
        compare_fast(what, f_dg, dg, c);
        snprintf(what, sizeof what, "%s fast dbeta (two backwards)", name);
        compare_fast(what, f_db, db, c);
        free(f_out), free(f_din), free(f_dg), free(f_db), free(f_mean), free(f_var);
        free(f_rm), free(f_rv);
        amlfs_bn_plan_destroy(plan);
    }
    free(out), free(din), free(dg), free(db), free(mean), free(var), free(rm), free(rv);
}

static void fixture_bn(const char *g, int train)
{
    amlfs_bn_shape s = {attr_i(g, "n"), attr_i(g, "c"), attr_i(g, "h"), attr_i(g, "w"),
                        attr_d(g, "eps"), attr_d(g, "momentum"), AMLFS_LAYOUT_PLAIN};
    CHECK(s.eps == AMLFS_BN_EPS && fabs(s.momentum - AMLFS_BN_MOMENTUM) < 1e-12,
          "%s: PyTorch's eps %g and momentum %g are not amlfs's defaults", g, s.eps, s.momentum);
    const size_t n = (size_t)s.n * s.c * s.h * s.w, c = (size_t)s.c;
    const char *rm_name = train ? "running_mean_in" : "running_mean";
    const char *rv_name = train ? "running_var_in" : "running_var";
    float *in = read_f(g, "in", n), *gamma = read_f(g, "gamma", c), *beta = read_f(g, "beta", c),
          *rm = read_f(g, rm_name, c), *rv = read_f(g, rv_name, c), *dout = read_f(g, "dout", n);
    static const char *train_names[8] = {"out", "save_mean", "save_var", "running_mean",
                                         "running_var", "din", "dgamma", "dbeta"};
    static const char *infer_names[4] = {"out", "din", "dgamma", "dbeta"};
    float *want[8] = {0};
    int nwant = train ? 8 : 4, ok = in && gamma && beta && rm && rv && dout;
    for (int i = 0; i < nwant; i++) {
        const char *nm = train ? train_names[i] : infer_names[i];
        int big = !strcmp(nm, "out") || !strcmp(nm, "din");
        want[i] = read_f(g, nm, big ? n : c);
        ok = ok && want[i];
    }
    if (ok) {
        bn_inputs x = {in, gamma, beta, rm, rv, dout};
        run_bn(g, &s, &x, train, want);
    }
    for (int i = 0; i < nwant; i++) free(want[i]);
    free(in), free(gamma), free(beta), free(rm), free(rv), free(dout);
}

static void random_bn(const char *name, amlfs_bn_shape s)
{
    const size_t n = (size_t)s.n * s.c * s.h * s.w, c = (size_t)s.c;
    float *in = randn(n, 2.0, 0.5), *gamma = randn(c, 0.3, 1.0), *beta = randn(c, 0.2, 0.0),
          *rm = randn(c, 0.5, 0.0), *dout = randn(n, 1.0, 0.0), *rv = zeros(c);
    for (size_t i = 0; i < c; i++) rv[i] = (float)(0.5 + uniform01());
    bn_inputs x = {in, gamma, beta, rm, rv, dout};
    char nm[96];
    snprintf(nm, sizeof nm, "%s train", name);
    run_bn(nm, &s, &x, 1, NULL);
    snprintf(nm, sizeof nm, "%s infer", name);
    run_bn(nm, &s, &x, 0, NULL);
    free(in), free(gamma), free(beta), free(rm), free(rv), free(dout);
}

/* ---- Pooling ------------------------------------------------------------------------ */

static void run_pool(const char *name, const amlfs_pool_shape *s, const float *in,
                     const float *dout, const float *want_out, const float *want_din)
{
    const size_t n_in = (size_t)s->n * s->c * s->h * s->w,
                 n_out = (size_t)s->n * s->c * amlfs_pool_out_h(s) * amlfs_pool_out_w(s);
    char what[128];
    float *out = zeros(n_out), *din = zeros(n_in);
    ref_pool_forward(out, in, s);
    ref_pool_backward(din, dout, in, s);
    if (want_out) {
        snprintf(what, sizeof what, "%s ref out", name);
        compare(what, out, want_out, n_out, TORCH_ATOL, TORCH_RTOL);
        snprintf(what, sizeof what, "%s ref din", name);
        compare(what, din, want_din, n_in, TORCH_ATOL, TORCH_RTOL);
    }
    char err[256] = "";
    amlfs_pool_plan *plan = amlfs_pool_plan_create(ctx, s, err, sizeof err);
    CHECK(plan != NULL, "%s: pool plan: %s", name, err);
    if (plan) {
        size_t ws_bytes = amlfs_pool_workspace_bytes(plan);
        CHECK((s->kind == AMLFS_POOL_MAX) == (ws_bytes > 0), "%s: workspace %zu bytes", name,
              ws_bytes);
        void *ws = ws_bytes ? amlfs_alloc(ctx, ws_bytes) : NULL;
        float *f_out = zeros(n_out), *f_din = randn(n_in, 1.0, 0.0), *i_out = zeros(n_out);
        amlfs_pool_forward(plan, f_out, in, ws);
        amlfs_pool_backward(plan, f_din, dout, in, f_out, ws); /* din assigned over noise */
        amlfs_pool_forward(plan, i_out, in, NULL);             /* inference */
        snprintf(what, sizeof what, "%s fast out", name);
        compare_fast(what, f_out, out, n_out);
        snprintf(what, sizeof what, "%s fast din", name);
        compare_fast(what, f_din, din, n_in);
        snprintf(what, sizeof what, "%s fast inference out", name);
        compare_bits(what, i_out, f_out, n_out);
        float *g_out = zeros(n_out), *g_din = zeros(n_in);
        amlfs_pool_forward(plan, g_out, in, ws);
        amlfs_pool_backward(plan, g_din, dout, in, g_out, ws);
        snprintf(what, sizeof what, "%s fast rerun din", name);
        compare_bits(what, g_din, f_din, n_in);
        free(g_out), free(g_din), free(f_out), free(f_din), free(i_out);
        amlfs_free(ctx, ws);
        amlfs_pool_plan_destroy(plan);
    }
    free(out), free(din);
}

static void fixture_pool(const char *g)
{
    amlfs_pool_shape s = {attr_i(g, "n"),      attr_i(g, "c"),   attr_i(g, "h"),
                          attr_i(g, "w"),      attr_i(g, "kernel"), attr_i(g, "stride"),
                          attr_i(g, "pad"),    (amlfs_pool_kind)attr_i(g, "kind"),
                          attr_i(g, "count_include_pad"), AMLFS_LAYOUT_PLAIN};
    const size_t n_in = (size_t)s.n * s.c * s.h * s.w,
                 n_out = (size_t)s.n * s.c * amlfs_pool_out_h(&s) * amlfs_pool_out_w(&s);
    float *in = read_f(g, "in", n_in), *dout = read_f(g, "dout", n_out),
          *out = read_f(g, "out", n_out), *din = read_f(g, "din", n_in);
    if (in && dout && out && din) run_pool(g, &s, in, dout, out, din);
    free(in), free(dout), free(out), free(din);
}

static void random_pool(const char *name, amlfs_pool_shape s)
{
    const size_t n_in = (size_t)s.n * s.c * s.h * s.w,
                 n_out = (size_t)s.n * s.c * amlfs_pool_out_h(&s) * amlfs_pool_out_w(&s);
    float *in = randn(n_in, 1.0, 0.0), *dout = randn(n_out, 1.0, 0.0);
    run_pool(name, &s, in, dout, NULL, NULL);
    free(in), free(dout);
}

/* ---- Linear ------------------------------------------------------------------------- */

static void linear_ref_forward(const void *s, float *out, const float *in, const float *w,
                               const float *bias)
{
    ref_linear_forward(out, in, w, bias, s);
}
static void linear_ref_backward(const void *s, float *din, float *dw, float *dbias,
                                const float *dout, const float *in, const float *w)
{
    ref_linear_backward(din, dw, dbias, dout, in, w, s);
}
static void *linear_plan_create(const void *s, char *err, size_t errlen)
{
    return amlfs_linear_plan_create(ctx, s, err, errlen);
}
static void linear_plan_destroy(void *plan) { amlfs_linear_plan_destroy(plan); }
static void linear_forward(void *plan, float *out, const float *in, const float *w,
                           const float *bias)
{
    amlfs_linear_forward(plan, out, in, w, bias);
}
static void linear_backward(void *plan, float *din, float *dw, float *dbias, const float *dout,
                            const float *in, const float *w)
{
    amlfs_linear_backward(plan, din, dw, dbias, dout, in, w);
}

static void run_linear(const char *name, const amlfs_linear_shape *s, const float *in,
                       const float *w, const float *bias, const float *dout,
                       float *const *want /* out, din, dw, dbias or NULL */)
{
    weighted_layer L = {(size_t)s->n * s->in, (size_t)s->n * s->out, (size_t)s->out * s->in,
                        (size_t)s->out, s->has_bias, s, linear_ref_forward,
                        linear_ref_backward, linear_plan_create, linear_plan_destroy,
                        linear_forward, linear_backward};
    run_weighted(name, &L, in, w, bias, dout, want);
}

static void fixture_linear(void)
{
    const char *g = "linear";
    amlfs_linear_shape s = {attr_i(g, "n"), attr_i(g, "in"), attr_i(g, "out"),
                            attr_i(g, "has_bias")};
    const size_t n_in = (size_t)s.n * s.in, n_out = (size_t)s.n * s.out,
                 n_w = (size_t)s.out * s.in;
    float *in = read_f(g, "in", n_in), *w = read_f(g, "w", n_w), *bias = read_f(g, "bias", s.out),
          *dout = read_f(g, "dout", n_out);
    float *want[4] = {read_f(g, "out", n_out), read_f(g, "din", n_in), read_f(g, "dw", n_w),
                      read_f(g, "dbias", s.out)};
    if (in && w && bias && dout && want[0] && want[1] && want[2] && want[3])
        run_linear(g, &s, in, w, bias, dout, want);
    for (int i = 0; i < 4; i++) free(want[i]);
    free(in), free(w), free(bias), free(dout);
}

static void random_linear(const char *name, amlfs_linear_shape s)
{
    float *in = randn((size_t)s.n * s.in, 1.0, 0.0),
          *w = randn((size_t)s.out * s.in, 1.0 / sqrt(s.in), 0.0), *bias = randn(s.out, 0.1, 0.0),
          *dout = randn((size_t)s.n * s.out, 1.0, 0.0);
    run_linear(name, &s, in, w, bias, dout, NULL);
    free(in), free(w), free(bias), free(dout);
}

/* ---- ReLU, add, global pooling, shortcut: OpenMP, to the bit ------------------------- */

static void fixture_elementwise(void)
{
    size_t n = dims_of("relu", NULL);
    float *in = read_f("relu", "in", n), *dout = read_f("relu", "dout", n),
          *out_w = read_f("relu", "out", n), *din_w = read_f("relu", "din", n);
    if (in && dout && out_w && din_w) {
        float *out = zeros(n), *din = zeros(n), *f = zeros(n), *fd = zeros(n);
        ref_relu_forward(out, in, n);
        ref_relu_backward(din, dout, out, n);
        compare("relu ref out", out, out_w, n, 0, 0);
        compare("relu ref din", din, din_w, n, 0, 0);
        amlfs_relu_forward(ctx, f, in, n);
        amlfs_relu_backward(ctx, fd, dout, f, n);
        compare_bits("relu fast out", f, out, n);
        compare_bits("relu fast din", fd, din, n);
        free(out), free(din), free(f), free(fd);
    }
    free(in), free(dout), free(out_w), free(din_w);

    n = dims_of("add", NULL);
    float *a = read_f("add", "a", n), *b = read_f("add", "b", n), *ad = read_f("add", "dout", n),
          *sum_w = read_f("add", "out", n), *da_w = read_f("add", "da", n),
          *db_w = read_f("add", "db", n);
    if (a && b && ad && sum_w && da_w && db_w) {
        float *sum = zeros(n), *da = zeros(n), *db = zeros(n), *f = zeros(n), *fa = zeros(n),
              *fb = zeros(n);
        ref_add_forward(sum, a, b, n);
        ref_add_backward(da, db, ad, n);
        compare("add ref out", sum, sum_w, n, 0, 0);
        compare("add ref da", da, da_w, n, 0, 0);
        compare("add ref db", db, db_w, n, 0, 0);
        amlfs_add_forward(ctx, f, a, b, n);
        amlfs_add_backward(ctx, fa, fb, ad, n);
        compare_bits("add fast out", f, sum, n);
        compare_bits("add fast da", fa, da, n);
        compare_bits("add fast db", fb, db, n);
        free(sum), free(da), free(db), free(f), free(fa), free(fb);
    }
    free(a), free(b), free(ad), free(sum_w), free(da_w), free(db_w);

    const char *g = "gap";
    int gn = attr_i(g, "n"), gc = attr_i(g, "c"), gh = attr_i(g, "h"), gw = attr_i(g, "w"),
        ghw = gh * gw;
    size_t n_in = (size_t)gn * gc * ghw, n_out = (size_t)gn * gc;
    float *gin = read_f(g, "in", n_in), *gdout = read_f(g, "dout", n_out),
          *gout_w = read_f(g, "out", n_out), *gdin_w = read_f(g, "din", n_in);
    if (gin && gdout && gout_w && gdin_w) {
        float *out = zeros(n_out), *din = zeros(n_in), *f = zeros(n_out), *fd = zeros(n_in);
        ref_global_avgpool_forward(out, gin, gn, gc, ghw);
        ref_global_avgpool_backward(din, gdout, gn, gc, ghw);
        compare("gap ref out", out, gout_w, n_out, TORCH_ATOL, TORCH_RTOL);
        compare("gap ref din", din, gdin_w, n_in, TORCH_ATOL, TORCH_RTOL);
        amlfs_global_avgpool_forward(ctx, f, gin, gn, gc, gh, gw, AMLFS_LAYOUT_PLAIN);
        amlfs_global_avgpool_backward(ctx, fd, gdout, gn, gc, gh, gw, AMLFS_LAYOUT_PLAIN);
        compare_bits("gap fast out", f, out, n_out);
        compare_bits("gap fast din", fd, din, n_in);
        free(out), free(din), free(f), free(fd);
    }
    free(gin), free(gdout), free(gout_w), free(gdin_w);

    g = "shortcut";
    amlfs_shortcut_shape s = {attr_i(g, "n"), attr_i(g, "c"), attr_i(g, "h"), attr_i(g, "w"),
                              attr_i(g, "k"), attr_i(g, "stride"), AMLFS_LAYOUT_PLAIN};
    char err[256] = "";
    CHECK(amlfs_shortcut_shape_check(&s, err, sizeof err) == 0, "shortcut shape: %s", err);
    n_in = (size_t)s.n * s.c * s.h * s.w;
    n_out = (size_t)s.n * s.k * amlfs_shortcut_out_h(&s) * amlfs_shortcut_out_w(&s);
    float *sin = read_f(g, "in", n_in), *sdout = read_f(g, "dout", n_out),
          *sout_w = read_f(g, "out", n_out), *sdin_w = read_f(g, "din", n_in);
    if (sin && sdout && sout_w && sdin_w) {
        float *out = zeros(n_out), *din = zeros(n_in), *f = zeros(n_out), *fd = randn(n_in, 1, 0);
        ref_shortcut_forward(out, sin, &s);
        ref_shortcut_backward(din, sdout, &s);
        compare("shortcut ref out", out, sout_w, n_out, 0, 0);
        compare("shortcut ref din", din, sdin_w, n_in, 0, 0);
        amlfs_shortcut_forward(ctx, f, sin, &s);
        amlfs_shortcut_backward(ctx, fd, sdout, &s);
        compare_bits("shortcut fast out", f, out, n_out);
        compare_bits("shortcut fast din", fd, din, n_in);
        free(out), free(din), free(f), free(fd);
    }
    free(sin), free(sdout), free(sout_w), free(sdin_w);
}

/* Large enough for the OpenMP loops to run in parallel. */
static void random_elementwise(void)
{
    const int n = 16, c = 32, hw = 28 * 28;
    const size_t total = (size_t)n * c * hw;
    float *a = randn(total, 1.0, 0.0), *b = randn(total, 1.0, 0.0), *r1 = zeros(total),
          *r2 = zeros(total), *f1 = zeros(total), *f2 = zeros(total);
    ref_relu_forward(r1, a, total);
    amlfs_relu_forward(ctx, f1, a, total);
    compare_bits("relu fast out (16x32x28x28)", f1, r1, total);
    ref_relu_backward(r2, b, r1, total);
    amlfs_relu_backward(ctx, f2, b, f1, total);
    compare_bits("relu fast din (16x32x28x28)", f2, r2, total);
    /* in place, as a model may run it */
    memcpy(f2, a, total * sizeof *f2);
    amlfs_relu_forward(ctx, f2, f2, total);
    compare_bits("relu fast out in place", f2, r1, total);
    ref_add_forward(r1, a, b, total);
    amlfs_add_forward(ctx, f1, a, b, total);
    compare_bits("add fast out (16x32x28x28)", f1, r1, total);
    ref_global_avgpool_forward(r1, a, n, c, hw);
    amlfs_global_avgpool_forward(ctx, f1, a, n, c, 28, 28, AMLFS_LAYOUT_PLAIN);
    compare_bits("gap fast out (16x32x28x28)", f1, r1, (size_t)n * c);
    ref_global_avgpool_backward(r2, b, n, c, hw);
    amlfs_global_avgpool_backward(ctx, f2, b, n, c, 28, 28, AMLFS_LAYOUT_PLAIN);
    compare_bits("gap fast din (16x32x28x28)", f2, r2, total);
    amlfs_shortcut_shape s = {n, 16, 32, 32, 32, 2, AMLFS_LAYOUT_PLAIN};
    size_t s_in = (size_t)n * 16 * 32 * 32, s_out = (size_t)n * 32 * 16 * 16;
    ref_shortcut_forward(r1, a, &s);
    amlfs_shortcut_forward(ctx, f1, a, &s);
    compare_bits("shortcut fast out (16x16x32x32 -> 32)", f1, r1, s_out);
    ref_shortcut_backward(r2, b, &s);
    amlfs_shortcut_backward(ctx, f2, b, &s);
    compare_bits("shortcut fast din (16x16x32x32 -> 32)", f2, r2, s_in);
    free(a), free(b), free(r1), free(r2), free(f1), free(f2);
}

/* ---- PReLU and the cosine head --------------------------------------------------------- */

/* Reference (against PyTorch when want = out, din, dslope) and fast path (to the bit,
 * plain layout), each backward run twice: din the same, dslope doubled; then in place
 * (din = dout), as a model runs it. */
static void run_prelu(const char *name, const amlfs_prelu_shape *s, const float *in,
                      const float *slope, const float *dout, float *const *want)
{
    const size_t n = (size_t)s->n * s->c * s->h * s->w, c = (size_t)s->c;
    char what[128];
    float *out = zeros(n), *din = zeros(n), *ds = zeros(c);
    ref_prelu_forward(out, in, slope, s);
    ref_prelu_backward(din, ds, dout, in, slope, s);
    ref_prelu_backward(din, ds, dout, in, slope, s);
    if (want) {
        float *ds2 = scaled(want[2], c, 2.0f);
        snprintf(what, sizeof what, "%s ref out", name);
        compare(what, out, want[0], n, 0, 0);
        snprintf(what, sizeof what, "%s ref din", name);
        compare(what, din, want[1], n, 0, 0);
        snprintf(what, sizeof what, "%s ref dslope (two backwards)", name);
        compare(what, ds, ds2, c, 2 * TORCH_ATOL, TORCH_RTOL);
        free(ds2);
    }
    float *f_out = zeros(n), *f_din = zeros(n), *f_ds = zeros(c);
    amlfs_prelu_forward(ctx, f_out, in, slope, s);
    amlfs_prelu_backward(ctx, f_din, f_ds, dout, in, slope, s);
    amlfs_prelu_backward(ctx, f_din, f_ds, dout, in, slope, s);
    snprintf(what, sizeof what, "%s fast out", name);
    compare_bits(what, f_out, out, n);
    snprintf(what, sizeof what, "%s fast din", name);
    compare_bits(what, f_din, din, n);
    snprintf(what, sizeof what, "%s fast dslope (two backwards)", name);
    compare_bits(what, f_ds, ds, c);
    float *g = copy_of(dout, n), *g_ds = zeros(c), *half = scaled(ds, c, 0.5f);
    amlfs_prelu_backward(ctx, g, g_ds, g, in, slope, s);
    snprintf(what, sizeof what, "%s fast din in place", name);
    compare_bits(what, g, din, n);
    snprintf(what, sizeof what, "%s fast dslope in place", name);
    compare_bits(what, g_ds, half, c);
    free(out), free(din), free(ds), free(f_out), free(f_din), free(f_ds), free(g), free(g_ds),
        free(half);
}

static void fixture_prelu(const char *g)
{
    amlfs_prelu_shape s = {attr_i(g, "n"), attr_i(g, "c"), attr_i(g, "h"), attr_i(g, "w"),
                           AMLFS_LAYOUT_PLAIN};
    const size_t n = (size_t)s.n * s.c * s.h * s.w, c = (size_t)s.c;
    float *in = read_f(g, "in", n), *slope = read_f(g, "slope", c), *dout = read_f(g, "dout", n);
    float *want[3] = {read_f(g, "out", n), read_f(g, "din", n), read_f(g, "dslope", c)};
    if (in && slope && dout && want[0] && want[1] && want[2])
        run_prelu(g, &s, in, slope, dout, want);
    free(in), free(slope), free(dout), free(want[0]), free(want[1]), free(want[2]);
}

static void random_prelu(const char *name, amlfs_prelu_shape s)
{
    const size_t n = (size_t)s.n * s.c * s.h * s.w;
    float *in = randn(n, 1.0, 0.0), *slope = randn((size_t)s.c, 0.2, 0.25),
          *dout = randn(n, 1.0, 0.0);
    run_prelu(name, &s, in, slope, dout, NULL);
    free(in), free(slope), free(dout);
}

static void cosine_ref_forward(const void *s, float *out, const float *in, const float *w,
                               const float *bias)
{
    (void)bias;
    ref_cosine_forward(out, in, w, s);
}
static void cosine_ref_backward(const void *s, float *din, float *dw, float *dbias,
                                const float *dout, const float *in, const float *w)
{
    (void)dbias;
    ref_cosine_backward(din, dw, dout, in, w, s);
}
static void *cosine_plan_create(const void *s, char *err, size_t errlen)
{
    return amlfs_cosine_plan_create(ctx, s, err, errlen);
}
static void cosine_plan_destroy(void *plan) { amlfs_cosine_plan_destroy(plan); }
static void cosine_forward(void *plan, float *out, const float *in, const float *w,
                           const float *bias)
{
    (void)bias;
    amlfs_cosine_forward(plan, out, in, w);
}
static void cosine_backward(void *plan, float *din, float *dw, float *dbias, const float *dout,
                            const float *in, const float *w)
{
    (void)dbias;
    amlfs_cosine_backward(plan, din, dw, dout, in, w);
}

static void run_cosine(const char *name, const amlfs_cosine_shape *s, const float *in,
                       const float *w, const float *dout, float *const *want)
{
    weighted_layer L = {(size_t)s->n * s->in, (size_t)s->n * s->out, (size_t)s->out * s->in, 1,
                        0, s, cosine_ref_forward, cosine_ref_backward, cosine_plan_create,
                        cosine_plan_destroy, cosine_forward, cosine_backward};
    run_weighted(name, &L, in, w, NULL, dout, want);
}

static void fixture_cosine(const char *g)
{
    amlfs_cosine_shape s = {attr_i(g, "n"), attr_i(g, "in"), attr_i(g, "out")};
    const size_t n_in = (size_t)s.n * s.in, n_out = (size_t)s.n * s.out,
                 n_w = (size_t)s.out * s.in;
    float *in = read_f(g, "in", n_in), *w = read_f(g, "w", n_w), *dout = read_f(g, "dout", n_out);
    float *want[4] = {read_f(g, "out", n_out), read_f(g, "din", n_in), read_f(g, "dw", n_w), NULL};
    if (in && w && dout && want[0] && want[1] && want[2])
        run_cosine(g, &s, in, w, dout, want);
    free(in), free(w), free(dout), free(want[0]), free(want[1]), free(want[2]);
}

static void random_cosine(const char *name, amlfs_cosine_shape s)
{
    float *in = randn((size_t)s.n * s.in, 1.0, 0.0), *w = randn((size_t)s.out * s.in, 0.05, 0.0),
          *dout = randn((size_t)s.n * s.out, 1.0, 0.0);
    run_cosine(name, &s, in, w, dout, NULL);
    free(in), free(w), free(dout);
}

/* ---- SGD ------------------------------------------------------------------------------ */

static void fixture_sgd(const char *g)
{
    const int steps = attr_i(g, "steps");
    const double momentum = attr_d(g, "momentum"), wd = attr_d(g, "weight_decay");
    const int nesterov = attr_i(g, "nesterov");
    size_t p = 0;
    {
        char path[128];
        hsize_t d[1];
        snprintf(path, sizeof path, "/%s/param0", g);
        if (H5LTget_dataset_info(fixtures, path, d, NULL, NULL) >= 0) p = d[0];
    }
    CHECK(p > 0 && steps > 0, "%s: no parameters or steps", g);
    if (!p || steps <= 0) return;
    float *param0 = read_f(g, "param0", p), *grad = read_f(g, "grad", p * steps),
          *want_p = read_f(g, "param", p * steps), *want_b = read_f(g, "momentum_buf", p * steps);
    double *lr = read_d(g, "lr", (size_t)steps);
    if (param0 && grad && want_p && want_b && lr) {
        float *rp = copy_of(param0, p), *rb = zeros(p), *fp = copy_of(param0, p), *fb = zeros(p);
        char what[128];
        for (int t = 0; t < steps; t++) {
            ref_sgd_step(rp, momentum != 0.0 ? rb : NULL, grad + (size_t)t * p, p, lr[t], momentum,
                         wd, nesterov, t == 0);
            amlfs_sgd_step(ctx, fp, momentum != 0.0 ? fb : NULL, grad + (size_t)t * p, p, lr[t],
                           momentum, wd, nesterov, t == 0);
            snprintf(what, sizeof what, "%s step %d ref param", g, t + 1);
            compare(what, rp, want_p + (size_t)t * p, p, 1e-7, 1e-6);
            if (momentum != 0.0) {
                snprintf(what, sizeof what, "%s step %d ref momentum_buf", g, t + 1);
                compare(what, rb, want_b + (size_t)t * p, p, 1e-7, 1e-6);
            }
            snprintf(what, sizeof what, "%s step %d fast param", g, t + 1);
            compare_bits(what, fp, rp, p);
            snprintf(what, sizeof what, "%s step %d fast momentum_buf", g, t + 1);
            compare_bits(what, fb, rb, p);
        }
        free(rp), free(rb), free(fp), free(fb);
    }
    free(param0), free(grad), free(want_p), free(want_b), free(lr);
}

/* ---- Schedules ------------------------------------------------------------------------ */

static void fixture_schedule(const char *g)
{
    amlfs_schedule s = {.kind = (amlfs_schedule_kind)attr_i(g, "kind"),
                        .base_lr = attr_d(g, "base_lr"), .epochs = attr_d(g, "epochs"),
                        .warmup = attr_d(g, "warmup"), .step = attr_d(g, "step"),
                        .gamma = attr_d(g, "gamma")};
    char path[128];
    hsize_t d[1] = {0};
    snprintf(path, sizeof path, "/%s/t", g);
    CHECK(H5LTget_dataset_info(fixtures, path, d, NULL, NULL) >= 0 && d[0] > 0, "no %s", path);
    double *t = read_d(g, "t", d[0]), *want = read_d(g, "lr", d[0]);
    if (t && want) {
        double worst = 0.0;
        for (size_t i = 0; i < d[0]; i++) {
            double got = amlfs_lr_at(&s, t[i]), e = fabs(got - want[i]);
            if (e > worst) worst = e;
            CHECK(check_close(got, want[i], 1e-15, 1e-12), "%s: t %.6g: lr %.17g, want %.17g", g,
                  t[i], got, want[i]);
        }
        printf("  %-44s n %6zu  max abs err %.3g\n", g, (size_t)d[0], worst);
    }
    free(t), free(want);
}

static void test_schedule_edges(void)
{
    amlfs_schedule cos_s = {.kind = AMLFS_SCHEDULE_COSINE, .base_lr = 0.1, .epochs = 10};
    CHECK(amlfs_lr_at(&cos_s, 0.0) == 0.1, "cosine starts at base_lr");
    CHECK_CLOSE(amlfs_lr_at(&cos_s, 5.0), 0.05, 1e-17, 1e-14, "cosine halfway");
    CHECK(amlfs_lr_at(&cos_s, 10.0) == 0.0, "cosine ends at 0");
    CHECK(amlfs_lr_at(&cos_s, 11.0) == 0.0, "cosine stays at 0");
    CHECK(amlfs_lr_at(&cos_s, NAN) == 0.1, "NaN progress is the start");
    amlfs_schedule warm = {.kind = AMLFS_SCHEDULE_STEP, .base_lr = 0.2, .epochs = 0,
                           .warmup = 2, .step = 3, .gamma = 0.5};
    CHECK(amlfs_lr_at(&warm, 0.0) == 0.0, "warm-up starts at 0");
    CHECK_CLOSE(amlfs_lr_at(&warm, 1.0), 0.1, 0, 1e-15, "warm-up halfway");
    CHECK(amlfs_lr_at(&warm, 2.0) == 0.2, "warm-up ends at base_lr");
    CHECK(amlfs_lr_at(&warm, 2.999) == 0.2, "step: before the first decay");
    CHECK(amlfs_lr_at(&warm, 3.0) == 0.1, "step: the first decay at t = step");
    CHECK(amlfs_lr_at(&warm, 6.5) == 0.05, "step: the second decay");
}

/* ---- Refusals ------------------------------------------------------------------------- */

static void test_refusals(void)
{
    char err[256] = "";
    amlfs_conv_shape bad_conv = {2, 3, 8, 8, 4, 3, 3, 0, 1, 1, AMLFS_LAYOUT_PLAIN, AMLFS_LAYOUT_PLAIN}; /* stride 0 */
    CHECK(amlfs_conv_plan_create(ctx, &bad_conv, err, sizeof err) == NULL && err[0],
          "a stride-0 convolution was accepted");
    printf("  refused: %s\n", err);
    amlfs_conv_shape big_kernel = {2, 3, 2, 2, 4, 5, 5, 1, 0, 0, AMLFS_LAYOUT_PLAIN, AMLFS_LAYOUT_PLAIN};
    err[0] = 0;
    CHECK(amlfs_conv_plan_create(ctx, &big_kernel, err, sizeof err) == NULL && err[0],
          "a kernel larger than the input was accepted");
    amlfs_pool_shape bad_pool = {2, 3, 8, 8, 2, 2, 2, AMLFS_POOL_MAX, 1, AMLFS_LAYOUT_PLAIN}; /* pad > kernel/2 */
    err[0] = 0;
    CHECK(amlfs_pool_plan_create(ctx, &bad_pool, err, sizeof err) == NULL && err[0],
          "pooling with padding over half the kernel was accepted");
    printf("  refused: %s\n", err);
    amlfs_bn_shape bad_bn = {2, 0, 4, 4, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, AMLFS_LAYOUT_PLAIN};
    err[0] = 0;
    CHECK(amlfs_bn_plan_create(ctx, &bad_bn, err, sizeof err) == NULL && err[0],
          "batch norm with 0 channels was accepted");
    amlfs_linear_shape bad_lin = {4, -1, 3, 1};
    err[0] = 0;
    CHECK(amlfs_linear_plan_create(ctx, &bad_lin, err, sizeof err) == NULL && err[0],
          "a linear layer with -1 inputs was accepted");
    amlfs_cosine_shape bad_cos = {4, 0, 3};
    err[0] = 0;
    CHECK(amlfs_cosine_plan_create(ctx, &bad_cos, err, sizeof err) == NULL && err[0],
          "a cosine head with 0 inputs was accepted");
    amlfs_prelu_shape bad_prelu = {2, 0, 3, 3, AMLFS_LAYOUT_PLAIN};
    CHECK(amlfs_prelu_shape_check(&bad_prelu, err, sizeof err) != 0,
          "a PReLU of 0 channels passed the shape check");
    amlfs_shortcut_shape bad_sc = {2, 16, 8, 8, 17, 2, AMLFS_LAYOUT_PLAIN};
    err[0] = 0;
    CHECK(amlfs_shortcut_shape_check(&bad_sc, err, sizeof err) != 0 && err[0],
          "a shortcut with an odd channel difference was accepted");

    amlfs_device cuda = {AMLFS_DEVICE_CUDA, 0, 0};
    err[0] = 0;
    amlfs_context *gpu = amlfs_context_create(cuda, 0, err, sizeof err);
    if (gpu) {
        printf("  cuda context: %s\n", amlfs_context_describe(gpu));
        amlfs_context_destroy(gpu);
    } else {
        CHECK(err[0] != 0, "a refused CUDA context says nothing");
        printf("  refused: %s\n", err);
    }
    amlfs_device cpu1 = {AMLFS_DEVICE_CPU, 1, 0};
    err[0] = 0;
    CHECK(amlfs_context_create(cpu1, 0, err, sizeof err) == NULL && err[0],
          "cpu:1 was accepted");
}

/* ---- main ----------------------------------------------------------------------------- */

int main(void)
{
    char err[256] = "";
    amlfs_device cpu = {AMLFS_DEVICE_CPU, 0, 0};
    ctx = amlfs_context_create(cpu, 0, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "test_layers: cannot create the CPU context: %s\n", err);
        return 1;
    }
    printf("context: %s\n", amlfs_context_describe(ctx));

    const char *root = getenv("AMLFS_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s%stests/fixtures/layers.h5", root ? root : "", root ? "/" : "");
    fixtures = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(fixtures >= 0, "cannot open %s (make it with tests/fixtures/make_layer_fixtures.py)",
          path);
    if (fixtures >= 0) {
        printf("PyTorch fixtures (%s): ref |err| <= %g + %g |torch|; fast |err| <= %g (|ref| + "
               "max|ref|)\n", path, TORCH_ATOL, TORCH_RTOL, FAST_TOL);
        fixture_conv("conv_s1");
        fixture_conv("conv_s2");
        fixture_conv("conv_1x1");
        fixture_bn("bn_train", 1);
        fixture_bn("bn_infer", 0);
        fixture_pool("pool_max2");
        fixture_pool("pool_max3");
        fixture_pool("pool_avg2");
        fixture_pool("pool_avg3");
        fixture_pool("pool_avg3_excl");
        fixture_linear();
        fixture_elementwise();
        fixture_sgd("sgd_momentum");
        fixture_sgd("sgd_nesterov");
        fixture_sgd("sgd_plain");
        fixture_schedule("schedule_cosine");
        fixture_schedule("schedule_cosine_warmup");
        fixture_schedule("schedule_step_warmup");
        fixture_prelu("prelu");
        fixture_prelu("prelu_features");
        fixture_cosine("cosine");
        fixture_cosine("cosine_zero");
        H5Fclose(fixtures);
    }

    printf("larger shapes, fast path against the reference:\n");
    random_conv("conv 16x16x28x28 k16 3x3 s1 p1 bias", (amlfs_conv_shape){16, 16, 28, 28, 16, 3, 3, 1, 1, 1, AMLFS_LAYOUT_PLAIN, AMLFS_LAYOUT_PLAIN});
    random_conv("conv 16x16x28x28 k32 3x3 s2 p1", (amlfs_conv_shape){16, 16, 28, 28, 32, 3, 3, 2, 1, 0, AMLFS_LAYOUT_PLAIN, AMLFS_LAYOUT_PLAIN});
    random_conv("conv small-cnn 1: 16x1x28x28 k16", (amlfs_conv_shape){16, 1, 28, 28, 16, 3, 3, 1, 1, 1, AMLFS_LAYOUT_PLAIN, AMLFS_LAYOUT_PLAIN});
    random_conv("conv small-cnn 2: 16x16x14x14 k32", (amlfs_conv_shape){16, 16, 14, 14, 32, 3, 3, 1, 1, 1, AMLFS_LAYOUT_PLAIN, AMLFS_LAYOUT_PLAIN});
    random_bn("bn 16x16x28x28", (amlfs_bn_shape){16, 16, 28, 28, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, AMLFS_LAYOUT_PLAIN});
    random_bn("bn1d 32x64", (amlfs_bn_shape){32, 64, 1, 1, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, AMLFS_LAYOUT_PLAIN});
    random_pool("maxpool 16x16x28x28 2x2 s2", (amlfs_pool_shape){16, 16, 28, 28, 2, 2, 0, AMLFS_POOL_MAX, 1, AMLFS_LAYOUT_PLAIN});
    random_pool("maxpool 16x16x28x28 3x3 s2 p1", (amlfs_pool_shape){16, 16, 28, 28, 3, 2, 1, AMLFS_POOL_MAX, 1, AMLFS_LAYOUT_PLAIN});
    random_pool("avgpool 16x16x28x28 3x3 s2 p1", (amlfs_pool_shape){16, 16, 28, 28, 3, 2, 1, AMLFS_POOL_AVG, 1, AMLFS_LAYOUT_PLAIN});
    random_pool("avgpool excl 16x16x28x28 3x3 s2 p1", (amlfs_pool_shape){16, 16, 28, 28, 3, 2, 1, AMLFS_POOL_AVG, 0, AMLFS_LAYOUT_PLAIN});
    random_linear("linear small-cnn 1: 100x1568 -> 64", (amlfs_linear_shape){100, 1568, 64, 1});
    random_linear("linear small-cnn 2: 100x64 -> 10", (amlfs_linear_shape){100, 64, 10, 1});
    random_linear("linear 7x33 -> 5, no bias", (amlfs_linear_shape){7, 33, 5, 0});
    random_elementwise();
    random_prelu("prelu 16x64x28x24", (amlfs_prelu_shape){16, 64, 28, 24, AMLFS_LAYOUT_PLAIN});
    random_prelu("prelu features 64x512", (amlfs_prelu_shape){64, 512, 1, 1, AMLFS_LAYOUT_PLAIN});
    random_cosine("cosine head 64x512 -> 1000", (amlfs_cosine_shape){64, 512, 1000});
    random_cosine("cosine head 3x7 -> 2", (amlfs_cosine_shape){3, 7, 2});

    printf("schedules and refusals:\n");
    test_schedule_edges();
    test_refusals();

    amlfs_context_destroy(ctx);
    return check_done("test_layers");
}
