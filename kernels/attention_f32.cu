// Attention forward in f32 on CUDA cores (no tensor cores: every product is an exact f32 FMA):
// O = softmax(Q·Kᵀ·scale [+ mask]) · V and the log-sum-exp of every query row, flash style,
// with the semantics, parameters (AttnParams, kernels/attention_common.cuh) and layouts of
// the f16 / bf16 kernel — see the top of kernels/attention.cu: [B, T, H, Dh] views at token /
// head strides (fused QKV included) or packed varlen sequences, bottom-right causal, key
// padding, lse f32 [B, H, Tq] or [H, total_q]; a row that sees no key gets O = 0, lse = −∞.
//
// Tiling (per head dim DH, a template parameter: 32, 64, 72, 96, 128):
//   block = 128 threads = 32 query rows, grid (⌈max Tq / 32⌉, H, B). Each row belongs to a
//   quad (4 consecutive lanes; a warp holds 8 rows): lane t of the quad owns the dims of the
//   vector chunks t, t+4, t+8, ... of the row, chunks of VEC = 4 floats (DH % 16 = 0) or 2
//   (DH 72: 18 dims per lane), DH/4 dims per lane in all. Its slice of the Q row and of the O
//   accumulator live in registers (DH/4 floats each).
//   Key tiles of BN = 32 keys for DH ≤ 72 and 16 for DH ≥ 96, K and V staged in shared memory
//   [BN][DH] unpadded, double-buffered by cp.async 16-byte copies (attn_load_rows), one
//   barrier per tile, the next tile's copy in flight during this one's math: 2 stages ×
//   (K + V) = 2·2·BN·DH·4 bytes — 16 KB (DH 32), 32 KB (64), 36 KB (72), 24 KB (96), 32 KB (128).
//   Every lane of a warp reads the same key row at once (4 lanes × VEC distinct floats, the
//   rest broadcast), so the reads are free of bank conflicts without padding or swizzle.
//   Per key tile:
//     S: for each key j, the lane's partial dot over its dims (FMAs, chunk order), then the
//       quad's sum by two xor shuffles — every lane of the quad ends with the same S row of
//       BN logits (addition is commutative: bit-identical in all four).
//     online softmax in the log2 domain, exactly as the f16 kernel: logits · (scale·log2 e),
//       masked ones −∞; the row max m is used as 0 while it is still −∞ (a fully masked row
//       gives p = 0, never NaN); O and the running sum l rescaled by exp2(m_old − m_new).
//     O += P·V: p_j = exp2(s_j − m) in f32, FMAs into the lane's dims of O.
//   Causal: key tiles wholly above the diagonal of the block's last row are never loaded
//   (attn_key_end), the diagonal tiles are masked. Ragged tails: K/V rows past the sequence
//   are zero-filled and their logits masked; Q rows past it are zero and not stored.
//   Epilogue: O = acc / l (0 where l = 0), each lane storing its vector chunks of the row;
//   lse = (m + log2 l) · ln 2 (−∞ where l = 0), by lane 0 of the quad.
#include "attention_common.cuh"
#include "tessera.cuh"

#define ATTN32_THREADS 128
#define ATTN32_BLOCK_M 32
#define ATTN32_MAX_HEAD_DIM 128
// Key tile rows: ATTN32_BLOCK_N_NARROW for head dims ≤ ATTN32_NARROW_MAX_DIM, else
// ATTN32_BLOCK_N_WIDE (src/kernels/attention_f32.rs sizes the dynamic shared memory from these).
#define ATTN32_NARROW_MAX_DIM 72
#define ATTN32_BLOCK_N_NARROW 32
#define ATTN32_BLOCK_N_WIDE 16
#define ATTN32_MIN_BLOCKS 2

namespace {

template <unsigned DH>
struct Attn32Tile {
    static_assert(DH % 8 == 0 && DH <= ATTN32_MAX_HEAD_DIM, "head dims of whole 32-byte quad chunks");
    static constexpr unsigned BM = ATTN32_BLOCK_M;
    static constexpr unsigned BN = DH <= ATTN32_NARROW_MAX_DIM ? ATTN32_BLOCK_N_NARROW : ATTN32_BLOCK_N_WIDE;
    static constexpr unsigned VEC = DH % 16 == 0 ? 4 : 2;  // floats per vector chunk
    static constexpr unsigned NV = DH / (4 * VEC);         // vector chunks per lane
    static constexpr unsigned CHUNKS = DH / 4;             // 16-byte chunks of a row (loader)
    static constexpr unsigned STAGE = 2 * BN * DH;         // K and V tiles, floats
    static constexpr unsigned SMEM_BYTES = 2 * STAGE * 4;  // two stages
    static_assert(ATTN32_THREADS == 4 * BM, "a quad per query row");
    static_assert(SMEM_BYTES <= 48 * 1024, "within the default dynamic shared-memory limit");
};

template <unsigned VEC>
__device__ __forceinline__ void load_vec(float* dst, const float* src) {
    if constexpr (VEC == 4) {
        const float4 v = *reinterpret_cast<const float4*>(src);
        dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
    } else {
        const float2 v = *reinterpret_cast<const float2*>(src);
        dst[0] = v.x, dst[1] = v.y;
    }
}

template <unsigned VEC>
__device__ __forceinline__ void store_vec(float* dst, const float* src) {
    if constexpr (VEC == 4) {
        *reinterpret_cast<float4*>(dst) = make_float4(src[0], src[1], src[2], src[3]);
    } else {
        *reinterpret_cast<float2*>(dst) = make_float2(src[0], src[1]);
    }
}

template <unsigned DH>
__device__ void attention_forward_f32(const float* __restrict__ q, const float* __restrict__ k,
                                      const float* __restrict__ v, float* __restrict__ o, float* __restrict__ lse,
                                      const unsigned* __restrict__ cu_q, const unsigned* __restrict__ cu_k,
                                      const unsigned* __restrict__ key_lengths, const AttnParams& p) {
    using A = Attn32Tile<DH>;
    constexpr unsigned VEC = A::VEC, NV = A::NV, BN = A::BN;
    TESSERA_DYNAMIC_SMEM(float, smem);
    const unsigned b = blockIdx.z, h = blockIdx.y, m0 = blockIdx.x * A::BM;
    const unsigned tid = threadIdx.x, t = tid % 4, row = m0 + tid / 4;

    const AttnSeq seq = attn_sequence(p, b, cu_q, cu_k);
    if (m0 >= seq.q_len) return;  // the whole block: before any barrier
    const unsigned n_end = attn_key_end(p, seq, b, key_lengths, m0, A::BM);
    const unsigned tiles = (n_end + BN - 1) / BN;

    const float* kh = k + (size_t)seq.k_start * p.k_token_stride + (size_t)h * p.k_head_stride;
    const float* vh = v + (size_t)seq.k_start * p.v_token_stride + (size_t)h * p.v_head_stride;
    const auto stage = [&](unsigned i) { return smem + i * A::STAGE; };  // i ∈ {0, 1}
    const auto load_tile = [&](unsigned kt) {
        float* dst = stage(kt % 2);
        attn_load_rows<float, A::CHUNKS, DH, BN, ATTN32_THREADS>(dst, kh, p.k_token_stride, kt * BN, seq.k_len, tid);
        attn_load_rows<float, A::CHUNKS, DH, BN, ATTN32_THREADS>(dst + BN * DH, vh, p.v_token_stride, kt * BN,
                                                                 seq.k_len, tid);
    };
    if (tiles > 0) load_tile(0);
    tessera::cp_async_commit();

    // The lane's slice of its Q row (chunk c of the lane at dims (4c + t)·VEC); zero past Tq.
    float qr[NV][VEC];
    {
        const float* qrow = q + (size_t)(seq.q_start + row) * p.q_token_stride + (size_t)h * p.q_head_stride;
#pragma unroll
        for (unsigned c = 0; c < NV; ++c) {
            if (row < seq.q_len) {
                load_vec<VEC>(qr[c], qrow + (4 * c + t) * VEC);
            } else {
#pragma unroll
                for (unsigned e = 0; e < VEC; ++e) qr[c][e] = 0.0f;
            }
        }
    }

    float acc[NV][VEC];
#pragma unroll
    for (unsigned c = 0; c < NV; ++c)
#pragma unroll
        for (unsigned e = 0; e < VEC; ++e) acc[c][e] = 0.0f;
    float row_max = -INFINITY, row_sum = 0.0f;
    const long long diag = (long long)seq.k_len - (long long)seq.q_len;  // causal: key j ≤ i + diag

    for (unsigned kt = 0; kt < tiles; ++kt) {
        tessera::cp_async_wait<0>();
        __syncthreads();  // tile kt is in stage kt%2; every thread is done with stage (kt+1)%2
        if (kt + 1 < tiles) load_tile(kt + 1);
        tessera::cp_async_commit();
        const float* ks = stage(kt % 2);
        const float* vs = ks + BN * DH;
        const unsigned n0 = kt * BN;

        // S = Q·Kᵀ: the lane's partial dots (BN independent FMA chains), then the quad's sums.
        float s[BN];
#pragma unroll
        for (unsigned j = 0; j < BN; ++j) s[j] = 0.0f;
#pragma unroll
        for (unsigned c = 0; c < NV; ++c) {
#pragma unroll
            for (unsigned j = 0; j < BN; ++j) {
                float kv[VEC];
                load_vec<VEC>(kv, ks + j * DH + (4 * c + t) * VEC);
#pragma unroll
                for (unsigned e = 0; e < VEC; ++e) s[j] = __fmaf_rn(qr[c][e], kv[e], s[j]);
            }
        }
        float tile_max = -INFINITY;
#pragma unroll
        for (unsigned j = 0; j < BN; ++j) {
            float x = s[j];
            x += __shfl_xor_sync(0xffffffffu, x, 1);
            x += __shfl_xor_sync(0xffffffffu, x, 2);
            // Mask, scale to the log2 domain.
            const unsigned key = n0 + j;
            bool ok = key < n_end;
            if (p.causal) ok = ok && (long long)key <= (long long)row + diag;
            x = ok ? x * p.scale_log2 : -INFINITY;
            s[j] = x;
            tile_max = fmaxf(tile_max, x);
        }
        const float m_new = fmaxf(row_max, tile_max);
        const float base = m_new == -INFINITY ? 0.0f : m_new;  // a fully masked row so far: p = 0
        const float rescale = exp2f(row_max - base);             // 0 when row_max is −∞
        row_max = m_new;
        row_sum *= rescale;
#pragma unroll
        for (unsigned c = 0; c < NV; ++c)
#pragma unroll
            for (unsigned e = 0; e < VEC; ++e) acc[c][e] *= rescale;

        // O += P·V, P = exp2(S − m) in f32 (DH/4 independent FMA chains per key).
#pragma unroll
        for (unsigned j = 0; j < BN; ++j) {
            const float pj = exp2f(s[j] - base);
            row_sum += pj;
#pragma unroll
            for (unsigned c = 0; c < NV; ++c) {
                float vv[VEC];
                load_vec<VEC>(vv, vs + j * DH + (4 * c + t) * VEC);
#pragma unroll
                for (unsigned e = 0; e < VEC; ++e) acc[c][e] = __fmaf_rn(pj, vv[e], acc[c][e]);
            }
        }
    }
    tessera::cp_async_wait<0>();  // nothing left in flight (the last commit is empty)

    // Epilogue: normalize and store the lane's chunks; lse by lane 0 of the quad.
    if (row < seq.q_len) {
        const float l = row_sum;  // the same in all four lanes of the quad
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        if (t == 0) {
            lse[attn_lse_index(p, seq, b, h, row)] =
                l > 0.0f ? (row_max + log2f(l)) * 0.69314718055994530942f : -INFINITY;
        }
        float* orow = o + (size_t)(seq.q_start + row) * p.o_token_stride + (size_t)h * p.o_head_stride;
#pragma unroll
        for (unsigned c = 0; c < NV; ++c) {
            float out[VEC];
#pragma unroll
            for (unsigned e = 0; e < VEC; ++e) out[e] = acc[c][e] * inv;
            store_vec<VEC>(orow + (4 * c + t) * VEC, out);
        }
    }
}

}  // namespace

// One symbol per head dim, each spelled out (build.rs finds `void name(` / `) name(`).
#define ATTN32_BODY(DH) \
    { attention_forward_f32<DH>(q, k, v, o, lse, cu_seqlens_q, cu_seqlens_k, key_lengths, p); }

TESSERA_KERNEL void __launch_bounds__(ATTN32_THREADS, ATTN32_MIN_BLOCKS)
    attention_fwd_f32_d32(const float* q, const float* k, const float* v, float* o, float* lse,
                          const unsigned* cu_seqlens_q, const unsigned* cu_seqlens_k, const unsigned* key_lengths,
                          AttnParams p) ATTN32_BODY(32)
TESSERA_KERNEL void __launch_bounds__(ATTN32_THREADS, ATTN32_MIN_BLOCKS)
    attention_fwd_f32_d64(const float* q, const float* k, const float* v, float* o, float* lse,
                          const unsigned* cu_seqlens_q, const unsigned* cu_seqlens_k, const unsigned* key_lengths,
                          AttnParams p) ATTN32_BODY(64)
TESSERA_KERNEL void __launch_bounds__(ATTN32_THREADS, ATTN32_MIN_BLOCKS)
    attention_fwd_f32_d72(const float* q, const float* k, const float* v, float* o, float* lse,
                          const unsigned* cu_seqlens_q, const unsigned* cu_seqlens_k, const unsigned* key_lengths,
                          AttnParams p) ATTN32_BODY(72)
TESSERA_KERNEL void __launch_bounds__(ATTN32_THREADS, ATTN32_MIN_BLOCKS)
    attention_fwd_f32_d96(const float* q, const float* k, const float* v, float* o, float* lse,
                          const unsigned* cu_seqlens_q, const unsigned* cu_seqlens_k, const unsigned* key_lengths,
                          AttnParams p) ATTN32_BODY(96)
TESSERA_KERNEL void __launch_bounds__(ATTN32_THREADS, ATTN32_MIN_BLOCKS)
    attention_fwd_f32_d128(const float* q, const float* k, const float* v, float* o, float* lse,
                           const unsigned* cu_seqlens_q, const unsigned* cu_seqlens_k, const unsigned* key_lengths,
                           AttnParams p) ATTN32_BODY(128)
