/* test_layers_native.c: the fast path on the native activation layout (amlfs_layers.h).
 *   1. the layout itself: amlfs_act_floats, and amlfs_act_convert placing element
 *      (n, c, h, w) where the header's formula says, padding channels zero, round trips
 *      to the bit;
 *   2. every layer that takes a layout, on native activations, against the plain
 *      reference (layers_ref.c): convolution (native in and out, and plain in / native
 *      out as a model's first layer), batch norm (both modes, and its training backward
 *      in place), max and average pooling, global average pooling, the option-A
 *      shortcut and PReLU (its backward also in place); channel counts that fill the blocks and ones that do not. Tolerances as
 *      test_layers (compare.h): oneDNN's to FAST_TOL, the OpenMP layers to the bit;
 *   3. every output and input gradient a layer writes keeps the padding zero.
 * The whole test runs twice, each in a child process: once with oneDNN's own ISA (block
 * 16 on AVX-512), once with ONEDNN_MAX_CPU_ISA=AVX2 (block 8), so both blockings are
 * checked on a machine that has AVX-512.
 */
#include "amlfs_rng.h"
#include "amlfs_layers.h"
#include "check.h"
#include "compare.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static amlfs_context *ctx;
static amlfs_rng_cursor test_rng = {{0x7a71e5u, 0, 0, AMLFS_STREAM_TEST}, 0};

static float *zeros(size_t n) { return test_zeros(n); }
static float *randn(size_t n, double scale, double shift)
{
    return test_randn(&test_rng, n, scale, shift);
}

/* An (N,C,H,W) activation in both layouts. */
typedef struct {
    int n, c, h, w;
    size_t plain, native; /* floats */
} dims4;

static dims4 dims(int n, int c, int h, int w)
{
    dims4 d = {n, c, h, w, (size_t)n * c * h * w,
               amlfs_act_floats(ctx, AMLFS_LAYOUT_NATIVE, n, c, h, w)};
    return d;
}

static float *to_native(const float *plain, dims4 d)
{
    float *x = randn(d.native, 1.0, 0.0); /* noise: the conversion must write every float */
    amlfs_act_convert(ctx, x, AMLFS_LAYOUT_NATIVE, plain, AMLFS_LAYOUT_PLAIN, d.n, d.c, d.h, d.w);
    return x;
}

static float *to_plain(const float *native, dims4 d)
{
    float *x = zeros(d.plain);
    amlfs_act_convert(ctx, x, AMLFS_LAYOUT_PLAIN, native, AMLFS_LAYOUT_NATIVE, d.n, d.c, d.h, d.w);
    return x;
}

/* The padding channels of a native tensor are zero (the literal offsets of the header). */
static void check_padding(const char *what, const float *x, dims4 d)
{
    const int b = amlfs_cpu_block(), cb = (d.c + b - 1) / b;
    size_t nonzero = 0, hw = (size_t)d.h * d.w;
    for (int n = 0; n < d.n; n++)
        for (int c = d.c; c < cb * b; c++)
            for (size_t i = 0; i < hw; i++)
                nonzero += x[(((size_t)n * cb + c / b) * hw + i) * b + c % b] != 0.0f;
    CHECK(nonzero == 0, "%s: %zu padding floats are not zero", what, nonzero);
}

/* The fast result (native) against the reference (plain): converted back, compared,
 * and its padding checked. fast_tol: oneDNN's tolerance, else to the bit. */
static void compare_native(const char *name, const char *tensor, const float *native,
                           const float *ref, dims4 d, int fast_tol)
{
    char what[160];
    snprintf(what, sizeof what, "%s %s", name, tensor);
    float *p = to_plain(native, d);
    if (fast_tol)
        compare_fast(what, p, ref, d.plain);
    else
        compare_bits(what, p, ref, d.plain);
    check_padding(what, native, d);
    free(p);
}

/* ---- 1. The layout ------------------------------------------------------------------ */

static void test_layout(int n, int c, int h, int w)
{
    const int b = amlfs_cpu_block(), cb = (c + b - 1) / b;
    dims4 d = dims(n, c, h, w);
    CHECK(d.native == (size_t)n * cb * b * h * w, "act_floats native %zu for %dx%dx%dx%d, block %d",
          d.native, n, c, h, w, b);
    CHECK(amlfs_act_floats(ctx, AMLFS_LAYOUT_PLAIN, n, c, h, w) == d.plain, "act_floats plain");
    float *x = randn(d.plain, 1.0, 0.0), *nat = to_native(x, d);
    size_t misplaced = 0;
    for (int in = 0; in < n; in++)
        for (int ic = 0; ic < c; ic++)
            for (int ih = 0; ih < h; ih++)
                for (int iw = 0; iw < w; iw++) {
                    size_t at = (((size_t)in * cb + ic / b) * h * w + (size_t)ih * w + iw) * b + ic % b;
                    size_t from = (((size_t)in * c + ic) * h + ih) * w + iw;
                    misplaced += memcmp(&nat[at], &x[from], sizeof *x) != 0;
                }
    char what[96];
    snprintf(what, sizeof what, "convert %dx%dx%dx%d -> native", n, c, h, w);
    printf("  %-52s block %d, %zu of %zu floats misplaced\n", what, b, misplaced, d.plain);
    CHECK(misplaced == 0, "%s: %zu misplaced", what, misplaced);
    check_padding(what, nat, d);
    float *back = to_plain(nat, d);
    snprintf(what, sizeof what, "convert %dx%dx%dx%d round trip", n, c, h, w);
    compare_bits(what, back, x, d.plain);
    float *copy = zeros(d.native);
    amlfs_act_convert(ctx, copy, AMLFS_LAYOUT_NATIVE, nat, AMLFS_LAYOUT_NATIVE, n, c, h, w);
    snprintf(what, sizeof what, "convert %dx%dx%dx%d native copy", n, c, h, w);
    compare_bits(what, copy, nat, d.native);
    free(x), free(nat), free(back), free(copy);
}

/* ---- 2. Layers ------------------------------------------------------------------------ */

static void test_conv(const char *name, amlfs_conv_shape s)
{
    const int oh = amlfs_conv_out_h(&s), ow = amlfs_conv_out_w(&s);
    dims4 di = dims(s.n, s.c, s.h, s.w), dout_d = dims(s.n, s.k, oh, ow);
    const size_t n_w = (size_t)s.k * s.c * s.r * s.s;
    float *in = randn(di.plain, 1.0, 0.0), *w = randn(n_w, 1.0 / sqrt((double)s.c * s.r * s.s), 0.0),
          *bias = randn((size_t)s.k, 0.1, 0.0), *dout = randn(dout_d.plain, 1.0, 0.0);
    float *out = zeros(dout_d.plain), *din = zeros(di.plain), *dw = zeros(n_w), *db = zeros((size_t)s.k);
    ref_conv2d_forward(out, in, w, s.has_bias ? bias : NULL, &s);
    ref_conv2d_backward(din, dw, s.has_bias ? db : NULL, dout, in, w, &s);
    ref_conv2d_backward(din, dw, s.has_bias ? db : NULL, dout, in, w, &s);

    char err[256] = "";
    amlfs_conv_plan *plan = amlfs_conv_plan_create(ctx, &s, err, sizeof err);
    CHECK(plan != NULL, "%s: plan: %s", name, err);
    if (plan) {
        const int native_in = s.in_layout == AMLFS_LAYOUT_NATIVE;
        float *x = native_in ? to_native(in, di) : in, *dy = to_native(dout, dout_d);
        float *y = zeros(dout_d.native), *dx = randn(native_in ? di.native : di.plain, 1.0, 0.0),
              *f_dw = zeros(n_w), *f_db = zeros((size_t)s.k);
        amlfs_conv_forward(plan, y, x, w, bias);
        amlfs_conv_backward(plan, dx, f_dw, s.has_bias ? f_db : NULL, dy, x, w);
        amlfs_conv_backward(plan, dx, f_dw, s.has_bias ? f_db : NULL, dy, x, w);
        compare_native(name, "out", y, out, dout_d, 1);
        if (native_in) {
            compare_native(name, "din", dx, din, di, 1);
        } else {
            char what[160];
            snprintf(what, sizeof what, "%s din (plain)", name);
            compare_fast(what, dx, din, di.plain);
        }
        char what[160];
        snprintf(what, sizeof what, "%s dw (two backwards)", name);
        compare_fast(what, f_dw, dw, n_w);
        if (s.has_bias) {
            snprintf(what, sizeof what, "%s dbias (two backwards)", name);
            compare_fast(what, f_db, db, (size_t)s.k);
        }
        if (native_in) free(x);
        free(dy), free(y), free(dx), free(f_dw), free(f_db);
        amlfs_conv_plan_destroy(plan);
    }
    free(in), free(w), free(bias), free(dout), free(out), free(din), free(dw), free(db);
}

static void test_bn(const char *name, amlfs_bn_shape s)
{
    dims4 d = dims(s.n, s.c, s.h, s.w);
    const size_t c = (size_t)s.c;
    float *in = randn(d.plain, 2.0, 0.5), *gamma = randn(c, 0.3, 1.0), *beta = randn(c, 0.2, 0.0),
          *dout = randn(d.plain, 1.0, 0.0), *rm0 = randn(c, 0.5, 0.0), *rv0 = zeros(c);
    for (size_t i = 0; i < c; i++) rv0[i] = (float)(0.5 + amlfs_next_uniform(&test_rng));
    char err[256] = "", what[160];
    amlfs_bn_plan *plan = amlfs_bn_plan_create(ctx, &s, err, sizeof err);
    CHECK(plan != NULL, "%s: plan: %s", name, err);
    for (int train = 1; plan && train >= 0; train--) {
        float *out = zeros(d.plain), *din = zeros(d.plain), *dg = zeros(c), *db = zeros(c),
              *mean = zeros(c), *var = zeros(c), *rm = zeros(c), *rv = zeros(c);
        memcpy(rm, rm0, c * 4), memcpy(rv, rv0, c * 4);
        float *x = to_native(in, d), *dy = to_native(dout, d), *y = zeros(d.native),
              *dx = zeros(d.native), *f_dg = zeros(c), *f_db = zeros(c), *f_mean = zeros(c),
              *f_var = zeros(c), *f_rm = zeros(c), *f_rv = zeros(c);
        memcpy(f_rm, rm0, c * 4), memcpy(f_rv, rv0, c * 4);
        const char *mode = train ? "train" : "infer";
        if (train) {
            ref_batchnorm_forward_train(out, mean, var, rm, rv, in, gamma, beta, &s);
            ref_batchnorm_backward_train(din, dg, db, dout, in, gamma, mean, var, &s);
            amlfs_bn_forward_train(plan, y, f_mean, f_var, f_rm, f_rv, x, gamma, beta);
            amlfs_bn_backward_train(plan, dx, f_dg, f_db, dy, x, gamma, f_mean, f_var);
        } else {
            ref_batchnorm_forward_infer(out, in, gamma, beta, rm, rv, &s);
            ref_batchnorm_backward_infer(din, dg, db, dout, in, gamma, rm, rv, &s);
            amlfs_bn_forward_infer(plan, y, x, gamma, beta, f_rm, f_rv);
            amlfs_bn_backward_infer(plan, dx, f_dg, f_db, dy, x, gamma, f_rm, f_rv);
        }
        snprintf(what, sizeof what, "%s %s", name, mode);
        compare_native(what, "out", y, out, d, 1);
        compare_native(what, "din", dx, din, d, 1);
        char t[200];
        snprintf(t, sizeof t, "%s dgamma", what);
        compare_fast(t, f_dg, dg, c);
        snprintf(t, sizeof t, "%s dbeta", what);
        compare_fast(t, f_db, db, c);
        if (train) {
            snprintf(t, sizeof t, "%s save_mean", what);
            compare_fast(t, f_mean, mean, c);
            snprintf(t, sizeof t, "%s save_var", what);
            compare_fast(t, f_var, var, c);
            snprintf(t, sizeof t, "%s running_var", what);
            compare_fast(t, f_rv, rv, c);
            /* in place, as a model may run it: din over dout, the same bytes */
            float *g = zeros(c), *b = zeros(c);
            amlfs_bn_backward_train(plan, dy, g, b, dy, x, gamma, f_mean, f_var);
            snprintf(t, sizeof t, "%s din in place", what);
            compare_bits(t, dy, dx, d.native);
            free(g), free(b);
        }
        free(out), free(din), free(dg), free(db), free(mean), free(var), free(rm), free(rv);
        free(x), free(dy), free(y), free(dx), free(f_dg), free(f_db), free(f_mean), free(f_var);
        free(f_rm), free(f_rv);
    }
    amlfs_bn_plan_destroy(plan);
    free(in), free(gamma), free(beta), free(dout), free(rm0), free(rv0);
}

static void test_pool(const char *name, amlfs_pool_shape s)
{
    dims4 di = dims(s.n, s.c, s.h, s.w), dd = dims(s.n, s.c, amlfs_pool_out_h(&s), amlfs_pool_out_w(&s));
    float *in = randn(di.plain, 1.0, 0.0), *dout = randn(dd.plain, 1.0, 0.0), *out = zeros(dd.plain),
          *din = zeros(di.plain);
    ref_pool_forward(out, in, &s);
    ref_pool_backward(din, dout, in, &s);
    char err[256] = "";
    amlfs_pool_plan *plan = amlfs_pool_plan_create(ctx, &s, err, sizeof err);
    CHECK(plan != NULL, "%s: plan: %s", name, err);
    if (plan) {
        size_t ws_bytes = amlfs_pool_workspace_bytes(plan);
        void *ws = ws_bytes ? amlfs_alloc(ctx, ws_bytes) : NULL;
        float *x = to_native(in, di), *dy = to_native(dout, dd), *y = zeros(dd.native),
              *dx = randn(di.native, 1.0, 0.0);
        amlfs_pool_forward(plan, y, x, ws);
        amlfs_pool_backward(plan, dx, dy, x, y, ws);
        compare_native(name, "out", y, out, dd, 1);
        compare_native(name, "din", dx, din, di, 1);
        free(x), free(dy), free(y), free(dx);
        amlfs_free(ctx, ws);
        amlfs_pool_plan_destroy(plan);
    }
    free(in), free(dout), free(out), free(din);
}

static void test_gap_shortcut(int n, int c, int h, int w, int k, int stride)
{
    char name[96];
    dims4 d = dims(n, c, h, w);
    const size_t feats = (size_t)n * c;
    float *in = randn(d.plain, 1.0, 0.0), *g = randn(feats, 1.0, 0.0), *out = zeros(feats),
          *din = zeros(d.plain), *f = zeros(feats), *x = to_native(in, d),
          *dx = randn(d.native, 1.0, 0.0);
    ref_global_avgpool_forward(out, in, n, c, h * w);
    ref_global_avgpool_backward(din, g, n, c, h * w);
    amlfs_global_avgpool_forward(ctx, f, x, n, c, h, w, AMLFS_LAYOUT_NATIVE);
    amlfs_global_avgpool_backward(ctx, dx, g, n, c, h, w, AMLFS_LAYOUT_NATIVE);
    snprintf(name, sizeof name, "gap %dx%dx%dx%d out", n, c, h, w);
    compare_bits(name, f, out, feats);
    snprintf(name, sizeof name, "gap %dx%dx%dx%d", n, c, h, w);
    compare_native(name, "din", dx, din, d, 0);
    free(g), free(out), free(din), free(f), free(dx);

    amlfs_shortcut_shape s = {n, c, h, w, k, stride, AMLFS_LAYOUT_NATIVE};
    dims4 o = dims(n, k, amlfs_shortcut_out_h(&s), amlfs_shortcut_out_w(&s));
    float *dout = randn(o.plain, 1.0, 0.0), *r_out = zeros(o.plain), *r_din = zeros(d.plain),
          *y = randn(o.native, 1.0, 0.0), *dy = to_native(dout, o), *sdx = randn(d.native, 1.0, 0.0);
    ref_shortcut_forward(r_out, in, &s);
    ref_shortcut_backward(r_din, dout, &s);
    amlfs_shortcut_forward(ctx, y, x, &s);
    amlfs_shortcut_backward(ctx, sdx, dy, &s);
    snprintf(name, sizeof name, "shortcut %dx%dx%dx%d -> %d s%d", n, c, h, w, k, stride);
    compare_native(name, "out", y, r_out, o, 0);
    compare_native(name, "din", sdx, r_din, d, 0);
    free(dout), free(r_out), free(r_din), free(y), free(dy), free(sdx), free(in), free(x);
}

/* PReLU on native activations: out, din and dslope to the bit (the same order of sums),
 * then the backward in place (din = dout). */
static void test_prelu(int n, int c, int h, int w)
{
    char name[96];
    snprintf(name, sizeof name, "prelu %dx%dx%dx%d", n, c, h, w);
    dims4 d = dims(n, c, h, w);
    amlfs_prelu_shape ps = {n, c, h, w, AMLFS_LAYOUT_PLAIN}, ns = ps;
    ns.layout = AMLFS_LAYOUT_NATIVE;
    float *in = randn(d.plain, 1.0, 0.0), *slope = randn((size_t)c, 0.2, 0.25),
          *dout = randn(d.plain, 1.0, 0.0), *out = zeros(d.plain), *din = zeros(d.plain),
          *ds = zeros((size_t)c), *f_ds = zeros((size_t)c), *g_ds = zeros((size_t)c);
    ref_prelu_forward(out, in, slope, &ps);
    ref_prelu_backward(din, ds, dout, in, slope, &ps);
    float *x = to_native(in, d), *dy = to_native(dout, d), *y = randn(d.native, 1.0, 0.0),
          *dx = randn(d.native, 1.0, 0.0);
    amlfs_prelu_forward(ctx, y, x, slope, &ns);
    amlfs_prelu_backward(ctx, dx, f_ds, dy, x, slope, &ns);
    compare_native(name, "out", y, out, d, 0);
    compare_native(name, "din", dx, din, d, 0);
    char what[128];
    snprintf(what, sizeof what, "%s dslope", name);
    compare_bits(what, f_ds, ds, (size_t)c);
    amlfs_prelu_backward(ctx, dy, g_ds, dy, x, slope, &ns);
    compare_native(name, "din in place", dy, din, d, 0);
    snprintf(what, sizeof what, "%s dslope in place", name);
    compare_bits(what, g_ds, ds, (size_t)c);
    free(in), free(slope), free(dout), free(out), free(din), free(ds), free(f_ds), free(g_ds);
    free(x), free(dy), free(y), free(dx);
}

static int run_all(void)
{
    char err[256] = "";
    ctx = amlfs_context_create((amlfs_device){AMLFS_DEVICE_CPU, 0, 0}, 0, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "test_layers_native: cannot create the CPU context: %s\n", err);
        return 1;
    }
    printf("context: %s; native block %d\n", amlfs_context_describe(ctx), amlfs_cpu_block());
    const amlfs_layout P = AMLFS_LAYOUT_PLAIN, N = AMLFS_LAYOUT_NATIVE;
    printf("the layout:\n");
    test_layout(2, 16, 3, 5);
    test_layout(3, 20, 4, 4);
    test_layout(2, 3, 7, 6);
    printf("layers on native activations, against the reference:\n");
    test_conv("conv 8x16x16x16 k32 3x3 s1 p1", (amlfs_conv_shape){8, 16, 16, 16, 32, 3, 3, 1, 1, 0, N, N});
    test_conv("conv 8x16x16x16 k32 3x3 s2 p1", (amlfs_conv_shape){8, 16, 16, 16, 32, 3, 3, 2, 1, 0, N, N});
    test_conv("conv 4x20x9x9 k24 3x3 s1 p1 bias", (amlfs_conv_shape){4, 20, 9, 9, 24, 3, 3, 1, 1, 1, N, N});
    test_conv("conv 4x12x8x8 k5 1x1 s2 p0", (amlfs_conv_shape){4, 12, 8, 8, 5, 1, 1, 2, 0, 0, N, N});
    test_conv("conv first 8x3x16x16 k16 (plain in)", (amlfs_conv_shape){8, 3, 16, 16, 16, 3, 3, 1, 1, 0, P, N});
    test_conv("conv first 8x1x14x14 k20 (plain in)", (amlfs_conv_shape){8, 1, 14, 14, 20, 3, 3, 1, 1, 1, P, N});
    test_bn("bn 8x32x8x8", (amlfs_bn_shape){8, 32, 8, 8, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, N});
    test_bn("bn 6x20x5x5", (amlfs_bn_shape){6, 20, 5, 5, AMLFS_BN_EPS, AMLFS_BN_MOMENTUM, N});
    test_pool("maxpool 4x16x14x14 2x2 s2", (amlfs_pool_shape){4, 16, 14, 14, 2, 2, 0, AMLFS_POOL_MAX, 1, N});
    test_pool("maxpool 4x20x9x9 3x3 s2 p1", (amlfs_pool_shape){4, 20, 9, 9, 3, 2, 1, AMLFS_POOL_MAX, 1, N});
    test_pool("avgpool 4x20x9x9 3x3 s2 p1", (amlfs_pool_shape){4, 20, 9, 9, 3, 2, 1, AMLFS_POOL_AVG, 1, N});
    test_pool("avgpool excl 4x20x9x9 3x3 s2 p1", (amlfs_pool_shape){4, 20, 9, 9, 3, 2, 1, AMLFS_POOL_AVG, 0, N});
    test_gap_shortcut(8, 16, 8, 8, 32, 2);
    test_gap_shortcut(4, 20, 7, 7, 24, 2);
    test_gap_shortcut(3, 12, 5, 5, 12, 1);
    test_prelu(4, 32, 7, 6);
    test_prelu(3, 20, 5, 9);
    amlfs_context_destroy(ctx);
    return check_done("test_layers_native");
}

/* Runs the test in a child with `isa` as oneDNN's ISA cap (NULL: oneDNN's own), so the
 * cap is read before oneDNN starts; returns the child's status. */
static int run_child(const char *isa)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("test_layers_native: fork");
        return 1;
    }
    if (pid == 0) {
        if (isa) {
            setenv("ONEDNN_MAX_CPU_ISA", isa, 1);
            setenv("DNNL_MAX_CPU_ISA", isa, 1);
        }
        int rc = run_all();
        fflush(stdout);
        _exit(rc);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(void)
{
    printf("== oneDNN's own ISA\n");
    int a = run_child(NULL);
    printf("== ONEDNN_MAX_CPU_ISA=AVX2\n");
    int b = run_child("AVX2");
    printf("test_layers_native: %s\n", a || b ? "FAILED" : "both ISAs passed");
    return a || b ? 1 : 0;
}
