/* amlfs_cuda.h: the loss of kernels/amlfs_kernels.h on the GPU (kernels/cuda/loss.cu),
 * for the CUDA sources and their checks only: device pointers, the default stream. The
 * shared header has no build switch; a CUDA source includes this one. */
#ifndef AMLFS_CUDA_H
#define AMLFS_CUDA_H

#include "amlfs_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMLFS_CUDA_MAX_INTERVALS 64 /* theta travels as a kernel argument */

/* amlfs_searchable_loss on the GPU, the same semantics and precision (one thread block
 * per sample; its reduction order differs, so results agree to rounding, not bits).
 * spec and theta on the host; d_in (N,C), d_y (N), d_loss (N) required; d_grad (N,C),
 * d_weight (N), d_clamped (one int, assigned) may be NULL. mean (host) receives the
 * mean loss summed in sample order, or NULL. Returns 0, -1 on bad arguments (M outside
 * [1, AMLFS_CUDA_MAX_INTERVALS] among them, and an exact margin loss, spec->exact !=
 * NONE, which only the CPU's amlfs_searchable_loss computes), or a cudaError_t value. */
int amlfs_cuda_searchable_loss(const amlfs_loss_spec *spec, const float *d_in,
                               const int32_t *d_y, int n, int c, double *d_loss,
                               float *d_grad, double *d_weight, int *d_clamped,
                               double *mean);

#ifdef __cplusplus
}
#endif

#endif
