//! The patch VQ tokenizer: one k-means codebook of `p × p` RGB patches (the codebook of
//! `tessera vq`, see `demo::vq_image`): a token per patch, the id of its nearest entry
//! (squared L2), and the entry's pixels back.
//!
//! File layout (safetensors): one tensor `codebook` `[K, 3·p²]` (f16, f32 or bf16), an
//! entry's pixels in [0, 1] row by row, pixel by pixel, R G B within a pixel; metadata
//! `tessera.tokenizer = patch-vq` and `patch = p` (p is also implied by the width).

use super::{Encoded, ImageTokenizer};
use crate::demo::fsq_image::RgbImage;
use crate::demo::vq_image::{from_patches, patch_grid, patches};
use crate::error::{CliError as Error, Result};
use tessera::blocks::{Bottleneck, VqBottleneck};
use tessera::tokens::{ImageTokens, TokenPayload, TokenizerIdentity};
use tessera::weights::Checkpoint;
use tessera::{Codebook, Device, Metric, SearchOptions};

/// The codebook tensor's name.
pub(crate) const CODEBOOK: &str = "codebook";
/// The kind stored in token files.
pub(crate) const KIND: &str = "patch-vq";

/// A patch VQ tokenizer on a device.
pub(crate) struct PatchVq {
    patch: usize,
    vq: VqBottleneck<f32>,
    identity: TokenizerIdentity,
    origin: String,
}

impl PatchVq {
    /// Whether `checkpoint` is laid out as a patch VQ tokenizer.
    pub(crate) fn recognizes(checkpoint: &Checkpoint) -> bool {
        checkpoint.contains(CODEBOOK) && checkpoint.len() == 1
    }

    /// Uploads the codebook of `checkpoint` (read from `origin`, named in errors).
    pub(crate) fn load(device: &Device, mut checkpoint: Checkpoint, origin: &str) -> Result<Self> {
        // The identity in token files: the codebook's f32 values, shape and metadata (see
        // `Checkpoint::parameter_hash`), taken before the tensor is.
        let hash = checkpoint.parameter_hash();
        let shape = checkpoint.shape(CODEBOOK).map(<[usize]>::to_vec).unwrap_or_default();
        let patch = match shape[..] {
            [k, d] if k > 0 && d % 3 == 0 && (((d / 3) as f64).sqrt() as usize).pow(2) == d / 3 => {
                ((d / 3) as f64).sqrt() as usize
            }
            _ => {
                return Err(Error::invalid(
                    "tokenizer",
                    format!("{origin}: `{CODEBOOK}` is {shape:?}, expected [K, 3·p²] for a p×p RGB patch"),
                ))
            }
        };
        let codebook = checkpoint.take(CODEBOOK, &shape)?;
        checkpoint.finish()?;
        let entries = device.upload(&codebook.data)?;
        let codebook = Codebook::new(device, entries, 3 * patch * patch, Metric::SquaredL2)?;
        let options = SearchOptions { distances: false, histogram: false, ..SearchOptions::default() };
        Ok(PatchVq {
            patch,
            vq: VqBottleneck { codebook, options },
            identity: TokenizerIdentity { kind: KIND.into(), hash },
            origin: origin.to_string(),
        })
    }

    fn entries(&self) -> usize {
        self.vq.codebook.len()
    }
}

impl ImageTokenizer for PatchVq {
    fn identity(&self) -> &TokenizerIdentity {
        &self.identity
    }

    fn payload(&self) -> TokenPayload {
        TokenPayload::Ids { vocabulary: self.entries() as u64, ids_per_token: 1 }
    }

    fn describe(&self) -> String {
        let bits = (self.entries() as f64).log2();
        format!(
            "patch VQ ({}): {} entries of {p}×{p} RGB patches, {:.2} bits per pixel",
            self.origin,
            self.entries(),
            bits / (self.patch * self.patch) as f64,
            p = self.patch
        )
    }

    fn batch_pixels(&self) -> usize {
        // 2^22 pixels: 256k patches of 4×4, 48 MiB of f32 latents.
        1 << 22
    }

    fn encode(&self, device: &Device, images: &[&RgbImage]) -> Result<Vec<Encoded>> {
        let p = self.patch;
        let mut latents = Vec::new();
        let mut grids = Vec::with_capacity(images.len());
        for image in images {
            latents.extend(patches(image, p));
            grids.push(patch_grid(image, p));
        }
        let out = self.vq.forward(device, device.upload(&latents)?.as_view())?;
        let ids = out.indices.ok_or_else(|| Error::invalid("tokenizer", "the VQ search gave no ids"))?.download()?;
        let mut encoded = Vec::with_capacity(images.len());
        let mut at = 0;
        for (cols, rows) in grids {
            encoded.push(Encoded {
                grid_rows: rows as u32,
                grid_cols: cols as u32,
                ids: ids[at..at + rows * cols].to_vec(),
                values: Vec::new(),
            });
            at += rows * cols;
        }
        Ok(encoded)
    }

    fn decode(&self, device: &Device, tokens: &[&ImageTokens]) -> Result<Vec<RgbImage>> {
        let p = self.patch;
        for t in tokens {
            let (w, h) = (t.width as usize, t.height as usize);
            if (w.div_ceil(p), h.div_ceil(p)) != (t.grid_cols as usize, t.grid_rows as usize) {
                return Err(Error::invalid(
                    "tokens",
                    format!(
                        "{}: a {w}×{h} image has {}×{} patches of {p}, the file gives {}×{}",
                        t.name,
                        h.div_ceil(p),
                        w.div_ceil(p),
                        t.grid_rows,
                        t.grid_cols
                    ),
                ));
            }
        }
        let ids: Vec<u32> = tokens.iter().flat_map(|t| t.ids.iter().copied()).collect();
        let values = self.vq.decode(device, device.upload(&ids)?.as_view())?.download()?;
        let dim = 3 * p * p;
        let mut images = Vec::with_capacity(tokens.len());
        let mut at = 0;
        for t in tokens {
            let n = t.ids.len() * dim;
            images.push(from_patches(&values[at..at + n], t.width as usize, t.height as usize, p));
            at += n;
        }
        Ok(images)
    }
}
