// Self-tests of the emulator's checks (TESSERA_SANITIZE=checks): each kernel has a planted bug
// that its check must catch when `bug` is non-zero, and is correct when it is zero (the fixed
// twin, which must pass with no report). Launched as one block unless said otherwise.
//
//   selftest_chk_reduce           256 threads: shared tree reduction; bug: the barrier inside
//                                 the loop removed (racecheck: read after write across warps)
//   selftest_chk_warp_reduce      32 threads: warp-synchronous shared reduction; bug: no
//                                 __syncwarp between the reads and the writes (racecheck)
//   selftest_chk_counter          256 threads: a shared counter; bug: `c = c + 1` instead of
//                                 atomicAdd (racecheck)
//   selftest_chk_exchange         64 threads: each thread reads the value of the same lane of
//                                 the other warp; bug: no barrier after the writes (racecheck)
//   selftest_chk_uninit_counter   256 threads: atomicAdd on a shared counter; bug: nobody set
//                                 it to 0 first (initcheck)
//   selftest_chk_view_overread    out[i] = src[i + bug] for i < n: the launch passes a view of
//                                 n elements of a larger allocation (memcheck)
//   selftest_chk_ldmatrix         32 threads: ldmatrix x1 of an 8x8 tile; bug: the row
//                                 addresses point into global memory, not shared (memcheck)
//   selftest_chk_global_race      2 blocks of 32: each block adds 1 to out[0]; bug: a plain
//                                 store of the block index instead of atomicAdd (racecheck)
//   selftest_chk_store_input      32 threads: bug: writes into its const input (memcheck)
//   selftest_chk_undefined        1 thread: bug 1: (int) of src[0]; bug 2: 1u << shift
//                                 (the test passes 3e9 or a shift of 32: undefined behaviour)
//   selftest_chk_smem_limit       static shared memory of `SMEM_STATIC_BYTES` plus the launch's
//                                 dynamic part, both touched (the launch-limit tests)
//   selftest_chk_big_static       bug: 48 KiB + 4 bytes of static shared memory: nvcc refuses to
//                                 build such a kernel, so on the device it is only a stub
#include "tessera.cuh"

TESSERA_KERNEL void selftest_chk_reduce(const float* src, float* out, int bug) {
    __shared__ float buf[256];
    const unsigned t = threadIdx.x;
    buf[t] = src[t];
    __syncthreads();
    for (unsigned s = 128; s > 0; s >>= 1) {
        if (t < s) buf[t] += buf[t + s];
        if (!bug) __syncthreads();
    }
    if (t == 0) out[0] = buf[0];
}

TESSERA_KERNEL void selftest_chk_warp_reduce(const float* src, float* out, int bug) {
    __shared__ float buf[64];
    const unsigned l = threadIdx.x;
    buf[l] = src[l];
    buf[l + 32] = 0.0f;
    __syncwarp();
    for (unsigned o = 16; o > 0; o >>= 1) {
        const float v = buf[l] + buf[l + o];
        if (!bug) __syncwarp();
        buf[l] = v;
        if (!bug) __syncwarp();
    }
    if (l == 0) out[0] = buf[0];
}

TESSERA_KERNEL void selftest_chk_counter(float* out, int bug) {
    __shared__ unsigned count;
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
    if (bug) {
        count = count + 1;
    } else {
        atomicAdd(&count, 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) out[0] = (float)count;
}

TESSERA_KERNEL void selftest_chk_exchange(const float* src, float* out, int bug) {
    __shared__ float buf[64];
    const unsigned t = threadIdx.x;
    buf[t] = 0.0f;
    __syncthreads();
    buf[t] = src[t];
    if (!bug) __syncthreads();
    out[t] = buf[t ^ 32u];
}

TESSERA_KERNEL void selftest_chk_uninit_counter(float* out, int bug) {
    __shared__ unsigned count;
    if (!bug && threadIdx.x == 0) count = 0;
    __syncthreads();
    atomicAdd(&count, 1u);
    __syncthreads();
    if (threadIdx.x == 0) out[0] = (float)count;
}

TESSERA_KERNEL void selftest_chk_view_overread(const float* src, float* out, int n, int bug) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = src[i + (bug ? 1 : 0)];
}

TESSERA_KERNEL void selftest_chk_ldmatrix(const tessera::f16* src, unsigned* out, int bug) {
    __shared__ __align__(16) tessera::f16 tile[64];
    const unsigned l = threadIdx.x;
    tile[2 * l] = src[2 * l];
    tile[2 * l + 1] = src[2 * l + 1];
    __syncwarp();
    uint32_t r[1];
    const tessera::f16* rows = bug ? src : tile;
    tessera::ldmatrix<1, false>(r, rows + (l % 8) * 8);
    out[l] = r[0];
}

TESSERA_KERNEL void selftest_chk_global_race(float* out, int bug) {
    if (threadIdx.x != 0) return;
    if (bug) {
        out[0] = (float)blockIdx.x;
    } else {
        atomicAdd(out, 1.0f);
    }
}

TESSERA_KERNEL void selftest_chk_store_input(const float* src, float* out, int bug) {
    const unsigned t = threadIdx.x;
    if (bug) const_cast<float*>(src)[t] = 0.0f;
    out[t] = src[t];
}

TESSERA_KERNEL void selftest_chk_undefined(const float* src, int* out, int shift, int bug) {
    if (bug == 1) out[0] = (int)src[0];
    if (bug == 2) out[1] = (int)(1u << shift);
}

#define SMEM_STATIC_BYTES 8192
TESSERA_KERNEL void selftest_chk_smem_limit(float* out, int dynamic_floats) {
    __shared__ float fixed[SMEM_STATIC_BYTES / 4];
    TESSERA_DYNAMIC_SMEM(float, dyn);
    fixed[threadIdx.x] = 1.0f;
    if (dynamic_floats > 0 && threadIdx.x == 0) dyn[dynamic_floats - 1] = 2.0f;
    __syncthreads();
    if (threadIdx.x == 0) out[0] = fixed[0] + (dynamic_floats > 0 ? dyn[dynamic_floats - 1] : 0.0f);
}

TESSERA_KERNEL void selftest_chk_big_static(float* out, int bug) {
#if TESSERA_HOST_EMULATION
    if (bug) {
        __shared__ float big[12 * 1024 + 1];
        big[threadIdx.x] = 1.0f;
        out[0] = big[threadIdx.x];
    } else {
        __shared__ float fits[12 * 1024];
        fits[threadIdx.x] = 1.0f;
        out[0] = fits[threadIdx.x];
    }
#else
    out[0] = 1.0f;  // a GPU build refuses the planted 48 KiB + 4 bytes; the fixed twin is trivial
#endif
}
