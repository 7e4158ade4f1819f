// Self-test: warp collectives used wrongly; each kernel must fail with TESSERA_EMU_WARP_MISUSE,
// except the last two, which CUDA allows (mask bits of exited and missing lanes are ignored)
// and which must run.
//   selftest_shfl_self_not_in_mask: lane 3 calls with a mask that does not contain lane 3.
//   selftest_shfl_source_not_in_mask: lanes 0-15 shuffle among themselves (mask 0xffff) but read
//       lane (lane + 16), which is in range and not in the mask.
//   selftest_collective_mismatch: even lanes __shfl_sync, odd lanes __ballot_sync, same mask.
//   selftest_collective_exited: lane 31 returns early; the others shuffle with the full mask.
//   selftest_mask_mismatch: lane 0 shuffles with mask 0x3, lane 1 with mask 0x7, and lane 2 (like
//       all the others) waits at __syncthreads: lane 0's collective can never complete.
//   selftest_partial_warp_full_mask: a full-mask warp reduction in a block whose size is not a
//       multiple of 32 (launch with 48 threads): lanes 16-31 of warp 1 do not exist.
#include "tessera.cuh"

TESSERA_KERNEL void selftest_shfl_self_not_in_mask(float* out) {
    const unsigned lane = threadIdx.x & 31;
    const unsigned mask = lane == 3 ? 0xfffffff7u : 0xffffffffu;
    out[threadIdx.x] = __shfl_xor_sync(mask, (float)lane, 1);
}

TESSERA_KERNEL void selftest_shfl_source_not_in_mask(float* out) {
    const unsigned lane = threadIdx.x & 31;
    if (lane < 16) out[threadIdx.x] = __shfl_sync(0x0000ffffu, (float)lane, (int)lane + 16);
}

TESSERA_KERNEL void selftest_collective_mismatch(float* out) {
    const unsigned lane = threadIdx.x & 31;
    if (lane % 2 == 0) {
        out[threadIdx.x] = __shfl_sync(0xffffffffu, (float)lane, 0);
    } else {
        out[threadIdx.x] = (float)__ballot_sync(0xffffffffu, 1);
    }
}

TESSERA_KERNEL void selftest_collective_exited(float* out) {
    const unsigned lane = threadIdx.x & 31;
    if (lane == 31) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (float)lane, 1);
}

TESSERA_KERNEL void selftest_partial_warp_full_mask(float* out) {
    out[threadIdx.x] = tessera::warp_reduce_sum(1.0f);
}

TESSERA_KERNEL void selftest_mask_mismatch(float* out) {
    const unsigned lane = threadIdx.x & 31;
    if (lane == 0) out[threadIdx.x] = __shfl_sync(0x3u, 1.0f, 1);
    if (lane == 1) out[threadIdx.x] = __shfl_sync(0x7u, 1.0f, 0);
    __syncthreads();
}
