/* amlfs-cuda-layers-check: the CUDA backend of the layer interface (kernels/cuda/layers.cu)
 * against the plain C reference (ref_*, kernels/cpu/layers_ref.c, float build), on a
 * machine with a GPU. Every layer forward and backward on several shapes (odd sizes,
 * stride 2, padding, with and without bias, resnet20's 128x16x32x32; the face models'
 * cosine head and PReLU), inputs from the
 * project's Philox test stream; plus: parameter gradients accumulate (two backward calls
 * give the reference's two), the in-place calls the interface allows (ReLU, add, batch
 * norm's training backward), determinism (each backward, and the forwards, run twice:
 * the same bits), SGD to the bit. Prints one table row per case and tensor; exits 0 when
 * every case agrees, 1 on any mismatch, 2 when there is no GPU (nothing was checked). A
 * failing CUDA call inside the backend aborts with "amlfs: cuda: <what>: <error>".
 *
 * Tolerances: err = max |gpu - ref| over the tensor, rel = err / max |ref|; a case passes
 * when rel <= tol ("exact": the bits are equal).
 *   - exact: ReLU, add, pooling, global average pooling, the shortcut, SGD, layout
 *     conversion, and the determinism and in-place comparisons: these kernels repeat
 *     the reference's operations in its order, each rounded alone (no fused
 *     multiply-add), so any difference is a bug.
 *   - sums of L float32 products (cuDNN convolutions, cuBLAS gemm; the reference sums in
 *     double): tol = max(1e-5, 2 eps sqrt(L)), eps = 2^-23. Float32 rounding errors of
 *     a sum grow as eps sqrt(L) relative to its size when accumulated in a row (as a
 *     GEMM's inner loop does), so 1e-5 relative to the tensor's largest magnitude, with
 *     room for L up to about 1700 terms and sqrt-growth beyond (resnet20's weight
 *     gradient sums L = 131072 products: tol 8.6e-5). TF32 would miss it by ~100x.
 *     L: forward C R S, input gradient K R S, weight gradient N OH OW; linear IN, OUT, N.
 *   - sums done in double by both (batch norm, bias gradients): tol 1e-5 (they differ
 *     in the order of double additions, and a last float rounding: ~1e-7).
 *
 * AMLFS_CUDA_LOG=1 makes the backend print each convolution's chosen algorithms.
 */
#include "amlfs_layers.h"
#include "amlfs_rng.h"

#include <cuda_runtime.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *prog = "amlfs-cuda-layers-check";
static amlfs_context *ctx;
static int failures, rows;

/* Test data from the project's own Philox streams (the test stream, never the tools'). */
static amlfs_rng_cursor test_rng = {{0x1a7e2026u, 0, 0, AMLFS_STREAM_TEST}, 0};
static double normal01(void) { return amlfs_next_normal(&test_rng); }
static double uniform01(void) { return amlfs_next_uniform(&test_rng); }

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- Buffers ---------------------------------------------------------------------- */

static float *host(size_t n)
{
    float *p = (float *)calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "%s: error: out of host memory\n", prog);
        exit(1);
    }
    return p;
}

static float *host_copy(const float *x, size_t n)
{
    float *p = host(n);
    memcpy(p, x, n * sizeof *p);
    return p;
}

static float *gpu(size_t n)
{
    float *p = (float *)amlfs_alloc(ctx, (n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "%s: error: amlfs_alloc of %zu floats failed\n", prog, n);
        exit(1);
    }
    return p;
}

static float *gpu_from(const float *x, size_t n)
{
    float *p = gpu(n);
    amlfs_upload(ctx, p, x, n * sizeof(float));
    return p;
}

static float *fetch(const float *d, size_t n) /* a new host copy of a GPU tensor */
{
    float *p = host(n);
    amlfs_download(ctx, p, d, n * sizeof(float));
    return p;
}

static void put(float *d, const float *x, size_t n) { amlfs_upload(ctx, d, x, n * sizeof(float)); }

static float *normals(size_t n, double mean, double sd)
{
    float *p = host(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(mean + sd * normal01());
    return p;
}

/* ---- Comparison: one row per case and tensor -------------------------------------- */

#define EXACT 0.0

static double tol_sum(double terms) { return fmax(1e-5, 2.0 * FLT_EPSILON * sqrt(terms)); }

static int compare(const char *check, const char *shape, const char *tensor, const float *got,
                   const float *want, size_t n, double tol)
{
    double err = 0.0, scale = 0.0;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (isnan(g) != isnan(w))
            nan = 1;
        if (!isnan(g) && !isnan(w))
            err = fmax(err, fabs(g - w));
        scale = fmax(scale, fabs(w));
    }
    double rel = scale > 0 ? err / scale : (err > 0 ? INFINITY : 0.0);
    int ok = tol == EXACT ? memcmp(got, want, n * sizeof *got) == 0 : !nan && rel <= tol;
    char tols[16];
    if (tol == EXACT)
        snprintf(tols, sizeof tols, "exact");
    else
        snprintf(tols, sizeof tols, "%.2g", tol);
    printf("%-22s %-34s %-14s %10.3g %10.3g %8s %s\n", check, shape, tensor, err, rel, tols,
           ok ? "ok" : "FAIL");
    fflush(stdout);
    rows++;
    failures += !ok;
    return ok;
}

static void heading(const char *what)
{
    printf("\n-- %s\n", what);
}

/* ---- Convolution and linear: a weight and an optional bias --------------------------- */

/* The two layers with parameters, checked the same way (check_weighted): sizes, the
 * numbers of terms of the sums behind out, din and dw (their tolerances), and the
 * reference's and the fast path's calls behind one signature each. */
struct weighted_layer {
    const char *kind; /* "conv", "linear": the rows' names */
    const void *shape;
    size_t nin, nout, nw, nb;
    int has_bias;
    double fan_in, din_terms, dw_terms;
    void (*ref_forward)(const void *s, float *out, const float *in, const float *w,
                        const float *bias);
    void (*ref_backward)(const void *s, float *din, float *dw, float *dbias, const float *dout,
                         const float *in, const float *w);
    void (*forward)(void *plan, float *out, const float *in, const float *w, const float *bias);
    void (*backward)(void *plan, float *din, float *dw, float *dbias, const float *dout,
                     const float *in, const float *w);
};

/* The layer on random data against the reference: forward, one backward, a second one
 * onto the same gradients (+=), determinism (forward again, backward twice from zeroed
 * gradients) and the parameter gradients without din. */
static void check_weighted(const weighted_layer *L, void *plan, const char *shape)
{
    const size_t nin = L->nin, nout = L->nout, nw = L->nw, nb = L->nb;
    const int has_bias = L->has_bias;
    char fwd[32], bwd[32], acc[32], det[32], nodin[32];
    snprintf(fwd, sizeof fwd, "%s forward", L->kind);
    snprintf(bwd, sizeof bwd, "%s backward", L->kind);
    snprintf(acc, sizeof acc, "%s accumulate", L->kind);
    snprintf(det, sizeof det, "%s determinism", L->kind);
    snprintf(nodin, sizeof nodin, "%s din NULL", L->kind);
    float *x = normals(nin, 0.0, 1.0), *wt = normals(nw, 0.0, 1.0 / sqrt(L->fan_in));
    float *b = normals(nb, 0.0, 0.5), *dy = normals(nout, 0.0, 1.0);
    float *dw0 = normals(nw, 0.0, 1.0), *db0 = normals(nb, 0.0, 1.0);
    const float *bias = has_bias ? b : NULL;

    /* the reference: forward, one backward, and a second one onto the same gradients */
    float *out_ref = host(nout), *din_ref = host(nin);
    float *dw_ref = host_copy(dw0, nw), *db_ref = host_copy(db0, nb);
    L->ref_forward(L->shape, out_ref, x, wt, bias);
    L->ref_backward(L->shape, din_ref, dw_ref, has_bias ? db_ref : NULL, dy, x, wt);
    float *dw_ref2 = host_copy(dw_ref, nw), *db_ref2 = host_copy(db_ref, nb), *din_tmp = host(nin);
    L->ref_backward(L->shape, din_tmp, dw_ref2, has_bias ? db_ref2 : NULL, dy, x, wt);

    float *d_x = gpu_from(x, nin), *d_w = gpu_from(wt, nw), *d_b = gpu_from(b, nb);
    float *d_dy = gpu_from(dy, nout), *d_out = gpu(nout), *d_din = gpu(nin);
    float *d_dw = gpu_from(dw0, nw), *d_db = gpu_from(db0, nb);
    const float *d_bias = has_bias ? d_b : NULL;
    float *d_dbias = has_bias ? d_db : NULL;

    L->forward(plan, d_out, d_x, d_w, d_bias);
    float *out = fetch(d_out, nout);
    compare(fwd, shape, "out", out, out_ref, nout, tol_sum(L->fan_in));
    L->backward(plan, d_din, d_dw, d_dbias, d_dy, d_x, d_w);
    float *din = fetch(d_din, nin), *dw = fetch(d_dw, nw), *db = fetch(d_db, nb);
    compare(bwd, shape, "din", din, din_ref, nin, tol_sum(L->din_terms));
    compare(bwd, shape, "dw (+= once)", dw, dw_ref, nw, tol_sum(L->dw_terms));
    if (has_bias)
        compare(bwd, shape, "dbias (+= once)", db, db_ref, nb, 1e-5);
    L->backward(plan, d_din, d_dw, d_dbias, d_dy, d_x, d_w);
    float *dw2 = fetch(d_dw, nw), *db2 = fetch(d_db, nb);
    compare(acc, shape, "dw (+= twice)", dw2, dw_ref2, nw, tol_sum(L->dw_terms));
    if (has_bias)
        compare(acc, shape, "dbias (+= twice)", db2, db_ref2, nb, 1e-5);

    /* determinism: forward again, backward twice from zeroed gradients; dw without din */
    L->forward(plan, d_out, d_x, d_w, d_bias);
    float *out2 = fetch(d_out, nout);
    compare(det, shape, "out", out2, out, nout, EXACT);
    float *runs[2][3];
    for (int run = 0; run < 2; run++) {
        amlfs_memzero(ctx, d_dw, nw * sizeof(float));
        amlfs_memzero(ctx, d_db, nb * sizeof(float));
        L->backward(plan, d_din, d_dw, d_dbias, d_dy, d_x, d_w);
        runs[run][0] = fetch(d_din, nin), runs[run][1] = fetch(d_dw, nw);
        runs[run][2] = fetch(d_db, nb);
    }
    compare(det, shape, "din", runs[1][0], runs[0][0], nin, EXACT);
    compare(det, shape, "dw", runs[1][1], runs[0][1], nw, EXACT);
    if (has_bias)
        compare(det, shape, "dbias", runs[1][2], runs[0][2], nb, EXACT);
    amlfs_memzero(ctx, d_dw, nw * sizeof(float));
    L->backward(plan, NULL, d_dw, NULL, d_dy, d_x, d_w);
    float *dw_alone = fetch(d_dw, nw);
    compare(nodin, shape, "dw", dw_alone, runs[0][1], nw, EXACT);

    float *frees[] = {x, wt, b, dy, dw0, db0, out_ref, din_ref, dw_ref, db_ref, dw_ref2, db_ref2,
                      din_tmp, out, din, dw, db, dw2, db2, out2, runs[0][0], runs[0][1],
                      runs[0][2], runs[1][0], runs[1][1], runs[1][2], dw_alone};
    for (size_t i = 0; i < sizeof frees / sizeof frees[0]; i++)
        free(frees[i]);
    float *dfrees[] = {d_x, d_w, d_b, d_dy, d_out, d_din, d_dw, d_db};
    for (size_t i = 0; i < sizeof dfrees / sizeof dfrees[0]; i++)
        amlfs_free(ctx, dfrees[i]);
}

/* ---- Convolution ------------------------------------------------------------------ */

static void conv_ref_forward(const void *s, float *out, const float *in, const float *w,
                             const float *bias)
{
    ref_conv2d_forward(out, in, w, bias, (const amlfs_conv_shape *)s);
}
static void conv_ref_backward(const void *s, float *din, float *dw, float *dbias,
                              const float *dout, const float *in, const float *w)
{
    ref_conv2d_backward(din, dw, dbias, dout, in, w, (const amlfs_conv_shape *)s);
}
static void conv_forward(void *plan, float *out, const float *in, const float *w,
                         const float *bias)
{
    amlfs_conv_forward((amlfs_conv_plan *)plan, out, in, w, bias);
}
static void conv_backward(void *plan, float *din, float *dw, float *dbias, const float *dout,
                          const float *in, const float *w)
{
    amlfs_conv_backward((amlfs_conv_plan *)plan, din, dw, dbias, dout, in, w);
}

static void check_conv(int n, int c, int h, int w, int k, int r, int stride, int pad,
                       int has_bias, amlfs_layout layout)
{
    amlfs_conv_shape s;
    memset(&s, 0, sizeof s);
    s.n = n, s.c = c, s.h = h, s.w = w, s.k = k, s.r = r, s.s = r, s.stride = stride;
    s.pad = pad, s.has_bias = has_bias, s.in_layout = layout, s.out_layout = layout;
    char shape[96];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d k%d %dx%d s%d p%d%s%s", n, c, h, w, k, r, r,
             stride, pad, has_bias ? " bias" : "", layout == AMLFS_LAYOUT_NATIVE ? " nat" : "");
    char err[256];
    amlfs_conv_plan *plan = amlfs_conv_plan_create(ctx, &s, err, sizeof err);
    if (!plan) {
        printf("%-22s %-34s plan creation failed: %s FAIL\n", "conv", shape, err);
        failures++, rows++;
        return;
    }
    const int oh = amlfs_conv_out_h(&s), ow = amlfs_conv_out_w(&s);
    weighted_layer L = {"conv", &s, (size_t)n * c * h * w, (size_t)n * k * oh * ow,
                        (size_t)k * c * r * r, (size_t)k, has_bias, (double)c * r * r,
                        (double)k * r * r, (double)n * oh * ow, conv_ref_forward,
                        conv_ref_backward, conv_forward, conv_backward};
    check_weighted(&L, plan, shape);
    amlfs_conv_plan_destroy(plan);
}

/* ---- Batch norm ------------------------------------------------------------------- */

static void check_bn(int n, int c, int h, int w, double eps, double momentum,
                     amlfs_layout layout)
{
    amlfs_bn_shape s;
    memset(&s, 0, sizeof s);
    s.n = n, s.c = c, s.h = h, s.w = w, s.eps = eps, s.momentum = momentum, s.layout = layout;
    char shape[96];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d eps %g m %g%s", n, c, h, w, eps, momentum,
             layout == AMLFS_LAYOUT_NATIVE ? " nat" : "");
    char err[256];
    amlfs_bn_plan *plan = amlfs_bn_plan_create(ctx, &s, err, sizeof err);
    if (!plan) {
        printf("%-22s %-34s plan creation failed: %s FAIL\n", "bn", shape, err);
        failures++, rows++;
        return;
    }
    const size_t hw = (size_t)h * w, total = (size_t)n * c * hw;
    /* per-channel offsets and scales, so that the two-pass variance matters */
    float *x = host(total);
    for (int ch = 0; ch < c; ch++) {
        double mu = 3.0 * normal01(), sd = 0.5 + 2.0 * uniform01();
        for (int b = 0; b < n; b++)
            for (size_t i = 0; i < hw; i++)
                x[((size_t)b * c + ch) * hw + i] = (float)(mu + sd * normal01());
    }
    float *gamma = normals(c, 1.0, 0.2), *beta = normals(c, 0.0, 0.2);
    float *rmean = normals(c, 0.0, 0.3), *rvar = host(c);
    for (int ch = 0; ch < c; ch++)
        rvar[ch] = (float)(0.5 + uniform01());
    float *dy = normals(total, 0.0, 1.0), *dg0 = normals(c, 0.0, 1.0), *dbt0 = normals(c, 0.0, 1.0);

    /* reference */
    float *out_ref = host(total), *sm_ref = host(c), *sv_ref = host(c);
    float *rm_ref = host_copy(rmean, c), *rv_ref = host_copy(rvar, c);
    ref_batchnorm_forward_train(out_ref, sm_ref, sv_ref, rm_ref, rv_ref, x, gamma, beta, &s);
    float *inf_ref = host(total);
    ref_batchnorm_forward_infer(inf_ref, x, gamma, beta, rmean, rvar, &s);
    float *din_ref = host(total), *dg_ref = host_copy(dg0, c), *dbt_ref = host_copy(dbt0, c);
    ref_batchnorm_backward_train(din_ref, dg_ref, dbt_ref, dy, x, gamma, sm_ref, sv_ref, &s);
    float *dg_ref2 = host_copy(dg_ref, c), *dbt_ref2 = host_copy(dbt_ref, c), *tmp = host(total);
    ref_batchnorm_backward_train(tmp, dg_ref2, dbt_ref2, dy, x, gamma, sm_ref, sv_ref, &s);
    float *dini_ref = host(total), *dgi_ref = host_copy(dg0, c), *dbti_ref = host_copy(dbt0, c);
    ref_batchnorm_backward_infer(dini_ref, dgi_ref, dbti_ref, dy, x, gamma, rmean, rvar, &s);

    float *d_x = gpu_from(x, total), *d_g = gpu_from(gamma, c), *d_bt = gpu_from(beta, c);
    float *d_rm = gpu_from(rmean, c), *d_rv = gpu_from(rvar, c), *d_out = gpu(total);
    float *d_sm = gpu(c), *d_sv = gpu(c), *d_dy = gpu_from(dy, total), *d_din = gpu(total);
    float *d_dg = gpu_from(dg0, c), *d_dbt = gpu_from(dbt0, c);

    amlfs_bn_forward_train(plan, d_out, d_sm, d_sv, d_rm, d_rv, d_x, d_g, d_bt);
    float *out = fetch(d_out, total), *sm = fetch(d_sm, c), *sv = fetch(d_sv, c);
    float *rm = fetch(d_rm, c), *rv = fetch(d_rv, c);
    compare("bn forward train", shape, "out", out, out_ref, total, 1e-5);
    compare("bn forward train", shape, "save_mean", sm, sm_ref, c, 1e-5);
    compare("bn forward train", shape, "save_var", sv, sv_ref, c, 1e-5);
    compare("bn forward train", shape, "running_mean", rm, rm_ref, c, 1e-5);
    compare("bn forward train", shape, "running_var", rv, rv_ref, c, 1e-5);

    put(d_rm, rmean, c), put(d_rv, rvar, c);
    amlfs_bn_forward_infer(plan, d_out, d_x, d_g, d_bt, d_rm, d_rv);
    float *inf = fetch(d_out, total);
    compare("bn forward infer", shape, "out", inf, inf_ref, total, 1e-5);

    /* the backward from the reference's saved statistics, so both start the same */
    put(d_sm, sm_ref, c), put(d_sv, sv_ref, c);
    amlfs_bn_backward_train(plan, d_din, d_dg, d_dbt, d_dy, d_x, d_g, d_sm, d_sv);
    float *din = fetch(d_din, total), *dg = fetch(d_dg, c), *dbt = fetch(d_dbt, c);
    compare("bn backward train", shape, "din", din, din_ref, total, 1e-5);
    compare("bn backward train", shape, "dgamma (+= once)", dg, dg_ref, c, 1e-5);
    compare("bn backward train", shape, "dbeta (+= once)", dbt, dbt_ref, c, 1e-5);
    amlfs_bn_backward_train(plan, d_din, d_dg, d_dbt, d_dy, d_x, d_g, d_sm, d_sv);
    float *dg2 = fetch(d_dg, c), *dbt2 = fetch(d_dbt, c);
    compare("bn accumulate", shape, "dgamma (+= twice)", dg2, dg_ref2, c, 1e-5);
    compare("bn accumulate", shape, "dbeta (+= twice)", dbt2, dbt_ref2, c, 1e-5);

    /* in place: din = dout */
    float *d_inplace = gpu_from(dy, total);
    amlfs_bn_backward_train(plan, d_inplace, NULL, NULL, d_inplace, d_x, d_g, d_sm, d_sv);
    float *inplace = fetch(d_inplace, total);
    compare("bn backward in place", shape, "din = dout", inplace, din, total, EXACT);

    put(d_dg, dg0, c), put(d_dbt, dbt0, c);
    amlfs_bn_backward_infer(plan, d_din, d_dg, d_dbt, d_dy, d_x, d_g, d_rm, d_rv);
    float *dini = fetch(d_din, total), *dgi = fetch(d_dg, c), *dbti = fetch(d_dbt, c);
    compare("bn backward infer", shape, "din", dini, dini_ref, total, 1e-5);
    compare("bn backward infer", shape, "dgamma (+=)", dgi, dgi_ref, c, 1e-5);
    compare("bn backward infer", shape, "dbeta (+=)", dbti, dbti_ref, c, 1e-5);

    /* determinism: the training forward and backward again */
    put(d_rm, rmean, c), put(d_rv, rvar, c);
    amlfs_bn_forward_train(plan, d_out, d_sm, d_sv, d_rm, d_rv, d_x, d_g, d_bt);
    float *out2 = fetch(d_out, total), *sm2 = fetch(d_sm, c), *sv2 = fetch(d_sv, c);
    float *rm2 = fetch(d_rm, c), *rv2 = fetch(d_rv, c);
    compare("bn determinism", shape, "out", out2, out, total, EXACT);
    compare("bn determinism", shape, "save_mean", sm2, sm, c, EXACT);
    compare("bn determinism", shape, "save_var", sv2, sv, c, EXACT);
    compare("bn determinism", shape, "running_var", rv2, rv, c, EXACT);
    float *runs[2][3];
    put(d_sm, sm_ref, c), put(d_sv, sv_ref, c);
    for (int run = 0; run < 2; run++) {
        amlfs_memzero(ctx, d_dg, c * sizeof(float));
        amlfs_memzero(ctx, d_dbt, c * sizeof(float));
        amlfs_bn_backward_train(plan, d_din, d_dg, d_dbt, d_dy, d_x, d_g, d_sm, d_sv);
        runs[run][0] = fetch(d_din, total), runs[run][1] = fetch(d_dg, c);
        runs[run][2] = fetch(d_dbt, c);
    }
    compare("bn determinism", shape, "din", runs[1][0], runs[0][0], total, EXACT);
    compare("bn determinism", shape, "dgamma", runs[1][1], runs[0][1], c, EXACT);
    compare("bn determinism", shape, "dbeta", runs[1][2], runs[0][2], c, EXACT);

    amlfs_bn_plan_destroy(plan);
    float *frees[] = {x, gamma, beta, rmean, rvar, dy, dg0, dbt0, out_ref, sm_ref, sv_ref, rm_ref,
                      rv_ref, inf_ref, din_ref, dg_ref, dbt_ref, dg_ref2, dbt_ref2, tmp,
                      dini_ref, dgi_ref, dbti_ref, out, sm, sv, rm, rv, inf, din, dg, dbt, dg2,
                      dbt2, inplace, dini, dgi, dbti, out2, sm2, sv2, rm2, rv2, runs[0][0],
                      runs[0][1], runs[0][2], runs[1][0], runs[1][1], runs[1][2]};
    for (size_t i = 0; i < sizeof frees / sizeof frees[0]; i++)
        free(frees[i]);
    float *dfrees[] = {d_x, d_g, d_bt, d_rm, d_rv, d_out, d_sm, d_sv, d_dy, d_din, d_dg, d_dbt,
                       d_inplace};
    for (size_t i = 0; i < sizeof dfrees / sizeof dfrees[0]; i++)
        amlfs_free(ctx, dfrees[i]);
}

/* ---- Pooling ---------------------------------------------------------------------- */

/* ties: inputs from 4 levels, so windows hold equal maxima (the first one must win) */
static void check_pool(int n, int c, int h, int w, int kernel, int stride, int pad,
                       amlfs_pool_kind kind, int count_include_pad, int ties)
{
    amlfs_pool_shape s;
    memset(&s, 0, sizeof s);
    s.n = n, s.c = c, s.h = h, s.w = w, s.kernel = kernel, s.stride = stride, s.pad = pad;
    s.kind = kind, s.count_include_pad = count_include_pad, s.layout = AMLFS_LAYOUT_NATIVE;
    char shape[96];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d %s%d s%d p%d%s%s", n, c, h, w,
             kind == AMLFS_POOL_MAX ? "max" : "avg", kernel, stride, pad,
             kind == AMLFS_POOL_AVG ? (count_include_pad ? " incl" : " excl") : "",
             ties ? " ties" : "");
    char err[256];
    amlfs_pool_plan *plan = amlfs_pool_plan_create(ctx, &s, err, sizeof err);
    if (!plan) {
        printf("%-22s %-34s plan creation failed: %s FAIL\n", "pool", shape, err);
        failures++, rows++;
        return;
    }
    const int oh = amlfs_pool_out_h(&s), ow = amlfs_pool_out_w(&s);
    const size_t nin = (size_t)n * c * h * w, nout = (size_t)n * c * oh * ow;
    float *x = ties ? host(nin) : normals(nin, 0.0, 1.0);
    if (ties)
        for (size_t i = 0; i < nin; i++)
            x[i] = (float)floor(4.0 * uniform01());
    float *dy = normals(nout, 0.0, 1.0);
    float *out_ref = host(nout), *din_ref = host(nin);
    ref_pool_forward(out_ref, x, &s);
    ref_pool_backward(din_ref, dy, x, &s);

    size_t ws_bytes = amlfs_pool_workspace_bytes(plan);
    void *ws = ws_bytes ? amlfs_alloc(ctx, ws_bytes) : NULL;
    float *d_x = gpu_from(x, nin), *d_dy = gpu_from(dy, nout), *d_out = gpu(nout);
    float *d_din = gpu(nin);
    amlfs_pool_forward(plan, d_out, d_x, ws);
    float *out = fetch(d_out, nout);
    compare("pool forward", shape, "out", out, out_ref, nout, EXACT);
    float *runs[2];
    for (int run = 0; run < 2; run++) {
        amlfs_pool_backward(plan, d_din, d_dy, d_x, d_out, ws);
        runs[run] = fetch(d_din, nin);
    }
    compare("pool backward", shape, "din", runs[0], din_ref, nin, EXACT);
    compare("pool determinism", shape, "din", runs[1], runs[0], nin, EXACT);
    amlfs_pool_forward(plan, d_out, d_x, NULL); /* inference: no workspace */
    float *out2 = fetch(d_out, nout);
    compare("pool forward infer", shape, "out", out2, out_ref, nout, EXACT);

    amlfs_pool_plan_destroy(plan);
    amlfs_free(ctx, ws);
    float *frees[] = {x, dy, out_ref, din_ref, out, runs[0], runs[1], out2};
    for (size_t i = 0; i < sizeof frees / sizeof frees[0]; i++)
        free(frees[i]);
    amlfs_free(ctx, d_x), amlfs_free(ctx, d_dy), amlfs_free(ctx, d_out), amlfs_free(ctx, d_din);
}

/* ---- Linear ----------------------------------------------------------------------- */

static void linear_ref_forward(const void *s, float *out, const float *in, const float *w,
                               const float *bias)
{
    ref_linear_forward(out, in, w, bias, (const amlfs_linear_shape *)s);
}
static void linear_ref_backward(const void *s, float *din, float *dw, float *dbias,
                                const float *dout, const float *in, const float *w)
{
    ref_linear_backward(din, dw, dbias, dout, in, w, (const amlfs_linear_shape *)s);
}
static void linear_forward(void *plan, float *out, const float *in, const float *w,
                           const float *bias)
{
    amlfs_linear_forward((amlfs_linear_plan *)plan, out, in, w, bias);
}
static void linear_backward(void *plan, float *din, float *dw, float *dbias, const float *dout,
                            const float *in, const float *w)
{
    amlfs_linear_backward((amlfs_linear_plan *)plan, din, dw, dbias, dout, in, w);
}

static void check_linear(int n, int in, int outs, int has_bias)
{
    amlfs_linear_shape s = {n, in, outs, has_bias};
    char shape[96];
    snprintf(shape, sizeof shape, "n %d in %d out %d%s", n, in, outs, has_bias ? " bias" : "");
    char err[256];
    amlfs_linear_plan *plan = amlfs_linear_plan_create(ctx, &s, err, sizeof err);
    if (!plan) {
        printf("%-22s %-34s plan creation failed: %s FAIL\n", "linear", shape, err);
        failures++, rows++;
        return;
    }
    weighted_layer L = {"linear", &s, (size_t)n * in, (size_t)n * outs, (size_t)outs * in,
                        (size_t)outs, has_bias, (double)in, (double)outs, (double)n,
                        linear_ref_forward, linear_ref_backward, linear_forward,
                        linear_backward};
    check_weighted(&L, plan, shape);
    amlfs_linear_plan_destroy(plan);
}

/* ---- The cosine head and PReLU ------------------------------------------------------ */

static void cosine_ref_forward(const void *s, float *out, const float *in, const float *w,
                               const float *bias)
{
    (void)bias;
    ref_cosine_forward(out, in, w, (const amlfs_cosine_shape *)s);
}
static void cosine_ref_backward(const void *s, float *din, float *dw, float *dbias,
                                const float *dout, const float *in, const float *w)
{
    (void)dbias;
    ref_cosine_backward(din, dw, dout, in, w, (const amlfs_cosine_shape *)s);
}
static void cosine_forward(void *plan, float *out, const float *in, const float *w,
                           const float *bias)
{
    (void)bias;
    amlfs_cosine_forward((amlfs_cosine_plan *)plan, out, in, w);
}
static void cosine_backward(void *plan, float *din, float *dw, float *dbias, const float *dout,
                            const float *in, const float *w)
{
    (void)dbias;
    amlfs_cosine_backward((amlfs_cosine_plan *)plan, din, dw, dout, in, w);
}

/* cuBLAS on the normalised rows: the sums' tolerances as linear's */
static void check_cosine(int n, int in, int outs)
{
    amlfs_cosine_shape s = {n, in, outs};
    char shape[96];
    snprintf(shape, sizeof shape, "n %d in %d out %d", n, in, outs);
    char err[256];
    amlfs_cosine_plan *plan = amlfs_cosine_plan_create(ctx, &s, err, sizeof err);
    if (!plan) {
        printf("%-22s %-34s plan creation failed: %s FAIL\n", "cosine", shape, err);
        failures++, rows++;
        return;
    }
    weighted_layer L = {"cosine", &s, (size_t)n * in, (size_t)n * outs, (size_t)outs * in, 1,
                        0, (double)in, (double)outs, (double)n, cosine_ref_forward,
                        cosine_ref_backward, cosine_forward, cosine_backward};
    check_weighted(&L, plan, shape);
    amlfs_cosine_plan_destroy(plan);
}

/* PReLU: out and din exact (one product each), dslope a sum in double (1e-5); the
 * backward twice (+=), and in place (din = dout). */
static void check_prelu(int n, int c, int h, int w)
{
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d", n, c, h, w);
    amlfs_prelu_shape s = {n, c, h, w, AMLFS_LAYOUT_NATIVE};
    const size_t count = (size_t)n * c * h * w;
    float *x = normals(count, 0.0, 1.0), *dy = normals(count, 0.0, 1.0);
    float *slope = normals((size_t)c, 0.25, 0.2);
    float *out_ref = host(count), *din_ref = host(count), *ds_ref = host((size_t)c);
    ref_prelu_forward(out_ref, x, slope, &s);
    ref_prelu_backward(din_ref, ds_ref, dy, x, slope, &s);
    float *ds_ref2 = host_copy(ds_ref, (size_t)c);
    ref_prelu_backward(din_ref, ds_ref2, dy, x, slope, &s);
    float *d_x = gpu_from(x, count), *d_dy = gpu_from(dy, count), *d_sl = gpu_from(slope, (size_t)c);
    float *d_out = gpu(count), *d_din = gpu(count), *d_ds = gpu((size_t)c);
    amlfs_memzero(ctx, d_ds, (size_t)c * sizeof(float));
    amlfs_prelu_forward(ctx, d_out, d_x, d_sl, &s);
    float *out = fetch(d_out, count);
    compare("prelu forward", shape, "out", out, out_ref, count, EXACT);
    amlfs_prelu_backward(ctx, d_din, d_ds, d_dy, d_x, d_sl, &s);
    float *din = fetch(d_din, count), *ds = fetch(d_ds, (size_t)c);
    compare("prelu backward", shape, "din", din, din_ref, count, EXACT);
    compare("prelu backward", shape, "dslope (+= once)", ds, ds_ref, (size_t)c, 1e-5);
    amlfs_prelu_backward(ctx, d_din, d_ds, d_dy, d_x, d_sl, &s);
    float *ds2 = fetch(d_ds, (size_t)c);
    compare("prelu accumulate", shape, "dslope (+= twice)", ds2, ds_ref2, (size_t)c, 1e-5);
    amlfs_memzero(ctx, d_ds, (size_t)c * sizeof(float));
    amlfs_prelu_backward(ctx, d_dy, d_ds, d_dy, d_x, d_sl, &s);
    float *din_in = fetch(d_dy, count), *ds_in = fetch(d_ds, (size_t)c);
    compare("prelu backward in place", shape, "din = dout", din_in, din_ref, count, EXACT);
    compare("prelu backward in place", shape, "dslope", ds_in, ds, (size_t)c, EXACT);
    float *frees[] = {x, dy, slope, out_ref, din_ref, ds_ref, ds_ref2, out, din, ds, ds2, din_in,
                      ds_in};
    for (size_t i = 0; i < sizeof frees / sizeof frees[0]; i++)
        free(frees[i]);
    float *dfrees[] = {d_x, d_dy, d_sl, d_out, d_din, d_ds};
    for (size_t i = 0; i < sizeof dfrees / sizeof dfrees[0]; i++)
        amlfs_free(ctx, dfrees[i]);
}

/* ---- Element-wise layers, global pooling, shortcut --------------------------------- */

static void check_elementwise(size_t n)
{
    char shape[64];
    snprintf(shape, sizeof shape, "n %zu", n);
    float *a = normals(n, 0.0, 1.0), *b = normals(n, 0.0, 1.0), *dy = normals(n, 0.0, 1.0);
    for (size_t i = 0; i < n; i += 97)
        a[i] = 0.0f; /* ReLU at exactly 0: PyTorch's gradient there is 0 */
    float *relu_ref = host(n), *drelu_ref = host(n), *add_ref = host(n);
    ref_relu_forward(relu_ref, a, n);
    ref_relu_backward(drelu_ref, dy, relu_ref, n);
    ref_add_forward(add_ref, a, b, n);

    float *d_a = gpu_from(a, n), *d_b = gpu_from(b, n), *d_dy = gpu_from(dy, n), *d_o = gpu(n);
    amlfs_relu_forward(ctx, d_o, d_a, n);
    float *r = fetch(d_o, n);
    compare("relu forward", shape, "out", r, relu_ref, n, EXACT);
    float *d_t = gpu_from(a, n);
    amlfs_relu_forward(ctx, d_t, d_t, n);
    float *r_inplace = fetch(d_t, n);
    compare("relu forward in place", shape, "out = in", r_inplace, relu_ref, n, EXACT);
    float *d_din = gpu(n);
    amlfs_relu_backward(ctx, d_din, d_dy, d_o, n);
    float *dr = fetch(d_din, n);
    compare("relu backward", shape, "din", dr, drelu_ref, n, EXACT);
    put(d_t, dy, n);
    amlfs_relu_backward(ctx, d_t, d_t, d_o, n);
    float *dr_inplace = fetch(d_t, n);
    compare("relu backward in place", shape, "din = dout", dr_inplace, drelu_ref, n, EXACT);

    amlfs_add_forward(ctx, d_o, d_a, d_b, n);
    float *s = fetch(d_o, n);
    compare("add forward", shape, "out", s, add_ref, n, EXACT);
    put(d_t, a, n);
    amlfs_add_forward(ctx, d_t, d_t, d_b, n);
    float *s_a = fetch(d_t, n);
    compare("add forward in place", shape, "out = a", s_a, add_ref, n, EXACT);
    put(d_t, b, n);
    amlfs_add_forward(ctx, d_t, d_a, d_t, n);
    float *s_b = fetch(d_t, n);
    compare("add forward in place", shape, "out = b", s_b, add_ref, n, EXACT);

    amlfs_memzero(ctx, d_o, n * sizeof(float));
    amlfs_memzero(ctx, d_din, n * sizeof(float));
    amlfs_add_backward(ctx, d_o, d_din, d_dy, n);
    float *da = fetch(d_o, n), *db = fetch(d_din, n);
    compare("add backward", shape, "da", da, dy, n, EXACT);
    compare("add backward", shape, "db", db, dy, n, EXACT);
    put(d_t, dy, n);
    amlfs_memzero(ctx, d_din, n * sizeof(float));
    amlfs_add_backward(ctx, d_t, d_din, d_t, n);
    float *da_in = fetch(d_t, n), *db_in = fetch(d_din, n);
    compare("add backward in place", shape, "da = dout", da_in, dy, n, EXACT);
    compare("add backward in place", shape, "db", db_in, dy, n, EXACT);
    amlfs_memzero(ctx, d_din, n * sizeof(float));
    amlfs_add_backward(ctx, d_din, d_din, d_dy, n);
    float *dab = fetch(d_din, n);
    compare("add backward da = db", shape, "da", dab, dy, n, EXACT);

    float *frees[] = {a, b, dy, relu_ref, drelu_ref, add_ref, r, r_inplace, dr, dr_inplace, s,
                      s_a, s_b, da, db, da_in, db_in, dab};
    for (size_t i = 0; i < sizeof frees / sizeof frees[0]; i++)
        free(frees[i]);
    float *dfrees[] = {d_a, d_b, d_dy, d_o, d_t, d_din};
    for (size_t i = 0; i < sizeof dfrees / sizeof dfrees[0]; i++)
        amlfs_free(ctx, dfrees[i]);
}

static void check_global_avgpool(int n, int c, int h, int w)
{
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d", n, c, h, w);
    const size_t nin = (size_t)n * c * h * w, nout = (size_t)n * c;
    float *x = normals(nin, 0.5, 1.0), *dy = normals(nout, 0.0, 1.0);
    float *out_ref = host(nout), *din_ref = host(nin);
    ref_global_avgpool_forward(out_ref, x, n, c, h * w);
    ref_global_avgpool_backward(din_ref, dy, n, c, h * w);
    float *d_x = gpu_from(x, nin), *d_dy = gpu_from(dy, nout), *d_out = gpu(nout);
    float *d_din = gpu(nin);
    amlfs_global_avgpool_forward(ctx, d_out, d_x, n, c, h, w, AMLFS_LAYOUT_NATIVE);
    amlfs_global_avgpool_backward(ctx, d_din, d_dy, n, c, h, w, AMLFS_LAYOUT_NATIVE);
    float *out = fetch(d_out, nout), *din = fetch(d_din, nin);
    compare("global avgpool fwd", shape, "out", out, out_ref, nout, EXACT);
    compare("global avgpool bwd", shape, "din", din, din_ref, nin, EXACT);
    free(x), free(dy), free(out_ref), free(din_ref), free(out), free(din);
    amlfs_free(ctx, d_x), amlfs_free(ctx, d_dy), amlfs_free(ctx, d_out), amlfs_free(ctx, d_din);
}

static void check_shortcut(int n, int c, int h, int w, int k, int stride)
{
    amlfs_shortcut_shape s;
    memset(&s, 0, sizeof s);
    s.n = n, s.c = c, s.h = h, s.w = w, s.k = k, s.stride = stride;
    s.layout = AMLFS_LAYOUT_NATIVE;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d k%d s%d", n, c, h, w, k, stride);
    const int oh = amlfs_shortcut_out_h(&s), ow = amlfs_shortcut_out_w(&s);
    const size_t nin = (size_t)n * c * h * w, nout = (size_t)n * k * oh * ow;
    float *x = normals(nin, 0.0, 1.0), *dy = normals(nout, 0.0, 1.0);
    float *out_ref = host(nout), *din_ref = host(nin);
    ref_shortcut_forward(out_ref, x, &s);
    ref_shortcut_backward(din_ref, dy, &s);
    float *d_x = gpu_from(x, nin), *d_dy = gpu_from(dy, nout), *d_out = gpu(nout);
    float *d_din = gpu_from(x, nin); /* not zero: the backward must write every element */
    amlfs_shortcut_forward(ctx, d_out, d_x, &s);
    amlfs_shortcut_backward(ctx, d_din, d_dy, &s);
    float *out = fetch(d_out, nout), *din = fetch(d_din, nin);
    compare("shortcut forward", shape, "out", out, out_ref, nout, EXACT);
    compare("shortcut backward", shape, "din", din, din_ref, nin, EXACT);
    free(x), free(dy), free(out_ref), free(din_ref), free(out), free(din);
    amlfs_free(ctx, d_x), amlfs_free(ctx, d_dy), amlfs_free(ctx, d_out), amlfs_free(ctx, d_din);
}

/* ---- SGD, layouts, memory --------------------------------------------------------- */

/* Three steps (the first without a momentum buffer), the same on both sides. */
static void check_sgd(size_t n, double lr, double momentum, double weight_decay, int nesterov)
{
    char shape[96];
    snprintf(shape, sizeof shape, "n %zu lr %g m %g wd %g%s", n, lr, momentum, weight_decay,
             nesterov ? " nesterov" : "");
    float *param = normals(n, 0.0, 1.0), *buf = host(n);
    float *d_param = gpu_from(param, n), *d_buf = gpu(n);
    for (int step = 0; step < 3; step++) {
        float *grad = normals(n, 0.0, 1.0);
        float *d_grad = gpu_from(grad, n);
        ref_sgd_step(param, momentum != 0.0 ? buf : NULL, grad, n, lr, momentum, weight_decay,
                     nesterov, step == 0);
        amlfs_sgd_step(ctx, d_param, momentum != 0.0 ? d_buf : NULL, d_grad, n, lr, momentum,
                       weight_decay, nesterov, step == 0);
        free(grad);
        amlfs_free(ctx, d_grad);
    }
    float *p = fetch(d_param, n), *b = fetch(d_buf, n);
    compare("sgd 3 steps", shape, "param", p, param, n, EXACT);
    if (momentum != 0.0)
        compare("sgd 3 steps", shape, "momentum_buf", b, buf, n, EXACT);
    free(param), free(buf), free(p), free(b);
    amlfs_free(ctx, d_param), amlfs_free(ctx, d_buf);
}

static void check_layouts_and_memory(int n, int c, int h, int w)
{
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d", n, c, h, w);
    const size_t count = (size_t)n * c * h * w;
    size_t plain = amlfs_act_floats(ctx, AMLFS_LAYOUT_PLAIN, n, c, h, w);
    size_t native = amlfs_act_floats(ctx, AMLFS_LAYOUT_NATIVE, n, c, h, w);
    int sizes_ok = plain == count && native == count;
    printf("%-22s %-34s %-14s plain %zu native %zu (want %zu) %s\n", "act_floats", shape, "",
           plain, native, count, sizes_ok ? "ok" : "FAIL");
    rows++, failures += !sizes_ok;
    float *x = normals(count, 0.0, 1.0);
    float *d_x = gpu_from(x, count), *d_native = gpu(count), *d_back = gpu(count);
    amlfs_act_convert(ctx, d_native, AMLFS_LAYOUT_NATIVE, d_x, AMLFS_LAYOUT_PLAIN, n, c, h, w);
    amlfs_act_convert(ctx, d_back, AMLFS_LAYOUT_PLAIN, d_native, AMLFS_LAYOUT_NATIVE, n, c, h, w);
    float *native_h = fetch(d_native, count), *back = fetch(d_back, count);
    compare("act_convert", shape, "to native", native_h, x, count, EXACT);
    compare("act_convert", shape, "and back", back, x, count, EXACT);

    /* amlfs_alloc returns zeroed memory: allocate, dirty, free, allocate the same size
     * again (the allocator may well hand back the same memory) */
    const size_t big = ((size_t)1 << 22) + 3;
    float *ones = host(big), *zeros = host(big);
    for (size_t i = 0; i < big; i++)
        ones[i] = 1.0f;
    float *d_dirty = gpu_from(ones, big);
    amlfs_free(ctx, d_dirty);
    float *d_fresh = gpu(big), *fresh = fetch(d_fresh, big);
    compare("alloc", "4M+3 floats", "zeroed", fresh, zeros, big, EXACT);
    free(x), free(native_h), free(back), free(ones), free(zeros), free(fresh);
    amlfs_free(ctx, d_x), amlfs_free(ctx, d_native), amlfs_free(ctx, d_back);
    amlfs_free(ctx, d_fresh);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: %s\nCompares the CUDA backend of every layer (forward, backward, "
               "accumulation, in place,\ndeterminism, SGD) with the C reference.\n"
               "Exit 0 all agree, 1 a mismatch or CUDA error, 2 no GPU.\n",
               prog);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "%s: error: unexpected argument '%s' (see --help)\n", prog, argv[1]);
        return 1;
    }
    int devices = 0;
    cudaError_t e = cudaGetDeviceCount(&devices);
    if (e != cudaSuccess || devices == 0) {
        fprintf(stderr, "%s: error: no CUDA device (%s): nothing checked\n", prog,
                e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return 2;
    }
    char err[256];
    const char *log = getenv("AMLFS_CUDA_LOG");
    amlfs_device device = {AMLFS_DEVICE_CUDA, 0, log && !strcmp(log, "1")};
    ctx = amlfs_context_create(device, 0, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "%s: error: cuda:0: %s\n", prog, err);
        return 1;
    }
    printf("%s: %s\n", prog, amlfs_context_describe(ctx));
    double t0 = now_seconds();
    printf("%-22s %-34s %-14s %10s %10s %8s %s\n", "check", "shape", "tensor", "max|err|",
           "rel", "tol", "");

    heading("convolution (cuDNN); shape n x c x h x w, k outputs, kernel, stride, padding");
    check_conv(2, 3, 7, 9, 5, 3, 1, 1, 1, AMLFS_LAYOUT_PLAIN);
    check_conv(3, 4, 9, 7, 6, 3, 2, 1, 0, AMLFS_LAYOUT_NATIVE);
    check_conv(2, 5, 8, 8, 4, 1, 2, 0, 1, AMLFS_LAYOUT_PLAIN);
    check_conv(1, 2, 5, 6, 3, 5, 1, 2, 1, AMLFS_LAYOUT_NATIVE);
    check_conv(3, 2, 11, 13, 7, 3, 2, 0, 1, AMLFS_LAYOUT_PLAIN);
    check_conv(100, 1, 28, 28, 16, 3, 1, 1, 0, AMLFS_LAYOUT_PLAIN);  /* small-cnn conv1 */
    check_conv(128, 16, 32, 32, 16, 3, 1, 1, 0, AMLFS_LAYOUT_NATIVE); /* resnet20 stage 1 */
    check_conv(128, 16, 32, 32, 32, 3, 2, 1, 0, AMLFS_LAYOUT_NATIVE); /* resnet20 to stage 2 */

    heading("batch norm (training and inference)");
    check_bn(2, 3, 5, 7, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, AMLFS_LAYOUT_PLAIN);
    check_bn(4, 16, 8, 8, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, AMLFS_LAYOUT_NATIVE);
    check_bn(7, 10, 1, 1, 1e-3, 0.3, AMLFS_LAYOUT_PLAIN); /* features (N,C) */
    check_bn(1, 4, 1, 1, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, AMLFS_LAYOUT_PLAIN); /* M = 1 */
    check_bn(128, 16, 32, 32, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, AMLFS_LAYOUT_NATIVE);
    check_bn(128, 64, 8, 8, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, AMLFS_LAYOUT_NATIVE);

    heading("pooling");
    check_pool(2, 3, 8, 8, 2, 2, 0, AMLFS_POOL_MAX, 0, 0);
    check_pool(2, 3, 7, 9, 3, 2, 1, AMLFS_POOL_MAX, 0, 0);
    check_pool(2, 3, 7, 9, 3, 1, 1, AMLFS_POOL_MAX, 0, 1);
    check_pool(3, 2, 9, 8, 2, 2, 0, AMLFS_POOL_MAX, 0, 1);
    check_pool(2, 3, 7, 9, 3, 2, 1, AMLFS_POOL_AVG, 1, 0);
    check_pool(2, 3, 7, 9, 3, 2, 1, AMLFS_POOL_AVG, 0, 0);
    check_pool(2, 3, 6, 6, 2, 2, 0, AMLFS_POOL_AVG, 1, 0);
    check_pool(100, 16, 28, 28, 2, 2, 0, AMLFS_POOL_MAX, 0, 0); /* small-cnn */
    check_pool(128, 16, 32, 32, 2, 2, 0, AMLFS_POOL_MAX, 0, 1);

    heading("linear (cuBLAS)");
    check_linear(128, 64, 10, 1);   /* resnet20's classifier */
    check_linear(100, 1568, 10, 1); /* small-cnn's */
    check_linear(7, 13, 5, 0);
    check_linear(1, 1, 1, 1);
    check_linear(33, 257, 129, 1);

    heading("the cosine head (cuBLAS on normalised rows) and PReLU");
    check_cosine(7, 13, 5);
    check_cosine(256, 512, 1000); /* sphere20's head, 1000 of CASIA's 10,575 classes */
    check_prelu(2, 3, 5, 7);
    check_prelu(32, 64, 56, 48); /* sphere20's first stage at batch 32 */
    check_prelu(9, 512, 1, 1);   /* features */

    heading("element-wise, global average pooling, shortcut");
    check_elementwise(1000003);
    check_elementwise(1);
    check_global_avgpool(128, 64, 8, 8);
    check_global_avgpool(3, 5, 7, 9);
    check_shortcut(128, 16, 32, 32, 32, 2);
    check_shortcut(2, 3, 5, 7, 7, 2);
    check_shortcut(2, 4, 6, 6, 8, 1);

    heading("SGD (bit for bit), layouts, memory");
    check_sgd(100003, 0.1, 0.9, 5e-4, 0);
    check_sgd(100003, 0.05, 0.9, 5e-4, 1);
    check_sgd(1001, 0.1, 0.0, 5e-4, 0);
    check_sgd(1001, 0.1, 0.9, 0.0, 0);
    check_sgd(1001, 0.3, 0.0, 0.0, 0);
    check_layouts_and_memory(3, 5, 7, 9);

    amlfs_context_destroy(ctx);
    printf("\n%s: %s (%d of %d rows FAIL), %.1f s\n", prog, failures ? "FAILED" : "all agree",
           failures, rows, now_seconds() - t0);
    return failures ? 1 : 0;
}
