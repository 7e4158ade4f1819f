// Nearest-codebook search: for each latent z_n, argmin_k ||z_n − e_k||², ties to the
// lowest k, without materializing the n×k distance matrix.
//
// Layouts (row-major): z [n, d], codebook e [k, d], both in T ∈ {float, __half,
// __nv_bfloat16}; keys [n] u64 (see argmin.cuh); indices [n] u32; quantized [n, d] T;
// distances [n] f32; histogram [k] u32; block_sums [gridDim.x] f32.
//
// Since ||z − e||² = ||z||² + (||e||² − 2 z·e) and ||z||² does not depend on k, the search
// minimizes ||e_k||² − 2 z·e_k with ||e_k||² computed once per codebook. Cosine search
// (both sides l2-normalized, LlamaGen) runs the same kernels on the normalized rows.
//
// Kernels:
//   codebook_rows_<T>        one warp per row: squared norm of each row, optionally
//                            written normalized (dst = src/||src||, and the norm of the
//                            rounded result); flags the first row with a non-finite value.
//                            Prepares a codebook (||e||², ê) and cosine latents (ẑ).
//   codebook_search_simt_<T> CUDA-core path (f32; small or ragged d): a block owns 64
//                            latents and scans codes [y·codes_per_split, …) in 64-code
//                            tiles with simt_tile.cuh (16×16 threads, 4×4 each; for
//                            d ≤ 32 the latents' tile is staged once, only codebook
//                            tiles stream through shared memory); the
//                            epilogue turns each dot into ||e||² − 2z·e and keeps a running
//                            (distance, index) per row and thread; a half-warp shuffle
//                            reduction and one 64-bit atomicMin per row combine threads,
//                            and blocks that split the codebook (grid.y > 1).
//   codebook_search_mma_<T>  tensor-core path (f16/bf16, d % 16 == 0, d ≤ 512): 4 warps,
//                            64 latents resident in shared memory for the whole kernel,
//                            codebook chunks of 64 codes × 32 dims streamed through a
//                            double-buffered cp.async pipeline; warp w computes rows
//                            16w..16w+15 × 64 codes with mma_tile.cuh (8 n8 tiles, 32 f32
//                            accumulators per thread); same epilogue, quad shuffles, atomicMin.
//   codebook_finalize_<T>    one warp per latent: decodes its key, gathers the chosen row
//                            into `quantized`, computes the exact distance Σ(z − e)², the
//                            optional residual z − e (residual VQ, flags & 1), the
//                            histogram (atomicAdd, flags & 2), the distance (flags & 4),
//                            and per-block sums of distances in a fixed order
//                            (deterministic commitment); flags non-finite latents.
//   codebook_init_keys       keys[i] = EMPTY_KEY (one thread per latent), before a search.
//   codebook_distances_<T>   the unfused baseline's GEMM: writes the whole n×k matrix of
//   codebook_argmin          ||e||² − 2z·e; then one warp per row finds its minimum.
//                            (What `torch.cdist(z, e).argmin(-1)` does; benchmarks only.)
//
// Index arithmetic: code, row and dimension counters are u32; element offsets are size_t
// (row · d in 64 bits). The wrapper (src/kernels/codebook.rs, `check_shape`) keeps k, n
// and d ≤ 2^31, so a counter stepped by a tile (col0 += 64, base += 32, j += 32) stays below
// 2^31 + 64 and never wraps (a wrapped counter would loop forever); the end of a codebook
// split is computed in 64 bits.
#include "argmin.cuh"
#include "mma_tile.cuh"
#include "simt_tile.cuh"
#include "tessera.cuh"

using tessera::ArgMin;

#define ROWS_WARPS 8  // warps per block of the one-warp-per-row kernels

// MMA path tiling.
#define MMA_BM 64      // latents per block (4 warps × 16)
#define MMA_BN 64      // codes per tile
#define MMA_BK 32      // dims per pipeline stage
#define MMA_THREADS 128
#define MMA_E_STRIDE (MMA_BK + tessera::MMA_PAD)
#define MMA_MAX_D 512

namespace {

__device__ __forceinline__ bool finite(float v) { return fabsf(v) <= 3.402823466e38f; }

template <class T>
__device__ void rows_kernel(const T* __restrict__ src, T* __restrict__ dst, float* __restrict__ sqnorm,
                            unsigned* __restrict__ status, unsigned rows, unsigned d, unsigned normalize) {
    const unsigned lane = threadIdx.x % 32;
    const unsigned row = blockIdx.x * ROWS_WARPS + threadIdx.x / 32;
    if (row >= rows) return;  // whole warps leave together
    const T* r = src + (size_t)row * d;
    float sum = 0.0f;
    bool ok = true;
    for (unsigned j = lane; j < d; j += 32) {
        const float v = tessera::to_float(r[j]);
        ok = ok && finite(v);
        sum = fmaf(v, v, sum);
    }
    sum = tessera::warp_reduce_sum(sum);
    if (__any_sync(0xffffffffu, !ok)) {
        if (lane == 0) atomicMin(status, row);
        return;
    }
    if (normalize) {
        // F.normalize: x / max(||x||, 1e-12); the norm reported is that of the rounded result.
        const float inv = 1.0f / fmaxf(sqrtf(sum), 1e-12f);
        T* o = dst + (size_t)row * d;
        float sum2 = 0.0f;
        for (unsigned j = lane; j < d; j += 32) {
            const T q = tessera::from_float<T>(tessera::to_float(r[j]) * inv);
            o[j] = q;
            const float qf = tessera::to_float(q);
            sum2 = fmaf(qf, qf, sum2);
        }
        sum = tessera::warp_reduce_sum(sum2);
    }
    if (lane == 0) sqnorm[row] = sum;
}

template <class T>
__device__ void search_simt(const T* __restrict__ z, const T* __restrict__ e, const float* __restrict__ e_sqnorm,
                            unsigned long long* __restrict__ keys, unsigned n, unsigned k, unsigned d,
                            unsigned codes_per_split) {
    __shared__ __align__(16) tessera::SimtTileSmem smem;
    const unsigned tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const unsigned row0 = blockIdx.x * tessera::SIMT_BM;
    const unsigned code_begin = blockIdx.y * codes_per_split;
    // In 64 bits: code_begin + codes_per_split may pass 2^32 (k ≤ 2^31, see the header).
    const unsigned code_end = (unsigned)min((unsigned long long)k, (unsigned long long)code_begin + codes_per_split);
    ArgMin best[4];
#pragma unroll
    for (unsigned i = 0; i < 4; ++i) best[i].init();
    for (unsigned col0 = code_begin; col0 < code_end; col0 += tessera::SIMT_BN) {
        float acc[4][4];
        // Small d (LlamaGen's 8): the latents' tile stays in shared memory for the whole scan.
        tessera::simt_tile_dot(smem, z, n, row0, e, code_end, col0, d, acc, col0 != code_begin);
#pragma unroll
        for (unsigned j = 0; j < 4; ++j) {
            const unsigned code = col0 + tx * 4 + j;
            if (code < code_end) {
                const float norm = e_sqnorm[code];
#pragma unroll
                for (unsigned i = 0; i < 4; ++i) best[i].offer(fmaf(-2.0f, acc[i][j], norm), code);
            }
        }
    }
    // The 16 threads of a row group (same ty) are one half of a warp: lane bits 0-3.
#pragma unroll
    for (unsigned i = 0; i < 4; ++i) {
        best[i].reduce_lanes(15);
        const unsigned row = row0 + ty * 4 + i;
        if (tx == 0 && row < n && best[i].index != tessera::NO_INDEX) {
            atomicMin(&keys[row], tessera::argmin_key(best[i].dist, best[i].index));
        }
    }
}

template <class T>
__device__ void search_mma(const T* __restrict__ z, const T* __restrict__ e, const float* __restrict__ e_sqnorm,
                           unsigned long long* __restrict__ keys, unsigned n, unsigned k, unsigned d,
                           unsigned codes_per_split) {
    TESSERA_DYNAMIC_SMEM(T, smem);
    const unsigned z_stride = d + tessera::MMA_PAD;
    T* zs = smem;                                 // [MMA_BM][z_stride]
    T* es = smem + MMA_BM * z_stride;             // [2][MMA_BN][MMA_E_STRIDE]
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const unsigned g = lane / 4, t = lane % 4;
    const unsigned row0 = blockIdx.x * MMA_BM;
    const unsigned code_begin = blockIdx.y * codes_per_split;
    // In 64 bits: code_begin + codes_per_split may pass 2^32 (k ≤ 2^31, see the header).
    const unsigned code_end = (unsigned)min((unsigned long long)k, (unsigned long long)code_begin + codes_per_split);
    const unsigned chunks = (d + MMA_BK - 1) / MMA_BK;
    const unsigned tiles = (code_end - code_begin + MMA_BN - 1) / MMA_BN;
    const unsigned steps = tiles * chunks;

    // Latents: loaded once, first cp.async group.
    tessera::load_rows_async<T, MMA_BM>(zs, z_stride, z, n, row0, d, tid, MMA_THREADS);
    tessera::cp_async_commit();
    auto issue = [&](unsigned step) {
        const unsigned tile = step / chunks, chunk = step % chunks;
        tessera::load_tile_async<T, MMA_BN, MMA_BK, MMA_E_STRIDE>(es + (step % 2) * MMA_BN * MMA_E_STRIDE, e,
                                                                  code_end, code_begin + tile * MMA_BN, d, d,
                                                                  chunk * MMA_BK, tid, MMA_THREADS);
        tessera::cp_async_commit();
    };
    if (steps > 0) issue(0);

    ArgMin best[2];  // rows g and g + 8 of this warp
    best[0].init();
    best[1].init();
    float acc[MMA_BN / 8][4];
    for (unsigned step = 0; step < steps; ++step) {
        const unsigned tile = step / chunks, chunk = step % chunks;
        if (chunk == 0) {
#pragma unroll
            for (unsigned j = 0; j < MMA_BN / 8; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
        }
        if (step + 1 < steps) {
            issue(step + 1);
            tessera::cp_async_wait<1>();
        } else {
            tessera::cp_async_wait<0>();
        }
        __syncthreads();
        const T* eb = es + (step % 2) * MMA_BN * MMA_E_STRIDE;
        const T* za = zs + (warp * 16) * z_stride + chunk * MMA_BK;
#pragma unroll
        for (unsigned kk = 0; kk < MMA_BK; kk += 16) {
            if (chunk * MMA_BK + kk < d) {
                tessera::warp_mma_k16<T, MMA_BN / 8>(acc, za + kk, z_stride, eb + kk, MMA_E_STRIDE, lane);
            }
        }
        if (chunk == chunks - 1) {
            // Epilogue of a code tile: acc[j][h·2 + c] is (row g + 8h, code 8j + 2t + c).
            const unsigned col0 = code_begin + tile * MMA_BN;
#pragma unroll
            for (unsigned j = 0; j < MMA_BN / 8; ++j) {
#pragma unroll
                for (unsigned c = 0; c < 2; ++c) {
                    const unsigned code = col0 + 8 * j + 2 * t + c;
                    if (code < code_end) {
                        const float norm = e_sqnorm[code];
                        best[0].offer(fmaf(-2.0f, acc[j][c], norm), code);
                        best[1].offer(fmaf(-2.0f, acc[j][2 + c], norm), code);
                    }
                }
            }
        }
        __syncthreads();  // the buffer just read is refilled by the next step's issue
    }
#pragma unroll
    for (unsigned h = 0; h < 2; ++h) {
        best[h].reduce_lanes(3);
        const unsigned row = row0 + warp * 16 + g + 8 * h;
        if (t == 0 && row < n && best[h].index != tessera::NO_INDEX) {
            atomicMin(&keys[row], tessera::argmin_key(best[h].dist, best[h].index));
        }
    }
}

// The outputs of a row whose latent is not finite: NaN vectors, index 0xFFFFFFFF, NaN distance.
template <class T>
__device__ void invalid_row(unsigned* __restrict__ indices, T* __restrict__ quantized, float* __restrict__ distances,
                            T* __restrict__ residual, unsigned row, unsigned d, unsigned flags, unsigned lane) {
    const T nan = tessera::from_float<T>(__int_as_float(0x7fc00000));
    for (unsigned j = lane; j < d; j += 32) {
        quantized[(size_t)row * d + j] = nan;
        if (flags & 1u) residual[(size_t)row * d + j] = nan;
    }
    if (lane == 0) {
        indices[row] = 0xffffffffu;
        if (flags & 4u) distances[row] = __int_as_float(0x7fc00000);
    }
}

template <class T>
__device__ void finalize(const T* __restrict__ z, const T* __restrict__ e, const unsigned long long* __restrict__ keys,
                         unsigned* __restrict__ indices, T* __restrict__ quantized, float* __restrict__ distances,
                         unsigned* __restrict__ histogram, float* __restrict__ block_sums, T* __restrict__ residual,
                         unsigned* __restrict__ status, unsigned n, unsigned k, unsigned d, unsigned flags) {
    __shared__ float warp_sums[ROWS_WARPS];
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const unsigned row = blockIdx.x * ROWS_WARPS + warp;
    float dist = 0.0f;
    if (row < n) {
        const unsigned idx = tessera::key_index(keys[row]);
        if (idx >= k) {
            // No candidate: only NaN distances, i.e. a non-finite latent. The row's outputs
            // are still written (NaN, index 0xFFFFFFFF), so that an op reading them next
            // reads defined values; the status word reports the row.
            if (lane == 0) atomicMin(status, row);
            invalid_row(indices, quantized, distances, residual, row, d, flags, lane);
        } else {
            const T* zr = z + (size_t)row * d;
            const T* er = e + (size_t)idx * d;
            bool ok = true;
            for (unsigned j = lane; j < d; j += 32) {
                const T ev = er[j];
                const float zv = tessera::to_float(zr[j]);
                const float diff = zv - tessera::to_float(ev);
                ok = ok && finite(zv);
                dist = fmaf(diff, diff, dist);
                quantized[(size_t)row * d + j] = ev;
                if (flags & 1u) residual[(size_t)row * d + j] = tessera::from_float<T>(diff);
            }
            dist = tessera::warp_reduce_sum(dist);
            if (__any_sync(0xffffffffu, !ok)) {
                if (lane == 0) atomicMin(status, row);
                invalid_row(indices, quantized, distances, residual, row, d, flags, lane);
                dist = 0.0f;
            } else if (lane == 0) {
                indices[row] = idx;
                if (flags & 4u) distances[row] = dist;
                if (flags & 2u) atomicAdd(&histogram[idx], 1u);
            }
        }
    }
    if (lane == 0) warp_sums[warp] = dist;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (unsigned w = 0; w < ROWS_WARPS; ++w) s += warp_sums[w];
        block_sums[blockIdx.x] = s;
    }
}

template <class T>
__device__ void distances_gemm(const T* __restrict__ z, const T* __restrict__ e, const float* __restrict__ e_sqnorm,
                               float* __restrict__ out, unsigned n, unsigned k, unsigned d) {
    __shared__ __align__(16) tessera::SimtTileSmem smem;
    const unsigned tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const unsigned row0 = blockIdx.x * tessera::SIMT_BM, col0 = blockIdx.y * tessera::SIMT_BN;
    float acc[4][4];
    tessera::simt_tile_dot(smem, z, n, row0, e, k, col0, d, acc);
#pragma unroll
    for (unsigned i = 0; i < 4; ++i) {
        const unsigned row = row0 + ty * 4 + i;
#pragma unroll
        for (unsigned j = 0; j < 4; ++j) {
            const unsigned code = col0 + tx * 4 + j;
            if (row < n && code < k) out[(size_t)row * k + code] = fmaf(-2.0f, acc[i][j], e_sqnorm[code]);
        }
    }
}

}  // namespace

// keys[i] = EMPTY_KEY for i < n: the start of every search, set on the device instead of
// copied from the host on each call.
TESSERA_KERNEL void __launch_bounds__(256) codebook_init_keys(unsigned long long* keys, unsigned n) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) keys[i] = tessera::EMPTY_KEY;
}

TESSERA_KERNEL void __launch_bounds__(ROWS_WARPS * 32)
    codebook_argmin(const float* dist, unsigned long long* keys, unsigned n, unsigned k) {
    const unsigned lane = threadIdx.x % 32;
    const unsigned row = blockIdx.x * ROWS_WARPS + threadIdx.x / 32;
    if (row >= n) return;
    ArgMin best;
    best.init();
    for (unsigned c = lane; c < k; c += 32) best.offer(dist[(size_t)row * k + c], c);
    best.reduce_lanes(31);
    if (lane == 0 && best.index != tessera::NO_INDEX) keys[row] = tessera::argmin_key(best.dist, best.index);
}

#define CODEBOOK_KERNELS(T, SUFFIX)                                                                               \
    TESSERA_KERNEL void __launch_bounds__(ROWS_WARPS * 32)                                                        \
        codebook_rows_##SUFFIX(const T* src, T* dst, float* sqnorm, unsigned* status, unsigned rows, unsigned d, \
                               unsigned normalize) {                                                              \
        rows_kernel<T>(src, dst, sqnorm, status, rows, d, normalize);                                             \
    }                                                                                                             \
    TESSERA_KERNEL void __launch_bounds__(tessera::SIMT_THREADS)                                                  \
        codebook_search_simt_##SUFFIX(const T* z, const T* e, const float* e_sqnorm, unsigned long long* keys,    \
                                      unsigned n, unsigned k, unsigned d, unsigned codes_per_split) {             \
        search_simt<T>(z, e, e_sqnorm, keys, n, k, d, codes_per_split);                                           \
    }                                                                                                             \
    TESSERA_KERNEL void __launch_bounds__(ROWS_WARPS * 32)                                                        \
        codebook_finalize_##SUFFIX(const T* z, const T* e, const unsigned long long* keys, unsigned* indices,     \
                                   T* quantized, float* distances, unsigned* histogram, float* block_sums,        \
                                   T* residual, unsigned* status, unsigned n, unsigned k, unsigned d,             \
                                   unsigned flags) {                                                              \
        finalize<T>(z, e, keys, indices, quantized, distances, histogram, block_sums, residual, status, n, k, d,  \
                    flags);                                                                                       \
    }                                                                                                             \
    TESSERA_KERNEL void __launch_bounds__(tessera::SIMT_THREADS)                                                  \
        codebook_distances_##SUFFIX(const T* z, const T* e, const float* e_sqnorm, float* out, unsigned n,        \
                                    unsigned k, unsigned d) {                                                     \
        distances_gemm<T>(z, e, e_sqnorm, out, n, k, d);                                                          \
    }

#define CODEBOOK_MMA_KERNEL(T, SUFFIX)                                                                         \
    TESSERA_KERNEL void __launch_bounds__(MMA_THREADS)                                                         \
        codebook_search_mma_##SUFFIX(const T* z, const T* e, const float* e_sqnorm, unsigned long long* keys,  \
                                     unsigned n, unsigned k, unsigned d, unsigned codes_per_split) {           \
        search_mma<T>(z, e, e_sqnorm, keys, n, k, d, codes_per_split);                                         \
    }

CODEBOOK_KERNELS(float, f32)
CODEBOOK_KERNELS(tessera::f16, f16)
CODEBOOK_KERNELS(tessera::bf16, bf16)
CODEBOOK_MMA_KERNEL(tessera::f16, f16)
CODEBOOK_MMA_KERNEL(tessera::bf16, bf16)
