//! adaLN (DiT's adaptive LayerNorm modulation) and plain LayerNorm: the typed wrappers of
//! `kernels/adaln.cu`.
//!
//! - [`adaln_modulate`]: `y = LN(x)·(1 + scale[b]) + shift[b]`, `x` `[B, T, D]`, LayerNorm
//!   without affine, `shift`/`scale` one row of `D` per sample, usually chunks of the
//!   modulation GEMM's `[B, 6D]` output ([`Modulation::chunks`]).
//! - [`layer_norm`]: `y = LN(x)·weight + bias` (ViT's) or `y = LN(x)`, `x` `[rows, D]`.
//!
//! Both run one fused pass (x read once, y written once), statistics in f32 for every
//! dtype, `1 ≤ D ≤` [`ADALN_MAX_DIM`]. `eps` is [`NormOptions::eps`], 1e-6 by default
//! (DiT's and timm's).
//!
//! ```no_run
//! use tessera::{adaln_modulate, AdalnShape, Device, Modulation, NormOptions};
//! let device = Device::best();
//! let (b, t, d) = (2, 256, 1152);
//! let x = device.upload(&vec![0.5f32; b * t * d])?;
//! let emb = device.upload(&vec![0.0f32; b * 6 * d])?; // [B, 6D]: shift, scale, gate, ... chunks
//! let m = Modulation::chunks(&emb, d, 6, 0, 1)?;     // shift = chunk 0, scale = chunk 1
//! let y = adaln_modulate(&device, &x, AdalnShape { batch: b, tokens: t, dim: d }, &m, &NormOptions::default())?;
//! # Ok::<(), tessera::Error>(())
//! ```

use crate::device::{BackendKind, BufferView, BufferViewMut, Device, DeviceBuffer, Element, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::checks::{check_len, host, host_mut, row_count};
use crate::kernels::constants::adaln as c;
use crate::kernels::launch::LaunchConfig;
use crate::reference;

/// Largest row length `D` the kernels support.
pub const ADALN_MAX_DIM: usize = c::ADALN_MAX_DIM as usize;
/// The default `eps` of [`NormOptions`]: DiT's (and timm's ViT LayerNorm's) 1e-6.
pub const ADALN_DEFAULT_EPS: f32 = 1e-6;

/// Must match `AdalnParams` in kernels/adaln.cu field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct AdalnParams {
    rows: u32,
    dim: u32,
    group_rows: u32,
    group_stride: u32,
    rows_per_team: u32,
    teams: u32,
    mode: u32,
    eps: f32,
}
const _: () = assert!(std::mem::size_of::<AdalnParams>() == 32);
// SAFETY: repr(C) plain data, same layout as the C struct (size asserted on both sides).
unsafe impl cudarc::driver::DeviceRepr for AdalnParams {}

declare_kernels! {
    /// C: `adaln_norm_v1_<T>(const T* x, const T* gamma, const T* beta, T* y, AdalnParams p)`
    /// — one thread per row.
    fn adaln_norm_v1<T: f32 | f16 | bf16>(x: input T, gamma: input T, beta: input T, y: output T,
        p: scalar AdalnParams);
    /// C: `adaln_norm_warp_<T>(const T* x, const T* gamma, const T* beta, T* y, AdalnParams p)`
    /// — one warp per team of rows, D ≤ 512.
    fn adaln_norm_warp<T: f32 | f16 | bf16>(x: input T, gamma: input T, beta: input T, y: output T,
        p: scalar AdalnParams);
    /// C: `adaln_norm_block_<T>(const T* x, const T* gamma, const T* beta, T* y, AdalnParams p)`
    /// — one block per team of rows.
    fn adaln_norm_block<T: f32 | f16 | bf16>(x: input T, gamma: input T, beta: input T, y: output T,
        p: scalar AdalnParams);
    /// C: `adaln_modulate_unfused_<T>(T* y, const T* shift, const T* scale, AdalnParams p)`
    /// — in place, the unfused baseline's second kernel.
    fn adaln_modulate_unfused<T: f32 | f16 | bf16>(y: output T, shift: input T, scale: input T,
        p: scalar AdalnParams);
}

/// Which kernel runs a normalization (for tests and benchmarks; the default is `Auto`).
/// The Cpu backend runs the reference whatever the choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormKernel {
    /// `Warp` for `D ≤ 512`, else `Block`.
    #[default]
    Auto,
    /// `adaln_norm_v1_*`: one thread per row, three passes over global memory.
    Simple,
    /// `adaln_norm_warp_*`: one warp per team of rows, `D ≤ 512`.
    Warp,
    /// `adaln_norm_block_*`: one block per team of rows, any `D`.
    Block,
    /// [`adaln_modulate`] only: the unfused path it replaces, LayerNorm without affine
    /// (the `Auto` kernel) into `out`, then `adaln_modulate_unfused_*` in place.
    Unfused,
}

/// Options of [`adaln_modulate`] and [`layer_norm`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormOptions {
    /// Added to the variance; finite and > 0. Default [`ADALN_DEFAULT_EPS`] = 1e-6.
    pub eps: f32,
    /// The kernel variant; default [`NormKernel::Auto`].
    pub kernel: NormKernel,
}

impl Default for NormOptions {
    fn default() -> Self {
        NormOptions { eps: ADALN_DEFAULT_EPS, kernel: NormKernel::Auto }
    }
}

/// The shape of adaLN's input `x`: `[batch, tokens, dim]`, row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdalnShape {
    /// `B`, samples (one shift/scale row each).
    pub batch: usize,
    /// `T`, tokens per sample.
    pub tokens: usize,
    /// `D`, channels per token, `1..=ADALN_MAX_DIM`.
    pub dim: usize,
}

/// adaLN's per-sample shift and scale: sample `b`'s rows are the `D` elements at
/// `b·row_stride` of `shift` and of `scale` (views whose first element is sample 0's first
/// channel). `row_stride` is `6D` for chunks of DiT's `[B, 6D]` modulation output, `D` for
/// plain `[B, D]` tensors; each view must hold at least `(B − 1)·row_stride + D` elements.
#[derive(Clone, Copy, Debug)]
pub struct Modulation<'a, T: Element> {
    /// `shift[b]`, added after the scaling.
    pub shift: BufferView<'a, T>,
    /// `scale[b]`; the kernel multiplies by `1 + scale`.
    pub scale: BufferView<'a, T>,
    /// Elements between consecutive samples' rows, `≥ D`.
    pub row_stride: usize,
}

impl<'a, T: Element> Modulation<'a, T> {
    /// Shift and scale views with their row stride (checked against the shape by the op).
    pub fn new(shift: impl Into<BufferView<'a, T>>, scale: impl Into<BufferView<'a, T>>, row_stride: usize) -> Self {
        Modulation { shift: shift.into(), scale: scale.into(), row_stride }
    }

    /// Shift and scale as chunks `shift_chunk` and `scale_chunk` of a `[B, chunks·D]`
    /// modulation output (DiT: `chunks = 6`, shift_msa = 0, scale_msa = 1, shift_mlp = 3,
    /// scale_mlp = 4). Errors name `modulation` (its length is not a whole number of
    /// `chunks·dim` rows), `dim` (0) or `chunks` (a chunk index ≥ chunks).
    pub fn chunks(
        modulation: impl Into<BufferView<'a, T>>,
        dim: usize,
        chunks: usize,
        shift_chunk: usize,
        scale_chunk: usize,
    ) -> Result<Self> {
        let m = modulation.into();
        if dim == 0 {
            return Err(Error::invalid("dim", "must be at least 1"));
        }
        if shift_chunk >= chunks || scale_chunk >= chunks {
            return Err(Error::invalid(
                "chunks",
                format!("chunks {shift_chunk} and {scale_chunk} of {chunks}: an index is out of range"),
            ));
        }
        let stride = dim.checked_mul(chunks).ok_or_else(|| Error::invalid("dim", "dim·chunks overflows"))?;
        if m.len() % stride != 0 || m.is_empty() {
            return Err(Error::invalid(
                "modulation",
                format!("{} elements is not a whole, non-zero number of rows of {chunks}·{dim}", m.len()),
            ));
        }
        let batch = m.len() / stride;
        let span = (batch - 1) * stride + dim;
        let shift = m.view(shift_chunk * dim..shift_chunk * dim + span)?;
        let scale = m.view(scale_chunk * dim..scale_chunk * dim + span)?;
        Ok(Modulation { shift, scale, row_stride: stride })
    }
}

/// LayerNorm's affine weight and bias, `[D]` each.
#[derive(Clone, Copy, Debug)]
pub struct Affine<'a, T: Element> {
    /// Multiplies the normalized row.
    pub weight: BufferView<'a, T>,
    /// Added after.
    pub bias: BufferView<'a, T>,
}

impl<'a, T: Element> Affine<'a, T> {
    /// Weight and bias views.
    pub fn new(weight: impl Into<BufferView<'a, T>>, bias: impl Into<BufferView<'a, T>>) -> Self {
        Affine { weight: weight.into(), bias: bias.into() }
    }
}

/// [`adaln_modulate_into`] into a new buffer of `x`'s length.
pub fn adaln_modulate<'a, T: FloatElement>(
    device: &Device,
    x: impl Into<BufferView<'a, T>>,
    shape: AdalnShape,
    modulation: &Modulation<'a, T>,
    options: &NormOptions,
) -> Result<DeviceBuffer<T>> {
    let x = x.into();
    let mut out = DeviceBuffer::uninit(device, x.len())?;
    adaln_modulate_into(device, x, shape, modulation, options, &mut out)?;
    Ok(out)
}

/// adaLN: `out[b, t, :] = LN(x[b, t, :])·(1 + scale[b, :]) + shift[b, :]`, LayerNorm
/// without affine with `options.eps`, `x` and `out` `[B, T, D]` (buffers or views) of
/// `x`'s dtype. Errors: [`Error::InvalidArgument`] naming `dim` (0 or > [`ADALN_MAX_DIM`]),
/// `shape` (B·T·D overflows), `row_stride` (< D), `shift` / `scale` (too short for B rows
/// at that stride), `eps` (≤ 0 or not finite), `kernel` (`Warp` with D > 512);
/// [`Error::LengthMismatch`] naming `x` or `out` (≠ B·T·D); [`Error::WrongDevice`].
/// `B·T = 0` is fine and launches nothing. A row of `x` holding NaN or ±Inf gives NaN in
/// that row of `out` (no error).
pub fn adaln_modulate_into<'a, T: FloatElement>(
    device: &Device,
    x: impl Into<BufferView<'a, T>>,
    shape: AdalnShape,
    modulation: &Modulation<'a, T>,
    options: &NormOptions,
    out: impl Into<BufferViewMut<'a, T>>,
) -> Result<()> {
    let (x, mut out) = (x.into(), out.into());
    let AdalnShape { batch, tokens, dim } = shape;
    check_dim(dim)?;
    check_eps(options.eps)?;
    let len = batch
        .checked_mul(tokens)
        .and_then(|r| r.checked_mul(dim))
        .ok_or_else(|| Error::invalid("shape", format!("{batch}·{tokens}·{dim} elements overflow")))?;
    check_len("x", x.len(), len)?;
    check_len("out", out.len(), len)?;
    let stride = modulation.row_stride;
    if stride < dim {
        return Err(Error::invalid("row_stride", format!("{stride} is less than dim = {dim}")));
    }
    let stride32 =
        u32::try_from(stride).map_err(|_| Error::invalid("row_stride", format!("{stride} exceeds u32::MAX")))?;
    if batch > 0 {
        let need = (batch - 1)
            .checked_mul(stride)
            .and_then(|s| s.checked_add(dim))
            .ok_or_else(|| Error::invalid("row_stride", "(B − 1)·row_stride overflows"))?;
        for (arg, v) in [("shift", &modulation.shift), ("scale", &modulation.scale)] {
            if v.len() < need {
                return Err(Error::invalid(
                    arg,
                    format!("{} elements; {batch} rows of {dim} at stride {stride} need at least {need}", v.len()),
                ));
            }
        }
    }
    if options.kernel == NormKernel::Warp && dim > c::ADALN_WARP_MAX_DIM as usize {
        return Err(warp_too_small(dim));
    }
    device.check_same("x", x.device())?;
    device.check_same("shift", modulation.shift.device())?;
    device.check_same("scale", modulation.scale.device())?;
    device.check_same("out", out.device())?;

    let rows = batch * tokens;
    if device.kind() == BackendKind::Cpu {
        let (xs, o) = (host(&x, "x")?, host_mut(&mut out, "out")?);
        let (sh, sc) = (host(&modulation.shift, "shift")?, host(&modulation.scale, "scale")?);
        reference::adaln::modulate(xs, batch, tokens, dim, sh, sc, stride, options.eps, o);
        return Ok(());
    }
    if rows == 0 {
        return Ok(());
    }
    let rows32 = row_count(rows, "x")?;
    let mut p = AdalnParams {
        rows: rows32,
        dim: dim as u32,
        group_rows: tokens as u32,
        group_stride: stride32,
        mode: c::ADALN_MODE_MODULATE,
        eps: options.eps,
        ..Default::default()
    };
    let (shift, scale) = (modulation.shift, modulation.scale);
    if options.kernel == NormKernel::Unfused {
        // LayerNorm without affine into `out`, then the elementwise modulation in place.
        let none = AdalnParams { mode: c::ADALN_MODE_NONE, group_rows: rows32, group_stride: 0, ..p };
        let empty = x.view(0..0)?;
        launch_norm(device, NormKernel::Auto, x, empty, empty, out.reborrow(), none)?;
        let cfg = LaunchConfig::linear(rows32.min(1 << 20), c::ADALN_UNFUSED_THREADS, 0);
        return adaln_modulate_unfused(device, &cfg, out, shift, scale, p);
    }
    p.group_stride = stride32;
    launch_norm(device, options.kernel, x, scale, shift, out, p)
}

/// [`layer_norm_into`] into a new buffer of `x`'s length.
pub fn layer_norm<'a, T: FloatElement>(
    device: &Device,
    x: impl Into<BufferView<'a, T>>,
    dim: usize,
    affine: Option<Affine<'a, T>>,
    options: &NormOptions,
) -> Result<DeviceBuffer<T>> {
    let x = x.into();
    let mut out = DeviceBuffer::uninit(device, x.len())?;
    layer_norm_into(device, x, dim, affine, options, &mut out)?;
    Ok(out)
}

/// LayerNorm of the rows of `x` (`[rows, dim]`, row-major, a buffer or a view):
/// `out = LN(x)·weight + bias` with `affine = Some(..)` (`[dim]` each), `out = LN(x)` with
/// `None`; `options.eps` added to the variance. Errors: [`Error::InvalidArgument`] naming
/// `dim`, `x` (not a whole number of rows), `eps`, `kernel` (`Warp` with D > 512, or
/// `Unfused`, which only [`adaln_modulate`] has); [`Error::LengthMismatch`] naming `weight`,
/// `bias` (≠ D) or `out` (≠ `x.len()`); [`Error::WrongDevice`]. An empty `x` launches
/// nothing. Non-finite rows as in [`adaln_modulate_into`].
pub fn layer_norm_into<'a, T: FloatElement>(
    device: &Device,
    x: impl Into<BufferView<'a, T>>,
    dim: usize,
    affine: Option<Affine<'a, T>>,
    options: &NormOptions,
    out: impl Into<BufferViewMut<'a, T>>,
) -> Result<()> {
    let (x, mut out) = (x.into(), out.into());
    check_dim(dim)?;
    check_eps(options.eps)?;
    if x.len() % dim != 0 {
        return Err(Error::invalid("x", format!("{} elements is not a whole number of rows of {dim}", x.len())));
    }
    check_len("out", out.len(), x.len())?;
    if let Some(a) = &affine {
        check_len("weight", a.weight.len(), dim)?;
        check_len("bias", a.bias.len(), dim)?;
    }
    match options.kernel {
        NormKernel::Unfused => {
            return Err(Error::invalid("kernel", "Unfused is adaln_modulate's baseline; layer_norm has one kernel"))
        }
        NormKernel::Warp if dim > c::ADALN_WARP_MAX_DIM as usize => return Err(warp_too_small(dim)),
        _ => {}
    }
    device.check_same("x", x.device())?;
    if let Some(a) = &affine {
        device.check_same("weight", a.weight.device())?;
        device.check_same("bias", a.bias.device())?;
    }
    device.check_same("out", out.device())?;

    if device.kind() == BackendKind::Cpu {
        let (xs, o) = (host(&x, "x")?, host_mut(&mut out, "out")?);
        let affine = match &affine {
            Some(a) => Some((host(&a.weight, "weight")?, host(&a.bias, "bias")?)),
            None => None,
        };
        reference::adaln::layer_norm(xs, dim, affine, options.eps, o);
        return Ok(());
    }
    let rows = x.len() / dim;
    if rows == 0 {
        return Ok(());
    }
    let rows32 = row_count(rows, "x")?;
    let p = AdalnParams {
        rows: rows32,
        dim: dim as u32,
        group_rows: rows32,
        group_stride: 0,
        mode: if affine.is_some() { c::ADALN_MODE_AFFINE } else { c::ADALN_MODE_NONE },
        eps: options.eps,
        ..Default::default()
    };
    let (gamma, beta) = match affine {
        Some(a) => (a.weight, a.bias),
        None => (x.view(0..0)?, x.view(0..0)?),
    };
    launch_norm(device, options.kernel, x, gamma, beta, out, p)
}

fn check_dim(dim: usize) -> Result<()> {
    if dim == 0 || dim > ADALN_MAX_DIM {
        return Err(Error::invalid("dim", format!("{dim}: must be 1 to {ADALN_MAX_DIM}")));
    }
    Ok(())
}

fn check_eps(eps: f32) -> Result<()> {
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::invalid("eps", format!("{eps}: must be finite and > 0")));
    }
    Ok(())
}

fn warp_too_small(dim: usize) -> Error {
    Error::invalid("kernel", format!("the warp kernel holds rows of D ≤ {}, D = {dim}", c::ADALN_WARP_MAX_DIM))
}

/// Picks the variant and launch configuration for `p` (rows > 0; `rows_per_team`, `teams`
/// filled in here) and launches it. `gamma`/`beta`: scale/shift, weight/bias, or empty.
fn launch_norm<T: FloatElement>(
    device: &Device,
    kernel: NormKernel,
    x: BufferView<'_, T>,
    gamma: BufferView<'_, T>,
    beta: BufferView<'_, T>,
    y: BufferViewMut<'_, T>,
    mut p: AdalnParams,
) -> Result<()> {
    let dim = p.dim as usize;
    let kernel = match kernel {
        NormKernel::Auto | NormKernel::Unfused => {
            if dim <= c::ADALN_WARP_MAX_DIM as usize {
                NormKernel::Warp
            } else {
                NormKernel::Block
            }
        }
        k => k,
    };
    // Teams never cross a group (sample) boundary; rows per team: see rows_per_team.
    let teams_per_block = if kernel == NormKernel::Warp { c::ADALN_WARPS } else { 1 };
    p.rows_per_team = rows_per_team(p.rows, p.group_rows, teams_per_block);
    let groups = (p.rows / p.group_rows) as u64;
    let teams = groups * p.group_rows.div_ceil(p.rows_per_team) as u64;
    p.teams = u32::try_from(teams).map_err(|_| Error::invalid("x", format!("{teams} row teams exceed a grid")))?;
    match kernel {
        NormKernel::Simple => {
            let cfg = LaunchConfig::for_items(p.rows as usize, c::ADALN_V1_THREADS as usize, c::ADALN_V1_THREADS, 0)?;
            adaln_norm_v1(device, &cfg, x, gamma, beta, y, p)
        }
        NormKernel::Warp => {
            let warps = c::ADALN_WARPS;
            let cfg = LaunchConfig::for_items(p.teams as usize, warps as usize, warps * 32, 0)?;
            adaln_norm_warp(device, &cfg, x, gamma, beta, y, p)
        }
        _ => {
            let cfg = LaunchConfig::linear(p.teams, block_threads(dim), 0);
            adaln_norm_block(device, &cfg, x, gamma, beta, y, p)
        }
    }
}

/// Rows each team normalizes (adaln.cu, ADALN_ROWS_PER_TEAM): ADALN_ROWS_PER_TEAM, or more
/// while the grid still has ADALN_FILL_BLOCKS blocks of `teams_per_block` teams, at most
/// ADALN_MAX_ROWS_PER_TEAM and never more than a group. More rows per team means fewer
/// re-reads of the group's shift/scale; fewer means more blocks for small batches.
fn rows_per_team(rows: u32, group_rows: u32, teams_per_block: u32) -> u32 {
    let fill = rows.div_ceil(c::ADALN_FILL_BLOCKS * teams_per_block);
    fill.clamp(c::ADALN_ROWS_PER_TEAM, c::ADALN_MAX_ROWS_PER_TEAM).min(group_rows)
}

/// Threads of the block variant for rows of `dim`: a multiple of 32, at least 64, the fewest
/// that hold a row at ADALN_THREAD_ELEMS elements each (see adaln.cu).
fn block_threads(dim: usize) -> u32 {
    let threads = dim.div_ceil(c::ADALN_THREAD_ELEMS as usize).div_ceil(32) * 32;
    threads.max(64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_threads_hold_a_row() {
        for dim in 1..=ADALN_MAX_DIM {
            let t = block_threads(dim) as usize;
            assert!(t % 32 == 0 && (64..=1024).contains(&t) && t * c::ADALN_THREAD_ELEMS as usize >= dim, "{dim}");
        }
        assert_eq!(block_threads(1152), 96);
        assert_eq!(block_threads(8192), 512);
    }
}
