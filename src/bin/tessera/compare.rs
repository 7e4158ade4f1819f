//! `--compare DIR`: one PNG per image, original | reconstruction | error map, side by side.
//!
//! The error map is the absolute error per channel amplified [`ERROR_GAIN`] times (an error
//! of 1/8 of the range or more is full intensity), so black is exact. The three panels are
//! separated by [`GAP`] white columns.

use crate::demo::fsq_image::{psnr, RgbImage};
use crate::error::{CliError as Error, Result};
use crate::image_io::save_png;
use std::path::{Path, PathBuf};

/// Amplification of the error map.
pub(crate) const ERROR_GAIN: f32 = 8.0;
/// White columns between the panels.
pub(crate) const GAP: usize = 4;

/// The side-by-side picture of `original` and `reconstruction` (same size).
pub(crate) fn comparison(original: &RgbImage, reconstruction: &RgbImage) -> RgbImage {
    let (w, h) = (original.width, original.height);
    let width = 3 * w + 2 * GAP;
    let mut pixels = vec![[1.0f32; 3]; width * h];
    for y in 0..h {
        for x in 0..w {
            let (a, b) = (original.pixels[y * w + x], reconstruction.pixels[y * w + x]);
            let row = y * width;
            pixels[row + x] = a;
            pixels[row + w + GAP + x] = b;
            pixels[row + 2 * (w + GAP) + x] = [0, 1, 2].map(|c| ((a[c] - b[c]).abs() * ERROR_GAIN).min(1.0));
        }
    }
    RgbImage { width, height: h, pixels }
}

/// Writes `DIR/<name>.compare.png` and returns its path and the PSNR (dB, peak 1).
pub(crate) fn write(dir: &Path, name: &str, original: &RgbImage, reconstruction: &RgbImage) -> Result<(PathBuf, f64)> {
    if (original.width, original.height) != (reconstruction.width, reconstruction.height) {
        return Err(Error::invalid(
            "compare",
            format!(
                "{name}: the reconstruction is {}×{}, the original {}×{}",
                reconstruction.width, reconstruction.height, original.width, original.height
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.display().to_string(), source: e })?;
    let path = dir.join(format!("{name}.compare.png"));
    save_png(&path, &comparison(original, reconstruction))?;
    Ok((path, psnr(original, reconstruction)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_are_original_reconstruction_and_amplified_error() {
        let a = RgbImage { width: 2, height: 1, pixels: vec![[0.5, 0.5, 0.5], [1.0, 0.0, 0.25]] };
        let b = RgbImage { width: 2, height: 1, pixels: vec![[0.5, 0.5, 0.5], [0.95, 0.5, 0.25]] };
        let c = comparison(&a, &b);
        assert_eq!((c.width, c.height), (6 + 2 * GAP, 1));
        assert_eq!(&c.pixels[..2], &a.pixels[..]);
        assert_eq!(c.pixels[2], [1.0; 3]);
        assert_eq!(&c.pixels[2 + GAP..4 + GAP], &b.pixels[..]);
        let err = &c.pixels[4 + 2 * GAP..];
        assert_eq!(err[0], [0.0; 3]);
        assert!((err[1][0] - 0.4).abs() < 1e-5 && err[1][1] == 1.0 && err[1][2] == 0.0, "{err:?}");
    }
}
