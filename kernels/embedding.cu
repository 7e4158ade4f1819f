// Conditioning embeddings of a diffusion transformer (DiT): the sinusoidal timestep
// embedding and the class-label embedding lookup.
//
// ---- Timestep embedding ---------------------------------------------------------------------------
// diffusers' `get_timestep_embedding` with flip_sin_to_cos=True and any downscale_freq_shift
// (shift 0: DiT's `TimestepEmbedder.timestep_embedding`; shift 1: diffusers' DiT,
// `CombinedTimestepLabelEmbeddings` → `Timesteps(256, True, downscale_freq_shift=1)`):
//   t    [B]       float (fractional t allowed)
//   out  [B, dim]  T ∈ {float, __half, __nv_bfloat16}, row-major
//   half = dim / 2 (integer division),  c = −ln(max_period) rounded to f32 (by the wrapper)
//   freq_divisor = half − downscale_freq_shift, ≥ 1 when half ≥ 1 (the wrapper rejects the rest)
//   e_i    = fl(fl(c · i) / freq_divisor)         i = 0 .. half−1 (PyTorch's f32 order)
//   freq_i = emb_exp(e_i)                         see below
//   arg_i  = fl(t · freq_i)                       (one f32 multiply, never contracted)
//   out[b, i] = cos(arg_i),  out[b, half + i] = sin(arg_i),  out[b, dim − 1] = 0 if dim is odd.
// All in f32. emb_exp is exp written as a fixed sequence of correctly rounded f32 operations
// (clamp, rint, two FMA range-reduction steps, a degree-7 Taylor polynomial in Horner form,
// two exact power-of-two scalings): no math library and no contraction freedom, so freq_i —
// and therefore arg_i — is bit-identical on the GPU, the emulator and the Rust reference
// (src/reference/embedding.rs, `frequency_exp`, the same sequence); it is within 1 ulp of
// exp(e_i) (tests/embedding.rs checks). cos/sin are emb_sincos: a full-range Payne–Hanek
// argument reduction in integer arithmetic (exact for every finite f32, so t = 999 or 1e4
// times freq_0 = 1 is as accurate as a small argument; __sinf/__cosf would not be) and
// Taylor polynomials, again a fixed sequence of correctly rounded operations: the GPU and
// the emulator give the same bits. (Not the library sincosf: CUDA's slow path for
// |arg| > 105615 indexes a local array, a stack frame in this kernel.)
// Accuracy rule: every output is within 2 ulp (f32; measured ≤ 1.5) of the exact cos/sin of
// the f32 argument arg_i, then rounded once to T. The rounding of arg_i itself (a phase
// error up to |arg|·2^−24, e.g. 6e−4 rad at t = 1e4) is inherent to computing in f32, as
// PyTorch does, and is the same on every backend: the reference takes the same arg_i.
// Invalid values: a row whose t is not finite, or where some arg_i is not finite (only
// possible with max_period < 1, where freq_i > 1), is flagged in `status` (atomicMin of the
// row). The row is still written: cos/sin of each argument (NaN where it is not finite),
// the odd-dim pad column 0.
//
// Kernel embedding_timestep_<T>: the output is treated as one flat run of B·dim elements cut
// into vectors of V = 16 / sizeof(T) consecutive elements (4 f32, 8 f16/bf16). Thread g of the
// grid (EMB_TIMESTEP_THREADS per block) owns vector g: elements [g·V, g·V + V), which may
// cross row boundaries (then the loop steps to the next row and its t). It computes each
// element's (row, column) — column < half: cos of frequency column; < 2·half: sin of
// frequency column − half; else the pad 0 — packs the V values and writes them with one
// 16-byte store: consecutive threads, consecutive 16 bytes, one 512-byte run per warp,
// whatever dim is (the flat cut needs no row alignment). Only the out pointer must be 16-byte
// aligned; otherwise (a view at an odd offset) the same mapping stores element by element.
// The last thread writes the B·dim mod V trailing elements one by one. t is read per row
// (a broadcast load within the vector, cached). No shared memory.
//
// ---- Label embedding ------------------------------------------------------------------------------
//   labels [B]                   uint32, ≤ num_classes; num_classes is the "null" class of
//                                classifier-free guidance (the table's last row)
//   table  [num_classes + 1, D]  T, row-major
//   out    [B, D]                T:  out[b, :] = table[labels[b], :]
// A label > num_classes is flagged in `status` (atomicMin of the row) and its output row is
// written with zeros, so a following op never reads undefined memory.
//
// Kernels (each for _f32, _f16, _bf16):
//   embedding_label_v1_<T>  plain reference variant: one thread per output element (flat
//                           index e → row e / D, column e mod D), one scalar load of the
//                           label and of the table element, one scalar store. Obviously
//                           correct; also the per-element gather baseline of the benchmark.
//   embedding_label_<T>     one warp per output row, EMB_LABEL_WARPS rows per block: every
//                           lane reads the row's label (one broadcast request), then lane l
//                           copies 16-byte vectors l, l + 32, ... of the table row to the
//                           output row (each warp request is 512 contiguous bytes, both
//                           sides). The vector path needs D·sizeof(T) ≡ 0 mod 16 and both
//                           the table and out pointers 16-byte aligned (then every row
//                           start is); otherwise lane l copies elements l, l + 32, ...
//                           (coalesced, narrower). No shared memory.
#include "tessera.cuh"

#define EMB_TIMESTEP_THREADS 256
#define EMB_LABEL_WARPS 8
#define EMB_LABEL_THREADS 256
#define EMB_LABEL_V1_THREADS 256

static_assert(EMB_LABEL_THREADS == 32 * EMB_LABEL_WARPS, "one warp per label row");

namespace {

constexpr float kF32Max = 3.402823466e38f;

__device__ __forceinline__ bool is_finite(float x) { return fabsf(x) <= kF32Max; }

// exp(e) as a fixed sequence of correctly rounded f32 operations (mirrored step for step by
// `frequency_exp` in src/reference/embedding.rs; both must change together).
//   e clamped to [−104, 89] (exp is 0 resp. +inf in f32 beyond; no NaN reaches here)
//   k = rint(e · log2 e),  r = e − k·ln2 (Cody–Waite: ln2_hi has 9 trailing zero bits, so the
//   first step is exact; |r| ≤ ~0.347), p = Σ_{n≤7} r^n / n! (Horner, truncation < 6e−9
//   relative), result = p · 2^(k>>1) · 2^(k − (k>>1)) (each factor a normal power of two, so
//   the first product is exact and the second rounds once, subnormals included).
__device__ __forceinline__ float emb_exp(float e) {
    e = fminf(fmaxf(e, -104.0f), 89.0f);
    const float k = rintf(__fmul_rn(e, 1.442695022e+00f));
    float r = __fmaf_rn(-k, 6.931457520e-01f, e);
    r = __fmaf_rn(-k, 1.428606765e-06f, r);
    float p = 1.984127011e-04f;
    p = __fmaf_rn(p, r, 1.388888923e-03f);
    p = __fmaf_rn(p, r, 8.333333768e-03f);
    p = __fmaf_rn(p, r, 4.166666791e-02f);
    p = __fmaf_rn(p, r, 1.666666716e-01f);
    p = __fmaf_rn(p, r, 5.000000000e-01f);
    p = __fmaf_rn(p, r, 1.0f);
    p = __fmaf_rn(p, r, 1.0f);
    const int ki = __float2int_rn(k);  // in [-150, 129]
    const int k1 = ki >> 1;
    const int k2 = ki - k1;
    const float s1 = __int_as_float((k1 + 127) << 23);
    const float s2 = __int_as_float((k2 + 127) << 23);
    return __fmul_rn(__fmul_rn(p, s1), s2);
}

// Bits −31 .. 224 of 2/π = 0.A2F9836E 4E441529 ... (binary), 32 per word, most significant
// first; word 0 is the integer part's 32 zero bits. Selected by a chain of compares (the
// index is data-dependent): no array, so nothing goes to local memory.
__device__ __forceinline__ unsigned two_over_pi_word(unsigned i) {
    return i == 0 ? 0u
         : i == 1 ? 0xA2F9836Eu
         : i == 2 ? 0x4E441529u
         : i == 3 ? 0xFC2757D1u
         : i == 4 ? 0xF534DDC0u
         : i == 5 ? 0xDB629599u
         : i == 6 ? 0x3C439041u
                  : 0xFE5163ABu;
}

// The top 32 bits of hi:lo shifted left by s (0 ≤ s < 32), without a shift by 32.
__device__ __forceinline__ unsigned funnel(unsigned hi, unsigned lo, unsigned s) {
    return s == 0 ? hi : (hi << s) | (lo >> (32u - s));
}

// sin(x) and cos(x) of an f32 x, as a fixed sequence of integer and correctly rounded
// floating-point operations (no math library: bit-identical on the GPU and the emulator).
// Why not sincosf: CUDA's slow path for |x| > 105615 indexes a local array, which gives the
// kernel a stack frame unless ptxas happens to keep it in registers (it does not here).
//   |x| ≤ π/4: r = x, quadrant q = 0.
//   otherwise (Payne–Hanek, exact for every finite f32): x = m·2^E with m the 24-bit
//   integer significand; only the bits j ≥ E − 1 of 2/π change x·2/π mod 4, so with F = the
//   96 bits j = E−1 .. E+94 of 2/π, x·2/π mod 4 = (m·F mod 2^96)·2^−94 up to m·2^−95 <
//   2^−71. Its top 2 bits are q, the 94 below the fraction f ∈ [0, 1); f ≥ 1/2 becomes
//   f − 1 and q + 1, so r = f·π/2 ∈ [−π/4, π/4]: the top 64 bits of f as a signed integer,
//   converted to double (53 bits, exact in its scale), times π/2·2^−64, rounded to f32.
//   Negative x: r and q negated.
//   sin r, cos r: Taylor polynomials to r^11 resp. r^12 in Horner form (truncation
//   < 1e−11 relative on |r| ≤ π/4), then the quadrant's signs and swap.
// Within 2 ulp of the exact values (tests/embedding.rs measures it). Not finite: NaN, NaN.
__device__ __forceinline__ void emb_sincos(float x, float* sin_out, float* cos_out) {
    if (!is_finite(x)) {
        *sin_out = *cos_out = __fsub_rn(x, x);  // NaN
        return;
    }
    const unsigned bits = __float_as_uint(x);
    const bool negative = (bits >> 31) != 0;
    float r = x;
    unsigned q = 0;
    if (fabsf(x) > 7.853981256e-01f) {  // the f32 below π/4
        const unsigned biased = (bits >> 23) & 0xffu;  // ≥ 126 here: x is normal
        const unsigned m = (bits & 0x7fffffu) | 0x800000u;
        // E = biased − 150; the window starts at bit j0 = E − 1, stream position j0 + 31.
        const unsigned pos = biased - 120u;  // = j0 + 31 ∈ [6, 134]
        const unsigned a = pos >> 5, s = pos & 31u;
        const unsigned w0 = two_over_pi_word(a), w1 = two_over_pi_word(a + 1);
        const unsigned w2 = two_over_pi_word(a + 2), w3 = two_over_pi_word(a + 3);
        const unsigned f2 = funnel(w0, w1, s), f1 = funnel(w1, w2, s), f0 = funnel(w2, w3, s);
        // P = m·F mod 2^96 = p2:p1:p0.
        const unsigned long long lo = (unsigned long long)m * f0;
        const unsigned long long mid = (unsigned long long)m * f1 + (lo >> 32);
        const unsigned p2 = (unsigned)((unsigned long long)m * f2 + (mid >> 32));
        const unsigned p1 = (unsigned)mid, p0 = (unsigned)lo;
        q = p2 >> 30;
        // The 64 fraction bits below q: bits 93 .. 30 of P.
        const unsigned long long frac = ((unsigned long long)((p2 << 2) | (p1 >> 30)) << 32) | ((p1 << 2) | (p0 >> 30));
        q += (unsigned)(frac >> 63);  // f ≥ 1/2: f − 1, next quadrant
        const double fd = (double)(long long)frac;  // f (or f − 1) · 2^64
        r = __double2float_rn(__dmul_rn(fd, 8.5153039502163861e-20));  // · π/2 · 2^−64
        if (negative) {
            r = -r;
            q = 0u - q;
        }
    }
    const float r2 = __fmul_rn(r, r);
    float ps = -2.505210794e-08f;
    ps = __fmaf_rn(ps, r2, 2.755731884e-06f);
    ps = __fmaf_rn(ps, r2, -1.984127011e-04f);
    ps = __fmaf_rn(ps, r2, 8.333333768e-03f);
    ps = __fmaf_rn(ps, r2, -1.666666716e-01f);
    const float sr = __fmaf_rn(__fmul_rn(r, r2), ps, r);
    float pc = 2.087675588e-09f;
    pc = __fmaf_rn(pc, r2, -2.755731998e-07f);
    pc = __fmaf_rn(pc, r2, 2.480158764e-05f);
    pc = __fmaf_rn(pc, r2, -1.388888923e-03f);
    pc = __fmaf_rn(pc, r2, 4.166666791e-02f);
    pc = __fmaf_rn(pc, r2, -5.000000000e-01f);
    const float cr = __fmaf_rn(r2, pc, 1.0f);
    // x = q·π/2 + r: sin x = sin r, cos r, −sin r, −cos r; cos x = cos r, −sin r, −cos r, sin r.
    const float sv = (q & 1u) ? cr : sr;
    const float cv = (q & 1u) ? sr : cr;
    *sin_out = (q & 2u) ? -sv : sv;
    *cos_out = ((q + 1u) & 2u) ? -cv : cv;
}

// The value of column `col` of a row with timestep `t`; sets *bad when the row is invalid.
__device__ __forceinline__ float timestep_value(float t, unsigned col, unsigned half, unsigned freq_divisor,
                                                float neg_log_max_period, bool* bad) {
    if (!is_finite(t)) *bad = true;
    if (col >= 2 * half) return 0.0f;  // the odd-dim pad column
    const bool is_sin = col >= half;
    const unsigned i = is_sin ? col - half : col;
    const float e = __fdiv_rn(__fmul_rn(neg_log_max_period, (float)i), (float)freq_divisor);
    const float arg = __fmul_rn(t, emb_exp(e));
    if (!is_finite(arg)) *bad = true;
    float s, c;
    emb_sincos(arg, &s, &c);
    return is_sin ? s : c;
}

// The 16-bit pattern (f16 / bf16) or 32-bit pattern (f32) of an output value.
__device__ __forceinline__ unsigned value_bits(float v) { return __float_as_uint(v); }
__device__ __forceinline__ unsigned value_bits(tessera::f16 v) { return __half_as_ushort(v); }
__device__ __forceinline__ unsigned value_bits(tessera::bf16 v) { return __bfloat16_as_ushort(v); }

template <class T>
__device__ void timestep_embedding(const float* __restrict__ t, T* __restrict__ out, unsigned* __restrict__ status,
                                   unsigned n, unsigned dim, unsigned freq_divisor, float neg_log_max_period) {
    constexpr unsigned V = 16 / sizeof(T);
    constexpr unsigned BITS = 8 * sizeof(T);
    const unsigned long long total = (unsigned long long)n * dim;
    const unsigned long long first = ((unsigned long long)blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (first >= total) return;
    const unsigned half = dim / 2;
    unsigned row = (unsigned)(first / dim);
    unsigned col = (unsigned)(first - (unsigned long long)row * dim);
    const unsigned count = total - first < V ? (unsigned)(total - first) : V;
    T* dst = out + first;
    const bool vector = count == V && (reinterpret_cast<uintptr_t>(dst) & 15u) == 0;
    float tr = t[row];
    unsigned first_bad = 0xffffffffu;
    // The vector's V values enter a 128-bit shift register w3:w2:w1:w0 from the top, BITS
    // at a time, so after V steps element k sits at bits [k·BITS, (k+1)·BITS) (little endian,
    // as in memory). Not unrolled: one inlined copy of emb_sincos instead of V.
    unsigned w0 = 0, w1 = 0, w2 = 0, w3 = 0;
#pragma unroll 1
    for (unsigned k = 0; k < V; ++k) {
        T value = tessera::from_float<T>(0.0f);
        if (k < count) {
            if (k > 0 && ++col == dim) {  // the vector crosses into the next row
                col = 0;
                ++row;
                tr = t[row];
            }
            bool bad = false;
            value = tessera::from_float<T>(timestep_value(tr, col, half, freq_divisor, neg_log_max_period, &bad));
            if (bad && first_bad == 0xffffffffu) first_bad = row;
            if (!vector) dst[k] = value;
        }
        const unsigned b = value_bits(value);
        if (BITS == 32) {
            w0 = w1, w1 = w2, w2 = w3, w3 = b;
        } else {
            w0 = (w0 >> 16) | (w1 << 16);
            w1 = (w1 >> 16) | (w2 << 16);
            w2 = (w2 >> 16) | (w3 << 16);
            w3 = (w3 >> 16) | (b << 16);
        }
    }
    if (vector) tessera::store16(dst, make_uint4(w0, w1, w2, w3));
    if (first_bad != 0xffffffffu) atomicMin(status, first_bad);
}

template <class T>
__device__ void label_embedding_v1(const unsigned* __restrict__ labels, const T* __restrict__ table,
                                   T* __restrict__ out, unsigned* __restrict__ status, unsigned n,
                                   unsigned num_classes, unsigned dim) {
    const unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (unsigned long long)n * dim) return;
    const unsigned row = (unsigned)(e / dim);
    const unsigned col = (unsigned)(e - (unsigned long long)row * dim);
    const unsigned label = labels[row];
    if (label > num_classes) {
        out[e] = tessera::from_float<T>(0.0f);
        if (col == 0) atomicMin(status, row);
    } else {
        out[e] = table[(size_t)label * dim + col];
    }
}

template <class T>
__device__ void label_embedding_warp(const unsigned* __restrict__ labels, const T* __restrict__ table,
                                     T* __restrict__ out, unsigned* __restrict__ status, unsigned n,
                                     unsigned num_classes, unsigned dim) {
    constexpr unsigned V = 16 / sizeof(T);
    const unsigned lane = threadIdx.x & 31u;
    const unsigned row = blockIdx.x * EMB_LABEL_WARPS + (threadIdx.x >> 5);
    if (row >= n) return;
    const unsigned label = labels[row];
    const bool ok = label <= num_classes;
    if (!ok && lane == 0) atomicMin(status, row);
    const T* src = table + (size_t)(ok ? label : 0u) * dim;
    T* dst = out + (size_t)row * dim;
    const bool vec = (dim % V) == 0 &&
                     ((reinterpret_cast<uintptr_t>(table) | reinterpret_cast<uintptr_t>(out)) & 15u) == 0;
    if (vec) {
        const unsigned vectors = dim / V;
        const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
        for (unsigned v = lane; v < vectors; v += 32) {
            tessera::store16(dst + (size_t)v * V, ok ? tessera::load16(src + (size_t)v * V) : zero);
        }
    } else {
        const T zero = tessera::from_float<T>(0.0f);
        for (unsigned j = lane; j < dim; j += 32) dst[j] = ok ? src[j] : zero;
    }
}

}  // namespace

#define EMBEDDING_KERNELS(T, SUFFIX)                                                                        \
    TESSERA_KERNEL void __launch_bounds__(EMB_TIMESTEP_THREADS)                                             \
        embedding_timestep_##SUFFIX(const float* t, T* out, unsigned* status, unsigned n, unsigned dim,     \
                                    unsigned freq_divisor, float neg_log_max_period) {                      \
        timestep_embedding<T>(t, out, status, n, dim, freq_divisor, neg_log_max_period);                    \
    }                                                                                                       \
    TESSERA_KERNEL void __launch_bounds__(EMB_LABEL_V1_THREADS)                                             \
        embedding_label_v1_##SUFFIX(const unsigned* labels, const T* table, T* out, unsigned* status,       \
                                    unsigned n, unsigned num_classes, unsigned dim) {                       \
        label_embedding_v1<T>(labels, table, out, status, n, num_classes, dim);                             \
    }                                                                                                       \
    TESSERA_KERNEL void __launch_bounds__(EMB_LABEL_THREADS)                                                \
        embedding_label_##SUFFIX(const unsigned* labels, const T* table, T* out, unsigned* status,          \
                                 unsigned n, unsigned num_classes, unsigned dim) {                          \
        label_embedding_warp<T>(labels, table, out, status, n, num_classes, dim);                           \
    }

EMBEDDING_KERNELS(float, f32)
EMBEDDING_KERNELS(tessera::f16, f16)
EMBEDDING_KERNELS(tessera::bf16, bf16)
