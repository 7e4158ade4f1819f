//! The KL bottleneck's reparameterized sample on the CPU (diffusers'
//! `DiagonalGaussianDistribution.sample()` / `.mode()`), written for obviousness.
//!
//! For `params [n, 2C]` (row-major, `mean [C]` then `logvar [C]` per row):
//!
//! ```text
//! mode:    z[i, c] = mean[i, c]
//! sample:  lv = clamp(logvar[i, c], −30, 20)          (diffusers' clamp; NaN stays NaN)
//!          z[i, c] = fl_T(fma(exp(lv / 2), ε(seed, i·C + c), mean[i, c]))   (f32)
//! ```
//!
//! ε is a standard normal from Philox4x32-10 keyed by the seed, counter = element / 4, and
//! Box–Muller ([`normal`]). Every transcendental is the exact sequence of correctly rounded
//! f32 operations that kernels/kl.cu performs ([`kl_log`], [`kl_exp`], [`kl_sincos`]; the
//! two must change together), so the Cpu backend, the emulator and a GPU agree bit for bit.

use crate::element::FloatElement;

/// diffusers' lower clamp of logvar.
pub const LOGVAR_MIN: f32 = -30.0;
/// diffusers' upper clamp of logvar.
pub const LOGVAR_MAX: f32 = 20.0;

/// Philox4x32-10 of a 128-bit counter under a 64-bit key (Salmon et al., SC'11).
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    for _ in 0..10 {
        let p0 = 0xD251_1F53u64 * c0 as u64;
        let p1 = 0xCD9E_8D57u64 * c2 as u64;
        (c0, c1, c2, c3) = ((p1 >> 32) as u32 ^ c1 ^ k0, p1 as u32, (p0 >> 32) as u32 ^ c3 ^ k1, p0 as u32);
        k0 = k0.wrapping_add(0x9E37_79B9);
        k1 = k1.wrapping_add(0xBB67_AE85);
    }
    [c0, c1, c2, c3]
}

/// ln(u) for a normal positive f32, step for step `kl_log` of kernels/kl.cu: u = m·2^k with
/// m ∈ (√2/2, √2], f = m − 1, s = f/(2 + f), ln m = t + t·s²·(1/3 + s²/5 + s⁴/7 + s⁶/9)
/// with t = 2s, plus k·ln2 in two parts.
pub fn kl_log(u: f32) -> f32 {
    let bits = u.to_bits();
    let mut k = (bits >> 23) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x7f_ffff) | 0x3f80_0000);
    if m > 1.414_213_5 {
        m *= 0.5;
        k += 1;
    }
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let s2 = s * s;
    let mut p = 1.111_111_1e-1_f32;
    for c in [1.428_571_5e-1_f32, 2.0e-1, 3.333_333_4e-1] {
        p = p.mul_add(s2, c);
    }
    let t = 2.0 * s;
    let log_m = (t * s2).mul_add(p, t);
    let kf = k as f32;
    kf.mul_add(6.931_152_3e-1, kf.mul_add(3.194_618_3e-5, log_m))
}

/// exp(x) for x ∈ [−15, 10], step for step `kl_exp` of kernels/kl.cu: k = rint(x·log2 e),
/// r = x − k·ln2 (two FMA steps), the degree-7 Taylor polynomial (Horner), times 2^k.
pub fn kl_exp(x: f32) -> f32 {
    let k = (x * 1.442_695).round_ties_even();
    let r = (-k).mul_add(6.931_152_3e-1, x);
    let r = (-k).mul_add(3.194_618_3e-5, r);
    let mut p = 1.984_127e-4_f32;
    for c in [1.388_888_9e-3_f32, 8.333_334e-3, 4.166_666_8e-2, 1.666_666_7e-1, 0.5, 1.0, 1.0] {
        p = p.mul_add(r, c);
    }
    p * f32::from_bits(((k as i32 + 127) as u32) << 23)
}

/// (cos θ, sin θ) of θ = 2π·a/2^24 for a 24-bit `a`, step for step `kl_sincos` of
/// kernels/kl.cu: exact quadrant reduction in integers, r = m·π/2^23 ∈ [−π/4, π/4), Taylor
/// polynomials in r² (sin to r⁹, cos to r¹⁰), the quadrant's swap and signs.
pub fn kl_sincos(a: u32) -> (f32, f32) {
    let mut q = a >> 22;
    let mut m = (a & 0x3f_ffff) as i32;
    if m >= 1 << 21 {
        m -= 1 << 22;
        q += 1;
    }
    let r = m as f32 * 3.745_070_4e-7;
    let r2 = r * r;
    let mut ps = 2.755_731_9e-6_f32;
    for c in [-1.984_127e-4_f32, 8.333_334e-3, -1.666_666_7e-1] {
        ps = ps.mul_add(r2, c);
    }
    let sr = (r * r2).mul_add(ps, r);
    let mut pc = -2.755_732e-7_f32;
    for c in [2.480_158_8e-5_f32, -1.388_888_9e-3, 4.166_666_8e-2, -0.5] {
        pc = pc.mul_add(r2, c);
    }
    let cr = r2.mul_add(pc, 1.0);
    let (cv, sv) = if q & 1 != 0 { (sr, cr) } else { (cr, sr) };
    let cos = if (q + 1) & 2 != 0 { -cv } else { cv };
    let sin = if q & 2 != 0 { -sv } else { sv };
    (cos, sin)
}

/// Two standard normals from two Philox words (Box–Muller): u = ((xa >> 8) + 1)·2^−24 ∈
/// [2^−24, 1], ρ = sqrt(−2·ln u), θ = 2π·(xb >> 8)·2^−24; (ρ·cos θ, ρ·sin θ).
pub fn box_muller(xa: u32, xb: u32) -> (f32, f32) {
    let u = ((xa >> 8) + 1) as f32 * 5.960_464_5e-8;
    let rho = (-2.0 * kl_log(u)).sqrt();
    let (c, s) = kl_sincos(xb >> 8);
    (rho * c, rho * s)
}

/// The four normals of Philox group `group` (flat elements 4·group .. 4·group + 3) under `seed`.
pub fn normals4(seed: u64, group: u64) -> [f32; 4] {
    let w = philox4x32_10([group as u32, (group >> 32) as u32, 0, 0], [seed as u32, (seed >> 32) as u32]);
    let (e0, e1) = box_muller(w[0], w[1]);
    let (e2, e3) = box_muller(w[2], w[3]);
    [e0, e1, e2, e3]
}

/// ε of flat output element `e` (= row·C + column) under `seed`.
pub fn normal(seed: u64, e: u64) -> f32 {
    normals4(seed, e / 4)[(e % 4) as usize]
}

/// logvar clamped to [[`LOGVAR_MIN`], [`LOGVAR_MAX`]], NaN kept (as torch.clamp).
pub fn clamp_logvar(logvar: f32) -> f32 {
    if logvar < LOGVAR_MIN {
        LOGVAR_MIN
    } else if logvar > LOGVAR_MAX {
        LOGVAR_MAX
    } else {
        logvar
    }
}

/// One sampled value: `fma(exp(clamp(logvar)/2), eps, mean)` in f32.
pub fn sample_value(mean: f32, logvar: f32, eps: f32) -> f32 {
    kl_exp(0.5 * clamp_logvar(logvar)).mul_add(eps, mean)
}

/// The bottleneck of `params` (`[n, 2·channels]`) into `out` (`[n, channels]`): the mean
/// (`seed` = None) or the reparameterized sample under `seed`. Returns the first row with a
/// mean (or, when sampling, a logvar) that is NaN or ±inf as `Err(row)`, after writing
/// every row.
pub fn kl_sample<T: FloatElement>(
    params: &[T],
    channels: usize,
    seed: Option<u64>,
    out: &mut [T],
) -> Result<(), usize> {
    assert!(channels > 0 && params.len() % (2 * channels) == 0, "params must be [n, 2·channels]");
    let n = params.len() / (2 * channels);
    assert_eq!(out.len(), n * channels, "out must be [n, channels]");
    let mut first_bad = None;
    for i in 0..n {
        let row = &params[i * 2 * channels..(i + 1) * 2 * channels];
        let (mean, logvar) = row.split_at(channels);
        let mut bad = false;
        for c in 0..channels {
            let m = mean[c].to_f32();
            bad |= !m.is_finite();
            let v = match seed {
                None => m,
                Some(seed) => {
                    let lv = logvar[c].to_f32();
                    bad |= !lv.is_finite();
                    sample_value(m, lv, normal(seed, (i * channels + c) as u64))
                }
            };
            out[i * channels + c] = T::from_f32(v);
        }
        if bad {
            first_bad.get_or_insert(i);
        }
    }
    first_bad.map_or(Ok(()), Err)
}
