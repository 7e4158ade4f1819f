// (distance, index) pairs for nearest-neighbour searches.
//
// A pair is packed into one 64-bit key whose unsigned order is the lexicographic order of
// (distance, index): the high word is the float's bits made order-preserving (negative
// floats have all bits flipped, non-negative ones the sign bit set), the low word the
// index. So the minimum key is the smallest distance, ties going to the lowest index,
// and partial results of blocks that searched different parts of a codebook combine
// with one 64-bit atomicMin. NaN distances are never produced by finite inputs; kernels
// that see a non-finite input flag it through their status word instead.
#pragma once
#include "tessera.cuh"

namespace tessera {

// Index meaning "no candidate seen" (an empty search range, or only NaN distances).
constexpr unsigned NO_INDEX = 0xffffffffu;
// The key every search starts from: larger than any real (distance, index).
constexpr unsigned long long EMPTY_KEY = 0xffffffffffffffffull;

__device__ __forceinline__ unsigned orderable_bits(float d) {
    const unsigned b = __float_as_uint(d);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float from_orderable_bits(unsigned o) {
    return __uint_as_float((o & 0x80000000u) ? (o & 0x7fffffffu) : ~o);
}
__device__ __forceinline__ unsigned long long argmin_key(float dist, unsigned index) {
    return ((unsigned long long)orderable_bits(dist) << 32) | index;
}
__device__ __forceinline__ unsigned key_index(unsigned long long key) { return (unsigned)(key & 0xffffffffu); }
__device__ __forceinline__ float key_distance(unsigned long long key) { return from_orderable_bits((unsigned)(key >> 32)); }

// A running best: strictly smaller replaces, so candidates offered in increasing index
// order keep the lowest index among equal distances.
struct ArgMin {
    float dist;
    unsigned index;
    __device__ __forceinline__ void init() { dist = __int_as_float(0x7f800000); index = NO_INDEX; }
    __device__ __forceinline__ void offer(float d, unsigned i) {
        if (d < dist) { dist = d; index = i; }
    }
    // Combine with another thread's best (any index order): lexicographic minimum.
    __device__ __forceinline__ void merge(float d, unsigned i) {
        if (d < dist || (d == dist && i < index)) { dist = d; index = i; }
    }
    // Merge across the lanes whose ids differ only in the bits of `lane_bits` (e.g. 3 for a
    // quad, 15 for 16 lanes). Every lane of the warp must call; all end with the minimum.
    __device__ __forceinline__ void reduce_lanes(unsigned lane_bits) {
        for (unsigned o = 1; o <= lane_bits; o <<= 1) {
            const float d = __shfl_xor_sync(0xffffffffu, dist, (int)o);
            const unsigned i = __shfl_xor_sync(0xffffffffu, index, (int)o);
            merge(d, i);
        }
    }
};

}  // namespace tessera
