// Self-test: __syncthreads reached at two different call sites by different threads of one
// block. The emulator must return TESSERA_EMU_WARP_MISUSE ("divergent __syncthreads").
#include "tessera.cuh"

TESSERA_KERNEL void selftest_divergent_sync(int* out) {
    if (threadIdx.x < 16) {
        out[threadIdx.x] = 1;
        __syncthreads();
    } else {
        out[threadIdx.x] = 2;
        __syncthreads();
    }
}
