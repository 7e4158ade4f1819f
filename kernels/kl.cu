// The bottleneck of a KL-regularized (continuous, VAE-style) tokenizer: the reparameterized
// sample of a diagonal Gaussian, diffusers' `DiagonalGaussianDistribution`.
//
//   params [n, 2C]  T ∈ {float, __half, __nv_bfloat16}, row-major: mean [C] then logvar [C]
//                   (diffusers' `mean, logvar = torch.chunk(parameters, 2, dim=1)`, here on
//                   the last axis)
//   z      [n, C]   T:
//     sample = 0 ("mode"):   z[i, c] = mean[i, c]                          (a copy, exact)
//     sample = 1:            lv = clamp(logvar[i, c], −30, 20)             (diffusers' clamp)
//                            σ  = kl_exp(0.5 · lv)
//                            z[i, c] = fl_T(fma(σ, ε(seed, i·C + c), mean[i, c]))
//   Everything in f32, rounded once to T at the end (diffusers computes `mean + std·ε` in
//   the parameters' dtype, with a rounding after each operation). The clamp keeps NaN (it is
//   written with comparisons, like torch.clamp, not fminf/fmaxf); ±inf become the bounds.
//   Invalid values: a row with a mean — or, when sampling, a logvar — that is NaN or ±inf is
//   flagged in `status` (atomicMin of the row); the row is still written (NaN propagates).
//
// ---- The noise ε -----------------------------------------------------------------------------------
// Counter-based, so ε of an element depends only on (seed, its flat output index e = i·C + c):
// never on the launch geometry, the dtype or the thread that computes it, and any element can be
// recomputed alone (src/reference/kl.rs does). Philox4x32-10 (Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC'11): key = (seed_lo, seed_hi), counter = (e/4 as a 64-bit
// integer: lo, hi, 0, 0); ten rounds of
//   (hi0, lo0) = M0·c0, (hi1, lo1) = M1·c2 (32×32 → 64-bit products),
//   c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0),  then k += (W0, W1),
// M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85 (tests/kl.rs checks the
// published known-answer vectors). The four words x0..x3 give elements 4·(e/4) + 0..3 by two
// Box–Muller transforms, (x0, x1) → ε0, ε1 and (x2, x3) → ε2, ε3:
//   u = ((x_a >> 8) + 1) · 2^−24 ∈ [2^−24, 1]   (exact in f32; never 0 before the log)
//   ρ = sqrt(−2 · kl_log(u))                    (correctly rounded sqrt; |ε| ≤ 5.77)
//   θ = 2π · (x_b >> 8) · 2^−24                 (a 24-bit angle, reduced exactly, see kl_sincos)
//   ε_even = ρ · cos θ,  ε_odd = ρ · sin θ
// The 24-bit radius truncates the normal at 5.77σ (probability 8e−9 beyond); curand's 32 bits
// reach 6.66σ. kl_log, kl_sincos and kl_exp are fixed sequences of correctly rounded f32
// operations (explicit __fmaf_rn / __fmul_rn / __fadd_rn / __fdiv_rn / __fsqrt_rn: no library
// math, no contraction freedom), mirrored step for step by src/reference/kl.rs, so the GPU, the
// emulator and the Cpu backend produce the same bits. (The CUDA and glibc logf/sinf/cosf are
// each accurate but do not agree bit for bit.) Accuracy, checked by tests/kl.rs over every
// input the generator produces: kl_log within 2 ulp (measured 1.68), kl_exp within 2 ulp on
// [−15, 10] (measured 0.87), cos/sin within 2·2^−24 absolute of the exact angle's (1.39).
//
// ---- Thread mapping ---------------------------------------------------------------------------------
// Kernel kl_sample_<T>: z is one flat run of n·C elements cut into vectors of V = 16 / sizeof(T)
// consecutive elements (4 f32 = one Philox call, 8 f16/bf16 = two). Thread g of the grid
// (KL_THREADS per block) owns elements [g·V, g·V + V): consecutive threads, consecutive 16 bytes
// of z (one 512-byte run per warp) and, within a row, consecutive 16 bytes of mean and of logvar.
// Vector path (C ≡ 0 mod V, params and z 16-byte aligned, a whole vector): the V elements lie in
// one row; one 16-byte load of mean, one of logvar (sampling only), one 16-byte store. Otherwise
// (ragged C, the tail, an unaligned view) the same elements element by element, stepping into
// the next row where the vector crosses one. No shared memory.
#include "tessera.cuh"

#define KL_THREADS 256
// diffusers' clamp of logvar (DiagonalGaussianDistribution.__init__).
#define KL_LOGVAR_MIN -30
#define KL_LOGVAR_MAX 20

// Must match `KlParams` in src/kernels/kl.rs field for field.
struct KlParams {
    unsigned n;         // rows
    unsigned channels;  // C (the row of params has 2C elements)
    unsigned seed_lo;   // Philox key word 0
    unsigned seed_hi;   // Philox key word 1
    unsigned sample;    // 0 = mean ("mode"), 1 = reparameterized sample
};
static_assert(sizeof(KlParams) == 20, "KlParams layout changed");

namespace {

constexpr float kF32Max = 3.402823466e38f;

__device__ __forceinline__ bool is_finite(float x) { return fabsf(x) <= kF32Max; }

// ---- Philox4x32-10 --------------------------------------------------------------------------
struct Words4 {
    unsigned x0, x1, x2, x3;
};

__device__ __forceinline__ Words4 philox4x32_10(unsigned long long counter, unsigned k0, unsigned k1) {
    unsigned c0 = (unsigned)counter, c1 = (unsigned)(counter >> 32), c2 = 0u, c3 = 0u;
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        const unsigned long long p0 = (unsigned long long)0xD2511F53u * c0;
        const unsigned long long p1 = (unsigned long long)0xCD9E8D57u * c2;
        const unsigned hi0 = (unsigned)(p0 >> 32), lo0 = (unsigned)p0;
        const unsigned hi1 = (unsigned)(p1 >> 32), lo1 = (unsigned)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return Words4{c0, c1, c2, c3};
}

// ---- f32 math as fixed sequences of correctly rounded operations ----------------------------
// (mirrored by src/reference/kl.rs; both must change together)

// ln(u) for a normal positive u (here u ∈ [2^−24, 1]): u = m·2^k with m ∈ (√2/2, √2]
// (m from the exponent bits; halved, exactly, when above the f32 below √2), f = m − 1 (exact,
// Sterbenz), s = f / (2 + f), ln m = 2·atanh(s) = t + t·s²·(1/3 + s²/5 + s⁴/7 + s⁶/9) with
// t = 2s (|s| ≤ 0.1716: truncation < 3e−9 relative), then + k·ln2 in two parts (ln2_hi has
// 12 trailing zero bits, so k·ln2_hi is exact).
__device__ __forceinline__ float kl_log(float u) {
    const unsigned bits = __float_as_uint(u);
    int k = (int)(bits >> 23) - 127;
    float m = __uint_as_float((bits & 0x7fffffu) | 0x3f800000u);
    if (m > 1.4142135e+00f) {
        m = __fmul_rn(m, 0.5f);
        k += 1;
    }
    const float f = __fsub_rn(m, 1.0f);
    const float s = __fdiv_rn(f, __fadd_rn(2.0f, f));
    const float s2 = __fmul_rn(s, s);
    float p = 1.1111111e-01f;
    p = __fmaf_rn(p, s2, 1.4285715e-01f);
    p = __fmaf_rn(p, s2, 2.0e-01f);
    p = __fmaf_rn(p, s2, 3.3333334e-01f);
    const float t = __fmul_rn(2.0f, s);
    const float log_m = __fmaf_rn(__fmul_rn(t, s2), p, t);
    const float kf = (float)k;
    return __fmaf_rn(kf, 6.9311523e-01f, __fmaf_rn(kf, 3.1946183e-05f, log_m));
}

// exp(x) for x ∈ [−15, 10] (half the clamped logvar): k = rint(x·log2 e), r = x − k·ln2 in two
// FMA steps (|r| ≤ 0.347), p = Σ_{j≤7} r^j / j! (Horner; truncation < 6e−9 relative), times
// 2^k (k ∈ [−22, 15]: a normal power of two and a normal result, so the product is exact).
__device__ __forceinline__ float kl_exp(float x) {
    const float k = rintf(__fmul_rn(x, 1.442695e+00f));
    float r = __fmaf_rn(-k, 6.9311523e-01f, x);
    r = __fmaf_rn(-k, 3.1946183e-05f, r);
    float p = 1.984127e-04f;
    p = __fmaf_rn(p, r, 1.3888889e-03f);
    p = __fmaf_rn(p, r, 8.333334e-03f);
    p = __fmaf_rn(p, r, 4.1666668e-02f);
    p = __fmaf_rn(p, r, 1.6666667e-01f);
    p = __fmaf_rn(p, r, 0.5f);
    p = __fmaf_rn(p, r, 1.0f);
    p = __fmaf_rn(p, r, 1.0f);
    return __fmul_rn(p, __int_as_float((__float2int_rn(k) + 127) << 23));
}

// cos and sin of θ = 2π·a/2^24 for a 24-bit a, reduced exactly in integers: the quadrant
// q = a >> 22 and m = a mod 2^22, centred (m ≥ 2^21: m − 2^22, next quadrant), so
// θ = q·π/2 + r with r = m·(π/2^23) ∈ [−π/4, π/4) (m exact in f32, one rounded product).
// sin r = r + r³·(−1/3! + r²/5! − r⁴/7! + r⁶/9!), cos r = 1 + r²·(−1/2! + ... + r⁸/10!)
// (Horner in r²; truncation < 3e−9), then the quadrant's swap and signs.
__device__ __forceinline__ void kl_sincos(unsigned a, float* cos_out, float* sin_out) {
    unsigned q = a >> 22;
    int m = (int)(a & 0x3fffffu);
    if (m >= (1 << 21)) {
        m -= 1 << 22;
        q += 1;
    }
    const float r = __fmul_rn((float)m, 3.7450704e-07f);
    const float r2 = __fmul_rn(r, r);
    float ps = 2.7557319e-06f;
    ps = __fmaf_rn(ps, r2, -1.984127e-04f);
    ps = __fmaf_rn(ps, r2, 8.333334e-03f);
    ps = __fmaf_rn(ps, r2, -1.6666667e-01f);
    const float sr = __fmaf_rn(__fmul_rn(r, r2), ps, r);
    float pc = -2.755732e-07f;
    pc = __fmaf_rn(pc, r2, 2.4801588e-05f);
    pc = __fmaf_rn(pc, r2, -1.3888889e-03f);
    pc = __fmaf_rn(pc, r2, 4.1666668e-02f);
    pc = __fmaf_rn(pc, r2, -0.5f);
    const float cr = __fmaf_rn(r2, pc, 1.0f);
    // q mod 4 = 0: (cos r, sin r); 1: (−sin r, cos r); 2: (−cos r, −sin r); 3: (sin r, −cos r).
    const float cv = (q & 1u) ? sr : cr;
    const float sv = (q & 1u) ? cr : sr;
    *cos_out = ((q + 1u) & 2u) ? -cv : cv;
    *sin_out = (q & 2u) ? -sv : sv;
}

// Two standard normals from two words (Box–Muller, see the top).
__device__ __forceinline__ void box_muller(unsigned xa, unsigned xb, float* e0, float* e1) {
    const float u = __fmul_rn((float)((xa >> 8) + 1u), 5.9604645e-08f);  // · 2^−24, exact
    const float rho = __fsqrt_rn(__fmul_rn(-2.0f, kl_log(u)));
    float c, s;
    kl_sincos(xb >> 8, &c, &s);
    *e0 = __fmul_rn(rho, c);
    *e1 = __fmul_rn(rho, s);
}

// The four normals of Philox group `group` (elements 4·group .. 4·group + 3).
__device__ __forceinline__ void normals4(unsigned long long group, unsigned k0, unsigned k1, float* eps) {
    const Words4 w = philox4x32_10(group, k0, k1);
    box_muller(w.x0, w.x1, &eps[0], &eps[1]);
    box_muller(w.x2, w.x3, &eps[2], &eps[3]);
}

// One output value: the mean, or the sample; sets *bad when a used input is not finite.
__device__ __forceinline__ float kl_value(float mean, float logvar, float eps, bool sample, bool* bad) {
    if (!is_finite(mean)) *bad = true;
    if (!sample) return mean;
    if (!is_finite(logvar)) *bad = true;
    const float lv = logvar < (float)KL_LOGVAR_MIN ? (float)KL_LOGVAR_MIN
                   : logvar > (float)KL_LOGVAR_MAX ? (float)KL_LOGVAR_MAX
                                                   : logvar;  // NaN stays NaN
    const float sigma = kl_exp(__fmul_rn(0.5f, lv));
    return __fmaf_rn(sigma, eps, mean);
}

// The V elements of a 16-byte vector as floats, and back.
template <class T>
__device__ __forceinline__ void unpack16(uint4 v, float* out) {
    constexpr unsigned V = 16 / sizeof(T);
    T e[V];
    memcpy(e, &v, 16);
#pragma unroll
    for (unsigned k = 0; k < V; ++k) out[k] = tessera::to_float(e[k]);
}
template <class T>
__device__ __forceinline__ uint4 pack16(const float* in) {
    constexpr unsigned V = 16 / sizeof(T);
    T e[V];
#pragma unroll
    for (unsigned k = 0; k < V; ++k) e[k] = tessera::from_float<T>(in[k]);
    uint4 v;
    memcpy(&v, e, 16);
    return v;
}

template <class T>
__device__ void kl_sample(const T* __restrict__ params, T* __restrict__ z, unsigned* __restrict__ status,
                          KlParams p) {
    constexpr unsigned V = 16 / sizeof(T);
    static_assert(V % 4 == 0, "a vector is whole Philox groups");
    const unsigned long long total = (unsigned long long)p.n * p.channels;
    const unsigned long long first = ((unsigned long long)blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (first >= total) return;
    const bool sample = p.sample != 0;
    const unsigned C = p.channels;
    const unsigned count = total - first < V ? (unsigned)(total - first) : V;

    float eps[V];
    if (sample) {
#pragma unroll
        for (unsigned g = 0; g < V / 4; ++g) normals4(first / 4 + g, p.seed_lo, p.seed_hi, &eps[4 * g]);
    } else {
#pragma unroll
        for (unsigned k = 0; k < V; ++k) eps[k] = 0.0f;
    }

    unsigned row = (unsigned)(first / C);
    unsigned col = (unsigned)(first - (unsigned long long)row * C);
    unsigned first_bad = 0xffffffffu;
    const bool vector = count == V && C % V == 0 &&
                        ((reinterpret_cast<uintptr_t>(params) | reinterpret_cast<uintptr_t>(z)) & 15u) == 0;
    if (vector) {
        const T* mean_at = params + (size_t)row * (2ull * C) + col;
        float mean[V], logvar[V], out[V];
        unpack16<T>(tessera::load16(mean_at), mean);
        if (sample) {
            unpack16<T>(tessera::load16(mean_at + C), logvar);
        } else {
#pragma unroll
            for (unsigned k = 0; k < V; ++k) logvar[k] = 0.0f;
        }
        bool bad = false;
#pragma unroll
        for (unsigned k = 0; k < V; ++k) out[k] = kl_value(mean[k], logvar[k], eps[k], sample, &bad);
        tessera::store16(z + first, pack16<T>(out));
        if (bad) first_bad = row;
    } else {
#pragma unroll
        for (unsigned k = 0; k < V; ++k) {
            if (k < count) {
                if (k > 0 && ++col == C) {  // the vector crosses into the next row
                    col = 0;
                    ++row;
                }
                const T* mean_at = params + (size_t)row * (2ull * C) + col;
                const float mean = tessera::to_float(mean_at[0]);
                const float logvar = sample ? tessera::to_float(mean_at[C]) : 0.0f;
                bool bad = false;
                z[first + k] = tessera::from_float<T>(kl_value(mean, logvar, eps[k], sample, &bad));
                if (bad && first_bad == 0xffffffffu) first_bad = row;
            }
        }
    }
    if (first_bad != 0xffffffffu) atomicMin(status, first_bad);
}

}  // namespace

#define KL_KERNELS(T, SUFFIX)                                                                                \
    TESSERA_KERNEL void __launch_bounds__(KL_THREADS)                                                        \
        kl_sample_##SUFFIX(const T* params, T* z, unsigned* status, KlParams p) {                           \
        kl_sample<T>(params, z, status, p);                                                                  \
    }

KL_KERNELS(float, f32)
KL_KERNELS(tessera::f16, f16)
KL_KERNELS(tessera::bf16, bf16)
