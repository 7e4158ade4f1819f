// Self-tests of the atomics and fences (kernels/host/cuda_host.h section 7), every overload.
//
// selftest_prim_atomic_ops: one thread per case, no contention. Case i applies the atomic
//   numbered op[i] (see the table in the kernel) to its own cell[i] with operand[i] (and
//   compare[i] for atomicCAS), and writes the returned old value to old[i]. 32-bit atomics
//   act on the low word of the 64-bit cell (both the host and the GPU are little-endian); the
//   high word must stay as it was. Floats and doubles are passed as their bit patterns.
//
// selftest_prim_atomic_contention: every thread of every block applies each atomic once to
//   the same cells, so the result must not depend on the order. Thread g of N reads
//   a = src[g] and b = src[N + g] (32-bit words) and applies
//     ci[0] += (int)a      ci[1] -= (int)b      ci[2] min= (int)a   ci[3] max= (int)a
//     ci[4] &= ~(1 << a%20) ci[5] |= 1 << a%20  ci[6] ^= (int)a
//     ci[7]: atomicExch(g + 1)           -> olds32[g*9 + 0]
//     ci[8]: atomicCAS(-1, g)            -> olds32[g*9 + 1]   (one thread claims the cell)
//     ci[9]: atomicAdd(1)                -> olds32[g*9 + 2]   (tickets)
//     cu[0..6]: the same as ci[0..6] on unsigned (a, b unconverted)
//     cu[7]: atomicExch(g + 1)           -> olds32[g*9 + 3]
//     cu[8]: atomicCAS(0xffffffff, g)    -> olds32[g*9 + 4]
//     cu[9]: atomicAdd(1u)               -> olds32[g*9 + 5]
//     cu[10]: atomicInc(inc_limit)       -> olds32[g*9 + 6]
//     cu[11]: atomicDec(dec_limit)       -> olds32[g*9 + 7]
//     cu[12] += a through an atomicCAS loop
//     cl[0] += A (A = a << 32 | b)  cl[1] min= (long long)A  cl[2] max= (long long)A
//     cl[3] min= A  cl[4] max= A  cl[5] &= ~(1 << a%40)  cl[6] |= 1 << a%40  cl[7] ^= A
//     cl[8]: atomicExch((g + 1) << 32 | g)  -> olds64[g*3 + 0]
//     cl[9]: atomicCAS(~0, g)               -> olds64[g*3 + 1]
//     cl[10] (a double) += (a % 1024) * 0.5  (exact sums)
//     cl[11]: atomicAdd(1ull)               -> olds64[g*3 + 2]
//     cf[0] += ((int)(a % 17) - 8) * 0.25f  (exact sums)
//     cf[1]: atomicExch((float)g)           -> olds32[g*9 + 8] (bits)
//   The same atomics on a __shared__ counter of the block, too: shared[0] += 1 per thread and
//   shared[1] max= threadIdx.x; thread 0 then adds them to cu[13] and cu[14].
//
// selftest_prim_threadfence: the "last block" reduction of the CUDA programming guide. Each
//   block sums its part of src into a __shared__ word (atomicAdd on shared memory), thread 0
//   stores it to partial[blockIdx.x], __threadfence(), then atomicInc(count, gridDim.x - 1);
//   the block that sees gridDim.x - 1 (the last) sums all partials into *total, and resets
//   *count to 0 (atomicInc wraps it there). __threadfence_block / __threadfence_system order
//   the shared-memory and global writes around it.
#include "tessera.cuh"

TESSERA_KERNEL void selftest_prim_atomic_ops(const int* __restrict__ op, const unsigned long long* __restrict__ operand,
                                             const unsigned long long* __restrict__ compare, int n,
                                             unsigned long long* cell, unsigned long long* old) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned long long* c = &cell[i];
    int* ci = reinterpret_cast<int*>(c);
    unsigned* cu = reinterpret_cast<unsigned*>(c);
    long long* cll = reinterpret_cast<long long*>(c);
    float* cf = reinterpret_cast<float*>(c);
    double* cd = reinterpret_cast<double*>(c);
    const unsigned long long v = operand[i], w = compare[i];
    const int vi = (int)(unsigned)v, wi = (int)(unsigned)w;
    const unsigned vu = (unsigned)v, wu = (unsigned)w;
    unsigned long long r = 0;
    switch (op[i]) {
        case 0: r = (unsigned)atomicAdd(ci, vi); break;
        case 1: r = atomicAdd(cu, vu); break;
        case 2: r = atomicAdd(c, v); break;
        case 3: r = __float_as_uint(atomicAdd(cf, __uint_as_float(vu))); break;
        case 4: r = (unsigned long long)__double_as_longlong(atomicAdd(cd, __longlong_as_double((long long)v))); break;
        case 5: r = (unsigned)atomicSub(ci, vi); break;
        case 6: r = atomicSub(cu, vu); break;
        case 7: r = (unsigned)atomicMin(ci, vi); break;
        case 8: r = (unsigned)atomicMax(ci, vi); break;
        case 9: r = atomicMin(cu, vu); break;
        case 10: r = atomicMax(cu, vu); break;
        case 11: r = (unsigned long long)atomicMin(cll, (long long)v); break;
        case 12: r = (unsigned long long)atomicMax(cll, (long long)v); break;
        case 13: r = atomicMin(c, v); break;
        case 14: r = atomicMax(c, v); break;
        case 15: r = (unsigned)atomicCAS(ci, wi, vi); break;
        case 16: r = atomicCAS(cu, wu, vu); break;
        case 17: r = atomicCAS(c, w, v); break;
        case 18: r = (unsigned)atomicExch(ci, vi); break;
        case 19: r = atomicExch(cu, vu); break;
        case 20: r = atomicExch(c, v); break;
        case 21: r = __float_as_uint(atomicExch(cf, __uint_as_float(vu))); break;
        case 22: r = (unsigned)atomicAnd(ci, vi); break;
        case 23: r = (unsigned)atomicOr(ci, vi); break;
        case 24: r = (unsigned)atomicXor(ci, vi); break;
        case 25: r = atomicAnd(cu, vu); break;
        case 26: r = atomicOr(cu, vu); break;
        case 27: r = atomicXor(cu, vu); break;
        case 28: r = atomicAnd(c, v); break;
        case 29: r = atomicOr(c, v); break;
        case 30: r = atomicXor(c, v); break;
        case 31: r = atomicInc(cu, vu); break;
        case 32: r = atomicDec(cu, vu); break;
        default: r = 0xbad0bad0bad0bad0ull; break;
    }
    old[i] = r;
}

TESSERA_KERNEL void selftest_prim_atomic_contention(const unsigned* __restrict__ src, int* ci, unsigned* cu,
                                                    unsigned long long* cl, float* cf, unsigned* olds32,
                                                    unsigned long long* olds64, unsigned inc_limit,
                                                    unsigned dec_limit) {
    __shared__ unsigned block_count[2];
    if (threadIdx.x == 0) {
        block_count[0] = 0;
        block_count[1] = 0;
    }
    __syncthreads();
    const unsigned n = gridDim.x * blockDim.x;
    const unsigned g = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned a = src[g], b = src[n + g];
    const unsigned long long A = ((unsigned long long)a << 32) | b;
    unsigned* o32 = &olds32[g * 9];
    unsigned long long* o64 = &olds64[g * 3];

    atomicAdd(&ci[0], (int)a);
    atomicSub(&ci[1], (int)b);
    atomicMin(&ci[2], (int)a);
    atomicMax(&ci[3], (int)a);
    atomicAnd(&ci[4], (int)~(1u << (a % 20u)));
    atomicOr(&ci[5], (int)(1u << (a % 20u)));
    atomicXor(&ci[6], (int)a);
    o32[0] = (unsigned)atomicExch(&ci[7], (int)(g + 1));
    o32[1] = (unsigned)atomicCAS(&ci[8], -1, (int)g);
    o32[2] = (unsigned)atomicAdd(&ci[9], 1);

    atomicAdd(&cu[0], a);
    atomicSub(&cu[1], b);
    atomicMin(&cu[2], a);
    atomicMax(&cu[3], a);
    atomicAnd(&cu[4], ~(1u << (a % 20u)));
    atomicOr(&cu[5], 1u << (a % 20u));
    atomicXor(&cu[6], a);
    o32[3] = atomicExch(&cu[7], g + 1);
    o32[4] = atomicCAS(&cu[8], 0xffffffffu, g);
    o32[5] = atomicAdd(&cu[9], 1u);
    o32[6] = atomicInc(&cu[10], inc_limit);
    o32[7] = atomicDec(&cu[11], dec_limit);
    unsigned seen, cur = *(volatile unsigned*)&cu[12];
    do {
        seen = cur;
        cur = atomicCAS(&cu[12], seen, seen + a);
    } while (cur != seen);

    atomicAdd(&cl[0], A);
    atomicMin(reinterpret_cast<long long*>(&cl[1]), (long long)A);
    atomicMax(reinterpret_cast<long long*>(&cl[2]), (long long)A);
    atomicMin(&cl[3], A);
    atomicMax(&cl[4], A);
    atomicAnd(&cl[5], ~(1ull << (a % 40u)));
    atomicOr(&cl[6], 1ull << (a % 40u));
    atomicXor(&cl[7], A);
    o64[0] = atomicExch(&cl[8], ((unsigned long long)(g + 1) << 32) | g);
    o64[1] = atomicCAS(&cl[9], ~0ull, (unsigned long long)g);
    atomicAdd(reinterpret_cast<double*>(&cl[10]), (double)(a % 1024u) * 0.5);
    o64[2] = atomicAdd(&cl[11], 1ull);

    atomicAdd(&cf[0], (float)((int)(a % 17u) - 8) * 0.25f);
    o32[8] = __float_as_uint(atomicExch(&cf[1], (float)g));

    atomicAdd(&block_count[0], 1u);
    atomicMax(&block_count[1], (unsigned)threadIdx.x);
    __syncthreads();
    if (threadIdx.x == 0) {
        atomicAdd(&cu[13], block_count[0]);
        atomicAdd(&cu[14], block_count[1]);
    }
}

TESSERA_KERNEL void selftest_prim_threadfence(const unsigned* __restrict__ src, int n, unsigned* partial,
                                              unsigned* count, unsigned* total) {
    __shared__ unsigned block_sum;
    __shared__ int is_last;
    if (threadIdx.x == 0) block_sum = 0;
    __threadfence_block();
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) atomicAdd(&block_sum, src[i]);
    __syncthreads();
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = block_sum;
        __threadfence();
        is_last = atomicInc(count, gridDim.x - 1) == gridDim.x - 1;
    }
    __syncthreads();
    if (is_last && threadIdx.x == 0) {
        unsigned s = 0;
        for (unsigned b = 0; b < gridDim.x; ++b) s += ((volatile unsigned*)partial)[b];
        *total = s;
        __threadfence_system();
    }
}
