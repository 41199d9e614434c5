/* bench/layers.c: the CPU fast path (oneDNN, plain NCHW layouts) against the plain C
 * reference, per layer of small-cnn at batch 100 on 28x28 images, and the first stage
 * convolution of resnet20 at batch 128 on 32x32.
 *
 * Each case times a forward and a backward (input and parameter gradients) separately:
 * the fast path as the median of FAST_REPEATS calls after a warm-up, the reference as the
 * median of REF_REPEATS (it is slow). Prints a table and the machine; writes
 * bench/results/layers.json (run from the repository root, as `make bench` does).
 * Exit 0 unless it cannot run or write its result.
 */
#include "bench.h"
#include "tool.h"
#include "amlfs_rng.h"
#include "amlfs_layers.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FAST_REPEATS 11
#define REF_REPEATS 3
#define RESULT_PATH "bench/results/layers.json"

/* Bench data from the project's own Philox streams (the test stream). */
static amlfs_rng_cursor bench_rng = {{0xbe7c1a7eu, 0, 0, AMLFS_STREAM_TEST}, 0};

static float *randn(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench/layers: error: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)amlfs_next_normal(&bench_rng);
    return p;
}

/* One layer's tensors and plan; run() does forward (pass 0) or backward (pass 1) on the
 * fast path (fast = 1) or the reference. */
typedef enum { K_CONV, K_BN, K_POOL, K_LINEAR } kind;

typedef struct {
    const char *name;
    kind k;
    amlfs_conv_shape conv;
    amlfs_bn_shape bn;
    amlfs_pool_shape pool;
    amlfs_linear_shape linear;
    void *plan;
    float *in, *w, *bias, *out, *dout, *din, *dw, *dbias, *mean, *var, *rm, *rv;
    void *workspace;
} layer_case;

static void run(layer_case *c, int fast, int pass)
{
    switch (c->k) {
    case K_CONV:
        if (fast && !pass) amlfs_conv_forward(c->plan, c->out, c->in, c->w, c->bias);
        if (fast && pass) amlfs_conv_backward(c->plan, c->din, c->dw, c->bias ? c->dbias : NULL, c->dout, c->in, c->w);
        if (!fast && !pass) ref_conv2d_forward(c->out, c->in, c->w, c->bias, &c->conv);
        if (!fast && pass) ref_conv2d_backward(c->din, c->dw, c->bias ? c->dbias : NULL, c->dout, c->in, c->w, &c->conv);
        break;
    case K_BN:
        if (fast && !pass)
            amlfs_bn_forward_train(c->plan, c->out, c->mean, c->var, c->rm, c->rv, c->in, c->w, c->bias);
        if (fast && pass)
            amlfs_bn_backward_train(c->plan, c->din, c->dw, c->dbias, c->dout, c->in, c->w, c->mean, c->var);
        if (!fast && !pass)
            ref_batchnorm_forward_train(c->out, c->mean, c->var, c->rm, c->rv, c->in, c->w, c->bias, &c->bn);
        if (!fast && pass)
            ref_batchnorm_backward_train(c->din, c->dw, c->dbias, c->dout, c->in, c->w, c->mean, c->var, &c->bn);
        break;
    case K_POOL:
        if (fast && !pass) amlfs_pool_forward(c->plan, c->out, c->in, c->workspace);
        if (fast && pass) amlfs_pool_backward(c->plan, c->din, c->dout, c->in, c->out, c->workspace);
        if (!fast && !pass) ref_pool_forward(c->out, c->in, &c->pool);
        if (!fast && pass) ref_pool_backward(c->din, c->dout, c->in, &c->pool);
        break;
    case K_LINEAR:
        if (fast && !pass) amlfs_linear_forward(c->plan, c->out, c->in, c->w, c->bias);
        if (fast && pass) amlfs_linear_backward(c->plan, c->din, c->dw, c->dbias, c->dout, c->in, c->w);
        if (!fast && !pass) ref_linear_forward(c->out, c->in, c->w, c->bias, &c->linear);
        if (!fast && pass) ref_linear_backward(c->din, c->dw, c->dbias, c->dout, c->in, c->w, &c->linear);
        break;
    }
}

static double median_seconds(layer_case *c, int fast, int pass, int repeats)
{
    double t[FAST_REPEATS];
    run(c, fast, pass); /* warm-up: page faults, oneDNN's JIT */
    for (int r = 0; r < repeats; r++) {
        double t0 = amlfs_seconds();
        run(c, fast, pass);
        t[r] = amlfs_seconds() - t0;
    }
    qsort(t, repeats, sizeof t[0], compare_doubles);
    return t[repeats / 2];
}

/* Allocates the tensors and the plan for c's shape. */
static void prepare(amlfs_context *ctx, layer_case *c)
{
    size_t n_in = 0, n_out = 0, n_w = 0, n_b = 0;
    char err[256] = "";
    switch (c->k) {
    case K_CONV: {
        const amlfs_conv_shape *s = &c->conv;
        n_in = (size_t)s->n * s->c * s->h * s->w;
        n_out = (size_t)s->n * s->k * amlfs_conv_out_h(s) * amlfs_conv_out_w(s);
        n_w = (size_t)s->k * s->c * s->r * s->s, n_b = s->k;
        c->plan = amlfs_conv_plan_create(ctx, s, err, sizeof err);
        break;
    }
    case K_BN: {
        const amlfs_bn_shape *s = &c->bn;
        n_in = n_out = (size_t)s->n * s->c * s->h * s->w;
        n_w = n_b = s->c;
        c->plan = amlfs_bn_plan_create(ctx, s, err, sizeof err);
        break;
    }
    case K_POOL: {
        const amlfs_pool_shape *s = &c->pool;
        n_in = (size_t)s->n * s->c * s->h * s->w;
        n_out = (size_t)s->n * s->c * amlfs_pool_out_h(s) * amlfs_pool_out_w(s);
        c->plan = amlfs_pool_plan_create(ctx, s, err, sizeof err);
        break;
    }
    case K_LINEAR: {
        const amlfs_linear_shape *s = &c->linear;
        n_in = (size_t)s->n * s->in, n_out = (size_t)s->n * s->out;
        n_w = (size_t)s->in * s->out, n_b = s->out;
        c->plan = amlfs_linear_plan_create(ctx, s, err, sizeof err);
        break;
    }
    }
    if (!c->plan) {
        fprintf(stderr, "bench/layers: error: %s: %s\n", c->name, err);
        exit(1);
    }
    c->in = randn(n_in), c->out = randn(n_out), c->dout = randn(n_out), c->din = randn(n_in);
    c->w = randn(n_w), c->dw = randn(n_w);
    if (n_b) c->bias = randn(n_b), c->dbias = randn(n_b);
    if (c->k == K_CONV && !c->conv.has_bias) c->bias = NULL;
    if (c->k == K_BN) {
        c->mean = randn(n_b), c->var = randn(n_b), c->rm = randn(n_b), c->rv = randn(n_b);
        for (size_t i = 0; i < n_b; i++) c->rv[i] = 1.0f;
    }
    if (c->k == K_POOL) {
        size_t bytes = amlfs_pool_workspace_bytes(c->plan);
        c->workspace = bytes ? amlfs_alloc(ctx, bytes) : NULL;
    }
}

static void release(amlfs_context *ctx, layer_case *c)
{
    switch (c->k) {
    case K_CONV: amlfs_conv_plan_destroy(c->plan); break;
    case K_BN: amlfs_bn_plan_destroy(c->plan); break;
    case K_POOL: amlfs_pool_plan_destroy(c->plan); break;
    case K_LINEAR: amlfs_linear_plan_destroy(c->plan); break;
    }
    amlfs_free(ctx, c->workspace);
    free(c->in), free(c->w), free(c->bias), free(c->out), free(c->dout), free(c->din);
    free(c->dw), free(c->dbias), free(c->mean), free(c->var), free(c->rm), free(c->rv);
}

int main(void)
{
    char err[256] = "";
    amlfs_context *ctx = amlfs_context_create((amlfs_device){AMLFS_DEVICE_CPU, 0, 0}, 0, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "bench/layers: error: %s\n", err);
        return 1;
    }
    const double eps = AMLFS_BN_EPS, mom = AMLFS_BN_MOMENTUM;
    layer_case cases[] = {
        {.name = "small-cnn conv1 100x1x28x28 -> 16, 3x3 p1", .k = K_CONV,
         .conv = {100, 1, 28, 28, 16, 3, 3, 1, 1, 1}},
        {.name = "small-cnn bn1 100x16x28x28", .k = K_BN, .bn = {100, 16, 28, 28, eps, mom}},
        {.name = "small-cnn maxpool1 100x16x28x28 2x2 s2", .k = K_POOL,
         .pool = {100, 16, 28, 28, 2, 2, 0, AMLFS_POOL_MAX, 1}},
        {.name = "small-cnn conv2 100x16x14x14 -> 32, 3x3 p1", .k = K_CONV,
         .conv = {100, 16, 14, 14, 32, 3, 3, 1, 1, 1}},
        {.name = "small-cnn bn2 100x32x14x14", .k = K_BN, .bn = {100, 32, 14, 14, eps, mom}},
        {.name = "small-cnn maxpool2 100x32x14x14 2x2 s2", .k = K_POOL,
         .pool = {100, 32, 14, 14, 2, 2, 0, AMLFS_POOL_MAX, 1}},
        {.name = "small-cnn fc1 100x1568 -> 64", .k = K_LINEAR, .linear = {100, 1568, 64, 1}},
        {.name = "small-cnn fc2 100x64 -> 10", .k = K_LINEAR, .linear = {100, 64, 10, 1}},
        {.name = "resnet20 stage-1 conv 128x16x32x32 -> 16, 3x3 p1", .k = K_CONV,
         .conv = {128, 16, 32, 32, 16, 3, 3, 1, 1, 0}},
    };
    enum { NCASES = sizeof cases / sizeof cases[0] };
    double t[NCASES][4]; /* fast fwd, fast bwd, ref fwd, ref bwd */

    printf("layers: oneDNN fast path vs the reference, %s\n", amlfs_context_describe(ctx));
    printf("medians of %d (fast) and %d (reference) calls, milliseconds\n\n", FAST_REPEATS,
           REF_REPEATS);
    printf("%-50s %9s %9s %9s %9s %8s %8s\n", "layer", "fast fwd", "fast bwd", "ref fwd",
           "ref bwd", "fwd x", "bwd x");
    for (int i = 0; i < NCASES; i++) {
        prepare(ctx, &cases[i]);
        t[i][0] = median_seconds(&cases[i], 1, 0, FAST_REPEATS);
        t[i][1] = median_seconds(&cases[i], 1, 1, FAST_REPEATS);
        t[i][2] = median_seconds(&cases[i], 0, 0, REF_REPEATS);
        t[i][3] = median_seconds(&cases[i], 0, 1, REF_REPEATS);
        printf("%-50s %9.3f %9.3f %9.2f %9.2f %8.1f %8.1f\n", cases[i].name, 1e3 * t[i][0],
               1e3 * t[i][1], 1e3 * t[i][2], 1e3 * t[i][3], t[i][2] / t[i][0], t[i][3] / t[i][1]);
        release(ctx, &cases[i]);
        fflush(stdout);
    }

    if (mkdir("bench/results", 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench/layers: error: bench/results: %s\n", strerror(errno));
        return 1;
    }
    FILE *f = fopen(RESULT_PATH, "w");
    if (!f) {
        fprintf(stderr, "bench/layers: error: %s: %s\n", RESULT_PATH, strerror(errno));
        return 1;
    }
    fprintf(f, "{\n  \"bench\": \"layers\",\n  \"context\": \"%s\",\n  \"threads\": %d,\n",
            amlfs_context_describe(ctx), omp_get_max_threads());
    fprintf(f, "  \"fast_repeats\": %d,\n  \"ref_repeats\": %d,\n  \"rows\": [\n", FAST_REPEATS,
            REF_REPEATS);
    for (int i = 0; i < NCASES; i++)
        fprintf(f, "    {\"layer\": \"%s\", \"fast_forward_ms\": %.4f, \"fast_backward_ms\": %.4f, "
                   "\"ref_forward_ms\": %.3f, \"ref_backward_ms\": %.3f}%s\n",
                cases[i].name, 1e3 * t[i][0], 1e3 * t[i][1], 1e3 * t[i][2], 1e3 * t[i][3],
                i + 1 < NCASES ? "," : "");
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "bench/layers: error: %s: %s\n", RESULT_PATH, strerror(errno));
        return 1;
    }
    printf("\nwrote %s\n", RESULT_PATH);
    amlfs_context_destroy(ctx);
    return 0;
}
