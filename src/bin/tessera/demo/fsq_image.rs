//! The `tessera fsq` demo: an image through FSQ and back, with a fixed transform.
//!
//! Transform (documented here once, used by the CLI and its tests):
//! 1. Pixels are RGB in [0, 1]; odd widths/heights are padded by repeating the last
//!    column/row (the padding is cropped away again).
//! 2. Each colour channel is cut into 2×2 blocks `[a b; c d]`, and each block becomes
//!    one 4-dimensional latent by the orthonormal 2×2 Haar transform:
//!    `LL = (a+b+c+d)/2 ∈ [0,2]`, `LH = (a−b+c−d)/2`, `HL = (a+b−c−d)/2`,
//!    `HH = (a−b−c+d)/2`, each detail in [−1, 1].
//! 3. Each coefficient is normalized to `u ∈ [−1, 1]`: `u₀ = LL − 1`, `u_k = detail_k /
//!    DETAIL_RANGE` (details beyond ±DETAIL_RANGE are clipped — the demo's one lossy
//!    choice besides quantization).
//! 4. The latent fed to FSQ is the pre-activation whose bounded value is `u·(L div 2)`:
//!    `z = atanh((u·(L div 2) + offset) / half_l) − shift`, so FSQ rounds `u·(L div 2)`
//!    to a code and returns `code / (L div 2) ≈ u`.
//! 5. Decoding inverts 3 and 2 on the normalized values and clips pixels to [0, 1].
//!
//! Bits per pixel = (latents × log2 Π L) / pixels = 3·log2(Π L) / 4.

use crate::error::{CliError as Error, Result};
use tessera::reference::fsq::dim_constants;
use tessera::Device;
use tessera::Fsq;

/// Latent dimension of the transform: the four Haar coefficients of a 2×2 block.
pub(crate) const LATENT_DIM: usize = 4;
/// Haar detail coefficients are normalized by this range (larger ones are clipped).
pub(crate) const DETAIL_RANGE: f32 = 0.5;

/// An RGB image with f32 samples in [0, 1], row-major, interleaved.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<[f32; 3]>,
}

/// What the demo measured.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    pub reconstruction: RgbImage,
    pub psnr_db: f64,
    pub bits_per_pixel: f64,
    pub latents: usize,
    /// Distinct tokens used / codebook size.
    pub distinct_tokens: usize,
}

/// Runs the transform, FSQ on `device`, and the inverse transform.
pub(crate) fn roundtrip(device: &Device, fsq: &Fsq, image: &RgbImage) -> Result<Report> {
    if fsq.dim() != LATENT_DIM {
        return Err(Error::invalid(
            "levels",
            format!("the demo's latents are the {LATENT_DIM} Haar coefficients of a 2×2 block: give {LATENT_DIM} levels, not {}", fsq.dim()),
        ));
    }
    if image.width == 0 || image.height == 0 {
        return Err(Error::invalid("image", "image has no pixels"));
    }
    let (bw, bh) = (image.width.div_ceil(2), image.height.div_ceil(2));
    let mut z = Vec::with_capacity(3 * bw * bh * LATENT_DIM);
    for ch in 0..3 {
        for by in 0..bh {
            for bx in 0..bw {
                let coeffs = normalized_haar(block(image, ch, bx, by));
                for (j, u) in coeffs.into_iter().enumerate() {
                    z.push(pre_activation(u, fsq.levels()[j]));
                }
            }
        }
    }
    let latents = device.upload(&z)?;
    let q = fsq.quantize(device, &latents)?;
    let values = q.values.download()?;
    let indices = q.indices.download()?;

    let mut out = RgbImage { width: image.width, height: image.height, pixels: vec![[0.0; 3]; image.pixels.len()] };
    for ch in 0..3 {
        for by in 0..bh {
            for bx in 0..bw {
                let at = ((ch * bh + by) * bw + bx) * LATENT_DIM;
                let u: [f32; 4] = values[at..at + LATENT_DIM].try_into().unwrap();
                let px = inverse_haar(u);
                for (k, (dx, dy)) in [(0, 0), (1, 0), (0, 1), (1, 1)].into_iter().enumerate() {
                    let (x, y) = (2 * bx + dx, 2 * by + dy);
                    if x < image.width && y < image.height {
                        out.pixels[y * image.width + x][ch] = px[k].clamp(0.0, 1.0);
                    }
                }
            }
        }
    }
    let mut distinct = indices.clone();
    distinct.sort_unstable();
    distinct.dedup();
    Ok(Report {
        psnr_db: psnr(image, &out),
        bits_per_pixel: (indices.len() as f64 * fsq.bits_per_token()) / (image.width * image.height) as f64,
        latents: indices.len(),
        distinct_tokens: distinct.len(),
        reconstruction: out,
    })
}

/// The 2×2 block (a, b, c, d) of channel `ch` at block (bx, by), edges repeated.
fn block(image: &RgbImage, ch: usize, bx: usize, by: usize) -> [f32; 4] {
    let at = |x: usize, y: usize| image.pixels[y.min(image.height - 1) * image.width + x.min(image.width - 1)][ch];
    let (x, y) = (2 * bx, 2 * by);
    [at(x, y), at(x + 1, y), at(x, y + 1), at(x + 1, y + 1)]
}

fn normalized_haar([a, b, c, d]: [f32; 4]) -> [f32; 4] {
    let ll = (a + b + c + d) / 2.0;
    let lh = (a - b + c - d) / 2.0;
    let hl = (a + b - c - d) / 2.0;
    let hh = (a - b - c + d) / 2.0;
    let detail = |v: f32| (v / DETAIL_RANGE).clamp(-1.0, 1.0);
    [ll - 1.0, detail(lh), detail(hl), detail(hh)]
}

fn inverse_haar(u: [f32; 4]) -> [f32; 4] {
    let ll = u[0] + 1.0;
    let (lh, hl, hh) = (u[1] * DETAIL_RANGE, u[2] * DETAIL_RANGE, u[3] * DETAIL_RANGE);
    [(ll + lh + hl + hh) / 2.0, (ll - lh + hl - hh) / 2.0, (ll + lh - hl - hh) / 2.0, (ll - lh - hl + hh) / 2.0]
}

/// The latent whose FSQ-bounded value is `u·(L div 2)` (kept strictly inside the bound).
fn pre_activation(u: f32, level: u32) -> f32 {
    let c = dim_constants(level);
    let lo = -c.half_l - c.offset;
    let hi = c.half_l - c.offset;
    let margin = 1e-3 * c.half_l;
    let target = (u * c.half_width as f32).clamp(lo + margin, hi - margin);
    ((target + c.offset) / c.half_l).atanh() - c.shift
}

/// Peak signal-to-noise ratio over all channels, peak 1.0.
pub(crate) fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    let mut se = 0.0f64;
    for (p, q) in a.pixels.iter().zip(&b.pixels) {
        for ch in 0..3 {
            let diff = p[ch] as f64 - q[ch] as f64;
            se += diff * diff;
        }
    }
    let mse = se / (3 * a.pixels.len()) as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (1.0 / mse).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haar_inverts() {
        let px = [0.4, 0.6, 0.5, 0.75];
        // No detail exceeds DETAIL_RANGE here, so nothing is clipped.
        let back = inverse_haar(normalized_haar(px));
        for (a, b) in px.iter().zip(back) {
            assert!((a - b).abs() < 1e-6, "{px:?} -> {back:?}");
        }
    }

    #[test]
    fn fine_levels_reconstruct_well_and_coarse_ones_worse() {
        let (w, h) = (37, 21); // odd sizes exercise the padding
        let pixels = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 / w as f32, (i / w) as f32 / h as f32);
                [x, y, 0.5 + 0.4 * (6.0 * x).sin() * (4.0 * y).cos()]
            })
            .collect();
        let img = RgbImage { width: w, height: h, pixels };
        let device = Device::cpu();
        let fine = roundtrip(&device, &Fsq::new(&[255, 31, 31, 31]).unwrap(), &img).unwrap();
        let coarse = roundtrip(&device, &Fsq::new(&[8, 5, 5, 5]).unwrap(), &img).unwrap();
        assert!(fine.psnr_db > 38.0, "fine PSNR {}", fine.psnr_db);
        assert!(coarse.psnr_db > 20.0 && coarse.psnr_db < fine.psnr_db, "coarse PSNR {}", coarse.psnr_db);
        assert_eq!(coarse.latents, 3 * 19 * 11);
        assert!(roundtrip(&device, &Fsq::new(&[8, 5, 5]).unwrap(), &img).is_err());
    }
}
