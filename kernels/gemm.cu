// Linear layers: Y = X·Wᵀ (+ epilogue) with X [m, k] row-major (tokens × features) and
// W [n, k] (nn.Linear's weight layout), on the tile main loop of gemm_tile.cuh.
//
// Layouts: x [m, k], w [n, k], bias [n], all in T; out [m, n] row-major in T or f32
// (`_f32out`); gated residual: gate [B, ·] with row stride `gate_stride` (a view into the
// adaLN modulation's [B, 6D] output), row r of x belongs to sample r / tokens_per_sample,
// and `out` holds the residual on entry (out = out + gate ⊙ (x·Wᵀ + bias), in place).
//
// Epilogues (one symbol per (dtype, epilogue); `EPI` below):
//   none        out = acc
//   bias        out = acc + bias
//   bias_gelu   out = gelu_tanh(acc + bias)   (0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))))
//   bias_silu   out = silu(acc + bias)        (x / (1 + e^(−x)))
//   gated       out = out + gate[b] ⊙ (acc + bias)
//
// Kernels:
//   gemm_<epi>_<T>          the direct path, one 128×128 output tile per block
//                           (GemmLarge: 4 warps of 64×64, BK = 32, 3 cp.async stages);
//                           f16/bf16 on tensor cores (mma.sync m16n8k16), f32 on CUDA cores;
//   gemm_tf32_<epi>_f32     f32 on tensor cores with TF32 operands (opt-in);
//   gemm_f32out_<epi>_<T>   f16/bf16 in, f32 out;
//   gemm_skinny_<T>,        the skinny path (few rows: the adaLN modulation GEMM has m =
//   gemm_tf32_skinny_f32    batch size): 64×64 tiles (4 warps of 32×32, 4 stages) and split-K,
//                           grid.z = splits; split z writes the f32 partial sums of its
//                           k-tiles to workspace[z][m][n];
//   gemm_reduce_<epi>_<T>,  sums the splits in order z = 0, 1, … (deterministic), applies
//   gemm_reduce_f32out_…    the epilogue, writes out; one thread per 4 columns.
//   gemm_unfused_<op>_<T>   the unfused baseline's elementwise kernels (bias, gelu, silu,
//                           gated) that follow a plain GEMM; benchmarks only.
//
// Grid of the tiled kernels: x = column tiles, y = row tiles (blocks of one row tile run
// together and share its A rows in L2), z = splits. Counters are u32; the wrapper keeps
// m, n, k < 2^31 and the element offsets (row · ld) are computed in 64 bits.
#include "gemm_epilogue.cuh"
#include "gemm_tile.cuh"
#include "tessera.cuh"

#define GEMM_BM 128
#define GEMM_BN 128
#define GEMM_BK 32
#define GEMM_THREADS 128
#define SKINNY_BM 64
#define SKINNY_BN 64
#define SKINNY_BK 32
#define SKINNY_THREADS 128
#define GEMM_STAGES 3
#define SKINNY_STAGES 4
#define REDUCE_THREADS 256

namespace {

using namespace tessera::gemm;
using GemmLarge = Tile<GEMM_BM, GEMM_BN, GEMM_BK, 64, 64, GEMM_STAGES>;
using GemmSkinny = Tile<SKINNY_BM, SKINNY_BN, SKINNY_BK, 32, 32, SKINNY_STAGES>;
static_assert(GemmLarge::THREADS == GEMM_THREADS && GemmSkinny::THREADS == SKINNY_THREADS, "thread counts");
static_assert(GemmLarge::smem_bytes<float>() <= 227 * 1024 && GemmSkinny::smem_bytes<float>() <= 163 * 1024,
              "shared-memory budgets");

// One output tile of the direct path: main loop, then the staged store through `epi`.
template <class Op, class S, class Out, class Epi>
__device__ __forceinline__ void gemm_direct(const S* __restrict__ x, const S* __restrict__ w, const Epi& epi,
                                            const GemmParams& p) {
    TESSERA_DYNAMIC_SMEM(S, smem);
    const unsigned row0 = blockIdx.y * GemmLarge::BM, col0 = blockIdx.x * GemmLarge::BN;
    const MatrixA<S, GemmLarge> a{x, p.m, p.k, rows_vectorizable(x, p.k)};
    float acc[GemmLarge::MI][GemmLarge::NJ][4];
    const unsigned ktiles = (p.k + GemmLarge::BK - 1) / GemmLarge::BK;
    mainloop<GemmLarge, Op, S>(acc, smem, a, w, p.n, p.k, rows_vectorizable(w, p.k), row0, col0, 0, ktiles);
    store_tile<GemmLarge, 16 / sizeof(Out)>(acc, reinterpret_cast<float*>(smem), epi, row0, col0, p.m, p.n);
}

// One split of one output tile of the skinny path: k-tiles [z·kt_per_split, …) into f32
// partial sums at workspace[z].
template <class Op, class S>
__device__ __forceinline__ void gemm_skinny(const S* __restrict__ x, const S* __restrict__ w,
                                            float* __restrict__ workspace, const GemmParams& p) {
    TESSERA_DYNAMIC_SMEM(S, smem);
    const unsigned row0 = blockIdx.y * GemmSkinny::BM, col0 = blockIdx.x * GemmSkinny::BN;
    const MatrixA<S, GemmSkinny> a{x, p.m, p.k, rows_vectorizable(x, p.k)};
    float acc[GemmSkinny::MI][GemmSkinny::NJ][4];
    const unsigned ktiles = (p.k + GemmSkinny::BK - 1) / GemmSkinny::BK;
    const unsigned kt_begin = min(ktiles, blockIdx.z * p.kt_per_split);
    const unsigned kt_end = min(ktiles, kt_begin + p.kt_per_split);
    mainloop<GemmSkinny, Op, S>(acc, smem, a, w, p.n, p.k, rows_vectorizable(w, p.k), row0, col0, kt_begin, kt_end);
    const RowMajor<float, float, EpiKind::None> part{nullptr, nullptr, workspace + (size_t)blockIdx.z * p.m * p.n,
                                                     p};
    store_tile<GemmSkinny, 4>(acc, reinterpret_cast<float*>(smem), part, row0, col0, p.m, p.n);
}

// The split-K reduction: thread i owns columns 4i.. of one row; sums splits in order.
template <class Out, class Epi>
__device__ __forceinline__ void gemm_reduce(const float* __restrict__ workspace, const Epi& epi, unsigned splits,
                                            const GemmParams& p) {
    const unsigned vecs_per_row = (p.n + 3) / 4;
    const size_t q = (size_t)blockIdx.x * REDUCE_THREADS + threadIdx.x;
    if (q >= (size_t)p.m * vecs_per_row) return;
    const unsigned row = (unsigned)(q / vecs_per_row), col = (unsigned)(q % vecs_per_row) * 4;
    const unsigned count = min(4u, p.n - col);
    const size_t plane = (size_t)p.m * p.n;
    const bool vec = (p.n % 4) == 0;
    float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (unsigned z = 0; z < splits; ++z) {
        const float* src = workspace + z * plane + (size_t)row * p.n + col;
        if (vec) {
            const uint4 raw = tessera::load16(src);  // one 16-byte load per thread and split
            v[0] += __uint_as_float(raw.x);
            v[1] += __uint_as_float(raw.y);
            v[2] += __uint_as_float(raw.z);
            v[3] += __uint_as_float(raw.w);
        } else {
#pragma unroll
            for (unsigned e = 0; e < 4; ++e) {
                if (e < count) v[e] += src[e];
            }
        }
    }
    epi.store(row, col, v, count);
}

// The unfused baseline's elementwise steps on out [m, n], in place, one thread per element:
// + bias; gelu; silu; out += gate ⊙ addend.
template <class T, EpiKind KIND>
__device__ __forceinline__ void unfused(T* __restrict__ out, const T* __restrict__ bias, const T* __restrict__ gate,
                                        const T* __restrict__ addend, const GemmParams& p) {
    const size_t i = (size_t)blockIdx.x * REDUCE_THREADS + threadIdx.x;
    if (i >= (size_t)p.m * p.n) return;
    const unsigned row = (unsigned)(i / p.n), col = (unsigned)(i % p.n);
    float v = tessera::to_float(out[i]);
    if constexpr (KIND == EpiKind::Bias) v += tessera::to_float(bias[col]);
    if constexpr (KIND == EpiKind::BiasGelu) v = gelu_tanh(v);  // the activation alone
    if constexpr (KIND == EpiKind::BiasSilu) v = silu(v);
    if constexpr (KIND == EpiKind::Gated) {
        // out = out (the residual) + gate ⊙ addend (the biased GEMM result)
        const float g = tessera::to_float(gate[(size_t)(row / p.tokens_per_sample) * p.gate_stride + col]);
        v = __fmaf_rn(g, tessera::to_float(addend[i]), v);
    }
    out[i] = tessera::from_float<T>(v);
}

}  // namespace

// Kernel definitions. The names are spelled out (`gemm_bias_##SUFFIX`) so that build.rs's
// contract check finds each one next to its Rust declaration (src/kernels/gemm.rs).
#define GEMM_DIRECT_BODY(OP, S, OUT, KIND) gemm_direct<OP, S, OUT>(x, w, RowMajor<S, OUT, KIND>{bias, gate, out, p}, p);
#define GEMM_REDUCE_BODY(S, OUT, KIND) gemm_reduce<OUT>(workspace, RowMajor<S, OUT, KIND>{bias, gate, out, p}, splits, p);
// clang-format off
#define GEMM_DIRECT(OP, S, OUT, SUFFIX) \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_none_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::None) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_bias_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::Bias) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_bias_gelu_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::BiasGelu) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_bias_silu_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::BiasSilu) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_gated_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::Gated) }
#define GEMM_DIRECT_TF32(OP, S, OUT, SUFFIX) \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_tf32_none_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::None) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_tf32_bias_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::Bias) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_tf32_bias_gelu_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::BiasGelu) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_tf32_bias_silu_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::BiasSilu) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_tf32_gated_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::Gated) }
#define GEMM_DIRECT_F32OUT(OP, S, OUT, SUFFIX) \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_f32out_none_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::None) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_f32out_bias_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::Bias) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_f32out_bias_gelu_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::BiasGelu) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_f32out_bias_silu_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::BiasSilu) } \
    TESSERA_KERNEL void __launch_bounds__(GEMM_THREADS) gemm_f32out_gated_##SUFFIX(const S* x, const S* w, const S* bias, const S* gate, OUT* out, GemmParams p) { GEMM_DIRECT_BODY(OP, S, OUT, EpiKind::Gated) }
#define GEMM_REDUCE(S, OUT, SUFFIX) \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_reduce_none_##SUFFIX(const float* workspace, const S* bias, const S* gate, OUT* out, unsigned splits, GemmParams p) { GEMM_REDUCE_BODY(S, OUT, EpiKind::None) } \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_reduce_bias_##SUFFIX(const float* workspace, const S* bias, const S* gate, OUT* out, unsigned splits, GemmParams p) { GEMM_REDUCE_BODY(S, OUT, EpiKind::Bias) } \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_reduce_bias_gelu_##SUFFIX(const float* workspace, const S* bias, const S* gate, OUT* out, unsigned splits, GemmParams p) { GEMM_REDUCE_BODY(S, OUT, EpiKind::BiasGelu) } \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_reduce_bias_silu_##SUFFIX(const float* workspace, const S* bias, const S* gate, OUT* out, unsigned splits, GemmParams p) { GEMM_REDUCE_BODY(S, OUT, EpiKind::BiasSilu) } \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_reduce_gated_##SUFFIX(const float* workspace, const S* bias, const S* gate, OUT* out, unsigned splits, GemmParams p) { GEMM_REDUCE_BODY(S, OUT, EpiKind::Gated) }
#define GEMM_REDUCE_F32OUT(S, OUT, SUFFIX) \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_reduce_f32out_none_##SUFFIX(const float* workspace, const S* bias, const S* gate, OUT* out, unsigned splits, GemmParams p) { GEMM_REDUCE_BODY(S, OUT, EpiKind::None) } \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_reduce_f32out_bias_##SUFFIX(const float* workspace, const S* bias, const S* gate, OUT* out, unsigned splits, GemmParams p) { GEMM_REDUCE_BODY(S, OUT, EpiKind::Bias) } \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_reduce_f32out_bias_gelu_##SUFFIX(const float* workspace, const S* bias, const S* gate, OUT* out, unsigned splits, GemmParams p) { GEMM_REDUCE_BODY(S, OUT, EpiKind::BiasGelu) } \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_reduce_f32out_bias_silu_##SUFFIX(const float* workspace, const S* bias, const S* gate, OUT* out, unsigned splits, GemmParams p) { GEMM_REDUCE_BODY(S, OUT, EpiKind::BiasSilu) } \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_reduce_f32out_gated_##SUFFIX(const float* workspace, const S* bias, const S* gate, OUT* out, unsigned splits, GemmParams p) { GEMM_REDUCE_BODY(S, OUT, EpiKind::Gated) }
// clang-format on

GEMM_DIRECT(SimtF32, float, float, f32)
GEMM_DIRECT(MmaF16, tessera::f16, tessera::f16, f16)
GEMM_DIRECT(MmaBf16, tessera::bf16, tessera::bf16, bf16)
GEMM_DIRECT_TF32(MmaTf32, float, float, f32)
GEMM_DIRECT_F32OUT(MmaF16, tessera::f16, float, f16)
GEMM_DIRECT_F32OUT(MmaBf16, tessera::bf16, float, bf16)

#define GEMM_SKINNY(OP, S, SUFFIX)                                                                            \
    TESSERA_KERNEL void __launch_bounds__(SKINNY_THREADS)                                                     \
        gemm_skinny_##SUFFIX(const S* x, const S* w, float* workspace, GemmParams p) {                        \
        gemm_skinny<OP, S>(x, w, workspace, p);                                                               \
    }
#define GEMM_SKINNY_TF32(OP, S, SUFFIX)                                                                       \
    TESSERA_KERNEL void __launch_bounds__(SKINNY_THREADS)                                                     \
        gemm_tf32_skinny_##SUFFIX(const S* x, const S* w, float* workspace, GemmParams p) {                   \
        gemm_skinny<OP, S>(x, w, workspace, p);                                                               \
    }
GEMM_SKINNY(SimtF32, float, f32)
GEMM_SKINNY(MmaF16, tessera::f16, f16)
GEMM_SKINNY(MmaBf16, tessera::bf16, bf16)
GEMM_SKINNY_TF32(MmaTf32, float, f32)

GEMM_REDUCE(float, float, f32)
GEMM_REDUCE(tessera::f16, tessera::f16, f16)
GEMM_REDUCE(tessera::bf16, tessera::bf16, bf16)
GEMM_REDUCE_F32OUT(tessera::f16, float, f16)
GEMM_REDUCE_F32OUT(tessera::bf16, float, bf16)

#define GEMM_UNFUSED(T, SUFFIX)                                                                                   \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS)                                                         \
        gemm_unfused_bias_##SUFFIX(T* out, const T* bias, GemmParams p) {                                         \
        unfused<T, EpiKind::Bias>(out, bias, nullptr, nullptr, p);                                                \
    }                                                                                                             \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_unfused_gelu_##SUFFIX(T* out, GemmParams p) {      \
        unfused<T, EpiKind::BiasGelu>(out, nullptr, nullptr, nullptr, p);                                         \
    }                                                                                                             \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS) gemm_unfused_silu_##SUFFIX(T* out, GemmParams p) {      \
        unfused<T, EpiKind::BiasSilu>(out, nullptr, nullptr, nullptr, p);                                         \
    }                                                                                                             \
    TESSERA_KERNEL void __launch_bounds__(REDUCE_THREADS)                                                         \
        gemm_unfused_gated_##SUFFIX(T* out, const T* gate, const T* value, GemmParams p) {                        \
        unfused<T, EpiKind::Gated>(out, nullptr, gate, value, p);                                              \
    }
GEMM_UNFUSED(float, f32)
GEMM_UNFUSED(tessera::f16, f16)
GEMM_UNFUSED(tessera::bf16, bf16)
