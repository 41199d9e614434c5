/* rng.cuh: the project's random streams (kernels/amlfs_rng.h) drawn on the GPU, one
 * number per thread. Header-only, as amlfs_rng.h is: a GPU sampler, or a check that the
 * GPU draws what the CPU draws, includes it. Device pointers, the default stream; each
 * launcher returns 0 or a cudaError_t value. */
#ifndef AMLFS_CUDA_RNG_CUH
#define AMLFS_CUDA_RNG_CUH

#include "amlfs_rng.h"

#include <cuda_runtime.h>
#include <stdint.h>

#define AMLFS_RNG_BLOCK 256

/* out (count): normal numbers first .. first+count-1 of stream r. */
static __global__ void amlfs_rng_normals_kernel(amlfs_rng_name r, uint64_t first, int count,
                                                double *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count)
        out[i] = amlfs_rng_normal(r, first + (uint64_t)i);
}

/* out (count, 4): the raw Philox blocks first .. first+count-1 of stream r. */
static __global__ void amlfs_rng_blocks_kernel(amlfs_rng_name r, uint32_t first, int count,
                                               uint32_t *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count)
        amlfs_rng_block(r, first + (uint32_t)i, out + 4 * (size_t)i);
}

static inline int amlfs_cuda_rng_normals(amlfs_rng_name r, uint64_t first, int count,
                                         double *d_out)
{
    if (count < 1)
        return 0;
    int blocks = (count + AMLFS_RNG_BLOCK - 1) / AMLFS_RNG_BLOCK;
    amlfs_rng_normals_kernel<<<blocks, AMLFS_RNG_BLOCK>>>(r, first, count, d_out);
    return (int)cudaGetLastError();
}

static inline int amlfs_cuda_rng_blocks(amlfs_rng_name r, uint32_t first, int count,
                                        uint32_t *d_out)
{
    if (count < 1)
        return 0;
    int blocks = (count + AMLFS_RNG_BLOCK - 1) / AMLFS_RNG_BLOCK;
    amlfs_rng_blocks_kernel<<<blocks, AMLFS_RNG_BLOCK>>>(r, first, count, d_out);
    return (int)cudaGetLastError();
}

#endif
