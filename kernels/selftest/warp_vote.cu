// Self-test: __ballot_sync / __any_sync / __all_sync with a data-dependent predicate, in
// converged and divergent code, plus __reduce_add_sync.
//
// p = in[g] > 0. out has 8 words per thread:
//   out[0] = __ballot_sync(full, p)   out[1] = __any_sync(full, p)   out[2] = __all_sync(full, p)
//   odd lanes only (mask 0xaaaaaaaa):
//   out[3] = __ballot_sync(odd, p)    out[4] = __any_sync(odd, p)    out[5] = __all_sync(odd, p)
//   out[6] = __reduce_add_sync(full, (unsigned)in[g])
//   out[7] = __ballot_sync(full, lane_is_odd ? p : !p)   (different predicates per branch)
// Even lanes leave out[3..5] as the host's sentinel.
#include "tessera.cuh"

TESSERA_KERNEL void selftest_warp_vote(const int* __restrict__ src, unsigned* out) {
    const unsigned lane = threadIdx.x & 31;
    const unsigned g = blockIdx.x * blockDim.x + threadIdx.x;
    const int p = src[g] > 0;
    unsigned* o = out + (size_t)g * 8;
    const unsigned full = 0xffffffffu, odd = 0xaaaaaaaau;
    o[0] = __ballot_sync(full, p);
    o[1] = (unsigned)__any_sync(full, p);
    o[2] = (unsigned)__all_sync(full, p);
    if (lane & 1) {
        o[3] = __ballot_sync(odd, p);
        o[4] = (unsigned)__any_sync(odd, p);
        o[5] = (unsigned)__all_sync(odd, p);
    }
    o[6] = __reduce_add_sync(full, (unsigned)src[g]);
    unsigned b;
    if (lane & 1) {
        b = __ballot_sync(full, p);
    } else {
        b = __ballot_sync(full, !p);
    }
    o[7] = b;
}
