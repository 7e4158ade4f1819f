// Self-test: mma.sync m16n8k16 (f16 and bf16 inputs, f32 accumulate) against a CPU matmul.
//
// D (32x16, f32, row-major) = C (32x16) + A (32x32, row-major) * B (32x16, row-major, K x N).
// One block of 64 threads: warp w owns rows 16w..16w+15; it loops over the two 8-column
// tiles and the two 16-deep k steps, accumulating in place (d aliases c). Each lane builds its
// A/B/C fragments straight from global memory with the PTX ISA layout (g = lane/4, t = lane%4),
// so a fragment element in the wrong place changes the result. Inputs are multiples of 1/8
// in [-4, 4]: every product and sum is exact, and the test compares exactly.
#include "tessera.cuh"

namespace {
template <class T>
__device__ __forceinline__ uint32_t pack2(const T* p0, const T* p1) {  // low half = *p0
    unsigned short lo, hi;
    memcpy(&lo, p0, 2);
    memcpy(&hi, p1, 2);
    return (uint32_t)lo | ((uint32_t)hi << 16);
}

template <class T, bool BF16>
__device__ __forceinline__ void mma_tile(const T* A, const T* B, const float* C, float* D) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int K = 32, N = 16;
    const int r0 = warp * 16 + g, r1 = r0 + 8;
    for (int n0 = 0; n0 < N; n0 += 8) {
        float acc[4] = {C[r0 * N + n0 + 2 * t], C[r0 * N + n0 + 2 * t + 1], C[r1 * N + n0 + 2 * t],
                        C[r1 * N + n0 + 2 * t + 1]};
        for (int k0 = 0; k0 < K; k0 += 16) {
            const uint32_t a[4] = {
                pack2(&A[r0 * K + k0 + 2 * t], &A[r0 * K + k0 + 2 * t + 1]),
                pack2(&A[r1 * K + k0 + 2 * t], &A[r1 * K + k0 + 2 * t + 1]),
                pack2(&A[r0 * K + k0 + 2 * t + 8], &A[r0 * K + k0 + 2 * t + 9]),
                pack2(&A[r1 * K + k0 + 2 * t + 8], &A[r1 * K + k0 + 2 * t + 9]),
            };
            const uint32_t b[2] = {
                pack2(&B[(k0 + 2 * t) * N + n0 + g], &B[(k0 + 2 * t + 1) * N + n0 + g]),
                pack2(&B[(k0 + 2 * t + 8) * N + n0 + g], &B[(k0 + 2 * t + 9) * N + n0 + g]),
            };
            if (BF16) {
                tessera::mma_m16n8k16_bf16(acc, a, b, acc);
            } else {
                tessera::mma_m16n8k16_f16(acc, a, b, acc);
            }
        }
        D[r0 * N + n0 + 2 * t] = acc[0];
        D[r0 * N + n0 + 2 * t + 1] = acc[1];
        D[r1 * N + n0 + 2 * t] = acc[2];
        D[r1 * N + n0 + 2 * t + 1] = acc[3];
    }
}
}  // namespace

TESSERA_KERNEL void selftest_mma_f16(const __half* A, const __half* B, const float* C, float* D) {
    mma_tile<__half, false>(A, B, C, D);
}

TESSERA_KERNEL void selftest_mma_bf16(const __nv_bfloat16* A, const __nv_bfloat16* B, const float* C, float* D) {
    mma_tile<__nv_bfloat16, true>(A, B, C, D);
}
