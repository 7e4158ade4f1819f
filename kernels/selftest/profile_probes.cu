// Self-test: access patterns whose memory-traffic profile is known exactly
// (tests/emulator_profile.rs computes the expected figures from the same patterns).
//
// Every kernel first rounds its global pointers up to a 128-byte boundary (the wrappers
// allocate 32 spare elements), so that the 32-byte sectors a warp touches do not depend on
// where the host allocator put the buffers.
//
//   selftest_profile_global       blocks of 64 threads (2 warps): out[t] = in[t · stride]
//                                 (stride 1: coalesced, 4 sectors per warp; stride 8: one
//                                 32-byte sector per lane, efficiency 1/8).
//   selftest_profile_transpose    one 32×32 block, dynamic shared tile of 32 rows of `pitch`
//                                 floats: tile[ty][tx] = in[ty][tx] (a warp stores one row:
//                                 conflict-free), barrier, out[ty][tx] = tile[tx][ty] (a warp
//                                 reads one column: with pitch 32 every lane hits the same
//                                 bank, a 32-way conflict; with pitch 33 no conflict).
//   selftest_profile_shared_wide  one warp; fills 1024 shared words with 4-byte stores, then one
//                                 load per lane selected by `pattern`:
//                                 0: 8 bytes at word 2·lane  (2 phases of 16 lanes, 1 wavefront each)
//                                 1: 8 bytes at word 4·lane  (2-way conflict in each phase)
//                                 2: 16 bytes at word 4·lane (4 phases of 8 lanes, 1 each)
//                                 3: 16 bytes at word 8·lane (2-way conflict in each phase)
//                                 4: 4 bytes at word 0       (a broadcast: 1 wavefront)
//                                 5: 4 bytes at word 2·lane  (2-way conflict)
//                                 6: 16 bytes at word 4·lane by a plain float4 dereference whose
//                                    fields are then used one by one (one 16-byte request, as
//                                    nvcc's ld.shared.v4: the host compiler must not split it)
//                                 7: 8 bytes at word 4·lane by a plain uint2 dereference
//                                    (2-way conflict in each phase)
//                                 and out[lane] = the loaded words' sum.
#include "tessera.cuh"

namespace {
template <class T>
__device__ __forceinline__ T* align128(T* p) {
    return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 127) & ~static_cast<uintptr_t>(127));
}
}  // namespace

TESSERA_KERNEL void selftest_profile_global(const float* __restrict__ src, float* __restrict__ out, int stride) {
    const float* a = align128(src);
    float* o = align128(out);
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    o[t] = a[(size_t)t * stride];
}

TESSERA_KERNEL void selftest_profile_transpose(const float* __restrict__ src, float* __restrict__ out, int pitch) {
    TESSERA_DYNAMIC_SMEM(float, tile);
    const float* a = align128(src);
    float* o = align128(out);
    const unsigned tx = threadIdx.x, ty = threadIdx.y;
    tile[ty * pitch + tx] = a[ty * 32 + tx];
    __syncthreads();
    o[ty * 32 + tx] = tile[tx * pitch + ty];
}

TESSERA_KERNEL void selftest_profile_shared_wide(unsigned* __restrict__ out, int pattern) {
    TESSERA_DYNAMIC_SMEM(unsigned, s);
    const unsigned lane = threadIdx.x;
    for (unsigned i = lane; i < 1024; i += 32) s[i] = i;
    __syncthreads();
    unsigned r = 0;
    if (pattern == 0 || pattern == 1) {
        const unsigned long long v = *reinterpret_cast<const unsigned long long*>(&s[(pattern == 0 ? 2 : 4) * lane]);
        r = (unsigned)v + (unsigned)(v >> 32);
    } else if (pattern == 2 || pattern == 3) {
        const uint4 v = tessera::load16(&s[(pattern == 2 ? 4 : 8) * lane]);
        r = v.x + v.y + v.z + v.w;
    } else if (pattern == 6) {
        const float4 v = *reinterpret_cast<const float4*>(&s[4 * lane]);
        r = __float_as_uint(v.x) + __float_as_uint(v.y) + __float_as_uint(v.z) + __float_as_uint(v.w);
    } else if (pattern == 7) {
        const uint2 v = *reinterpret_cast<const uint2*>(&s[4 * lane]);
        r = v.x + v.y;
    } else if (pattern == 4) {
        r = s[0];
    } else {
        r = s[2 * lane];
    }
    out[lane] = r;
}
