//! The `tessera vq` demo: a k-means codebook of image patches, and images through it.
//!
//! 1. Every image is cut into non-overlapping `patch × patch` RGB patches, left to right,
//!    top to bottom; a partial patch at the right or bottom edge is padded by repeating the
//!    last column/row (the padding is cropped away again).
//! 2. A patch's latent is its pixels in [0, 1], `dim = 3·patch²` values, row by row, pixel by
//!    pixel, R G B within a pixel.
//! 3. One codebook of `K` entries is fitted with k-means ([`fit_codebook`], squared L2) to
//!    the patches of all the images together.
//! 4. Each image is tokenized (nearest entry per patch) and rebuilt from the chosen entries,
//!    pixels clipped to [0, 1].
//!
//! Reported per image: PSNR (peak 1.0), bits per pixel = tokens · log2(K) / pixels, and
//! codebook usage (distinct entries used / K, and the perplexity of the image's tokens).

use crate::demo::fsq_image::{psnr, RgbImage};
use crate::error::{CliError as Error, Result};
use tessera::{fit_codebook, KmeansOptions, KmeansProgress};
use tessera::{Codebook, Metric, SearchOptions};
use tessera::{Device, FloatElement};

/// What [`fit`] fits; also the k-means options of `tessera vq` and `tessera fit`.
#[derive(Clone, Copy, Debug, clap::Args)]
pub(crate) struct VqImageOptions {
    /// Codebook entries K (at most the number of patches of all images; a token is
    /// ⌈log2 K⌉ bits).
    #[arg(long, default_value_t = 4096)]
    pub codebook_size: usize,
    /// Patch side in pixels (a token per patch × patch pixels).
    #[arg(long, default_value_t = 4)]
    pub patch: usize,
    /// k-means iterations.
    #[arg(long, default_value_t = 10)]
    pub iterations: usize,
    /// Seed of the k-means++ seeding and of the reseeding of unused entries.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// What [`run`] measured on one image.
#[derive(Clone, Debug)]
pub(crate) struct ImageReport {
    pub reconstruction: RgbImage,
    pub psnr_db: f64,
    pub bits_per_pixel: f64,
    /// Patches (tokens) of the image.
    pub tokens: usize,
    /// Distinct codebook entries among its tokens.
    pub distinct_entries: usize,
    /// `exp(entropy)` of its token histogram.
    pub perplexity: f64,
}

/// Patches across and down: `⌈width / patch⌉ × ⌈height / patch⌉`.
pub(crate) fn patch_grid(image: &RgbImage, patch: usize) -> (usize, usize) {
    (image.width.div_ceil(patch), image.height.div_ceil(patch))
}

/// The `[tokens, 3·patch²]` latents of `image` (steps 1 and 2 of the module documentation).
pub(crate) fn patches(image: &RgbImage, patch: usize) -> Vec<f32> {
    let (gw, gh) = patch_grid(image, patch);
    let mut out = Vec::with_capacity(gw * gh * 3 * patch * patch);
    for py in 0..gh {
        for px in 0..gw {
            for dy in 0..patch {
                let y = (py * patch + dy).min(image.height - 1);
                for dx in 0..patch {
                    let x = (px * patch + dx).min(image.width - 1);
                    out.extend_from_slice(&image.pixels[y * image.width + x]);
                }
            }
        }
    }
    out
}

/// The inverse of [`patches`] for a `width × height` image: padding dropped, pixels clipped.
pub(crate) fn from_patches(latents: &[f32], width: usize, height: usize, patch: usize) -> RgbImage {
    let gw = width.div_ceil(patch);
    let mut pixels = vec![[0.0f32; 3]; width * height];
    for (t, latent) in latents.chunks(3 * patch * patch).enumerate() {
        let (px, py) = (t % gw, t / gw);
        for dy in 0..patch {
            for dx in 0..patch {
                let (x, y) = (px * patch + dx, py * patch + dy);
                if x < width && y < height {
                    let at = 3 * (dy * patch + dx);
                    pixels[y * width + x] = [0, 1, 2].map(|c| latent[at + c].clamp(0.0, 1.0));
                }
            }
        }
    }
    RgbImage { width, height, pixels }
}

/// Fits one codebook to the patches of `images` together on `device` in dtype `T` (steps
/// 1–3 of the module documentation). `progress` is called after each k-means iteration.
///
/// Errors: `patch = 0`; no image, or an image without pixels; `codebook_size` 0 or larger
/// than the number of patches of all images (argument `codebook-size`).
pub(crate) fn fit<T: FloatElement>(
    device: &Device,
    images: &[RgbImage],
    options: &VqImageOptions,
    progress: &mut dyn FnMut(&KmeansProgress),
) -> Result<Codebook<T>> {
    let (k, p) = (options.codebook_size, options.patch);
    if p == 0 {
        return Err(Error::invalid("patch", "a patch is at least 1 pixel wide"));
    }
    if images.is_empty() {
        return Err(Error::invalid("images", "give at least one image"));
    }
    if images.iter().any(|im| im.width == 0 || im.height == 0) {
        return Err(Error::invalid("images", "an image has no pixels"));
    }
    let dim = 3 * p * p;
    let latents: Vec<T> = images.iter().flat_map(|im| patches(im, p)).map(T::from_f32).collect();
    let total = latents.len() / dim;
    if k == 0 || k > total {
        return Err(Error::invalid(
            "codebook-size",
            format!("{k} entries for {total} patches of {p}×{p}: the codebook size must be between 1 and the number of patches"),
        ));
    }
    let data = device.upload(&latents)?;
    let kmeans =
        KmeansOptions { dim, k, iterations: options.iterations, seed: options.seed, metric: Metric::SquaredL2 };
    Ok(fit_codebook(device, &data, &kmeans, progress)?)
}

/// Fits one codebook to the patches of `images` ([`fit`]) and runs every image through it.
pub(crate) fn run<T: FloatElement>(
    device: &Device,
    images: &[RgbImage],
    options: &VqImageOptions,
    progress: &mut dyn FnMut(&KmeansProgress),
) -> Result<Vec<ImageReport>> {
    let codebook = fit::<T>(device, images, options, progress)?;
    let (k, p, dim) = (options.codebook_size, options.patch, 3 * options.patch * options.patch);
    let latents: Vec<Vec<T>> = images.iter().map(|im| patches(im, p).into_iter().map(T::from_f32).collect()).collect();

    let search = SearchOptions { distances: false, ..SearchOptions::default() };
    let mut reports = Vec::with_capacity(images.len());
    for (image, latent) in images.iter().zip(&latents) {
        let out = codebook.quantize(device, &device.upload(latent)?, &search)?;
        let quantized: Vec<f32> = out.quantized.download()?.iter().map(|v| v.to_f32()).collect();
        let reconstruction = from_patches(&quantized, image.width, image.height, p);
        let histogram = out.histogram.as_ref().expect("histogram requested").download()?;
        let tokens = latent.len() / dim;
        reports.push(ImageReport {
            psnr_db: psnr(image, &reconstruction),
            bits_per_pixel: tokens as f64 * (k as f64).log2() / (image.width * image.height) as f64,
            tokens,
            distinct_entries: histogram.iter().filter(|&&c| c > 0).count(),
            perplexity: out.perplexity()?.unwrap_or(0.0),
            reconstruction,
        });
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: usize, h: usize) -> RgbImage {
        let pixels = (0..w * h).map(|i| [(i % w) as f32 / w as f32, (i / w) as f32 / h as f32, 0.25]).collect();
        RgbImage { width: w, height: h, pixels }
    }

    #[test]
    fn patches_round_trip_with_edge_padding() {
        for (w, h, p) in [(8, 8, 4), (7, 5, 4), (1, 1, 3), (9, 4, 1)] {
            let im = image(w, h);
            let lat = patches(&im, p);
            assert_eq!(lat.len(), w.div_ceil(p) * h.div_ceil(p) * 3 * p * p);
            assert_eq!(from_patches(&lat, w, h, p), im, "{w}×{h}, patch {p}");
        }
        // The padding repeats the last column: the second patch of a 5-wide image, patch 4.
        let im = image(5, 4);
        let lat = patches(&im, 4);
        assert_eq!(&lat[48..51], &im.pixels[4]);
        assert_eq!(&lat[51..54], &im.pixels[4]);
    }

    #[test]
    fn every_patch_its_own_entry_is_lossless() {
        let images = [image(8, 6), image(4, 4)];
        // 2·2 + 1 patches of 4×4 (the 8×6 image is padded to 8×8).
        let options = VqImageOptions { codebook_size: 5, patch: 4, iterations: 2, seed: 0 };
        let reports = run::<f32>(&Device::cpu(), &images, &options, &mut |_| {}).unwrap();
        for (r, im) in reports.iter().zip(&images) {
            assert_eq!(r.reconstruction, *im);
            assert!(r.psnr_db.is_infinite());
        }
        assert_eq!(reports[0].tokens, 4);
        assert_eq!(reports[0].distinct_entries, 4);
        let too_many = VqImageOptions { codebook_size: 6, ..options };
        assert!(matches!(
            run::<f32>(&Device::cpu(), &images, &too_many, &mut |_| {}),
            Err(Error::Usage { arg: "codebook-size", .. })
        ));
        let no_patch = VqImageOptions { patch: 0, ..options };
        assert!(matches!(
            run::<f32>(&Device::cpu(), &images, &no_patch, &mut |_| {}),
            Err(Error::Usage { arg: "patch", .. })
        ));
    }
}
