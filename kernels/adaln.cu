// adaLN — LayerNorm without affine followed by DiT's adaptive modulation, fused:
//     y[b, t, :] = LN(x[b, t, :]) · (1 + scale[b, :]) + shift[b, :]
// and, from the same kernels (a runtime mode, one code path), plain LayerNorm with an
// optional affine weight and bias (ViT's): y = LN(x) · weight + bias, or y = LN(x).
//     LN(x)_i = (x_i − mean) / sqrt(var + eps),  mean and var (biased, 1/D) over the row.
//
// Layouts (row-major; T ∈ {float, __half, __nv_bfloat16}; 1 ≤ D ≤ ADALN_MAX_DIM):
//   x, y          [rows, D], rows = B·T (modulate) — y has x's dtype; y must not alias x
//   gamma, beta   one row of D elements per *group* of `group_rows` consecutive rows,
//                 group g's row at gamma + g·group_stride:
//                   modulate: gamma = scale, beta = shift, group_rows = T,
//                             group_stride = the modulation's row stride (6D when they are
//                             chunks of DiT's [B, 6D] modulation GEMM output, D when [B, D])
//                   affine:   gamma = weight, beta = bias [D], one group, stride 0
//                   none:     not read (empty views)
//   AdalnParams   below (src/kernels/adaln.rs mirrors it field for field).
//
// Numerics: every statistic in f32 whatever T (f16/bf16 rows with |x| ~ 1e4 are fine: the
// squares stay far below f32's range). Robust two-pass over the row held in registers,
// shifted by the row's first element s = x_0 (exact for a constant row):
//     d_i = x_i − s,  m = Σ d_i / D,  var = Σ (d_i − m)² / D,  rstd = 1 / sqrt(var + eps)
//     y_i = (d_i − m) · rstd · g_i + b_i,   g_i = gamma_i + 1 (modulate) or gamma_i (affine)
// (never E[x²] − E[x]²). A constant row has var = 0 exactly and y = b: finite. A row with
// any NaN or ±Inf gives NaN in every element of that row's output (m or var is NaN); other
// rows are unaffected. Sums are in a fixed order (per-thread, then a fixed shuffle tree):
// reruns are bit-identical. sqrtf and '/' are IEEE-rounded on both builds; nvcc contracts
// the final multiply-add, so GPU and emulator results differ by an ulp: compare with a
// tolerance.
//
// Vector width W: 16-byte accesses (W = 16 / sizeof(T): 4 floats, 8 halves) when x, y,
// gamma and beta are 16-byte aligned and D and group_stride are multiples of W (so every
// row starts aligned); otherwise W = 1 (element accesses, still coalesced). Decided in the
// kernel from the pointers, uniformly for the launch.
//
// Kernels (each for _f32, _f16, _bf16; all take (x, gamma, beta, y, AdalnParams)):
//   adaln_norm_v1_<T>     plain reference variant: one thread per row, three passes over the
//                         row in global memory (mean, variance, output). Obviously correct;
//                         uncoalesced and re-reads x: for tests, not for speed.
//   adaln_norm_warp_<T>   one warp per team, for D ≤ 32 · ADALN_THREAD_ELEMS = 512.
//                         Block = ADALN_WARPS warps, each its own team; reductions are
//                         xor-shuffles only, no shared memory, no barrier.
//   adaln_norm_block_<T>  one block per team, for 512 < D ≤ 8192. Block = nthreads threads
//                         (a multiple of 32 chosen by the wrapper: the fewest with
//                         nthreads · ADALN_THREAD_ELEMS ≥ D, at least 64); reductions are
//                         block_reduce_sum (tessera.cuh; 32 floats of static shared memory),
//                         s is broadcast through one shared float.
//   Both fast variants share one body (norm_team): a *team* of n threads (a warp or the
//   block) owns `rows_per_team` consecutive rows of one group (the wrapper's choice, see
//   ADALN_ROWS_PER_TEAM below; fewer in a group's last team). Thread i of the team owns units
//   i, i + n, i + 2n, ... (at most ADALN_THREAD_ELEMS / W of them) of a row, a unit being W
//   consecutive elements: consecutive threads touch consecutive 16-byte chunks (a warp
//   request is 512 contiguous bytes). The team loads its group's gamma/beta units into
//   registers once (converted to f32, the +1 folded in), then for each of its rows: loads the
//   row's units into registers (x is read exactly once), reduces Σ d, then Σ (d − m)², and
//   writes y from the registers (written exactly once). So gamma/beta are read once per
//   rows_per_team rows instead of once per row.
//   adaln_modulate_unfused_<T>(y, shift, scale, AdalnParams): the unfused baseline's second
//                         kernel, in place: y = y · (1 + scale[g]) + shift[g], one block per
//                         row (grid-stride over rows), thread j handles elements j, j +
//                         ADALN_UNFUSED_THREADS, ... (element accesses, coalesced). Run after
//                         adaln_norm_* in mode none it is `nn.LayerNorm(affine=False)` then
//                         `x * (1 + scale) + shift`: y is written, read and written again.
#include "tessera.cuh"

#define ADALN_MAX_DIM 8192
// Elements of a row one thread holds in registers (and as many gamma and beta values).
#define ADALN_THREAD_ELEMS 16
#define ADALN_WARPS 4
#define ADALN_WARP_MAX_DIM 512
// Rows per team: at least ADALN_ROWS_PER_TEAM (when the group has them), more when the grid
// would still fill ADALN_FILL_TEAMS teams (two waves on a 132-SM H100: 264 block teams, or
// 264 blocks of ADALN_WARPS warp teams), at most ADALN_MAX_ROWS_PER_TEAM. A team reads its
// group's gamma/beta once, so the re-read of shift/scale is 1/rows_per_team of x's traffic
// (served by L2: the bytes from HBM stay x + y + shift/scale once).
#define ADALN_ROWS_PER_TEAM 8
#define ADALN_MAX_ROWS_PER_TEAM 64
#define ADALN_FILL_BLOCKS 264
#define ADALN_V1_THREADS 128
#define ADALN_UNFUSED_THREADS 256
#define ADALN_MODE_NONE 0
#define ADALN_MODE_AFFINE 1
#define ADALN_MODE_MODULATE 2

static_assert(ADALN_WARP_MAX_DIM == 32 * ADALN_THREAD_ELEMS, "a warp team holds a whole row");
static_assert(ADALN_MAX_DIM <= 1024 * ADALN_THREAD_ELEMS, "a block team holds a whole row");

// Must match `AdalnParams` in src/kernels/adaln.rs field for field.
struct AdalnParams {
    unsigned rows;           // rows of x (B·T)
    unsigned dim;            // D
    unsigned group_rows;     // consecutive rows sharing one gamma/beta row (T; all rows for affine)
    unsigned group_stride;   // elements between consecutive groups' gamma/beta rows
    unsigned rows_per_team;  // rows a team normalizes in turn (1..ADALN_MAX_ROWS_PER_TEAM)
    unsigned teams;          // Σ over groups of ceil(group_rows / rows_per_team)
    unsigned mode;           // ADALN_MODE_*
    float eps;               // > 0
};
static_assert(sizeof(AdalnParams) == 32, "AdalnParams layout changed");

namespace {

// The W elements at p (16-byte aligned when W > 1) as floats.
template <class T, int W>
__device__ __forceinline__ void load_unit(const T* p, float (&out)[W]) {
    if constexpr (W == 1) {
        out[0] = tessera::to_float(p[0]);
    } else {
        static_assert(W * sizeof(T) == 16, "a vector unit is 16 bytes");
        const uint4 v = tessera::load16(p);
        T e[W];
        memcpy(e, &v, 16);
#pragma unroll
        for (int k = 0; k < W; ++k) out[k] = tessera::to_float(e[k]);
    }
}

template <class T, int W>
__device__ __forceinline__ void store_unit(T* p, const float (&in)[W]) {
    if constexpr (W == 1) {
        p[0] = tessera::from_float<T>(in[0]);
    } else {
        T e[W];
#pragma unroll
        for (int k = 0; k < W; ++k) e[k] = tessera::from_float<T>(in[k]);
        uint4 v;
        memcpy(&v, e, 16);
        tessera::store16(p, v);
    }
}

// The one output formula of every variant: centred value dc = x − mean (computed as
// (x − s) − m), scaled, modulated.
__device__ __forceinline__ float norm_out(float dc, float rstd, float g, float b) { return dc * rstd * g + b; }

// gamma's and beta's values for element j of group `group` (mode-dependent; g includes the +1).
template <class T>
__device__ __forceinline__ void gamma_beta(const T* gamma, const T* beta, const AdalnParams& p, unsigned group,
                                           unsigned j, float* g, float* b) {
    if (p.mode == ADALN_MODE_NONE) {
        *g = 1.0f;
        *b = 0.0f;
        return;
    }
    const size_t at = (size_t)group * p.group_stride + j;
    *g = tessera::to_float(gamma[at]) + (p.mode == ADALN_MODE_MODULATE ? 1.0f : 0.0f);
    *b = tessera::to_float(beta[at]);
}

__device__ __forceinline__ float rstd_of(float sum_sq, unsigned dim, float eps) {
    return 1.0f / sqrtf(sum_sq / (float)dim + eps);
}

// ---- v1: one thread per row, straight from global memory ------------------------------------------------
template <class T>
__device__ void norm_v1(const T* __restrict__ x, const T* __restrict__ gamma, const T* __restrict__ beta,
                        T* __restrict__ y, const AdalnParams& p) {
    const unsigned row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= p.rows) return;
    const T* xr = x + (size_t)row * p.dim;
    T* yr = y + (size_t)row * p.dim;
    const unsigned group = row / p.group_rows;
    const float s = tessera::to_float(xr[0]);
    float sum = 0.0f;
    for (unsigned j = 0; j < p.dim; ++j) sum += tessera::to_float(xr[j]) - s;
    const float m = sum / (float)p.dim;
    float sum_sq = 0.0f;
    for (unsigned j = 0; j < p.dim; ++j) {
        const float dc = (tessera::to_float(xr[j]) - s) - m;
        sum_sq += dc * dc;
    }
    const float rstd = rstd_of(sum_sq, p.dim, p.eps);
    for (unsigned j = 0; j < p.dim; ++j) {
        float g, b;
        gamma_beta(gamma, beta, p, group, j, &g, &b);
        yr[j] = tessera::from_float<T>(norm_out((tessera::to_float(xr[j]) - s) - m, rstd, g, b));
    }
}

// ---- the fast variants: a team of threads per `rows_per_team` rows ---------------------------------------
// Team reductions: a warp (shuffles) or the whole block (block_reduce_sum).
struct WarpTeam {
    __device__ __forceinline__ float sum(float v) const { return tessera::warp_reduce_sum(v); }
    // The row's first element, held by lane 0 in its first unit.
    __device__ __forceinline__ float broadcast0(float v) const { return __shfl_sync(0xffffffffu, v, 0); }
};
struct BlockTeam {
    float* scratch;  // __shared__ float[33]: 32 for the reduction, [32] for the broadcast
    __device__ __forceinline__ float sum(float v) const { return tessera::block_reduce_sum(v, scratch); }
    // Thread 0's value to every thread. The next write of scratch[32] (the next row) comes
    // after at least one barrier of the reductions in between, so no read can see it.
    __device__ __forceinline__ float broadcast0(float v) const {
        if (threadIdx.x == 0) scratch[32] = v;
        __syncthreads();
        return scratch[32];
    }
};

template <class T, int W, class Team>
__device__ __forceinline__ void norm_team(const T* __restrict__ x, const T* __restrict__ gamma,
                                          const T* __restrict__ beta, T* __restrict__ y, const AdalnParams& p,
                                          unsigned team, unsigned tid, unsigned nthreads, const Team& t) {
    constexpr int SLOTS = ADALN_THREAD_ELEMS / W;
    // Which rows: team → (group, chunk of that group).
    const unsigned per_group = (p.group_rows + p.rows_per_team - 1) / p.rows_per_team;
    const unsigned group = team / per_group;
    const unsigned first = group * p.group_rows + (team - group * per_group) * p.rows_per_team;
    const unsigned last = min(first + p.rows_per_team, (group + 1) * p.group_rows);

    // This thread's units: element offsets (k · nthreads + tid) · W, valid when < D.
    float g[SLOTS][W], b[SLOTS][W];
#pragma unroll
    for (int k = 0; k < SLOTS; ++k) {
        const unsigned e = ((unsigned)k * nthreads + tid) * W;
#pragma unroll
        for (int w = 0; w < W; ++w) {
            g[k][w] = 1.0f;
            b[k][w] = 0.0f;
        }
        if (e < p.dim && p.mode != ADALN_MODE_NONE) {
            const size_t at = (size_t)group * p.group_stride + e;
            load_unit<T, W>(gamma + at, g[k]);
            load_unit<T, W>(beta + at, b[k]);
            if (p.mode == ADALN_MODE_MODULATE) {
#pragma unroll
                for (int w = 0; w < W; ++w) g[k][w] += 1.0f;
            }
        }
    }

    for (unsigned row = first; row < last; ++row) {
        const T* xr = x + (size_t)row * p.dim;
        T* yr = y + (size_t)row * p.dim;
        float v[SLOTS][W];
#pragma unroll
        for (int k = 0; k < SLOTS; ++k) {
            const unsigned e = ((unsigned)k * nthreads + tid) * W;
            if (e < p.dim) {
                load_unit<T, W>(xr + e, v[k]);
            } else {
#pragma unroll
                for (int w = 0; w < W; ++w) v[k][w] = 0.0f;
            }
        }
        // The shift s = x_0: thread 0's first element.
        const float s = t.broadcast0(v[0][0]);
        float sum = 0.0f;
#pragma unroll
        for (int k = 0; k < SLOTS; ++k) {
            const unsigned e = ((unsigned)k * nthreads + tid) * W;
            if (e < p.dim) {
#pragma unroll
                for (int w = 0; w < W; ++w) {
                    v[k][w] -= s;
                    sum += v[k][w];
                }
            }
        }
        const float m = t.sum(sum) / (float)p.dim;
        float sum_sq = 0.0f;
#pragma unroll
        for (int k = 0; k < SLOTS; ++k) {
            const unsigned e = ((unsigned)k * nthreads + tid) * W;
            if (e < p.dim) {
#pragma unroll
                for (int w = 0; w < W; ++w) {
                    v[k][w] -= m;
                    sum_sq += v[k][w] * v[k][w];
                }
            }
        }
        const float rstd = rstd_of(t.sum(sum_sq), p.dim, p.eps);
#pragma unroll
        for (int k = 0; k < SLOTS; ++k) {
            const unsigned e = ((unsigned)k * nthreads + tid) * W;
            if (e < p.dim) {
                float out[W];
#pragma unroll
                for (int w = 0; w < W; ++w) out[w] = norm_out(v[k][w], rstd, g[k][w], b[k][w]);
                store_unit<T, W>(yr + e, out);
            }
        }
    }
}

// True when the whole launch can use 16-byte units (see the header).
template <class T>
__device__ __forceinline__ bool vector_ok(const T* x, const T* gamma, const T* beta, const T* y,
                                          const AdalnParams& p) {
    constexpr unsigned W = 16 / sizeof(T);
    const uintptr_t addr = reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y) |
                           (p.mode == ADALN_MODE_NONE
                                ? 0
                                : (reinterpret_cast<uintptr_t>(gamma) | reinterpret_cast<uintptr_t>(beta)));
    return (addr & 15u) == 0 && p.dim % W == 0 && p.group_stride % W == 0;
}

template <class T>
__device__ void norm_warp(const T* __restrict__ x, const T* __restrict__ gamma, const T* __restrict__ beta,
                          T* __restrict__ y, const AdalnParams& p) {
    const unsigned team = blockIdx.x * ADALN_WARPS + threadIdx.x / 32;
    if (team >= p.teams) return;  // whole warps leave together
    const unsigned lane = threadIdx.x % 32;
    const WarpTeam t;
    if (vector_ok(x, gamma, beta, y, p)) {
        norm_team<T, 16 / sizeof(T)>(x, gamma, beta, y, p, team, lane, 32, t);
    } else {
        norm_team<T, 1>(x, gamma, beta, y, p, team, lane, 32, t);
    }
}

template <class T>
__device__ void norm_block(const T* __restrict__ x, const T* __restrict__ gamma, const T* __restrict__ beta,
                           T* __restrict__ y, const AdalnParams& p) {
    __shared__ float scratch[33];
    const BlockTeam t{scratch};
    if (vector_ok(x, gamma, beta, y, p)) {
        norm_team<T, 16 / sizeof(T)>(x, gamma, beta, y, p, blockIdx.x, threadIdx.x, blockDim.x, t);
    } else {
        norm_team<T, 1>(x, gamma, beta, y, p, blockIdx.x, threadIdx.x, blockDim.x, t);
    }
}

template <class T>
__device__ void modulate_unfused(T* __restrict__ y, const T* __restrict__ shift, const T* __restrict__ scale,
                                 const AdalnParams& p) {
    for (unsigned row = blockIdx.x; row < p.rows; row += gridDim.x) {
        T* yr = y + (size_t)row * p.dim;
        const size_t at = (size_t)(row / p.group_rows) * p.group_stride;
        for (unsigned j = threadIdx.x; j < p.dim; j += blockDim.x) {
            const float g = tessera::to_float(scale[at + j]) + 1.0f;
            yr[j] = tessera::from_float<T>(tessera::to_float(yr[j]) * g + tessera::to_float(shift[at + j]));
        }
    }
}

}  // namespace

#define ADALN_KERNELS(T, SUFFIX)                                                                             \
    TESSERA_KERNEL void __launch_bounds__(ADALN_V1_THREADS)                                                  \
        adaln_norm_v1_##SUFFIX(const T* x, const T* gamma, const T* beta, T* y, AdalnParams p) {             \
        norm_v1<T>(x, gamma, beta, y, p);                                                                    \
    }                                                                                                        \
    TESSERA_KERNEL void __launch_bounds__(ADALN_WARPS * 32)                                                  \
        adaln_norm_warp_##SUFFIX(const T* x, const T* gamma, const T* beta, T* y, AdalnParams p) {           \
        norm_warp<T>(x, gamma, beta, y, p);                                                                  \
    }                                                                                                        \
    TESSERA_KERNEL void __launch_bounds__(ADALN_MAX_DIM / ADALN_THREAD_ELEMS)                                \
        adaln_norm_block_##SUFFIX(const T* x, const T* gamma, const T* beta, T* y, AdalnParams p) {          \
        norm_block<T>(x, gamma, beta, y, p);                                                                 \
    }                                                                                                        \
    TESSERA_KERNEL void __launch_bounds__(ADALN_UNFUSED_THREADS)                                             \
        adaln_modulate_unfused_##SUFFIX(T* y, const T* shift, const T* scale, AdalnParams p) {               \
        modulate_unfused<T>(y, shift, scale, p);                                                             \
    }

ADALN_KERNELS(float, f32)
ADALN_KERNELS(tessera::f16, f16)
ADALN_KERNELS(tessera::bf16, bf16)
