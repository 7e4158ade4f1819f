// Patch embedding and unpatchify on the tile GEMM main loop (gemm_tile.cuh): the ViT / DiT
// input layer `Conv2d(C, D, kernel = stride = p)` + `flatten(2).transpose(1, 2)` + position
// embedding in ONE kernel (implicit im2col: no patch matrix in memory), and the final
// projection folded back into an image (the unpatchify epilogues of gemm_epilogue.cuh).
//
// Layouts (row-major, PyTorch's own):
//   image    u8 [B, H, W, C] (NHWC, as decoded), C ≤ 4, normalized on the fly:
//            x = (pixel / 255 − mean[c]) / std_dev[c], each operation rounded to f32 (exactly
//            torch's `(image.float() / 255.0 - mean) / std`), then rounded to T;
//   latents  T [B, C, H, W] (NCHW, DiT's input), used as they are;
//   weight   T [D, C, p, p] (Conv2d weight) = the GEMM's B [D, K] with K = C·p·p, column
//            kk = c·p·p + i·p + j (no transpose);
//   bias     T [D];  pos  T [T, D] (learned or the fixed 2-D sin-cos table), T = (H/p)·(W/p);
//   out      T [B, T, D], token t = hy·(W/p) + wx (the conv's flatten order):
//            out[b, t, d] = ((Σ_kk A[b·T + t, kk]·weight[d, kk]) + bias[d]) + pos[t, d]
//            (the sum in f32, then two f32 additions, rounded once to T).
//   Unpatchify: tokens T [B·T, K], weight T [p·p·C, K] (nn.Linear), bias T [p·p·C] →
//            latents T [B, C, H, W] with column (pi·p + qj)·C + c of token hy·gw + wx at
//            (c, hy·p + pi, wx·p + qj) (DiT's unpatchify), or u8 images [B, H, W, C]
//            (denormalized: see UnpatchifyImage).
//
// Kernels (each for _f32 (SimtF32, exact f32 FMAs), _f16 (MmaF16), _bf16 (MmaBf16)):
//   patchify_fused_image_<T>, patchify_fused_latents_<T>
//       grid (⌈D/128⌉, ⌈B·T/128⌉), 128 threads (PatchTile: 4 warps of 64×64, BK = 32,
//       3 stages), one 128×128 output tile per block. The A operand comes from PatchA below,
//       B (the weight) by cp.async, the epilogue (PatchEmbed) adds bias and pos[row % T].
//       `use_pos` = 0 skips the position embedding (pos is then not read).
//   unpatchify_latents_<T>, unpatchify_image_<T>
//       the same grid over (p·p·C, B·T), A = the tokens (MatrixA), epilogues
//       UnpatchifyLatents / UnpatchifyImage of gemm_epilogue.cuh.
//   patchify_unfused_im2col_image_<T>, patchify_unfused_im2col_latents_<T>,
//   patchify_unfused_pos_<T>
//       the unfused baseline (benchmarks): the patch matrix [B·T, K] written to memory (one
//       thread per element), then a GEMM with bias (gemm.cu), then out += pos (one thread per
//       element). Obviously correct; the plain variant the fused one is checked against.
//
// The A loader's thread mapping (PatchA::load), the same as load_matrix_tile's so that it
// meets the swizzle the same way: the [BM][BK] A tile is BM·CPR 16-byte chunks of VEC =
// 16/sizeof(S) consecutive k; thread tid owns chunk column c = tid % CPR of rows
// tid / CPR + it·(THREADS / CPR), it < BM·CPR / THREADS (8 rows of 4 f32, or 4 rows of 8
// f16/bf16). For each chunk it decomposes its first column k0 + c·VEC into (channel, i, j)
// once per k-tile, its row into (b, hy, wx), steps (c, i, j) with carries over the VEC
// elements, loads and converts each pixel, and writes the VEC values with one 16-byte store
// to Swizzle::chunk(r, c): eight consecutive threads fill one 128-byte line (eight distinct
// bank groups), so the stores are conflict-free; the warps read the tile exactly as they
// read a MatrixA tile. Rows past B·T and k past K are stored as zeros. The loads are plain
// (not cp.async: the values are converted on the way), so the pipeline overlaps only the
// weight's copies with the math; the gather of k-tile kt+2 is issued after the barrier of
// kt, before its math.
//
// Counters are u32 (the wrapper keeps every dimension and B·T·K < 2^31); input offsets are
// computed in 64 bits.
#include "gemm_epilogue.cuh"
#include "gemm_tile.cuh"
#include "tessera.cuh"

#define PATCH_BM 128
#define PATCH_BN 128
#define PATCH_BK 32
#define PATCH_THREADS 128
#define PATCH_STAGES 3
#define PATCH_ELEM_THREADS 256
#define PATCH_MAX_IMAGE_CHANNELS 4

namespace {

using namespace tessera::gemm;
using PatchTile = Tile<PATCH_BM, PATCH_BN, PATCH_BK, 64, 64, PATCH_STAGES>;
static_assert(PatchTile::THREADS == PATCH_THREADS, "thread count");
static_assert(PatchTile::smem_bytes<float>() <= 227 * 1024, "shared-memory budget");

// a[c] for c < 4 by selects (no dynamic indexing into the parameter block: no local copy).
__device__ __forceinline__ float pick4(const float (&a)[4], unsigned c) {
    return c == 0 ? a[0] : c == 1 ? a[1] : c == 2 ? a[2] : a[3];
}

// The normalized value of pixel (b, y, x, c) of a u8 NHWC image, in f32.
__device__ __forceinline__ float image_value(const unsigned char* __restrict__ image, unsigned b, unsigned c,
                                             unsigned y, unsigned x, const GemmParams& p) {
    const size_t at = (((size_t)b * p.height + y) * p.width + x) * p.channels + c;
    const float unit = __fdiv_rn((float)image[at], 255.0f);
    return __fdiv_rn(__fsub_rn(unit, pick4(p.mean, c)), pick4(p.std_dev, c));
}

// Element (b, c, y, x) of NCHW latents, in f32.
template <class S>
__device__ __forceinline__ float latent_value(const S* __restrict__ x, unsigned b, unsigned c, unsigned y,
                                              unsigned xx, const GemmParams& p) {
    return tessera::to_float(x[(((size_t)b * p.channels + c) * p.height + y) * p.width + xx]);
}

// A row (token) of the implicit patch matrix: its sample and the top-left pixel of its patch.
struct TokenAt {
    unsigned b, y0, x0;
    __device__ __forceinline__ TokenAt(unsigned row, const GemmParams& p) {
        b = row / p.tokens_per_sample;
        const unsigned t = row % p.tokens_per_sample;
        y0 = (t / p.grid_w) * p.patch;
        x0 = (t % p.grid_w) * p.patch;
    }
};

// A column of the implicit patch matrix: kk = c·p·p + i·p + j.
struct ColAt {
    unsigned c, i, j;
    __device__ __forceinline__ ColAt(unsigned kk, const GemmParams& p) {
        const unsigned pp = p.patch * p.patch;
        c = kk / pp;
        const unsigned rem = kk % pp;
        i = rem / p.patch;
        j = rem % p.patch;
    }
    __device__ __forceinline__ void next(unsigned patch) {
        if (++j == patch) {
            j = 0;
            if (++i == patch) {
                i = 0;
                ++c;
            }
        }
    }
};

// The value of A[row, kk] of the implicit patch matrix.
template <bool IMAGE, class In>
__device__ __forceinline__ float patch_value(const In* __restrict__ src, const TokenAt& t, const ColAt& k,
                                             const GemmParams& p) {
    if constexpr (IMAGE) {
        return image_value(src, t.b, k.c, t.y0 + k.i, t.x0 + k.j, p);
    } else {
        return latent_value(src, t.b, k.c, t.y0 + k.i, t.x0 + k.j, p);
    }
}

// The A loader of the patch embedding (the hook of gemm_tile.cuh's main loop; see the header
// comment for the thread mapping). In = unsigned char (image) or S (latents).
template <class S, class TileT, bool IMAGE, class In>
struct PatchA {
    const In* __restrict__ src;
    const GemmParams& p;
    __device__ __forceinline__ void load(S* dst, unsigned row0, unsigned k0, unsigned tid) const {
        using Sw = Swizzle<S, TileT::BK>;
        constexpr unsigned CHUNKS = TileT::BM * Sw::CPR;
        static_assert(CHUNKS % TileT::THREADS == 0 && TileT::THREADS % Sw::CPR == 0, "fixed chunk column");
        const unsigned c = tid % Sw::CPR;
        const unsigned gk = k0 + c * Sw::VEC;
        const ColAt first(gk, p);
#pragma unroll
        for (unsigned it = 0; it < CHUNKS / TileT::THREADS; ++it) {
            const unsigned r = (tid + it * TileT::THREADS) / Sw::CPR;
            const unsigned grow = row0 + r;
            S v[Sw::VEC];
            if (grow < p.m) {
                const TokenAt t(grow, p);
                ColAt k = first;
#pragma unroll
                for (unsigned e = 0; e < Sw::VEC; ++e) {
                    v[e] = tessera::from_float<S>(gk + e < p.k ? patch_value<IMAGE>(src, t, k, p) : 0.0f);
                    k.next(p.patch);
                }
            } else {
#pragma unroll
                for (unsigned e = 0; e < Sw::VEC; ++e) v[e] = tessera::from_float<S>(0.0f);
            }
            tessera::store16(dst + Sw::chunk(r, c) * Sw::VEC, *reinterpret_cast<const uint4*>(v));
        }
    }
    __device__ __forceinline__ const S* tile(const S* stage, unsigned) const { return stage; }
};

// The patch embedding's epilogue: out[row, col] = (acc + bias[col]) + pos[row % T, col],
// row-major [B·T, D] in S.
template <class S>
struct PatchEmbed {
    const S* __restrict__ bias;
    const S* __restrict__ pos;
    S* __restrict__ out;
    bool use_pos;
    const GemmParams& p;
    template <unsigned V>
    __device__ __forceinline__ void store(unsigned row, unsigned col, float (&v)[V], unsigned count) const {
        const S* pr = pos + (size_t)(row % p.tokens_per_sample) * p.n + col;
#pragma unroll
        for (unsigned e = 0; e < V; ++e) {
            if (e < count) {
                float x = __fadd_rn(v[e], tessera::to_float(bias[col + e]));
                if (use_pos) x = __fadd_rn(x, tessera::to_float(pr[e]));
                v[e] = x;
            }
        }
        // A full aligned vector in one 16-byte store; the right edge element by element
        // (unrolled with a mask, so that v stays in registers).
        S* dst = out + (size_t)row * p.n + col;
        if (count == V && (reinterpret_cast<uintptr_t>(dst) & 15u) == 0) {
            store_vec<S, V>(dst, v, V);
        } else {
#pragma unroll
            for (unsigned e = 0; e < V; ++e) {
                if (e < count) dst[e] = tessera::from_float<S>(v[e]);
            }
        }
    }
};

// One 128×128 output tile: the main loop over k-tiles with `a`, then the staged store.
template <class Op, class S, unsigned V, class ALoader, class Epi>
__device__ __forceinline__ void tile_gemm(const ALoader& a, const S* __restrict__ w, const Epi& epi,
                                          const GemmParams& p) {
    TESSERA_DYNAMIC_SMEM(S, smem);
    const unsigned row0 = blockIdx.y * PatchTile::BM, col0 = blockIdx.x * PatchTile::BN;
    float acc[PatchTile::MI][PatchTile::NJ][4];
    const unsigned ktiles = (p.k + PatchTile::BK - 1) / PatchTile::BK;
    mainloop<PatchTile, Op, S>(acc, smem, a, w, p.n, p.k, rows_vectorizable(w, p.k), row0, col0, 0, ktiles);
    store_tile<PatchTile, V>(acc, reinterpret_cast<float*>(smem), epi, row0, col0, p.m, p.n);
}

template <class Op, class S, bool IMAGE, class In>
__device__ __forceinline__ void patchify(const In* __restrict__ src, const S* __restrict__ w,
                                         const S* __restrict__ bias, const S* __restrict__ pos, S* __restrict__ out,
                                         unsigned use_pos, const GemmParams& p) {
    const PatchA<S, PatchTile, IMAGE, In> a{src, p};
    const PatchEmbed<S> epi{bias, pos, out, use_pos != 0, p};
    tile_gemm<Op, S, 16 / sizeof(S)>(a, w, epi, p);
}

template <class Op, class S, class Epi>
__device__ __forceinline__ void unpatchify(const S* __restrict__ tokens, const S* __restrict__ w, const Epi& epi,
                                           const GemmParams& p) {
    const MatrixA<S, PatchTile> a{tokens, p.m, p.k, rows_vectorizable(tokens, p.k)};
    tile_gemm<Op, S, 16 / sizeof(S)>(a, w, epi, p);
}

// The unfused baseline: one thread per element of the patch matrix [m, k].
template <bool IMAGE, class In, class S>
__device__ __forceinline__ void im2col(const In* __restrict__ src, S* __restrict__ cols, const GemmParams& p) {
    const size_t i = (size_t)blockIdx.x * PATCH_ELEM_THREADS + threadIdx.x;
    if (i >= (size_t)p.m * p.k) return;
    const unsigned row = (unsigned)(i / p.k), kk = (unsigned)(i % p.k);
    cols[i] = tessera::from_float<S>(patch_value<IMAGE>(src, TokenAt(row, p), ColAt(kk, p), p));
}

// The unfused baseline: out[row, col] += pos[row % T, col], one thread per element of [m, n].
template <class S>
__device__ __forceinline__ void add_pos(S* __restrict__ out, const S* __restrict__ pos, const GemmParams& p) {
    const size_t i = (size_t)blockIdx.x * PATCH_ELEM_THREADS + threadIdx.x;
    if (i >= (size_t)p.m * p.n) return;
    const unsigned row = (unsigned)(i / p.n), col = (unsigned)(i % p.n);
    const float v = tessera::to_float(out[i]);
    out[i] = tessera::from_float<S>(
        __fadd_rn(v, tessera::to_float(pos[(size_t)(row % p.tokens_per_sample) * p.n + col])));
}

}  // namespace

// clang-format off
#define PATCHIFY_KERNELS(OP, S, SUFFIX) \
    TESSERA_KERNEL void __launch_bounds__(PATCH_THREADS) patchify_fused_image_##SUFFIX(const unsigned char* image, const S* w, const S* bias, const S* pos, S* out, unsigned use_pos, GemmParams p) { patchify<OP, S, true>(image, w, bias, pos, out, use_pos, p); } \
    TESSERA_KERNEL void __launch_bounds__(PATCH_THREADS) patchify_fused_latents_##SUFFIX(const S* x, const S* w, const S* bias, const S* pos, S* out, unsigned use_pos, GemmParams p) { patchify<OP, S, false>(x, w, bias, pos, out, use_pos, p); } \
    TESSERA_KERNEL void __launch_bounds__(PATCH_THREADS) unpatchify_latents_##SUFFIX(const S* tokens, const S* w, const S* bias, S* out, GemmParams p) { unpatchify<OP, S>(tokens, w, UnpatchifyLatents<S, S>{bias, out, p}, p); } \
    TESSERA_KERNEL void __launch_bounds__(PATCH_THREADS) unpatchify_image_##SUFFIX(const S* tokens, const S* w, const S* bias, unsigned char* out, GemmParams p) { unpatchify<OP, S>(tokens, w, UnpatchifyImage<S>{bias, out, p}, p); } \
    TESSERA_KERNEL void __launch_bounds__(PATCH_ELEM_THREADS) patchify_unfused_im2col_image_##SUFFIX(const unsigned char* image, S* cols, GemmParams p) { im2col<true>(image, cols, p); } \
    TESSERA_KERNEL void __launch_bounds__(PATCH_ELEM_THREADS) patchify_unfused_im2col_latents_##SUFFIX(const S* x, S* cols, GemmParams p) { im2col<false>(x, cols, p); } \
    TESSERA_KERNEL void __launch_bounds__(PATCH_ELEM_THREADS) patchify_unfused_pos_##SUFFIX(S* out, const S* pos, GemmParams p) { add_pos(out, pos, p); }
// clang-format on

PATCHIFY_KERNELS(SimtF32, float, f32)
PATCHIFY_KERNELS(MmaF16, tessera::f16, f16)
PATCHIFY_KERNELS(MmaBf16, tessera::bf16, bf16)
