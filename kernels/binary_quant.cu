// Binary quantizers: LFQ (lookup-free quantization, MAGVIT-v2) and BSQ (binary spherical
// quantization), with WeTok-style group-wise token indices.
//
// Layouts (row-major, one latent per row):
//   z         [n, d]  T ∈ {float, __half, __nv_bfloat16}, 1 ≤ d ≤ 1024
//   indices   [n, G]  uint32, G = ceil(d / group_bits), 1 ≤ group_bits ≤ 31
//   values    [n, d]  T
//   sq_error  [n]     float
//   status    [1]     uint32, atomicMin'ed with the first row whose input is invalid;
//                     the caller initialises it to 0xffffffff.
//
// Per row (bit_i is the same for both ops):
//   bit_i   = z_i > 0                     (0, -0 and NaN give bit 0)
//   LFQ:    value_i = bit_i ? +1 : -1                 sq_error = Σ_i (z_i − value_i)²
//   BSQ:    u = z / ‖z‖₂,  value_i = (bit_i ? +1 : −1) · c,  c = 1/√d rounded to f32
//           sq_error = Σ_i (u_i − value_i)² = ‖u − value‖²
//           (u_i > 0 ⟺ z_i > 0 whenever ‖z‖ is finite and non-zero, so the bits are those
//           of u.) A zero row has u = 0: every bit 0, values −c, sq_error = d·c² ≈ 1.
//   index of group g = Σ_{i ∈ group g} bit_i · 2^(i − g·group_bits), where group g holds
//           dims g·group_bits .. min(d, (g+1)·group_bits) − 1 (its first dim is the least
//           significant bit; the last group may be shorter).
// Invalid rows: a NaN (LFQ, BSQ) or ±Inf (BSQ only: no finite normalization) anywhere in
// the row. The row is flagged in `status` and its sq_error is NaN; its bits, indices and
// values are still those of the signs. LFQ defines ±Inf (sign bit; sq_error = +Inf).
//
// BSQ numerics: ‖z‖ is computed without overflow or underflow for every finite f32 row
// (entries up to 3.4e38, down to subnormals): y = z · 2^−e with 2^e ≤ max|z_i| < 2^(e+1)
// (a power-of-two scaling, applied as two multiplications so each factor is a normal
// f32; exact except for entries over 2^126 times smaller than the largest, which cannot
// change an f32 result), S = Σ y_i² ∈ [1, 4d), u_i = y_i / √S. Everything else is f32;
// the bits and values never depend on rounding (they come from the signs of z).
//
// Kernels (each for _f32, _f16, _bf16):
//   binary_quant_{lfq,bsq}_v1_<T>   plain reference variant: one thread per row, direct
//                         global loads and stores, sums in double. Obviously correct;
//                         strided (uncoalesced) for d > 1.
//   binary_quant_{lfq,bsq}_<T>      the fast, fused variant: one pass over memory.
//       A block of BQ_THREADS = 256 threads owns a tile of `tile_rows` consecutive rows,
//       one contiguous run of tile_rows·d elements (tile_rows·d·sizeof(T) is a multiple
//       of 16 bytes, so every tile starts 16-byte aligned; chosen by the wrapper: ~16 KiB
//       and at least one row per warp, ≤ 32 KiB):
//       1. the block stages the tile into shared memory with 16-byte vector loads
//          (tile_copy.cuh), whatever d is;
//       2. rows are cut into lane vectors of V consecutive elements, V the widest of 8
//          (16-bit types only), 4, 2, 1 that divides d, so a vector is one 16-, 8-, 4- or
//          2-byte aligned shared access. Each row is owned by a segment of
//          L = min(32, next_pow2(d/V)) lanes of one warp (32/L rows per warp at a time);
//          lane s of the segment handles vectors s, s+L, s+2L, ... of the row
//          (consecutive lanes, consecutive addresses: conflict-free). Each lane packs the
//          sign bits of its V elements; the row's 32-bit bit words are assembled from
//          P = min(L, 32/V) lanes: for V = 1 with one __ballot_sync (32 dims' bits in one
//          instruction), for V > 1 by an OR over log2(P) xor-shuffles of the lanes'
//          shifted V-bit fields. One lane per word puts it into the warp's 32-word
//          buffer in shared memory (a row has ≤ 32 words; the 32/L rows of a pass
//          together too); after __syncwarp, lane s emits groups s, s+L, ...: a group
//          (≤ 31 bits) straddles at most two words, read as one 64-bit pair and shifted.
//          Sums and maxima are xor-shuffle reductions within the segment. The values
//          overwrite the row in shared memory (each lane rewrites only the vectors it
//          read); indices go straight to global memory (a row's G indices, and the rows
//          of one warp pass, are contiguous: coalesced), sq_error from the segment's lane
//          0 (consecutive rows: coalesced);
//       3. the block writes the value tile out with 16-byte vector stores.
//       BSQ reads its row three times from shared memory (max|z|, Σy², then bits/values/
//       error), global memory once.
//
// Why this mapping on an H100 for d = 16..1024: at HBM rate (3.35 TB/s) the kernel must
// retire 420 G (f32) to 840 G (16-bit) elements per second, and the SMs issue ~0.9 T warp
// instructions per second: a budget of ~35 (16-bit) to ~70 (f32) warp instructions per
// 32 elements, everything included. The fixed work of a row (reductions, bit words,
// group extraction, ~50–90 warp instructions) must be shared by as many elements as
// possible.
//   * Memory side: staging a tile of whole rows decouples the global accesses from the
//     row length: every warp load is 512 contiguous bytes of 16-byte vectors even for
//     d = 16 or d = 7, and a block has a whole tile (~16 KiB) of loads in flight, which a
//     warp reading its own row with 2- or 4-byte lane-strided global loads reaches only
//     with deep, d-dependent unrolling.
//   * Compute side: one element per lane and one row per warp (the plain ballot mapping)
//     costs a full warp's reductions per row: for d = 32 bf16 that is ~2 T warp
//     instructions/s at HBM rate, more than the SMs issue. A lane vector of V elements
//     divides the lanes per row, and so the per-row cost, by V (d = 32 bf16: 4 lanes per
//     row, 8 rows per warp pass) while the per-element work stays in registers; one
//     shared load or store instruction then moves V elements instead of one.
//     A thread per row would need no collectives, but its shared reads (stride d) are
//     bank-conflicted and its index stores uncoalesced.
//   * d not divisible by 2 (7, 33, 257) falls back to V = 1, where the ballot still
//     yields 32 bits per instruction and sub-warp segments (L = next_pow2(d) < 32) keep
//     all lanes busy for small d.
// These are estimates from instruction counts, not measurements; benches/binary_quant.rs
// measures the fused kernel against v1 on a GPU.
#include "tessera.cuh"
#include "tile_copy.cuh"

#define BQ_MAX_DIM 1024
#define BQ_THREADS 256
#define BQ_WARPS (BQ_THREADS / 32)
// The wrapper's tile: ~16 KiB of rows and at least BQ_WARPS rows (rounded up to keep
// tiles 16-byte aligned), so at most 8 rows of 1024 f32 = 32 KiB: within the default
// 48 KiB of dynamic shared memory.
#define BQ_MAX_TILE_BYTES (32 * 1024)
static_assert(BQ_WARPS * BQ_MAX_DIM * 4 <= BQ_MAX_TILE_BYTES, "BQ tile bound");
static_assert(BQ_MAX_TILE_BYTES <= 48 * 1024, "BQ tile exceeds the default shared-memory budget");

// Must match `BinaryQuantParams` in src/kernels/binary_quant.rs field for field.
struct BinaryQuantParams {
    unsigned dim;         // d, 1..=1024
    unsigned group_bits;  // 1..=31
    unsigned groups;      // G = ceil(d / group_bits)
    unsigned tile_rows;   // rows per block tile (fast kernel only)
    float value_scale;    // c: 1 for LFQ, 1/sqrt(d) rounded to f32 for BSQ
};
static_assert(sizeof(BinaryQuantParams) == 20, "BinaryQuantParams layout changed");

namespace {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float bq_inf() { return __uint_as_float(0x7f800000u); }
__device__ __forceinline__ float bq_nan() { return __uint_as_float(0x7fc00000u); }

// An input the op has no result for: NaN for LFQ; NaN or ±Inf for BSQ.
template <bool BSQ>
__device__ __forceinline__ bool invalid_input(float x) {
    return BSQ ? !(fabsf(x) < bq_inf()) : x != x;
}

// 2^k as a normal f32, k ∈ [−126, 127].
__device__ __forceinline__ float exp2_int(int k) { return __uint_as_float((unsigned)(k + 127) << 23); }

// The two factors f1·f2 = 2^−e with 2^e ≤ m < 2^(e+1), for a finite m > 0 (normal or
// subnormal, e ∈ [−149, 127]); each factor is a normal f32 (exponents in [−64, 75]).
__device__ __forceinline__ void pow2_scale(float m, float* f1, float* f2) {
    const unsigned bits = __float_as_uint(m);
    const unsigned field = bits >> 23;
    // Subnormal: m = bits·2^−149, floor(log2 bits) = 31 − clz(bits).
    const int e = field != 0 ? (int)field - 127 : -118 - __clz((int)bits);
    const int a = e >> 1;  // floor(e / 2) ∈ [−75, 63]
    *f1 = exp2_int(-a);
    *f2 = exp2_int(a - e);  // −(e − a) ∈ [−64, 74]
}

// ---- v1: one thread per row ---------------------------------------------------------------

template <class T, bool BSQ>
__device__ void quantize_v1(const T* __restrict__ z, unsigned* __restrict__ indices, T* __restrict__ values,
                            float* __restrict__ sq_error, unsigned* __restrict__ status, unsigned n,
                            const BinaryQuantParams& p) {
    const unsigned row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= n) return;
    const T* in = z + (size_t)row * p.dim;
    T* out = values + (size_t)row * p.dim;
    unsigned* idx = indices + (size_t)row * p.groups;

    bool bad = false;
    double norm = 1.0;  // LFQ: z itself
    if (BSQ) {
        // Squares of f32 values neither overflow nor underflow in double.
        double sum = 0.0;
        for (unsigned i = 0; i < p.dim; ++i) {
            const double x = tessera::to_float(in[i]);
            sum = __fma_rn(x, x, sum);  // x·x is exact in double: the FMA only fixes the order
        }
        norm = sqrt(sum);
    }
    const double c = p.value_scale;
    double err = 0.0;
    for (unsigned g = 0; g < p.groups; ++g) {
        unsigned index = 0;
        for (unsigned j = 0; j < p.group_bits; ++j) {
            const unsigned i = g * p.group_bits + j;
            if (i >= p.dim) break;
            const float x = tessera::to_float(in[i]);
            bad |= invalid_input<BSQ>(x);
            const bool bit = x > 0.0f;
            index |= (unsigned)bit << j;
            out[i] = tessera::from_float<T>(bit ? p.value_scale : -p.value_scale);
            const double u = BSQ ? (norm > 0.0 ? (double)x / norm : 0.0) : (double)x;
            const double d = __dadd_rn(u, bit ? -c : c);
            err = __fma_rn(d, d, err);
        }
        idx[g] = index;
    }
    sq_error[row] = bad ? bq_nan() : (float)err;
    if (bad) atomicMin(status, row);
}

// ---- fast: staged row tiles, a segment of lanes per row -------------------------------------

// V consecutive elements, loaded and stored as one 2-, 4-, 8- or 16-byte shared access.
template <class T, int V>
struct alignas(V * sizeof(T)) Pack {
    T e[V];
};

// Sum / max over the L lanes of this lane's segment (segments are aligned groups of L
// consecutive lanes, L a power of two ≤ 32). Every lane of the warp must call.
__device__ __forceinline__ float segment_sum(float v, unsigned L) {
    for (unsigned o = L >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, (int)o);
    return v;
}
__device__ __forceinline__ float segment_max(float v, unsigned L) {
    for (unsigned o = L >> 1; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, (int)o));
    return v;
}

// One 32-bit word of a row's bits from P aligned lanes, each holding V bits `b` (lane
// `sub` of the segment holds bits (sub mod P)·V .. (sub mod P)·V + V − 1 of the word),
// P·V ≤ 32. V = 1: one ballot. Every lane of the warp must call; every lane of the P
// lanes receives the word.
template <int V>
__device__ __forceinline__ unsigned gather_word(unsigned b, unsigned lane, unsigned sub, unsigned P) {
    if (V == 1) {
        const unsigned ballot = __ballot_sync(kFullMask, b);
        return P == 32 ? ballot : (ballot >> (lane & ~(P - 1u))) & ((1u << P) - 1u);
    }
    unsigned word = b << ((sub & (P - 1u)) * V);
    for (unsigned o = 1; o < P; o <<= 1) word |= __shfl_xor_sync(kFullMask, word, (int)o);
    return word;
}

// Quantizes the `rows` rows of a staged tile in place (values overwrite latents) with V
// elements per lane access (d is a multiple of V). Lane `sub` of the L-lane segment of
// a row owns its vectors sub, sub + L, ... The row's bit words pass through `wbuf`, this
// warp's 32 words of shared memory.
template <class T, bool BSQ, int V>
__device__ __forceinline__ void quantize_tile_rows(T* __restrict__ tile, unsigned rows, unsigned row0,
                                                   unsigned* __restrict__ indices, float* __restrict__ sq_error,
                                                   unsigned* __restrict__ status, const BinaryQuantParams& p,
                                                   unsigned* __restrict__ wbuf) {
    using P_t = Pack<T, V>;
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const unsigned dim = p.dim;
    const unsigned vectors = dim / V;  // per row
    // L = min(32, next_pow2(vectors)) lanes per row, 32/L rows per warp at a time.
    const unsigned shift = vectors > 16 ? 5u : (vectors == 1 ? 0u : 32u - (unsigned)__clz((int)(vectors - 1)));
    const unsigned L = 1u << shift;
    const unsigned seg = lane >> shift, sub = lane & (L - 1u);
    const unsigned P = min(L, 32u / V);              // lanes per bit word
    const unsigned chunks = (vectors + L - 1) >> shift;
    const unsigned words = (dim + 31) >> 5;          // bit words per row; (32/L)·words ≤ 32
    const unsigned rows_per_pass = 32u >> shift;
    const float c = p.value_scale;
    const T vpos = tessera::from_float<T>(c), vneg = tessera::from_float<T>(-c);
    unsigned* my_words = wbuf + seg * words;

    // Warp-uniform loop: every lane runs every collective; segments past the tile's last
    // row (r >= rows) take part with no elements.
    for (unsigned r0 = warp * rows_per_pass; r0 < rows; r0 += BQ_WARPS * rows_per_pass) {
        const unsigned r = r0 + seg;
        const bool live = r < rows;
        P_t* row = reinterpret_cast<P_t*>(tile + (size_t)(live ? r : 0) * dim);

        bool bad = false;
        float f1 = 1.0f, f2 = 1.0f, inv_norm = 0.0f;
        if (BSQ) {
            // max |z_i|, with NaN counted as +Inf: m = Inf flags the row.
            float m = 0.0f;
#pragma unroll 1
            for (unsigned k = 0; k < chunks; ++k) {
                const unsigned q = (k << shift) + sub;
                if (live && q < vectors) {
                    const P_t v = row[q];
#pragma unroll
                    for (int j = 0; j < V; ++j) {
                        const float x = tessera::to_float(v.e[j]);
                        m = fmaxf(m, x != x ? bq_inf() : fabsf(x));
                    }
                }
            }
            m = segment_max(m, L);
            bad = !(m < bq_inf());
            if (m > 0.0f && !bad) pow2_scale(m, &f1, &f2);
            float s = 0.0f;
#pragma unroll 1
            for (unsigned k = 0; k < chunks; ++k) {
                const unsigned q = (k << shift) + sub;
                if (live && q < vectors) {
                    const P_t v = row[q];
#pragma unroll
                    for (int j = 0; j < V; ++j) {
                        const float y = __fmul_rn(__fmul_rn(tessera::to_float(v.e[j]), f1), f2);
                        s = __fmaf_rn(y, y, s);
                    }
                }
            }
            s = segment_sum(s, L);
            // m > 0 ⇒ s ≥ 1; a zero row keeps inv_norm = 0, so u = 0.
            if (m > 0.0f) inv_norm = 1.0f / sqrtf(s);
        }

        float err = 0.0f;
#pragma unroll 1
        for (unsigned k = 0; k < chunks; ++k) {
            const unsigned q = (k << shift) + sub;
            const bool here = live && q < vectors;
            unsigned b = 0;
            if (here) {
                P_t v = row[q];
#pragma unroll
                for (int j = 0; j < V; ++j) {
                    const float x = tessera::to_float(v.e[j]);
                    const bool bit = x > 0.0f;
                    b |= (unsigned)bit << j;
                    v.e[j] = bit ? vpos : vneg;
                    // Explicit roundings: a contracted `u·inv_norm − c` would not give the
                    // exact 0 error of a vertex, and would differ between nvcc and the host.
                    const float u = BSQ ? __fmul_rn(__fmul_rn(__fmul_rn(x, f1), f2), inv_norm) : x;
                    const float d = __fsub_rn(u, bit ? c : -c);
                    err = __fmaf_rn(d, d, err);
                }
                row[q] = v;
            }
            const unsigned word = gather_word<V>(b, lane, sub, P);
            if (here && (sub & (P - 1u)) == 0) my_words[(q * V) >> 5] = word;
        }
        err = segment_sum(err, L);
        // LFQ: terms are ≥ 0 or +Inf, so the sum is NaN exactly when a latent is NaN.
        if (!BSQ) bad = err != err;
        __syncwarp();

        // Group g = sub, sub + L, ...: bits g·gb .. g·gb + gb − 1, inside words w, w + 1.
        for (unsigned g0 = 0; g0 < p.groups; g0 += L) {
            const unsigned g = g0 + sub;
            if (live && g < p.groups) {
                const unsigned start = g * p.group_bits;
                const unsigned w = start >> 5, off = start & 31u;
                const unsigned long long lo = my_words[w];
                const unsigned long long hi = w + 1 < words ? my_words[w + 1] : 0u;
                const unsigned index = (unsigned)(((hi << 32) | lo) >> off) & ((1u << p.group_bits) - 1u);
                indices[(size_t)(row0 + r) * p.groups + g] = index;
            }
        }
        if (live && sub == 0) {
            sq_error[row0 + r] = bad ? bq_nan() : err;
            if (bad) atomicMin(status, row0 + r);
        }
        __syncwarp();  // the next pass rewrites wbuf
    }
}

template <class T, bool BSQ>
__device__ void quantize_tiled(const T* __restrict__ z, unsigned* __restrict__ indices, T* __restrict__ values,
                               float* __restrict__ sq_error, unsigned* __restrict__ status, unsigned n,
                               const BinaryQuantParams& p) {
    TESSERA_DYNAMIC_SMEM(T, tile);
    __shared__ unsigned wbuf[BQ_WARPS][32];
    const unsigned tid = threadIdx.x;
    const unsigned row0 = blockIdx.x * p.tile_rows;
    const unsigned rows = min(p.tile_rows, n - row0);
    const size_t elem0 = (size_t)row0 * p.dim;
    const unsigned count = rows * p.dim;

    tessera::copy_contiguous(tile, z + elem0, count, tid, BQ_THREADS);
    __syncthreads();
    // The widest lane access (≤ 16 bytes) whose element count divides d: rows, and so
    // the vectors, then start aligned to it.
    unsigned* w = wbuf[tid >> 5];
    constexpr unsigned kMaxV = 16 / sizeof(T);
    if (kMaxV >= 8 && p.dim % 8 == 0) {
        quantize_tile_rows<T, BSQ, (kMaxV >= 8 ? 8 : 1)>(tile, rows, row0, indices, sq_error, status, p, w);
    } else if (p.dim % 4 == 0) {
        quantize_tile_rows<T, BSQ, 4>(tile, rows, row0, indices, sq_error, status, p, w);
    } else if (p.dim % 2 == 0) {
        quantize_tile_rows<T, BSQ, 2>(tile, rows, row0, indices, sq_error, status, p, w);
    } else {
        quantize_tile_rows<T, BSQ, 1>(tile, rows, row0, indices, sq_error, status, p, w);
    }
    __syncthreads();
    tessera::copy_contiguous(values + elem0, tile, count, tid, BQ_THREADS);
}

}  // namespace

#define BQ_KERNELS(T, SUFFIX)                                                                                   \
    TESSERA_KERNEL void __launch_bounds__(BQ_THREADS)                                                            \
        binary_quant_lfq_v1_##SUFFIX(const T* z, unsigned* indices, T* values, float* sq_error,                 \
                                     unsigned* status, unsigned n, BinaryQuantParams p) {                       \
        quantize_v1<T, false>(z, indices, values, sq_error, status, n, p);                                      \
    }                                                                                                           \
    TESSERA_KERNEL void __launch_bounds__(BQ_THREADS)                                                            \
        binary_quant_bsq_v1_##SUFFIX(const T* z, unsigned* indices, T* values, float* sq_error,                 \
                                     unsigned* status, unsigned n, BinaryQuantParams p) {                       \
        quantize_v1<T, true>(z, indices, values, sq_error, status, n, p);                                       \
    }                                                                                                           \
    TESSERA_KERNEL void __launch_bounds__(BQ_THREADS)                                                            \
        binary_quant_lfq_##SUFFIX(const T* z, unsigned* indices, T* values, float* sq_error, unsigned* status,  \
                                  unsigned n, BinaryQuantParams p) {                                            \
        quantize_tiled<T, false>(z, indices, values, sq_error, status, n, p);                                   \
    }                                                                                                           \
    TESSERA_KERNEL void __launch_bounds__(BQ_THREADS)                                                            \
        binary_quant_bsq_##SUFFIX(const T* z, unsigned* indices, T* values, float* sq_error, unsigned* status,  \
                                  unsigned n, BinaryQuantParams p) {                                            \
        quantize_tiled<T, true>(z, indices, values, sq_error, status, n, p);                                    \
    }

BQ_KERNELS(float, f32)
BQ_KERNELS(tessera::f16, f16)
BQ_KERNELS(tessera::bf16, bf16)
