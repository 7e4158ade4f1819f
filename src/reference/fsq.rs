//! FSQ on the CPU, written to be obviously the formula of vector-quantize-pytorch:
//!
//! ```text
//! half_l  = (L − 1)(1 + 1e-3) / 2          offset = 0.5 if L even else 0
//! shift   = atanh(offset / half_l)          bounded = tanh(z + shift)·half_l − offset
//! code    = round_half_even(bounded)        value   = code / (L div 2)
//! index   = Σ_j (code_j + L_j div 2)·basis_j, basis_j = L_0·…·L_{j−1}
//! ```
//! Every step in f32, rounded after each operation, like PyTorch's elementwise ops;
//! tanh is the correctly rounded f32 tanh (computed in f64), which PyTorch's CPU tanh
//! matches on all but ~0.06% of inputs.

use crate::element::FloatElement;

/// Per-dimension constants in f32, exactly as PyTorch derives them from int32 levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DimConstants {
    /// `(L − 1)(1 + 1e-3) / 2`.
    pub half_l: f32,
    /// 0.5 for an even `L`, else 0.
    pub offset: f32,
    /// `atanh(offset / half_l)`.
    pub shift: f32,
    /// `L div 2`.
    pub half_width: i32,
}

/// The constants of one dimension with `level` levels.
pub fn dim_constants(level: u32) -> DimConstants {
    let eps = 1e-3_f32;
    let half_l = ((level - 1) as f32 * (1.0 + eps)) / 2.0;
    let offset = if level % 2 == 0 { 0.5_f32 } else { 0.0 };
    let shift = (offset / half_l).atanh();
    DimConstants { half_l, offset, shift, half_width: (level / 2) as i32 }
}

/// The code of one latent value, or `None` for NaN (which has no code).
pub fn quantize_value(z: f32, c: &DimConstants) -> Option<i32> {
    if z.is_nan() {
        return None;
    }
    // tanh correctly rounded to f32 (via f64). The kernels' thresholds are computed from
    // this very function (src/kernels/fsq_thresholds.rs).
    let t = ((z + c.shift) as f64).tanh() as f32;
    let bounded = t * c.half_l - c.offset;
    Some(bounded.round_ties_even() as i32)
}

/// `basis_j = L_0 · … · L_{j−1}`.
pub fn basis(levels: &[u32]) -> Vec<u32> {
    let mut b = Vec::with_capacity(levels.len());
    let mut acc = 1u32;
    for &l in levels {
        b.push(acc);
        acc = acc.wrapping_mul(l);
    }
    b
}

/// Quantizes `z` (`[n, d]`, d = levels.len()). Returns the first row holding a NaN as
/// `Err(row)`; rows before it are fully written.
pub fn quantize<T: FloatElement>(
    levels: &[u32],
    z: &[T],
    codes: &mut [i32],
    values: &mut [T],
    indices: &mut [u32],
) -> Result<(), usize> {
    let d = levels.len();
    let consts: Vec<DimConstants> = levels.iter().map(|&l| dim_constants(l)).collect();
    let basis = basis(levels);
    let mut first_nan = None;
    for row in 0..indices.len() {
        let mut index = 0u32;
        for j in 0..d {
            let c = &consts[j];
            let code = match quantize_value(z[row * d + j].to_f32(), c) {
                Some(code) => code,
                None => {
                    first_nan.get_or_insert(row);
                    0
                }
            };
            codes[row * d + j] = code;
            values[row * d + j] = T::from_f32(code as f32 / c.half_width as f32);
            index += (code + c.half_width) as u32 * basis[j];
        }
        indices[row] = index;
    }
    first_nan.map_or(Ok(()), Err)
}

/// Decodes `indices` into codes and values. Returns the first out-of-range index's row
/// as `Err(row)`.
pub fn dequantize<T: FloatElement>(
    levels: &[u32],
    indices: &[u32],
    codes: &mut [i32],
    values: &mut [T],
) -> Result<(), usize> {
    let d = levels.len();
    let size: u64 = levels.iter().map(|&l| l as u64).product();
    let mut first_bad = None;
    for (row, &index) in indices.iter().enumerate() {
        let mut rest = if (index as u64) < size {
            index
        } else {
            first_bad.get_or_insert(row);
            0
        };
        for j in 0..d {
            let half_width = (levels[j] / 2) as i32;
            let code = (rest % levels[j]) as i32 - half_width;
            rest /= levels[j];
            codes[row * d + j] = code;
            values[row * d + j] = T::from_f32(code as f32 / half_width as f32);
        }
    }
    first_bad.map_or(Ok(()), Err)
}
