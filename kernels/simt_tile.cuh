// The CUDA-core GEMM building block: one 64×64 tile of dot products C = A·Bᵀ where A
// ([rows, d]) and B ([cols, d]) are row-major with the reduction dimension contiguous
// (latents against codebook entries, activations against weight rows). For f32 inputs,
// and for any dtype when d is too small or too ragged to feed tensor cores.
//
// Thread mapping: 256 threads as a 16×16 grid, thread (ty, tx) = (tid / 16, tid % 16)
// owns the 4×4 sub-tile rows ty·4..ty·4+3 × cols tx·4..tx·4+3 in registers.
// The reduction runs in chunks of SIMT_BK = 32: the block loads the 64×32 chunks of A and
// B with coalesced reads (a warp reads 32 consecutive elements of one row), converts them
// to f32 and stores them transposed (k-major) in shared memory, so each step of the inner
// loop is two 16-byte shared loads (4 values of A, 4 of B; the A load is a broadcast
// within a half-warp) and 16 FMAs. Rows/cols outside the valid range and k ≥ d read as 0.
#pragma once
#include "tessera.cuh"

namespace tessera {

constexpr unsigned SIMT_BM = 64, SIMT_BN = 64, SIMT_BK = 32, SIMT_THREADS = 256;
// Padding keeps the k-major rows 16-byte aligned for float4 reads.
constexpr unsigned SIMT_PAD = 4;

struct SimtTileSmem {
    float a[SIMT_BK][SIMT_BM + SIMT_PAD];
    float b[SIMT_BK][SIMT_BN + SIMT_PAD];
};
static_assert(sizeof(SimtTileSmem) <= 24 * 1024, "SIMT tile must leave room for two blocks per SM");

// Loads rows [row0, row0+64) × k [k0, k0+32) of M ([valid_rows, d]) into dst[k][row].
template <class T>
__device__ __forceinline__ void simt_load_chunk(float (*dst)[SIMT_BM + SIMT_PAD], const T* __restrict__ m,
                                                unsigned valid_rows, unsigned row0, unsigned d, unsigned k0,
                                                unsigned tid) {
#pragma unroll
    for (unsigned r = 0; r < SIMT_BM * SIMT_BK / SIMT_THREADS; ++r) {
        const unsigned i = tid + r * SIMT_THREADS;
        const unsigned row = i / SIMT_BK, kk = i % SIMT_BK;
        const unsigned grow = row0 + row, gk = k0 + kk;
        dst[kk][row] = (grow < valid_rows && gk < d) ? to_float(m[(size_t)grow * d + gk]) : 0.0f;
    }
}

// acc[i][j] = Σ_k A[row0 + ty·4 + i][k] · B[col0 + tx·4 + j][k]. Every thread of the
// 256-thread block must call it (it synchronizes); `smem.b` is reused on return.
// `a_staged`: when d ≤ SIMT_BK the A tile is a single chunk; a caller that sweeps many B
// tiles against the same A rows (a codebook scan) passes true after the first call, and
// the A chunk left in `smem.a` by that call is reused instead of reloaded.
template <class T>
__device__ __forceinline__ void simt_tile_dot(SimtTileSmem& smem, const T* __restrict__ a, unsigned a_rows,
                                              unsigned row0, const T* __restrict__ b, unsigned b_rows,
                                              unsigned col0, unsigned d, float (&acc)[4][4],
                                              bool a_staged = false) {
    const unsigned tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
#pragma unroll
    for (unsigned i = 0; i < 4; ++i)
#pragma unroll
        for (unsigned j = 0; j < 4; ++j) acc[i][j] = 0.0f;
    for (unsigned k0 = 0; k0 < d; k0 += SIMT_BK) {
        if (!(a_staged && d <= SIMT_BK)) simt_load_chunk(smem.a, a, a_rows, row0, d, k0, tid);
        simt_load_chunk(smem.b, b, b_rows, col0, d, k0, tid);
        __syncthreads();
        const unsigned kc = min(SIMT_BK, d - k0);
        for (unsigned kk = 0; kk < kc; ++kk) {
            const float4 av = *reinterpret_cast<const float4*>(&smem.a[kk][ty * 4]);
            const float4 bv = *reinterpret_cast<const float4*>(&smem.b[kk][tx * 4]);
            const float ar[4] = {av.x, av.y, av.z, av.w};
            const float br[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
            for (unsigned i = 0; i < 4; ++i)
#pragma unroll
                for (unsigned j = 0; j < 4; ++j) acc[i][j] = fmaf(ar[i], br[j], acc[i][j]);
        }
        __syncthreads();
    }
}

}  // namespace tessera
