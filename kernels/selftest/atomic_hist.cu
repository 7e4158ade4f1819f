// Self-test: atomics under heavy contention across many blocks (which the emulator runs on
// several OS threads at once).
//   hist[in[i] % nbins] += 1 (atomicAdd unsigned; few bins, so nearly every add collides)
//   *fsum += (float)(in[i] % 8)        atomicAdd float (integer values: exact)
//   *total += in[i]                    atomicAdd unsigned long long
//   *vmax = max, *vmin = min           atomicMax / atomicMin (int)
//   *cas_count += 1 via an atomicCAS loop
//   *bits |= 1 << (in[i] % 32)         atomicOr
#include "tessera.cuh"

TESSERA_KERNEL void selftest_atomic_hist(const unsigned* __restrict__ src, int n, unsigned* hist, int nbins,
                                         float* fsum, unsigned long long* total, int* vmax, int* vmin,
                                         unsigned* cas_count, unsigned* bits) {
    const int stride = gridDim.x * blockDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const unsigned x = src[i];
        atomicAdd(&hist[x % (unsigned)nbins], 1u);
        atomicAdd(fsum, (float)(x % 8u));
        atomicAdd(total, (unsigned long long)x);
        atomicMax(vmax, (int)(x % 100003u));
        atomicMin(vmin, (int)(x % 100003u));
        unsigned old = *(volatile unsigned*)cas_count, seen;
        do {
            seen = old;
            old = atomicCAS(cas_count, seen, seen + 1u);
        } while (old != seen);
        atomicOr(bits, 1u << (x % 32u));
    }
}
