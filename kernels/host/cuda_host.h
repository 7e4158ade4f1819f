// cuda_host.h -- "CUDA on the CPU": the subset of the CUDA device language that tessera's
// kernels use, so that the same `.cu` sources compile as plain host C++ (g++ -std=c++20) and
// run in the kernel emulator (kernels/host/runtime.cpp). Included by kernels/tessera.cuh when
// __CUDACC__ is not defined; kernels never include it directly.
//
// Sections
//   1. standard headers (all of them *before* the qualifier macros: see __noinline__)
//   2. qualifiers: __global__, __device__, __shared__ (= static thread_local, see below), ...
//   3. vector types (float2 ... dim3) with CUDA's alignment, make_* constructors
//   4. builtin variables threadIdx/blockIdx/blockDim/gridDim/warpSize
//   5. the runtime interface (implemented in kernels/host/*.cpp)
//   6. barriers and warp collectives (__syncthreads, __shfl_*_sync, __ballot_sync, ...)
//   7. atomics and fences
//   8. arithmetic intrinsics, min/max, C math
//   9. __half / __nv_bfloat16, their conversions (round-to-nearest-even, bit-identical to
//      Rust's `half` crate, NaN payloads included) and operators (rounded to the type)
//
// Shared memory: every block has one arena, static variables first, the dynamic part after
// them, filled with 0xFF bytes at the block's start (NaN as f32/f16/bf16, -1 as an integer),
// so a kernel that reads it before writing it computes garbage (and initcheck, in the checks
// build, reports the read). Static `__shared__` declarations inside kernels are rewritten at
// build time into `auto& name = tessera_host::static_shared<T, align>("name", [] {})`, a
// reference into the arena (build/static_shared.rs); the dynamic part is reached through
// TESSERA_DYNAMIC_SMEM.
//
// Instrumentation (TESSERA_SANITIZE=checks): the kernel units are compiled so that every load
// and store calls the emulator's hooks (kernels/host/checks.cpp). Code of this header that is
// the emulator's, not the kernel's (builtins, atomics), is kept out of that trace with
// TESSERA_OUT_OF_TRACE, and reports what it touches explicitly.
//
// Host-only caveats: `__device__` helpers and `__shared__`/`__constant__`/`__device__`
// variables at namespace scope of *different* .cu files end up in one host library, so they
// must be `static`/`inline` or uniquely named (nvcc compiles each .cu separately).
#pragma once
#ifdef __CUDACC__
#error "cuda_host.h is the host emulation of CUDA; nvcc must use the real CUDA headers"
#endif

// ---- 1. standard headers ---------------------------------------------------------------------
#include <algorithm>
#include <atomic>
#include <bit>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <math.h>
#include <memory>
#include <new>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// ---- 2. qualifiers -------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
// Static __shared__ variables are rewritten by build.rs (build/static_shared.rs) into
// references into the block's shared arena (tessera_host::static_shared below); one that the
// rewrite did not see (in a header) fails to compile here.
#define __shared__ tessera_shared_variables_must_be_declared_in_a_cu_file
#define __managed__
#define __forceinline__ inline __attribute__((always_inline))
// libstdc++ spells `__attribute__((__noinline__))` in some headers, which this macro would
// break; every standard header the kernels need is included above, before it is defined.
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __grid_constant__
#define __CUDA_ARCH_HOST_EMULATION__ 1
#if defined(TESSERA_EMU_CHECKS)
#define TESSERA_OUT_OF_TRACE __attribute__((no_sanitize_thread, noinline))
#else
#define TESSERA_OUT_OF_TRACE
#endif

// ---- 3. vector types -----------------------------------------------------------------------------
// With the checks on, a copy of an 8- or 16-byte vector is one access, as on the GPU
// (ld/st.v2, .v4): the host compiler would otherwise split `*reinterpret_cast<const float4*>(p)`
// into four 4-byte loads whenever the fields are used one by one, and the profiler would
// count four requests with a 4-way bank conflict where the GPU issues one conflict-free
// 16-byte request. The copy goes through vector_copy (checks.cpp: uninstrumented, one
// access hook for the source and one for the destination at the kernel's call site). The
// types stay trivially default-constructible and destructible (they can be __shared__), and
// `T{a, b, ...}` still builds them.
#if defined(TESSERA_EMU_CHECKS)
namespace tessera_host {
void vector_copy(void* dst, const void* src, size_t bytes);
}
#define TESSERA_VECTOR2(T, S)                                                                  \
    S x, y;                                                                                    \
    T() = default;                                                                             \
    constexpr T(S a, S b = {}) : x(a), y(b) {}                                                \
    T(const T& o) { ::tessera_host::vector_copy(this, &o, sizeof(T)); }                        \
    T& operator=(const T& o) {                                                                 \
        ::tessera_host::vector_copy(this, &o, sizeof(T));                                      \
        return *this;                                                                          \
    }
#define TESSERA_VECTOR4(T, S)                                                                  \
    S x, y, z, w;                                                                              \
    T() = default;                                                                             \
    constexpr T(S a, S b = {}, S c = {}, S d = {}) : x(a), y(b), z(c), w(d) {}              \
    T(const T& o) { ::tessera_host::vector_copy(this, &o, sizeof(T)); }                        \
    T& operator=(const T& o) {                                                                 \
        ::tessera_host::vector_copy(this, &o, sizeof(T));                                      \
        return *this;                                                                          \
    }
#else
#define TESSERA_VECTOR2(T, S) S x, y;
#define TESSERA_VECTOR4(T, S) S x, y, z, w;
#endif
struct __align__(8) float2 { TESSERA_VECTOR2(float2, float) };
struct float3 { float x, y, z; };
struct __align__(16) float4 { TESSERA_VECTOR4(float4, float) };
struct __align__(16) double2 { TESSERA_VECTOR2(double2, double) };
struct __align__(8) int2 { TESSERA_VECTOR2(int2, int) };
struct int3 { int x, y, z; };
struct __align__(16) int4 { TESSERA_VECTOR4(int4, int) };
struct __align__(8) uint2 { TESSERA_VECTOR2(uint2, unsigned) };
struct uint3 { unsigned x, y, z; };
struct __align__(16) uint4 { TESSERA_VECTOR4(uint4, unsigned) };
struct __align__(4) short2 { short x, y; };
struct __align__(4) ushort2 { unsigned short x, y; };
struct __align__(8) short4 { TESSERA_VECTOR4(short4, short) };
struct __align__(8) ushort4 { TESSERA_VECTOR4(ushort4, unsigned short) };
struct __align__(2) char2 { signed char x, y; };
struct __align__(4) char4 { signed char x, y, z, w; };
struct __align__(2) uchar2 { unsigned char x, y; };
struct __align__(4) uchar4 { unsigned char x, y, z, w; };
struct __align__(16) longlong2 { TESSERA_VECTOR2(longlong2, long long) };
struct __align__(16) ulonglong2 { TESSERA_VECTOR2(ulonglong2, unsigned long long) };
#undef TESSERA_VECTOR2
#undef TESSERA_VECTOR4
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};
static_assert(sizeof(float4) == 16 && alignof(float4) == 16, "float4 layout");
static_assert(sizeof(uint4) == 16 && alignof(uint4) == 16, "uint4 layout");
static_assert(alignof(float2) == 8 && alignof(int2) == 8 && alignof(uint2) == 8, "8-byte vectors");
static_assert(alignof(longlong2) == 16 && alignof(double2) == 16, "16-byte vectors");

#define TESSERA_MAKE2(T, S) inline T make_##T(S a, S b) { return T{a, b}; }
#define TESSERA_MAKE3(T, S) inline T make_##T(S a, S b, S c) { return T{a, b, c}; }
#define TESSERA_MAKE4(T, S) inline T make_##T(S a, S b, S c, S d) { return T{a, b, c, d}; }
TESSERA_MAKE2(float2, float) TESSERA_MAKE3(float3, float) TESSERA_MAKE4(float4, float)
TESSERA_MAKE2(double2, double)
TESSERA_MAKE2(int2, int) TESSERA_MAKE3(int3, int) TESSERA_MAKE4(int4, int)
TESSERA_MAKE2(uint2, unsigned) TESSERA_MAKE3(uint3, unsigned) TESSERA_MAKE4(uint4, unsigned)
TESSERA_MAKE2(short2, short) TESSERA_MAKE4(short4, short)
TESSERA_MAKE2(ushort2, unsigned short) TESSERA_MAKE4(ushort4, unsigned short)
TESSERA_MAKE2(char2, signed char) TESSERA_MAKE4(char4, signed char)
TESSERA_MAKE2(uchar2, unsigned char) TESSERA_MAKE4(uchar4, unsigned char)
TESSERA_MAKE2(longlong2, long long) TESSERA_MAKE2(ulonglong2, unsigned long long)
#undef TESSERA_MAKE2
#undef TESSERA_MAKE3
#undef TESSERA_MAKE4

// ---- 4. builtin variables ------------------------------------------------------------------------
namespace tessera_host {
// The builtins of the emulated thread that is running right now on this OS thread. The
// scheduler points tls_builtins at the resumed fiber's record before every switch; a fiber
// never migrates between OS threads, so the thread-local is always the right one.
struct ThreadBuiltins {
    uint3 thread_idx;
    uint3 block_idx;
    dim3 block_dim;
    dim3 grid_dim;
};
extern thread_local const ThreadBuiltins* tls_builtins;
}  // namespace tessera_host

#if defined(TESSERA_EMU_CHECKS)
// Read through functions outside the trace: the builtins live in the emulator's records,
// which are no buffer of the launch.
namespace tessera_host {
uint3 builtin_thread_idx();
uint3 builtin_block_idx();
dim3 builtin_block_dim();
dim3 builtin_grid_dim();
}  // namespace tessera_host
#define threadIdx (::tessera_host::builtin_thread_idx())
#define blockIdx (::tessera_host::builtin_block_idx())
#define blockDim (::tessera_host::builtin_block_dim())
#define gridDim (::tessera_host::builtin_grid_dim())
#else
#define threadIdx (::tessera_host::tls_builtins->thread_idx)
#define blockIdx (::tessera_host::tls_builtins->block_idx)
#define blockDim (::tessera_host::tls_builtins->block_dim)
#define gridDim (::tessera_host::tls_builtins->grid_dim)
#endif
static const int warpSize = 32;

// ---- 5. runtime interface (kernels/host/runtime.cpp) -------------------------------------------
namespace tessera_host {

// Every warp-level operation is one of these. Lanes that meet at a collective must use the
// same WarpOp, the same value size (`aux`) and the same mask.
enum class WarpOp : unsigned char {
    SyncWarp, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All,
    ReduceAdd, ReduceMinU, ReduceMaxU, ReduceMinI, ReduceMaxI, ReduceAnd, ReduceOr, ReduceXor,
    MatchAny, MatchAll,
    Mma,       // aux: an MmaKind (shape and input type); in -> MmaArgs
    Ldmatrix,  // aux: number of matrices (1, 2, 4) | 8 if .trans; value = row address; out -> uint32_t[num]
};

// What a lane deposits when it arrives at a warp collective (lives in the lane's fiber record).
struct WarpCall {
    WarpOp op;
    unsigned char aux;     // value size in bytes for shuffles/match; op variant for mma/ldmatrix
    unsigned mask;         // member mask
    int param;             // srcLane / delta / laneMask
    int width;             // shuffle segment width
    uint64_t value;        // the lane's value (bit pattern), predicate, or ldmatrix row address
    const void* in;        // mma operands (MmaArgs*)
    void* out;             // mma d[4] / ldmatrix r[num]
    const char* file;
    unsigned line;
};

// The variants of WarpOp::Mma (WarpCall::aux): mma.sync.aligned.<shape>.row.col.f32.<type>.<type>.f32.
enum MmaKind : unsigned char {
    MMA_M16N8K16_F16 = 0,
    MMA_M16N8K16_BF16 = 1,
    MMA_M16N8K8_F16 = 2,
    MMA_M16N8K8_BF16 = 3,
    MMA_M16N8K8_TF32 = 4,
};

struct MmaArgs {
    const uint32_t* a;  // m16n8k16: [4]; m16n8k8: [2] (f16, bf16) or [4] (tf32)
    const uint32_t* b;  // m16n8k16: [2]; m16n8k8: [1] (f16, bf16) or [2] (tf32)
    const float* c;     // [4]
};

// Arrive at a warp collective and block until it completes; returns this lane's result.
uint64_t warp_collective(const WarpCall& call);
// Arrive at the block barrier (kind 0: plain, 1: count, 2: and, 3: or); returns the reduction.
int block_barrier(int kind, int predicate, const char* file, unsigned line);
// __activemask at call site file:line: waits until no lane of the calling warp can run, then
// returns the set of lanes waiting at __activemask at this same call site (runtime.cpp).
unsigned active_mask(const char* file, unsigned line);
// The calling block's dynamic shared memory.
void* dynamic_smem();
// The calling block's instance of the static shared variable identified by `key` (one per
// declaration site and template instantiation): placed in the block's arena at its first use
// in the block, poisoned; over 48 KiB of static shared memory, or static plus dynamic over the
// emulated architecture's limit, ends the launch with TESSERA_EMU_BAD_CONFIG.
void* static_shared_alloc(size_t size, size_t align, const void* key, const char* name);
template <class T, size_t Align, class Site>
inline T& static_shared(const char* name, Site) {
    static_assert(std::is_trivially_default_constructible_v<std::remove_all_extents_t<T>> &&
                      std::is_trivially_destructible_v<std::remove_all_extents_t<T>>,
                  "__shared__ variables have no constructors or destructors");
    static char key;  // its address identifies the variable
    constexpr size_t align = Align > alignof(T) ? Align : alignof(T);
    return *static_cast<T*>(static_shared_alloc(sizeof(T), align, &key, name));
}
// An atomic operation's access, reported by the (uninstrumented) atomic functions in the
// checks build: memcheck, initcheck and the profile count it; racecheck does not.
// `site`: the kernel's call site (the atomic function's return address).
void atomic_access(const void* p, size_t size, const void* site);
// cp.async emulation: the source is read at issue, the destination written when the group
// that contains the copy is retired by cp_async_wait.
void cp_async16(const void* smem_dst, const void* gmem_src, const char* file, unsigned line);
void cp_async_commit();
void cp_async_wait(int n_pending);
// Tensor-core and ldmatrix emulation (warp collectives over all 32 lanes; see tessera.cuh).
void mma_m16n8k16(int bf16, float* d, const uint32_t* a, const uint32_t* b, const float* c, const char* file,
                  unsigned line);
// m16n8k8: type 0 = f16, 1 = bf16, 2 = tf32 inputs (f32 accumulate).
void mma_m16n8k8(int type, float* d, const uint32_t* a, const uint32_t* b, const float* c, const char* file,
                 unsigned line);
void ldmatrix(int num, int trans, uint32_t* r, const void* row, const char* file, unsigned line);
// Ends the calling block with TESSERA_EMU_WARP_MISUSE; the message names kernel, block and thread.
[[noreturn]] void misuse(const char* what, const char* file, unsigned line);

inline void check_aligned(const void* p, size_t align, const char* what, const std::source_location& loc) {
    if (reinterpret_cast<uintptr_t>(p) % align != 0) {
        char buf[160];
        snprintf(buf, sizeof buf, "%s: address %p is not %zu-byte aligned", what, p, align);
        misuse(buf, loc.file_name(), loc.line());
    }
}

template <class T>
inline uint64_t to_bits(T v) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp collectives move values of at most 8 bytes");
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}
template <class T>
inline T from_bits(uint64_t b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}
inline uint64_t collective(WarpOp op, unsigned char aux, unsigned mask, uint64_t value, int param, int width,
                           const std::source_location& loc) {
    WarpCall c{op, aux, mask, param, width, value, nullptr, nullptr, loc.file_name(), (unsigned)loc.line()};
    return warp_collective(c);
}
}  // namespace tessera_host

// ---- 6. barriers and warp collectives -----------------------------------------------------------
// Rules (as on a GPU; the scheduler in runtime.cpp enforces them): lanes that meet at a
// collective pass the same mask, and the mask contains the caller; mask bits of lanes that do
// not exist (partial last warp) or have exited are ignored; a shuffle that reads such a lane
// gets all bits set (undefined on a GPU), one that reads a live lane outside the mask is
// misuse. mma/ldmatrix need all 32 lanes. __activemask is a scheduling point: it returns the
// lanes of the warp at the same __activemask call site once no lane of the warp can run, so
// code that assumes divergent lanes have reconverged can see a partial mask.
#define __syncthreads() ((void)::tessera_host::block_barrier(0, 0, __FILE__, __LINE__))
#define __syncthreads_count(p) ::tessera_host::block_barrier(1, (p) != 0, __FILE__, __LINE__)
#define __syncthreads_and(p) ::tessera_host::block_barrier(2, (p) != 0, __FILE__, __LINE__)
#define __syncthreads_or(p) ::tessera_host::block_barrier(3, (p) != 0, __FILE__, __LINE__)

#define TESSERA_LOC std::source_location loc = std::source_location::current()

inline void __syncwarp(unsigned mask = 0xffffffffu, TESSERA_LOC) {
    ::tessera_host::collective(::tessera_host::WarpOp::SyncWarp, 0, mask, 0, 0, 32, loc);
}
inline unsigned __activemask(TESSERA_LOC) { return ::tessera_host::active_mask(loc.file_name(), (unsigned)loc.line()); }

template <class T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize, TESSERA_LOC) {
    using namespace ::tessera_host;
    return from_bits<T>(collective(WarpOp::ShflIdx, sizeof(T), mask, to_bits(var), srcLane, width, loc));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize, TESSERA_LOC) {
    using namespace ::tessera_host;
    return from_bits<T>(collective(WarpOp::ShflUp, sizeof(T), mask, to_bits(var), (int)delta, width, loc));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize, TESSERA_LOC) {
    using namespace ::tessera_host;
    return from_bits<T>(collective(WarpOp::ShflDown, sizeof(T), mask, to_bits(var), (int)delta, width, loc));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize, TESSERA_LOC) {
    using namespace ::tessera_host;
    return from_bits<T>(collective(WarpOp::ShflXor, sizeof(T), mask, to_bits(var), laneMask, width, loc));
}
inline unsigned __ballot_sync(unsigned mask, int predicate, TESSERA_LOC) {
    using namespace ::tessera_host;
    return (unsigned)collective(WarpOp::Ballot, 4, mask, predicate != 0, 0, 32, loc);
}
inline int __any_sync(unsigned mask, int predicate, TESSERA_LOC) {
    using namespace ::tessera_host;
    return (int)collective(WarpOp::Any, 4, mask, predicate != 0, 0, 32, loc);
}
inline int __all_sync(unsigned mask, int predicate, TESSERA_LOC) {
    using namespace ::tessera_host;
    return (int)collective(WarpOp::All, 4, mask, predicate != 0, 0, 32, loc);
}
// sm_80 warp reductions.
inline unsigned __reduce_add_sync(unsigned mask, unsigned v, TESSERA_LOC) {
    return (unsigned)::tessera_host::collective(::tessera_host::WarpOp::ReduceAdd, 4, mask, v, 0, 32, loc);
}
inline int __reduce_add_sync(unsigned mask, int v, TESSERA_LOC) {
    return (int)::tessera_host::collective(::tessera_host::WarpOp::ReduceAdd, 4, mask, (unsigned)v, 0, 32, loc);
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned v, TESSERA_LOC) {
    return (unsigned)::tessera_host::collective(::tessera_host::WarpOp::ReduceMinU, 4, mask, v, 0, 32, loc);
}
inline int __reduce_min_sync(unsigned mask, int v, TESSERA_LOC) {
    return (int)::tessera_host::collective(::tessera_host::WarpOp::ReduceMinI, 4, mask, (unsigned)v, 0, 32, loc);
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned v, TESSERA_LOC) {
    return (unsigned)::tessera_host::collective(::tessera_host::WarpOp::ReduceMaxU, 4, mask, v, 0, 32, loc);
}
inline int __reduce_max_sync(unsigned mask, int v, TESSERA_LOC) {
    return (int)::tessera_host::collective(::tessera_host::WarpOp::ReduceMaxI, 4, mask, (unsigned)v, 0, 32, loc);
}
inline unsigned __reduce_and_sync(unsigned mask, unsigned v, TESSERA_LOC) {
    return (unsigned)::tessera_host::collective(::tessera_host::WarpOp::ReduceAnd, 4, mask, v, 0, 32, loc);
}
inline unsigned __reduce_or_sync(unsigned mask, unsigned v, TESSERA_LOC) {
    return (unsigned)::tessera_host::collective(::tessera_host::WarpOp::ReduceOr, 4, mask, v, 0, 32, loc);
}
inline unsigned __reduce_xor_sync(unsigned mask, unsigned v, TESSERA_LOC) {
    return (unsigned)::tessera_host::collective(::tessera_host::WarpOp::ReduceXor, 4, mask, v, 0, 32, loc);
}
template <class T>
inline unsigned __match_any_sync(unsigned mask, T v, TESSERA_LOC) {
    using namespace ::tessera_host;
    return (unsigned)collective(WarpOp::MatchAny, sizeof(T), mask, to_bits(v), 0, 32, loc);
}
template <class T>
inline unsigned __match_all_sync(unsigned mask, T v, int* pred, TESSERA_LOC) {
    using namespace ::tessera_host;
    unsigned r = (unsigned)collective(WarpOp::MatchAll, sizeof(T), mask, to_bits(v), 0, 32, loc);
    *pred = r != 0;
    return r;
}

// ---- 7. atomics and fences (real atomics: blocks run on several OS threads) ------------------------
// TESSERA_ATOMIC: outside the checks' trace (an atomic is no race), reported explicitly.
#if defined(TESSERA_EMU_CHECKS)
#define TESSERA_ATOMIC TESSERA_OUT_OF_TRACE inline
#define TESSERA_ATOMIC_NOTE(a) ::tessera_host::atomic_access((a), sizeof(*(a)), __builtin_return_address(0))
#else
#define TESSERA_ATOMIC inline
#define TESSERA_ATOMIC_NOTE(a) ((void)0)
#endif
namespace tessera_host {
// A subnormal float flushed to zero of its sign (the .ftz of PTX).
inline float ftz(float v) { return std::fpclassify(v) == FP_SUBNORMAL ? std::copysign(0.0f, v) : v; }
template <class T>
TESSERA_ATOMIC T atomic_rmw_cas(T* addr, T (*f)(T, T), T val) {
    // Compare-and-swap loop on the object representation (floats, min/max, inc/dec).
    using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    static_assert(sizeof(T) == sizeof(U), "4- or 8-byte atomics");
    TESSERA_ATOMIC_NOTE(addr);
    U* p = reinterpret_cast<U*>(addr);
    U old = __atomic_load_n(p, __ATOMIC_RELAXED);
    for (;;) {
        T o = std::bit_cast<T>(old);
        U nw = std::bit_cast<U>(f(o, val));
        if (__atomic_compare_exchange_n(p, &old, nw, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return o;
    }
}
}  // namespace tessera_host

#define TESSERA_ATOMIC_ADD(T) \
    TESSERA_ATOMIC T atomicAdd(T* a, T v) { return TESSERA_ATOMIC_NOTE(a), __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }
TESSERA_ATOMIC_ADD(int) TESSERA_ATOMIC_ADD(unsigned) TESSERA_ATOMIC_ADD(unsigned long long)
#undef TESSERA_ATOMIC_ADD
inline float atomicAdd(float* a, float v) {
    // atom.add.f32 flushes subnormal inputs and results to sign-preserving zero (PTX ISA).
    using ::tessera_host::ftz;
    return ::tessera_host::atomic_rmw_cas<float>(a, [](float o, float x) { return ftz(ftz(o) + ftz(x)); }, v);
}
inline double atomicAdd(double* a, double v) {
    return ::tessera_host::atomic_rmw_cas<double>(a, [](double o, double x) { return o + x; }, v);
}
TESSERA_ATOMIC int atomicSub(int* a, int v) { return TESSERA_ATOMIC_NOTE(a), __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST); }
TESSERA_ATOMIC unsigned atomicSub(unsigned* a, unsigned v) { return TESSERA_ATOMIC_NOTE(a), __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST); }
#define TESSERA_ATOMIC_MINMAX(T)                                                                      \
    inline T atomicMin(T* a, T v) {                                                                   \
        return ::tessera_host::atomic_rmw_cas<T>(a, [](T o, T x) { return x < o ? x : o; }, v);      \
    }                                                                                                 \
    inline T atomicMax(T* a, T v) {                                                                   \
        return ::tessera_host::atomic_rmw_cas<T>(a, [](T o, T x) { return x > o ? x : o; }, v);      \
    }
TESSERA_ATOMIC_MINMAX(int) TESSERA_ATOMIC_MINMAX(unsigned) TESSERA_ATOMIC_MINMAX(long long)
TESSERA_ATOMIC_MINMAX(unsigned long long)
#undef TESSERA_ATOMIC_MINMAX
#define TESSERA_ATOMIC_CAS_EXCH(T)                                                                    \
    TESSERA_ATOMIC T atomicCAS(T* a, T compare, T val) {                                              \
        TESSERA_ATOMIC_NOTE(a);                                                                       \
        __atomic_compare_exchange_n(a, &compare, val, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);     \
        return compare; /* on failure the builtin stores the current value into `compare` */         \
    }                                                                                                 \
    TESSERA_ATOMIC T atomicExch(T* a, T v) { return TESSERA_ATOMIC_NOTE(a), __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); }
TESSERA_ATOMIC_CAS_EXCH(int) TESSERA_ATOMIC_CAS_EXCH(unsigned) TESSERA_ATOMIC_CAS_EXCH(unsigned long long)
#undef TESSERA_ATOMIC_CAS_EXCH
TESSERA_ATOMIC float atomicExch(float* a, float v) {
    TESSERA_ATOMIC_NOTE(a);
    return std::bit_cast<float>(__atomic_exchange_n(reinterpret_cast<uint32_t*>(a), std::bit_cast<uint32_t>(v), __ATOMIC_SEQ_CST));
}
#define TESSERA_ATOMIC_BITS(T)                                                                             \
    TESSERA_ATOMIC T atomicAnd(T* a, T v) { return TESSERA_ATOMIC_NOTE(a), __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST); }                   \
    TESSERA_ATOMIC T atomicOr(T* a, T v) { return TESSERA_ATOMIC_NOTE(a), __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST); }                     \
    TESSERA_ATOMIC T atomicXor(T* a, T v) { return TESSERA_ATOMIC_NOTE(a), __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST); }
TESSERA_ATOMIC_BITS(int) TESSERA_ATOMIC_BITS(unsigned) TESSERA_ATOMIC_BITS(unsigned long long)
#undef TESSERA_ATOMIC_BITS
inline unsigned atomicInc(unsigned* a, unsigned v) {
    return ::tessera_host::atomic_rmw_cas<unsigned>(a, [](unsigned o, unsigned x) { return o >= x ? 0u : o + 1; }, v);
}
inline unsigned atomicDec(unsigned* a, unsigned v) {
    return ::tessera_host::atomic_rmw_cas<unsigned>(a, [](unsigned o, unsigned x) { return (o == 0 || o > x) ? x : o - 1; }, v);
}
TESSERA_ATOMIC void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
TESSERA_ATOMIC void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
// A block's threads share one OS thread: only the compiler must not reorder across this.
inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

// ---- 8. arithmetic intrinsics, min/max, C math ----------------------------------------------------
// The C math functions (tanhf, rintf, expf, ...) come from <math.h> in the global namespace.
// On the GPU, __fmul_rn / __fadd_rn / __fsub_rn / __dmul_rn / __dadd_rn are never fused
// with a neighbouring operation into an FMA. Here they are plain C++ operators, which a
// contracting host build (TESSERA_HOST_FP_CONTRACT=fast, see build.rs) would fuse after
// inlining; `no_contract` makes a value opaque to the optimizer (an empty asm that
// "modifies" it in its register), so a product leaving __fmul_rn, or an operand entering
// __fadd_rn, cannot be part of an FMA. It costs no instruction.
namespace tessera_host {
template <class F>
inline F no_contract(F x) {
#if defined(__x86_64__)
    __asm__("" : "+x"(x));
#elif defined(__aarch64__)
    __asm__("" : "+w"(x));
#else
    volatile F v = x;
    x = v;
#endif
    return x;
}
}  // namespace tessera_host
inline float __fmul_rn(float a, float b) { return ::tessera_host::no_contract(a * b); }
inline float __fadd_rn(float a, float b) {
    return ::tessera_host::no_contract(a) + ::tessera_host::no_contract(b);
}
inline float __fsub_rn(float a, float b) {
    return ::tessera_host::no_contract(a) - ::tessera_host::no_contract(b);
}
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline double __dmul_rn(double a, double b) { return ::tessera_host::no_contract(a * b); }
inline double __dadd_rn(double a, double b) {
    return ::tessera_host::no_contract(a) + ::tessera_host::no_contract(b);
}
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }

// Fast-math intrinsics, with the flushes of the .approx.ftz PTX instructions behind them:
// subnormal inputs and results become zeros of their sign (the CUDA math API: "most input and
// output values around denormal range are flushed"; nvcc without -ftz=true emits the non-ftz
// ex2.approx.f32 / div.approx.f32, which may keep some, so tests/emulator_primitives.rs
// accepts either on a GPU). The host computes the correctly rounded value, within the
// documented error of the GPU's approximation.
namespace tessera_host {
// rcp.approx.ftz.f32
inline float rcp_approx_ftz(float a) { return ftz(1.0f / ftz(a)); }
// ex2.approx.ftz.f32
inline float ex2_approx_ftz(float a) { return ftz(std::exp2(ftz(a))); }
}  // namespace tessera_host
// x * rcp.approx.ftz(y) (CUDA math API): for 2^126 < |y| < 2^128 the reciprocal is
// subnormal, flushed to 0, so the result is 0 (NaN when x is infinite); 2 ulp elsewhere.
inline float __fdividef(float a, float b) {
    return ::tessera_host::no_contract(a * ::tessera_host::rcp_approx_ftz(b));
}
// ex2.approx.ftz.f32(x * log2(e)): a result below 2^-126 is flushed to +0.
inline float __expf(float a) {
    return ::tessera_host::ex2_approx_ftz(::tessera_host::ftz(a) * 1.44269504088896340736f);
}
inline float __saturatef(float a) { return a >= 1.0f ? 1.0f : (a > 0.0f ? a : 0.0f); }  // NaN -> 0

namespace tessera_host {
// float -> integer conversions of the GPU: saturating, NaN -> 0.
template <class I>
inline I sat_cvt(double r) {
    if (std::isnan(r)) return 0;
    if (r <= (double)std::numeric_limits<I>::min()) return std::numeric_limits<I>::min();
    if (r >= (double)std::numeric_limits<I>::max()) return std::numeric_limits<I>::max();
    return (I)r;
}
}  // namespace tessera_host
inline int __float2int_rn(float a) { return ::tessera_host::sat_cvt<int>(std::nearbyint((double)a)); }
inline int __float2int_rz(float a) { return ::tessera_host::sat_cvt<int>(std::trunc((double)a)); }
inline int __float2int_rd(float a) { return ::tessera_host::sat_cvt<int>(std::floor((double)a)); }
inline int __float2int_ru(float a) { return ::tessera_host::sat_cvt<int>(std::ceil((double)a)); }
inline unsigned __float2uint_rn(float a) { return ::tessera_host::sat_cvt<unsigned>(std::nearbyint((double)a)); }
inline unsigned __float2uint_rz(float a) { return ::tessera_host::sat_cvt<unsigned>(std::trunc((double)a)); }
inline long long __float2ll_rn(float a) { return ::tessera_host::sat_cvt<long long>(std::nearbyint((double)a)); }
inline float __int2float_rn(int a) { return (float)a; }
inline float __uint2float_rn(unsigned a) { return (float)a; }
inline float __ll2float_rn(long long a) { return (float)a; }
inline float __double2float_rn(double a) { return (float)a; }
inline int __float_as_int(float a) { return std::bit_cast<int>(a); }
inline unsigned __float_as_uint(float a) { return std::bit_cast<unsigned>(a); }
inline float __int_as_float(int a) { return std::bit_cast<float>(a); }
inline float __uint_as_float(unsigned a) { return std::bit_cast<float>(a); }
inline long long __double_as_longlong(double a) { return std::bit_cast<long long>(a); }
inline double __longlong_as_double(long long a) { return std::bit_cast<double>(a); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
inline int __popc(unsigned a) { return __builtin_popcount(a); }
inline int __popcll(unsigned long long a) { return __builtin_popcountll(a); }
inline int __clz(int a) { return a == 0 ? 32 : __builtin_clz((unsigned)a); }
inline int __clzll(long long a) { return a == 0 ? 64 : __builtin_clzll((unsigned long long)a); }
inline int __ffs(int a) { return __builtin_ffs(a); }
inline int __ffsll(long long a) { return __builtin_ffsll(a); }
inline unsigned __brev(unsigned a) {
    unsigned r = 0;
    for (int i = 0; i < 32; ++i) r |= ((a >> i) & 1u) << (31 - i);
    return r;
}
inline unsigned long long __brevll(unsigned long long a) {
    return ((unsigned long long)__brev((unsigned)a) << 32) | __brev((unsigned)(a >> 32));
}
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    unsigned long long v = ((unsigned long long)y << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; ++i) r |= (unsigned)((v >> (((s >> (4 * i)) & 7) * 8)) & 0xff) << (8 * i);
    return r;
}
template <class T>
inline T __ldg(const T* p) { return *p; }

// min/max as CUDA defines them in the global namespace: same-type overloads (floats via
// fminf/fmaxf, so a NaN operand yields the other one) plus a mixed-type template that applies
// the usual arithmetic conversions. std::min/std::max are untouched; an unqualified call with
// two operands of one type picks the non-template overload.
#define TESSERA_MINMAX(T)                                 \
    inline T min(T a, T b) { return b < a ? b : a; }      \
    inline T max(T a, T b) { return a < b ? b : a; }
TESSERA_MINMAX(int) TESSERA_MINMAX(unsigned) TESSERA_MINMAX(long) TESSERA_MINMAX(unsigned long)
TESSERA_MINMAX(long long) TESSERA_MINMAX(unsigned long long)
#undef TESSERA_MINMAX
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
template <class A, class B,
          std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B> && !std::is_same_v<A, B>, int> = 0>
inline std::common_type_t<A, B> min(A a, B b) {
    using C = std::common_type_t<A, B>;
    return ::min((C)a, (C)b);
}
template <class A, class B,
          std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B> && !std::is_same_v<A, B>, int> = 0>
inline std::common_type_t<A, B> max(A a, B b) {
    using C = std::common_type_t<A, B>;
    return ::max((C)a, (C)b);
}

// ---- 9. __half and __nv_bfloat16 ----------------------------------------------------------------------
namespace tessera_host {
// float -> IEEE binary16, round to nearest even. Bit-identical to Rust's half::f16::from_f32:
// overflow -> +-Inf, underflow -> subnormals / +-0, NaN -> quiet NaN keeping the top payload bits.
inline uint16_t f32_to_f16_bits(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t exp = (x >> 23) & 0xffu;
    const uint32_t man = x & 0x7fffffu;
    if (exp == 0xffu) return (uint16_t)(sign | 0x7c00u | (man ? 0x0200u | (man >> 13) : 0u));
    const int e = (int)exp - 127 + 15;      // biased half exponent
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {                           // half subnormal (or zero)
        if (e < -10) return (uint16_t)sign; // below half the smallest subnormal (ties -> 0)
        const uint32_t m = man | 0x800000u; // implicit bit; f32 subnormals have e < -10
        const int shift = 14 - e;           // 14..24
        uint32_t q = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1u))) ++q;  // may carry into the exponent: fine
        return (uint16_t)(sign | q);
    }
    uint32_t q = ((uint32_t)e << 10) | (man >> 13);
    const uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;      // may round up to Inf: correct
    return (uint16_t)(sign | q);
}
inline float f16_bits_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1fu) {  // Inf, or NaN made quiet (as the hardware and half::f16::to_f32 do)
        bits = sign | 0x7f800000u | (man ? 0x00400000u | (man << 13) : 0u);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {  // subnormal: renormalise
        int e = -1;
        uint32_t m = man;
        do { m <<= 1; ++e; } while ((m & 0x400u) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((m & 0x3ffu) << 13);
    }
    return std::bit_cast<float>(bits);
}
// float -> bfloat16, round to nearest even; NaN -> quiet NaN (as half::bf16::from_f32).
inline uint16_t f32_to_bf16_bits(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040u);
    uint32_t q = x >> 16;
    const uint32_t rem = x & 0xffffu;
    if (rem > 0x8000u || (rem == 0x8000u && (q & 1u))) ++q;
    return (uint16_t)q;
}
inline float bf16_bits_to_f32(uint16_t b) {  // NaN made quiet, as half::bf16::to_f32
    return std::bit_cast<float>((uint32_t)((b & 0x7fffu) > 0x7f80u ? (b | 0x0040u) : b) << 16);
}
// cvt.rna.tf32.f32: float -> tf32 (10 mantissa bits), round to nearest, ties away from zero,
// as the f32 bit pattern with the low 13 bits zero. Finite values (subnormals included, no
// flush) add half a tf32 ulp to the magnitude and truncate: a carry into the exponent is the
// correct rounding, up to Inf past the largest tf32 value. Inf stays Inf; NaN -> a quiet NaN
// with the sign and the top payload bits kept (a GPU's NaN bits may differ).
inline uint32_t f32_to_tf32_bits(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (x | 0x00400000u) & 0xffffe000u;
    if ((x & 0x7f800000u) == 0x7f800000u) return x;  // +-Inf
    return (x + 0x1000u) & 0xffffe000u;               // the sign bit is untouched: magnitude < 0x7f800000
}
// double -> float rounded to odd (truncate, then set the last bit when inexact). Rounding that
// float to nearest even in a format of at most 22 bits of precision (f16: 11, bf16: 8) gives
// the double correctly rounded, as __double2half / __double2bfloat16 do (no double rounding).
inline float f64_to_f32_round_odd(double d) {
    const float f = (float)d;
    if (std::isnan(d) || (double)f == d) return f;
    uint32_t b = std::bit_cast<uint32_t>(f);
    if (std::fabs((double)f) > std::fabs(d)) --b;  // rounded away from zero: one step back (Inf -> FLT_MAX)
    return std::bit_cast<float>(b | 1u);
}
}  // namespace tessera_host

struct __half_raw { unsigned short x; };
struct __nv_bfloat16_raw { unsigned short x; };

// 2-byte PODs (trivially default-constructible, so usable in __shared__ arrays), with the
// conversions and (below) the operators of cuda_fp16.h / cuda_bf16.h.
struct __align__(2) __half {
    unsigned short __x;
    __half() = default;
    constexpr __half(__half_raw r) : __x(r.x) {}
    __half(float f) : __x(::tessera_host::f32_to_f16_bits(f)) {}
    __half(double d) : __x(::tessera_host::f32_to_f16_bits(::tessera_host::f64_to_f32_round_odd(d))) {}
    operator float() const { return ::tessera_host::f16_bits_to_f32(__x); }
    constexpr operator __half_raw() const { return __half_raw{__x}; }
};
struct __align__(2) __nv_bfloat16 {
    unsigned short __x;
    __nv_bfloat16() = default;
    constexpr __nv_bfloat16(__nv_bfloat16_raw r) : __x(r.x) {}
    __nv_bfloat16(float f) : __x(::tessera_host::f32_to_bf16_bits(f)) {}
    __nv_bfloat16(double d) : __x(::tessera_host::f32_to_bf16_bits(::tessera_host::f64_to_f32_round_odd(d))) {}
    operator float() const { return ::tessera_host::bf16_bits_to_f32(__x); }
    constexpr operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
};
struct __align__(4) __half2 { __half x, y; };
struct __align__(4) __nv_bfloat162 { __nv_bfloat16 x, y; };
typedef __half half;
typedef __half2 half2;
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;
static_assert(sizeof(__half) == 2 && sizeof(__nv_bfloat16) == 2 && sizeof(__half2) == 4 && sizeof(__nv_bfloat162) == 4,
              "half types are 2/4-byte PODs");
static_assert(std::is_trivially_default_constructible_v<__half> && std::is_trivially_copyable_v<__half2> &&
                  std::is_trivially_default_constructible_v<__nv_bfloat162>,
              "half types must be usable in __shared__ arrays");

inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short u) { return __half(__half_raw{u}); }
inline short __half_as_short(__half h) { return (short)h.__x; }
inline __half __short_as_half(short s) { return __half(__half_raw{(unsigned short)s}); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16(__nv_bfloat16_raw{u}); }
inline __half __float2half(float f) { return __ushort_as_half(::tessera_host::f32_to_f16_bits(f)); }
inline __half __float2half_rn(float f) { return __float2half(f); }
inline float __half2float(__half h) { return ::tessera_host::f16_bits_to_f32(h.__x); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __ushort_as_bfloat16(::tessera_host::f32_to_bf16_bits(f)); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 h) { return ::tessera_host::bf16_bits_to_f32(h.__x); }
inline __half2 __floats2half2_rn(float lo, float hi) { return __half2{__float2half(lo), __float2half(hi)}; }
inline __half2 __float22half2_rn(float2 v) { return __floats2half2_rn(v.x, v.y); }
inline __half2 __halves2half2(__half lo, __half hi) { return __half2{lo, hi}; }
inline __half2 __half2half2(__half h) { return __half2{h, h}; }
inline float2 __half22float2(__half2 h) { return float2{__half2float(h.x), __half2float(h.y)}; }
inline __half __low2half(__half2 h) { return h.x; }
inline __half __high2half(__half2 h) { return h.y; }
inline float __low2float(__half2 h) { return __half2float(h.x); }
inline float __high2float(__half2 h) { return __half2float(h.y); }
inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) {
    return __nv_bfloat162{__float2bfloat16(lo), __float2bfloat16(hi)};
}
inline __nv_bfloat162 __float22bfloat162_rn(float2 v) { return __floats2bfloat162_rn(v.x, v.y); }
inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 lo, __nv_bfloat16 hi) { return __nv_bfloat162{lo, hi}; }
inline __nv_bfloat162 __bfloat162bfloat162(__nv_bfloat16 h) { return __nv_bfloat162{h, h}; }
inline float2 __bfloat1622float2(__nv_bfloat162 h) { return float2{__bfloat162float(h.x), __bfloat162float(h.y)}; }
inline __nv_bfloat16 __low2bfloat16(__nv_bfloat162 h) { return h.x; }
inline __nv_bfloat16 __high2bfloat16(__nv_bfloat162 h) { return h.y; }
inline float __low2float(__nv_bfloat162 h) { return __bfloat162float(h.x); }
inline float __high2float(__nv_bfloat162 h) { return __bfloat162float(h.y); }
inline bool __hisnan(__half h) { return (h.__x & 0x7fffu) > 0x7c00u; }
inline bool __hisnan(__nv_bfloat16 h) { return (h.__x & 0x7fffu) > 0x7f80u; }

// Arithmetic and comparisons, as cuda_fp16.h / cuda_bf16.h define them for two operands of
// one type: + - * / are __hadd / __hsub / __hmul / __hdiv, correctly rounded to the type (the
// exact float result rounded once: f32 has at least 2p+2 bits for p = 11 and p = 8, so the
// double rounding is innocuous); unary - is __hneg (flips the sign bit); == < <= > >= are the
// ordered comparisons (false with a NaN operand) and != is the unordered __hneu (true with a
// NaN operand). Mixing with float is ambiguous, as in CUDA: convert explicitly.
#define TESSERA_HALF_ARITH(H, TO_F, FROM_F)                                                     \
    inline H __hadd(H a, H b) { return FROM_F(TO_F(a) + TO_F(b)); }                             \
    inline H __hsub(H a, H b) { return FROM_F(TO_F(a) - TO_F(b)); }                             \
    inline H __hmul(H a, H b) { return FROM_F(TO_F(a) * TO_F(b)); }                             \
    inline H __hdiv(H a, H b) { return FROM_F(TO_F(a) / TO_F(b)); }                             \
    inline H __hneg(H a) {                                                                      \
        H r;                                                                                    \
        r.__x = (unsigned short)(a.__x ^ 0x8000u);                                              \
        return r;                                                                               \
    }                                                                                           \
    inline bool __heq(H a, H b) { return TO_F(a) == TO_F(b); }                                  \
    inline bool __hne(H a, H b) { return TO_F(a) < TO_F(b) || TO_F(a) > TO_F(b); }              \
    inline bool __hneu(H a, H b) { return !(TO_F(a) == TO_F(b)); }                              \
    inline bool __hlt(H a, H b) { return TO_F(a) < TO_F(b); }                                   \
    inline bool __hle(H a, H b) { return TO_F(a) <= TO_F(b); }                                  \
    inline bool __hgt(H a, H b) { return TO_F(a) > TO_F(b); }                                   \
    inline bool __hge(H a, H b) { return TO_F(a) >= TO_F(b); }                                  \
    inline H operator+(H a, H b) { return __hadd(a, b); }                                       \
    inline H operator-(H a, H b) { return __hsub(a, b); }                                       \
    inline H operator*(H a, H b) { return __hmul(a, b); }                                       \
    inline H operator/(H a, H b) { return __hdiv(a, b); }                                       \
    inline H operator-(H a) { return __hneg(a); }                                               \
    inline bool operator==(H a, H b) { return __heq(a, b); }                                    \
    inline bool operator!=(H a, H b) { return __hneu(a, b); }                                   \
    inline bool operator<(H a, H b) { return __hlt(a, b); }                                     \
    inline bool operator<=(H a, H b) { return __hle(a, b); }                                    \
    inline bool operator>(H a, H b) { return __hgt(a, b); }                                     \
    inline bool operator>=(H a, H b) { return __hge(a, b); }
TESSERA_HALF_ARITH(__half, __half2float, __float2half)
TESSERA_HALF_ARITH(__nv_bfloat16, __bfloat162float, __float2bfloat16)
#undef TESSERA_HALF_ARITH
