//! A ViT tokenizer file (`tessera::weights::TokenizerWeights`: ViT encoder → bottleneck →
//! ViT decoder) as an [`ImageTokenizer`] of images of any size.
//!
//! The model runs at its native resolution `H × W` only (its position embeddings are
//! learned per token), so an image is padded (last row and column repeated) to whole tiles
//! of `H × W` and each tile is one batch item. The token grid of an image is the tiles'
//! grids side by side: token (r, c) of tile (ty, tx) is row `ty·gh + r`, column `tx·gw + c`
//! of the image's grid (`gh × gw` tokens per tile), so the file holds one raster per image.

use super::{Encoded, ImageTokenizer};
use crate::demo::fsq_image::RgbImage;
use crate::error::{CliError as Error, Result};
use tessera::blocks::VitTokenizer;
use tessera::tokens::{ImageTokens, TokenPayload, TokenizerIdentity};
use tessera::weights::TokenizerWeights;
use tessera::{Device, FloatElement};

/// A ViT tokenizer in compute dtype T.
pub(crate) struct Vit<T: FloatElement> {
    model: VitTokenizer<T>,
    identity: TokenizerIdentity,
    origin: String,
}

/// Tiles across and down for a `width × height` image and `(tile_h, tile_w)` tiles.
fn tiles(width: usize, height: usize, (tile_h, tile_w): (usize, usize)) -> (usize, usize) {
    (width.div_ceil(tile_w), height.div_ceil(tile_h))
}

/// Moves per-tile token rows (`width` values each, tiles row by row, tokens row by row in a
/// tile) into one raster for the image, or back (`to_raster = false`).
fn reorder<V: Copy + Default>(
    src: &[V],
    (nx, ny): (usize, usize),
    (gh, gw): (usize, usize),
    width: usize,
    to_raster: bool,
) -> Vec<V> {
    let cols = nx * gw;
    let mut out = vec![V::default(); src.len()];
    for ty in 0..ny {
        for tx in 0..nx {
            for r in 0..gh {
                for c in 0..gw {
                    let tiled = (((ty * nx + tx) * gh + r) * gw + c) * width;
                    let raster = ((ty * gh + r) * cols + tx * gw + c) * width;
                    let (from, to) = if to_raster { (tiled, raster) } else { (raster, tiled) };
                    out[to..to + width].copy_from_slice(&src[from..from + width]);
                }
            }
        }
    }
    out
}

impl<T: FloatElement> Vit<T>
where
    T: tessera::LinearOutput<T>,
{
    pub(crate) fn load(device: &Device, weights: &TokenizerWeights, origin: &str) -> Result<Self> {
        let model = VitTokenizer::<T>::load(device, weights)?;
        let identity = TokenizerIdentity { kind: model.kind().to_string(), hash: model.hash() };
        Ok(Vit { model, identity, origin: origin.to_string() })
    }

    /// The u8 NHWC pixels of every tile of `images`, in image order, tiles row by row.
    fn tile_pixels(&self, images: &[&RgbImage]) -> Vec<u8> {
        let (th, tw) = self.model.image_size();
        let mut out = Vec::new();
        for image in images {
            let (nx, ny) = tiles(image.width, image.height, (th, tw));
            for ty in 0..ny {
                for tx in 0..nx {
                    for y in 0..th {
                        let sy = (ty * th + y).min(image.height - 1);
                        for x in 0..tw {
                            let sx = (tx * tw + x).min(image.width - 1);
                            let p = image.pixels[sy * image.width + sx];
                            out.extend(p.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8));
                        }
                    }
                }
            }
        }
        out
    }
}

impl<T: FloatElement + tessera::LinearOutput<T>> ImageTokenizer for Vit<T> {
    fn identity(&self) -> &TokenizerIdentity {
        &self.identity
    }

    fn payload(&self) -> TokenPayload {
        match self.model.vocabulary() {
            Some(vocabulary) => TokenPayload::Ids { vocabulary, ids_per_token: self.model.indices_per_token() as u32 },
            None => TokenPayload::Continuous { channels: self.model.latent_channels() as u32 },
        }
    }

    fn describe(&self) -> String {
        let (h, w) = self.model.image_size();
        let (gh, gw) = self.model.grid();
        let tokens = match self.model.vocabulary() {
            Some(k) => format!("{} ids of {k} values per token", self.model.indices_per_token()),
            None => format!("{} continuous channels per token (stored as f16)", self.model.latent_channels()),
        };
        format!("{} ({}): {h}×{w} tiles of {gh}×{gw} tokens, {tokens}", self.identity.kind, self.origin)
    }

    fn batch_pixels(&self) -> usize {
        let (h, w) = self.model.image_size();
        32 * h * w
    }

    fn encode(&self, device: &Device, images: &[&RgbImage]) -> Result<Vec<Encoded>> {
        let size = self.model.image_size();
        let grid = self.model.grid();
        let tile_count: usize = images.iter().map(|im| tiles(im.width, im.height, size)).map(|(x, y)| x * y).sum();
        let pixels = device.upload(&self.tile_pixels(images))?;
        let mut ws = self.model.workspace(device, tile_count)?;
        let out = self.model.encode(device, pixels.as_view(), &mut ws)?;
        let per_tile = self.model.tokens_per_image();
        let (g, c) = (self.model.indices_per_token(), self.model.latent_channels());
        let (ids, values): (Vec<u32>, Vec<half::f16>) = match &out.indices {
            Some(ids) => (ids.download()?, Vec::new()),
            None => (Vec::new(), out.values.download()?.iter().map(|v| half::f16::from_f32(v.to_f32())).collect()),
        };
        let mut encoded = Vec::with_capacity(images.len());
        let mut tile = 0;
        for image in images {
            let (nx, ny) = tiles(image.width, image.height, size);
            let n = nx * ny;
            let mut e =
                Encoded { grid_rows: (ny * grid.0) as u32, grid_cols: (nx * grid.1) as u32, ..Encoded::default() };
            if !ids.is_empty() {
                e.ids = reorder(&ids[tile * per_tile * g..(tile + n) * per_tile * g], (nx, ny), grid, g, true);
            } else {
                e.values = reorder(&values[tile * per_tile * c..(tile + n) * per_tile * c], (nx, ny), grid, c, true);
            }
            encoded.push(e);
            tile += n;
        }
        Ok(encoded)
    }

    fn decode(&self, device: &Device, tokens: &[&ImageTokens]) -> Result<Vec<RgbImage>> {
        let size = self.model.image_size();
        let grid = self.model.grid();
        let (g, c) = (self.model.indices_per_token(), self.model.latent_channels());
        let (mut tiled_ids, mut tiled_values, mut tile_count) = (Vec::new(), Vec::new(), 0);
        for t in tokens {
            let (nx, ny) = tiles(t.width as usize, t.height as usize, size);
            if ((ny * grid.0) as u32, (nx * grid.1) as u32) != (t.grid_rows, t.grid_cols) {
                return Err(Error::invalid(
                    "tokens",
                    format!(
                        "{}: a {}×{} image has {}×{} tokens with this tokenizer, the file gives {}×{}",
                        t.name,
                        t.width,
                        t.height,
                        ny * grid.0,
                        nx * grid.1,
                        t.grid_rows,
                        t.grid_cols
                    ),
                ));
            }
            if self.model.vocabulary().is_some() {
                tiled_ids.extend(reorder(&t.ids, (nx, ny), grid, g, false));
            } else {
                tiled_values.extend(reorder(&t.values, (nx, ny), grid, c, false));
            }
            tile_count += nx * ny;
        }
        let values = if self.model.vocabulary().is_some() {
            self.model.decode_ids(device, device.upload(&tiled_ids)?.as_view())?
        } else {
            let v: Vec<T> = tiled_values.iter().map(|v| T::from_f32(v.to_f32())).collect();
            device.upload(&v)?
        };
        let (th, tw) = size;
        let mut ws = self.model.workspace(device, tile_count)?;
        let mut pixels = device.zeros::<u8>(tile_count * th * tw * 3)?;
        self.model.decode(device, values.as_view(), &mut ws, &mut pixels)?;
        let pixels = pixels.download()?;
        let mut images = Vec::with_capacity(tokens.len());
        let mut tile = 0;
        for t in tokens {
            let (w, h) = (t.width as usize, t.height as usize);
            let (nx, ny) = tiles(w, h, size);
            let mut out = vec![[0.0f32; 3]; w * h];
            for y in 0..h {
                for x in 0..w {
                    let at = (((tile + (y / th) * nx + x / tw) * th + y % th) * tw + x % tw) * 3;
                    out[y * w + x] = [0, 1, 2].map(|k| pixels[at + k] as f32 / 255.0);
                }
            }
            tile += nx * ny;
            images.push(RgbImage { width: w, height: h, pixels: out });
        }
        Ok(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_order_and_raster_order_invert_each_other() {
        // 3×2 tiles of 2×4 tokens, 2 values per token.
        let (nx, ny, grid, width) = (3, 2, (2, 4), 2);
        let src: Vec<u32> = (0..(nx * ny * 8 * width) as u32).collect();
        let raster = reorder(&src, (nx, ny), grid, width, true);
        assert_eq!(reorder(&raster, (nx, ny), grid, width, false), src);
        // Row 0 of the raster: row 0 of tiles (0,0), (0,1), (0,2).
        let expect: Vec<u32> = (0..3u32).flat_map(|tx| (0..8u32).map(move |i| tx * 16 + i)).collect();
        assert_eq!(raster[..nx * 4 * width].to_vec(), expect);
    }
}
