// Self-test: float -> f16 / bf16 conversions (round to nearest even) and back.
// For each i < n: h16[i] = bits of __float2half_rn(in[i]), hb[i] = bits of
// __float2bfloat16_rn(in[i]), back16[i] = __half2float of it, backb[i] = __bfloat162float of
// it; also through tessera::from_float / to_float and the packed-pair helpers (slot pair[i]:
// low half = the f16 of in[i], high half = the bf16 of in[i] via __floats2*2_rn / __low2float).
// The test compares the bits with Rust's `half` crate.
#include "tessera.cuh"

TESSERA_KERNEL void selftest_half_convert(const float* __restrict__ src, int n, tessera::f16* h16,
                                          tessera::bf16* hb, float* back16, float* backb, unsigned* pair,
                                          int* mismatches) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float x = src[i];
    const __half h = __float2half_rn(x);
    const __nv_bfloat16 b = __float2bfloat16_rn(x);
    h16[i] = h;
    hb[i] = b;
    back16[i] = __half2float(h);
    backb[i] = __bfloat162float(b);
    const __half2 h2 = __floats2half2_rn(x, -x);
    const __nv_bfloat162 b2 = __floats2bfloat162_rn(-x, x);
    pair[i] = (unsigned)__half_as_ushort(h2.x) | ((unsigned)__bfloat16_as_ushort(b2.y) << 16);
    // The generic helpers must agree with the intrinsics (NaN payloads aside).
    int bad = 0;
    const float f1 = tessera::to_float(tessera::from_float<tessera::f16>(x));
    const float f2 = tessera::to_float(tessera::from_float<tessera::bf16>(x));
    if (!(f1 == __half2float(h) || (f1 != f1 && back16[i] != back16[i]))) bad++;
    if (!(f2 == __bfloat162float(b) || (f2 != f2 && backb[i] != backb[i]))) bad++;
    const float2 p16 = __half22float2(h2);
    const float2 pb = __bfloat1622float2(b2);
    if (x == x && (p16.x != __half2float(h) || pb.y != __bfloat162float(b) || __low2float(h2) != p16.x ||
                   __high2float(b2) != pb.y))
        bad++;
    if (bad) atomicAdd(mismatches, bad);
}
