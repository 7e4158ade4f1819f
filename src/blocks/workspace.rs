//! The activations of one forward, allocated once and reused.

use crate::device::{Device, DeviceBuffer, Element, FloatElement};
use crate::error::{Error, Result};

/// Which kernels a forward runs: the fused ones, or the unfused baseline they replace (for
/// benchmarks: every GEMM epilogue as separate elementwise kernels, adaLN as LayerNorm then
/// a modulation kernel, the patch embedding as im2col + GEMM + position add). Attention is
/// the fused kernel in both (its own baseline is [`crate::attention_unfused_into`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fusion {
    /// The fused kernels.
    #[default]
    Fused,
    /// The unfused baseline.
    Unfused,
}

/// Samples and tokens per sample of a forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenShape {
    /// Samples (B).
    pub batch: usize,
    /// Tokens per sample (T).
    pub tokens: usize,
}

impl TokenShape {
    /// Token rows, B·T.
    pub fn rows(&self) -> usize {
        self.batch * self.tokens
    }
}

/// Scratch of a transformer forward at one shape: the normalized rows, the fused QKV
/// projection, the attention output, the MLP's hidden rows, the attention's log-sum-exp,
/// the conditioning rows of a DiT and the unit gate of the plain residual adds. Sized by
/// [`Workspace::new`]; a forward checks that its shape fits and allocates nothing.
pub struct Workspace<T: Element> {
    pub(crate) shape: TokenShape,
    pub(crate) fusion: Fusion,
    pub(crate) dim: usize,
    pub(crate) heads: usize,
    pub(crate) mlp_hidden: usize,
    /// `[B·T, D]`: LayerNorm / adaLN output, the input of the QKV and MLP GEMMs.
    pub(crate) norm: DeviceBuffer<T>,
    /// `[B·T, 3D]` = `[B, T, 3, H, Dh]`.
    pub(crate) qkv: DeviceBuffer<T>,
    /// `[B·T, D]` = `[B, T, H, Dh]`.
    pub(crate) attn: DeviceBuffer<T>,
    /// `[B·T, mlp_hidden]`.
    pub(crate) hidden: DeviceBuffer<T>,
    /// `[B, H, T]`.
    pub(crate) lse: DeviceBuffer<f32>,
    /// `[B, D]` of ones: the gate that makes the gated-residual epilogue a plain residual.
    pub(crate) ones: DeviceBuffer<T>,
    /// `[B, 6D]`: a DiT block's modulation.
    pub(crate) modulation: DeviceBuffer<T>,
    /// `[B, 2D]`: the DiT final layer's shift and scale (from block 0's conditioning).
    pub(crate) final_modulation: DeviceBuffer<T>,
    /// `[B, D]` ×2: the conditioning (timestep MLP hidden, then c) of a DiT block.
    pub(crate) cond: DeviceBuffer<T>,
    pub(crate) cond_hidden: DeviceBuffer<T>,
    /// `[B, freq_dim]`: the sinusoidal timestep embedding (DiT).
    pub(crate) t_freq: DeviceBuffer<T>,
}

impl<T: FloatElement> Workspace<T> {
    /// Buffers for `shape` tokens of width `dim` with `heads` heads, an MLP of `mlp_hidden`
    /// and (for a DiT) a timestep embedding of `freq_dim` (0 for a ViT).
    pub fn new(
        device: &Device,
        shape: TokenShape,
        dim: usize,
        heads: usize,
        mlp_hidden: usize,
        freq_dim: usize,
    ) -> Result<Workspace<T>> {
        let rows = shape.rows();
        let mul = |a: usize, b: usize| a.checked_mul(b).ok_or_else(|| Error::invalid("shape", "sizes overflow"));
        let ones_value = T::from_f32(1.0);
        Ok(Workspace {
            shape,
            fusion: Fusion::Fused,
            dim,
            heads,
            mlp_hidden,
            norm: DeviceBuffer::uninit(device, mul(rows, dim)?)?,
            qkv: DeviceBuffer::uninit(device, mul(rows, mul(3, dim)?)?)?,
            attn: DeviceBuffer::uninit(device, mul(rows, dim)?)?,
            hidden: DeviceBuffer::uninit(device, mul(rows, mlp_hidden)?)?,
            lse: DeviceBuffer::uninit(device, mul(rows, heads)?)?,
            ones: device.upload(&vec![ones_value; mul(shape.batch, dim)?])?,
            modulation: DeviceBuffer::uninit(device, mul(shape.batch, mul(6, dim)?)?)?,
            final_modulation: DeviceBuffer::uninit(device, mul(shape.batch, mul(2, dim)?)?)?,
            cond: DeviceBuffer::uninit(device, mul(shape.batch, dim)?)?,
            cond_hidden: DeviceBuffer::uninit(device, mul(shape.batch, dim)?)?,
            t_freq: DeviceBuffer::uninit(device, mul(shape.batch, freq_dim)?)?,
        })
    }

    /// Makes the forwards through this workspace run `fusion`'s kernels (default fused).
    pub fn set_fusion(&mut self, fusion: Fusion) {
        self.fusion = fusion;
    }

    /// Device bytes this workspace holds (the activations of a forward besides its input,
    /// output and residual stream).
    pub fn bytes(&self) -> usize {
        let e = std::mem::size_of::<T>();
        (self.norm.len() + self.qkv.len() + self.attn.len() + self.hidden.len() + self.ones.len()) * e
            + (self.modulation.len()
                + self.final_modulation.len()
                + self.cond.len()
                + self.cond_hidden.len()
                + self.t_freq.len())
                * e
            + self.lse.len() * 4
    }

    /// The shape it was sized for.
    pub fn shape(&self) -> TokenShape {
        self.shape
    }

    /// Errors unless this workspace was sized for exactly this forward.
    pub(crate) fn check(&self, shape: TokenShape, dim: usize, heads: usize, mlp_hidden: usize) -> Result<()> {
        if self.shape != shape || self.dim != dim || self.heads != heads || self.mlp_hidden != mlp_hidden {
            return Err(Error::invalid(
                "workspace",
                format!(
                    "sized for {:?}, D {}, {} heads, MLP {}; the forward needs {shape:?}, D {dim}, {heads} heads, MLP {mlp_hidden}",
                    self.shape, self.dim, self.heads, self.mlp_hidden
                ),
            ));
        }
        Ok(())
    }
}
