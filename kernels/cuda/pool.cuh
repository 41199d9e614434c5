/* pool.cuh: max and average pooling on the GPU, for kernels/cuda/layers.cu, with the
 * semantics of ref_pool_forward / ref_pool_backward (kernels/cpu/layers_ref.c): square
 * window, zero padding, floor output size; max pooling never selects the padding and
 * routes each output's gradient to the first maximum of its window in row-major order
 * (PyTorch's rule on ties); average pooling divides by kernel^2 clipped to the padded
 * input (count_include_pad) or by the window's input elements.
 *
 * The forward is one thread per output. The backward is a gather, one thread per input
 * element, which visits the outputs whose windows hold it in row-major order, finds
 * each window's first maximum again from `in` (so no workspace) and adds the shares in
 * float in that order, as the reference's scatter does: no atomics, and the same bits
 * as the reference.
 */
#ifndef AMLFS_CUDA_POOL_CUH
#define AMLFS_CUDA_POOL_CUH

#include "cuda/elementwise.cuh"

typedef struct {
    int h, w, oh, ow;
    int kernel, stride, pad;
    int max; /* 1: max pooling, 0: average */
    int count_include_pad;
} pool_geom;

/* The window of output (oh, ow), as the reference's pool_window. */
__device__ __forceinline__ void pool_window(const pool_geom &g, int oh, int ow, int *h0, int *h1,
                                            int *w0, int *w1, int *divisor)
{
    int hs = oh * g.stride - g.pad, ws = ow * g.stride - g.pad;
    int he = hs + g.kernel, we = ws + g.kernel;
    int he_pad = he < g.h + g.pad ? he : g.h + g.pad;
    int we_pad = we < g.w + g.pad ? we : g.w + g.pad;
    int padded = (he_pad - hs) * (we_pad - ws);
    *h0 = hs > 0 ? hs : 0;
    *w0 = ws > 0 ? ws : 0;
    *h1 = he < g.h ? he : g.h;
    *w1 = we < g.w ? we : g.w;
    *divisor = g.count_include_pad ? padded : (*h1 - *h0) * (*w1 - *w0);
}

/* The first maximum of a window of plane x, as an offset into the plane. */
__device__ __forceinline__ int window_argmax(const float *x, int w, int h0, int h1, int w0,
                                             int w1)
{
    int arg = h0 * w + w0;
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++)
            if (x[ih * w + iw] > x[arg])
                arg = ih * w + iw;
    return arg;
}

/* n = N C OH OW outputs */
__global__ void pool_forward_kernel(float *out, const float *in, pool_geom g, size_t n)
{
    GRID_STRIDE(i, n)
    {
        size_t plane = i / ((size_t)g.oh * g.ow);
        int o = (int)(i - plane * g.oh * g.ow);
        int oh = o / g.ow, ow = o % g.ow;
        const float *x = in + plane * g.h * g.w;
        int h0, h1, w0, w1, divisor;
        pool_window(g, oh, ow, &h0, &h1, &w0, &w1, &divisor);
        if (g.max) {
            float best = x[h0 * g.w + w0];
            for (int ih = h0; ih < h1; ih++)
                for (int iw = w0; iw < w1; iw++)
                    if (x[ih * g.w + iw] > best)
                        best = x[ih * g.w + iw];
            out[i] = best;
        } else {
            double acc = 0.0;
            for (int ih = h0; ih < h1; ih++)
                for (int iw = w0; iw < w1; iw++)
                    acc = __dadd_rn(acc, (double)x[ih * g.w + iw]);
            out[i] = (float)__ddiv_rn(acc, (double)divisor);
        }
    }
}

/* n = N C H W inputs */
__global__ void pool_backward_kernel(float *din, const float *dout, const float *in, pool_geom g,
                                     size_t n)
{
    GRID_STRIDE(i, n)
    {
        size_t plane = i / ((size_t)g.h * g.w);
        int e = (int)(i - plane * g.h * g.w);
        int ih = e / g.w, iw = e % g.w;
        const float *x = in + plane * g.h * g.w;
        const float *dy = dout + plane * g.oh * g.ow;
        /* outputs whose window [o stride - pad, o stride - pad + kernel) holds ih */
        int th = ih + g.pad - g.kernel + 1, tw = iw + g.pad - g.kernel + 1;
        int oh_lo = th > 0 ? (th + g.stride - 1) / g.stride : 0;
        int ow_lo = tw > 0 ? (tw + g.stride - 1) / g.stride : 0;
        int oh_hi = (ih + g.pad) / g.stride, ow_hi = (iw + g.pad) / g.stride;
        if (oh_hi > g.oh - 1)
            oh_hi = g.oh - 1;
        if (ow_hi > g.ow - 1)
            ow_hi = g.ow - 1;
        float acc = 0.0f;
        for (int oh = oh_lo; oh <= oh_hi; oh++)
            for (int ow = ow_lo; ow <= ow_hi; ow++) {
                int h0, h1, w0, w1, divisor;
                pool_window(g, oh, ow, &h0, &h1, &w0, &w1, &divisor);
                float gy = dy[oh * g.ow + ow];
                if (g.max) {
                    if (window_argmax(x, g.w, h0, h1, w0, w1) == e)
                        acc = __fadd_rn(acc, gy);
                } else {
                    acc = __fadd_rn(acc, (float)__ddiv_rn((double)gy, (double)divisor));
                }
            }
        din[i] = acc;
    }
}

#endif
