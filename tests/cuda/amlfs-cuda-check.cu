/* amlfs-cuda-check: the CUDA kernels against their CPU references, on a machine with a
 * GPU. Prints one table row per case and exits 0 when every case agrees, 1 on any
 * mismatch, 2 when there is no GPU to check on (nothing was checked).
 *
 *   loss     amlfs_cuda_searchable_loss against amlfs_searchable_loss (kernels/cpu/loss.c):
 *            both spaces, C = 10 to 100,000, theta the identity, identity + N(0, 0.2^2)
 *            and one that clamps; per-sample loss, gradient, weight, clamp count, mean.
 *   streams  the Philox blocks of amlfs_rng.h drawn on the GPU (kernels/cuda/rng.cuh),
 *            bit for bit, and the normals to a few ulp (the GPU's log, sin and cos are
 *            within 1-2 ulp, glibc's within 1).
 *
 * Tolerances, |gpu - cpu| <= atol + rtol |cpu|: the two share their arithmetic, but the
 * GPU sums in a tree and fuses multiply-adds, so a float32 term may differ by an ulp and
 * p_y by ~1e-7 relative, which the transforms amplify as w (dL/dlog p = -w):
 *   loss    atol 2e-7 |w| + 1e-300, rtol 1e-6
 *   weight  atol 2e-7 |w| |1 - w| + 1e-12, rtol 0
 *   grad    atol 1e-6 max|row|, rtol 1e-5 (per sample row)
 *   mean    rtol 1e-6
 *   normals atol 1e-14, rtol 1e-14; blocks exact.
 */
#include "cuda/amlfs_cuda.h"
#include "amlfs_rng.h"
#include "cuda/rng.cuh"

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define M 6

static const char *prog = "amlfs-cuda-check";
static int failures;

/* Test data from the project's own Philox streams (the test stream, never the tools'). */
static amlfs_rng_cursor test_rng = {{0xc0da2019u, 0, 0, AMLFS_STREAM_TEST}, 0};
static double uniform01(void) { return amlfs_next_uniform(&test_rng); }
static double normal01(void) { return amlfs_next_normal(&test_rng); }

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Exits 1 with the CUDA error: a failed call is a failed check, not a missing GPU. */
static void cuda_ok(int rc, const char *what)
{
    if (rc == 0)
        return;
    if (rc < 0)
        fprintf(stderr, "%s: error: %s: bad arguments\n", prog, what);
    else
        fprintf(stderr, "%s: error: %s: %s\n", prog, what,
                cudaGetErrorString((cudaError_t)rc));
    exit(1);
}

static void *host_alloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        exit(1);
    }
    return p;
}

static void *device_alloc(size_t bytes)
{
    void *p = NULL;
    cuda_ok((int)cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc");
    return p;
}

enum { THETA_IDENTITY, THETA_RANDOM, THETA_CLAMP, NTHETA };
static const char *theta_names[NTHETA] = {"identity", "random", "clamp"};

static void make_theta(int which, amlfs_space space, double *theta)
{
    for (int k = 0; k < M; k++) {
        theta[k] = theta[2 * M + k] = 1.0;
        theta[M + k] = theta[3 * M + k] = 0.0;
    }
    if (which == THETA_IDENTITY)
        return;
    for (int k = 0; k < 4 * M; k++)
        theta[k] += 0.2 * normal01();
    if (which == THETA_CLAMP) {
        if (space == AMLFS_SPACE_PROB) {
            theta[M + 0] = -0.3;     /* t < eps for small p */
            theta[M + M - 1] = 0.25; /* t > 1 for large p */
        }
        theta[3 * M + 0] = -0.4; /* tau < eps in its first intervals */
        theta[3 * M + 1] = -0.35;
    }
}

/* One loss case: returns 1 when it agrees. */
static int check_loss(amlfs_space space, int n, int c, int which_theta)
{
    size_t nc = (size_t)n * c;
    float *x = (float *)host_alloc(nc * sizeof *x);
    float *grad = (float *)host_alloc(nc * sizeof *grad);
    float *grad_gpu = (float *)host_alloc(nc * sizeof *grad_gpu);
    int32_t *y = (int32_t *)host_alloc((size_t)n * sizeof *y);
    double *loss = (double *)host_alloc((size_t)n * sizeof *loss);
    double *loss_gpu = (double *)host_alloc((size_t)n * sizeof *loss_gpu);
    double *weight = (double *)host_alloc((size_t)n * sizeof *weight);
    double *weight_gpu = (double *)host_alloc((size_t)n * sizeof *weight_gpu);
    double s = 16.0;
    for (int i = 0; i < n; i++) {
        y[i] = (int32_t)(uniform01() * c);
        float *row = x + (size_t)i * c;
        for (int j = 0; j < c; j++)
            row[j] = space == AMLFS_SPACE_COSINE ? (float)(0.8 * uniform01() - 0.4)
                                                 : (float)(2.0 * normal01());
        /* targets from hard to confident: p_y over the whole of (0, 1) */
        if (space == AMLFS_SPACE_COSINE)
            row[y[i]] = (float)(1.9 * uniform01() - 0.9);
        else
            row[y[i]] += (float)(2.0 + 14.0 * uniform01() - 4.0 + log((double)c));
    }
    double theta[4 * M];
    make_theta(which_theta, space, theta);
    amlfs_loss_spec spec = {space, M, theta, space == AMLFS_SPACE_COSINE ? s : 0.0, AMLFS_EXACT_NONE, 0.0};

    int clamped = -1, clamped_gpu = -1;
    double mean = amlfs_searchable_loss(&spec, x, y, n, c, loss, grad, weight, &clamped);

    float *d_x = (float *)device_alloc(nc * sizeof *d_x);
    float *d_grad = (float *)device_alloc(nc * sizeof *d_grad);
    int32_t *d_y = (int32_t *)device_alloc((size_t)n * sizeof *d_y);
    double *d_loss = (double *)device_alloc((size_t)n * sizeof *d_loss);
    double *d_weight = (double *)device_alloc((size_t)n * sizeof *d_weight);
    int *d_clamped = (int *)device_alloc(sizeof *d_clamped);
    cuda_ok((int)cudaMemcpy(d_x, x, nc * sizeof *x, cudaMemcpyHostToDevice), "copy in");
    cuda_ok((int)cudaMemcpy(d_y, y, (size_t)n * sizeof *y, cudaMemcpyHostToDevice), "copy y");
    double mean_gpu = NAN;
    cuda_ok(amlfs_cuda_searchable_loss(&spec, d_x, d_y, n, c, d_loss, d_grad, d_weight,
                                       d_clamped, &mean_gpu),
            "amlfs_cuda_searchable_loss");
    cuda_ok((int)cudaMemcpy(grad_gpu, d_grad, nc * sizeof *grad_gpu, cudaMemcpyDeviceToHost),
            "copy grad");
    cuda_ok((int)cudaMemcpy(loss_gpu, d_loss, (size_t)n * sizeof *loss_gpu,
                            cudaMemcpyDeviceToHost),
            "copy loss");
    cuda_ok((int)cudaMemcpy(weight_gpu, d_weight, (size_t)n * sizeof *weight_gpu,
                            cudaMemcpyDeviceToHost),
            "copy weight");
    cuda_ok((int)cudaMemcpy(&clamped_gpu, d_clamped, sizeof clamped_gpu,
                            cudaMemcpyDeviceToHost),
            "copy clamped");

    double r_loss = 0.0, r_w = 0.0, r_grad = 0.0;
    for (int i = 0; i < n; i++) {
        double w = fabs(weight[i]);
        double tol_loss = 1e-300 + 2e-7 * w + 1e-6 * fabs(loss[i]);
        double tol_w = 1e-12 + 2e-7 * w * fabs(1.0 - weight[i]);
        r_loss = fmax(r_loss, fabs(loss_gpu[i] - loss[i]) / tol_loss);
        r_w = fmax(r_w, fabs(weight_gpu[i] - weight[i]) / tol_w);
        const float *g = grad + (size_t)i * c, *gg = grad_gpu + (size_t)i * c;
        double row_scale = 0.0;
        for (int j = 0; j < c; j++)
            row_scale = fmax(row_scale, fabs((double)g[j]));
        for (int j = 0; j < c; j++) {
            double tol = 1e-30 + 1e-6 * row_scale + 1e-5 * fabs((double)g[j]);
            double r = fabs((double)gg[j] - (double)g[j]) / tol;
            if (!(r <= r_grad)) /* NaN counts as a mismatch */
                r_grad = r;
        }
        if (isnan(loss_gpu[i]) || isnan(weight_gpu[i]))
            r_loss = r_w = INFINITY;
    }
    double r_mean = fabs(mean_gpu - mean) / (1e-6 * fabs(mean));
    int ok = r_loss <= 1.0 && r_w <= 1.0 && r_grad <= 1.0 && r_mean <= 1.0 &&
             clamped == clamped_gpu;
    printf("loss    %-6s %7d %6d %-8s %10.3g %10.3g %10.3g %10.3g %5d/%-5d %s\n",
           space == AMLFS_SPACE_COSINE ? "cosine" : "prob", c, n, theta_names[which_theta],
           r_loss, r_grad, r_w, r_mean, clamped, clamped_gpu, ok ? "ok" : "MISMATCH");

    cudaFree(d_x), cudaFree(d_grad), cudaFree(d_y), cudaFree(d_loss), cudaFree(d_weight);
    cudaFree(d_clamped);
    free(x), free(grad), free(grad_gpu), free(y), free(loss), free(loss_gpu), free(weight);
    free(weight_gpu);
    return ok;
}

/* One stream: count numbers from first; returns 1 when it agrees. */
static int check_stream(amlfs_rng_name r, uint64_t first, int count)
{
    uint32_t *blocks = (uint32_t *)host_alloc((size_t)count * 4 * sizeof *blocks);
    double *normals = (double *)host_alloc((size_t)count * sizeof *normals);
    uint32_t *d_blocks = (uint32_t *)device_alloc((size_t)count * 4 * sizeof *d_blocks);
    double *d_normals = (double *)device_alloc((size_t)count * sizeof *d_normals);
    uint32_t first_block = (uint32_t)(first >> 1);
    cuda_ok(amlfs_cuda_rng_blocks(r, first_block, count, d_blocks), "rng blocks");
    cuda_ok(amlfs_cuda_rng_normals(r, first, count, d_normals), "rng normals");
    cuda_ok((int)cudaMemcpy(blocks, d_blocks, (size_t)count * 4 * sizeof *blocks,
                            cudaMemcpyDeviceToHost),
            "copy blocks");
    cuda_ok((int)cudaMemcpy(normals, d_normals, (size_t)count * sizeof *normals,
                            cudaMemcpyDeviceToHost),
            "copy normals");
    long block_mismatch = 0;
    double worst = 0.0, worst_abs = 0.0;
    for (int i = 0; i < count; i++) {
        uint32_t ref[4];
        amlfs_rng_block(r, first_block + (uint32_t)i, ref);
        block_mismatch += memcmp(ref, blocks + 4 * (size_t)i, sizeof ref) != 0;
        double want = amlfs_rng_normal(r, first + (uint64_t)i);
        double diff = fabs(normals[i] - want);
        double ratio = diff / (1e-14 + 1e-14 * fabs(want));
        if (!(ratio <= worst))
            worst = ratio;
        worst_abs = fmax(worst_abs, diff);
    }
    int ok = block_mismatch == 0 && worst <= 1.0;
    printf("stream  seed %u epoch %u sample %u stream %u, %d from %llu: blocks %ld differ, "
           "normals max |diff| %.3g (ratio %.3g) %s\n",
           r.seed, r.epoch, r.sample, r.stream, count, (unsigned long long)first,
           block_mismatch, worst_abs, worst, ok ? "ok" : "MISMATCH");
    cudaFree(d_blocks), cudaFree(d_normals);
    free(blocks), free(normals);
    return ok;
}

/* Informative: one forward + gradient at N = 512, C = 10,000, GPU against CPU. */
static void time_loss(void)
{
    const int n = 512, c = 10000;
    size_t nc = (size_t)n * c;
    float *x = (float *)host_alloc(nc * sizeof *x), *grad = (float *)host_alloc(nc * 4);
    int32_t *y = (int32_t *)host_alloc((size_t)n * sizeof *y);
    double *loss = (double *)host_alloc((size_t)n * sizeof *loss);
    for (size_t k = 0; k < nc; k++)
        x[k] = (float)(2.0 * normal01());
    for (int i = 0; i < n; i++)
        y[i] = (int32_t)(uniform01() * c);
    double theta[4 * M];
    make_theta(THETA_RANDOM, AMLFS_SPACE_PROB, theta);
    amlfs_loss_spec spec = {AMLFS_SPACE_PROB, M, theta, 0.0, AMLFS_EXACT_NONE, 0.0};
    float *d_x = (float *)device_alloc(nc * 4), *d_grad = (float *)device_alloc(nc * 4);
    int32_t *d_y = (int32_t *)device_alloc((size_t)n * sizeof *d_y);
    double *d_loss = (double *)device_alloc((size_t)n * sizeof *d_loss);
    cuda_ok((int)cudaMemcpy(d_x, x, nc * 4, cudaMemcpyHostToDevice), "copy in");
    cuda_ok((int)cudaMemcpy(d_y, y, (size_t)n * sizeof *y, cudaMemcpyHostToDevice), "copy y");
    cudaEvent_t start, stop;
    cudaEventCreate(&start), cudaEventCreate(&stop);
    const int reps = 50;
    cuda_ok(amlfs_cuda_searchable_loss(&spec, d_x, d_y, n, c, d_loss, d_grad, NULL, NULL,
                                       NULL),
            "warm-up");
    cudaEventRecord(start);
    for (int r = 0; r < reps; r++)
        amlfs_cuda_searchable_loss(&spec, d_x, d_y, n, c, d_loss, d_grad, NULL, NULL, NULL);
    cudaEventRecord(stop);
    cuda_ok((int)cudaEventSynchronize(stop), "timing");
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    double t0 = now_seconds();
    for (int r = 0; r < 5; r++)
        amlfs_searchable_loss(&spec, x, y, n, c, loss, grad, NULL, NULL);
    double cpu_us = (now_seconds() - t0) / 5 * 1e6;
    printf("time    prob N=%d C=%d random theta: GPU %.1f us, CPU %.1f us per call\n", n, c,
           1e3 * ms / reps, cpu_us);
    cudaEventDestroy(start), cudaEventDestroy(stop);
    cudaFree(d_x), cudaFree(d_grad), cudaFree(d_y), cudaFree(d_loss);
    free(x), free(grad), free(y), free(loss);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: %s\nCompares the CUDA searchable loss and random streams with the "
               "CPU ones.\nExit 0 all agree, 1 a mismatch or CUDA error, 2 no GPU.\n",
               prog);
        return 0;
    }
    int devices = 0;
    cudaError_t err = cudaGetDeviceCount(&devices);
    if (err != cudaSuccess || devices == 0) {
        fprintf(stderr, "%s: error: no CUDA device (%s): nothing checked\n", prog,
                err != cudaSuccess ? cudaGetErrorString(err) : "none found");
        return 2;
    }
    cudaDeviceProp prop;
    cuda_ok((int)cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    printf("%s: device 0: %s (sm_%d%d), %d device(s)\n\n", prog, prop.name, prop.major,
           prop.minor, devices);

    printf("%-7s %-6s %7s %6s %-8s %10s %10s %10s %10s %11s %s\n", "check", "space", "C",
           "N", "theta", "loss", "grad", "weight", "mean", "clamp c/g", "");
    printf("%-7s %-6s %7s %6s %-8s %10s %10s %10s %10s\n", "", "", "", "", "",
           "worst/tol", "worst/tol", "worst/tol", "err/tol");
    static const struct {
        int n, c;
    } sizes[] = {{512, 10}, {512, 1000}, {128, 10000}, {4, 100000}};
    for (int sp = 0; sp < 2; sp++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
            for (int th = 0; th < NTHETA; th++)
                failures += !check_loss((amlfs_space)sp, sizes[k].n, sizes[k].c, th);
    printf("\n");

    static const uint32_t names[][4] = {
        {0, 1, 0, AMLFS_STREAM_THETA}, {12345, 7, 31, AMLFS_STREAM_THETA},
        {4294967295u, 200, 3, AMLFS_STREAM_DATA_ORDER}, {42, 1, 0, AMLFS_STREAM_INIT}};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        amlfs_rng_name r = amlfs_rng(names[k][0], names[k][1], names[k][2], names[k][3]);
        failures += !check_stream(r, 0, 1 << 16);
        failures += !check_stream(r, 4000000001ull, 4096); /* block index past 2^31 */
    }
    printf("\n");
    time_loss();

    printf("\n%s: %s (%d mismatching case%s)\n", prog, failures ? "FAILED" : "all agree",
           failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
