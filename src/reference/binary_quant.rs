//! LFQ and BSQ on the CPU, written to be obviously the definitions (computed in f64):
//!
//! ```text
//! bit_i   = z_i > 0                                   (0, −0 and NaN give 0)
//! LFQ:  value_i = bit_i ? +1 : −1                     sq_error = Σ_i (z_i − value_i)²
//! BSQ:  u = z / ‖z‖₂ (u = 0 for a zero row)
//!       value_i = (bit_i ? +1 : −1) / √d              sq_error = Σ_i (u_i − value_i)²
//! index of group g = Σ_{i in group g} bit_i · 2^(i − g·group_bits),
//!       group g = dims g·group_bits .. min(d, (g+1)·group_bits) − 1
//! ```
//! For BSQ, u_i > 0 exactly when z_i > 0 (the norm is positive and finite), so the bits
//! are the signs of u. The output values are `±1/√d` rounded to f32, then to the dtype
//! (the only rounding path an element type offers; the kernels round the same way); the
//! error uses the exact `1/√d`.
//!
//! A row with a NaN (either op) or an infinite entry (BSQ: no finite normalization) is
//! invalid: its sq_error is NaN, its bits, indices and values are still those of the
//! signs, and the first such row is returned as `Err(row)` after every row is written.

use crate::element::FloatElement;

/// Number of index groups `G = ceil(dim / group_bits)`.
pub fn groups(dim: usize, group_bits: u32) -> usize {
    dim.div_ceil(group_bits as usize)
}

/// The group indices of one row's bits (`indices.len() = groups(bits.len(), group_bits)`).
pub fn group_indices(bits: &[bool], group_bits: u32, indices: &mut [u32]) {
    let gb = group_bits as usize;
    for (g, index) in indices.iter_mut().enumerate() {
        let group = &bits[g * gb..((g + 1) * gb).min(bits.len())];
        *index = 0;
        for (j, &bit) in group.iter().enumerate() {
            // dim i = g·group_bits + j contributes bit_i · 2^j
            if bit {
                *index += 1 << j;
            }
        }
    }
}

/// The f32 value scale `1/√d` of BSQ (the kernels receive the same constant).
pub fn bsq_scale(dim: usize) -> f32 {
    (1.0 / (dim as f64).sqrt()) as f32
}

/// LFQ of `z` (`[n, dim]`) into `indices [n, G]`, `values [n, dim]`, `sq_error [n]`.
pub fn lfq<T: FloatElement>(
    dim: usize,
    group_bits: u32,
    z: &[T],
    indices: &mut [u32],
    values: &mut [T],
    sq_error: &mut [f32],
) -> Result<(), usize> {
    quantize(false, dim, group_bits, z, indices, values, sq_error)
}

/// BSQ of `z` (`[n, dim]`) into `indices [n, G]`, `values [n, dim]`, `sq_error [n]`.
pub fn bsq<T: FloatElement>(
    dim: usize,
    group_bits: u32,
    z: &[T],
    indices: &mut [u32],
    values: &mut [T],
    sq_error: &mut [f32],
) -> Result<(), usize> {
    quantize(true, dim, group_bits, z, indices, values, sq_error)
}

fn quantize<T: FloatElement>(
    spherical: bool,
    dim: usize,
    group_bits: u32,
    z: &[T],
    indices: &mut [u32],
    values: &mut [T],
    sq_error: &mut [f32],
) -> Result<(), usize> {
    let g = groups(dim, group_bits);
    let mut first_bad = None;
    for row in 0..sq_error.len() {
        let x: Vec<f64> = z[row * dim..(row + 1) * dim].iter().map(|v| v.to_f32() as f64).collect();
        let bad = if spherical { x.iter().any(|v| !v.is_finite()) } else { x.iter().any(|v| v.is_nan()) };

        let bits: Vec<bool> = x.iter().map(|&v| v > 0.0).collect();
        let (u, scale): (Vec<f64>, f64) = if spherical {
            let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let u = x.iter().map(|&v| if norm > 0.0 { v / norm } else { 0.0 }).collect();
            (u, 1.0 / (dim as f64).sqrt())
        } else {
            (x.clone(), 1.0)
        };
        let out_scale = if spherical { bsq_scale(dim) } else { 1.0 };

        let mut err = 0.0f64;
        for i in 0..dim {
            let sign = if bits[i] { 1.0 } else { -1.0 };
            values[row * dim + i] = T::from_f32(sign as f32 * out_scale);
            err += (u[i] - sign * scale).powi(2);
        }
        sq_error[row] = if bad { f32::NAN } else { err as f32 };
        group_indices(&bits, group_bits, &mut indices[row * g..(row + 1) * g]);
        if bad {
            first_bad.get_or_insert(row);
        }
    }
    first_bad.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_example() {
        // bits 1 0 1 0 0 1 1; groups of 3: dims 0-2 → 0b101, 3-5 → 0b100, 6 → 0b1.
        let z = [1.0f32, -1.0, 2.0, 0.0, -0.0, 0.5, 3.0];
        let (mut idx, mut val, mut err) = ([0u32; 3], [0f32; 7], [0f32; 1]);
        lfq(7, 3, &z, &mut idx, &mut val, &mut err).unwrap();
        assert_eq!(idx, [5, 4, 1]);
        assert_eq!(val, [1.0, -1.0, 1.0, -1.0, -1.0, 1.0, 1.0]);
        // (1−1)² + (−1+1)² + (2−1)² + (0+1)² + (0+1)² + (0.5−1)² + (3−1)² = 7.25
        assert_eq!(err[0], 7.25);

        // BSQ of a zero row: all −1/√d, error 1.
        let z = [0.0f32; 4];
        let (mut idx, mut val, mut err) = ([9u32; 2], [0f32; 4], [0f32; 1]);
        bsq(4, 2, &z, &mut idx, &mut val, &mut err).unwrap();
        assert_eq!((idx, val, err), ([0, 0], [-0.5; 4], [1.0]));

        // BSQ of a vertex of the cube: no error.
        let z = [3.0f32, -3.0, 3.0, 3.0];
        bsq(4, 4, &z, &mut idx[..1], &mut val, &mut err).unwrap();
        assert_eq!((idx[0], val, err[0]), (0b1101, [0.5, -0.5, 0.5, 0.5], 0.0));
    }
}
