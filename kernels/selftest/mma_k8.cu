// Self-test: mma.sync m16n8k8 (f16, bf16 and tf32 inputs, f32 accumulate) and f32_to_tf32.
//
// D (16x8, f32, row-major) = C (16x8) + A (16x8, row-major) * B (8x8, row-major, K x N), one
// mma by one warp (32 threads), accumulating in place (d aliases c). Each lane builds its
// A/B/C fragments straight from global memory with the PTX ISA layout of tessera.cuh section 5
// (g = lane/4, t = lane%4), so a fragment element in the wrong place changes the result.
// `variant` selects a deliberate mistake, for the tests to show that one is caught:
//   f16 / bf16: 0 = correct, 1 = a[0] and a[1] swapped (rows g and g+8),
//               2 = the two halves of b[0] swapped (k 2t and 2t+1)
//   tf32:       0 = the f32 bit patterns as they are (the mma truncates them),
//               1 = rounded with f32_to_tf32 first, 2 = a[1] and a[2] swapped (the order of the
//               f16 A of m16n8k8 taken for tf32), 3 = b[0] and b[1] swapped
// selftest_f32_to_tf32: out[i] = f32_to_tf32(x[i]), any launch shape.
#include "tessera.cuh"

namespace {
template <class T>
__device__ __forceinline__ uint32_t pack2(const T* p0, const T* p1) {  // low half = *p0
    unsigned short lo, hi;
    memcpy(&lo, p0, 2);
    memcpy(&hi, p1, 2);
    return (uint32_t)lo | ((uint32_t)hi << 16);
}

__device__ __forceinline__ uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

// C fragment in, D fragment out (rows g, g+8; cols 2t, 2t+1).
__device__ __forceinline__ void load_c(const float* C, int g, int t, float (&acc)[4]) {
    acc[0] = C[g * 8 + 2 * t], acc[1] = C[g * 8 + 2 * t + 1];
    acc[2] = C[(g + 8) * 8 + 2 * t], acc[3] = C[(g + 8) * 8 + 2 * t + 1];
}
__device__ __forceinline__ void store_d(float* D, int g, int t, const float (&acc)[4]) {
    D[g * 8 + 2 * t] = acc[0], D[g * 8 + 2 * t + 1] = acc[1];
    D[(g + 8) * 8 + 2 * t] = acc[2], D[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

template <class T, bool BF16>
__device__ __forceinline__ void mma_k8_half(const T* A, const T* B, const float* C, float* D, int variant) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    uint32_t a[2] = {pack2(&A[g * 8 + 2 * t], &A[g * 8 + 2 * t + 1]),
                     pack2(&A[(g + 8) * 8 + 2 * t], &A[(g + 8) * 8 + 2 * t + 1])};
    uint32_t b[1] = {pack2(&B[(2 * t) * 8 + g], &B[(2 * t + 1) * 8 + g])};
    if (variant == 1) {
        const uint32_t x = a[0];
        a[0] = a[1], a[1] = x;
    }
    if (variant == 2) b[0] = (b[0] >> 16) | (b[0] << 16);
    float acc[4];
    load_c(C, g, t, acc);
    if (BF16) {
        tessera::mma_m16n8k8_bf16(acc, a, b, acc);
    } else {
        tessera::mma_m16n8k8_f16(acc, a, b, acc);
    }
    store_d(D, g, t, acc);
}
}  // namespace

TESSERA_KERNEL void selftest_mma_k8_f16(const __half* A, const __half* B, const float* C, float* D, int variant) {
    mma_k8_half<__half, false>(A, B, C, D, variant);
}

TESSERA_KERNEL void selftest_mma_k8_bf16(const __nv_bfloat16* A, const __nv_bfloat16* B, const float* C, float* D,
                                         int variant) {
    mma_k8_half<__nv_bfloat16, true>(A, B, C, D, variant);
}

TESSERA_KERNEL void selftest_mma_k8_tf32(const float* A, const float* B, const float* C, float* D, int variant) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const float av[4] = {A[g * 8 + t], A[(g + 8) * 8 + t], A[g * 8 + t + 4], A[(g + 8) * 8 + t + 4]};
    const float bv[2] = {B[t * 8 + g], B[(t + 4) * 8 + g]};
    uint32_t a[4], b[2];
    for (int i = 0; i < 4; ++i) a[i] = variant == 1 ? tessera::f32_to_tf32(av[i]) : f32_bits(av[i]);
    for (int i = 0; i < 2; ++i) b[i] = variant == 1 ? tessera::f32_to_tf32(bv[i]) : f32_bits(bv[i]);
    if (variant == 2) {
        const uint32_t x = a[1];
        a[1] = a[2], a[2] = x;
    }
    if (variant == 3) {
        const uint32_t x = b[0];
        b[0] = b[1], b[1] = x;
    }
    float acc[4];
    load_c(C, g, t, acc);
    tessera::mma_m16n8k8_tf32(acc, a, b, acc);
    store_d(D, g, t, acc);
}

TESSERA_KERNEL void selftest_f32_to_tf32(const float* x, int n, unsigned* out) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = tessera::f32_to_tf32(x[i]);
}
