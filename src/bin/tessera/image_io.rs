//! Reading images of any colour type (PNG, JPEG) as RGB, and writing PNGs.
//!
//! Grayscale is replicated to R = G = B, an alpha channel is dropped (not composited), and
//! 16-bit samples are rounded to 8 bits; [`Conversions`] counts what was converted so that
//! a command says it once, not per image.

use crate::demo::fsq_image::RgbImage;
use crate::error::{CliError as Error, Result};
use std::path::Path;

/// What had to be converted to reach 8-bit RGB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conversion {
    /// One channel, replicated to three.
    Grayscale,
    /// Grayscale with alpha: replicated, alpha dropped.
    GrayscaleAlpha,
    /// RGBA: alpha dropped.
    Rgba,
    /// 16-bit or float samples, rounded to 8 bits.
    Precision,
}

impl Conversion {
    fn describe(self) -> &'static str {
        match self {
            Conversion::Grayscale => "grayscale (replicated to RGB)",
            Conversion::GrayscaleAlpha => "grayscale+alpha (replicated to RGB, alpha dropped)",
            Conversion::Rgba => "RGBA (alpha dropped)",
            Conversion::Precision => "more than 8 bits per sample (rounded to 8)",
        }
    }
}

/// Counts of conversions over the inputs of one command.
#[derive(Debug, Default)]
pub(crate) struct Conversions(Vec<(Conversion, usize)>);

impl Conversions {
    pub(crate) fn add(&mut self, conversion: Option<Conversion>) {
        let Some(c) = conversion else { return };
        match self.0.iter_mut().find(|(k, _)| *k == c) {
            Some((_, n)) => *n += 1,
            None => self.0.push((c, 1)),
        }
    }

    /// One line, e.g. "converted to RGB: 2 grayscale (replicated to RGB)", or None.
    pub(crate) fn summary(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let parts: Vec<String> = self.0.iter().map(|(c, n)| format!("{n} {}", c.describe())).collect();
        Some(format!("converted to 8-bit RGB: {}", parts.join(", ")))
    }
}

/// Reads `path` (PNG or JPEG, any colour type) as RGB in [0, 1] (multiples of 1/255), and
/// what had to be converted.
pub(crate) fn load(path: &Path) -> Result<(RgbImage, Option<Conversion>)> {
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::Io { path: path.display().to_string(), source: e })?
        .with_guessed_format()
        .map_err(|e| Error::Io { path: path.display().to_string(), source: e })?
        .decode()
        .map_err(|e| Error::Image { path: path.display().to_string(), message: e.to_string() })?;
    use image::ColorType as C;
    let conversion = match img.color() {
        C::Rgb8 => None,
        C::L8 => Some(Conversion::Grayscale),
        C::La8 => Some(Conversion::GrayscaleAlpha),
        C::Rgba8 => Some(Conversion::Rgba),
        _ => Some(Conversion::Precision),
    };
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::Image { path: path.display().to_string(), message: "the image has no pixels".into() });
    }
    let pixels = rgb.pixels().map(|p| p.0.map(|v| v as f32 / 255.0)).collect();
    Ok((RgbImage { width: w as usize, height: h as usize, pixels }, conversion))
}

/// The image as 8-bit samples, row-major RGB (values rounded to nearest, clipped to [0, 1]).
pub(crate) fn to_rgb8(image: &RgbImage) -> image::RgbImage {
    let mut buf = image::RgbImage::new(image.width as u32, image.height as u32);
    for (px, p) in buf.pixels_mut().zip(&image.pixels) {
        *px = image::Rgb(p.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8));
    }
    buf
}

/// Writes an 8-bit RGB PNG, creating its directory if missing.
pub(crate) fn save_png(path: &Path, image: &RgbImage) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.display().to_string(), source: e })?;
    }
    to_rgb8(image).save(path).map_err(|e| Error::Image { path: path.display().to_string(), message: e.to_string() })
}

/// The file stem of each input, which names its outputs; an input without one, or two
/// inputs with the same, is a usage error (their outputs would overwrite each other).
pub(crate) fn distinct_stems(inputs: &[std::path::PathBuf], arg: &'static str) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::with_capacity(inputs.len());
    for input in inputs {
        let stem = input.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        if stem.is_empty() || names.contains(&stem) {
            return Err(Error::invalid(
                arg,
                format!("{}: every input needs its own file stem (it names the outputs)", input.display()),
            ));
        }
        names.push(stem);
    }
    Ok(names)
}
