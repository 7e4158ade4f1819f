//! The conditioning embeddings of a DiT on the CPU, written for obviousness.
//!
//! Timestep embedding (diffusers' `get_timestep_embedding` with `flip_sin_to_cos=True` and
//! `downscale_freq_shift` = `shift`; shift 0 is DiT's `timestep_embedding`, shift 1 diffusers'
//! DiT `CombinedTimestepLabelEmbeddings`), for `t [B]` and `dim`:
//!
//! ```text
//! half   = dim / 2,   c = −ln(max_period) rounded to f32,   divisor = half − shift ≥ 1
//! freq_i = exp(fl(fl(c·i) / divisor))       (f32, PyTorch's order; exp = frequency_exp)
//! arg_i  = fl(t · freq_i)                   (f32)
//! out[b] = [cos(arg_0..), sin(arg_0..), 0 if dim is odd]
//! ```
//!
//! The frequency is the one f32 step the kernels must reproduce bit for bit (so that every
//! backend takes the sine of the same f32 argument): [`frequency_exp`] is exp as the exact
//! sequence of correctly rounded f32 operations that kernels/embedding.cu's `emb_exp`
//! performs (within 1 ulp of exp). The sinusoid is then evaluated in f64 from that f32
//! argument and rounded to f32, then to the output type.
//!
//! Label embedding: `out[b, :] = table[labels[b], :]` for a table `[num_classes + 1, dim]`
//! whose last row is the "null" class of classifier-free guidance.

use crate::element::FloatElement;

/// `−ln(max_period)` rounded to f32, the scale of the frequency exponents (PyTorch
/// computes `-math.log(max_period)` in double and multiplies an f32 tensor by it).
pub fn neg_log_max_period(max_period: f64) -> f32 {
    (-max_period.ln()) as f32
}

/// exp(e) in f32, step for step `emb_exp` of kernels/embedding.cu (both must change
/// together): clamp to [−104, 89], k = rint(e·log2 e), r = e − k·ln2 in two FMA steps
/// (Cody–Waite), the degree-7 Taylor polynomial of exp(r) in Horner form, then two exact
/// power-of-two scalings by 2^(k>>1) and 2^(k − (k>>1)).
pub fn frequency_exp(e: f32) -> f32 {
    let e = e.max(-104.0).min(89.0);
    let k = (e * 1.442_695_022e+00_f32).round_ties_even();
    let r = (-k).mul_add(6.931_457_520e-01_f32, e);
    let r = (-k).mul_add(1.428_606_765e-06_f32, r);
    let mut p = 1.984_127_011e-04_f32;
    for c in [1.388_888_923e-03_f32, 8.333_333_768e-03, 4.166_666_791e-02, 1.666_666_716e-01, 0.5, 1.0, 1.0] {
        p = p.mul_add(r, c);
    }
    let k = k as i32;
    let (k1, k2) = (k >> 1, k - (k >> 1));
    let pow2 = |n: i32| f32::from_bits(((n + 127) as u32) << 23);
    p * pow2(k1) * pow2(k2)
}

/// Frequency `i` with divisor `divisor` (`half − downscale_freq_shift`; `half` for DiT):
/// `frequency_exp(fl(fl(c·i) / divisor))`, `c` from [`neg_log_max_period`].
pub fn frequency(i: usize, divisor: usize, neg_log_max_period: f32) -> f32 {
    frequency_exp(neg_log_max_period * i as f32 / divisor as f32)
}

/// The timestep embedding of `t` into `out` (`[t.len(), dim]`, row-major), DiT's
/// (`downscale_freq_shift` = 0): [`timestep_embedding_shifted`] with shift 0.
pub fn timestep_embedding<T: FloatElement>(t: &[f32], dim: usize, max_period: f64, out: &mut [T]) -> Result<(), usize> {
    timestep_embedding_shifted(t, dim, max_period, 0, out)
}

/// The timestep embedding of `t` into `out` (`[t.len(), dim]`, row-major) with diffusers'
/// `downscale_freq_shift` (frequency divisor `dim / 2 − downscale_freq_shift`). Returns the
/// first row whose `t` is not finite or whose argument `t·freq_i` overflows as `Err(row)`;
/// every row is written (cos/sin of each argument, NaN where it is not finite).
///
/// Panics when `dim` ≥ 2 and `dim / 2 − downscale_freq_shift` < 1 (the kernel wrapper
/// rejects that, and any nonzero shift with `dim` < 2·(shift + 1), as an invalid argument);
/// with `dim` < 2 there are no frequencies.
pub fn timestep_embedding_shifted<T: FloatElement>(
    t: &[f32],
    dim: usize,
    max_period: f64,
    downscale_freq_shift: usize,
    out: &mut [T],
) -> Result<(), usize> {
    assert_eq!(out.len(), t.len() * dim, "out must be [t.len(), dim]");
    let half = dim / 2;
    let divisor = half.saturating_sub(downscale_freq_shift);
    assert!(half == 0 || divisor >= 1, "downscale_freq_shift {downscale_freq_shift} ≥ dim / 2 = {half}");
    let c = neg_log_max_period(max_period);
    let freqs: Vec<f32> = (0..half).map(|i| frequency(i, divisor, c)).collect();
    let mut first_bad = None;
    for (b, (&tb, row)) in t.iter().zip(out.chunks_mut(dim.max(1))).enumerate() {
        let mut bad = !tb.is_finite();
        for (i, &f) in freqs.iter().enumerate() {
            let arg = tb * f;
            bad |= !arg.is_finite();
            row[i] = T::from_f32((arg as f64).cos() as f32);
            row[half + i] = T::from_f32((arg as f64).sin() as f32);
        }
        if dim % 2 == 1 {
            row[dim - 1] = T::from_f32(0.0);
        }
        if bad {
            first_bad.get_or_insert(b);
        }
    }
    first_bad.map_or(Ok(()), Err)
}

/// The label embedding: row `labels[b]` of `table` (`[num_classes + 1, dim]`) into row `b`
/// of `out`. A label above `num_classes` gives a zero row; the first such row is returned
/// as `Err(row)` after every row is written.
pub fn label_embedding<T: FloatElement>(
    labels: &[u32],
    table: &[T],
    num_classes: usize,
    dim: usize,
    out: &mut [T],
) -> Result<(), usize> {
    assert_eq!(table.len(), (num_classes + 1) * dim, "table must be [num_classes + 1, dim]");
    assert_eq!(out.len(), labels.len() * dim, "out must be [labels.len(), dim]");
    let mut first_bad = None;
    for (b, &label) in labels.iter().enumerate() {
        let row = &mut out[b * dim..(b + 1) * dim];
        let label = label as usize;
        if label <= num_classes {
            row.copy_from_slice(&table[label * dim..(label + 1) * dim]);
        } else {
            row.fill(T::from_f32(0.0));
            first_bad.get_or_insert(b);
        }
    }
    first_bad.map_or(Ok(()), Err)
}
