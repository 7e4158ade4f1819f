// attention_common.cuh -- what the attention forward kernels share (kernels/attention.cu: f16 /
// bf16 on tensor cores; kernels/attention_f32.cu: f32 on CUDA cores): the parameter struct,
// the bounds of a block's (sequence, head) — fixed or varlen offsets, key padding and the
// bottom-right causal end —, the lse index, and the 16-byte row loader of K / V tiles.
// The layouts and mask rules are described at the top of kernels/attention.cu.
#pragma once

#include "tessera.cuh"

// Must match `AttnParams` in src/kernels/attention.rs field for field.
struct AttnParams {
    unsigned batch, heads;
    unsigned q_len, k_len;  // fixed lengths (unused with varlen)
    unsigned varlen;        // 1: cu_seqlens_q / cu_seqlens_k give the sequences
    unsigned causal;
    unsigned q_token_stride, k_token_stride, v_token_stride, o_token_stride;
    unsigned q_head_stride, k_head_stride, v_head_stride, o_head_stride;
    unsigned lse_head_stride;  // Tq (fixed) or total_q (varlen)
    unsigned has_key_lengths;  // 1: key_lengths[b] bounds sequence b's keys
    float scale_log2;          // scale · log2(e)
    unsigned pad_;
};
static_assert(sizeof(AttnParams) == 72, "AttnParams layout changed");

namespace {

// Where sequence b's queries and keys start among the tokens, and how many there are.
struct AttnSeq {
    unsigned q_start, q_len, k_start, k_len;
};

__device__ __forceinline__ AttnSeq attn_sequence(const AttnParams& p, unsigned b, const unsigned* __restrict__ cu_q,
                                                 const unsigned* __restrict__ cu_k) {
    AttnSeq s;
    if (p.varlen) {
        s.q_start = cu_q[b], s.q_len = cu_q[b + 1] - s.q_start;
        s.k_start = cu_k[b], s.k_len = cu_k[b + 1] - s.k_start;
    } else {
        s.q_start = b * p.q_len, s.q_len = p.q_len;
        s.k_start = b * p.k_len, s.k_len = p.k_len;
    }
    return s;
}

// Keys that query rows [m0, m0 + rows) of sequence b can see: [0, n_end). Key padding bounds
// it by key_lengths[b]; causal ends it at the diagonal of the last row, m0 + rows − 1 + Tk − Tq
// (inclusive), so key tiles wholly above the diagonal are never loaded.
__device__ __forceinline__ unsigned attn_key_end(const AttnParams& p, const AttnSeq& s, unsigned b,
                                                 const unsigned* __restrict__ key_lengths, unsigned m0,
                                                 unsigned rows) {
    unsigned n_end = p.has_key_lengths ? min(s.k_len, key_lengths[b]) : s.k_len;
    if (p.causal) {
        const long long last = (long long)m0 + rows + (long long)s.k_len - (long long)s.q_len;
        n_end = last <= 0 ? 0u : (unsigned)min((long long)n_end, last);
    }
    return n_end;
}

// The index in lse of (sequence b, head h, query row): [B, H, Tq] fixed, [H, total_q] varlen.
__device__ __forceinline__ size_t attn_lse_index(const AttnParams& p, const AttnSeq& s, unsigned b, unsigned h,
                                                 unsigned row) {
    const size_t base_b = p.varlen ? (size_t)s.q_start : (size_t)b * p.heads * p.q_len;
    return base_b + (size_t)h * p.lse_head_stride + row;
}

// Copies rows [row0, row0 + ROWS) of one head of a sequence (row r at base + r·token_stride,
// `len` rows valid, CHUNKS 16-byte chunks each) into a tile of rows STRIDE elements apart,
// by cp.async (the caller commits and waits); rows past `len` are zero-filled (0 · garbage
// could be NaN). THREADS threads, `tid` this one's index.
template <class T, unsigned CHUNKS, unsigned STRIDE, unsigned ROWS, unsigned THREADS>
__device__ __forceinline__ void attn_load_rows(T* dst, const T* __restrict__ base, unsigned token_stride,
                                               unsigned row0, unsigned len, unsigned tid) {
    constexpr unsigned PER_CHUNK = 16 / sizeof(T);
    constexpr unsigned TOTAL = ROWS * CHUNKS;
    for (unsigned i = tid; i < TOTAL; i += THREADS) {
        const unsigned r = i / CHUNKS, c = i % CHUNKS;
        T* d = dst + r * STRIDE + c * PER_CHUNK;
        if (row0 + r < len) {
            tessera::cp_async16(d, base + (size_t)(row0 + r) * token_stride + c * PER_CHUNK);
        } else {
            tessera::store16(d, make_uint4(0, 0, 0, 0));
        }
    }
}

}  // namespace
