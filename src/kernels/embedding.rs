//! The conditioning embeddings of a diffusion transformer: the typed wrappers of
//! `kernels/embedding.cu`.
//!
//! - [`timestep_embedding`]: `t [B]` (f32, fractional allowed) → `[B, dim]`, DiT's
//!   sinusoidal `timestep_embedding` (cos half first, then sin, odd `dim` zero-padded in the
//!   last column); [`timestep_embedding_shifted_into`] adds diffusers' `downscale_freq_shift`
//!   (1 in diffusers' DiT). Computed in f32; every value is within 2 ulp (f32) of the exact cos/sin
//!   of the f32 argument `fl(t·freq_i)`, whose frequency `freq_i` is the same f32 value on
//!   every backend (see kernels/embedding.cu and [`crate::reference::embedding`]).
//! - [`label_embedding`]: `labels [B]` (u32) → rows of a table `[num_classes + 1, dim]`; label
//!   `num_classes` is the "null" class of classifier-free guidance.
//!
//! ```no_run
//! use tessera::{label_embedding, timestep_embedding, Device, DEFAULT_MAX_PERIOD};
//! let device = Device::best();
//! let t = device.upload(&[0.0f32, 0.5, 999.0])?;
//! let emb = timestep_embedding::<f32>(&device, &t, 256, DEFAULT_MAX_PERIOD)?; // [3, 256]
//! let table = device.upload(&vec![0.0f32; 1001 * 1152])?;                   // 1000 classes + null
//! let labels = device.upload(&[7u32, 1000, 42])?;
//! let y = label_embedding(&device, &labels, &table, 1000, 1152)?;             // [3, 1152]
//! # Ok::<(), tessera::Error>(())
//! ```

use crate::device::{BackendKind, BufferView, BufferViewMut, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::checks::{check_len, host, host_mut, row_count, RowStatus};
use crate::kernels::constants::embedding as consts;
use crate::kernels::launch::LaunchConfig;
use crate::reference;

/// DiT's (and diffusers') default `max_period` of the timestep embedding.
pub const DEFAULT_MAX_PERIOD: f64 = 10_000.0;

const TIMESTEP_OP: &str = "timestep_embedding";
const TIMESTEP_REASON: &str = "t is not finite, or t·freq overflows f32 (possible only with max_period < 1)";
const LABEL_OP: &str = "label_embedding";
const LABEL_REASON: &str = "label is greater than num_classes (the null class); its output row is zeros";

declare_kernels! {
    /// C: `embedding_timestep_<T>(const float* t, T* out, unsigned* status, unsigned n,
    ///     unsigned dim, unsigned freq_divisor, float neg_log_max_period)` — one thread per
    ///     16 bytes of output; `freq_divisor` = `dim / 2 − downscale_freq_shift`
    ///     (≥ 1 when dim ≥ 2; dim = 1 has no frequency).
    fn embedding_timestep<T: f32 | f16 | bf16>(t: input f32, out: output T, status: output u32,
        n: scalar u32, dim: scalar u32, freq_divisor: scalar u32, neg_log_max_period: scalar f32);
    /// C: `embedding_label_v1_<T>(const unsigned* labels, const T* table, T* out,
    ///     unsigned* status, unsigned n, unsigned num_classes, unsigned dim)` — one thread per element.
    fn embedding_label_v1<T: f32 | f16 | bf16>(labels: input u32, table: input T, out: output T,
        status: output u32, n: scalar u32, num_classes: scalar u32, dim: scalar u32);
    /// C: `embedding_label_<T>(const unsigned* labels, const T* table, T* out,
    ///     unsigned* status, unsigned n, unsigned num_classes, unsigned dim)` — one warp per row.
    fn embedding_label<T: f32 | f16 | bf16>(labels: input u32, table: input T, out: output T,
        status: output u32, n: scalar u32, num_classes: scalar u32, dim: scalar u32);
}

/// Which label-embedding kernel to run (for tests and benchmarks, see
/// [`label_embedding_into_using`]; the default is `Warp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelEmbeddingKernel {
    /// `embedding_label_v1_*`: one thread per output element, scalar accesses (the plain
    /// per-element gather).
    Simple,
    /// `embedding_label_*`: one warp per output row, 16-byte copies where the row allows.
    Warp,
}

fn check_dim(dim: usize) -> Result<u32> {
    if dim == 0 {
        return Err(Error::invalid("dim", "must be at least 1"));
    }
    u32::try_from(dim).map_err(|_| Error::invalid("dim", format!("{dim} is more than {} columns", u32::MAX)))
}

/// The sinusoidal timestep embedding of `t` (`[B]`, f32) as a new `[B, dim]` buffer; see
/// [`timestep_embedding_into`].
pub fn timestep_embedding<'a, T: FloatElement>(
    device: &Device,
    t: impl Into<BufferView<'a, f32>>,
    dim: usize,
    max_period: f64,
) -> Result<DeviceBuffer<T>> {
    let t = t.into();
    check_dim(dim)?;
    let len = t.len().checked_mul(dim).ok_or_else(|| Error::invalid("dim", "B·dim overflows"))?;
    let mut out = DeviceBuffer::uninit(device, len)?;
    timestep_embedding_into(device, t, dim, max_period, &mut out)?;
    Ok(out)
}

/// The timestep embedding of `t` (`[B]`, f32, any real t) into `out` (`[B, dim]`,
/// row-major; a buffer or a view): with `half = dim / 2` and
/// `freq_i = exp(−ln(max_period)·i/half)` (in f32, PyTorch's order of operations),
/// `out[b, i] = cos(t_b·freq_i)`, `out[b, half + i] = sin(t_b·freq_i)`, and the last column
/// 0 when `dim` is odd (DiT's `TimestepEmbedder.timestep_embedding`; `max_period` =
/// [`DEFAULT_MAX_PERIOD`] there). This is [`timestep_embedding_shifted_into`] with
/// `downscale_freq_shift` = 0; diffusers' DiT (`CombinedTimestepLabelEmbeddings`) uses 1.
///
/// Accuracy: within 2 ulp (f32) of the exact cos/sin of the f32 product `fl(t_b·freq_i)`,
/// then rounded to `T`; the same bits on Cuda and Emulator.
///
/// Errors: `dim` = 0, `max_period` not finite or ≤ 0 ([`Error::InvalidArgument`]);
/// `out.len() ≠ B·dim` ([`Error::LengthMismatch`] naming `out`). A row whose `t` is NaN or
/// ±Inf (or whose `t·freq_i` overflows, possible only with `max_period` < 1) is
/// [`Error::InvalidValue`] naming `t` and the first such row, reported at the next
/// synchronizing call on Cuda and Emulator (from this call on Cpu); that row still holds
/// cos/sin of each argument (NaN where it is not finite) and the pad 0.
pub fn timestep_embedding_into<'a, T: FloatElement>(
    device: &Device,
    t: impl Into<BufferView<'a, f32>>,
    dim: usize,
    max_period: f64,
    out: impl Into<BufferViewMut<'a, T>>,
) -> Result<()> {
    timestep_embedding_shifted_into(device, t, dim, max_period, 0, out)
}

/// The timestep embedding with diffusers' `downscale_freq_shift` (`get_timestep_embedding`,
/// `flip_sin_to_cos=True`): as [`timestep_embedding_into`] but with
/// `freq_i = exp(fl(fl(−ln(max_period)·i) / (half − downscale_freq_shift)))` (f32, PyTorch's
/// order of operations), `i = 0 .. half − 1`; the column layout (cos half, sin half, odd-dim
/// pad) does not change. `downscale_freq_shift` = 0 is the original DiT's
/// `TimestepEmbedder` (= [`timestep_embedding_into`]); 1 is diffusers' DiT
/// (`DiTTransformer2DModel`'s `CombinedTimestepLabelEmbeddings`, whose
/// `Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=1)` gives `freq_i =
/// 10000^(−i/127)`: the last frequency is 1/max_period, up to rounding).
///
/// Accuracy and invalid-value reporting as [`timestep_embedding_into`].
///
/// Errors: as [`timestep_embedding_into`], and [`Error::InvalidArgument`] naming
/// `downscale_freq_shift` when it is not 0 and `half − downscale_freq_shift` < 1
/// (`dim < 2·(shift + 1)`: diffusers would divide by zero, giving NaN, or by a negative
/// count). Shift 0 accepts every `dim` ≥ 1, as [`timestep_embedding_into`] does.
pub fn timestep_embedding_shifted_into<'a, T: FloatElement>(
    device: &Device,
    t: impl Into<BufferView<'a, f32>>,
    dim: usize,
    max_period: f64,
    downscale_freq_shift: usize,
    out: impl Into<BufferViewMut<'a, T>>,
) -> Result<()> {
    let (t, mut out) = (t.into(), out.into());
    let dim32 = check_dim(dim)?;
    if !(max_period.is_finite() && max_period > 0.0) {
        return Err(Error::invalid("max_period", format!("{max_period} must be finite and > 0")));
    }
    // Shift 0 divides by half itself (dim = 1 has no frequency, only the pad column); any
    // other shift needs half − shift ≥ 1, i.e. dim ≥ 2·(shift + 1).
    let half = dim / 2;
    let divisor = match half.checked_sub(downscale_freq_shift) {
        Some(d) if d >= 1 || downscale_freq_shift == 0 => d,
        _ => {
            return Err(Error::invalid(
                "downscale_freq_shift",
                format!(
                    "{downscale_freq_shift} leaves no frequency divisor: dim / 2 − shift = {half} − \
                     {downscale_freq_shift} must be at least 1 (dim ≥ 2·(shift + 1))"
                ),
            ))
        }
    };
    let n = t.len();
    let total = n.checked_mul(dim).ok_or_else(|| Error::invalid("dim", "B·dim overflows"))?;
    check_len("out", out.len(), total)?;
    device.check_same("t", t.device())?;
    device.check_same("out", out.device())?;

    if device.kind() == BackendKind::Cpu {
        let (tv, o) = (host(&t, "t")?, host_mut(&mut out, "out")?);
        return reference::embedding::timestep_embedding_shifted(tv, dim, max_period, downscale_freq_shift, o)
            .map_err(|row| Error::InvalidValue { op: TIMESTEP_OP, arg: "t", row, reason: TIMESTEP_REASON });
    }
    let n32 = row_count(n, "t")?;
    let threads = consts::EMB_TIMESTEP_THREADS;
    let per_thread = 16 / std::mem::size_of::<T>();
    let cfg = LaunchConfig::for_items(total, per_thread * threads as usize, threads, 0)?;
    let c = reference::embedding::neg_log_max_period(max_period);
    let mut status = RowStatus::new(device)?;
    // divisor ≤ half ≤ dim, which fits u32 (check_dim).
    embedding_timestep(device, &cfg, t, out, status.buffer(), n32, dim32, divisor as u32, c)?;
    status.defer(TIMESTEP_OP, "t", TIMESTEP_REASON);
    Ok(())
}

/// The label embedding as a new `[B, dim]` buffer; see [`label_embedding_into`].
pub fn label_embedding<'a, T: FloatElement>(
    device: &Device,
    labels: impl Into<BufferView<'a, u32>>,
    table: impl Into<BufferView<'a, T>>,
    num_classes: usize,
    dim: usize,
) -> Result<DeviceBuffer<T>> {
    let (labels, table) = (labels.into(), table.into());
    check_dim(dim)?;
    let len = labels.len().checked_mul(dim).ok_or_else(|| Error::invalid("dim", "B·dim overflows"))?;
    let mut out = DeviceBuffer::uninit(device, len)?;
    label_embedding_into(device, labels, table, num_classes, dim, &mut out)?;
    Ok(out)
}

/// The label embedding: `out[b, :] = table[labels[b], :]`, with `labels` `[B]` (u32),
/// `table` `[num_classes + 1, dim]` (row-major; row `num_classes` is the "null" class of
/// classifier-free guidance) and `out` `[B, dim]` (buffers or views). Runs
/// [`LabelEmbeddingKernel::Warp`].
///
/// Errors: `dim` = 0, `num_classes` beyond u32 ([`Error::InvalidArgument`]);
/// `table.len() ≠ (num_classes + 1)·dim` or `out.len() ≠ B·dim` ([`Error::LengthMismatch`]
/// naming `table` / `out`). A label > `num_classes` is [`Error::InvalidValue`] naming
/// `labels` and the first such row, reported at the next synchronizing call on Cuda and
/// Emulator (from this call on Cpu); that output row is written with zeros.
pub fn label_embedding_into<'a, T: FloatElement>(
    device: &Device,
    labels: impl Into<BufferView<'a, u32>>,
    table: impl Into<BufferView<'a, T>>,
    num_classes: usize,
    dim: usize,
    out: impl Into<BufferViewMut<'a, T>>,
) -> Result<()> {
    label_embedding_into_using(device, LabelEmbeddingKernel::Warp, labels, table, num_classes, dim, out)
}

/// [`label_embedding_into`] running `kernel` (for tests and benchmarks; the Cpu backend
/// ignores it).
pub fn label_embedding_into_using<'a, T: FloatElement>(
    device: &Device,
    kernel: LabelEmbeddingKernel,
    labels: impl Into<BufferView<'a, u32>>,
    table: impl Into<BufferView<'a, T>>,
    num_classes: usize,
    dim: usize,
    out: impl Into<BufferViewMut<'a, T>>,
) -> Result<()> {
    let (labels, table, mut out) = (labels.into(), table.into(), out.into());
    let dim32 = check_dim(dim)?;
    let classes32 = u32::try_from(num_classes)
        .ok()
        .filter(|&c| c < u32::MAX)
        .ok_or_else(|| Error::invalid("num_classes", format!("{num_classes} is more than {}", u32::MAX - 1)))?;
    let table_len =
        (num_classes + 1).checked_mul(dim).ok_or_else(|| Error::invalid("table", "(num_classes + 1)·dim overflows"))?;
    check_len("table", table.len(), table_len)?;
    let n = labels.len();
    let total = n.checked_mul(dim).ok_or_else(|| Error::invalid("dim", "B·dim overflows"))?;
    check_len("out", out.len(), total)?;
    device.check_same("labels", labels.device())?;
    device.check_same("table", table.device())?;
    device.check_same("out", out.device())?;

    if device.kind() == BackendKind::Cpu {
        let (l, tb, o) = (host(&labels, "labels")?, host(&table, "table")?, host_mut(&mut out, "out")?);
        return reference::embedding::label_embedding(l, tb, num_classes, dim, o).map_err(|row| Error::InvalidValue {
            op: LABEL_OP,
            arg: "labels",
            row,
            reason: LABEL_REASON,
        });
    }
    let n32 = row_count(n, "labels")?;
    let mut status = RowStatus::new(device)?;
    let s = status.buffer();
    match kernel {
        LabelEmbeddingKernel::Simple => {
            let threads = consts::EMB_LABEL_V1_THREADS;
            let cfg = LaunchConfig::for_items(total, threads as usize, threads, 0)?;
            embedding_label_v1(device, &cfg, labels, table, out, s, n32, classes32, dim32)?;
        }
        LabelEmbeddingKernel::Warp => {
            let cfg = LaunchConfig::for_items(n, consts::EMB_LABEL_WARPS as usize, consts::EMB_LABEL_THREADS, 0)?;
            embedding_label(device, &cfg, labels, table, out, s, n32, classes32, dim32)?;
        }
    }
    status.defer(LABEL_OP, "labels", LABEL_REASON);
    Ok(())
}

/// The weights of DiT's timestep MLP (diffusers' `TimestepEmbedding`: `linear_1`, SiLU,
/// `linear_2`), in nn.Linear's layout: `w1 [hidden, dim]`, `b1 [hidden]`, `w2 [hidden,
/// hidden]`, `b2 [hidden]`.
#[derive(Clone, Copy, Debug)]
pub struct TimestepMlp<'a, T: FloatElement> {
    /// `linear_1.weight`.
    pub w1: BufferView<'a, T>,
    /// `linear_1.bias`.
    pub b1: BufferView<'a, T>,
    /// `linear_2.weight`.
    pub w2: BufferView<'a, T>,
    /// `linear_2.bias`.
    pub b2: BufferView<'a, T>,
    /// The MLP's width (`time_embed_dim`).
    pub hidden: usize,
}

/// The timestep MLP on an embedding `emb [B, dim]` (e.g. from [`timestep_embedding_into`]):
/// `out = linear_2(silu(linear_1(emb)))`, two GEMMs (the first with the bias + SiLU
/// epilogue) through `scratch [B, hidden]`; `out [B, hidden]`. Both GEMMs have m = B, so
/// they take the skinny split-K kernel.
pub fn timestep_mlp_into<'a, 's, 'o, T: FloatElement + crate::kernels::gemm::LinearOutput<T>>(
    device: &Device,
    emb: impl Into<BufferView<'a, T>>,
    dim: usize,
    mlp: &TimestepMlp<'a, T>,
    scratch: impl Into<BufferViewMut<'s, T>>,
    out: impl Into<BufferViewMut<'o, T>>,
) -> Result<()> {
    use crate::kernels::gemm::{linear_into, GemmEpilogue, GemmOptions, GemmShape};
    let (emb, mut scratch) = (emb.into(), scratch.into());
    check_dim(dim)?;
    if emb.len() % dim != 0 {
        return Err(Error::invalid("emb", format!("{} elements are not whole rows of dim = {dim}", emb.len())));
    }
    let batch = emb.len() / dim;
    let options = GemmOptions::default();
    let first = GemmShape { m: batch, n: mlp.hidden, k: dim };
    linear_into(device, emb, mlp.w1, first, &GemmEpilogue::BiasSilu(mlp.b1), scratch.reborrow(), &options)?;
    let second = GemmShape { m: batch, n: mlp.hidden, k: mlp.hidden };
    linear_into(device, scratch.as_view(), mlp.w2, second, &GemmEpilogue::Bias(mlp.b2), out, &options)
}
