//! Patch embedding (`Conv2d(kernel = stride = p)` + flatten + position embedding) and
//! unpatchify (final projection folded back into an image) of `kernels/patchify.cu`, in f64,
//! written as the literal convolution loop.

use crate::element::FloatElement;

/// The geometry of a patch embedding or of an unpatchify.
///
/// Images are `[batch, height, width, channels]` (NHWC) and latents `[batch, channels,
/// height, width]` (NCHW); the token grid is `(height / patch) × (width / patch)`, token
/// `t = hy·(width / patch) + wx`. `dim` is the token width: the output features `D` of a
/// patch embedding, the input features `K` of an unpatchify's projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchShape {
    /// Images or latents in the batch (B).
    pub batch: usize,
    /// Channels (C).
    pub channels: usize,
    /// Height in pixels (H), a multiple of `patch`.
    pub height: usize,
    /// Width in pixels (W), a multiple of `patch`.
    pub width: usize,
    /// Patch side (p).
    pub patch: usize,
    /// Token width: D for a patch embedding, K for an unpatchify.
    pub dim: usize,
}

impl PatchShape {
    /// Patches per image row (W / p).
    pub fn grid_w(&self) -> usize {
        self.width / self.patch
    }
    /// Patch rows (H / p).
    pub fn grid_h(&self) -> usize {
        self.height / self.patch
    }
    /// Tokens per sample, T = (H / p)·(W / p).
    pub fn tokens(&self) -> usize {
        self.grid_h() * self.grid_w()
    }
    /// Columns of a patch, C·p·p (the GEMM's k for a patch embedding, its n for an unpatchify).
    pub fn patch_len(&self) -> usize {
        self.channels * self.patch * self.patch
    }
}

/// A pixel normalized as torch does it in f32: `(v / 255 − mean) / std`, each step rounded.
pub fn normalize_pixel(v: u8, mean: f32, std: f32) -> f32 {
    (v as f32 / 255.0 - mean) / std
}

/// The convolution with stride = kernel = p, flattened to tokens:
/// `out[b, t, d] = bias[d] + Σ_{c, i, j} pixel(b, c, hy·p + i, wx·p + j)·weight[d, c, i, j]
/// (+ pos[t, d])`, in f64, rounded once to T. `weight [D, C, p, p]`, `out [B, T, D]`.
pub fn patch_embed<T: FloatElement>(
    pixel: impl Fn(usize, usize, usize, usize) -> f64,
    weight: &[T],
    bias: &[T],
    pos: Option<&[T]>,
    s: &PatchShape,
    out: &mut [T],
) {
    let (p, c_n, d_n, t_n) = (s.patch, s.channels, s.dim, s.tokens());
    for b in 0..s.batch {
        for hy in 0..s.grid_h() {
            for wx in 0..s.grid_w() {
                let t = hy * s.grid_w() + wx;
                for d in 0..d_n {
                    let mut acc = 0.0f64;
                    for c in 0..c_n {
                        for i in 0..p {
                            for j in 0..p {
                                let w = weight[((d * c_n + c) * p + i) * p + j].to_f32() as f64;
                                acc += pixel(b, c, hy * p + i, wx * p + j) * w;
                            }
                        }
                    }
                    acc += bias[d].to_f32() as f64;
                    if let Some(pos) = pos {
                        acc += pos[t * d_n + d].to_f32() as f64;
                    }
                    out[(b * t_n + t) * d_n + d] = T::from_f32(acc as f32);
                }
            }
        }
    }
}

/// Patch embedding of latents `x [B, C, H, W]` (NCHW).
pub fn patchify_latents<T: FloatElement>(
    x: &[T],
    weight: &[T],
    bias: &[T],
    pos: Option<&[T]>,
    s: &PatchShape,
    out: &mut [T],
) {
    let (c_n, h, w) = (s.channels, s.height, s.width);
    let pixel = |b: usize, c: usize, y: usize, xx: usize| x[((b * c_n + c) * h + y) * w + xx].to_f32() as f64;
    patch_embed(pixel, weight, bias, pos, s, out);
}

/// Patch embedding of u8 images `[B, H, W, C]` (NHWC): each pixel normalized by
/// [`normalize_pixel`] and rounded to T (the kernel's operand type), then [`patch_embed`].
#[allow(clippy::too_many_arguments)]
pub fn patchify_image<T: FloatElement>(
    image: &[u8],
    mean: &[f32],
    std: &[f32],
    weight: &[T],
    bias: &[T],
    pos: Option<&[T]>,
    s: &PatchShape,
    out: &mut [T],
) {
    let (c_n, h, w) = (s.channels, s.height, s.width);
    let pixel = |b: usize, c: usize, y: usize, x: usize| {
        let v = image[((b * h + y) * w + x) * c_n + c];
        T::from_f32(normalize_pixel(v, mean[c], std[c])).to_f32() as f64
    };
    patch_embed(pixel, weight, bias, pos, s, out);
}

/// The final projection `proj[r, n] = bias[n] + Σ_k tokens[r, k]·weight[n, k]` (f64) of token
/// row r, for each pixel: `f(b, c, y, x, value)` with DiT's fold — column
/// `n = (pi·p + qj)·C + c` of token `hy·gw + wx` is pixel `(c, hy·p + pi, wx·p + qj)`.
fn unpatchify_each<T: FloatElement>(
    tokens: &[T],
    weight: &[T],
    bias: &[T],
    s: &PatchShape,
    mut f: impl FnMut(usize, usize, usize, usize, f64),
) {
    let (p, c_n, k_n, t_n) = (s.patch, s.channels, s.dim, s.tokens());
    for b in 0..s.batch {
        for c in 0..c_n {
            for y in 0..s.height {
                for x in 0..s.width {
                    let (hy, pi, wx, qj) = (y / p, y % p, x / p, x % p);
                    let row = b * t_n + hy * s.grid_w() + wx;
                    let col = (pi * p + qj) * c_n + c;
                    let mut acc = bias[col].to_f32() as f64;
                    for k in 0..k_n {
                        acc += tokens[row * k_n + k].to_f32() as f64 * weight[col * k_n + k].to_f32() as f64;
                    }
                    f(b, c, y, x, acc);
                }
            }
        }
    }
}

/// Tokens `[B·T, K]` · `weight [p·p·C, K]ᵀ + bias` folded to latents `[B, C, H, W]`.
pub fn unpatchify_latents<T: FloatElement>(tokens: &[T], weight: &[T], bias: &[T], s: &PatchShape, out: &mut [T]) {
    let (c_n, h, w) = (s.channels, s.height, s.width);
    unpatchify_each(tokens, weight, bias, s, |b, c, y, x, v| {
        out[((b * c_n + c) * h + y) * w + x] = T::from_f32(v as f32);
    });
}

/// The same folded to u8 images `[B, H, W, C]`: the value v (rounded to f32) is denormalized
/// as `fma(v, std[c], mean[c])` in f32, scaled by 255 (f32), rounded to nearest even and
/// clamped to [0, 255] (NaN → 0).
#[allow(clippy::too_many_arguments)]
pub fn unpatchify_image<T: FloatElement>(
    tokens: &[T],
    weight: &[T],
    bias: &[T],
    mean: &[f32],
    std: &[f32],
    s: &PatchShape,
    out: &mut [u8],
) {
    let (c_n, h, w) = (s.channels, s.height, s.width);
    unpatchify_each(tokens, weight, bias, s, |b, c, y, x, v| {
        out[((b * h + y) * w + x) * c_n + c] = to_u8((v as f32).mul_add(std[c], mean[c]));
    });
}

/// A value in units of the [0, 1] range as a byte: ×255, round half to even, clamp, NaN → 0.
pub fn to_u8(unit: f32) -> u8 {
    let scaled = (unit * 255.0).round_ties_even();
    if scaled.is_nan() {
        0
    } else {
        scaled.clamp(0.0, 255.0) as u8
    }
}

/// The fixed 2-D sin-cos position embedding `[grid_h·grid_w, dim]` at integer positions
/// (MAE / DiT; diffusers' `get_2d_sincos_pos_embed_from_grid` on the integer grid), computed
/// in f64 and rounded to f32. With q = dim / 4 and `w_k = 1 / 10000^(k/q)`, token
/// `t = i·grid_w + j`: `[sin(j·w), cos(j·w), sin(i·w), cos(i·w)]` (the first half encodes the
/// column j, the second half the row i). `dim` must be a multiple of 4.
pub fn sincos_pos_embed_2d(dim: usize, grid_h: usize, grid_w: usize) -> Vec<f32> {
    let q = dim / 4;
    let mut out = vec![0.0f32; grid_h * grid_w * dim];
    for i in 0..grid_h {
        for j in 0..grid_w {
            let row = &mut out[(i * grid_w + j) * dim..][..dim];
            for k in 0..q {
                let omega = 1.0 / 10000f64.powf(k as f64 / q as f64);
                let (a, b) = (j as f64 * omega, i as f64 * omega);
                row[k] = a.sin() as f32;
                row[q + k] = a.cos() as f32;
                row[2 * q + k] = b.sin() as f32;
                row[3 * q + k] = b.cos() as f32;
            }
        }
    }
    out
}
