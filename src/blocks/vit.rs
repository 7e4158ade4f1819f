//! The pre-LN ViT block and the tokenizer encoder (timm's `VisionTransformer` without a
//! class token, its head applied per token).

use crate::device::{BufferView, BufferViewMut, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::adaln::{layer_norm_into, Affine, NormOptions};
use crate::kernels::gemm::{GemmEpilogue, LinearOutput};
use crate::kernels::patchify::{patchify_image_into, patchify_unfused_into, ImageNorm, PatchInput, PatchShape};
use crate::weights::{VitBlockWeights, VitWeights};

use super::layers::{attention_residual, mlp_residual, Gate, Linear};
use super::upload::{linear, upload, vector};
use super::workspace::{Fusion, TokenShape, Workspace};

/// timm's LayerNorm eps for ViTs.
pub(crate) const VIT_EPS: f32 = 1e-6;

/// One pre-LN transformer block on device: `x += proj(attn(qkv(LN₁ x)))`, then
/// `x += fc2(gelu(fc1(LN₂ x)))`, the residual adds fused into the GEMM epilogues.
pub struct VitBlock<T: FloatElement> {
    dim: usize,
    heads: usize,
    norm1: (DeviceBuffer<T>, DeviceBuffer<T>),
    qkv: Linear<T>,
    proj: Linear<T>,
    norm2: (DeviceBuffer<T>, DeviceBuffer<T>),
    fc1: Linear<T>,
    fc2: Linear<T>,
}

impl<T: FloatElement + LinearOutput<T>> VitBlock<T> {
    /// Uploads block weights (`dim` = D, `heads` dividing it), converted to T.
    pub fn load(device: &Device, w: &VitBlockWeights, dim: usize, heads: usize) -> Result<Self> {
        if heads == 0 || dim % heads != 0 {
            return Err(Error::invalid("heads", format!("{heads} heads do not divide D = {dim}")));
        }
        Ok(VitBlock {
            dim,
            heads,
            norm1: (vector(device, "norm1.weight", &w.norm1_w, dim)?, vector(device, "norm1.bias", &w.norm1_b, dim)?),
            qkv: linear(device, "attn.qkv", &w.qkv_w, &w.qkv_b)?,
            proj: linear(device, "attn.proj", &w.proj_w, &w.proj_b)?,
            norm2: (vector(device, "norm2.weight", &w.norm2_w, dim)?, vector(device, "norm2.bias", &w.norm2_b, dim)?),
            fc1: linear(device, "mlp.fc1", &w.fc1_w, &w.fc1_b)?,
            fc2: linear(device, "mlp.fc2", &w.fc2_w, &w.fc2_b)?,
        })
    }

    /// The MLP's hidden width.
    pub fn mlp_hidden(&self) -> usize {
        self.fc1.out_features
    }

    /// The block on `x` (`[B, T, D]` as `ws` was sized), in place.
    pub fn forward<'o>(
        &self,
        device: &Device,
        x: impl Into<BufferViewMut<'o, T>>,
        ws: &mut Workspace<T>,
    ) -> Result<()> {
        let mut x = x.into();
        ws.check(ws.shape, self.dim, self.heads, self.mlp_hidden())?;
        let options = NormOptions { eps: VIT_EPS, ..Default::default() };
        let affine = Affine::new(&self.norm1.0, &self.norm1.1);
        layer_norm_into(device, x.as_view(), self.dim, Some(affine), &options, &mut ws.norm)?;
        attention_residual(device, &self.qkv, &self.proj, ws, Gate::Unit, x.reborrow())?;
        let affine = Affine::new(&self.norm2.0, &self.norm2.1);
        layer_norm_into(device, x.as_view(), self.dim, Some(affine), &options, &mut ws.norm)?;
        mlp_residual(device, &self.fc1, &self.fc2, ws, Gate::Unit, x)
    }
}

/// The tokenizer encoder: u8 images → fused patch embedding (normalization, im2col, GEMM,
/// bias, learned position embedding) → N ViT blocks → LayerNorm → the per-token head (the
/// bottleneck's width).
pub struct VitEncoder<T: FloatElement> {
    channels: usize,
    patch: usize,
    dim: usize,
    heads: usize,
    tokens: usize,
    patch_w: DeviceBuffer<T>,
    patch_b: DeviceBuffer<T>,
    pos: DeviceBuffer<T>,
    blocks: Vec<VitBlock<T>>,
    norm: (DeviceBuffer<T>, DeviceBuffer<T>),
    head: Option<Linear<T>>,
}

impl<T: FloatElement + LinearOutput<T>> VitEncoder<T> {
    /// Uploads a timm ViT's weights ([`VitWeights::from_checkpoint`]), converted to T.
    pub fn load(device: &Device, w: &VitWeights) -> Result<Self> {
        let c = &w.config;
        let blocks = w.blocks.iter().map(|b| VitBlock::load(device, b, c.dim, c.heads)).collect::<Result<Vec<_>>>()?;
        let head = match &w.head {
            Some((hw, hb)) => Some(linear(device, "head", hw, hb)?),
            None => None,
        };
        Ok(VitEncoder {
            channels: c.in_channels,
            patch: c.patch,
            dim: c.dim,
            heads: c.heads,
            tokens: c.tokens,
            patch_w: upload(device, &w.patch_w)?,
            patch_b: vector(device, "patch_embed.proj.bias", &w.patch_b, c.dim)?,
            pos: upload(device, &w.pos_embed)?,
            blocks,
            norm: (vector(device, "norm.weight", &w.norm_w, c.dim)?, vector(device, "norm.bias", &w.norm_b, c.dim)?),
            head,
        })
    }

    /// Output width per token: the head's, or D without one.
    pub fn out_dim(&self) -> usize {
        self.head.as_ref().map_or(self.dim, |h| h.out_features)
    }

    /// A workspace for `batch` images (their size is fixed by the position embedding).
    pub fn workspace(&self, device: &Device, batch: usize) -> Result<Workspace<T>> {
        let mlp = self.blocks.first().map_or(0, |b| b.mlp_hidden());
        Workspace::new(device, TokenShape { batch, tokens: self.tokens }, self.dim, self.heads, mlp, 0)
    }

    /// The blocks, for running a forward stage by stage ([`VitEncoder::embed_into`], each
    /// block, then [`VitEncoder::head_into`]).
    pub fn blocks(&self) -> &[VitBlock<T>] {
        &self.blocks
    }

    /// `images` u8 `[B, H, W, C]` with `H·W / p² = T` (the position embedding's tokens) →
    /// `out [B, T, out_dim]`, through `tokens` (`[B, T, D]`, the residual stream, left
    /// holding the last block's output).
    #[allow(clippy::too_many_arguments)]
    pub fn forward<'o>(
        &self,
        device: &Device,
        images: BufferView<'_, u8>,
        norm: &ImageNorm<'_>,
        size: (usize, usize),
        ws: &mut Workspace<T>,
        tokens: &mut DeviceBuffer<T>,
        out: impl Into<BufferViewMut<'o, T>>,
    ) -> Result<()> {
        self.embed_into(device, images, norm, size, ws, tokens)?;
        for block in &self.blocks {
            block.forward(device, &mut *tokens, ws)?;
        }
        self.head_into(device, tokens, ws, out)
    }

    /// The fused patch embedding (normalization, im2col, GEMM, bias, position embedding)
    /// of `images` into `tokens` (`[B, T, D]`).
    pub fn embed_into(
        &self,
        device: &Device,
        images: BufferView<'_, u8>,
        norm: &ImageNorm<'_>,
        (height, width): (usize, usize),
        ws: &Workspace<T>,
        tokens: &mut DeviceBuffer<T>,
    ) -> Result<()> {
        if height % self.patch != 0
            || width % self.patch != 0
            || (height / self.patch) * (width / self.patch) != self.tokens
        {
            return Err(Error::invalid(
                "height, width",
                format!(
                    "{height}×{width} with patch {} does not give the {} tokens of the position embedding",
                    self.patch, self.tokens
                ),
            ));
        }
        let batch = ws.shape.batch;
        let shape = PatchShape { batch, channels: self.channels, height, width, patch: self.patch, dim: self.dim };
        let (w, b, pos) = (self.patch_w.as_view(), self.patch_b.as_view(), Some(self.pos.as_view()));
        match ws.fusion {
            Fusion::Fused => patchify_image_into(device, images, norm, w, b, pos, shape, &mut *tokens),
            Fusion::Unfused => {
                patchify_unfused_into(device, PatchInput::Image(images, *norm), w, b, pos, shape, &mut *tokens)
            }
        }
    }

    /// The final LayerNorm of `tokens` into `out` (`[B, T, D]`).
    pub fn final_norm_into<'o>(
        &self,
        device: &Device,
        tokens: BufferView<'_, T>,
        out: impl Into<BufferViewMut<'o, T>>,
    ) -> Result<()> {
        let mut out = out.into();
        let options = NormOptions { eps: VIT_EPS, ..Default::default() };
        let affine = Affine::new(&self.norm.0, &self.norm.1);
        layer_norm_into(device, tokens, self.dim, Some(affine), &options, out.reborrow())
    }

    /// The final LayerNorm and the per-token head of the last block's `tokens` into `out`
    /// (`[B, T, out_dim]`).
    pub fn head_into<'o>(
        &self,
        device: &Device,
        tokens: &DeviceBuffer<T>,
        ws: &mut Workspace<T>,
        out: impl Into<BufferViewMut<'o, T>>,
    ) -> Result<()> {
        match &self.head {
            Some(head) => {
                self.final_norm_into(device, tokens.as_view(), &mut ws.norm)?;
                head.forward(device, ws.fusion, ws.norm.as_view(), ws.shape.rows(), GemmEpilogue::Bias, out)
            }
            None => self.final_norm_into(device, tokens.as_view(), out),
        }
    }
}
