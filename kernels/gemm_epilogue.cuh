// The epilogues of the tile GEMM (gemm_tile.cuh `store_tile` hands each one 16-byte row
// vectors of f32 accumulators): the elementwise functions, the launch parameters, and the
// output writers — row-major (`RowMajor`, with bias / activation / gated residual chosen at
// compile time) and the unpatchify folds (`UnpatchifyLatents` NCHW, `UnpatchifyImage` u8
// NHWC) used by the final projection of a decoder or DiT.
#pragma once
#include "tessera.cuh"

// Launch parameters of every GEMM-shaped kernel (src/kernels/gemm.rs `GemmParams`, same
// field order). Fields an epilogue does not use are 0.
struct GemmParams {
    unsigned m, n, k;
    unsigned kt_per_split;       // k-tiles per split (skinny path)
    unsigned tokens_per_sample;  // gated residual / unpatchify: rows per sample
    unsigned gate_stride;        // gated residual: elements between samples' gate rows
    unsigned grid_w;             // unpatchify: patches per image row
    unsigned patch;              // unpatchify: p
    unsigned channels;           // unpatchify: C (n = p·p·C)
    unsigned height, width;      // unpatchify: output image size (grid · p)
    unsigned pad;
    float mean[4], std_dev[4];   // unpatchify (images): the normalization to undo; see UnpatchifyImage
};

namespace tessera {
namespace gemm {

enum class EpiKind { None, Bias, BiasGelu, BiasSilu, Gated };

// GELU, tanh approximation (DiT, ViT): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
__device__ __forceinline__ float gelu_tanh(float x) {
    const float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(inner));
}
// SiLU: x·σ(x) = x / (1 + e^(−x)); for x → −∞, e^(−x) = inf gives −0.
__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }

// Loads `count` (≤ V) elements of p as f32; a full, aligned vector in one 16-byte load.
template <class T, unsigned V>
__device__ __forceinline__ void load_vec(const T* p, float (&v)[V], unsigned count) {
    if (count == V && V * sizeof(T) == 16 && (reinterpret_cast<uintptr_t>(p) & 15u) == 0) {
        const uint4 raw = load16(p);
        const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (unsigned i = 0; i < V; ++i) v[i] = to_float(e[i]);
    } else {
#pragma unroll
        for (unsigned i = 0; i < V; ++i) {
            if (i < count) v[i] = to_float(p[i]);  // unrolled with a guard: v stays in registers
        }
    }
}
// Stores `count` (≤ V) values to p in T; a full, aligned vector in one 16-byte store.
template <class T, unsigned V>
__device__ __forceinline__ void store_vec(T* p, const float (&v)[V], unsigned count) {
    if (count == V && V * sizeof(T) == 16 && (reinterpret_cast<uintptr_t>(p) & 15u) == 0) {
        T e[V];
#pragma unroll
        for (unsigned i = 0; i < V; ++i) e[i] = from_float<T>(v[i]);
        store16(p, *reinterpret_cast<const uint4*>(e));
    } else if (count == V && V * sizeof(T) == 8 && (reinterpret_cast<uintptr_t>(p) & 7u) == 0) {
        // Four 16-bit values (the split-K reduction's vectors): one 8-byte store.
        T e[V];
#pragma unroll
        for (unsigned i = 0; i < V; ++i) e[i] = from_float<T>(v[i]);
        *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(e);
    } else {
#pragma unroll
        for (unsigned i = 0; i < V; ++i) {
            if (i < count) p[i] = from_float<T>(v[i]);
        }
    }
}

// bias, then the activation, in place on a vector of columns col.. .
template <class S, EpiKind KIND, unsigned V>
__device__ __forceinline__ void bias_activation(const S* __restrict__ bias, unsigned col, float (&v)[V],
                                                unsigned count) {
    if constexpr (KIND != EpiKind::None) {
#pragma unroll
        for (unsigned e = 0; e < V; ++e) {
            if (e < count) {
                float x = v[e] + to_float(bias[col + e]);
                if constexpr (KIND == EpiKind::BiasGelu) x = gelu_tanh(x);
                if constexpr (KIND == EpiKind::BiasSilu) x = silu(x);
                v[e] = x;
            }
        }
    }
}

// out [m, n] row-major (ld = n), in Out; bias [n] and gate in S.
template <class S, class Out, EpiKind KIND>
struct RowMajor {
    const S* __restrict__ bias;
    const S* __restrict__ gate;
    Out* __restrict__ out;
    const GemmParams& p;
    template <unsigned V>
    __device__ __forceinline__ void store(unsigned row, unsigned col, float (&v)[V], unsigned count) const {
        bias_activation<S, KIND>(bias, col, v, count);
        Out* dst = out + (size_t)row * p.n + col;
        if constexpr (KIND == EpiKind::Gated) {
            float res[V];
            load_vec<Out, V>(dst, res, count);
            const S* g = gate + (size_t)(row / p.tokens_per_sample) * p.gate_stride + col;
#pragma unroll
            for (unsigned e = 0; e < V; ++e) {
                if (e < count) v[e] = __fmaf_rn(to_float(g[e]), v[e], res[e]);
            }
        }
        store_vec<Out, V>(dst, v, count);
    }
};

// Where column `col` of token row `row` lands in an image of the unpatchify fold (DiT's
// order: column = (pi·p + qj)·C + c, token = hy·grid_w + wx → pixel (c, hy·p + pi, wx·p + qj)).
struct FoldIndex {
    unsigned b, c, y, x;
    __device__ __forceinline__ FoldIndex(unsigned row, unsigned col, const GemmParams& p) {
        b = row / p.tokens_per_sample;
        const unsigned tok = row % p.tokens_per_sample;
        c = col % p.channels;
        const unsigned pq = col / p.channels;
        y = (tok / p.grid_w) * p.patch + pq / p.patch;
        x = (tok % p.grid_w) * p.patch + pq % p.patch;
    }
};

// Tokens [B·T, p·p·C] (+ bias) folded to latents [B, C, H, W] in Out.
template <class S, class Out>
struct UnpatchifyLatents {
    const S* __restrict__ bias;
    Out* __restrict__ out;
    const GemmParams& p;
    template <unsigned V>
    __device__ __forceinline__ void store(unsigned row, unsigned col, float (&v)[V], unsigned count) const {
        bias_activation<S, EpiKind::Bias>(bias, col, v, count);
#pragma unroll
        for (unsigned e = 0; e < V; ++e) {
            if (e < count) {
                const FoldIndex f(row, col + e, p);
                out[(((size_t)f.b * p.channels + f.c) * p.height + f.y) * p.width + f.x] = from_float<Out>(v[e]);
            }
        }
    }
};

// Tokens (+ bias) folded to u8 images [B, H, W, C] (NHWC): the value is denormalized
// (v·std_dev[c] + mean[c], in units of the [0, 1] range), scaled by 255,
// rounded to nearest even, clamped to [0, 255] (NaN → 0). Within one patch row the
// columns (qj, c) are consecutive bytes of the output row.
template <class S>
struct UnpatchifyImage {
    const S* __restrict__ bias;
    unsigned char* __restrict__ out;
    const GemmParams& p;
    template <unsigned V>
    __device__ __forceinline__ void store(unsigned row, unsigned col, float (&v)[V], unsigned count) const {
        bias_activation<S, EpiKind::Bias>(bias, col, v, count);
#pragma unroll
        for (unsigned e = 0; e < V; ++e) {
            if (e >= count) break;
            const FoldIndex f(row, col + e, p);
            // Selects, not an index by f.c: the parameters stay in registers.
            const float sd = f.c == 0 ? p.std_dev[0] : f.c == 1 ? p.std_dev[1] : f.c == 2 ? p.std_dev[2] : p.std_dev[3];
            const float mu = f.c == 0 ? p.mean[0] : f.c == 1 ? p.mean[1] : f.c == 2 ? p.mean[2] : p.mean[3];
            const float unit = __fmaf_rn(v[e], sd, mu);
            const float scaled = rintf(__fmul_rn(unit, 255.0f));
            const float clamped = fminf(fmaxf(scaled, 0.0f), 255.0f);  // fmaxf(NaN, 0) = 0
            out[(((size_t)f.b * p.height + f.y) * p.width + f.x) * p.channels + f.c] = (unsigned char)clamped;
        }
    }
};

}  // namespace gemm
}  // namespace tessera

#include "argmin.cuh"

namespace tessera {
namespace gemm {

// The argmin epilogue of a nearest-codebook search (codebook.cu): it consumes the
// accumulators of every code tile in registers (no staging) as dist = ||e||² − 2·z·e and
// keeps each thread's running best per accumulator row (rows 16i + g + 8h of its warp
// tile), offered in increasing code order so that ties keep the lowest code; `publish`
// merges the quad that shares those rows and combines warps, blocks and splits through a
// 64-bit atomicMin of (distance, index) keys.
template <class TileT>
struct RowArgMin {
    ArgMin best[TileT::MI][2];
    __device__ __forceinline__ void init() {
#pragma unroll
        for (unsigned i = 0; i < TileT::MI; ++i) best[i][0].init(), best[i][1].init();
    }
    // acc of the code tile at col0 (its block-tile origin); codes ≥ code_end are ignored.
    __device__ __forceinline__ void consume(const float (&acc)[TileT::MI][TileT::NJ][4], unsigned col0,
                                            unsigned code_end, const float* __restrict__ e_sqnorm) {
        const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, t = lane % 4;
        const unsigned wcol0 = col0 + (warp % TileT::WARPS_N) * TileT::WN;
#pragma unroll
        for (unsigned j = 0; j < TileT::NJ; ++j) {
#pragma unroll
            for (unsigned c = 0; c < 2; ++c) {
                const unsigned code = wcol0 + 8 * j + 2 * t + c;
                if (code < code_end) {
                    const float norm = e_sqnorm[code];
#pragma unroll
                    for (unsigned i = 0; i < TileT::MI; ++i) {
                        best[i][0].offer(fmaf(-2.0f, acc[i][j][c], norm), code);
                        best[i][1].offer(fmaf(-2.0f, acc[i][j][2 + c], norm), code);
                    }
                }
            }
        }
    }
    __device__ __forceinline__ void publish(unsigned long long* __restrict__ keys, unsigned row0, unsigned n) {
        const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
        const unsigned wrow0 = row0 + (warp / TileT::WARPS_N) * TileT::WM;
#pragma unroll
        for (unsigned i = 0; i < TileT::MI; ++i) {
#pragma unroll
            for (unsigned h = 0; h < 2; ++h) {
                best[i][h].reduce_lanes(3);  // the quad t = 0..3 holds the same rows
                const unsigned row = wrow0 + 16 * i + g + 8 * h;
                if (t == 0 && row < n && best[i][h].index != NO_INDEX) {
                    atomicMin(&keys[row], argmin_key(best[i][h].dist, best[i][h].index));
                }
            }
        }
    }
};

// The unfused baseline's epilogue: the distance matrix out[row, code] = ||e||² − 2·z·e.
struct DistanceMatrix {
    const float* __restrict__ e_sqnorm;
    float* __restrict__ out;
    unsigned k;
    template <unsigned V>
    __device__ __forceinline__ void store(unsigned row, unsigned col, float (&v)[V], unsigned count) const {
#pragma unroll
        for (unsigned e = 0; e < V; ++e) {
            if (e < count) v[e] = fmaf(-2.0f, v[e], e_sqnorm[col + e]);
        }
        store_vec<float, V>(out + (size_t)row * k + col, v, count);
    }
};

}  // namespace gemm
}  // namespace tessera
