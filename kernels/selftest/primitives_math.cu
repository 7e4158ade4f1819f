// Self-tests of the arithmetic intrinsics, min/max and conversions (kernels/host/cuda_host.h
// section 8) and of the make_* vector constructors (section 3). One thread per case i < n;
// each writes its results to out[i * K + k], k as listed (K = the number of results).
//
// selftest_prim_float (K = 12), a = x[i], b = y[i], c = z[i]:
//   0 __fadd_rn(a, b)  1 __fsub_rn(a, b)  2 __fmul_rn(a, b)  3 __fdiv_rn(a, b)  4 __fmaf_rn(a, b, c)
//   5 __frcp_rn(a)  6 __fsqrt_rn(a)  7 __saturatef(a)  8 __fdividef(a, b)  9 __expf(a)
//   10 min(a, b)  11 max(a, b)
// selftest_prim_double (K = 12), on the bit patterns a = x[i], b = y[i], c = z[i] as doubles:
//   0 __dadd_rn(a, b)  1 __dmul_rn(a, b)  2 __fma_rn(a, b, c)  3 min(a, b)  4 max(a, b)
//   5 __double2float_rn(a) (bits)  6 __half(a) (bits)  7 __nv_bfloat16(a) (bits)
//   8 min((float)a, b) (mixed: double)  9 max((float)a, b)
//   10 __double_as_longlong(__longlong_as_double(x[i]))  11 (double)__ll2float_rn((long long)x[i])
// selftest_prim_int (K = 39), a = x[i], b = y[i], c = z[i] (u32), A = a << 32 | b, B = b << 32 | c;
//   64-bit results take two slots (low word first):
//   0 __umulhi(a, b)  1 __mulhi((int)a, (int)b)  2,3 __umul64hi(A, B)  4,5 __mul64hi(A, B)
//   6 __popc(a)  7 __popcll(A)  8 __clz((int)a)  9 __clzll(A)  10 __ffs((int)a)  11 __ffsll(A)
//   12 __brev(a)  13,14 __brevll(A)  15 __byte_perm(a, b, c)
//   16 min(int)  17 max(int)  18 min(unsigned)  19 max(unsigned)  20,21 min(long long)
//   22,23 max(long long)  24,25 min(unsigned long long)  26,27 max(unsigned long long)
//   28 min((int)a, b) (mixed: unsigned)  29 max((int)a, b)  30,31 min(long)  32,33 max(long)
//   34,35 min(unsigned long)  36,37 max(unsigned long)  38 __ldg(&x[i])
// selftest_prim_convert (K = 18), f = x[i] (float), v = xi[i] (int), w = x64[i]:
//   0 __float2int_rn(f)  1 __float2int_rz  2 __float2int_rd  3 __float2int_ru  4 __float2uint_rn
//   5 __float2uint_rz  6,7 __float2ll_rn  8 __int2float_rn(v) (bits)  9 __uint2float_rn((unsigned)v)
//   10 __ll2float_rn((long long)w)  11 __float_as_int(f)  12 __float_as_uint(f)
//   13 __float_as_uint(__int_as_float(v))  14 __float_as_uint(__uint_as_float((unsigned)v))
//   15 __double2float_rn(__longlong_as_double(w)) (bits)  16,17 __double_as_longlong(of it)
// selftest_prim_make_vectors: one thread; vector type number t (float2, float3, float4, double2,
//   int2, int3, int4, uint2, uint3, uint4, short2, short4, ushort2, ushort4, char2, char4,
//   uchar2, uchar4, longlong2, ulonglong2) built with make_<type> from consecutive words of
//   src (field j of a 4-byte type: src[4t + j]; 8-byte fields: src[4t + 2j] | src[4t + 2j + 1]
//   << 32; narrower fields: the low bytes of src[4t + j]) is stored as one object at
//   out[32t ..], its sizeof to out[32t + 24] and its alignof to out[32t + 28].
#include "tessera.cuh"

TESSERA_KERNEL void selftest_prim_float(const float* __restrict__ x, const float* __restrict__ y,
                                        const float* __restrict__ z, int n, float* out) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float a = x[i], b = y[i], c = z[i];
    float* o = &out[i * 12];
    o[0] = __fadd_rn(a, b);
    o[1] = __fsub_rn(a, b);
    o[2] = __fmul_rn(a, b);
    o[3] = __fdiv_rn(a, b);
    o[4] = __fmaf_rn(a, b, c);
    o[5] = __frcp_rn(a);
    o[6] = __fsqrt_rn(a);
    o[7] = __saturatef(a);
    o[8] = __fdividef(a, b);
    o[9] = __expf(a);
    o[10] = min(a, b);
    o[11] = max(a, b);
}

TESSERA_KERNEL void selftest_prim_double(const unsigned long long* __restrict__ x, const unsigned long long* __restrict__ y,
                                         const unsigned long long* __restrict__ z, int n, unsigned long long* out) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const double a = __longlong_as_double((long long)x[i]), b = __longlong_as_double((long long)y[i]),
                 c = __longlong_as_double((long long)z[i]);
    auto bits = [](double d) { return (unsigned long long)__double_as_longlong(d); };
    unsigned long long* o = &out[i * 12];
    o[0] = bits(__dadd_rn(a, b));
    o[1] = bits(__dmul_rn(a, b));
    o[2] = bits(__fma_rn(a, b, c));
    o[3] = bits(min(a, b));
    o[4] = bits(max(a, b));
    o[5] = __float_as_uint(__double2float_rn(a));
    o[6] = __half_as_ushort(__half(a));
    o[7] = __bfloat16_as_ushort(__nv_bfloat16(a));
    o[8] = bits(min((float)a, b));
    o[9] = bits(max((float)a, b));
    o[10] = (unsigned long long)__double_as_longlong(__longlong_as_double((long long)x[i]));
    o[11] = bits((double)__ll2float_rn((long long)x[i]));
}

TESSERA_KERNEL void selftest_prim_int(const unsigned* __restrict__ x, const unsigned* __restrict__ y,
                                      const unsigned* __restrict__ z, int n, unsigned* out) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const unsigned a = x[i], b = y[i], c = z[i];
    const unsigned long long A = ((unsigned long long)a << 32) | b, B = ((unsigned long long)b << 32) | c;
    const int ia = (int)a, ib = (int)b;
    const long long la = (long long)A, lb = (long long)B;
    unsigned* o = &out[i * 39];
    auto put64 = [&](int k, unsigned long long v) {
        o[k] = (unsigned)v;
        o[k + 1] = (unsigned)(v >> 32);
    };
    o[0] = __umulhi(a, b);
    o[1] = (unsigned)__mulhi(ia, ib);
    put64(2, __umul64hi(A, B));
    put64(4, (unsigned long long)__mul64hi(la, lb));
    o[6] = (unsigned)__popc(a);
    o[7] = (unsigned)__popcll(A);
    o[8] = (unsigned)__clz(ia);
    o[9] = (unsigned)__clzll(la);
    o[10] = (unsigned)__ffs(ia);
    o[11] = (unsigned)__ffsll(la);
    o[12] = __brev(a);
    put64(13, __brevll(A));
    o[15] = __byte_perm(a, b, c);
    o[16] = (unsigned)min(ia, ib);
    o[17] = (unsigned)max(ia, ib);
    o[18] = min(a, b);
    o[19] = max(a, b);
    put64(20, (unsigned long long)min(la, lb));
    put64(22, (unsigned long long)max(la, lb));
    put64(24, min(A, B));
    put64(26, max(A, B));
    o[28] = min(ia, b);
    o[29] = max(ia, b);
    put64(30, (unsigned long long)min((long)la, (long)lb));
    put64(32, (unsigned long long)max((long)la, (long)lb));
    put64(34, (unsigned long long)min((unsigned long)A, (unsigned long)B));
    put64(36, (unsigned long long)max((unsigned long)A, (unsigned long)B));
    o[38] = __ldg(&x[i]);
}

TESSERA_KERNEL void selftest_prim_convert(const float* __restrict__ x, const int* __restrict__ xi,
                                          const unsigned long long* __restrict__ x64, int n, unsigned* out) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float f = x[i];
    const int v = xi[i];
    const unsigned long long w = x64[i];
    unsigned* o = &out[i * 18];
    o[0] = (unsigned)__float2int_rn(f);
    o[1] = (unsigned)__float2int_rz(f);
    o[2] = (unsigned)__float2int_rd(f);
    o[3] = (unsigned)__float2int_ru(f);
    o[4] = __float2uint_rn(f);
    o[5] = __float2uint_rz(f);
    const unsigned long long ll = (unsigned long long)__float2ll_rn(f);
    o[6] = (unsigned)ll;
    o[7] = (unsigned)(ll >> 32);
    o[8] = __float_as_uint(__int2float_rn(v));
    o[9] = __float_as_uint(__uint2float_rn((unsigned)v));
    o[10] = __float_as_uint(__ll2float_rn((long long)w));
    o[11] = (unsigned)__float_as_int(f);
    o[12] = __float_as_uint(f);
    o[13] = __float_as_uint(__int_as_float(v));
    o[14] = __float_as_uint(__uint_as_float((unsigned)v));
    o[15] = __float_as_uint(__double2float_rn(__longlong_as_double((long long)w)));
    const unsigned long long back = (unsigned long long)__double_as_longlong(__longlong_as_double((long long)w));
    o[16] = (unsigned)back;
    o[17] = (unsigned)(back >> 32);
}

namespace {
// Stores the vector as one object (no local copy in memory: the kernels keep no stack frame);
// slots are 32 bytes apart in a 16-byte aligned buffer, so every vector type is aligned.
template <class V>
__device__ void put_vector(unsigned char* out, int t, V v) {
    unsigned char* slot = out + 32 * t;
    *reinterpret_cast<V*>(slot) = v;
    const unsigned size = sizeof(V), align = alignof(V);
    for (int k = 0; k < 4; ++k) {
        slot[24 + k] = (unsigned char)(size >> (8 * k));
        slot[28 + k] = (unsigned char)(align >> (8 * k));
    }
}
}  // namespace

TESSERA_KERNEL void selftest_prim_make_vectors(const unsigned* __restrict__ src, unsigned char* out) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    auto w = [&](int t, int j) { return src[4 * t + j]; };
    auto f = [&](int t, int j) { return __uint_as_float(w(t, j)); };
    auto q = [&](int t, int j) { return ((unsigned long long)w(t, 2 * j + 1) << 32) | w(t, 2 * j); };
    put_vector(out, 0, make_float2(f(0, 0), f(0, 1)));
    put_vector(out, 1, make_float3(f(1, 0), f(1, 1), f(1, 2)));
    put_vector(out, 2, make_float4(f(2, 0), f(2, 1), f(2, 2), f(2, 3)));
    put_vector(out, 3, make_double2(__longlong_as_double((long long)q(3, 0)), __longlong_as_double((long long)q(3, 1))));
    put_vector(out, 4, make_int2((int)w(4, 0), (int)w(4, 1)));
    put_vector(out, 5, make_int3((int)w(5, 0), (int)w(5, 1), (int)w(5, 2)));
    put_vector(out, 6, make_int4((int)w(6, 0), (int)w(6, 1), (int)w(6, 2), (int)w(6, 3)));
    put_vector(out, 7, make_uint2(w(7, 0), w(7, 1)));
    put_vector(out, 8, make_uint3(w(8, 0), w(8, 1), w(8, 2)));
    put_vector(out, 9, make_uint4(w(9, 0), w(9, 1), w(9, 2), w(9, 3)));
    put_vector(out, 10, make_short2((short)w(10, 0), (short)w(10, 1)));
    put_vector(out, 11, make_short4((short)w(11, 0), (short)w(11, 1), (short)w(11, 2), (short)w(11, 3)));
    put_vector(out, 12, make_ushort2((unsigned short)w(12, 0), (unsigned short)w(12, 1)));
    put_vector(out, 13, make_ushort4((unsigned short)w(13, 0), (unsigned short)w(13, 1), (unsigned short)w(13, 2),
                                     (unsigned short)w(13, 3)));
    put_vector(out, 14, make_char2((signed char)w(14, 0), (signed char)w(14, 1)));
    put_vector(out, 15, make_char4((signed char)w(15, 0), (signed char)w(15, 1), (signed char)w(15, 2),
                                   (signed char)w(15, 3)));
    put_vector(out, 16, make_uchar2((unsigned char)w(16, 0), (unsigned char)w(16, 1)));
    put_vector(out, 17, make_uchar4((unsigned char)w(17, 0), (unsigned char)w(17, 1), (unsigned char)w(17, 2),
                                    (unsigned char)w(17, 3)));
    put_vector(out, 18, make_longlong2((long long)q(18, 0), (long long)q(18, 1)));
    put_vector(out, 19, make_ulonglong2(q(19, 0), q(19, 1)));
}
