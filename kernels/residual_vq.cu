// Residual VQ bookkeeping between stages. The stages themselves are nearest-codebook
// searches (codebook.cu, whose finalize kernel also writes the residual z − e[idx] that the
// next stage searches); this kernel collects their outputs.
//
// Layouts (row-major): stage_quantized [n, d] T ∈ {float, __half, __nv_bfloat16} (the
// entries stage s chose); stage_indices [n] u32; acc [n, d] f32 (the running sum of the
// chosen entries, unused when there is one stage); quantized [n, d] T; indices [n, stages]
// u32 (stage fastest).
//
// Kernel:
//   residual_vq_accumulate_<T>  one thread per element (row, j) of [n, d] (consecutive threads,
//                               consecutive elements: coalesced): acc = Σ_{t ≤ s} e_t in f32,
//                               stage order; at the last stage the sum is rounded once to T
//                               into `quantized` (with one stage it is e_0 bit for bit). The
//                               thread with j = 0 interleaves the row's index:
//                               indices[row·stages + s] = stage_indices[row].
#include "tessera.cuh"

#define RVQ_THREADS 256

namespace {

template <class T>
__device__ void accumulate(const T* __restrict__ stage_quantized, const unsigned* __restrict__ stage_indices,
                           float* __restrict__ acc, T* __restrict__ quantized, unsigned* __restrict__ indices,
                           unsigned n, unsigned d, unsigned stages, unsigned stage, unsigned last) {
    const size_t i = (size_t)blockIdx.x * RVQ_THREADS + threadIdx.x;
    if (i >= (size_t)n * d) return;
    const float e = tessera::to_float(stage_quantized[i]);
    const float sum = stage == 0 ? e : acc[i] + e;
    if (last) {
        quantized[i] = tessera::from_float<T>(sum);
    } else {
        acc[i] = sum;
    }
    if (i % d == 0) {
        const size_t row = i / d;
        indices[row * stages + stage] = stage_indices[row];
    }
}

}  // namespace

#define RESIDUAL_VQ_KERNELS(T, SUFFIX)                                                                           \
    TESSERA_KERNEL void __launch_bounds__(RVQ_THREADS)                                                           \
        residual_vq_accumulate_##SUFFIX(const T* stage_quantized, const unsigned* stage_indices, float* acc,     \
                                        T* quantized, unsigned* indices, unsigned n, unsigned d, unsigned stages, \
                                        unsigned stage, unsigned last) {                                         \
        accumulate<T>(stage_quantized, stage_indices, acc, quantized, indices, n, d, stages, stage, last);       \
    }

RESIDUAL_VQ_KERNELS(float, f32)
RESIDUAL_VQ_KERNELS(tessera::f16, f16)
RESIDUAL_VQ_KERNELS(tessera::bf16, bf16)
