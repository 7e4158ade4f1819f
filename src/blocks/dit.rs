//! diffusers' `DiTTransformer2DModel` (adaLN-Zero): latent patch embedding with the 2-D
//! sin-cos position embedding, N DiT blocks each conditioned on its own timestep and label
//! embeddings, and the final adaLN + projection + unpatchify.
//!
//! Per block, with `c = timestep_mlp(sinusoid(t)) + label_table[y]` (diffusers' sinusoid:
//! cos first, frequencies `exp(−ln(10⁴)·i/(half − 1))`, `downscale_freq_shift = 1`):
//! `[shift, scale, gate]_{msa, mlp} = linear(silu(c))` (`[B, 6D]`);
//! `x += gate_msa ⊙ proj(attn(qkv(LN(x)·(1 + scale_msa) + shift_msa)))`;
//! `x += gate_mlp ⊙ fc2(gelu(fc1(LN(x)·(1 + scale_mlp) + shift_mlp)))`.
//! The final layer takes block 0's conditioning (as diffusers does):
//! `[shift, scale] = proj_out_1(silu(c₀))`, `out = unpatchify(proj_out_2(LN(x)·(1 + scale) + shift))`.

use crate::device::{BufferView, BufferViewMut, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::adaln::{adaln_modulate_into, AdalnShape, Modulation, NormKernel, NormOptions};
use crate::kernels::embedding::{label_embedding_into, timestep_embedding_shifted_into, DEFAULT_MAX_PERIOD};
use crate::kernels::gemm::{silu_in_place, GemmEpilogue, LinearOutput};
use crate::kernels::patchify::{
    patchify_latents_into, patchify_unfused_into, sincos_pos_embed_2d, unpatchify_latents_into, PatchInput, PatchShape,
};
use crate::weights::{DitBlockWeights, DitConfig, DitWeights};

use super::layers::{attention_residual, mlp_residual, Gate, Linear};
use super::upload::{linear, upload};
use super::workspace::{Fusion, TokenShape, Workspace};

/// `AdaLayerNormZero.norm`'s eps (and `norm_out`'s).
const ADA_EPS: f32 = 1e-6;
/// `norm3`'s eps: `DiTTransformer2DModel`'s default `norm_eps`.
const MLP_NORM_EPS: f32 = 1e-5;

/// adaLN's options: `eps`, and the unfused kernel pair for the baseline.
fn norm_options(eps: f32, fusion: Fusion) -> NormOptions {
    let kernel = if fusion == Fusion::Fused { NormKernel::Auto } else { NormKernel::Unfused };
    NormOptions { eps, kernel }
}

/// The inputs of a DiT forward.
#[derive(Clone, Copy, Debug)]
pub struct DitInputs<'a, T: FloatElement> {
    /// Latents `[B, C, H, W]`, H = W = the model's `sample_size`.
    pub latents: BufferView<'a, T>,
    /// Timesteps `[B]` (any real values; diffusers passes the scheduler's t).
    pub timesteps: BufferView<'a, f32>,
    /// Class labels `[B]`, `0..=num_classes` (`num_classes` = the null class of
    /// classifier-free guidance).
    pub labels: BufferView<'a, u32>,
}

/// One DiT block on device.
pub struct DitBlock<T: FloatElement> {
    dim: usize,
    heads: usize,
    num_classes: usize,
    t1: Linear<T>,
    t2: Linear<T>,
    label_table: DeviceBuffer<T>,
    ada: Linear<T>,
    qkv: Linear<T>,
    proj: Linear<T>,
    fc1: Linear<T>,
    fc2: Linear<T>,
}

impl<T: FloatElement + LinearOutput<T>> DitBlock<T> {
    /// Uploads one block's weights, converted to T.
    pub fn load(device: &Device, w: &DitBlockWeights, config: &DitConfig) -> Result<Self> {
        if config.heads == 0 || config.dim % config.heads != 0 {
            return Err(Error::invalid(
                "config.heads",
                format!("{} heads do not divide D = {}", config.heads, config.dim),
            ));
        }
        Ok(DitBlock {
            dim: config.dim,
            heads: config.heads,
            num_classes: config.num_classes,
            t1: linear(device, "timestep_embedder.linear_1", &w.t_w1, &w.t_b1)?,
            t2: linear(device, "timestep_embedder.linear_2", &w.t_w2, &w.t_b2)?,
            label_table: upload(device, &w.label_table)?,
            ada: linear(device, "norm1.linear", &w.ada_w, &w.ada_b)?,
            qkv: linear(device, "attn1.to_qkv", &w.qkv_w, &w.qkv_b)?,
            proj: linear(device, "attn1.to_out.0", &w.proj_w, &w.proj_b)?,
            fc1: linear(device, "ff.net.0.proj", &w.fc1_w, &w.fc1_b)?,
            fc2: linear(device, "ff.net.2", &w.fc2_w, &w.fc2_b)?,
        })
    }

    /// `ws.cond = silu(timestep_mlp(ws.t_freq) + label_table[labels])`, `[B, D]`: the
    /// second timestep GEMM adds onto the label rows through its residual epilogue.
    fn conditioning(&self, device: &Device, labels: BufferView<'_, u32>, ws: &mut Workspace<T>) -> Result<()> {
        let batch = ws.shape.batch;
        self.t1.forward(device, ws.fusion, ws.t_freq.as_view(), batch, GemmEpilogue::BiasSilu, &mut ws.cond_hidden)?;
        label_embedding_into(device, labels, &self.label_table, self.num_classes, self.dim, &mut ws.cond)?;
        self.t2.residual(
            device,
            ws.fusion,
            ws.cond_hidden.as_view(),
            batch,
            1,
            ws.ones.as_view(),
            self.dim,
            &mut ws.cond,
        )?;
        silu_in_place(device, &mut ws.cond)
    }

    /// The block on `x` (`[B, T, D]`), in place, conditioned on `labels` and on the
    /// timestep sinusoid that [`Dit::embed_into`] left in `ws`.
    pub fn forward<'o>(
        &self,
        device: &Device,
        labels: BufferView<'_, u32>,
        x: impl Into<BufferViewMut<'o, T>>,
        ws: &mut Workspace<T>,
    ) -> Result<()> {
        ws.check(ws.shape, self.dim, self.heads, self.fc1.out_features)?;
        self.conditioning(device, labels, ws)?;
        self.forward_conditioned(device, x, ws)
    }

    /// The block after [`DitBlock::conditioning`] left `silu(c)` in `ws.cond`.
    fn forward_conditioned<'o>(
        &self,
        device: &Device,
        x: impl Into<BufferViewMut<'o, T>>,
        ws: &mut Workspace<T>,
    ) -> Result<()> {
        let mut x = x.into();
        let (d, batch, tokens) = (self.dim, ws.shape.batch, ws.shape.tokens);
        self.ada.forward(device, ws.fusion, ws.cond.as_view(), batch, GemmEpilogue::Bias, &mut ws.modulation)?;
        let shape = AdalnShape { batch, tokens, dim: d };
        {
            let m = Modulation::chunks(&ws.modulation, d, 6, 0, 1)?;
            let options = norm_options(ADA_EPS, ws.fusion);
            adaln_modulate_into(device, x.as_view(), shape, &m, &options, &mut ws.norm)?;
        }
        attention_residual(device, &self.qkv, &self.proj, ws, Gate::Modulation { chunk: 2 }, x.reborrow())?;
        {
            let m = Modulation::chunks(&ws.modulation, d, 6, 3, 4)?;
            let options = norm_options(MLP_NORM_EPS, ws.fusion);
            adaln_modulate_into(device, x.as_view(), shape, &m, &options, &mut ws.norm)?;
        }
        mlp_residual(device, &self.fc1, &self.fc2, ws, Gate::Modulation { chunk: 5 }, x)
    }
}

/// A whole DiT on device.
pub struct Dit<T: FloatElement> {
    config: DitConfig,
    patch_w: DeviceBuffer<T>,
    patch_b: DeviceBuffer<T>,
    pos: DeviceBuffer<T>,
    blocks: Vec<DitBlock<T>>,
    out1: Linear<T>,
    out2: Linear<T>,
}

impl<T: FloatElement + LinearOutput<T>> Dit<T> {
    /// Uploads a diffusers DiT ([`DitWeights::from_checkpoint`]), converted to T, and its
    /// sin-cos position embedding for `sample_size`².
    pub fn load(device: &Device, w: &DitWeights) -> Result<Self> {
        let c = &w.config;
        if w.blocks.is_empty() || w.blocks.len() != c.layers {
            return Err(Error::invalid(
                "weights",
                format!(
                    "{} blocks for config.layers = {}; a DiT needs at least one (the final layer uses block 0's embeddings)",
                    w.blocks.len(),
                    c.layers
                ),
            ));
        }
        let grid = c.sample_size / c.patch;
        let pos: Vec<T> = sincos_pos_embed_2d(c.dim, grid, grid)?.iter().map(|&v| T::from_f32(v)).collect();
        Ok(Dit {
            config: c.clone(),
            patch_w: upload(device, &w.patch_w)?,
            patch_b: upload(device, &w.patch_b)?,
            pos: device.upload(&pos)?,
            blocks: w.blocks.iter().map(|b| DitBlock::load(device, b, c)).collect::<Result<Vec<_>>>()?,
            out1: linear(device, "proj_out_1", &w.out1_w, &w.out1_b)?,
            out2: linear(device, "proj_out_2", &w.out2_w, &w.out2_b)?,
        })
    }

    /// Device bytes of the weights (and the position embedding).
    pub fn weight_bytes(&self) -> usize {
        let linears = |b: &DitBlock<T>| {
            [&b.t1, &b.t2, &b.ada, &b.qkv, &b.proj, &b.fc1, &b.fc2].iter().map(|l| l.len()).sum::<usize>()
                + b.label_table.len()
        };
        let n = self.patch_w.len()
            + self.patch_b.len()
            + self.pos.len()
            + self.out1.len()
            + self.out2.len()
            + self.blocks.iter().map(linears).sum::<usize>();
        n * std::mem::size_of::<T>()
    }

    /// The architecture.
    pub fn config(&self) -> &DitConfig {
        &self.config
    }

    /// Tokens per sample, `(sample_size / patch)²`.
    pub fn tokens(&self) -> usize {
        let g = self.config.sample_size / self.config.patch;
        g * g
    }

    /// A workspace for a batch of `batch` latents.
    pub fn workspace(&self, device: &Device, batch: usize) -> Result<Workspace<T>> {
        let c = &self.config;
        Workspace::new(device, TokenShape { batch, tokens: self.tokens() }, c.dim, c.heads, c.mlp_hidden, c.freq_dim)
    }

    /// The forward: `out [B, out_channels, H, W]`, through `tokens` (`[B, T, D]`, the
    /// residual stream, left holding the last block's output).
    pub fn forward<'o>(
        &self,
        device: &Device,
        inputs: &DitInputs<'_, T>,
        ws: &mut Workspace<T>,
        tokens: &mut DeviceBuffer<T>,
        out: impl Into<BufferViewMut<'o, T>>,
    ) -> Result<()> {
        let c = &self.config;
        let batch = ws.shape.batch;
        let (h, d) = (c.sample_size, c.dim);
        self.embed_into(device, inputs, ws, tokens)?;
        let (first, rest) =
            self.blocks.split_first().ok_or_else(|| Error::invalid("weights", "a DiT without blocks"))?;
        ws.check(ws.shape, first.dim, first.heads, first.fc1.out_features)?;
        // The final layer is conditioned on block 0's embeddings: its [B, 2D] shift/scale
        // GEMM runs while block 0's silu(c) is in ws.cond, into a buffer no block writes.
        first.conditioning(device, inputs.labels, ws)?;
        self.out1.forward(device, ws.fusion, ws.cond.as_view(), batch, GemmEpilogue::Bias, &mut ws.final_modulation)?;
        first.forward_conditioned(device, &mut *tokens, ws)?;
        for block in rest {
            block.forward(device, inputs.labels, &mut *tokens, ws)?;
        }
        let m = Modulation::chunks(&ws.final_modulation, d, 2, 0, 1)?;
        let shape = AdalnShape { batch, tokens: self.tokens(), dim: d };
        let options = norm_options(ADA_EPS, ws.fusion);
        adaln_modulate_into(device, tokens.as_view(), shape, &m, &options, &mut ws.norm)?;
        let fold = PatchShape { batch, channels: c.out_channels, height: h, width: h, patch: c.patch, dim: d };
        unpatchify_latents_into(device, &ws.norm, &self.out2.w, &self.out2.b, fold, out)
    }

    /// The blocks, for running a forward stage by stage: [`Dit::embed_into`], then each
    /// block's [`DitBlock::forward`] (what [`Dit::forward`] does before its final layer).
    pub fn blocks(&self) -> &[DitBlock<T>] {
        &self.blocks
    }

    /// The patch embedding + position embedding of `inputs.latents` into `tokens`
    /// (`[B, T, D]`), and the timestep sinusoid into `ws` (for the blocks).
    pub fn embed_into(
        &self,
        device: &Device,
        inputs: &DitInputs<'_, T>,
        ws: &mut Workspace<T>,
        tokens: &mut DeviceBuffer<T>,
    ) -> Result<()> {
        let c = &self.config;
        let batch = ws.shape.batch;
        let shape = PatchShape {
            batch,
            channels: c.in_channels,
            height: c.sample_size,
            width: c.sample_size,
            patch: c.patch,
            dim: c.dim,
        };
        let (w, b, pos) = (self.patch_w.as_view(), self.patch_b.as_view(), Some(self.pos.as_view()));
        match ws.fusion {
            Fusion::Fused => patchify_latents_into(device, inputs.latents, w, b, pos, shape, &mut *tokens)?,
            Fusion::Unfused => {
                patchify_unfused_into(device, PatchInput::Latents(inputs.latents), w, b, pos, shape, &mut *tokens)?
            }
        }
        // diffusers' CombinedTimestepLabelEmbeddings: Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=1).
        timestep_embedding_shifted_into(device, inputs.timesteps, c.freq_dim, DEFAULT_MAX_PERIOD, 1, &mut ws.t_freq)
    }
}
