/* elementwise.cuh: the CUDA backend's element-wise layers, global average pooling, the
 * option-A shortcut, SGD and the small helpers of convolution and linear (bias,
 * accumulation), for kernels/cuda/layers.cu. Semantics: kernels/cpu/layers_ref.c.
 *
 * Every output element is computed by one thread in the reference's order of
 * operations, and the float32 and float64 operations that the reference rounds one by
 * one are written with the _rn intrinsics, which nvcc never fuses into multiply-adds
 * (the host reference is compiled without FMA contraction). So these results equal the
 * reference's to the bit. Grid-stride loops over size_t indices: any tensor size.
 */
#ifndef AMLFS_CUDA_ELEMENTWISE_CUH
#define AMLFS_CUDA_ELEMENTWISE_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#define EW_BLOCK 256

#define GRID_STRIDE(i, n)                                                                \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);               \
         i += (size_t)gridDim.x * blockDim.x)

__global__ void relu_forward_kernel(float *out, const float *in, size_t n)
{
    GRID_STRIDE(i, n)
    {
        float x = in[i];
        out[i] = x > 0.0f ? x : 0.0f;
    }
}

/* din may be dout: element i is read before it is written, by the same thread. */
__global__ void relu_backward_kernel(float *din, const float *dout, const float *out, size_t n)
{
    GRID_STRIDE(i, n)
    {
        float g = dout[i];
        din[i] = out[i] > 0.0f ? g : 0.0f;
    }
}

/* out may be a or b. */
__global__ void add_kernel(float *out, const float *a, const float *b, size_t n)
{
    GRID_STRIDE(i, n) out[i] = __fadd_rn(a[i], b[i]);
}

/* dst += src (parameter gradients computed into a plan's scratch). */
__global__ void accumulate_kernel(float *dst, const float *src, size_t n)
{
    GRID_STRIDE(i, n) dst[i] = __fadd_rn(dst[i], src[i]);
}

/* out (N, OUT) = bias broadcast over rows, before a gemm with beta = 1 adds in w^T. */
__global__ void bias_rows_kernel(float *out, const float *bias, int cols, size_t n)
{
    GRID_STRIDE(i, n) out[i] = bias[i % (size_t)cols];
}

/* out (N,K,HW) += bias (K), after the convolution. */
__global__ void bias_planes_kernel(float *out, const float *bias, int k, size_t hw, size_t n)
{
    GRID_STRIDE(i, n) out[i] = __fadd_rn(out[i], bias[(i / hw) % (size_t)k]);
}

/* dbias (OUT) += column sums of dout (N, OUT): one thread per column, the rows summed
 * in order in double, as ref_linear_backward. */
__global__ void column_sums_kernel(float *dbias, const float *dout, int rows, int cols)
{
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= cols)
        return;
    double acc = 0.0;
    for (int r = 0; r < rows; r++)
        acc = __dadd_rn(acc, (double)dout[(size_t)r * cols + o]);
    dbias[o] = __fadd_rn(dbias[o], (float)acc);
}

/* Global average pooling: one thread per (n, c) plane, its hw elements summed in
 * order in double. */
__global__ void global_avgpool_forward_kernel(float *out, const float *in, size_t planes,
                                              int hw)
{
    GRID_STRIDE(p, planes)
    {
        const float *x = in + p * hw;
        double acc = 0.0;
        for (int j = 0; j < hw; j++)
            acc = __dadd_rn(acc, (double)x[j]);
        out[p] = (float)__ddiv_rn(acc, (double)hw);
    }
}

__global__ void global_avgpool_backward_kernel(float *din, const float *dout, int hw, size_t n)
{
    GRID_STRIDE(i, n) din[i] = (float)__ddiv_rn((double)dout[i / hw], (double)hw);
}

typedef struct {
    int n, c, h, w, k, stride, oh, ow, lo; /* lo: zero channels below the copied ones */
} shortcut_geom;

/* One thread per output element: a copied input element or a zero channel. */
__global__ void shortcut_forward_kernel(float *out, const float *in, shortcut_geom g, size_t n)
{
    GRID_STRIDE(i, n)
    {
        size_t ow = i % g.ow, t = i / g.ow;
        size_t oh = t % g.oh;
        t /= g.oh;
        int k = (int)(t % g.k);
        size_t b = t / g.k;
        int c = k - g.lo;
        out[i] = (c >= 0 && c < g.c)
                     ? in[((b * g.c + c) * g.h + oh * g.stride) * g.w + ow * g.stride]
                     : 0.0f;
    }
}

/* One thread per input element (a gather): the output it was copied to, else 0. */
__global__ void shortcut_backward_kernel(float *din, const float *dout, shortcut_geom g,
                                         size_t n)
{
    GRID_STRIDE(i, n)
    {
        size_t iw = i % g.w, t = i / g.w;
        size_t ih = t % g.h;
        t /= g.h;
        size_t c = t % g.c, b = t / g.c;
        float v = 0.0f;
        if (ih % g.stride == 0 && iw % g.stride == 0)
            v = dout[((b * g.k + c + g.lo) * g.oh + ih / g.stride) * g.ow + iw / g.stride];
        din[i] = v;
    }
}

/* ref_sgd_step in float32, each operation rounded on its own (no fused multiply-add):
 * lr, momentum and weight decay arrive already rounded to float, as the reference
 * casts them. */
__global__ void sgd_kernel(float *param, float *momentum_buf, const float *grad, size_t n,
                           float lr, float momentum, float weight_decay, int decay,
                           int use_momentum, int nesterov, int first_step)
{
    GRID_STRIDE(i, n)
    {
        float p = param[i], g = grad[i];
        if (decay)
            g = __fadd_rn(g, __fmul_rn(weight_decay, p));
        if (use_momentum) {
            float buf = first_step ? g : __fadd_rn(__fmul_rn(momentum, momentum_buf[i]), g);
            momentum_buf[i] = buf;
            g = nesterov ? __fadd_rn(g, __fmul_rn(momentum, buf)) : buf;
        }
        param[i] = __fsub_rn(p, __fmul_rn(lr, g));
    }
}

#endif
