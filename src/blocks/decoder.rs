//! The tokenizer decoder: latent tokens → projection to the model width + learned position
//! embedding → N ViT blocks → LayerNorm → the pixel projection fused with the unpatchify
//! fold and the u8 conversion (denormalize, ×255, round, clamp) in one GEMM.

use crate::device::{BufferView, BufferViewMut, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::adaln::{layer_norm_into, Affine, NormOptions};
use crate::kernels::gemm::{GemmEpilogue, LinearOutput};
use crate::kernels::patchify::{add_position_embedding, unpatchify_image_into, ImageNorm, PatchShape};
use crate::weights::{HostTensor, VitBlockWeights};

use super::layers::Linear;
use super::upload::{linear, upload, vector};
use super::vit::{VitBlock, VIT_EPS};
use super::workspace::{TokenShape, Workspace};

/// The decoder's architecture.
#[derive(Clone, Debug, PartialEq)]
pub struct VitDecoderConfig {
    /// Width of the latent tokens it reads (the bottleneck's).
    pub latent_dim: usize,
    /// Model width D.
    pub dim: usize,
    /// Attention heads.
    pub heads: usize,
    /// Image channels (≤ 4).
    pub channels: usize,
    /// Patch side p.
    pub patch: usize,
    /// Token grid rows and columns (the image is `grid_h·p × grid_w·p`).
    pub grid: (usize, usize),
}

/// A decoder's host weights: linear layers `[out, in]`, PyTorch's layout.
#[derive(Clone, Debug)]
pub struct VitDecoderWeights {
    /// The architecture.
    pub config: VitDecoderConfig,
    /// `[D, latent_dim]`, `[D]`.
    pub in_w: HostTensor,
    /// See `in_w`.
    pub in_b: HostTensor,
    /// `[T, D]`.
    pub pos_embed: HostTensor,
    /// The blocks (timm's layout).
    pub blocks: Vec<VitBlockWeights>,
    /// `[D]` each.
    pub norm_w: HostTensor,
    /// See `norm_w`.
    pub norm_b: HostTensor,
    /// `[p·p·C, D]` (row `(i·p + j)·C + c` is pixel (i, j) of channel c), `[p·p·C]`.
    pub out_w: HostTensor,
    /// See `out_w`.
    pub out_b: HostTensor,
}

/// The decoder on device.
pub struct VitDecoder<T: FloatElement> {
    config: VitDecoderConfig,
    input: Linear<T>,
    pos: DeviceBuffer<T>,
    blocks: Vec<VitBlock<T>>,
    norm: (DeviceBuffer<T>, DeviceBuffer<T>),
    out: Linear<T>,
}

impl<T: FloatElement + LinearOutput<T>> VitDecoder<T> {
    /// Uploads the weights, converted to T.
    pub fn load(device: &Device, w: &VitDecoderWeights) -> Result<Self> {
        let c = &w.config;
        let tokens = c.grid.0 * c.grid.1;
        if w.pos_embed.shape != [tokens, c.dim] {
            return Err(Error::invalid(
                "weights",
                format!("pos_embed {:?}, expected [{tokens}, {}]", w.pos_embed.shape, c.dim),
            ));
        }
        let input = linear(device, "decoder input", &w.in_w, &w.in_b)?;
        let out = linear(device, "decoder output", &w.out_w, &w.out_b)?;
        if input.in_features != c.latent_dim || out.out_features != c.patch * c.patch * c.channels {
            return Err(Error::invalid("weights", "the decoder's projections do not fit its configuration"));
        }
        Ok(VitDecoder {
            config: c.clone(),
            input,
            pos: upload(device, &w.pos_embed)?,
            blocks: w.blocks.iter().map(|b| VitBlock::load(device, b, c.dim, c.heads)).collect::<Result<Vec<_>>>()?,
            norm: (vector(device, "norm.weight", &w.norm_w, c.dim)?, vector(device, "norm.bias", &w.norm_b, c.dim)?),
            out,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &VitDecoderConfig {
        &self.config
    }

    /// A workspace for `batch` images.
    pub fn workspace(&self, device: &Device, batch: usize) -> Result<Workspace<T>> {
        let c = &self.config;
        let mlp = self.blocks.first().map_or(0, |b| b.mlp_hidden());
        Workspace::new(device, TokenShape { batch, tokens: c.grid.0 * c.grid.1 }, c.dim, c.heads, mlp, 0)
    }

    /// `latents [B, T, latent_dim]` → u8 images `[B, H, W, C]` (NHWC), through `tokens`
    /// (`[B, T, D]`).
    pub fn forward<'o>(
        &self,
        device: &Device,
        latents: BufferView<'_, T>,
        norm: &ImageNorm<'_>,
        ws: &mut Workspace<T>,
        tokens: &mut DeviceBuffer<T>,
        images: impl Into<BufferViewMut<'o, u8>>,
    ) -> Result<()> {
        let c = &self.config;
        let shape = ws.shape;
        self.input.forward(device, ws.fusion, latents, shape.rows(), GemmEpilogue::Bias, &mut *tokens)?;
        add_position_embedding(device, &mut *tokens, &self.pos, shape.tokens, c.dim)?;
        for block in &self.blocks {
            block.forward(device, &mut *tokens, ws)?;
        }
        let options = NormOptions { eps: VIT_EPS, ..Default::default() };
        let affine = Affine::new(&self.norm.0, &self.norm.1);
        layer_norm_into(device, tokens.as_view(), c.dim, Some(affine), &options, &mut ws.norm)?;
        let (gh, gw) = c.grid;
        let fold = PatchShape {
            batch: shape.batch,
            channels: c.channels,
            height: gh * c.patch,
            width: gw * c.patch,
            patch: c.patch,
            dim: c.dim,
        };
        unpatchify_image_into(device, &ws.norm, &self.out.w, &self.out.b, norm, fold, images)
    }
}
