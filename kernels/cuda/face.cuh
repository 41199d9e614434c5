/* face.cuh: the CUDA kernels of the face models' layers, PReLU and the cosine head's row
 * arithmetic, for kernels/cuda/layers.cu. Semantics: kernels/cpu/layers_ref.c.
 *
 * PReLU's forward and input gradient are element-wise, one thread per element, equal to
 * the reference to the bit. The slope's gradient and the rows' norms and projections are
 * reductions: a block per channel or row, each thread summing a fixed stride in double,
 * then a tree in shared memory, so the result is the same on every run (not the
 * reference's order: within float32 rounding of it). CUDA's native layout is plain NCHW.
 */
#ifndef AMLFS_CUDA_FACE_CUH
#define AMLFS_CUDA_FACE_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#include "cuda/elementwise.cuh"

#define FACE_BLOCK 256 /* threads of a reduction block, a power of two */

/* in, out (N,C,HW): out = in where in > 0, else slope[c] in */
__global__ void prelu_forward_kernel(float *out, const float *in, const float *slope, int c,
                                     size_t hw, size_t n)
{
    GRID_STRIDE(i, n)
    {
        float x = in[i];
        out[i] = x > 0.0f ? x : __fmul_rn(slope[(i / hw) % (size_t)c], x);
    }
}

__global__ void prelu_backward_kernel(float *din, const float *dout, const float *in,
                                      const float *slope, int c, size_t hw, size_t n)
{
    GRID_STRIDE(i, n)
    {
        float g = dout[i];
        din[i] = in[i] > 0.0f ? g : __fmul_rn(slope[(i / hw) % (size_t)c], g);
    }
}

/* The block's sum of each thread's part (all threads call it; thread 0 gets the sum). */
__device__ double block_sum(double part, double *shared)
{
    shared[threadIdx.x] = part;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half)
            shared[threadIdx.x] = __dadd_rn(shared[threadIdx.x], shared[threadIdx.x + half]);
        __syncthreads();
    }
    double total = shared[0];
    __syncthreads();
    return total;
}

/* dslope[c] += sum over (n, hw) of dout in where in <= 0; one block per channel. */
__global__ void prelu_slope_grad_kernel(float *dslope, const float *dout, const float *in,
                                        int samples, int c, size_t hw)
{
    __shared__ double shared[FACE_BLOCK];
    const int ch = blockIdx.x;
    const size_t count = (size_t)samples * hw;
    double part = 0.0;
    for (size_t j = threadIdx.x; j < count; j += blockDim.x) {
        size_t at = ((j / hw) * (size_t)c + ch) * hw + j % hw;
        float x = in[at];
        if (!(x > 0.0f))
            part = __dadd_rn(part, __dmul_rn((double)dout[at], (double)x));
    }
    double total = block_sum(part, shared);
    if (threadIdx.x == 0)
        dslope[ch] = __fadd_rn(dslope[ch], (float)total);
}

/* norm[r] = max(|a_r|, eps), u_r = a_r / norm[r]; one block per row of a (rows, cols). */
__global__ void rows_normalize_kernel(float *u, float *norm, const float *a, int cols,
                                      double eps)
{
    __shared__ double shared[FACE_BLOCK];
    const float *ar = a + (size_t)blockIdx.x * cols;
    double part = 0.0;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
        part = __dadd_rn(part, __dmul_rn((double)ar[i], (double)ar[i]));
    double nr = sqrt(block_sum(part, shared));
    nr = nr > eps ? nr : eps;
    if (threadIdx.x == 0)
        norm[blockIdx.x] = (float)nr;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
        u[(size_t)blockIdx.x * cols + i] = (float)__ddiv_rn((double)ar[i], nr);
}

/* g_r = (du_r - u_r (u_r . du_r)) / norm[r] (du_r / eps at the floor), assigned or added;
 * one block per row. */
__global__ void rows_project_kernel(float *g, const float *du, const float *u, const float *norm,
                                    int cols, float eps, int accumulate)
{
    __shared__ double shared[FACE_BLOCK];
    const size_t base = (size_t)blockIdx.x * cols;
    const double nr = norm[blockIdx.x];
    const int at_floor = !(norm[blockIdx.x] > eps);
    double part = 0.0;
    if (!at_floor)
        for (int i = threadIdx.x; i < cols; i += blockDim.x)
            part = __dadd_rn(part, __dmul_rn((double)u[base + i], (double)du[base + i]));
    double udu = block_sum(part, shared);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float v = (float)__ddiv_rn(__dsub_rn((double)du[base + i],
                                             __dmul_rn((double)u[base + i], udu)), nr);
        g[base + i] = accumulate ? __fadd_rn(g[base + i], v) : v;
    }
}

#endif
