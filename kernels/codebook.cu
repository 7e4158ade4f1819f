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
//   codebook_search_simt_<T> CUDA-core path (f32; small or ragged d): and
//   codebook_search_mma_<T>  tensor-core path (f16/bf16, d % 16 == 0, d ≤ 512): both are
//                            the tile GEMM main loop (gemm_tile.cuh) with the argmin
//                            epilogue (gemm_epilogue.cuh RowArgMin). A block owns 64 latents
//                            and scans codes [y·codes_per_split, …) in 64-code tiles: per
//                            tile one run of the main loop over d (3 cp.async stages of 32
//                            dims of the codebook), then ||e||² − 2z·e in registers into a
//                            running (distance, index) per accumulator row; a quad shuffle
//                            reduction and one 64-bit atomicMin per row combine threads,
//                            warps and blocks that split the codebook (grid.y > 1). The
//                            latents stay resident in shared memory (all of d, loaded once)
//                            for d ≤ 512 (tensor cores) / d ≤ 128 (CUDA cores, f32 tiles),
//                            else they are staged per k-tile with the codebook. Tensor
//                            cores: 4 warps of 16 latents × 64 codes (mma.sync m16n8k16);
//                            CUDA cores: 2×2 warps of 32 × 32, f16/bf16 converted to f32 as
//                            they are loaded.
//   codebook_finalize_<T>    one warp per latent: decodes its key, gathers the chosen row
//                            into `quantized`, computes the exact distance Σ(z − e)², the
//                            optional residual z − e (residual VQ, flags & 1), the
//                            histogram (atomicAdd, flags & 2), the distance (flags & 4),
//                            and per-block sums of distances in a fixed order
//                            (deterministic commitment); flags non-finite latents.
//   codebook_init_keys       keys[i] = EMPTY_KEY (one thread per latent), before a search.
//   codebook_distances_<T>   the unfused baseline's GEMM (the same main loop, CUDA cores):
//   codebook_argmin          writes the whole n×k matrix of ||e||² − 2z·e; then one warp
//                            per row finds its minimum.
//                            (What `torch.cdist(z, e).argmin(-1)` does; benchmarks only.)
//
// Index arithmetic: code, row and dimension counters are u32; element offsets are size_t
// (row · d in 64 bits). The wrapper (src/kernels/codebook.rs, `check_shape`) keeps k, n
// and d ≤ 2^31, so a counter stepped by a tile (col0 += 64, base += 32, j += 32) stays below
// 2^31 + 64 and never wraps (a wrapped counter would loop forever); the end of a codebook
// split is computed in 64 bits.
#include "argmin.cuh"
#include "gemm_epilogue.cuh"
#include "gemm_tile.cuh"
#include "tessera.cuh"

using tessera::ArgMin;

#define ROWS_WARPS 8  // warps per block of the one-warp-per-row kernels

// Search tiling (both paths): 64 latents × 64 codes per main-loop run, 32 dims per k-tile,
// 3 cp.async stages, 4 warps. Tensor cores: warps of 16 latents × 64 codes; CUDA cores (f32
// tiles; f16/bf16 converted on load): 2×2 warps of 32 × 32.
#define SEARCH_BM 64
#define SEARCH_BN 64
#define SEARCH_BK 32
#define SEARCH_STAGES 3
#define SEARCH_THREADS 128
#define MMA_MAX_D 512       // the tensor-core path keeps its latents resident: d ≤ 512
#define SIMT_RESIDENT_MAX_D 128  // d up to which the CUDA-core path keeps its latents (f32) resident

using MmaSearch = tessera::gemm::Tile<SEARCH_BM, SEARCH_BN, SEARCH_BK, 16, 64, SEARCH_STAGES>;
using SimtSearch = tessera::gemm::Tile<SEARCH_BM, SEARCH_BN, SEARCH_BK, 32, 32, SEARCH_STAGES>;
static_assert(MmaSearch::THREADS == SEARCH_THREADS && SimtSearch::THREADS == SEARCH_THREADS, "thread counts");
static_assert(MmaSearch::smem_bytes<__half>() + SEARCH_BM * MMA_MAX_D * 2 <= 163 * 1024 &&
                  SimtSearch::smem_bytes<float>() + SEARCH_BM * SIMT_RESIDENT_MAX_D * 4 <= 163 * 1024,
              "search shared memory");

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

// The search of one block: 64 latents (rows row0..) against codes [code_begin, code_end)
// in 64-code tiles, each tile one run of the GEMM main loop over d, followed by the argmin
// epilogue in registers. The latents stay in shared memory when `RESIDENT` (all of d).
template <class TileT, class Op, class S, bool RESIDENT, class T>
__device__ __forceinline__ void search_block(S* smem, const T* __restrict__ z, const T* __restrict__ e,
                                             const float* __restrict__ e_sqnorm, unsigned long long* __restrict__ keys,
                                             unsigned n, unsigned d, unsigned row0, unsigned code_begin,
                                             unsigned code_end) {
    using namespace tessera::gemm;
    const unsigned tid = threadIdx.x;
    const unsigned ktiles = (d + TileT::BK - 1) / TileT::BK;
    const bool z_vec = SameType<S, T>::value && rows_vectorizable(z, d);
    const bool e_vec = SameType<S, T>::value && rows_vectorizable(e, d);
    S* pipe = smem;
    RowArgMin<TileT> best;
    best.init();
    float acc[TileT::MI][TileT::NJ][4];
    if constexpr (RESIDENT) {
        S* resident = smem + TileT::STAGES * (TileT::BM + TileT::BN) * TileT::BK;
        ResidentA<S, TileT>::fill(resident, z, n, d, row0, z_vec, tid);
        tessera::cp_async_commit();
        const ResidentA<S, TileT> a{resident};
        for (unsigned col0 = code_begin; col0 < code_end; col0 += TileT::BN) {
            mainloop<TileT, Op, S>(acc, pipe, a, e, code_end, d, e_vec, row0, col0, 0, ktiles);
            best.consume(acc, col0, code_end, e_sqnorm);
        }
    } else {
        const MatrixA<S, TileT, T> a{z, n, d, z_vec};
        for (unsigned col0 = code_begin; col0 < code_end; col0 += TileT::BN) {
            mainloop<TileT, Op, S>(acc, pipe, a, e, code_end, d, e_vec, row0, col0, 0, ktiles);
            best.consume(acc, col0, code_end, e_sqnorm);
        }
    }
    best.publish(keys, row0, n);
}

// Grid: x = groups of 64 latents, y = splits of the codebook.
template <class TileT, class Op, class S, unsigned RESIDENT_MAX_D, class T>
__device__ __forceinline__ void search(const T* __restrict__ z, const T* __restrict__ e,
                                       const float* __restrict__ e_sqnorm, unsigned long long* __restrict__ keys,
                                       unsigned n, unsigned k, unsigned d, unsigned codes_per_split) {
    TESSERA_DYNAMIC_SMEM(S, smem);
    const unsigned row0 = blockIdx.x * TileT::BM;
    const unsigned code_begin = blockIdx.y * codes_per_split;
    // In 64 bits: code_begin + codes_per_split may pass 2^32 (k ≤ 2^31, see the header).
    const unsigned code_end = (unsigned)min((unsigned long long)k, (unsigned long long)code_begin + codes_per_split);
    if (d <= RESIDENT_MAX_D) {
        search_block<TileT, Op, S, true>(smem, z, e, e_sqnorm, keys, n, d, row0, code_begin, code_end);
    } else {
        search_block<TileT, Op, S, false>(smem, z, e, e_sqnorm, keys, n, d, row0, code_begin, code_end);
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

// The unfused baseline's GEMM: one 64×64 tile of the distance matrix per block, on the
// same main loop (CUDA cores, f32 tiles), written through the staged store.
template <class T>
__device__ __forceinline__ void distances_gemm(const T* __restrict__ z, const T* __restrict__ e,
                                               const float* __restrict__ e_sqnorm, float* __restrict__ out, unsigned n,
                                               unsigned k, unsigned d) {
    using namespace tessera::gemm;
    TESSERA_DYNAMIC_SMEM(float, smem);
    const unsigned row0 = blockIdx.x * SimtSearch::BM, col0 = blockIdx.y * SimtSearch::BN;
    const bool vec = SameType<float, T>::value;
    const MatrixA<float, SimtSearch, T> a{z, n, d, vec && rows_vectorizable(z, d)};
    float acc[SimtSearch::MI][SimtSearch::NJ][4];
    const unsigned ktiles = (d + SimtSearch::BK - 1) / SimtSearch::BK;
    mainloop<SimtSearch, SimtF32, float>(acc, smem, a, e, k, d, vec && rows_vectorizable(e, d), row0, col0, 0, ktiles);
    store_tile<SimtSearch, 4>(acc, smem, DistanceMatrix{e_sqnorm, out, k}, row0, col0, n, k);
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
    TESSERA_KERNEL void __launch_bounds__(SEARCH_THREADS)                                                         \
        codebook_search_simt_##SUFFIX(const T* z, const T* e, const float* e_sqnorm, unsigned long long* keys,    \
                                      unsigned n, unsigned k, unsigned d, unsigned codes_per_split) {             \
        search<SimtSearch, tessera::gemm::SimtF32, float, SIMT_RESIDENT_MAX_D>(z, e, e_sqnorm, keys, n, k, d, codes_per_split);        \
    }                                                                                                             \
    TESSERA_KERNEL void __launch_bounds__(ROWS_WARPS * 32)                                                        \
        codebook_finalize_##SUFFIX(const T* z, const T* e, const unsigned long long* keys, unsigned* indices,     \
                                   T* quantized, float* distances, unsigned* histogram, float* block_sums,        \
                                   T* residual, unsigned* status, unsigned n, unsigned k, unsigned d,             \
                                   unsigned flags) {                                                              \
        finalize<T>(z, e, keys, indices, quantized, distances, histogram, block_sums, residual, status, n, k, d,  \
                    flags);                                                                                       \
    }                                                                                                             \
    TESSERA_KERNEL void __launch_bounds__(SEARCH_THREADS)                                                         \
        codebook_distances_##SUFFIX(const T* z, const T* e, const float* e_sqnorm, float* out, unsigned n,        \
                                    unsigned k, unsigned d) {                                                     \
        distances_gemm<T>(z, e, e_sqnorm, out, n, k, d);                                                          \
    }

// Min. blocks 1: without it ptxas (CUDA 13, sm_80) caps the tensor-core search at 128
// registers and spills 28 bytes; with it, 150 registers and no spill (3 blocks per SM).
#define CODEBOOK_MMA_KERNEL(T, SUFFIX)                                                                         \
    TESSERA_KERNEL void __launch_bounds__(SEARCH_THREADS, 1)                                                   \
        codebook_search_mma_##SUFFIX(const T* z, const T* e, const float* e_sqnorm, unsigned long long* keys,  \
                                     unsigned n, unsigned k, unsigned d, unsigned codes_per_split) {           \
        search<MmaSearch, MMA_OP, T, MMA_MAX_D>(z, e, e_sqnorm, keys, n, k, d, codes_per_split);                          \
    }

CODEBOOK_KERNELS(float, f32)
CODEBOOK_KERNELS(tessera::f16, f16)
CODEBOOK_KERNELS(tessera::bf16, bf16)
#define MMA_OP tessera::gemm::MmaF16
CODEBOOK_MMA_KERNEL(tessera::f16, f16)
#undef MMA_OP
#define MMA_OP tessera::gemm::MmaBf16
CODEBOOK_MMA_KERNEL(tessera::bf16, bf16)
#undef MMA_OP
