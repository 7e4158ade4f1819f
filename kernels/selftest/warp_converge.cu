// Self-test: __activemask names the lanes converged at the call, and full-mask collectives work
// in a partial warp and after lanes have exited (their mask bits are ignored, as on a GPU).
//
//   selftest_warp_aggregate: the warp-aggregated atomic. Threads with pred[g] != 0 take
//       mask = __activemask(); the lowest lane of the mask adds __popc(mask) to *ctr, so *ctr
//       ends as the number of true predicates; masks[g] = mask (others keep the host's sentinel).
//       Then every thread meets at __syncthreads (so the lanes with pred 0 of a warp are blocked
//       at the barrier, not exited, while the others wait at __activemask).
//   selftest_activemask_branches: out[g] = __activemask() from one of two call sites, one in
//       each branch of `if (pred[g])`: the two sets of lanes, disjoint.
//   selftest_partial_warp_reduce: launch with 48 threads (lanes 16-31 of warp 1 do not exist);
//       full-mask collectives:
//       out[4t+0] = s after s += __shfl_xor_sync(full, s, o) for o = 8,4,2,1, s = t + 1
//                   (sum over the 16-lane half of the warp: reads existing lanes only)
//       out[4t+1] = __ballot_sync(full, 1)
//       out[4t+2] = __reduce_add_sync(full, t + 1)
//       out[4t+3] = __shfl_xor_sync(full, t, 16): warp 0 reads t ^ 16; warp 1 reads a lane
//                   that does not exist (the emulator returns all bits set; undefined on a GPU)
//   selftest_shfl_after_exit: lane 31 of every warp returns first; the others, with the full mask:
//       out[4t+0] = __shfl_xor_sync(full, lane, 1) (lane 30 reads lane 31: all bits set)
//       out[4t+1] = __shfl_down_sync(full, lane, 2) (lane 29 reads lane 31: all bits set;
//                   lane 30's source is out of range: it keeps its own value)
//       out[4t+2] = __ballot_sync(full, 1)
//       out[4t+3] = __reduce_add_sync(full, lane + 1)
#include "tessera.cuh"

TESSERA_KERNEL void selftest_warp_aggregate(const int* __restrict__ pred, unsigned* ctr, unsigned* masks) {
    const unsigned lane = threadIdx.x & 31;
    const unsigned g = blockIdx.x * blockDim.x + threadIdx.x;
    if (pred[g]) {
        const unsigned mask = __activemask();
        const unsigned leader = (unsigned)(__ffs((int)mask) - 1);
        if (lane == leader) atomicAdd(ctr, (unsigned)__popc(mask));
        masks[g] = mask;
    }
    __syncthreads();
}

TESSERA_KERNEL void selftest_activemask_branches(const int* __restrict__ pred, unsigned* out) {
    const unsigned g = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned m;
    if (pred[g]) {
        m = __activemask();
    } else {
        m = __activemask();
    }
    out[g] = m;
}

TESSERA_KERNEL void selftest_partial_warp_reduce(unsigned* out) {
    const unsigned full = 0xffffffffu;
    const unsigned t = threadIdx.x;
    unsigned* o = out + (size_t)t * 4;
    unsigned s = t + 1;
    for (int off = 8; off > 0; off >>= 1) s += __shfl_xor_sync(full, s, off);
    o[0] = s;
    o[1] = __ballot_sync(full, 1);
    o[2] = __reduce_add_sync(full, t + 1);
    o[3] = __shfl_xor_sync(full, t, 16);
}

TESSERA_KERNEL void selftest_shfl_after_exit(unsigned* out) {
    const unsigned full = 0xffffffffu;
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x & 31;
    if (lane == 31) return;
    unsigned* o = out + (size_t)t * 4;
    o[0] = __shfl_xor_sync(full, lane, 1);
    o[1] = __shfl_down_sync(full, lane, 2u);
    o[2] = __ballot_sync(full, 1);
    o[3] = __reduce_add_sync(full, lane + 1);
}
