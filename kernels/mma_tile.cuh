// Tensor-core GEMM building blocks (mma.sync m16n8k16, f16/bf16 in, f32 accumulate) for
// C = A·Bᵀ with A [rows, d] and B [cols, d] row-major, d contiguous — the layout of
// latents × codebook entries and of activations × nn.Linear weights.
//
// Pieces, used by the block-level kernels (codebook.cu; later patchify, linear, attention):
//   load_tile_async   cp.async of a [rows × cols] sub-block of a row-major matrix into a
//                     padded shared-memory tile, 16 bytes per copy, zero-filled outside
//                     the valid rows/columns (plain 16-byte stores: no global read).
//   warp_mma_k16      one k=16 step of a warp's 16×(8·NT) accumulator tile: A fragments
//                     by ldmatrix.x4 from the A tile, B fragments by ldmatrix.x4 (two
//                     n8 tiles per load) from the B tile, NT mma.sync.
// Shared tiles are row-major with a row stride of (cols + MMA_PAD) elements: the 16-byte
// pad shifts consecutive rows by 4 banks, so the 8 row addresses of an ldmatrix phase hit
// distinct banks.
#pragma once
#include "tessera.cuh"

namespace tessera {

constexpr unsigned MMA_PAD = 8;  // elements (16 bytes) of padding per shared-tile row

template <class T>
struct MmaOp;
template <>
struct MmaOp<__half> {
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
        mma_m16n8k16_f16(d, a, b, d);
    }
};
template <>
struct MmaOp<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
        mma_m16n8k16_bf16(d, a, b, d);
    }
};

// Copies rows [row0, row0+ROWS) × columns [col0, col0+COLS) of `src` ([valid_rows, ld],
// row-major) into `dst` (row stride COLS_STRIDE elements) with cp.async. Columns at or past
// `valid_cols` and rows at or past `valid_rows` are zero-filled. COLS and col0 are
// multiples of 8; `valid_cols` must be a multiple of 8 too (whole 16-byte chunks).
// The copies join the calling thread's open cp.async group.
template <class T, unsigned ROWS, unsigned COLS, unsigned COLS_STRIDE>
__device__ __forceinline__ void load_tile_async(T* dst, const T* __restrict__ src, unsigned valid_rows,
                                                unsigned row0, unsigned ld, unsigned valid_cols, unsigned col0,
                                                unsigned tid, unsigned nthreads) {
    static_assert(sizeof(T) == 2 && COLS % 8 == 0 && COLS_STRIDE % 8 == 0, "16-byte chunks of 16-bit elements");
    constexpr unsigned CHUNKS_PER_ROW = COLS / 8;
    for (unsigned c = tid; c < ROWS * CHUNKS_PER_ROW; c += nthreads) {
        const unsigned r = c / CHUNKS_PER_ROW, col = (c % CHUNKS_PER_ROW) * 8;
        T* d = dst + r * COLS_STRIDE + col;
        if (row0 + r < valid_rows && col0 + col < valid_cols) {
            cp_async16(d, src + (size_t)(row0 + r) * ld + col0 + col);
        } else {
            store16(d, make_uint4(0, 0, 0, 0));
        }
    }
}

// Runtime-width variant for a tile whose width (a multiple of 8) is only known at run time,
// e.g. a whole [ROWS × d] block of latents kept resident for the entire kernel.
template <class T, unsigned ROWS>
__device__ __forceinline__ void load_rows_async(T* dst, unsigned stride, const T* __restrict__ src,
                                                unsigned valid_rows, unsigned row0, unsigned width, unsigned tid,
                                                unsigned nthreads) {
    const unsigned chunks_per_row = width / 8;
    for (unsigned c = tid; c < ROWS * chunks_per_row; c += nthreads) {
        const unsigned r = c / chunks_per_row, col = (c % chunks_per_row) * 8;
        T* d = dst + r * stride + col;
        if (row0 + r < valid_rows) {
            cp_async16(d, src + (size_t)(row0 + r) * width + col);
        } else {
            store16(d, make_uint4(0, 0, 0, 0));
        }
    }
}

// One k = 16 step for a warp: acc[j] (the 16×8 tile j, rows of A at a_tile, columns
// 8j..8j+7 of B at b_tile) += A[16 × 16] · B[8j.., 16]ᵀ. a_tile points at (row 0, k) of
// the warp's 16 rows; b_tile at (col 0, k) of its 8·NT columns. NT must be even.
template <class T, unsigned NT>
__device__ __forceinline__ void warp_mma_k16(float (&acc)[NT][4], const T* a_tile, unsigned a_stride,
                                             const T* b_tile, unsigned b_stride, unsigned lane) {
    static_assert(NT % 2 == 0, "B fragments are loaded two n8 tiles at a time");
    // A: lanes 0-15 give rows 0-15 at k 0..7, lanes 16-31 the same rows at k 8..15, which
    // yields a[0..3] in the mma order (rows 0-7/8-15 × k 0-7/8-15).
    uint32_t a[4];
    ldmatrix<4, false>(a, a_tile + (lane % 16) * a_stride + (lane / 16) * 8);
#pragma unroll
    for (unsigned j = 0; j < NT; j += 2) {
        // Matrices: (cols 8j.., k 0-7), (cols 8j.., k 8-15), (cols 8j+8.., k 0-7), (cols 8j+8.., k 8-15).
        const unsigned col = 8 * j + (lane % 8) + (lane / 16) * 8;
        const unsigned k = ((lane / 8) % 2) * 8;
        uint32_t b[4];
        ldmatrix<4, false>(b, b_tile + col * b_stride + k);
        const uint32_t b0[2] = {b[0], b[1]};
        const uint32_t b1[2] = {b[2], b[3]};
        MmaOp<T>::run(acc[j], a, b0);
        MmaOp<T>::run(acc[j + 1], a, b1);
    }
}

}  // namespace tessera
