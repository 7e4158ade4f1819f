// Self-tests of the __half / __nv_bfloat16 helpers (kernels/host/cuda_host.h section 9): the
// arithmetic operators and functions, comparisons, __hisnan, the bit casts, the packed-pair
// helpers and the conversions from float. One thread per case i < n, with f16 operands
// a = ha[i], b = hb[i], bf16 operands c = ba[i], d = bb[i] and a float x = x[i].
//
// arith[i * 20 + k] (the result converted to float, so that an operator that did not round to
// its type shows):
//   0 a + b  1 a - b  2 a * b  3 a / b  4 -a  5 __hadd(a, b)  6 __hsub  7 __hmul  8 __hdiv
//   9 __hneg(a); 10..19: the same for c, d
// cmp[i * 2 + 0] (f16) and cmp[i * 2 + 1] (bf16): bit k set when
//   0 ==  1 !=  2 <  3 <=  4 >  5 >=  6 __heq  7 __hne  8 __hneu  9 __hlt  10 __hle  11 __hgt
//   12 __hge  13 __hisnan(first operand)  14 __hisnan(second operand)
// bits16[i * 12 + k] (f16 patterns):
//   0 __low2half(__halves2half2(a, b))  1 __high2half(of it)  2 __half2half2(a).x  3 .y
//   4 __ushort_as_half(__half_as_ushort(a))  5 __short_as_half(__half_as_short(a))
//   6 __float2half(x)  7 __float22half2_rn(float2{x, -x}).x  8 .y  9 __half(x)
//   10 __half2half2(a) through __low2half  11 the __half_raw round trip of a
// bitsb[i * 12 + k] (bf16 patterns): the same with __halves2bfloat162, __bfloat162bfloat162,
//   __ushort_as_bfloat16(__bfloat16_as_ushort(c)), c again for slot 5, __float2bfloat16,
//   __float22bfloat162_rn, __nv_bfloat16(x), __low2bfloat16, __nv_bfloat16_raw
// floats[i * 12 + k]: 0 __half2float(a)  1 __low2float(h2)  2 __high2float(h2)
//   3 __half22float2(h2).x  4 .y  5 (float)a; 6..11 the same for c, d (h2 = the pair (a, b))
#include "tessera.cuh"

namespace {
template <class H>
__device__ unsigned compare_bits(H p, H q) {
    unsigned r = 0;
    r |= (unsigned)(p == q) << 0;
    r |= (unsigned)(p != q) << 1;
    r |= (unsigned)(p < q) << 2;
    r |= (unsigned)(p <= q) << 3;
    r |= (unsigned)(p > q) << 4;
    r |= (unsigned)(p >= q) << 5;
    r |= (unsigned)__heq(p, q) << 6;
    r |= (unsigned)__hne(p, q) << 7;
    r |= (unsigned)__hneu(p, q) << 8;
    r |= (unsigned)__hlt(p, q) << 9;
    r |= (unsigned)__hle(p, q) << 10;
    r |= (unsigned)__hgt(p, q) << 11;
    r |= (unsigned)__hge(p, q) << 12;
    r |= (unsigned)__hisnan(p) << 13;
    r |= (unsigned)__hisnan(q) << 14;
    return r;
}
template <class H>
__device__ void arith(float* o, H p, H q) {
    // Each result is converted by the float conversion of its own type: __half stays rounded,
    // a float result (an operator computing in float) would not be.
    o[0] = tessera::to_float(p + q);
    o[1] = tessera::to_float(p - q);
    o[2] = tessera::to_float(p * q);
    o[3] = tessera::to_float(p / q);
    o[4] = tessera::to_float(-p);
    o[5] = tessera::to_float(__hadd(p, q));
    o[6] = tessera::to_float(__hsub(p, q));
    o[7] = tessera::to_float(__hmul(p, q));
    o[8] = tessera::to_float(__hdiv(p, q));
    o[9] = tessera::to_float(__hneg(p));
}
}  // namespace

TESSERA_KERNEL void selftest_prim_half(const tessera::f16* __restrict__ ha, const tessera::f16* __restrict__ hb,
                                       const tessera::bf16* __restrict__ ba, const tessera::bf16* __restrict__ bb,
                                       const float* __restrict__ x, int n, float* arith_out, unsigned* cmp,
                                       tessera::f16* bits16, tessera::bf16* bitsb, float* floats) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const __half a = ha[i], b = hb[i];
    const __nv_bfloat16 c = ba[i], d = bb[i];
    const float xf = x[i];
    arith(&arith_out[i * 20], a, b);
    arith(&arith_out[i * 20 + 10], c, d);
    cmp[i * 2] = compare_bits(a, b);
    cmp[i * 2 + 1] = compare_bits(c, d);

    const __half2 h2 = __halves2half2(a, b);
    __half* o16 = &bits16[i * 12];
    o16[0] = __low2half(h2);
    o16[1] = __high2half(h2);
    o16[2] = __half2half2(a).x;
    o16[3] = __half2half2(a).y;
    o16[4] = __ushort_as_half(__half_as_ushort(a));
    o16[5] = __short_as_half(__half_as_short(a));
    o16[6] = __float2half(xf);
    const __half2 f2 = __float22half2_rn(make_float2(xf, -xf));
    o16[7] = f2.x;
    o16[8] = f2.y;
    o16[9] = __half(xf);
    o16[10] = __low2half(__half2half2(a));
    const __half_raw raw = a;
    o16[11] = __half(raw);

    const __nv_bfloat162 b2 = __halves2bfloat162(c, d);
    __nv_bfloat16* ob = &bitsb[i * 12];
    ob[0] = __low2bfloat16(b2);
    ob[1] = __high2bfloat16(b2);
    ob[2] = __bfloat162bfloat162(c).x;
    ob[3] = __bfloat162bfloat162(c).y;
    ob[4] = __ushort_as_bfloat16(__bfloat16_as_ushort(c));
    ob[5] = c;
    ob[6] = __float2bfloat16(xf);
    const __nv_bfloat162 fb = __float22bfloat162_rn(make_float2(xf, -xf));
    ob[7] = fb.x;
    ob[8] = fb.y;
    ob[9] = __nv_bfloat16(xf);
    ob[10] = __low2bfloat16(__bfloat162bfloat162(c));
    const __nv_bfloat16_raw rawb = c;
    ob[11] = __nv_bfloat16(rawb);

    float* of = &floats[i * 12];
    of[0] = __half2float(a);
    of[1] = __low2float(h2);
    of[2] = __high2float(h2);
    const float2 p16 = __half22float2(h2);
    of[3] = p16.x;
    of[4] = p16.y;
    of[5] = (float)a;
    of[6] = __bfloat162float(c);
    of[7] = __low2float(b2);
    of[8] = __high2float(b2);
    const float2 pb = __bfloat1622float2(b2);
    of[9] = pb.x;
    of[10] = pb.y;
    of[11] = (float)c;
}
