// Attention forward, flash style: O = softmax(Q·Kᵀ·scale [+ mask]) · V and the log-sum-exp of
// every query row, one pass over K and V per block of queries, nothing of size T×T in memory.
//
// Layouts (T ∈ {__half, __nv_bfloat16}; element strides, so Q, K and V can be views into one
// fused QKV buffer [B, T, 3, H, Dh]):
//   element (sequence b, token t, head h, dim d) of X ∈ {Q, K, V, O} is at
//       X + (start_b + t)·x_token_stride + h·x_head_stride + d
//   fixed lengths: start_b = b·Tq (queries) or b·Tk (keys), every sequence Tq / Tk tokens;
//   varlen: start_b = cu_seqlens[b], length cu_seqlens[b+1] − cu_seqlens[b] (u32, non-
//   decreasing; checked by the wrapper), separately for queries and keys.
//   lse (f32, natural log): fixed [B, H, Tq]; varlen [H, total_q] — element (b, h, t) at
//       lse + lse_base_b + h·lse_head_stride + t,  lse_base_b = b·H·Tq (fixed), start_b (varlen).
//   key_lengths (optional, the key-padding mask): u32 [B], sequence b attends to its keys
//   j < key_lengths[b] (≤ its Tk; tiles past it are never loaded).
//   Masks: causal is bottom-right aligned, query i sees key j iff j ≤ i + Tk − Tq (the full
//   Tk, with or without key padding: PyTorch's `causal & padding` mask).
//
// Tiling (per head dim DH, a template parameter: 32, 64, 72, 96, 128):
//   block = 4 warps = 64 query rows (16 per warp, the mma M), grid (⌈max Tq / 64⌉, H, B);
//   key tiles of BN = 64 keys for DH ≤ 72 and 32 for DH ≥ 96, so that two stages of K and V
//   stay within 48 KB of shared memory (DH 72: 36.9 KB, DH 128: 34.8 KB).
//   Shared rows are DH elements padded to an odd number of 16-byte chunks (DH 72 is 9
//   chunks already; 32, 64, 96, 128 get one more): eight consecutive rows at one chunk
//   column then fall in eight distinct bank groups, so the ldmatrix phases (8 rows, one
//   chunk) and the cp.async stores (consecutive chunks) are conflict-free without a swizzle.
//   Q's tile is loaded once into the stage-1 buffer, moved to registers as mma A fragments
//   (ldmatrix.x4 per 16 dims, ldmatrix.x2 for DH 72's last 8), and its buffer reused.
//   Per key tile (double-buffered cp.async, one barrier per tile, the next tile's copy in
//   flight during this one's math):
//     S = Q·Kᵀ on tensor cores: m16n8k16 over 16 dims at a time, and for DH 72's last 8 dims
//       m16n8k8 — 72 = 4·16 + 8, no padding to 96 (B fragments: ldmatrix.x4 of K rows).
//     online softmax in the log2 domain (scale·log2 e folded into one multiply, exp2):
//       masked logits are −∞; the row max m (a quad's shuffle-max) is used as 0 while it is
//       still −∞, so a fully masked row gives p = 0, never NaN; O and the running sum l are
//       rescaled by exp2(m_old − m_new).
//     P·V: P stays in registers — the C fragments of two adjacent n8 tiles are the A fragment
//       of one m16n8k16 — rounded to T; V's B fragments by ldmatrix.x4.trans.
//   Causal: key tiles wholly above the diagonal of the block's last query row are never
//   loaded (the loop ends at ⌈(m0 + 64 + Tk − Tq) / BN⌉), the diagonal tiles are masked.
//   Ragged tails: K/V rows past the sequence are zero-filled (0 · garbage could be NaN) and
//   their logits masked; Q rows past it are zero and not stored.
//   Epilogue: O = acc / l (0 where l = 0), staged through shared memory and written with
//   16-byte stores; lse = (m + log2 l) · ln 2 (−∞ where l = 0).
#include "attention_common.cuh"
#include "tessera.cuh"

#define ATTN_WARPS 4
#define ATTN_THREADS 128
#define ATTN_BLOCK_M 64
#define ATTN_MAX_HEAD_DIM 128
// Key tile rows: ATTN_BLOCK_N_NARROW for head dims ≤ ATTN_NARROW_MAX_DIM, else ATTN_BLOCK_N_WIDE
// (src/kernels/attention.rs sizes the dynamic shared memory from the same constants).
#define ATTN_NARROW_MAX_DIM 72
#define ATTN_BLOCK_N_NARROW 64
#define ATTN_BLOCK_N_WIDE 32
// Blocks per SM the register budget must allow. Without a minimum, ptxas squeezed head dim 32
// to 80 registers and spilled; 2 blocks of 128 threads allow up to 255 (no spill at any
// head dim, 107-176 registers), and the shared memory (20-37 KB) lets 6 blocks share an SM.
#define ATTN_MIN_BLOCKS 2

// AttnParams (the parameters, shared with kernels/attention_f32.cu): kernels/attention_common.cuh.

#define ATTN_SOFTMAX_THREADS 256

// Must match `AttnSoftmaxParams` in src/kernels/attention.rs.
struct AttnSoftmaxParams {
    unsigned q_len, k_len;  // S is [q_len, k_len]
    unsigned causal;        // bottom-right: row i sees columns j ≤ i + k_len − q_len
    float scale;
};
static_assert(sizeof(AttnSoftmaxParams) == 16, "AttnSoftmaxParams layout changed");

namespace {

template <unsigned DH>
struct AttnTile {
    static_assert(DH % 8 == 0 && DH <= ATTN_MAX_HEAD_DIM, "head dims of whole 16-byte chunks");
    static constexpr unsigned BM = ATTN_BLOCK_M;
    static constexpr unsigned BN = DH <= ATTN_NARROW_MAX_DIM ? ATTN_BLOCK_N_NARROW : ATTN_BLOCK_N_WIDE;
    static constexpr unsigned CHUNKS = DH / 8;                        // 16-byte chunks of a row
    static constexpr unsigned STRIDE = (CHUNKS | 1u) * 8;             // padded row, in elements
    static constexpr unsigned K16 = DH / 16;                          // whole 16-dim k-steps
    static constexpr bool K8_TAIL = DH % 16 != 0;                     // DH 72: one m16n8k8 step
    static constexpr unsigned NT = BN / 8;                            // n8 tiles of S
    static constexpr unsigned DT = DH / 8;                            // n8 tiles of O
    static constexpr unsigned STAGE = 2 * BN * STRIDE;                // K and V tiles, elements
    static_assert(BM * STRIDE <= STAGE, "Q's tile fits a stage");
    static_assert(NT % 4 == 0, "S tiles in fours (ldmatrix.x4 of K for the k8 tail)");
    static constexpr unsigned SMEM_BYTES = 2 * STAGE * 2;  // two stages of 16-bit T
    static_assert(SMEM_BYTES <= 48 * 1024, "within the default dynamic shared-memory limit");
};

// Two floats as one register of two T (low half = first).
template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    T e[2] = {tessera::from_float<T>(lo), tessera::from_float<T>(hi)};
    uint32_t r;
    memcpy(&r, e, 4);
    return r;
}

// Rows [row0, row0 + ROWS) of one head into a padded tile (attn_load_rows: cp.async, rows past
// `len` zero-filled).
template <class T, unsigned DH, unsigned ROWS>
__device__ __forceinline__ void load_rows(T* dst, const T* __restrict__ base, unsigned token_stride, unsigned row0,
                                          unsigned len, unsigned tid) {
    using A = AttnTile<DH>;
    attn_load_rows<T, A::CHUNKS, A::STRIDE, ROWS, ATTN_THREADS>(dst, base, token_stride, row0, len, tid);
}

template <class T>
struct Mma;
template <>
struct Mma<__half> {
    static __device__ __forceinline__ void k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
        tessera::mma_m16n8k16_f16(d, a, b, d);
    }
    static __device__ __forceinline__ void k8(float (&d)[4], const uint32_t (&a)[2], const uint32_t (&b)[1]) {
        tessera::mma_m16n8k8_f16(d, a, b, d);
    }
};
template <>
struct Mma<__nv_bfloat16> {
    static __device__ __forceinline__ void k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
        tessera::mma_m16n8k16_bf16(d, a, b, d);
    }
    static __device__ __forceinline__ void k8(float (&d)[4], const uint32_t (&a)[2], const uint32_t (&b)[1]) {
        tessera::mma_m16n8k8_bf16(d, a, b, d);
    }
};

__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

template <class T, unsigned DH>
__device__ void attention_forward(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                  T* __restrict__ o, float* __restrict__ lse, const unsigned* __restrict__ cu_q,
                                  const unsigned* __restrict__ cu_k, const unsigned* __restrict__ key_lengths,
                                  const AttnParams& p) {
    using A = AttnTile<DH>;
    TESSERA_DYNAMIC_SMEM(T, smem);
    const unsigned b = blockIdx.z, h = blockIdx.y, m0 = blockIdx.x * A::BM;
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32, g = lane / 4, t = lane % 4;

    const AttnSeq seq = attn_sequence(p, b, cu_q, cu_k);
    const unsigned q_start = seq.q_start, q_len = seq.q_len, k_start = seq.k_start, k_len = seq.k_len;
    if (m0 >= q_len) return;  // the whole block: before any barrier

    // Keys the block's rows can see: [0, n_end); causal ends at the last row's diagonal.
    const unsigned n_end = attn_key_end(p, seq, b, key_lengths, m0, A::BM);
    const unsigned tiles = (n_end + A::BN - 1) / A::BN;

    const T* qh = q + (size_t)q_start * p.q_token_stride + (size_t)h * p.q_head_stride;
    const T* kh = k + (size_t)k_start * p.k_token_stride + (size_t)h * p.k_head_stride;
    const T* vh = v + (size_t)k_start * p.v_token_stride + (size_t)h * p.v_head_stride;
    const auto stage = [&](unsigned i) { return smem + i * A::STAGE; };  // i ∈ {0, 1}

    // Q into stage 1's buffer, key tile 0 into stage 0.
    load_rows<T, DH, A::BM>(stage(1), qh, p.q_token_stride, m0, q_len, tid);
    tessera::cp_async_commit();
    if (tiles > 0) {
        load_rows<T, DH, A::BN>(stage(0), kh, p.k_token_stride, 0, k_len, tid);
        load_rows<T, DH, A::BN>(stage(0) + A::BN * A::STRIDE, vh, p.v_token_stride, 0, k_len, tid);
    }
    tessera::cp_async_commit();
    tessera::cp_async_wait<1>();
    __syncthreads();

    // Q fragments of the warp's 16 rows.
    uint32_t qa[A::K16 ? A::K16 : 1][4];
    uint32_t qa8[2] = {0, 0};
    {
        const T* rows = stage(1) + (warp * 16 + (lane % 16)) * A::STRIDE;
#pragma unroll
        for (unsigned s = 0; s < A::K16; ++s) tessera::ldmatrix<4, false>(qa[s], rows + (2 * s + lane / 16) * 8);
        if constexpr (A::K8_TAIL) tessera::ldmatrix<2, false>(qa8, rows + 2 * A::K16 * 8);
    }
    __syncthreads();  // every warp has its Q: stage 1 is free for key tile 1

    float acc[A::DT][4];
#pragma unroll
    for (unsigned j = 0; j < A::DT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};
    const unsigned qrow[2] = {m0 + warp * 16 + g, m0 + warp * 16 + g + 8};
    const long long diag = (long long)k_len - (long long)q_len;  // causal: key j ≤ i + diag

    for (unsigned kt = 0; kt < tiles; ++kt) {
        tessera::cp_async_wait<0>();
        __syncthreads();  // tile kt is in stage kt%2; every warp is done with stage (kt+1)%2
        if (kt + 1 < tiles) {
            T* next = stage((kt + 1) % 2);
            load_rows<T, DH, A::BN>(next, kh, p.k_token_stride, (kt + 1) * A::BN, k_len, tid);
            load_rows<T, DH, A::BN>(next + A::BN * A::STRIDE, vh, p.v_token_stride, (kt + 1) * A::BN, k_len, tid);
        }
        tessera::cp_async_commit();
        const T* ks = stage(kt % 2);
        const T* vs = ks + A::BN * A::STRIDE;
        const unsigned n0 = kt * A::BN;

        // S = Q·Kᵀ for the warp's 16 rows × BN keys.
        float s[A::NT][4];
#pragma unroll
        for (unsigned j = 0; j < A::NT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
        for (unsigned j = 0; j < A::NT; j += 2) {
            // Lanes 0-7: tile j's keys at chunk 2s, 8-15: chunk 2s+1, 16-31: tile j+1 likewise.
            const T* krow = ks + (8 * (j + lane / 16) + lane % 8) * A::STRIDE + ((lane / 8) % 2) * 8;
#pragma unroll
            for (unsigned st = 0; st < A::K16; ++st) {
                uint32_t bf[4];
                tessera::ldmatrix<4, false>(bf, krow + 16 * st);
                const uint32_t b0[2] = {bf[0], bf[1]}, b1[2] = {bf[2], bf[3]};
                Mma<T>::k16(s[j], qa[st], b0);
                Mma<T>::k16(s[j + 1], qa[st], b1);
            }
        }
        if constexpr (A::K8_TAIL) {
#pragma unroll
            for (unsigned j = 0; j < A::NT; j += 4) {
                // Lanes 8i..8i+7: tile j+i's keys at the last chunk.
                uint32_t bf[4];
                tessera::ldmatrix<4, false>(bf, ks + (8 * (j + lane / 8) + lane % 8) * A::STRIDE + 2 * A::K16 * 8);
#pragma unroll
                for (unsigned i = 0; i < 4; ++i) {
                    const uint32_t b[1] = {bf[i]};
                    Mma<T>::k8(s[j + i], qa8, b);
                }
            }
        }

        // Mask, scale to the log2 domain, the tile's row max.
        float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (unsigned j = 0; j < A::NT; ++j) {
#pragma unroll
            for (unsigned e = 0; e < 4; ++e) {
                const unsigned key = n0 + 8 * j + 2 * t + (e % 2), r = e / 2;
                bool ok = key < n_end;
                if (p.causal) ok = ok && (long long)key <= (long long)qrow[r] + diag;
                const float x = ok ? s[j][e] * p.scale_log2 : -INFINITY;
                s[j][e] = x;
                tile_max[r] = fmaxf(tile_max[r], x);
            }
        }
        float rescale[2], base[2];
#pragma unroll
        for (unsigned r = 0; r < 2; ++r) {
            const float m_new = fmaxf(row_max[r], quad_max(tile_max[r]));
            base[r] = m_new == -INFINITY ? 0.0f : m_new;  // a fully masked row so far: p = 0
            rescale[r] = exp2f(row_max[r] - base[r]);      // 0 when row_max is −∞
            row_max[r] = m_new;
            row_sum[r] *= rescale[r];
        }
#pragma unroll
        for (unsigned j = 0; j < A::DT; ++j) {
            acc[j][0] *= rescale[0], acc[j][1] *= rescale[0];
            acc[j][2] *= rescale[1], acc[j][3] *= rescale[1];
        }
        // P = exp2(S − m): the row sums in f32, P itself rounded to T as P·V's A operand.
        uint32_t pa[A::NT / 2][4];
#pragma unroll
        for (unsigned j = 0; j < A::NT; ++j) {
            float e4[4];
#pragma unroll
            for (unsigned e = 0; e < 4; ++e) {
                e4[e] = exp2f(s[j][e] - base[e / 2]);
                row_sum[e / 2] += e4[e];
            }
            pa[j / 2][(j % 2) * 2 + 0] = pack2<T>(e4[0], e4[1]);  // row g
            pa[j / 2][(j % 2) * 2 + 1] = pack2<T>(e4[2], e4[3]);  // row g + 8
        }
        // O += P·V: V's [keys][dims] tile transposed by ldmatrix.trans into B fragments.
#pragma unroll
        for (unsigned kk = 0; kk < A::BN / 16; ++kk) {
            const uint32_t a[4] = {pa[kk][0], pa[kk][1], pa[kk][2], pa[kk][3]};
            // Lanes 0-7: keys 16kk..+7 of dim tile d, 8-15: keys +8..15, 16-31: dim tile d+1.
            const T* vrow = vs + (16 * kk + lane % 16) * A::STRIDE;
#pragma unroll
            for (unsigned d = 0; d + 1 < A::DT; d += 2) {
                uint32_t bf[4];
                tessera::ldmatrix<4, true>(bf, vrow + (d + lane / 16) * 8);
                const uint32_t b0[2] = {bf[0], bf[1]}, b1[2] = {bf[2], bf[3]};
                Mma<T>::k16(acc[d], a, b0);
                Mma<T>::k16(acc[d + 1], a, b1);
            }
            if constexpr (A::DT % 2 != 0) {
                uint32_t bf[2];
                tessera::ldmatrix<2, true>(bf, vrow + (A::DT - 1) * 8);
                Mma<T>::k16(acc[A::DT - 1], a, bf);
            }
        }
    }

    // Epilogue: normalize, stage the warp's 16 rows in shared memory, 16-byte stores.
    float inv[2];
#pragma unroll
    for (unsigned r = 0; r < 2; ++r) {
        const float l = quad_sum(row_sum[r]);
        inv[r] = l > 0.0f ? 1.0f / l : 0.0f;
        const float value = l > 0.0f ? (row_max[r] + log2f(l)) * 0.69314718055994530942f : -INFINITY;
        if (t == 0 && qrow[r] < q_len) lse[attn_lse_index(p, seq, b, h, qrow[r])] = value;
    }
    tessera::cp_async_wait<0>();
    __syncthreads();  // every warp is done with both stages
    T* out = smem + warp * 16 * A::STRIDE;
#pragma unroll
    for (unsigned j = 0; j < A::DT; ++j) {
        const uint32_t lo = pack2<T>(acc[j][0] * inv[0], acc[j][1] * inv[0]);
        const uint32_t hi = pack2<T>(acc[j][2] * inv[1], acc[j][3] * inv[1]);
        memcpy(out + g * A::STRIDE + 8 * j + 2 * t, &lo, 4);
        memcpy(out + (g + 8) * A::STRIDE + 8 * j + 2 * t, &hi, 4);
    }
    __syncwarp();
    T* oh = o + (size_t)q_start * p.o_token_stride + (size_t)h * p.o_head_stride;
    for (unsigned i = lane; i < 16 * A::CHUNKS; i += 32) {
        const unsigned r = i / A::CHUNKS, c = i % A::CHUNKS, row = m0 + warp * 16 + r;
        if (row < q_len) tessera::store16(oh + (size_t)row * p.o_token_stride + c * 8, tessera::load16(out + r * A::STRIDE + c * 8));
    }
}

// Max of `v` over the block (whole warps), to every thread; three barriers, scratch reusable.
__device__ __forceinline__ float block_max(float v, float* scratch) {
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = tessera::warp_reduce_max(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        const float w = tessera::warp_reduce_max(lane < nwarps ? scratch[lane] : -INFINITY);
        if (lane == 0) scratch[32] = w;
    }
    __syncthreads();
    const float m = scratch[32];
    __syncthreads();
    return m;
}

// The unfused baseline's middle kernel: row-wise softmax of S [q_len, k_len] (one head's
// logits, row-major) in place, P = softmax(S·scale [causal]), f32 math, P in T. One block per
// row (grid-stride), ATTN_SOFTMAX_THREADS threads striding over the row's columns; three
// passes over the row in global memory (max, sum, write). A row with no visible key is 0.
template <class T>
__device__ void softmax_unfused(T* __restrict__ s, const AttnSoftmaxParams& p) {
    __shared__ float scratch[33];
    const long long diag = (long long)p.k_len - (long long)p.q_len;
    for (unsigned row = blockIdx.x; row < p.q_len; row += gridDim.x) {
        T* r = s + (size_t)row * p.k_len;
        const unsigned visible =
            p.causal ? (unsigned)max(0ll, min((long long)p.k_len, (long long)row + diag + 1)) : p.k_len;
        float m = -INFINITY;
        for (unsigned j = threadIdx.x; j < visible; j += blockDim.x) m = fmaxf(m, tessera::to_float(r[j]) * p.scale);
        m = block_max(m, scratch);
        if (m == -INFINITY) m = 0.0f;  // no visible key: every e below is 0
        float l = 0.0f;
        for (unsigned j = threadIdx.x; j < visible; j += blockDim.x) l += expf(tessera::to_float(r[j]) * p.scale - m);
        l = tessera::block_reduce_sum(l, scratch);
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (unsigned j = threadIdx.x; j < p.k_len; j += blockDim.x) {
            const float e = j < visible ? expf(tessera::to_float(r[j]) * p.scale - m) * inv : 0.0f;
            r[j] = tessera::from_float<T>(e);
        }
    }
}

}  // namespace

// One symbol per (head dim, dtype), each spelled out (build.rs finds `name_##SUFFIX(`).
#define ATTN_BODY(T, DH) \
    { attention_forward<T, DH>(q, k, v, o, lse, cu_seqlens_q, cu_seqlens_k, key_lengths, p); }
#define ATTN_KERNELS(T, SUFFIX)                                                                                     \
    TESSERA_KERNEL void __launch_bounds__(ATTN_THREADS, ATTN_MIN_BLOCKS)                                                             \
        attention_fwd_d32_##SUFFIX(const T* q, const T* k, const T* v, T* o, float* lse, const unsigned* cu_seqlens_q, \
                                   const unsigned* cu_seqlens_k, const unsigned* key_lengths, AttnParams p)       \
            ATTN_BODY(T, 32)                                                                                        \
    TESSERA_KERNEL void __launch_bounds__(ATTN_THREADS, ATTN_MIN_BLOCKS)                                                             \
        attention_fwd_d64_##SUFFIX(const T* q, const T* k, const T* v, T* o, float* lse, const unsigned* cu_seqlens_q, \
                                   const unsigned* cu_seqlens_k, const unsigned* key_lengths, AttnParams p)       \
            ATTN_BODY(T, 64)                                                                                        \
    TESSERA_KERNEL void __launch_bounds__(ATTN_THREADS, ATTN_MIN_BLOCKS)                                                             \
        attention_fwd_d72_##SUFFIX(const T* q, const T* k, const T* v, T* o, float* lse, const unsigned* cu_seqlens_q, \
                                   const unsigned* cu_seqlens_k, const unsigned* key_lengths, AttnParams p)       \
            ATTN_BODY(T, 72)                                                                                        \
    TESSERA_KERNEL void __launch_bounds__(ATTN_THREADS, ATTN_MIN_BLOCKS)                                                             \
        attention_fwd_d96_##SUFFIX(const T* q, const T* k, const T* v, T* o, float* lse, const unsigned* cu_seqlens_q, \
                                   const unsigned* cu_seqlens_k, const unsigned* key_lengths, AttnParams p)       \
            ATTN_BODY(T, 96)                                                                                        \
    TESSERA_KERNEL void __launch_bounds__(ATTN_THREADS, ATTN_MIN_BLOCKS)                                                             \
        attention_fwd_d128_##SUFFIX(const T* q, const T* k, const T* v, T* o, float* lse,                           \
                                    const unsigned* cu_seqlens_q, const unsigned* cu_seqlens_k,                     \
                                    const unsigned* key_lengths, AttnParams p) ATTN_BODY(T, 128)

ATTN_KERNELS(tessera::f16, f16)
ATTN_KERNELS(tessera::bf16, bf16)

#define ATTN_SOFTMAX_KERNEL(T, SUFFIX)                                                        \
    TESSERA_KERNEL void __launch_bounds__(ATTN_SOFTMAX_THREADS)                               \
        attention_softmax_unfused_##SUFFIX(T* s, AttnSoftmaxParams p) { softmax_unfused<T>(s, p); }
ATTN_SOFTMAX_KERNEL(tessera::f16, f16)
ATTN_SOFTMAX_KERNEL(tessera::bf16, bf16)
