/* loss_kernel.cuh: the device code of the searchable loss (kernels/cuda/loss.cu launches
 * it): the transforms, the block reductions and the kernel, one thread block per sample.
 * The per-sample arithmetic is kernels/loss_math.h's, shared with kernels/cpu/loss.c;
 * its header comment is the derivation. Only device built-ins are used here, so the
 * kernel can also be compiled for a host-side emulation of a thread block when no GPU is at hand. */
#ifndef AMLFS_CUDA_LOSS_KERNEL_CUH
#define AMLFS_CUDA_LOSS_KERNEL_CUH

#include "cuda/amlfs_cuda.h"
#include "cuda/softmax_exp.cuh"

#include <math.h>
#include <stdint.h>

#define LOSS_BLOCK 256 /* threads per sample: 8 warps */
#define WARP 32

/* theta and the space, passed by value (AMLFS_CUDA_MAX_INTERVALS * 32 bytes). */
struct loss_params {
    int space, m;
    double scale;
    double theta[4 * AMLFS_CUDA_MAX_INTERVALS];
};

/* ---- block reductions ---------------------------------------------------------------- */

/* The maximum over the block, NaN passed over (as the CPU's max: NaN then reaches the
 * loss through its term). scratch: WARP floats of shared memory. */
static __device__ float block_max(float v, float *scratch)
{
    for (int off = WARP / 2; off > 0; off /= 2) {
        float o = __shfl_xor_sync(0xffffffffu, v, off);
        v = o > v ? o : v;
    }
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x / WARP) ? scratch[lane] : -INFINITY;
    for (int off = WARP / 2; off > 0; off /= 2) {
        float o = __shfl_xor_sync(0xffffffffu, v, off);
        v = o > v ? o : v;
    }
    __syncthreads(); /* scratch is reused */
    return v;
}

/* The float64 sum over the block, in a fixed tree order. scratch: WARP doubles. */
static __device__ double block_sum(double v, double *scratch)
{
    for (int off = WARP / 2; off > 0; off /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x / WARP) ? scratch[lane] : 0.0;
    for (int off = WARP / 2; off > 0; off /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    __syncthreads();
    return v;
}

/* ---- the kernel ------------------------------------------------------------------------ */

/* Block i: sample i. in (N,C), y (N), loss (N); grad (N,C), weight (N), clamped (1) or
 * NULL. */
static __global__ void __launch_bounds__(LOSS_BLOCK)
    searchable_loss_kernel(loss_params P, const float *in, const int32_t *y, int c,
                           double inv_n, double *loss, float *grad, double *weight,
                           int *clamped)
{
    __shared__ float max_scratch[WARP];
    __shared__ double sum_scratch[WARP];
    __shared__ float grad_scale, grad_target;

    int i = blockIdx.x;
    const float *row = in + (size_t)i * c;
    float *g = grad ? grad + (size_t)i * c : NULL;
    int yi = y[i];
    int m = P.m;
    const double *a_t = P.theta, *b_t = a_t + m, *a_tau = a_t + 2 * m, *b_tau = a_t + 3 * m;
    int cosine = P.space == AMLFS_SPACE_COSINE;
    double s = P.scale;

    if (yi < 0 || yi >= c) { /* no such class: NaN, as on the CPU */
        if (threadIdx.x == 0) {
            loss[i] = NAN;
            if (weight)
                weight[i] = NAN;
        }
        if (g)
            for (int j = threadIdx.x; j < c; j += blockDim.x)
                g[j] = NAN;
        return;
    }

    /* 1. the shift of the softmax: max over the row (prob), or over the other cosines
     * and t(cos_y) (cosine) */
    double slope_t = 0.0, t_y = 0.0;
    if (cosine) {
        double xc;
        int inside;
        int k = amlfs_pwl_piece(m, -1.0, 1.0, (double)row[yi], &xc, &inside);
        t_y = a_t[k] * xc + b_t[k];
        slope_t = inside ? a_t[k] : 0.0;
    }
    float v = -INFINITY;
    for (int j = threadIdx.x; j < c; j += blockDim.x)
        if (!cosine || j != yi)
            v = row[j] > v ? row[j] : v;
    float row_max = block_max(v, max_scratch);
    double cmax = t_y > (double)row_max ? t_y : (double)row_max;

    /* 2. the other classes' terms */
    double acc = 0.0;
    for (int j = threadIdx.x; j < c; j += blockDim.x) {
        if (j == yi)
            continue;
        float term;
        if (cosine) {
            double arg = s * ((double)row[j] - cmax);
            float hi = (float)arg;
            term = amlfs_softmax_exp(hi, (float)(arg - (double)hi));
        } else {
            float lo, hi = diff_split(row[j], row_max, &lo);
            term = amlfs_softmax_exp(hi, lo);
        }
        if (g)
            g[j] = term;
        acc += (double)term;
    }
    double tail = block_sum(acc, sum_scratch);

    /* 3. the per-sample part, float64 */
    if (threadIdx.x == 0) {
        double z_y = cosine ? s * (t_y - cmax) : (double)row[yi] - (double)row_max;
        amlfs_target_prob tp = amlfs_target_probability(z_y, tail);
        double pc, lossv, w;
        int inside, is_clamped;
        if (cosine) {
            int ku = amlfs_pwl_piece(m, 0.0, 1.0, tp.p, &pc, &inside);
            double q = a_tau[ku] * pc + b_tau[ku];
            is_clamped = q < AMLFS_LOSS_EPS;
            if (is_clamped) {
                lossv = -log(AMLFS_LOSS_EPS);
                w = 0.0;
            } else {
                amlfs_loss_from_piece(tp.log_p, tp.p, q, a_tau[ku], b_tau[ku], &lossv, &w);
            }
        } else {
            is_clamped = amlfs_prob_compose(m, a_t, b_t, a_tau, b_tau, tp, &lossv, &w);
        }
        loss[i] = lossv;
        if (weight)
            weight[i] = w;
        if (clamped && is_clamped)
            atomicAdd(clamped, 1); /* an integer count: any order gives the same */
        double to_input = cosine ? s : 1.0; /* dL/df' to the cosines: times s */
        grad_scale = (float)(to_input * w * inv_n / tp.sum);
        grad_target = (float)(-to_input * (cosine ? slope_t : 1.0) * w * inv_n *
                              tp.one_minus_p);
    }
    __syncthreads();

    /* 4. the gradient: each thread rescales the terms it wrote in step 2 */
    if (g) {
        float scale = grad_scale;
        for (int j = threadIdx.x; j < c; j += blockDim.x)
            g[j] = j == yi ? grad_target : scale * g[j];
    }
}

#endif
