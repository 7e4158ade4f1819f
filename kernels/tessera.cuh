// tessera.cuh -- the portability layer under every tessera kernel.
//
// Every kernel source (kernels/*.cu) includes this file and nothing CUDA-specific beyond it.
// The same source is compiled twice:
//   * by nvcc for sm_80/sm_90 (__CUDACC__ defined): the real CUDA headers and inline PTX;
//   * by the host C++ compiler for the emulator: kernels/host/cuda_host.h provides the CUDA
//     device language on the CPU and the wrappers below call into the emulator runtime, which
//     reproduces the PTX semantics (fragment layouts included) as warp collectives.
// Inline PTX appears only in this file, only inside wrappers that have a host implementation.
//
// Sections
//   1. CUDA headers or the host emulation; TESSERA_KERNEL; TESSERA_DYNAMIC_SMEM
//   2. element types: tessera::f16 / tessera::bf16, to_float / from_float
//   3. 16-byte vector loads and stores
//   4. warp and block reductions
//   5. tensor cores: mma.sync m16n8k16 (f16 / bf16 -> f32), mma.sync m16n8k8 (f16 / bf16 / tf32
//      -> f32: mma_m16n8k8_f16, _bf16, _tf32), f32_to_tf32 (cvt.rna.tf32.f32) and ldmatrix
//   6. asynchronous global -> shared copies (cp.async)
#pragma once

// ---- 1. platform -------------------------------------------------------------------------------------
#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>
#define TESSERA_HOST_EMULATION 0
// Extra trailing parameter of the host wrappers (call-site capture); nothing on the device.
#define TESSERA_HOST_LOC
#else
#include "host/cuda_host.h"
#define TESSERA_HOST_EMULATION 1
#define TESSERA_HOST_LOC , std::source_location loc = std::source_location::current()
#endif

// Kernels are unmangled so that both the Cuda backend (by name, from the module) and the
// emulator (by symbol, from the host library) find them.
#define TESSERA_KERNEL extern "C" __global__

// Dynamic shared memory, the launch's byte count, 16-byte aligned: `TESSERA_DYNAMIC_SMEM(float, s);`
// then `s[i]`. Host: malloc'd per block with exactly that size (ASan sees overruns), filled
// with 0xFF bytes so a read before any write yields NaN / -1. Device: one byte array shared by
// all kernels of the file, so two kernels may view it with different element types.
#if defined(__CUDACC__)
#define TESSERA_DYNAMIC_SMEM(type, name)                                  \
    extern __shared__ __align__(16) unsigned char tessera_dynamic_smem_[]; \
    type* name = reinterpret_cast<type*>(tessera_dynamic_smem_)
#else
#define TESSERA_DYNAMIC_SMEM(type, name) type* name = reinterpret_cast<type*>(::tessera_host::dynamic_smem())
#endif

namespace tessera {

// ---- 2. element types ----------------------------------------------------------------------------------
using f16 = __half;
using bf16 = __nv_bfloat16;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

// Round-to-nearest-even conversion from f32 (identical on both sides for non-NaN values).
template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// ---- 3. 16-byte loads and stores ------------------------------------------------------------------------
// `p` must be 16-byte aligned (a GPU faults otherwise; the emulator reports WARP_MISUSE).
__device__ __forceinline__ uint4 load16(const void* p TESSERA_HOST_LOC) {
#if TESSERA_HOST_EMULATION
    ::tessera_host::check_aligned(p, 16, "load16", loc);
    uint4 v;
    std::memcpy(&v, p, 16);
    return v;
#else
    return *reinterpret_cast<const uint4*>(p);
#endif
}
__device__ __forceinline__ void store16(void* p, uint4 v TESSERA_HOST_LOC) {
#if TESSERA_HOST_EMULATION
    ::tessera_host::check_aligned(p, 16, "store16", loc);
    std::memcpy(p, &v, 16);
#else
    *reinterpret_cast<uint4*>(p) = v;
#endif
}

// ---- 4. reductions ---------------------------------------------------------------------------------------
// Warp reductions over all 32 lanes (full mask: every lane of the warp must call them, and the
// warp must be complete). Every lane receives the result.
__device__ __forceinline__ float warp_reduce_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_reduce_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float warp_reduce_min(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

namespace detail {
// Sum over the first `lanes` lanes of a warp (lanes 0..lanes-1 call it, mask = those lanes);
// the total lands in lane 0. Source lanes are clamped inside the mask, so it also serves the
// partial last warp of a block whose size is not a multiple of 32.
__device__ __forceinline__ float warp_sum_first_lanes(float v, unsigned lane, unsigned lanes) {
    if (lanes == 32) return warp_reduce_sum(v);
    const unsigned mask = (1u << lanes) - 1u;
#pragma unroll
    for (unsigned o = 16; o > 0; o >>= 1) {
        const unsigned src = lane + o;
        const float other = __shfl_sync(mask, v, (int)(src < lanes ? src : lane));
        if (src < lanes) v += other;
    }
    return v;
}
}  // namespace detail

// Sum of `v` over all threads of the block, returned to every thread. Must be called by every
// thread of the block (it contains three __syncthreads, the last so that `scratch` may be
// reused at once). Any block size. `scratch`: __shared__ float[32] at least (one per warp).
__device__ __forceinline__ float block_reduce_sum(float v, float* scratch) {
    const unsigned nthreads = blockDim.x * blockDim.y * blockDim.z;
    const unsigned tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned lane = tid & 31u, warp = tid >> 5, nwarps = (nthreads + 31u) >> 5;
    const unsigned in_warp = nthreads - warp * 32u < 32u ? nthreads - warp * 32u : 32u;
    v = detail::warp_sum_first_lanes(v, lane, in_warp);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < nwarps ? scratch[lane] : 0.0f;
        s = detail::warp_sum_first_lanes(s, lane, in_warp);
        if (lane == 0) scratch[0] = s;
    }
    __syncthreads();
    const float total = scratch[0];
    __syncthreads();
    return total;
}

// ---- 5. tensor cores ---------------------------------------------------------------------------------------
// Fragment layouts (PTX ISA, mma.m16n8k16 / ldmatrix.m8n8.b16), g = lane >> 2, t = lane & 3;
// in a 32-bit register the low half holds the lower column (or k) index.
//   A 16x16 row-major: a[0] = (row g,   cols 2t,2t+1)  a[1] = (row g+8, cols 2t,2t+1)
//                      a[2] = (row g,   cols 2t+8,+9)  a[3] = (row g+8, cols 2t+8,+9)
//   B 16x8 ("col"):    b[0] = (k 2t,2t+1,   col g)     b[1] = (k 2t+8,2t+9, col g)
//   C/D 16x8 f32:      d[0],d[1] = (row g, cols 2t,2t+1)   d[2],d[3] = (row g+8, cols 2t,2t+1)
// All 32 lanes must call (full warp, converged). d may alias c. The emulator computes
// d = c + sum_k a*b in f32 with exact products, k ascending (a GPU's summation order and
// internal precision differ slightly: compare with a tolerance).
__device__ __forceinline__ void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                 const float (&c)[4] TESSERA_HOST_LOC) {
#if TESSERA_HOST_EMULATION
    ::tessera_host::mma_m16n8k16(0, d, a, b, c, loc.file_name(), loc.line());
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
#endif
}
__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                  const float (&c)[4] TESSERA_HOST_LOC) {
#if TESSERA_HOST_EMULATION
    ::tessera_host::mma_m16n8k16(1, d, a, b, c, loc.file_name(), loc.line());
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
#endif
}

// mma.sync m16n8k8 (PTX ISA "Matrix Fragments for mma.m16n8k8"), g = lane >> 2, t = lane & 3;
// C/D as m16n8k16 above. f16 / bf16 (two elements per register, low half = lower k):
//   A 16x8 row-major: a[0] = (row g,   k 2t,2t+1)  a[1] = (row g+8, k 2t,2t+1)
//   B 8x8 ("col"):    b[0] = (k 2t,2t+1, col g)
// tf32 (one element per register, as an f32 bit pattern):
//   A 16x8 row-major: a[0] = (row g,   k t)        a[1] = (row g+8, k t)
//                     a[2] = (row g,   k t+4)      a[3] = (row g+8, k t+4)
//   B 8x8 ("col"):    b[0] = (k t,   col g)        b[1] = (k t+4, col g)
// Mind the tf32 A order: rows alternate first (a[0], a[1]: rows g, g+8 at k t), then k
// (a[2], a[3]: the same rows at k t+4), as in m16n8k16's f16 A.
// tf32 operands: a GPU uses the top 19 bits of each 32-bit register (sign, 8 exponent and 10
// mantissa bits) and ignores the low 13 (PTX ISA: tf32 has "reduced precision (>=10 bits)",
// its layout implementation defined; wgmma.mma_async "will truncate lower 13 bits of the
// 32-bit input data before multiplication"). The emulator zeroes them likewise, which
// truncates toward zero: round with f32_to_tf32 first unless truncation is what is wanted.
// All 32 lanes must call (full warp, converged). d may alias c. The emulator computes
// d = c + sum_k a*b in f32 with exact products (tf32 x tf32 fits an f32), k ascending (a GPU's
// summation order and internal precision differ slightly: compare with a tolerance).
__device__ __forceinline__ void mma_m16n8k8_f16(float (&d)[4], const uint32_t (&a)[2], const uint32_t (&b)[1],
                                                const float (&c)[4] TESSERA_HOST_LOC) {
#if TESSERA_HOST_EMULATION
    ::tessera_host::mma_m16n8k8(0, d, a, b, c, loc.file_name(), loc.line());
#else
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%8,%9,%10};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(b[0]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}
__device__ __forceinline__ void mma_m16n8k8_bf16(float (&d)[4], const uint32_t (&a)[2], const uint32_t (&b)[1],
                                                 const float (&c)[4] TESSERA_HOST_LOC) {
#if TESSERA_HOST_EMULATION
    ::tessera_host::mma_m16n8k8(1, d, a, b, c, loc.file_name(), loc.line());
#else
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%8,%9,%10};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(b[0]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}
__device__ __forceinline__ void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                 const float (&c)[4] TESSERA_HOST_LOC) {
#if TESSERA_HOST_EMULATION
    ::tessera_host::mma_m16n8k8(2, d, a, b, c, loc.file_name(), loc.line());
#else
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
#endif
}

// cvt.rna.tf32.f32: x rounded to tf32 (10 mantissa bits), to nearest, ties away from zero;
// the result is the f32 bit pattern with the low 13 bits zero (__uint_as_float gives the
// value), ready for mma_m16n8k8_tf32. Subnormals are rounded likewise (not flushed); a
// finite value that rounds past the largest tf32 (0x7f7fe000) becomes Inf; Inf stays Inf;
// NaN stays NaN (the emulator keeps the sign and the top payload bits and sets the quiet
// bit; a GPU's NaN bits may differ: test with isnan).
__device__ __forceinline__ uint32_t f32_to_tf32(float x) {
#if TESSERA_HOST_EMULATION
    return ::tessera_host::f32_to_tf32_bits(x);
#else
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
#endif
}

// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16: loads 1, 2 or 4 8x8 matrices of
// 16-bit elements from shared memory. Every lane passes a row address (16 bytes, 16-byte
// aligned): rows 0-7 of matrix i come from lanes 8i..8i+7 (x1: lanes 0-7 matter, x2: 0-15,
// x4: all); the others' addresses are ignored but must still be passed. Lane l receives, of
// matrix i in r[i]: (row l/4, cols 2(l%4), 2(l%4)+1); with _trans: (row 2(l%4), col l/4) in the
// low half and (row 2(l%4)+1, col l/4) in the high half. All 32 lanes must call.
#if !TESSERA_HOST_EMULATION
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
#endif
// One wrapper for every shape: NUM ∈ {1, 2, 4} 8x8 matrices of b16, TRANS = .trans. Lanes
// 8i..8i+7 pass the row addresses of matrix i (i < NUM); register i of each lane receives
// its fragment of matrix i (PTX ISA, "ldmatrix").
template <int NUM, bool TRANS>
__device__ __forceinline__ void ldmatrix(uint32_t (&r)[NUM], const void* smem_row TESSERA_HOST_LOC) {
    static_assert(NUM == 1 || NUM == 2 || NUM == 4, "ldmatrix loads 1, 2 or 4 matrices");
#if TESSERA_HOST_EMULATION
    ::tessera_host::ldmatrix(NUM, TRANS ? 1 : 0, r, smem_row, loc.file_name(), loc.line());
#else
#define TESSERA_LDMATRIX(SHAPE, REGS, ...) \
    asm volatile("ldmatrix.sync.aligned.m8n8." SHAPE ".shared.b16 " REGS ";\n" : __VA_ARGS__ : "memory")
    const uint32_t a = smem_u32(smem_row);
    if constexpr (NUM == 1 && !TRANS) TESSERA_LDMATRIX("x1", "{%0}, [%1]", "=r"(r[0]) : "r"(a));
    if constexpr (NUM == 1 && TRANS) TESSERA_LDMATRIX("x1.trans", "{%0}, [%1]", "=r"(r[0]) : "r"(a));
    if constexpr (NUM == 2 && !TRANS) TESSERA_LDMATRIX("x2", "{%0,%1}, [%2]", "=r"(r[0]), "=r"(r[1]) : "r"(a));
    if constexpr (NUM == 2 && TRANS) TESSERA_LDMATRIX("x2.trans", "{%0,%1}, [%2]", "=r"(r[0]), "=r"(r[1]) : "r"(a));
    if constexpr (NUM == 4 && !TRANS)
        TESSERA_LDMATRIX("x4", "{%0,%1,%2,%3}, [%4]", "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
    if constexpr (NUM == 4 && TRANS)
        TESSERA_LDMATRIX("x4.trans", "{%0,%1,%2,%3}, [%4]", "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
#undef TESSERA_LDMATRIX
#endif
}

// ---- 6. cp.async -------------------------------------------------------------------------------------------
// cp.async.cg.shared.global, 16 bytes, both addresses 16-byte aligned. Copies issued since the
// last cp_async_commit() form a group; cp_async_wait<N>() returns once at most the N newest
// committed groups of the *calling thread* are still in flight (then __syncthreads before
// other threads read the data). Host: the source is read at issue and the destination written
// when cp_async_wait retires the copy's group, so a kernel that reads shared memory before
// waiting sees stale data, as it may on a GPU.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem TESSERA_HOST_LOC) {
#if TESSERA_HOST_EMULATION
    ::tessera_host::cp_async16(smem, gmem, loc.file_name(), loc.line());
#else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_u32(smem)), "l"(gmem) : "memory");
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if TESSERA_HOST_EMULATION
    ::tessera_host::cp_async_commit();
#else
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    static_assert(N >= 0 && N <= 7, "cp.async.wait_group takes 0..7");
#if TESSERA_HOST_EMULATION
    ::tessera_host::cp_async_wait(N);
#else
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}
// Commit the open group and wait for every copy of the calling thread.
__device__ __forceinline__ void cp_async_wait_all() {
    cp_async_commit();
    cp_async_wait<0>();
}

}  // namespace tessera
