// Self-test: every ldmatrix variant's fragment layout.
//
// src holds four 8x8 matrices of 16-bit elements, matrix m row r col c at src[m*64 + r*8 + c]
// (the host writes the value m*64 + r*8 + c + 1, so every element is unique and nonzero).
// One warp copies them into shared memory with a padded row stride (24 elements = 48 bytes)
// and in the slot order 2,0,3,1, so that the row addresses matter. Lane l passes the address
// of row l%8 of matrix l/8 when l < 8*num; the other lanes pass a deliberately misaligned
// address, which ldmatrix must ignore. Every variant writes what each lane received:
// out[((v * 32) + lane) * 4 + i] = register i, variants v = x1, x2, x4, x1_trans, x2_trans,
// x4_trans (registers beyond num keep the host's sentinel).
#include "tessera.cuh"

// One variant: what this lane receives, into o[0..NUM).
template <int NUM, bool TRANS>
__device__ void probe(uint32_t* o, const unsigned short* row) {
    uint32_t x[NUM];
    tessera::ldmatrix<NUM, TRANS>(x, row);
    for (int i = 0; i < NUM; ++i) o[i] = x[i];
}

TESSERA_KERNEL void selftest_ldmatrix(const tessera::f16* __restrict__ src, unsigned* out) {
    __shared__ __align__(16) unsigned short tile[4 * 8 * 24];
    const unsigned lane = threadIdx.x & 31;
    const int slot_of[4] = {2, 0, 3, 1};
    for (int e = lane; e < 256; e += 32) {
        const int m = e / 64, r = (e / 8) % 8, c = e % 8;
        tile[(slot_of[m] * 8 + r) * 24 + c] = __half_as_ushort(src[e]);
    }
    __syncwarp();
    const unsigned m = lane / 8, r = lane % 8;
    const unsigned short* row = &tile[(slot_of[m] * 8 + r) * 24];
    const unsigned short* junk = tile + 1;  // misaligned: must be ignored
    uint32_t* o = out + lane * 4;
    probe<1, false>(o + 0 * 128, lane < 8 ? row : junk);
    probe<2, false>(o + 1 * 128, lane < 16 ? row : junk);
    probe<4, false>(o + 2 * 128, row);
    probe<1, true>(o + 3 * 128, lane < 8 ? row : junk);
    probe<2, true>(o + 4 * 128, lane < 16 ? row : junk);
    probe<4, true>(o + 5 * 128, row);
}
