// Cooperative copies of one contiguous run of elements between global and shared
// memory, used to stage row tiles so that every global access is a coalesced 16-byte
// vector whatever the row length.
//
// Thread mapping: thread `tid` of `nthreads` copies 16-byte vectors tid, tid+nthreads,
// ... (consecutive threads touch consecutive 16-byte chunks: one 512-byte transaction
// per warp), then the elements past the last whole vector one by one. The vector path
// is taken only when both pointers are 16-byte aligned; otherwise every element is
// copied singly (still coalesced, just narrower).
#pragma once
#include "tessera.cuh"

namespace tessera {

template <class T>
__device__ __forceinline__ void copy_contiguous(T* __restrict__ dst, const T* __restrict__ src, unsigned count,
                                                unsigned tid, unsigned nthreads) {
    static_assert(16 % sizeof(T) == 0, "element size must divide 16 bytes");
    constexpr unsigned per_vector = 16 / sizeof(T);
    unsigned done = 0;
    if (((reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst)) & 15u) == 0) {
        const unsigned vectors = count / per_vector;
        for (unsigned v = tid; v < vectors; v += nthreads) {
            store16(dst + v * per_vector, load16(src + v * per_vector));
        }
        done = vectors * per_vector;
    }
    for (unsigned i = done + tid; i < count; i += nthreads) {
        dst[i] = src[i];
    }
}

}  // namespace tessera
