// Self-test: shared-memory block reduction with __syncthreads, and tessera::block_reduce_sum.
//
// Block b sums in[b*chunk .. min((b+1)*chunk, n)). Each thread first accumulates a strided
// slice; then
//   * out_tree[b]   = an explicit shared-memory tree reduction (a barrier after every level;
//                     works for any blockDim.x, not only powers of two);
//   * out_helper[b] = tessera::block_reduce_sum of the same partial sums (exercises the
//                     partial last warp when blockDim.x is not a multiple of 32);
//   * out_count[b]  = __syncthreads_count(partial > 0).
// With integer-valued inputs every sum is exact, so the test compares exactly: a missing
// barrier, a wrong index or a wrong warp reduction changes the result.
#include "tessera.cuh"

TESSERA_KERNEL void selftest_block_reduce(const float* __restrict__ src, int n, int chunk, float* out_tree,
                                          float* out_helper, int* out_count) {
    __shared__ float buf[1024];
    __shared__ float scratch[32];
    const unsigned tid = threadIdx.x, nt = blockDim.x;
    const long long base = (long long)blockIdx.x * chunk;
    float partial = 0.0f;
    for (long long i = tid; i < chunk && base + i < n; i += nt) partial += src[base + i];

    buf[tid] = partial;
    __syncthreads();
    unsigned half = 1;
    while (half * 2 < nt) half *= 2;  // largest power of two below nt (nt >= 2)
    for (unsigned s = (nt == 1 ? 0 : half); s > 0; s >>= 1) {
        if (tid < s && tid + s < nt) buf[tid] += buf[tid + s];
        __syncthreads();
    }
    if (tid == 0) out_tree[blockIdx.x] = buf[0];

    const float total = tessera::block_reduce_sum(partial, scratch);
    if (tid == nt - 1) out_helper[blockIdx.x] = total;  // every thread has it: let the last one write

    const int count = __syncthreads_count(partial > 0.0f);
    if (tid == 0) out_count[blockIdx.x] = count;
}
