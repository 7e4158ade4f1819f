// Self-test: the emulator exposes a missing __syncthreads.
// Each thread writes buf[tid] = in[tid], then reads its neighbours buf[tid - 1] and
// buf[tid + 1] (wrapping). selftest_with_barrier has the barrier between the write and the
// reads and must be exact; selftest_without_barrier omits it, and on the emulator (threads run
// until they block, in ascending order in even blocks and descending in odd ones) some thread
// reads a neighbour that has not written yet, so the result must be wrong somewhere.
#include "tessera.cuh"

TESSERA_KERNEL void selftest_with_barrier(const float* __restrict__ src, float* out) {
    __shared__ float buf[256];
    const unsigned t = threadIdx.x, n = blockDim.x, g = blockIdx.x * n + t;
    buf[t] = src[g];
    __syncthreads();
    out[g] = buf[(t + n - 1) % n] + buf[(t + 1) % n];
}

TESSERA_KERNEL void selftest_without_barrier(const float* __restrict__ src, float* out) {
    __shared__ float buf[256];
    const unsigned t = threadIdx.x, n = blockDim.x, g = blockIdx.x * n + t;
    buf[t] = src[g];
    out[g] = buf[(t + n - 1) % n] + buf[(t + 1) % n];  // BUG on purpose: no barrier
}
