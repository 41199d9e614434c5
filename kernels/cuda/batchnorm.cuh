/* batchnorm.cuh: per-channel sums over (N,H,W) and batch norm on the GPU, for
 * kernels/cuda/layers.cu, with the semantics of ref_batchnorm_* (kernels/cpu/layers_ref.c):
 * batch mean and biased variance (two passes, sums in double), the running variance
 * updated with the unbiased one, the backward through the batch statistics.
 *
 * Channel sums are deterministic by construction: channel c's M = N H W elements are cut
 * into `parts` fixed chunks (a function of the shape only); block (part, c) sums its
 * chunk in double, each thread a fixed strided subset, then a fixed shared-memory tree;
 * a second kernel, one thread per channel, adds the parts in order. No atomics, so the
 * same bits on every run; the order differs from the reference's serial sum, by
 * rounding in double only. The per-channel and per-element formulas repeat the
 * reference's operations one by one with the _rn intrinsics (no fused multiply-adds).
 * Convolution's bias gradient uses the same sums.
 */
#ifndef AMLFS_CUDA_BATCHNORM_CUH
#define AMLFS_CUDA_BATCHNORM_CUH

#include "cuda/elementwise.cuh"

#define CS_BLOCK 256

/* Terms summed per channel: a and b, two sums in one pass. */
struct term_sum { /* a = sum x */
    const float *x;
    __device__ void operator()(size_t i, int, double &a, double &) const { a += (double)x[i]; }
};

struct term_square_deviation { /* a = sum (x - mean)^2 */
    const float *x;
    const double *mean;
    __device__ void operator()(size_t i, int c, double &a, double &) const
    {
        double d = __dsub_rn((double)x[i], mean[c]);
        a += d * d;
    }
};

struct term_bn_backward { /* a = sum dy, b = sum dy (x - mu) invstd */
    const float *dy, *x;
    const double *mu, *invstd;
    __device__ void operator()(size_t i, int c, double &a, double &b) const
    {
        double g = (double)dy[i];
        a += g;
        b += __dmul_rn(__dmul_rn(g, __dsub_rn((double)x[i], mu[c])), invstd[c]);
    }
};

/* partials[c parts + p] = the sums of part p of channel c. grid (parts, channels),
 * block CS_BLOCK. Element j of a channel (0 <= j < m) is (n, i) = (j / hw, j % hw), at
 * (n C + c) hw + i. */
template <class Term>
__global__ void channel_partials_kernel(double2 *partials, Term term, int channels, int hw,
                                        long long m, long long chunk, int parts)
{
    const int p = blockIdx.x, c = blockIdx.y, t = threadIdx.x;
    long long begin = (long long)p * chunk, end = begin + chunk < m ? begin + chunk : m;
    double a = 0.0, b = 0.0;
    for (long long j = begin + t; j < end; j += CS_BLOCK) {
        long long n = j / hw;
        term(((size_t)n * channels + c) * hw + (size_t)(j - n * hw), c, a, b);
    }
    __shared__ double sa[CS_BLOCK], sb[CS_BLOCK];
    sa[t] = a;
    sb[t] = b;
    __syncthreads();
    for (int s = CS_BLOCK / 2; s > 0; s >>= 1) {
        if (t < s) {
            sa[t] += sa[t + s];
            sb[t] += sb[t + s];
        }
        __syncthreads();
    }
    if (t == 0)
        partials[(size_t)c * parts + p] = make_double2(sa[0], sb[0]);
}

__device__ __forceinline__ double2 channel_total(const double2 *partials, int c, int parts)
{
    double a = 0.0, b = 0.0;
    for (int p = 0; p < parts; p++) {
        a = __dadd_rn(a, partials[(size_t)c * parts + p].x);
        b = __dadd_rn(b, partials[(size_t)c * parts + p].y);
    }
    return make_double2(a, b);
}

/* The kernels below run one thread per channel. */

__global__ void bn_mean_kernel(double *mean, const double2 *partials, int channels, int parts,
                               double m)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < channels)
        mean[c] = __ddiv_rn(channel_total(partials, c, parts).x, m);
}

/* The variance from the second pass; saves mean and biased variance, updates the
 * running statistics, keeps invstd for the normalisation. */
__global__ void bn_variance_kernel(double *invstd, float *save_mean, float *save_var,
                                   float *running_mean, float *running_var, const double *mean,
                                   const double2 *partials, int channels, int parts, double m,
                                   double eps, double momentum)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= channels)
        return;
    double mu = mean[c];
    double var = __ddiv_rn(channel_total(partials, c, parts).x, m);
    invstd[c] = __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(var, eps)));
    save_mean[c] = (float)mu;
    save_var[c] = (float)var;
    /* one element per channel: the unbiased variance is undefined, keep it finite */
    double unbiased = m > 1.0 ? __ddiv_rn(__dmul_rn(var, m), __dsub_rn(m, 1.0)) : var;
    double keep = __dsub_rn(1.0, momentum);
    running_mean[c] = (float)__dadd_rn(__dmul_rn(keep, (double)running_mean[c]),
                                       __dmul_rn(momentum, mu));
    running_var[c] = (float)__dadd_rn(__dmul_rn(keep, (double)running_var[c]),
                                      __dmul_rn(momentum, unbiased));
}

/* mean and invstd in double from float statistics (the saved batch ones for the
 * training backward, the running ones for inference), as the reference computes them. */
__global__ void bn_stats_kernel(double *mu, double *invstd, const float *mean, const float *var,
                                int channels, double eps)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= channels)
        return;
    mu[c] = (double)mean[c];
    invstd[c] = __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn((double)var[c], eps)));
}

/* The backward's sums, kept for din; dgamma += sum dy xhat, dbeta += sum dy (either
 * may be NULL). */
__global__ void bn_backward_sums_kernel(double2 *sums, float *dgamma, float *dbeta,
                                        const double2 *partials, int channels, int parts)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= channels)
        return;
    double2 s = channel_total(partials, c, parts);
    sums[c] = s;
    if (dgamma)
        dgamma[c] = __fadd_rn(dgamma[c], (float)s.y);
    if (dbeta)
        dbeta[c] = __fadd_rn(dbeta[c], (float)s.x);
}

/* Convolution's bias gradient: dbias += the channel sums. */
__global__ void channel_sums_accumulate_kernel(float *dst, const double2 *partials, int channels,
                                               int parts)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < channels)
        dst[c] = __fadd_rn(dst[c], (float)channel_total(partials, c, parts).x);
}

/* y = (x - mean) invstd gamma + beta, in double, rounded once. n = N C HW elements. */
__global__ void bn_normalize_kernel(float *out, const float *in, const double *mean,
                                    const double *invstd, const float *gamma, const float *beta,
                                    int channels, int hw, size_t n)
{
    GRID_STRIDE(i, n)
    {
        int c = (int)((i / hw) % channels);
        double y = __dmul_rn(__dmul_rn(__dsub_rn((double)in[i], mean[c]), invstd[c]),
                             (double)gamma[c]);
        out[i] = (float)__dadd_rn(y, (double)beta[c]);
    }
}

/* din = gamma invstd (dy - sum_dy / M - xhat sum_dy_xhat / M) through the batch
 * statistics, or gamma invstd dy with constant ones (inference). din may be dout: each
 * thread reads its element before writing it. */
__global__ void bn_backward_data_kernel(float *din, const float *dout, const float *in,
                                        const float *gamma, const double *mu,
                                        const double *invstd, const double2 *sums,
                                        int through_stats, int channels, int hw, double m,
                                        size_t n)
{
    GRID_STRIDE(i, n)
    {
        int c = (int)((i / hw) % channels);
        double inv = invstd[c];
        double scale = __dmul_rn((double)gamma[c], inv);
        double g = (double)dout[i];
        if (through_stats) {
            double xhat = __dmul_rn(__dsub_rn((double)in[i], mu[c]), inv);
            double2 s = sums[c];
            g = __dsub_rn(g, __dadd_rn(__ddiv_rn(s.x, m), __ddiv_rn(__dmul_rn(xhat, s.y), m)));
        }
        din[i] = (float)__dmul_rn(scale, g);
    }
}

#endif
