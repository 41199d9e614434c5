/* softmax_exp.cuh: the float32 softmax term of the searchable loss on the GPU, the same
 * arithmetic as kernels/cpu/loss.c (loss_math.h derives it, item 1): exp(hi + lo) with lo
 * the float32 rounding remainder of the argument, joined in the range reduction, is
 * amlfs_softmax_exp of kernels/loss_math.h, shared with the CPU. The TwoSum below is
 * additions only, which no contraction touches; the CPU's (loss.c) relies on the C
 * build not contracting instead of on intrinsics. */
#ifndef AMLFS_CUDA_SOFTMAX_EXP_CUH
#define AMLFS_CUDA_SOFTMAX_EXP_CUH

#include "loss_math.h"

#include <stdint.h>

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
