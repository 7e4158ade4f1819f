// Self-test: warp shuffles in divergent code.
//
// Block of 128 threads (4 warps); g = global thread index; v = in[g]; out has 8 floats per
// thread, out64 has 4 32-bit words per thread (two 64-bit values, low word first).
// Unwritten slots keep the sentinel the host filled in.
//   odd warps (full mask):
//     out[0] = tessera::warp_reduce_sum(v)           (xor butterfly over 32 lanes)
//     out[1] = __shfl_up_sync(full, v, 3, 16)        (segments of 16; lanes < 3 of a segment keep v)
//     out[2] = __shfl_down_sync(full, v, 5)          (lanes > 26 keep v)
//     out[3] = __shfl_sync(full, v, 7 - lane, 8)     (src (7-lane) mod 8 within the 8-lane segment)
//     out[4] = __shfl_xor_sync(full, v, 9, 16)
//     out64[0,1] = __shfl_xor_sync(full, (u64)g << 40 | g * 7, 16)    (64-bit payload)
//     out64[2,3] = bits of __shfl_sync(full, (double)v * 0.5 + 1e-9 * g, 31 - lane)
//   even warps, only lanes 0-15 (mask 0x0000ffff): a shfl_down tree over 16 lanes
//     out[0] = s after s += __shfl_down_sync(0xffff, s, o, 16) for o = 8,4,2,1
//     out[5] = __shfl_sync(0xffff, v, (lane + 3) & 15)
//   even warps, lanes 16-31 (mask 0xffff0000): out[6] = __shfl_sync(0xffff0000, v, 16 + ((lane * 5) & 15))
//   every lane: out[7] = __shfl_sync(__activemask(), v, 0) (lane 0 of the warp)
#include "tessera.cuh"

TESSERA_KERNEL void selftest_warp_shuffle(const float* __restrict__ src, float* out, unsigned* out64) {
    const unsigned tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const unsigned g = blockIdx.x * blockDim.x + tid;
    const float v = src[g];
    float* o = out + (size_t)g * 8;
    const unsigned full = 0xffffffffu;
    if (warp & 1) {
        o[0] = tessera::warp_reduce_sum(v);
        o[1] = __shfl_up_sync(full, v, 3, 16);
        o[2] = __shfl_down_sync(full, v, 5);
        o[3] = __shfl_sync(full, v, 7 - (int)lane, 8);
        o[4] = __shfl_xor_sync(full, v, 9, 16);
        const unsigned long long x = ((unsigned long long)g << 40) | (unsigned long long)(g * 7u);
        const unsigned long long y = __shfl_xor_sync(full, x, 16);
        out64[(size_t)g * 4] = (unsigned)y, out64[(size_t)g * 4 + 1] = (unsigned)(y >> 32);
        const double d = __shfl_sync(full, (double)v * 0.5 + 1e-9 * g, 31 - (int)lane);
        const unsigned long long bits = (unsigned long long)__double_as_longlong(d);
        out64[(size_t)g * 4 + 2] = (unsigned)bits, out64[(size_t)g * 4 + 3] = (unsigned)(bits >> 32);
    } else if (lane < 16) {
        float s = v;
        for (int off = 8; off > 0; off >>= 1) s += __shfl_down_sync(0x0000ffffu, s, off, 16);
        o[0] = s;
        o[5] = __shfl_sync(0x0000ffffu, v, (int)((lane + 3) & 15));
    } else {
        o[6] = __shfl_sync(0xffff0000u, v, 16 + (int)((lane * 5) & 15));
    }
    o[7] = __shfl_sync(__activemask(), v, 0);
}
