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
// block_sums [G] f64 (passed as unsigned long long words, the Rust side has no f64 buffer);
// uniforms [k − 1] u64 (raw 64-bit draws, draw g gives entry g + 1); chosen [k] u32
// (chosen[0] set by the host).
//
// Kernels:
//   kmeans_histogram          one thread per row: counts[indices[r]] += 1 with integer
//                             atomics (integer addition commutes: deterministic), flags an
//                             index ≥ k in the status word.
//   kmeans_centroids_<T>      one thread per (entry e, dimension j) = global thread e·d + j
//                             (a warp reads consecutive dimensions of one member row when d ≥
//                             32): sums data[rows[m]·d + j] over the entry's segment
//                             [offsets[e], offsets[e+1]) of the sorted rows in f64, in order.
//                             An empty segment copies data row reseed_rows[e].
//   kmeans_plusplus_distances_<T>  } batched k-means++ seeding (src/reference/kmeans.rs,
//   kmeans_plusplus_pick           } `plusplus_rows`, defines it): the first entry is a row
//                             the host drew (chosen[0]); then the k − 1 draws go B =
//                             max(1, ⌈(k − 1)/32⌉) per round in ⌈(k − 1)/B⌉ ≤ 32 rounds, each
//                             round = one distances launch + one pick launch, all on the
//                             device (uniforms pre-drawn and uploaded once, no host round
//                             trip). Distances: G = min(⌈n/256⌉, 1024) blocks, block b owns
//                             the rows [b·R, (b+1)·R), R = ⌈n/G⌉; warp w takes rows b·R + w,
//                             + 8, ...; for each centre the previous round chose
//                             (chosen[begin..end)) its lanes sum (x − c)² over dimensions
//                             lane, lane + 32, … with fmaf, warp_reduce_sum combines them,
//                             and the row keeps d2[row] = min(d2[row], that) in f32 (a
//                             running minimum: every centre is compared with every row once
//                             over the whole seeding). After a barrier thread 0 sums the
//                             block's d2 in row order in f64 into block_sums[b]. Pick: one
//                             thread per draw i of the round (⌈B/256⌉ blocks): u = the draw's
//                             53-bit uniform, q = (i + u)/B (stratified: draw i samples the
//                             i-th B-quantile band of the D² mass), target = q·Σ_b
//                             block_sums[b]; it walks the block sums, then the chosen block's
//                             rows, in f64, to the first row whose running sum exceeds the
//                             target (the last row of positive weight if rounding runs past
//                             the end; row ⌊q·n⌋ if every weight is 0) and writes
//                             chosen[1 + draw]. All draws of a round see the same d2, so
//                             picks are in increasing row order; a row already chosen has
//                             weight 0 and is never drawn again; two draws of a round share
//                             a row only if its weight exceeds 1/B of the mass (the entry is
//                             then a copy, deterministically; the first update re-seeds it).
//                             Cost: 2·⌈(k − 1)/B⌉ ≤ 64 launches for any k (k = 65,536: 32
//                             rounds of 2,048, 64 launches; the old one-entry-per-round
//                             seeding took 2(k − 1) = 131,070); n·k·d distance terms in all,
//                             plus per draw G + R sequential f64 adds, per round R.
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
//
// Index arithmetic: row, entry and dimension counters are u32 and element offsets size_t
// (row · d in 64 bits); the wrapper keeps n, k and d ≤ 2^31, so no counter stepped by a
// block (256), a warp (32) or 4 can wrap past 2^32 (a wrapped loop counter never ends).
#include "tessera.cuh"

#define KM_THREADS 256  // threads per block of every kernel in this file
#define KM_WARPS (KM_THREADS / 32)

namespace {

constexpr unsigned FULL = 0xffffffffu;

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
                                   const unsigned* __restrict__ chosen, unsigned begin, unsigned end, unsigned n,
                                   unsigned d, unsigned rows_per_block) {
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const size_t row0 = (size_t)blockIdx.x * rows_per_block;
    const size_t row_end = row0 + rows_per_block < (size_t)n ? row0 + rows_per_block : (size_t)n;
    for (size_t row = row0 + warp; row < row_end; row += KM_WARPS) {  // warp-uniform
        const T* x = data + row * d;
        float best = begin == 0 ? __int_as_float(0x7f800000) : d2[row];
        for (unsigned c = begin; c < end; ++c) {  // the centres the previous round chose
            const T* e = data + (size_t)chosen[c] * d;
            float s = 0.0f;
            for (unsigned j = lane; j < d; j += 32) {
                const float diff = tessera::to_float(x[j]) - tessera::to_float(e[j]);
                s = fmaf(diff, diff, s);
            }
            best = fminf(best, tessera::warp_reduce_sum(s));
        }
        if (lane == 0) d2[row] = best;
    }
    __syncthreads();  // the block's d2 writes are visible to thread 0
    if (threadIdx.x == 0) {
        double sum = 0.0;
        for (size_t row = row0; row < row_end; ++row) sum += (double)d2[row];
        block_sums[blockIdx.x] = sum;
    }
}

}  // namespace

TESSERA_KERNEL void __launch_bounds__(KM_THREADS)
    kmeans_plusplus_pick(const float* d2, const unsigned long long* block_sums, const unsigned long long* uniforms,
                         unsigned* chosen, unsigned first_draw, unsigned draws, unsigned n, unsigned rows_per_block,
                         unsigned blocks) {
    const unsigned i = blockIdx.x * KM_THREADS + threadIdx.x;  // draw i of this round
    if (i >= draws) return;
    const double* sums = reinterpret_cast<const double*>(block_sums);
    const double u = (double)(uniforms[first_draw + i] >> 11) * 0x1p-53;  // [0, 1)
    const double q = ((double)i + u) / (double)draws;                      // stratum i of `draws`
    unsigned* out = chosen + 1 + first_draw + i;
    double total = 0.0;
    for (unsigned b = 0; b < blocks; ++b) total += sums[b];
    if (!(total > 0.0)) {
        const unsigned r = (unsigned)(q * (double)n);
        *out = r < n ? r : n - 1;
        return;
    }
    const double target = __dmul_rn(q, total);  // never contracted into `target − cum`
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
    size_t last = begin;
    for (size_t row = begin; row < end; ++row) {
        const float w = d2[row];
        if (w > 0.0f) {
            last = row;
            run += (double)w;
            if (!past_end && run > rest) {
                *out = (unsigned)row;
                return;
            }
        }
    }
    *out = (unsigned)last;
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
        kmeans_plusplus_distances_##SUFFIX(const T* data, float* d2, unsigned long long* block_sums,              \
                                           const unsigned* chosen, unsigned begin, unsigned end, unsigned n,     \
                                           unsigned d, unsigned rows_per_block) {                                \
        plusplus_distances<T>(data, d2, reinterpret_cast<double*>(block_sums), chosen, begin, end, n, d,          \
                              rows_per_block);                                                                    \
    }

KMEANS_KERNELS(float, f32)
KMEANS_KERNELS(tessera::f16, f16)
KMEANS_KERNELS(tessera::bf16, bf16)
