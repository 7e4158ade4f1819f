// Stable LSD radix sort of row numbers by a u32 key, and the exclusive prefix sum it (and
// k-means' segment offsets) is built from. Integer only, so every result is exact and
// independent of block order: the same bits on every backend.
//
// Layouts: keys [n] u32; rows [n] u32 (row numbers: the sort's payload); counts / offsets
// [RS_RADIX · blocks] u32, digit-major (entry digit·blocks + b); scan src [len] u32, dst
// [len + 1] u32.
//
// Kernels:
//   scan_exclusive            one block of RS_THREADS: dst[i] = Σ_{j<i} src[j], dst[len] =
//                             total, in tiles of 256 (warp shuffle scan, warp totals through
//                             shared memory, a running carry every thread keeps). O(len) work
//                             in one block: it is meant for histograms (≤ a few 10^5 words).
//   radix_sort_counts         } one pass of the sort (RS_RADIX_BITS = 8 bits per pass,
//   radix_sort_scatter        } ⌈bits of the largest key / 8⌉ passes; the wrapper scans the
//                             counts in between). Block b owns the rows [b·RS_CHUNK,
//                             (b+1)·RS_CHUNK). Counts: a shared 256-bin histogram of the
//                             block's digits, written digit-major (counts[digit·blocks + b]),
//                             so their exclusive scan is the first output slot of (digit,
//                             block) in (digit, block) order. Scatter: the block walks its
//                             rows in 8 tiles of 256, thread t holding row t of the tile;
//                             __match_any_sync on the digit gives each lane its peers in the
//                             warp and its rank among them (popc of the lower peers); the
//                             lowest peer writes the warp's count of that digit to shared
//                             memory; thread t (digit t) turns the 8 warps' counts into
//                             their first slots and advances its running cursor. A row's slot
//                             = cursor base of (digit, warp) + rank: rows keep their order
//                             within a digit, so after the last pass `rows_out` lists the
//                             rows by key, equal keys in increasing row order. The first pass
//                             reads no rows_in (row numbers are the identity).
//
// Cost of a sort of n keys below 2^bits: ⌈bits/8⌉ × (read n keys twice, write n keys and
// rows, one scan of 256·⌈n/2048⌉ counts) — O(n) per pass.
//
// Index arithmetic: the wrapper keeps n and len ≤ 2^31, so the u32 tile counters (base +=
// 256) cannot wrap; row and count offsets are size_t.
#include "tessera.cuh"

#define RS_THREADS 256                   // threads per block of every kernel in this file
#define RS_WARPS (RS_THREADS / 32)
#define RS_RADIX_BITS 8
#define RS_RADIX (1u << RS_RADIX_BITS)   // digits per radix pass
#define RS_TILES 8                       // 256-row tiles per block of the sort kernels
#define RS_CHUNK (RS_THREADS * RS_TILES)  // rows per block of the sort kernels
static_assert(RS_RADIX == RS_THREADS, "thread t owns digit t in the sort kernels");
static_assert(2 * RS_WARPS * RS_RADIX * 4 <= 24 * 1024, "scatter's shared memory");

namespace {

constexpr unsigned FULL = 0xffffffffu;

__device__ __forceinline__ unsigned digit_of(unsigned key, unsigned shift) { return (key >> shift) & (RS_RADIX - 1u); }

}  // namespace

TESSERA_KERNEL void __launch_bounds__(RS_THREADS)
    scan_exclusive(const unsigned* src, unsigned* dst, unsigned len) {
    __shared__ unsigned warp_totals[RS_WARPS];
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    unsigned carry = 0;  // identical in every thread
    for (unsigned base = 0; base < len; base += RS_THREADS) {
        const unsigned i = base + tid;
        const unsigned v = i < len ? src[i] : 0u;
        unsigned x = v;  // inclusive scan within the warp
#pragma unroll
        for (unsigned o = 1; o < 32; o <<= 1) {
            const unsigned y = __shfl_up_sync(FULL, x, o);
            if (lane >= o) x += y;
        }
        if (lane == 31) warp_totals[warp] = x;
        __syncthreads();
        unsigned before = 0, total = 0;
#pragma unroll
        for (unsigned w = 0; w < RS_WARPS; ++w) {
            const unsigned t = warp_totals[w];
            before += w < warp ? t : 0u;
            total += t;
        }
        if (i < len) dst[i] = carry + before + x - v;
        carry += total;
        __syncthreads();  // warp_totals is rewritten by the next tile
    }
    if (tid == 0) dst[len] = carry;
}

TESSERA_KERNEL void __launch_bounds__(RS_THREADS)
    radix_sort_counts(const unsigned* keys, unsigned* counts, unsigned n, unsigned shift) {
    __shared__ unsigned hist[RS_RADIX];
    const unsigned tid = threadIdx.x;
    hist[tid] = 0;
    __syncthreads();
    const size_t begin = (size_t)blockIdx.x * RS_CHUNK;
    const size_t end = begin + RS_CHUNK < (size_t)n ? begin + RS_CHUNK : (size_t)n;
    for (size_t r = begin + tid; r < end; r += RS_THREADS) atomicAdd(&hist[digit_of(keys[r], shift)], 1u);
    __syncthreads();
    counts[(size_t)tid * gridDim.x + blockIdx.x] = hist[tid];
}

TESSERA_KERNEL void __launch_bounds__(RS_THREADS)
    radix_sort_scatter(const unsigned* keys_in, const unsigned* rows_in, const unsigned* offsets,
                         unsigned* keys_out, unsigned* rows_out, unsigned n, unsigned shift, unsigned first_pass) {
    __shared__ unsigned warp_count[RS_WARPS][RS_RADIX];  // rows of digit t in warp w (this tile)
    __shared__ unsigned warp_first[RS_WARPS][RS_RADIX];  // first slot of digit t for warp w
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    unsigned cursor = offsets[(size_t)tid * gridDim.x + blockIdx.x];  // next slot of digit tid
#pragma unroll
    for (unsigned w = 0; w < RS_WARPS; ++w) warp_count[w][tid] = 0;
    __syncthreads();
    const size_t begin = (size_t)blockIdx.x * RS_CHUNK;
    for (unsigned t = 0; t < RS_TILES; ++t) {
        const size_t tile0 = begin + (size_t)t * RS_THREADS;
        if (tile0 >= n) break;  // block-uniform
        const size_t row = tile0 + tid;
        const bool valid = row < n;
        const unsigned key = valid ? keys_in[row] : 0u;
        const unsigned digit = valid ? digit_of(key, shift) : RS_RADIX;  // padding lanes: a group of their own
        const unsigned peers = __match_any_sync(FULL, digit);
        const unsigned rank = __popc(peers & ((1u << lane) - 1u));
        if (valid && rank == 0) warp_count[warp][digit] = __popc(peers);
        __syncthreads();
#pragma unroll
        for (unsigned w = 0; w < RS_WARPS; ++w) {
            const unsigned c = warp_count[w][tid];
            warp_first[w][tid] = cursor;
            cursor += c;
            warp_count[w][tid] = 0;
        }
        __syncthreads();
        if (valid) {
            const unsigned slot = warp_first[warp][digit] + rank;
            keys_out[slot] = key;
            rows_out[slot] = first_pass ? (unsigned)row : rows_in[row];
        }
        // The next tile's first barrier orders these reads before warp_first is rewritten.
    }
}
