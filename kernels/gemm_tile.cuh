// The tile GEMM main loop, written once: C[BM × BN] = A[BM × K] · B[BN × K]ᵀ for a block,
// with A and B row-major and K contiguous (activations × nn.Linear weights, latents ×
// codebook entries). Every GEMM-shaped kernel of tessera (gemm.cu, patchify.cu, the
// codebook search) is this loop plus two hooks:
//   - the A loader: how a BM × BK tile of A reaches shared memory (a plain matrix by
//     cp.async, an image's patches gathered and normalized, a tile already resident);
//   - the epilogue: what happens to the accumulators (bias, GELU, SiLU, gated residual,
//     a fold into another layout, an argmin).
//
// Traits (`Tile`): block tile BM × BN, k-step BK, warp tile WM × WN, STAGES of the cp.async
// pipeline. Warps are laid out WARPS_M × WARPS_N over the block tile; warp w owns rows
// (w / WARPS_N)·WM.. and columns (w % WARPS_N)·WN.. .
//
// Accumulator layout, the same for every math path so that every epilogue serves all of
// them: a warp holds acc[MI = WM/16][NJ = WN/8][4], and lane (g = lane/4, t = lane%4) holds
// acc[i][j][2h + c] = C(16i + g + 8h, 8j + 2t + c) of its warp tile (the mma.sync C layout).
// Math paths (`MathOp`), chosen by the smem element type S and a tag:
//   MmaF16 / MmaBf16  mma.sync m16n8k16, fragments by ldmatrix.x4 (A: one per 16 rows; B: one
//                     per two n8 tiles);
//   MmaTf32           f32 in shared memory, mma.sync m16n8k8.tf32, operands rounded by
//                     cvt.rna (opt-in: TF32 keeps 10 mantissa bits);
//   SimtF32           f32 FMAs on CUDA cores in the same accumulator layout (exact f32).
//
// Shared memory: STAGES × (A tile [BM][BK] + B tile [BN][BK]) of S, rows unpadded and
// 16-byte chunks XOR-swizzled: element (r, k) lives at r·BK + ((k/VEC) ^ sw(r))·VEC + k%VEC
// with VEC = 16/sizeof(S) and sw(r) = (r / RPL) % CPR (CPR chunks per row, RPL rows per
// 128-byte line). Eight consecutive rows then put any one logical chunk in eight distinct
// 16-byte bank groups, so ldmatrix phases, the SIMT/TF32 operand reads (eight rows, one
// chunk) and the cp.async stores (eight consecutive chunks of one line) are conflict-free.
//
// Pipeline: STAGES-1 k-tiles in flight; one __syncthreads per k-tile. Before k-tile kt the
// thread has committed STAGES-1+kt groups; cp_async_wait<STAGES-2> leaves k-tile kt's
// group complete, the barrier publishes it to the block and also proves every warp is done
// with the stage that the next load overwrites ((kt-1) % STAGES).
//
// Edges: rows past M/N and k past K are zero-filled in shared memory, so a ragged tile is
// computed as if padded with zeros; K = 0 leaves the accumulators at zero. A loader takes
// the 16-byte cp.async path only when K is a multiple of VEC and the rows are 16-byte
// aligned; otherwise it copies element by element (same tile, same swizzle).
#pragma once
#include "mma_tile.cuh"
#include "tessera.cuh"

namespace tessera {
namespace gemm {

template <unsigned BM_, unsigned BN_, unsigned BK_, unsigned WM_, unsigned WN_, unsigned STAGES_>
struct Tile {
    static constexpr unsigned BM = BM_, BN = BN_, BK = BK_, WM = WM_, WN = WN_, STAGES = STAGES_;
    static constexpr unsigned WARPS_M = BM / WM, WARPS_N = BN / WN, WARPS = WARPS_M * WARPS_N;
    static constexpr unsigned THREADS = 32 * WARPS;
    static constexpr unsigned MI = WM / 16, NJ = WN / 8;
    static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 16 == 0, "warp tiles of whole mma tiles");
    static_assert(STAGES >= 2, "a pipeline needs at least two stages");
    // Bytes of shared memory for S elements: the pipeline, or the epilogue's staging area
    // (WARPS × 16 rows × (WN + 8) f32) reusing it, whichever is larger.
    template <class S>
    static constexpr unsigned smem_bytes() {
        constexpr unsigned pipe = STAGES * (BM + BN) * BK * (unsigned)sizeof(S);
        constexpr unsigned stage = WARPS * 16 * (WN + 8) * 4;
        return pipe > stage ? pipe : stage;
    }
};

// ---- the swizzled tile ---------------------------------------------------------------------------------------
template <class S, unsigned BK>
struct Swizzle {
    static constexpr unsigned VEC = 16 / sizeof(S);  // elements per 16-byte chunk
    static constexpr unsigned CPR = BK / VEC;        // chunks per row
    static_assert(BK % VEC == 0 && (CPR == 2 || CPR == 4 || CPR == 8), "rows of 2, 4 or 8 chunks");
    static constexpr unsigned RPL = 8 / CPR;  // rows per 128-byte line
    static __device__ __forceinline__ unsigned chunk(unsigned r, unsigned c) {
        return r * CPR + (c ^ ((r / RPL) % CPR));
    }
    // Offset (in elements) of element (r, k) of a tile.
    static __device__ __forceinline__ unsigned at(unsigned r, unsigned k) {
        return chunk(r, k / VEC) * VEC + k % VEC;
    }
};

// ---- loaders ------------------------------------------------------------------------------------------------
// An A loader is the hook of the main loop for the A operand. It provides
//   void load(S* stage, unsigned row0, unsigned k0, unsigned tid) const
//       fill the stage's A tile [BM][BK] (swizzled, see Swizzle) with rows row0.. and k0..
//       (cp.async joins the calling thread's open group; plain stores are fine too);
//   const S* tile(const S* stage, unsigned kt) const
//       the swizzled [BM][BK] tile the warps read for k-tile kt: normally `stage`; a loader
//       that keeps A resident for a whole kernel returns its own copy and loads nothing.
// Every thread of the block calls both.
template <class A, class B>
struct SameType {
    static constexpr bool value = false;
};
template <class A>
struct SameType<A, A> {
    static constexpr bool value = true;
};

// Copies rows [row0, row0 + ROWS) × k [k0, k0 + BK) of a row-major matrix src [rows, ld]
// of T into a swizzled tile of S; out-of-range rows and k read as zero. `vector_ok`: T is S,
// ld % VEC == 0 and src is 16-byte aligned (uniform over the block): 16-byte cp.async per
// chunk. Otherwise each thread reads its chunk's elements one by one (converting T to S)
// and stores the chunk with one 16-byte store. Thread tid copies chunks tid, tid + THREADS,
// …: consecutive lanes take consecutive chunks of a row.
template <class S, unsigned ROWS, unsigned BK, unsigned THREADS, class T = S>
__device__ __forceinline__ void load_matrix_tile(S* dst, const T* __restrict__ src, unsigned rows, unsigned ld,
                                                 unsigned cols, unsigned row0, unsigned k0, bool vector_ok,
                                                 unsigned tid) {
    using Sw = Swizzle<S, BK>;
    constexpr unsigned CHUNKS = ROWS * Sw::CPR;
    static_assert(CHUNKS % THREADS == 0, "whole chunks per thread");
#pragma unroll
    for (unsigned it = 0; it < CHUNKS / THREADS; ++it) {
        const unsigned i = tid + it * THREADS;
        const unsigned r = i / Sw::CPR, c = i % Sw::CPR;
        const unsigned grow = row0 + r, gk = k0 + c * Sw::VEC;
        S* d = dst + Sw::chunk(r, c) * Sw::VEC;
        if (SameType<S, T>::value && vector_ok) {
            if (grow < rows && gk < cols) {
                cp_async16(d, src + (size_t)grow * ld + gk);
            } else {
                store16(d, make_uint4(0, 0, 0, 0));
            }
        } else {
            S v[Sw::VEC];
#pragma unroll
            for (unsigned e = 0; e < Sw::VEC; ++e) {
                v[e] = from_float<S>((grow < rows && gk + e < cols) ? to_float(src[(size_t)grow * ld + gk + e]) : 0.0f);
            }
            store16(d, *reinterpret_cast<const uint4*>(v));
        }
    }
}

// The A loader of a plain row-major matrix [m, k] of T (lda = k), staged per k-tile.
template <class S, class TileT, class T = S>
struct MatrixA {
    const T* __restrict__ a;
    unsigned m, k;
    bool vector_ok;
    __device__ __forceinline__ void load(S* dst, unsigned row0, unsigned k0, unsigned tid) const {
        load_matrix_tile<S, TileT::BM, TileT::BK, TileT::THREADS>(dst, a, m, k, k, row0, k0, vector_ok, tid);
    }
    // Where the warps read k-tile `kt` from: the stage it was loaded into.
    __device__ __forceinline__ const S* tile(const S* stage, unsigned kt) const { return stage; }
};

// The A loader of a block whose BM rows of A stay in shared memory for the whole kernel
// (a codebook search sweeps every code tile against the same latents): `tiles` holds the
// k-tiles 0, 1, … one after the other, each a swizzled [BM][BK] tile; `load` loads nothing.
template <class S, class TileT>
struct ResidentA {
    const S* tiles;
    __device__ __forceinline__ void load(S*, unsigned, unsigned, unsigned) const {}
    __device__ __forceinline__ const S* tile(const S*, unsigned kt) const { return tiles + kt * TileT::BM * TileT::BK; }
    // Fills `dst` with rows row0.. of a [rows, k] matrix of T, every k-tile, in the calling
    // thread's open cp.async group: committed before the first mainloop, that loop's first
    // wait and barrier cover it.
    template <class T>
    static __device__ __forceinline__ void fill(S* dst, const T* __restrict__ a, unsigned rows, unsigned k,
                                                unsigned row0, bool vector_ok, unsigned tid) {
        const unsigned ktiles = (k + TileT::BK - 1) / TileT::BK;
        for (unsigned kt = 0; kt < ktiles; ++kt) {
            load_matrix_tile<S, TileT::BM, TileT::BK, TileT::THREADS>(dst + kt * TileT::BM * TileT::BK, a, rows, k, k,
                                                                      row0, kt * TileT::BK, vector_ok, tid);
        }
    }
};

// Whether a row-major matrix with row length `ld` starting at `p` can be copied in 16-byte chunks.
template <class S>
__device__ __forceinline__ bool rows_vectorizable(const S* p, unsigned ld) {
    return (ld % (16 / sizeof(S))) == 0 && (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// ---- math paths ----------------------------------------------------------------------------------------------
struct MmaF16 {};
struct MmaBf16 {};
struct MmaTf32 {};
struct SimtF32 {};

template <class Op, class S, class TileT>
struct WarpMath;

// Tensor cores, 16-bit inputs: per k16 step, ldmatrix.x4 A fragments for the MI row tiles,
// then per pair of n8 tiles one ldmatrix.x4 of B and 2·MI mma.sync.
template <class S, class TileT>
struct WarpMma16 {
    using Sw = Swizzle<S, TileT::BK>;
    // a_tile rows start at the warp's first row; b_tile rows at its first column.
    static __device__ __forceinline__ void step(float (&acc)[TileT::MI][TileT::NJ][4], const S* a_tile,
                                                const S* b_tile, unsigned a_row0, unsigned b_row0, unsigned lane) {
#pragma unroll
        for (unsigned kk = 0; kk < TileT::BK; kk += 16) {
            uint32_t a[TileT::MI][4];
#pragma unroll
            for (unsigned i = 0; i < TileT::MI; ++i) {
                // Lanes 0-15: rows 0-15 at k kk..kk+7; lanes 16-31: the same rows at kk+8.
                const unsigned r = a_row0 + 16 * i + lane % 16;
                ldmatrix<4, false>(a[i], a_tile + Sw::at(r, kk + (lane / 16) * 8));
            }
#pragma unroll
            for (unsigned j = 0; j < TileT::NJ; j += 2) {
                // Matrices (cols 8j.., k lo), (cols 8j.., k hi), (cols 8j+8.., k lo), (cols 8j+8.., k hi).
                const unsigned r = b_row0 + 8 * j + lane % 8 + (lane / 16) * 8;
                uint32_t b[4];
                ldmatrix<4, false>(b, b_tile + Sw::at(r, kk + ((lane / 8) % 2) * 8));
                const uint32_t b0[2] = {b[0], b[1]};
                const uint32_t b1[2] = {b[2], b[3]};
#pragma unroll
                for (unsigned i = 0; i < TileT::MI; ++i) {
                    MmaOp<S>::run(acc[i][j], a[i], b0);
                    MmaOp<S>::run(acc[i][j + 1], a[i], b1);
                }
            }
        }
    }
};
template <class TileT>
struct WarpMath<MmaF16, __half, TileT> : WarpMma16<__half, TileT> {};
template <class TileT>
struct WarpMath<MmaBf16, __nv_bfloat16, TileT> : WarpMma16<__nv_bfloat16, TileT> {};

// CUDA cores, f32: lane (g, t) reads rows 16i + g (+8) of A and rows 8j + 2t (+1) of B at
// each k (8 distinct rows per warp and load: conflict-free under the swizzle) and does
// 4·MI·NJ exact FMAs.
template <class TileT>
struct WarpMath<SimtF32, float, TileT> {
    using Sw = Swizzle<float, TileT::BK>;
    static __device__ __forceinline__ void step(float (&acc)[TileT::MI][TileT::NJ][4], const float* a_tile,
                                                const float* b_tile, unsigned a_row0, unsigned b_row0,
                                                unsigned lane) {
        const unsigned g = lane / 4, t = lane % 4;
#pragma unroll 4
        for (unsigned kk = 0; kk < TileT::BK; ++kk) {
            float a[TileT::MI][2], b[TileT::NJ][2];
#pragma unroll
            for (unsigned i = 0; i < TileT::MI; ++i)
#pragma unroll
                for (unsigned h = 0; h < 2; ++h) a[i][h] = a_tile[Sw::at(a_row0 + 16 * i + g + 8 * h, kk)];
#pragma unroll
            for (unsigned j = 0; j < TileT::NJ; ++j)
#pragma unroll
                for (unsigned c = 0; c < 2; ++c) b[j][c] = b_tile[Sw::at(b_row0 + 8 * j + 2 * t + c, kk)];
#pragma unroll
            for (unsigned i = 0; i < TileT::MI; ++i)
#pragma unroll
                for (unsigned j = 0; j < TileT::NJ; ++j)
#pragma unroll
                    for (unsigned h = 0; h < 2; ++h)
#pragma unroll
                        for (unsigned c = 0; c < 2; ++c)
                            acc[i][j][2 * h + c] = __fmaf_rn(a[i][h], b[j][c], acc[i][j][2 * h + c]);
        }
    }
};

// Tensor cores, TF32 (f32 tiles): per k8 step, A fragments (g, t), (g+8, t), (g, t+4),
// (g+8, t+4) and B fragments (n g, k t), (n g, k t+4), each rounded by cvt.rna.tf32.
template <class TileT>
struct WarpMath<MmaTf32, float, TileT> {
    using Sw = Swizzle<float, TileT::BK>;
    static __device__ __forceinline__ void step(float (&acc)[TileT::MI][TileT::NJ][4], const float* a_tile,
                                                const float* b_tile, unsigned a_row0, unsigned b_row0,
                                                unsigned lane) {
        const unsigned g = lane / 4, t = lane % 4;
#pragma unroll
        for (unsigned kk = 0; kk < TileT::BK; kk += 8) {
            uint32_t a[TileT::MI][4];
#pragma unroll
            for (unsigned i = 0; i < TileT::MI; ++i) {
                const unsigned r = a_row0 + 16 * i + g;
                a[i][0] = f32_to_tf32(a_tile[Sw::at(r, kk + t)]);
                a[i][1] = f32_to_tf32(a_tile[Sw::at(r + 8, kk + t)]);
                a[i][2] = f32_to_tf32(a_tile[Sw::at(r, kk + t + 4)]);
                a[i][3] = f32_to_tf32(a_tile[Sw::at(r + 8, kk + t + 4)]);
            }
#pragma unroll
            for (unsigned j = 0; j < TileT::NJ; ++j) {
                const unsigned r = b_row0 + 8 * j + g;
                const uint32_t b[2] = {f32_to_tf32(b_tile[Sw::at(r, kk + t)]),
                                       f32_to_tf32(b_tile[Sw::at(r, kk + t + 4)])};
#pragma unroll
                for (unsigned i = 0; i < TileT::MI; ++i) mma_m16n8k8_tf32(acc[i][j], a[i], b, acc[i][j]);
            }
        }
    }
};

// ---- the main loop -------------------------------------------------------------------------------------------
template <class TileT>
__device__ __forceinline__ void zero(float (&acc)[TileT::MI][TileT::NJ][4]) {
#pragma unroll
    for (unsigned i = 0; i < TileT::MI; ++i)
#pragma unroll
        for (unsigned j = 0; j < TileT::NJ; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;
}

// Runs k-tiles [kt_begin, kt_end) of the block's tile (A rows from row0, B rows from col0
// of b [b_rows, k], row-major, of TB — converted to S when the types differ) through the
// pipeline into acc (zeroed here). `smem` holds STAGES × (A tile, B tile).
// Every thread of the block calls it; on return every stage is drained and the block has
// passed a barrier, so the caller may reuse `smem`.
template <class TileT, class Op, class S, class ALoader, class TB>
__device__ __forceinline__ void mainloop(float (&acc)[TileT::MI][TileT::NJ][4], S* smem, const ALoader& a_loader,
                                         const TB* __restrict__ b, unsigned b_rows, unsigned k, bool b_vector_ok,
                                         unsigned row0, unsigned col0, unsigned kt_begin, unsigned kt_end) {
    constexpr unsigned A_ELEMS = TileT::BM * TileT::BK, B_ELEMS = TileT::BN * TileT::BK;
    constexpr unsigned STAGE_ELEMS = A_ELEMS + B_ELEMS;
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const unsigned a_row0 = (warp / TileT::WARPS_N) * TileT::WM, b_row0 = (warp % TileT::WARPS_N) * TileT::WN;
    zero<TileT>(acc);
    const unsigned ktiles = kt_end > kt_begin ? kt_end - kt_begin : 0;
    auto issue = [&](unsigned s) {
        S* stage = smem + (s % TileT::STAGES) * STAGE_ELEMS;
        const unsigned k0 = (kt_begin + s) * TileT::BK;
        a_loader.load(stage, row0, k0, tid);
        load_matrix_tile<S, TileT::BN, TileT::BK, TileT::THREADS>(stage + A_ELEMS, b, b_rows, k, k, col0, k0,
                                                                  b_vector_ok, tid);
    };
#pragma unroll
    for (unsigned s = 0; s + 1 < TileT::STAGES; ++s) {
        if (s < ktiles) issue(s);
        cp_async_commit();  // empty groups keep the count uniform
    }
    for (unsigned kt = 0; kt < ktiles; ++kt) {
        cp_async_wait<TileT::STAGES - 2>();
        __syncthreads();
        if (kt + TileT::STAGES - 1 < ktiles) issue(kt + TileT::STAGES - 1);
        cp_async_commit();
        S* stage = smem + (kt % TileT::STAGES) * STAGE_ELEMS;
        WarpMath<Op, S, TileT>::step(acc, a_loader.tile(stage, kt_begin + kt), stage + A_ELEMS, a_row0, b_row0, lane);
    }
    cp_async_wait<0>();
    __syncthreads();
}

// ---- the staged store epilogue -------------------------------------------------------------------------------
// Writes the block's accumulators through shared memory so that global stores are 16-byte
// vectors along rows: warp by warp, 16 rows at a time (row tile i), the warp's 16 × WN f32
// go to its staging area (row stride WN + 8 words: the float2 stores of a half-warp hit 32
// distinct banks), then each lane takes vectors of V = 16 / sizeof(Out) consecutive columns
// of one row (a quarter-warp covers one row: its 16-byte reads and global stores are
// contiguous) and hands them to `epi.store(row, col, v, count)` with count = the valid
// columns (< V only at the right edge of the matrix). `smem` must be free (after mainloop).
template <class TileT, unsigned V, class Epi>
__device__ __forceinline__ void store_tile(const float (&acc)[TileT::MI][TileT::NJ][4], float* smem,
                                           const Epi& epi, unsigned row0, unsigned col0, unsigned m, unsigned n) {
    static_assert(V == 4 || V == 8 || V == 16, "16-byte vectors of f32, 16-bit or 8-bit outputs");
    constexpr unsigned STRIDE = TileT::WN + 8;
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32, g = lane / 4, t = lane % 4;
    const unsigned wrow0 = row0 + (warp / TileT::WARPS_N) * TileT::WM;
    const unsigned wcol0 = col0 + (warp % TileT::WARPS_N) * TileT::WN;
    float* st = smem + warp * 16 * STRIDE;
    constexpr unsigned VECS_PER_ROW = TileT::WN / V;
    constexpr unsigned CHUNKS = V / 4;  // float4 reads per vector
#pragma unroll
    for (unsigned i = 0; i < TileT::MI; ++i) {  // unrolled: acc stays in registers
#pragma unroll
        for (unsigned j = 0; j < TileT::NJ; ++j) {
#pragma unroll
            for (unsigned h = 0; h < 2; ++h) {
                float2 p = make_float2(acc[i][j][2 * h], acc[i][j][2 * h + 1]);
                *reinterpret_cast<float2*>(st + (g + 8 * h) * STRIDE + 8 * j + 2 * t) = p;
            }
        }
        __syncwarp();
        for (unsigned q = lane; q < 16 * VECS_PER_ROW; q += 32) {
            const unsigned r = q / VECS_PER_ROW, vcol = (q % VECS_PER_ROW) * V;
            const unsigned row = wrow0 + 16 * i + r, col = wcol0 + vcol;
            float v[V];
            const float* src = st + r * STRIDE + vcol;
            if constexpr (CHUNKS == 2) {
                // The second half of a quarter-warp's lanes reads its two chunks in the other
                // order, so that the eight lanes of each read hit eight distinct bank groups
                // (their vectors are 32 bytes apart). Addresses are selected, not indices:
                // v stays in registers.
                const bool swap = (q % 8) >= 4;
                const float4 first = *reinterpret_cast<const float4*>(src + (swap ? 4 : 0));
                const float4 second = *reinterpret_cast<const float4*>(src + (swap ? 0 : 4));
                const float4 lo = swap ? second : first, hi = swap ? first : second;
                v[0] = lo.x, v[1] = lo.y, v[2] = lo.z, v[3] = lo.w;
                v[4] = hi.x, v[5] = hi.y, v[6] = hi.z, v[7] = hi.w;
            } else {
#pragma unroll
                for (unsigned u = 0; u < CHUNKS; ++u) {
                    const float4 x = *reinterpret_cast<const float4*>(src + 4 * u);
                    v[4 * u] = x.x, v[4 * u + 1] = x.y, v[4 * u + 2] = x.z, v[4 * u + 3] = x.w;
                }
            }
            if (row < m && col < n) epi.store(row, col, v, min(V, n - col));
        }
        __syncwarp();
    }
}

}  // namespace gemm
}  // namespace tessera
