/* loss.cu: the searchable loss of DESIGN.md 1 on the GPU, forward and gradient, with the
 * semantics and precision of kernels/cpu/loss.c (the reference); the per-sample
 * arithmetic is kernels/loss_math.h's, whose header comment derives it. One thread block
 * per sample:
 *   1. the row's maximum (block reduction);
 *   2. the other classes' float32 terms, their float64 sum (block reduction), the terms
 *      kept in the gradient row;
 *   3. thread 0: p_y, the transforms, the loss, the weight, the clamp;
 *   4. the gradient row scaled in place.
 * The block's reduction order differs from the CPU's serial one and nvcc fuses
 * multiply-adds, so results agree with the CPU to rounding, not bit for bit; they are the
 * same on every run of the same GPU (no atomics in any floating-point sum).
 */
#include "cuda/amlfs_cuda.h"
#include "cuda/loss_kernel.cuh"

#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>

int amlfs_cuda_searchable_loss(const amlfs_loss_spec *spec, const float *d_in,
                               const int32_t *d_y, int n, int c, double *d_loss,
                               float *d_grad, double *d_weight, int *d_clamped,
                               double *mean)
{
    /* the exact margin losses run on the host only (the train step computes its loss
     * there, kernels/cpu/loss.c): refused here rather than computed as a searched one */
    if (!spec || spec->exact != AMLFS_EXACT_NONE || !spec->theta || !d_in || !d_y ||
        !d_loss || n < 1 || c < 1 ||
        spec->intervals < 1 || spec->intervals > AMLFS_CUDA_MAX_INTERVALS)
        return -1;
    loss_params P;
    P.space = (int)spec->space;
    P.m = spec->intervals;
    P.scale = spec->scale;
    for (int k = 0; k < 4 * spec->intervals; k++)
        P.theta[k] = spec->theta[k];

    cudaError_t err = cudaSuccess;
    if (d_clamped)
        err = cudaMemsetAsync(d_clamped, 0, sizeof *d_clamped);
    if (err != cudaSuccess)
        return (int)err;
    searchable_loss_kernel<<<n, LOSS_BLOCK>>>(P, d_in, d_y, c, 1.0 / n, d_loss, d_grad,
                                              d_weight, d_clamped);
    err = cudaGetLastError();
    if (err != cudaSuccess)
        return (int)err;
    if (mean) {
        /* The mean in sample order on the host, as the CPU sums it. */
        double *h_loss = (double *)malloc((size_t)n * sizeof *h_loss);
        if (!h_loss)
            return -1;
        err = cudaMemcpy(h_loss, d_loss, (size_t)n * sizeof *h_loss, cudaMemcpyDeviceToHost);
        double total = 0.0;
        for (int i = 0; i < n; i++)
            total += h_loss[i];
        free(h_loss);
        if (err != cudaSuccess)
            return (int)err;
        *mean = total * (1.0 / n);
    }
    return 0;
}
