// Self-test: a kernel that can never finish. Even threads wait at __syncthreads, odd threads
// at a full-mask __syncwarp: the barrier needs the odd threads, the warp sync needs the even
// ones. The emulator must return TESSERA_EMU_DEADLOCK naming the kernel (not hang).
#include "tessera.cuh"

TESSERA_KERNEL void selftest_deadlock(int* out) {
    if (threadIdx.x % 2 == 0) {
        __syncthreads();
    } else {
        __syncwarp();
    }
    out[threadIdx.x] = 1;
}
