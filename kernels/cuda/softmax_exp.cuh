/* softmax_exp.cuh: the float32 softmax term of the searchable loss on the GPU, the same
 * arithmetic as kernels/cpu/loss.c (see its header comment, item 1): exp(hi + lo) with lo
 * the float32 rounding remainder of the argument, joined in the range reduction.
 * nvcc contracts a * b + c into fused multiply-adds here, where the C build does not, so
 * the terms agree with the CPU's to within an ulp, not bit for bit; the TwoSum below is
 * additions only, which no contraction touches. */
#ifndef AMLFS_CUDA_SOFTMAX_EXP_CUH
#define AMLFS_CUDA_SOFTMAX_EXP_CUH

#include <stdint.h>

/* exp(hi + lo), hi <= 0: within 1 ulp of exp on [-87, 0], 0 below -87, NaN for NaN. */
static __device__ __forceinline__ float softmax_exp(float hi, float lo)
{
    float shifted = hi * 1.44269504088896341f + 12582912.0f; /* 1.5 2^23: rounds to n */
    int32_t n = __float_as_int(shifted) - 0x4B400000;
    n = n < -126 ? -126 : n;
    n = n > 0 ? 0 : n;
    float nf = (float)n;
    float r = hi - nf * 0.693359375f;
    r = (r - nf * -2.12194440e-4f) + lo;
    float poly = 1.9875691500e-4f;
    poly = poly * r + 1.3981999507e-3f;
    poly = poly * r + 8.3334519073e-3f;
    poly = poly * r + 4.1665795894e-2f;
    poly = poly * r + 1.6666665459e-1f;
    poly = poly * r + 5.0000001201e-1f;
    poly = poly * r * r + r + 1.0f;
    float v = poly * __int_as_float((n + 127) << 23);
    return hi < -87.0f ? 0.0f : v; /* NaN is not < -87: it stays NaN */
}

/* a - b as hi + lo, hi = fl(a - b), lo its exact remainder (Knuth's TwoSum). */
static __device__ __forceinline__ float diff_split(float a, float b, float *lo)
{
    float b_neg = -b;
    float hi = __fadd_rn(a, b_neg);
    float b_part = __fsub_rn(hi, a);
    float a_part = __fsub_rn(hi, b_part);
    *lo = __fadd_rn(__fsub_rn(a, a_part), __fsub_rn(b_neg, b_part));
    return hi;
}

#endif
