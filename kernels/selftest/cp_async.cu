// Self-test: cp.async groups, load16 / store16, and dynamic shared memory.
//
// One block of 64 threads; dynamic shared memory of 2 * 64 * 16 bytes (two stages of one
// 16-byte chunk per thread). Thread t copies chunk t of `in` into stage 0 (group 0) and chunk
// 64 + t into stage 1 (group 1), then:
//   cp_async_wait<1>(), __syncthreads: stage 0 is complete -> out[t] = sum of the 4 floats of
//       stage-0 chunk (63 - t) (another thread's copy)
//   cp_async_wait<0>(), __syncthreads: stage 1 is complete -> out[64 + t] = same for stage 1
// and store16(out16 + t, load16 of stage-1 chunk t). Any copy retired early, late, or into the
// wrong place changes the sums.
#include "tessera.cuh"

// The buffers are plain float / unsigned arrays at the C boundary (as the Rust declaration
// says); the kernel views them as 16-byte vectors (they are 16-byte aligned).
TESSERA_KERNEL void selftest_cp_async(const float* __restrict__ src_floats, float* out, unsigned* out16_words) {
    const float4* src = reinterpret_cast<const float4*>(src_floats);
    uint4* out16 = reinterpret_cast<uint4*>(out16_words);
    TESSERA_DYNAMIC_SMEM(float4, stage);
    const unsigned t = threadIdx.x, n = blockDim.x;
    tessera::cp_async16(&stage[t], &src[t]);
    tessera::cp_async_commit();
    tessera::cp_async16(&stage[n + t], &src[n + t]);
    tessera::cp_async_commit();
    tessera::cp_async_wait<1>();
    __syncthreads();
    const float4 a = stage[n - 1 - t];
    out[t] = a.x + a.y + a.z + a.w;
    tessera::cp_async_wait<0>();
    __syncthreads();
    const float4 b = stage[2 * n - 1 - t];
    out[n + t] = b.x + b.y + b.z + b.w;
    tessera::store16(&out16[t], tessera::load16(&stage[n + t]));
}
