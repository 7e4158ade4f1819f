//! The image tokenizers of `tessera tokenize` / `detokenize`: the embedded default (a patch
//! VQ codebook, [`patch_vq`]) and ViT tokenizers from a safetensors file ([`vit`]), behind
//! one interface that works on whole images of any size.

pub(crate) mod patch_vq;
mod vit;

use crate::demo::fsq_image::RgbImage;
use crate::error::{CliError as Error, Result};
use std::path::Path;
use tessera::tokens::{ImageTokens, TokenPayload, TokenizerIdentity};
use tessera::weights::Checkpoint;
use tessera::Device;

/// The default tokenizer, fitted by `tessera fit` on public-domain photos (see
/// assets/README.md): 4096 entries of 4×4 RGB patches, 12 bits per 16 pixels.
pub(crate) const DEFAULT_TOKENIZER: &[u8] = include_bytes!("../../../../assets/patch-vq-4x4-k4096.safetensors");

/// What a tokenizer gives for one image: the token grid and its ids or values.
#[derive(Clone, Debug, Default)]
pub(crate) struct Encoded {
    pub grid_rows: u32,
    pub grid_cols: u32,
    /// `[rows·cols, ids_per_token]` row-major (discrete tokenizers).
    pub ids: Vec<u32>,
    /// `[rows·cols, channels]` row-major (continuous tokenizers).
    pub values: Vec<half::f16>,
}

/// A tokenizer of whole RGB images. An image is padded (its last row and column repeated)
/// to the tokenizer's granularity and the reconstruction cropped back.
pub(crate) trait ImageTokenizer {
    /// Kind and parameter hash, stored in the token file.
    fn identity(&self) -> &TokenizerIdentity;
    /// What its tokens are.
    fn payload(&self) -> TokenPayload;
    /// One line for people.
    fn describe(&self) -> String;
    /// Pixels per device batch: the caller groups images until this many.
    fn batch_pixels(&self) -> usize;
    /// The tokens of `images`, one device pass for all of them.
    fn encode(&self, device: &Device, images: &[&RgbImage]) -> Result<Vec<Encoded>>;
    /// The images of `tokens` (each `width × height` of its record), one device pass.
    fn decode(&self, device: &Device, tokens: &[&ImageTokens]) -> Result<Vec<RgbImage>>;
}

/// The tokenizer in `path`, or the embedded default.
pub(crate) fn load(device: &Device, path: Option<&Path>) -> Result<Box<dyn ImageTokenizer>> {
    let checkpoint = match path {
        None => Checkpoint::from_bytes(DEFAULT_TOKENIZER)?,
        Some(p) => Checkpoint::open(p)?,
    };
    let origin = path.map_or_else(|| "the embedded default".to_string(), |p| p.display().to_string());
    if patch_vq::PatchVq::recognizes(&checkpoint) {
        return Ok(Box::new(patch_vq::PatchVq::load(device, checkpoint, &origin)?));
    }
    if checkpoint.metadata().get("tessera.tokenizer").map(String::as_str) == Some("vit") {
        // f32 on every backend: exact f32 products on the CPU reference and the emulator.
        let weights = tessera::weights::TokenizerWeights::from_checkpoint(checkpoint)?;
        return Ok(Box::new(vit::Vit::<f32>::load(device, &weights, &origin)?));
    }
    Err(Error::invalid(
        "tokenizer",
        format!(
            "{origin}: not a tessera tokenizer (no `{}` tensor and no tessera.tokenizer metadata)",
            patch_vq::CODEBOOK
        ),
    ))
}
