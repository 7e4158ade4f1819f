// k-means: the k-means++ seeding and the Lloyd centroid update (entry e of a codebook
// becomes the mean of the data rows assigned to it); the assignment step is the
// nearest-codebook search (codebook.cu). Everything here is DETERMINISTIC: the same input
// gives the same bits on every backend and every run. Blocks run in any order and float
// atomicAdd sums in arrival order, so no float is ever summed with an atomic here. Every
// member sum is an f64 sum over the entry's rows in increasing row order, divided by the
// count and rounded once (f64 → f32 → T), exactly what src/reference/kmeans.rs computes:
// GPU, emulator and the Cpu reference agree bit for bit on the same assignment.
//
// Layouts (row-major): data [n, d] T ∈ {float, __half, __nv_bfloat16}; indices [n] u32 (the
// entry of each row, < k); reseed_rows [k] u32 (the data row an entry without members
// becomes: the host draws them); out [k, d] T; status [1] u32 (atomicMin'ed with the first
// row whose index is ≥ k; the caller initializes it to 0xffffffff). k-means++: d2 [n] f32;
// block_sums [G] f64 (passed as unsigned long long words, the Rust side has no f64 buffer); uniforms [k − 1] u64 (raw 64-bit draws); chosen [k] u32 (chosen[0]
// set by the host).
//
// Kernels:
//   kmeans_histogram          one thread per row: counts[indices[r]] += 1 with integer
//                             atomics (integer addition commutes: deterministic), flags an
//                             index ≥ k in the status word.
//   kmeans_exclusive_scan     one block of KM_THREADS: out[i] = Σ_{j<i} in[j], out[len] =
//                             total, in tiles of 256 (warp shuffle scan, warp totals through
//                             shared memory, a running carry every thread keeps).
//   kmeans_digit_counts       } one pass of a stable LSD radix sort of the rows by entry
//   kmeans_digit_scatter      } (KM_RADIX_BITS = 8 bits per pass, ⌈log2 k / 8⌉ passes; the
//                             wrapper scans the counts in between). Block b owns the rows
//                             [b·KM_CHUNK, (b+1)·KM_CHUNK). Counts: a shared 256-bin histogram
//                             of the block's digits, written digit-major (counts[digit·blocks
//                             + b]), so their exclusive scan is the first output slot of
//                             (digit, block) in (digit, block) order. Scatter: the block walks
//                             its rows in 8 tiles of 256, thread t holding row t of the tile;
//                             __match_any_sync on the digit gives each lane its peers in the
//                             warp and its rank among them (popc of the lower peers); the
//                             lowest peer writes the warp's count of that digit to shared
//                             memory; thread t (digit t) turns the 8 warps' counts into
//                             their first slots and advances its running cursor. A row's slot
//                             = cursor base of (digit, warp) + rank: rows keep their order
//                             within a digit, so after the last pass `rows` lists every
//                             entry's members in increasing row order.
//   kmeans_centroids_<T>      one thread per (entry e, dimension j) = global thread e·d + j
//                             (a warp reads consecutive dimensions of one member row when d ≥
//                             32): sums data[rows[m]·d + j] over the entry's segment
//                             [offsets[e], offsets[e+1]) of the sorted rows in f64, in order.
//                             An empty segment copies data row reseed_rows[e].
//   kmeans_plusplus_distances_<T>  } k-means++ seeding, one round per entry after the first
//   kmeans_plusplus_pick           } (all on the device, no host round trip): the distances
//                             kernel gives block b of the grid the rows [b·R, (b+1)·R); warp w
//                             takes rows b·R + w, + 8, ...; its lanes sum (x − c)² over the
//                             dimensions (c = the entry chosen last round, read from
//                             `chosen`) and lane 0 keeps d2[row] = min(d2[row], that) in f32;
//                             after a barrier thread 0 sums the block's d2 in row order in f64
//                             into block_sums[b]. The pick kernel (one thread) draws the next
//                             row with probability ∝ d2: u = the round's 53-bit uniform from
//                             the host's seeded generator, target = u·Σ_b block_sums[b]; it
//                             walks the block sums, then the chosen block's rows, in f64, to the
//                             first row whose running sum exceeds the target (the last row of
//                             positive weight if rounding runs past the end; row ⌊u·n⌋ if every
//                             weight is 0). A row already chosen has weight 0 and is never
//                             drawn again. G = min(⌈n/256⌉, 1024) blocks, R = ⌈n/G⌉. Cost per
//                             round: n·d reads + 2R + G sequential f64 adds; k − 1 rounds.
//   kmeans_centroids_v1_<T>   the plain variant the sorted one is checked against: one warp
//                             per entry scans the whole index array 32 rows at a time; the
//                             ballot of "row is mine" is walked lowest lane first (row order)
//                             and lane l adds dimension j0 + l of each member row (an outer
//                             loop over 32-dimension slices re-scans the indices for d > 32).
//
// Cost of one update, n rows, k entries, d dimensions:
//   sorted: ⌈log2 k / 8⌉ × (read n keys twice, write n keys and rows) + k·d threads reading
//           their members (n·d elements in all, each a gather of one d-row slice) — O(n·d);
//           the longest dependent chain is the largest cluster's f64 sum (row order is what
//           makes it deterministic; a cluster of m rows costs m dependent f64 adds).
//   v1:     k warps × n/32 ballots × ⌈d/32⌉ — O(n·k·d/32) index reads; fine for tests.
#include "tessera.cuh"

#define KM_THREADS 256                   // threads per block of every kernel in this file
#define KM_WARPS (KM_THREADS / 32)
#define KM_RADIX_BITS 8
#define KM_RADIX (1u << KM_RADIX_BITS)   // digits per radix pass
#define KM_TILES 8                       // 256-row tiles per block of the radix kernels
#define KM_CHUNK (KM_THREADS * KM_TILES)  // rows per block of the radix kernels
static_assert(KM_RADIX == KM_THREADS, "thread t owns digit t in the radix kernels");
static_assert(2 * KM_WARPS * KM_RADIX * 4 <= 24 * 1024, "scatter's shared memory");

namespace {

constexpr unsigned FULL = 0xffffffffu;

__device__ __forceinline__ unsigned digit_of(unsigned key, unsigned shift) { return (key >> shift) & (KM_RADIX - 1u); }

template <class T>
__device__ __forceinline__ T mean_of(double sum, unsigned count) {
    return tessera::from_float<T>((float)(sum / (double)count));
}

template <class T>
__device__ void centroids(const T* __restrict__ data, const unsigned* __restrict__ rows,
                          const unsigned* __restrict__ offsets, const unsigned* __restrict__ reseed_rows,
                          T* __restrict__ out, unsigned k, unsigned d) {
    const size_t g = (size_t)blockIdx.x * KM_THREADS + threadIdx.x;
    if (g >= (size_t)k * d) return;
    const unsigned e = (unsigned)(g / d), j = (unsigned)(g % d);
    const unsigned begin = offsets[e], end = offsets[e + 1];
    if (begin == end) {
        out[g] = data[(size_t)reseed_rows[e] * d + j];
        return;
    }
    double sum = 0.0;
    unsigned m = begin;
    // Four loads in flight, added in order.
    for (; m + 4 <= end; m += 4) {
        const float v0 = tessera::to_float(data[(size_t)rows[m] * d + j]);
        const float v1 = tessera::to_float(data[(size_t)rows[m + 1] * d + j]);
        const float v2 = tessera::to_float(data[(size_t)rows[m + 2] * d + j]);
        const float v3 = tessera::to_float(data[(size_t)rows[m + 3] * d + j]);
        sum += (double)v0;
        sum += (double)v1;
        sum += (double)v2;
        sum += (double)v3;
    }
    for (; m < end; ++m) sum += (double)tessera::to_float(data[(size_t)rows[m] * d + j]);
    out[g] = mean_of<T>(sum, end - begin);
}

template <class T>
__device__ void centroids_v1(const T* __restrict__ data, const unsigned* __restrict__ indices,
                             const unsigned* __restrict__ reseed_rows, T* __restrict__ out, unsigned n, unsigned k,
                             unsigned d) {
    const unsigned lane = threadIdx.x % 32;
    const unsigned e = blockIdx.x * KM_WARPS + threadIdx.x / 32;
    if (e >= k) return;  // whole warps leave together
    for (unsigned j0 = 0; j0 < d; j0 += 32) {
        const unsigned j = j0 + lane;
        double sum = 0.0;
        unsigned count = 0;
        for (unsigned base = 0; base < n; base += 32) {
            const unsigned r = base + lane;
            unsigned members = __ballot_sync(FULL, r < n && indices[r] == e);
            count += __popc(members);
            while (members != 0) {
                const unsigned b = __ffs(members) - 1;
                members &= members - 1;
                if (j < d) sum += (double)tessera::to_float(data[(size_t)(base + b) * d + j]);
            }
        }
        if (j < d) out[(size_t)e * d + j] = count ? mean_of<T>(sum, count) : data[(size_t)reseed_rows[e] * d + j];
    }
}

template <class T>
__device__ void plusplus_distances(const T* __restrict__ data, float* __restrict__ d2, double* __restrict__ block_sums,
                                   const unsigned* __restrict__ chosen, unsigned step, unsigned n, unsigned d,
                                   unsigned rows_per_block) {
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const size_t begin = (size_t)blockIdx.x * rows_per_block;
    const size_t end = begin + rows_per_block < (size_t)n ? begin + rows_per_block : (size_t)n;
    const T* c = data + (size_t)chosen[step - 1] * d;
    for (size_t row = begin + warp; row < end; row += KM_WARPS) {  // warp-uniform
        const T* x = data + row * d;
        float s = 0.0f;
        for (unsigned j = lane; j < d; j += 32) {
            const float diff = tessera::to_float(x[j]) - tessera::to_float(c[j]);
            s = fmaf(diff, diff, s);
        }
        s = tessera::warp_reduce_sum(s);
        if (lane == 0) d2[row] = step == 1 ? s : fminf(d2[row], s);
    }
    __syncthreads();  // the block's d2 writes are visible to thread 0
    if (threadIdx.x == 0) {
        double sum = 0.0;
        for (size_t row = begin; row < end; ++row) sum += (double)d2[row];
        block_sums[blockIdx.x] = sum;
    }
}

}  // namespace

TESSERA_KERNEL void __launch_bounds__(32)
    kmeans_plusplus_pick(const float* d2, const unsigned long long* block_sums, const unsigned long long* uniforms,
                         unsigned* chosen, unsigned step, unsigned n, unsigned rows_per_block, unsigned blocks) {
    if (threadIdx.x != 0) return;
    const double* sums = reinterpret_cast<const double*>(block_sums);
    const double u = (double)(uniforms[step - 1] >> 11) * 0x1p-53;  // [0, 1)
    double total = 0.0;
    for (unsigned b = 0; b < blocks; ++b) total += sums[b];
    if (!(total > 0.0)) {
        const unsigned r = (unsigned)(u * (double)n);
        chosen[step] = r < n ? r : n - 1;
        return;
    }
    const double target = u * total;
    double cum = 0.0;
    unsigned b = 0, last_b = 0;
    for (; b < blocks; ++b) {
        if (sums[b] > 0.0) {
            last_b = b;
            if (cum + sums[b] > target) break;
        }
        cum += sums[b];
    }
    const bool past_end = b == blocks;  // rounding: take the last row of positive weight
    if (past_end) b = last_b;
    const double rest = target - cum;
    const size_t begin = (size_t)b * rows_per_block;
    const size_t end = begin + rows_per_block < (size_t)n ? begin + rows_per_block : (size_t)n;
    double run = 0.0;
    size_t pick = begin, last = begin;
    bool found = false;
    for (size_t row = begin; row < end; ++row) {
        const float w = d2[row];
        if (w > 0.0f) {
            last = row;
            run += (double)w;
            if (!past_end && run > rest) {
                pick = row;
                found = true;
                break;
            }
        }
    }
    chosen[step] = (unsigned)(found ? pick : last);
}

TESSERA_KERNEL void __launch_bounds__(KM_THREADS)
    kmeans_histogram(const unsigned* indices, unsigned* counts, unsigned* status, unsigned n, unsigned k) {
    const unsigned r = blockIdx.x * KM_THREADS + threadIdx.x;
    if (r >= n) return;
    const unsigned e = indices[r];
    if (e >= k) {
        atomicMin(status, r);
    } else {
        atomicAdd(&counts[e], 1u);
    }
}

TESSERA_KERNEL void __launch_bounds__(KM_THREADS)
    kmeans_exclusive_scan(const unsigned* src, unsigned* dst, unsigned len) {
    __shared__ unsigned warp_totals[KM_WARPS];
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    unsigned carry = 0;  // identical in every thread
    for (unsigned base = 0; base < len; base += KM_THREADS) {
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
        for (unsigned w = 0; w < KM_WARPS; ++w) {
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

TESSERA_KERNEL void __launch_bounds__(KM_THREADS)
    kmeans_digit_counts(const unsigned* keys, unsigned* counts, unsigned n, unsigned shift) {
    __shared__ unsigned hist[KM_RADIX];
    const unsigned tid = threadIdx.x;
    hist[tid] = 0;
    __syncthreads();
    const size_t begin = (size_t)blockIdx.x * KM_CHUNK;
    const size_t end = begin + KM_CHUNK < (size_t)n ? begin + KM_CHUNK : (size_t)n;
    for (size_t r = begin + tid; r < end; r += KM_THREADS) atomicAdd(&hist[digit_of(keys[r], shift)], 1u);
    __syncthreads();
    counts[(size_t)tid * gridDim.x + blockIdx.x] = hist[tid];
}

TESSERA_KERNEL void __launch_bounds__(KM_THREADS)
    kmeans_digit_scatter(const unsigned* keys_in, const unsigned* rows_in, const unsigned* offsets,
                         unsigned* keys_out, unsigned* rows_out, unsigned n, unsigned shift, unsigned first_pass) {
    __shared__ unsigned warp_count[KM_WARPS][KM_RADIX];  // rows of digit t in warp w (this tile)
    __shared__ unsigned warp_first[KM_WARPS][KM_RADIX];  // first slot of digit t for warp w
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    unsigned cursor = offsets[(size_t)tid * gridDim.x + blockIdx.x];  // next slot of digit tid
#pragma unroll
    for (unsigned w = 0; w < KM_WARPS; ++w) warp_count[w][tid] = 0;
    __syncthreads();
    const size_t begin = (size_t)blockIdx.x * KM_CHUNK;
    for (unsigned t = 0; t < KM_TILES; ++t) {
        const size_t tile0 = begin + (size_t)t * KM_THREADS;
        if (tile0 >= n) break;  // block-uniform
        const size_t row = tile0 + tid;
        const bool valid = row < n;
        const unsigned key = valid ? keys_in[row] : 0u;
        const unsigned digit = valid ? digit_of(key, shift) : KM_RADIX;  // padding lanes: a group of their own
        const unsigned peers = __match_any_sync(FULL, digit);
        const unsigned rank = __popc(peers & ((1u << lane) - 1u));
        if (valid && rank == 0) warp_count[warp][digit] = __popc(peers);
        __syncthreads();
#pragma unroll
        for (unsigned w = 0; w < KM_WARPS; ++w) {
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

#define KMEANS_KERNELS(T, SUFFIX)                                                                                 \
    TESSERA_KERNEL void __launch_bounds__(KM_THREADS)                                                             \
        kmeans_centroids_##SUFFIX(const T* data, const unsigned* rows, const unsigned* offsets,                   \
                                  const unsigned* reseed_rows, T* out, unsigned k, unsigned d) {                  \
        centroids<T>(data, rows, offsets, reseed_rows, out, k, d);                                                \
    }                                                                                                             \
    TESSERA_KERNEL void __launch_bounds__(KM_THREADS)                                                             \
        kmeans_centroids_v1_##SUFFIX(const T* data, const unsigned* indices, const unsigned* reseed_rows, T* out, \
                                     unsigned n, unsigned k, unsigned d) {                                        \
        centroids_v1<T>(data, indices, reseed_rows, out, n, k, d);                                                \
    }                                                                                                             \
    TESSERA_KERNEL void __launch_bounds__(KM_THREADS)                                                             \
        kmeans_plusplus_distances_##SUFFIX(const T* data, float* d2, unsigned long long* block_sums,                \
                                           const unsigned* chosen, unsigned step, unsigned n, unsigned d,          \
                                           unsigned rows_per_block) {                                             \
        plusplus_distances<T>(data, d2, reinterpret_cast<double*>(block_sums), chosen, step, n, d, rows_per_block); \
    }

KMEANS_KERNELS(float, f32)
KMEANS_KERNELS(tessera::f16, f16)
KMEANS_KERNELS(tessera::bf16, bf16)
