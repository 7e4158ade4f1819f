//! The tokenizer's bottleneck behind one trait: FSQ, VQ (L2 or cosine), LFQ, BSQ and
//! residual VQ turn the encoder's latent tokens into token ids and the values the decoder
//! reads (`decode` turns stored ids back into those values); the continuous KL bottleneck
//! ([`KlBottleneck`]) samples `mean + exp(logvar / 2)·ε` or takes the mean.

use crate::device::{BufferView, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::binary_quant::{BinaryQuantOp, BinaryQuantizer};
use crate::kernels::codebook::{Codebook, SearchOptions};
use crate::kernels::embedding::label_embedding_into;
use crate::kernels::fsq::Fsq;
use crate::kernels::kl::{kl_sample, KlMode};
use crate::kernels::patchify::add_position_embedding;
use crate::kernels::residual_vq::ResidualVq;

/// What a bottleneck gives for `n` latent tokens.
#[derive(Debug)]
pub struct Bottlenecked<T: FloatElement> {
    /// `[n, out_dim]`: the decoder's input.
    pub values: DeviceBuffer<T>,
    /// `[n, indices_per_token]` token ids (row-major), for a discrete bottleneck.
    pub indices: Option<DeviceBuffer<u32>>,
}

/// A tokenizer bottleneck over latent tokens `[n, in_dim]` (row-major) in T.
pub trait Bottleneck<T: FloatElement> {
    /// Width of the latent tokens it reads.
    fn in_dim(&self) -> usize;
    /// Width of the values it gives the decoder.
    fn out_dim(&self) -> usize;
    /// Token ids per latent token (groups, stages); 0 for a continuous bottleneck.
    fn indices_per_token(&self) -> usize;
    /// How many values each id takes (`None` for a continuous bottleneck).
    fn vocabulary(&self) -> Option<u64>;
    /// Quantizes (or samples) the latents.
    fn forward(&self, device: &Device, latents: BufferView<'_, T>) -> Result<Bottlenecked<T>>;
    /// The decoder's input for stored ids `[n, indices_per_token]`: the values `forward`
    /// gave for them. A continuous bottleneck has no ids ([`Error::Unsupported`]).
    fn decode(&self, device: &Device, indices: BufferView<'_, u32>) -> Result<DeviceBuffer<T>>;
}

fn rows_of(len: usize, width: usize, arg: &'static str) -> Result<usize> {
    if width == 0 || len % width != 0 {
        return Err(Error::invalid(arg, format!("{len} elements are not whole rows of {width}")));
    }
    Ok(len / width)
}

impl<T: FloatElement> Bottleneck<T> for Fsq {
    fn in_dim(&self) -> usize {
        self.dim()
    }
    fn out_dim(&self) -> usize {
        self.dim()
    }
    fn indices_per_token(&self) -> usize {
        1
    }
    fn vocabulary(&self) -> Option<u64> {
        Some(self.codebook_size() as u64)
    }
    fn forward(&self, device: &Device, latents: BufferView<'_, T>) -> Result<Bottlenecked<T>> {
        let q = self.quantize(device, latents)?;
        Ok(Bottlenecked { values: q.values, indices: Some(q.indices) })
    }
    fn decode(&self, device: &Device, indices: BufferView<'_, u32>) -> Result<DeviceBuffer<T>> {
        Ok(self.dequantize::<T>(device, indices)?.values)
    }
}

/// Vector quantization against one codebook (squared L2 or cosine, as the codebook's
/// metric says), searched with `options`.
#[derive(Debug)]
pub struct VqBottleneck<T: FloatElement> {
    /// The codebook.
    pub codebook: Codebook<T>,
    /// How it is searched.
    pub options: SearchOptions,
}

/// `out[i] = table[ids[i]]`, rows of `dim` (the label-embedding gather).
fn gather<T: FloatElement>(
    device: &Device,
    table: &DeviceBuffer<T>,
    dim: usize,
    ids: BufferView<'_, u32>,
) -> Result<DeviceBuffer<T>> {
    let entries = rows_of(table.len(), dim, "codebook")?;
    let len = ids.len().checked_mul(dim).ok_or_else(|| Error::invalid("indices", "too many ids"))?;
    let mut out = DeviceBuffer::uninit(device, len)?;
    label_embedding_into(device, ids, table, entries - 1, dim, &mut out)?;
    Ok(out)
}

impl<T: FloatElement> Bottleneck<T> for VqBottleneck<T> {
    fn in_dim(&self) -> usize {
        self.codebook.dim()
    }
    fn out_dim(&self) -> usize {
        self.codebook.dim()
    }
    fn indices_per_token(&self) -> usize {
        1
    }
    fn vocabulary(&self) -> Option<u64> {
        Some(self.codebook.len() as u64)
    }
    fn forward(&self, device: &Device, latents: BufferView<'_, T>) -> Result<Bottlenecked<T>> {
        let q = self.codebook.quantize(device, latents, &self.options)?;
        Ok(Bottlenecked { values: q.quantized, indices: Some(q.indices) })
    }
    /// The chosen entries (for cosine, the normalized ones), gathered on the device; an id
    /// ≥ the codebook size is [`Error::InvalidValue`] at the next synchronizing call.
    fn decode(&self, device: &Device, indices: BufferView<'_, u32>) -> Result<DeviceBuffer<T>> {
        gather(device, self.codebook.searched_entries(), self.codebook.dim(), indices)
    }
}

impl<T: FloatElement> Bottleneck<T> for BinaryQuantizer {
    fn in_dim(&self) -> usize {
        self.dim()
    }
    fn out_dim(&self) -> usize {
        self.dim()
    }
    fn indices_per_token(&self) -> usize {
        self.groups()
    }
    fn vocabulary(&self) -> Option<u64> {
        Some(1u64 << self.group_bits())
    }
    fn forward(&self, device: &Device, latents: BufferView<'_, T>) -> Result<Bottlenecked<T>> {
        let q = self.quantize(device, latents)?;
        Ok(Bottlenecked { values: q.values, indices: Some(q.indices) })
    }
    /// Each id's bits back to `±1` (LFQ) or `±1/√d` (BSQ). Computed on the host (the ids
    /// are downloaded, so this synchronizes the device); an id with a bit above its group's
    /// width is [`Error::InvalidArgument`] naming `indices`.
    fn decode(&self, device: &Device, indices: BufferView<'_, u32>) -> Result<DeviceBuffer<T>> {
        let (d, g, gb) = (self.dim(), self.groups(), self.group_bits() as usize);
        let n = rows_of(indices.len(), g, "indices")?;
        let ids = indices.download()?;
        let scale = match self.op() {
            BinaryQuantOp::Lfq => 1.0f32,
            BinaryQuantOp::Bsq => crate::reference::binary_quant::bsq_scale(d),
        };
        let mut values = Vec::with_capacity(n * d);
        for row in 0..n {
            for group in 0..g {
                let id = ids[row * g + group];
                let width = gb.min(d - group * gb);
                if width < 32 && id >> width != 0 {
                    return Err(Error::invalid(
                        "indices",
                        format!("row {row} group {group}: id {id} has more than {width} bits"),
                    ));
                }
                for j in 0..width {
                    let sign = if (id >> j) & 1 == 1 { 1.0 } else { -1.0 };
                    values.push(T::from_f32(sign * scale));
                }
            }
        }
        device.upload(&values)
    }
}

impl<T: FloatElement> Bottleneck<T> for ResidualVq<T> {
    fn in_dim(&self) -> usize {
        self.dim()
    }
    fn out_dim(&self) -> usize {
        self.dim()
    }
    fn indices_per_token(&self) -> usize {
        self.stages().len()
    }
    fn vocabulary(&self) -> Option<u64> {
        self.stages().iter().map(|s| s.len() as u64).max()
    }
    fn forward(&self, device: &Device, latents: BufferView<'_, T>) -> Result<Bottlenecked<T>> {
        let q = self.quantize(device, latents)?;
        Ok(Bottlenecked { values: q.quantized, indices: Some(q.indices) })
    }
    /// The sum of each stage's entry, added stage by stage in T (so in f16/bf16 it may
    /// differ from `forward`'s values, which sum in f32 and round once, by a rounding per
    /// stage). Ids must be `[n, S]` (stage fastest); they are downloaded to split them per
    /// stage, so this synchronizes the device.
    fn decode(&self, device: &Device, indices: BufferView<'_, u32>) -> Result<DeviceBuffer<T>> {
        let (s, d) = (self.stages().len(), self.dim());
        let n = rows_of(indices.len(), s, "indices")?;
        // Stage-major copies of the ids: stage k's ids are column k of [n, S].
        if n == 0 {
            return DeviceBuffer::uninit(device, 0);
        }
        let ids = indices.download()?;
        let mut sum: Option<DeviceBuffer<T>> = None;
        for (k, stage) in self.stages().iter().enumerate() {
            let column: Vec<u32> = (0..n).map(|r| ids[r * s + k]).collect();
            let column = device.upload(&column)?;
            let part = gather(device, stage.entries(), d, column.as_view())?;
            match sum.as_mut() {
                None => sum = Some(part),
                Some(acc) => add_position_embedding(device, &mut *acc, &part, n, d)?,
            }
        }
        sum.ok_or_else(|| Error::invalid("stages", "a residual VQ has at least one stage"))
    }
}

/// The continuous, KL-regularized bottleneck: latent tokens `[n, 2C]` are `mean` then
/// `logvar` (diffusers' `DiagonalGaussianDistribution` order); the decoder gets
/// `mean + exp(clamp(logvar, −30, 20) / 2)·ε` with ε from a seeded counter-based device
/// RNG ([`KlMode::Sample`]), or `mean` ([`KlMode::Mean`]). It has no ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KlBottleneck {
    /// C, the channels the decoder reads.
    pub channels: usize,
    /// Sample or mean.
    pub mode: KlMode,
}

impl<T: FloatElement> Bottleneck<T> for KlBottleneck {
    fn in_dim(&self) -> usize {
        2 * self.channels
    }
    fn out_dim(&self) -> usize {
        self.channels
    }
    fn indices_per_token(&self) -> usize {
        0
    }
    fn vocabulary(&self) -> Option<u64> {
        None
    }
    fn forward(&self, device: &Device, latents: BufferView<'_, T>) -> Result<Bottlenecked<T>> {
        Ok(Bottlenecked { values: kl_sample(device, latents, self.channels, self.mode)?, indices: None })
    }
    fn decode(&self, device: &Device, _indices: BufferView<'_, u32>) -> Result<DeviceBuffer<T>> {
        Err(Error::Unsupported {
            op: "KlBottleneck::decode",
            backend: device.kind(),
            reason: "a continuous bottleneck has no token ids; keep its values".into(),
        })
    }
}
