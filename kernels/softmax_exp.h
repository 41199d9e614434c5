/* softmax_exp.h: the float32 exp of the softmax losses, one definition for the CPU
 * (kernels/cpu/loss.c, classic.c) and the GPU (kernels/cuda/loss_kernel.cuh).
 *
 * exp(hi + lo), hi <= 0 and lo its rounding remainder (|lo| <= ulp(hi)/2; 0 when there
 * is none), in float32: within 1 ulp of exp on [-87, 0] (checked over every float32
 * there, lo = 0), 0 below -87 (a softmax term under FLT_MIN is below the precision of a
 * sum that holds the maximum's 1), NaN for NaN. libm's expf is a call that the loops
 * over C cannot vectorise at -O2; this is straight-line code they can:
 * hi = n ln2 + r with |r| <= ln2/2, ln2 in two parts (Cody and Waite) so that hi - n ln2
 * is exact, and lo joins r there; exp(r) by the degree-7 minimax polynomial of Cephes'
 * expf; 2^n built in the exponent bits, n clamped to [-126, 0] with integer selects so
 * that -inf and NaN stay defined. nvcc contracts a * b + c into fused multiply-adds,
 * where the C build does not, so the GPU's terms agree with the CPU's to within an ulp,
 * not bit for bit. */
#ifndef AMLFS_SOFTMAX_EXP_H
#define AMLFS_SOFTMAX_EXP_H

#include <stdint.h>

#include <string.h>

/* host and device under nvcc (memcpy is a register move on both) */
#ifdef __CUDACC__
#define AMLFS_SOFTMAX_HD static __host__ __device__ __forceinline__
#else
#define AMLFS_SOFTMAX_HD static inline
#endif

AMLFS_SOFTMAX_HD int32_t amlfs_f32_bits(float v)
{
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return i;
}

AMLFS_SOFTMAX_HD float amlfs_f32_from_bits(int32_t i)
{
    float v;
    memcpy(&v, &i, sizeof v);
    return v;
}

AMLFS_SOFTMAX_HD float amlfs_softmax_exp(float hi, float lo)
{
    /* n = round(hi log2 e): adding 1.5 2^23 leaves the rounded integer in the low bits */
    float shifted = hi * 1.44269504088896341f + 12582912.0f;
    int32_t n = (int32_t)((uint32_t)amlfs_f32_bits(shifted) - 0x4B400000u);
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
    float v = poly * amlfs_f32_from_bits((n + 127) << 23);
    /* zero below -87 by a bit mask, not a select the compiler would make a branch;
     * NaN is not below -87: it stays NaN */
    int32_t keep = -(int32_t)!(hi < -87.0f);
    return amlfs_f32_from_bits(amlfs_f32_bits(v) & keep);
}

#endif
