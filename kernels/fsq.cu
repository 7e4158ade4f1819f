// FSQ — finite scalar quantization (Mentzer et al. 2023), token-exact with the FSQ of
// the PyTorch package vector-quantize-pytorch.
//
// Layouts (row-major, one latent per row):
//   z       [n, d]  T ∈ {float, __half, __nv_bfloat16}, d ≤ 16
//   codes   [n, d]  int32, code_j ∈ [-(L_j div 2), L_j - 1 - (L_j div 2)]
//   values  [n, d]  T, code_j / (L_j div 2)
//   indices [n]     uint32, Σ_j (code_j + L_j div 2) · basis_j, basis_j = Π_{i<j} L_i
//   status  [1]     uint32, atomicMin'ed with the first row whose input is invalid
//                   (a NaN latent for quantize, an index ≥ Π L for dequantize);
//                   the caller initialises it to 0xffffffff.
//
// The code of a latent (vector-quantize-pytorch's formula, all f32, rounded after every
// operation; src/reference/fsq.rs is this formula, written out):
//   half_l = (L-1)(1+1e-3)/2, offset = L even ? 0.5 : 0, shift = atanh(offset/half_l)
//   bounded = tanh(z + shift) · half_l − offset;  code = round-half-even(bounded)
// with tanh correctly rounded to f32. The kernels do not evaluate it. z → code is
// monotone non-decreasing (each step is), so dimension j has thresholds
// t_{j,1} ≤ … ≤ t_{j,L_j−1}, t_{j,c} = the smallest f32 z with code(z) ≥ lowest_j + c,
// and for every non-NaN z
//   code = lowest_j + #{ c : t_{j,c} ≤ z }          (lowest_j = code(−∞) = −(L_j div 2)).
// `Fsq::new` finds the thresholds on the host by bisection over the ordered f32 values,
// evaluating the reference formula itself (src/kernels/fsq_thresholds.rs), and passes
// them in FsqParams; the kernels count them with a branch-free binary search
// (⌈log2 L_j⌉ compares). Why: the codes are then bit-identical to the reference on every
// platform, whatever the FMA contraction or math library (a GPU tanh within an ulp would
// flip codes next to x.5 boundaries), and the kernels contain no FP64 and no
// transcendental at all, so they are memory-bound on every GPU, including those with
// 1/64-rate FP64. NaN is not counted: it has no code and is flagged (status) instead.
// Capacity: Σ_j (L_j − 1) ≤ FSQ_MAX_THRESHOLDS = 512 (the parameter block stays under
// 4 KiB); `Fsq::new` rejects levels needing more with an error naming `levels`.
// Every other per-dimension constant (1/(L div 2), the divisors for decoding) is also
// precomputed on the host: the inner loops contain no division.
//
// Kernels (each for _f32, _f16, _bf16):
//   fsq_quantize_v1_<T>   plain reference variant: one thread per row, direct loads and
//                         stores, the same threshold count per element. Obviously
//                         correct; strided (uncoalesced) for d > 1.
//   fsq_quantize_<T>      the fast variant. A block of FSQ_THREADS threads owns a tile
//                         of FSQ_ROWS = FSQ_THREADS consecutive rows, which is one
//                         contiguous run of FSQ_ROWS·d elements in memory:
//                         1. the block stages the tile into shared memory with 16-byte
//                            vector loads (tile_copy.cuh);
//                         2. thread t quantizes row t of the tile from shared memory,
//                            writes its codes and values back into shared memory and
//                            its index straight to global memory (coalesced, 4 bytes
//                            per thread);
//                         3. the block writes the code and value tiles out with 16-byte
//                            vector stores.
//                         One pass over memory; dynamic shared memory = FSQ_ROWS·d·
//                         (sizeof(T) + 4) bytes ≤ 32 KiB.
//   fsq_dequantize_<T>    indices → codes and values, same tiling: thread t decodes
//                         the index of row t with multiply-high divisions by the
//                         precomputed magic numbers, the tiles leave with vector stores.
#include "tessera.cuh"
#include "tile_copy.cuh"

#define FSQ_MAX_DIM 16
#define FSQ_MAX_THRESHOLDS 512
#define FSQ_THREADS 256
#define FSQ_ROWS FSQ_THREADS

// Division of a uint32 by an invariant divisor d ≥ 1 (Granlund–Montgomery):
// with l = ceil(log2 d) and mul = floor(2^32 (2^l − d) / d) + 1,
// n / d == (umulhi(n, mul) + n) >> l, the sum taken in 64 bits.
struct FsqFastDiv {
    unsigned mul;
    unsigned shift;
};

// Must match `FsqParams` in src/kernels/fsq.rs field for field.
struct FsqParams {
    unsigned dim;                          // d, 1..=16
    unsigned codebook_size;                // Π L_j < 2^31
    unsigned levels[FSQ_MAX_DIM];          // L_j ≥ 2
    int half_width[FSQ_MAX_DIM];           // L div 2
    float inv_half_width[FSQ_MAX_DIM];     // 1 / (L div 2), correctly rounded
    unsigned basis[FSQ_MAX_DIM];           // Π_{i<j} L_i
    FsqFastDiv level_div[FSQ_MAX_DIM];     // division by L_j
    int lowest_code[FSQ_MAX_DIM];          // code(−∞) = −(L div 2)
    unsigned threshold_begin[FSQ_MAX_DIM]; // dimension j's thresholds start here ...
    unsigned threshold_count[FSQ_MAX_DIM]; // ... and there are this many (L_j − 1)
    unsigned search_step[FSQ_MAX_DIM];     // largest power of two ≤ threshold_count (0 if none)
    float thresholds[FSQ_MAX_THRESHOLDS];  // ascending within each dimension
};
static_assert(sizeof(FsqParams) == 8 + 10 * 4 * FSQ_MAX_DIM + 4 * FSQ_MAX_THRESHOLDS, "FsqParams layout changed");
static_assert(sizeof(FsqParams) + 64 <= 4096, "FSQ kernel parameters must stay under 4 KiB");
static_assert(FSQ_ROWS * FSQ_MAX_DIM * (4 + 4) <= 48 * 1024, "FSQ tile exceeds the default shared-memory budget");

namespace {

__device__ __forceinline__ unsigned fast_div(unsigned n, FsqFastDiv d) {
    return (unsigned)(((unsigned long long)__umulhi(n, d.mul) + n) >> d.shift);
}

// code / half_width without a division: q0 = code·(1/hw) is within an ulp; one FMA
// residual step (Markstein) turns it into the correctly rounded quotient, matching
// PyTorch's `quantized / half_width` bit for bit.
__device__ __forceinline__ float normalize_code(int code, const FsqParams& p, unsigned j) {
    const float c = (float)code;
    const float hw = (float)p.half_width[j];
    const float q0 = __fmul_rn(c, p.inv_half_width[j]);
    const float r = __fmaf_rn(-q0, hw, c);
    return __fmaf_rn(r, p.inv_half_width[j], q0);
}

// The code of one latent value: lowest_j + the number of dimension j's thresholds ≤ z
// (see the header). Binary search by descending powers of two: `below` counts the
// thresholds known to be ≤ z; each step adds `step` if the step-th next one is ≤ z too
// (thresholds ascend, so all before it are). The steps are uniform (they depend on j
// only), each step is one compare and a select. Compares only, no rounding: NaN compares
// false everywhere (the caller flags it before).
__device__ __forceinline__ int quantize_value(float z, const FsqParams& p, unsigned j) {
    const float* t = p.thresholds + p.threshold_begin[j];
    const unsigned count = p.threshold_count[j];
    unsigned below = 0;
    for (unsigned step = p.search_step[j]; step != 0; step >>= 1) {
        const unsigned next = below + step;
        below = (next <= count && t[next - 1] <= z) ? next : below;
    }
    return p.lowest_code[j] + (int)below;
}

// Quantizes one row held at `in` (global or shared), writing codes and values to
// `codes`/`values` (same row, same space) and returning the index. Sets *bad on NaN.
template <class T>
__device__ __forceinline__ unsigned quantize_row(const T* in, int* codes, T* values, const FsqParams& p, bool* bad) {
    unsigned index = 0;
#pragma unroll
    for (unsigned j = 0; j < FSQ_MAX_DIM; ++j) {
        if (j < p.dim) {
            const float z = tessera::to_float(in[j]);
            int code = 0;
            if (z != z) {
                *bad = true;
            } else {
                code = quantize_value(z, p, j);
            }
            codes[j] = code;
            values[j] = tessera::from_float<T>(normalize_code(code, p, j));
            index += (unsigned)(code + p.half_width[j]) * p.basis[j];
        }
    }
    return index;
}

// Decodes one index into codes/values; returns false if it is out of range (the row
// then holds the decoding of index 0).
template <class T>
__device__ __forceinline__ bool dequantize_row(unsigned index, int* codes, T* values, const FsqParams& p) {
    const bool ok = index < p.codebook_size;
    unsigned rest = ok ? index : 0u;
#pragma unroll
    for (unsigned j = 0; j < FSQ_MAX_DIM; ++j) {
        if (j < p.dim) {
            const unsigned next = fast_div(rest, p.level_div[j]);
            const int code = (int)(rest - next * p.levels[j]) - p.half_width[j];
            codes[j] = code;
            values[j] = tessera::from_float<T>(normalize_code(code, p, j));
            rest = next;
        }
    }
    return ok;
}

template <class T>
__device__ void quantize_v1(const T* __restrict__ z, int* __restrict__ codes, T* __restrict__ values,
                            unsigned* __restrict__ indices, unsigned* __restrict__ status, unsigned n,
                            const FsqParams& p) {
    const unsigned row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= n) return;
    const size_t base = (size_t)row * p.dim;
    bool bad = false;
    indices[row] = quantize_row(z + base, codes + base, values + base, p, &bad);
    if (bad) atomicMin(status, row);
}

// Shared-memory layout of one tile: FSQ_ROWS·d elements of T, then FSQ_ROWS·d int32
// codes (the T part is a multiple of 16 bytes, so the codes start 16-byte aligned).
// The block's tile: rows [row0, row0 + rows) = elements [elem0, elem0 + count), and its
// shared-memory staging buffers.
template <class T>
struct RowTile {
    unsigned row0, rows, count;
    size_t elem0;
    T* values;   // [FSQ_ROWS·d] latents in, normalized values out
    int* codes;  // [FSQ_ROWS·d]

    __device__ __forceinline__ RowTile(unsigned char* smem, unsigned n, unsigned dim) {
        row0 = blockIdx.x * FSQ_ROWS;
        rows = min((unsigned)FSQ_ROWS, n - row0);
        count = rows * dim;
        elem0 = (size_t)row0 * dim;
        values = reinterpret_cast<T*>(smem);
        codes = reinterpret_cast<int*>(values + FSQ_ROWS * dim);
    }

    // Writes the staged codes and values to their rows in global memory (16-byte stores).
    __device__ __forceinline__ void store(int* __restrict__ g_codes, T* __restrict__ g_values) const {
        tessera::copy_contiguous(g_codes + elem0, codes, count, threadIdx.x, FSQ_THREADS);
        tessera::copy_contiguous(g_values + elem0, values, count, threadIdx.x, FSQ_THREADS);
    }
};

template <class T>
__device__ void quantize_tiled(const T* __restrict__ z, int* __restrict__ codes, T* __restrict__ values,
                               unsigned* __restrict__ indices, unsigned* __restrict__ status, unsigned n,
                               const FsqParams& p) {
    TESSERA_DYNAMIC_SMEM(unsigned char, smem);
    const RowTile<T> tile(smem, n, p.dim);
    const unsigned tid = threadIdx.x;
    tessera::copy_contiguous(tile.values, z + tile.elem0, tile.count, tid, FSQ_THREADS);
    __syncthreads();
    if (tid < tile.rows) {
        bool bad = false;
        // Each thread reads its own row, then overwrites it with values: no other
        // thread touches that row between the two barriers.
        T* row = tile.values + tid * p.dim;
        indices[tile.row0 + tid] = quantize_row(row, tile.codes + tid * p.dim, row, p, &bad);
        if (bad) atomicMin(status, tile.row0 + tid);
    }
    __syncthreads();
    tile.store(codes, values);
}

template <class T>
__device__ void dequantize_tiled(const unsigned* __restrict__ indices, int* __restrict__ codes,
                                 T* __restrict__ values, unsigned* __restrict__ status, unsigned n,
                                 const FsqParams& p) {
    TESSERA_DYNAMIC_SMEM(unsigned char, smem);
    const RowTile<T> tile(smem, n, p.dim);
    const unsigned tid = threadIdx.x;
    if (tid < tile.rows) {
        const unsigned index = indices[tile.row0 + tid];
        if (!dequantize_row(index, tile.codes + tid * p.dim, tile.values + tid * p.dim, p)) {
            atomicMin(status, tile.row0 + tid);
        }
    }
    __syncthreads();
    tile.store(codes, values);
}

}  // namespace

#define FSQ_KERNELS(T, SUFFIX)                                                                               \
    TESSERA_KERNEL void __launch_bounds__(FSQ_THREADS)                                                       \
        fsq_quantize_v1_##SUFFIX(const T* z, int* codes, T* values, unsigned* indices, unsigned* status,     \
                                 unsigned n, FsqParams p) {                                                  \
        quantize_v1<T>(z, codes, values, indices, status, n, p);                                             \
    }                                                                                                        \
    TESSERA_KERNEL void __launch_bounds__(FSQ_THREADS)                                                       \
        fsq_quantize_##SUFFIX(const T* z, int* codes, T* values, unsigned* indices, unsigned* status,        \
                              unsigned n, FsqParams p) {                                                     \
        quantize_tiled<T>(z, codes, values, indices, status, n, p);                                          \
    }                                                                                                        \
    TESSERA_KERNEL void __launch_bounds__(FSQ_THREADS)                                                       \
        fsq_dequantize_##SUFFIX(const unsigned* indices, int* codes, T* values, unsigned* status, unsigned n, \
                                FsqParams p) {                                                               \
        dequantize_tiled<T>(indices, codes, values, status, n, p);                                           \
    }

FSQ_KERNELS(float, f32)
FSQ_KERNELS(tessera::f16, f16)
FSQ_KERNELS(tessera::bf16, bf16)
