// The tensor-core multiply of one m16n8k16 tile by element type, so that generic code
// (gemm_tile.cuh's WarpMma16) can be written once for f16 and bf16: MmaOp<T>::run(d, a, b)
// is d += A·B with the fragment layouts of tessera.cuh section 5.
#pragma once
#include "tessera.cuh"

namespace tessera {

template <class T>
struct MmaOp;
template <>
struct MmaOp<__half> {
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
        mma_m16n8k16_f16(d, a, b, d);
    }
};
template <>
struct MmaOp<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
        mma_m16n8k16_bf16(d, a, b, d);
    }
};

}  // namespace tessera
