//! LayerNorm and adaLN modulation on the CPU, in f64, written for obviousness:
//!
//! ```text
//! mean = Σ x_i / D        var = Σ (x_i − mean)² / D        (biased, as PyTorch's LayerNorm)
//! LN(x)_i = (x_i − mean) / sqrt(var + eps)
//! modulate:  y = LN(x) · (1 + scale[b]) + shift[b]     (DiT's adaLN, x [B, T, D])
//! affine:    y = LN(x) · weight + bias                  (ViT's LayerNorm; or y = LN(x))
//! ```
//! Each output is rounded once to f32, then to the element type. A row holding a NaN or an
//! infinity yields NaN in every element of its output (its mean or variance is NaN).

use crate::element::FloatElement;

/// Mean and biased variance of a row, two passes in f64.
pub fn row_stats(row: &[f64]) -> (f64, f64) {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var)
}

/// Normalizes one row of `x` into `out`: `out_j = LN(x)_j · g(j) + b(j)`.
fn norm_row<T: FloatElement>(x: &[T], eps: f32, out: &mut [T], gb: impl Fn(usize) -> (f64, f64)) {
    let row: Vec<f64> = x.iter().map(|v| v.to_f32() as f64).collect();
    let (mean, var) = row_stats(&row);
    let rstd = 1.0 / (var + eps as f64).sqrt();
    let any_non_finite = row.iter().any(|v| !v.is_finite());
    for (j, (o, &v)) in out.iter_mut().zip(&row).enumerate() {
        let (g, b) = gb(j);
        let y = if any_non_finite { f64::NAN } else { (v - mean) * rstd * g + b };
        *o = T::from_f32(y as f32);
    }
}

/// adaLN: `x` is `[batch, tokens, dim]` row-major; sample `b`'s shift and scale rows are
/// `shift[b·stride ..][..dim]` and `scale[b·stride ..][..dim]`. Writes `out` (`x`'s shape).
#[allow(clippy::too_many_arguments)]
pub fn modulate<T: FloatElement>(
    x: &[T],
    batch: usize,
    tokens: usize,
    dim: usize,
    shift: &[T],
    scale: &[T],
    stride: usize,
    eps: f32,
    out: &mut [T],
) {
    for b in 0..batch {
        let sh = &shift[b * stride..b * stride + dim];
        let sc = &scale[b * stride..b * stride + dim];
        for t in 0..tokens {
            let r = (b * tokens + t) * dim;
            norm_row(&x[r..r + dim], eps, &mut out[r..r + dim], |j| {
                (1.0 + sc[j].to_f32() as f64, sh[j].to_f32() as f64)
            });
        }
    }
}

/// LayerNorm of the rows of `x` (`[rows, dim]`), with `affine = Some((weight, bias))`
/// (`[dim]` each) or without. Writes `out` (`x`'s shape).
pub fn layer_norm<T: FloatElement>(x: &[T], dim: usize, affine: Option<(&[T], &[T])>, eps: f32, out: &mut [T]) {
    for (xr, or) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        norm_row(xr, eps, or, |j| match affine {
            Some((w, b)) => (w[j].to_f32() as f64, b[j].to_f32() as f64),
            None => (1.0, 0.0),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_a_small_row() {
        let (m, v) = row_stats(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert_eq!(v, 1.25);
    }

    #[test]
    fn constant_row_is_shift() {
        let x = [3.0f32; 5];
        let mut out = [0.0f32; 5];
        modulate(&x, 1, 1, 5, &[0.5; 5], &[2.0; 5], 5, 1e-6, &mut out);
        assert_eq!(out, [0.5; 5]);
    }
}
