// Self-test: an out-of-bounds global read that AddressSanitizer must catch.
// out[i] = in[i] + in[i + 1] for i < n: thread n-1 reads in[n], one element past the end of
// the input. Under TESSERA_SANITIZE=address the launch must fail with
// TESSERA_EMU_SANITIZER ("heap-buffer-overflow", naming selftest_oob).
#include "tessera.cuh"

TESSERA_KERNEL void selftest_oob(const float* src, float* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = src[i] + src[i + 1];
}
