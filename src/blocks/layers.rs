//! The two halves every transformer block shares — self-attention over the fused QKV
//! projection, and the GELU MLP — each ending in a residual add fused into the last GEMM's
//! epilogue. The caller has written the normalized rows into `ws.norm`.

use crate::device::{BufferView, BufferViewMut, Device, DeviceBuffer, FloatElement};
use crate::error::Result;
use crate::kernels::attention::{attention_into, AttentionLayout, AttentionOptions, AttentionShape};
use crate::kernels::gemm::{linear_into, linear_unfused_into, GemmEpilogue, GemmOptions, GemmShape, LinearOutput};

use super::workspace::{Fusion, Workspace};

/// Where a block's residual add takes its gate: the workspace's ones (a plain residual,
/// ViT) or chunk `chunk` of the `[B, 6D]` modulation (adaLN-Zero, DiT).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Gate {
    Unit,
    Modulation { chunk: usize },
}

/// One linear layer's device weights: `w [out, in]`, `b [out]`.
pub(crate) struct Linear<T: FloatElement> {
    pub(crate) w: DeviceBuffer<T>,
    pub(crate) b: DeviceBuffer<T>,
    pub(crate) out_features: usize,
    pub(crate) in_features: usize,
}

impl<T: FloatElement + LinearOutput<T>> Linear<T> {
    /// Elements of w and b.
    pub(crate) fn len(&self) -> usize {
        self.w.len() + self.b.len()
    }

    pub(crate) fn shape(&self, rows: usize) -> GemmShape {
        GemmShape { m: rows, n: self.out_features, k: self.in_features }
    }

    /// `out = epilogue(x·wᵀ + b)` for a `Bias*` epilogue constructor.
    pub(crate) fn forward<'a, 'o>(
        &'a self,
        device: &Device,
        fusion: Fusion,
        x: BufferView<'a, T>,
        rows: usize,
        epilogue: fn(BufferView<'a, T>) -> GemmEpilogue<'a, T>,
        out: impl Into<BufferViewMut<'o, T>>,
    ) -> Result<()> {
        let epi = epilogue(self.b.as_view());
        self.run(device, fusion, x, rows, &epi, out)
    }

    /// `x += gate ⊙ (input·wᵀ + b)`, the gate per sample (`tokens` rows each).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn residual<'o>(
        &self,
        device: &Device,
        fusion: Fusion,
        input: BufferView<'_, T>,
        rows: usize,
        tokens: usize,
        gate: BufferView<'_, T>,
        gate_stride: usize,
        x: impl Into<BufferViewMut<'o, T>>,
    ) -> Result<()> {
        let epi = GemmEpilogue::GatedResidual { bias: self.b.as_view(), gate, gate_stride, tokens_per_sample: tokens };
        self.run(device, fusion, input, rows, &epi, x)
    }

    fn run<'a, 'o>(
        &'a self,
        device: &Device,
        fusion: Fusion,
        x: BufferView<'a, T>,
        rows: usize,
        epilogue: &GemmEpilogue<'a, T>,
        out: impl Into<BufferViewMut<'o, T>>,
    ) -> Result<()> {
        let options = GemmOptions::default();
        match fusion {
            Fusion::Fused => linear_into(device, x, &self.w, self.shape(rows), epilogue, out, &options),
            Fusion::Unfused => linear_unfused_into(device, x, &self.w, self.shape(rows), epilogue, out, &options),
        }
    }
}

/// The gate view and its stride.
fn gate_of<T: FloatElement>(ws: &Workspace<T>, gate: Gate) -> Result<(BufferView<'_, T>, usize)> {
    let d = ws.dim;
    match gate {
        Gate::Unit => Ok((ws.ones.as_view(), d)),
        Gate::Modulation { chunk } => Ok((ws.modulation.view(chunk * d..)?, 6 * d)),
    }
}

/// `x += gate ⊙ proj(attention(qkv(ws.norm)))`.
pub(crate) fn attention_residual<'o, T: FloatElement + LinearOutput<T>>(
    device: &Device,
    qkv: &Linear<T>,
    proj: &Linear<T>,
    ws: &mut Workspace<T>,
    gate: Gate,
    x: impl Into<BufferViewMut<'o, T>>,
) -> Result<()> {
    let (shape, d, heads) = (ws.shape, ws.dim, ws.heads);
    let rows = shape.rows();
    qkv.forward(device, ws.fusion, ws.norm.as_view(), rows, GemmEpilogue::Bias, &mut ws.qkv)?;
    let head_dim = d / heads;
    let attn_shape = AttentionShape { batch: shape.batch, heads, head_dim, q_len: shape.tokens, k_len: shape.tokens };
    let part = heads * head_dim;
    let (q, k, v) = (ws.qkv.view(..)?, ws.qkv.view(part..)?, ws.qkv.view(2 * part..)?);
    let layout = AttentionLayout::fused_qkv(heads, head_dim);
    attention_into(device, q, k, v, attn_shape, &layout, &AttentionOptions::default(), &mut ws.attn, &mut ws.lse)?;
    let (g, stride) = gate_of(ws, gate)?;
    proj.residual(device, ws.fusion, ws.attn.as_view(), rows, shape.tokens, g, stride, x)
}

/// `x += gate ⊙ fc2(gelu_tanh(fc1(ws.norm)))`.
pub(crate) fn mlp_residual<'o, T: FloatElement + LinearOutput<T>>(
    device: &Device,
    fc1: &Linear<T>,
    fc2: &Linear<T>,
    ws: &mut Workspace<T>,
    gate: Gate,
    x: impl Into<BufferViewMut<'o, T>>,
) -> Result<()> {
    let (shape, rows) = (ws.shape, ws.shape.rows());
    fc1.forward(device, ws.fusion, ws.norm.as_view(), rows, GemmEpilogue::BiasGelu, &mut ws.hidden)?;
    let (g, stride) = gate_of(ws, gate)?;
    fc2.residual(device, ws.fusion, ws.hidden.as_view(), rows, shape.tokens, g, stride, x)
}
