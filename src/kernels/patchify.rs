//! Patch embedding and unpatchify: the typed wrappers of `kernels/patchify.cu`.
//!
//! - [`patchify_image_into`]: u8 images `[B, H, W, C]` (NHWC, as decoded, C ≤ 4), normalized
//!   per channel as `(v / 255 − mean[c]) / std[c]` (f32, torch's order), → `Conv2d(C, D,
//!   kernel = stride = p)` with `weight [D, C, p, p]` (PyTorch's layout, no transpose) and
//!   `bias [D]` → `flatten(2).transpose(1, 2)` → `+ pos [T, D]` → tokens `[B, T, D]`, in ONE
//!   kernel: the patches are gathered straight into the GEMM's shared-memory tiles.
//! - [`patchify_latents_into`]: the same for latents `[B, C, H, W]` (NCHW, DiT's input),
//!   without the normalization.
//! - [`unpatchify_latents_into`]: the final projection `tokens [B·T, K] · weight [p·p·C, K]ᵀ
//!   + bias` folded in its epilogue to latents `[B, C, H, W]` (DiT's unpatchify: column
//!   `(pi·p + qj)·C + c` of token `hy·gw + wx` → pixel `(c, hy·p + pi, wx·p + qj)`).
//! - [`unpatchify_image_into`]: the same folded to u8 images `[B, H, W, C]`, denormalized
//!   (`v·std[c] + mean[c]` in units of [0, 1], ×255, round half to even, clamp, NaN → 0).
//!
//! T = (H/p)·(W/p) tokens per sample, token `t = hy·(W/p) + wx`. Compute dtype f32 (exact f32
//! products on CUDA cores), f16 or bf16 (tensor cores, f32 accumulation). `pos` is a learned
//! table or the fixed one of [`sincos_pos_embed_2d`]. Every bad argument is an
//! [`Error::InvalidArgument`](crate::Error) naming it; an empty batch launches nothing.
//!
//! ```no_run
//! use tessera::{patchify_latents_into, sincos_pos_embed_2d, Device, PatchShape};
//! let device = Device::emulator();
//! let s = PatchShape { batch: 2, channels: 4, height: 32, width: 32, patch: 2, dim: 1152 };
//! let x = device.upload(&vec![0.5f32; 2 * 4 * 32 * 32])?;
//! let w = device.upload(&vec![0.01f32; 1152 * 4 * 2 * 2])?;
//! let b = device.upload(&vec![0.0f32; 1152])?;
//! let pos = device.upload(&sincos_pos_embed_2d(1152, 16, 16)?)?;
//! let mut tokens = device.zeros::<f32>(2 * 256 * 1152)?;
//! patchify_latents_into(&device, &x, &w, &b, Some(pos.as_view()), s, &mut tokens)?;
//! # Ok::<(), tessera::Error>(())
//! ```

use crate::device::{BackendKind, BufferView, BufferViewMut, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::checks::{host, host_mut};
use crate::kernels::constants::patchify as k;
use crate::kernels::gemm::{
    check_len, dim32, linear_into, tile_launch, GemmEpilogue, GemmOptions, GemmParams, GemmShape, TileDims,
};
use crate::kernels::launch::LaunchConfig;
use crate::reference::patchify as reference;

pub use crate::reference::patchify::PatchShape;

declare_kernels! {
    /// C: `patchify_fused_image_<T>(const unsigned char* image, const T* w, const T* bias, const T* pos,
    ///     T* out, unsigned use_pos, GemmParams p)`
    fn patchify_fused_image<T: f32 | f16 | bf16>(image: input u8, w: input T, bias: input T, pos: input T, out: output T, use_pos: scalar u32, p: scalar GemmParams);
    /// C: `patchify_fused_latents_<T>(const T* x, const T* w, const T* bias, const T* pos, T* out,
    ///     unsigned use_pos, GemmParams p)`
    fn patchify_fused_latents<T: f32 | f16 | bf16>(x: input T, w: input T, bias: input T, pos: input T, out: output T, use_pos: scalar u32, p: scalar GemmParams);
    /// C: `unpatchify_latents_<T>(const T* tokens, const T* w, const T* bias, T* out, GemmParams p)`
    fn unpatchify_latents<T: f32 | f16 | bf16>(tokens: input T, w: input T, bias: input T, out: output T, p: scalar GemmParams);
    /// C: `unpatchify_image_<T>(const T* tokens, const T* w, const T* bias, unsigned char* out, GemmParams p)`
    fn unpatchify_image<T: f32 | f16 | bf16>(tokens: input T, w: input T, bias: input T, out: output u8, p: scalar GemmParams);
    /// C: `patchify_unfused_im2col_image_<T>(const unsigned char* image, T* cols, GemmParams p)` — baseline.
    fn patchify_unfused_im2col_image<T: f32 | f16 | bf16>(image: input u8, cols: output T, p: scalar GemmParams);
    /// C: `patchify_unfused_im2col_latents_<T>(const T* x, T* cols, GemmParams p)` — baseline.
    fn patchify_unfused_im2col_latents<T: f32 | f16 | bf16>(x: input T, cols: output T, p: scalar GemmParams);
    /// C: `patchify_unfused_pos_<T>(T* out, const T* pos, GemmParams p)` — baseline, in place.
    fn patchify_unfused_pos<T: f32 | f16 | bf16>(out: output T, pos: input T, p: scalar GemmParams);
}

/// Per-channel normalization of u8 images, in units of the [0, 1] range: a patch embedding
/// reads `(v / 255 − mean[c]) / std[c]`, an unpatchify writes `v·std[c] + mean[c]` (×255).
/// Both slices hold one value per channel (e.g. ImageNet's `[0.485, 0.456, 0.406]`,
/// `[0.229, 0.224, 0.225]`).
#[derive(Clone, Copy, Debug)]
pub struct ImageNorm<'a> {
    /// Per-channel mean.
    pub mean: &'a [f32],
    /// Per-channel standard deviation (finite, non-zero).
    pub std: &'a [f32],
}

fn mul(a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| Error::invalid("shape", "sizes overflow"))
}

/// Checks the geometry; the GEMM parameters with m = B·T, k = `k`, n = `n`.
fn params(s: &PatchShape, n: usize, k: usize) -> Result<GemmParams> {
    if s.patch == 0 {
        return Err(Error::invalid("shape.patch", "0; must be ≥ 1"));
    }
    if s.channels == 0 {
        return Err(Error::invalid("shape.channels", "0; must be ≥ 1"));
    }
    if s.height % s.patch != 0 {
        return Err(Error::invalid("shape.height", format!("{}; not a multiple of the patch {}", s.height, s.patch)));
    }
    if s.width % s.patch != 0 {
        return Err(Error::invalid("shape.width", format!("{}; not a multiple of the patch {}", s.width, s.patch)));
    }
    let m = mul(s.batch, s.tokens())?;
    let p = GemmParams {
        m: dim32(m, "shape.batch")?,
        n: dim32(n, "shape.dim")?,
        k: dim32(k, "shape.dim")?,
        tokens_per_sample: dim32(s.tokens(), "shape")?,
        grid_w: dim32(s.grid_w(), "shape.width")?,
        patch: dim32(s.patch, "shape.patch")?,
        channels: dim32(s.channels, "shape.channels")?,
        height: dim32(s.height, "shape.height")?,
        width: dim32(s.width, "shape.width")?,
        ..Default::default()
    };
    // The im2col baseline and the loaders count elements of [m, k] and [m, n] in 64 bits,
    // but keep the per-axis counters in u32.
    dim32(mul(m, k)?, "shape")?;
    dim32(mul(m, n)?, "shape")?;
    Ok(p)
}

fn check_norm(norm: &ImageNorm<'_>, channels: usize, p: &mut GemmParams) -> Result<()> {
    check_image_channels(channels)?;
    check_len("mean", norm.mean.len(), channels, "one per channel")?;
    check_len("std", norm.std.len(), channels, "one per channel")?;
    if let Some(m) = norm.mean.iter().find(|m| !m.is_finite()) {
        return Err(Error::invalid("mean", format!("{m}; must be finite")));
    }
    if let Some(s) = norm.std.iter().find(|s| !s.is_finite() || **s == 0.0) {
        return Err(Error::invalid("std", format!("{s}; must be finite and non-zero")));
    }
    p.mean[..channels].copy_from_slice(norm.mean);
    p.std_dev[..channels].copy_from_slice(norm.std);
    Ok(())
}

/// Images carry at most PATCH_MAX_IMAGE_CHANNELS channels (the normalization's parameters).
fn check_image_channels(channels: usize) -> Result<()> {
    if channels > k::PATCH_MAX_IMAGE_CHANNELS as usize {
        return Err(Error::invalid(
            "shape.channels",
            format!("{channels}; images have at most {} channels", k::PATCH_MAX_IMAGE_CHANNELS),
        ));
    }
    Ok(())
}

/// The launch of a 128×128-tile kernel over [m, n].
fn tile_config(m: usize, n: usize, elem: usize) -> Result<LaunchConfig> {
    const TILE: TileDims = TileDims {
        bm: k::PATCH_BM,
        bn: k::PATCH_BN,
        bk: k::PATCH_BK,
        stages: k::PATCH_STAGES,
        threads: k::PATCH_THREADS,
    };
    tile_launch(&TILE, m, n, 1, elem, "shape.batch")
}

/// Checks weight, bias, pos and out of a patch embedding with D = `s.dim`.
fn check_embed<T: FloatElement>(
    s: &PatchShape,
    w: &BufferView<'_, T>,
    bias: &BufferView<'_, T>,
    pos: &Option<BufferView<'_, T>>,
    out: &BufferViewMut<'_, T>,
) -> Result<GemmParams> {
    let p = params(s, s.dim, s.patch_len())?;
    check_len("weight", w.len(), mul(s.dim, s.patch_len())?, "[D, C, p, p]")?;
    check_len("bias", bias.len(), s.dim, "[D]")?;
    if let Some(pos) = pos {
        check_len("pos", pos.len(), mul(s.tokens(), s.dim)?, "[T, D]")?;
    }
    check_len("out", out.len(), mul(mul(s.batch, s.tokens())?, s.dim)?, "[B, T, D]")?;
    Ok(p)
}

/// Patch embedding of latents `x [B, C, H, W]` (NCHW, in T) into tokens `out [B, T, D]`:
/// `Conv2d(C, D, p, stride p)` with `weight [D, C, p, p]` and `bias [D]`, flattened, plus
/// `pos [T, D]` when given. H and W must be multiples of p (`shape.dim` = D).
pub fn patchify_latents_into<'a, 'o, T: FloatElement>(
    device: &Device,
    x: impl Into<BufferView<'a, T>>,
    weight: impl Into<BufferView<'a, T>>,
    bias: impl Into<BufferView<'a, T>>,
    pos: Option<BufferView<'a, T>>,
    shape: PatchShape,
    out: impl Into<BufferViewMut<'o, T>>,
) -> Result<()> {
    let (x, w, bias, mut out) = (x.into(), weight.into(), bias.into(), out.into());
    let p = check_embed(&shape, &w, &bias, &pos, &out)?;
    let s = shape;
    check_len("x", x.len(), mul(mul(mul(s.batch, s.channels)?, s.height)?, s.width)?, "[B, C, H, W]")?;
    if p.m == 0 || p.n == 0 {
        return Ok(());
    }
    if device.kind() == BackendKind::Cpu {
        let pos = pos.as_ref().map(|v| host(v, "pos")).transpose()?;
        reference::patchify_latents(
            host(&x, "x")?,
            host(&w, "weight")?,
            host(&bias, "bias")?,
            pos,
            &s,
            host_mut(&mut out, "out")?,
        );
        return Ok(());
    }
    crate::device::emulator::hint_flops(2 * p.m as u64 * p.n as u64 * p.k as u64);
    let cfg = tile_config(p.m as usize, p.n as usize, size_of::<T>())?;
    let use_pos = pos.is_some() as u32;
    let pos = pos.unwrap_or(bias.view(0..0)?);
    patchify_fused_latents::<T>(device, &cfg, x, w, bias, pos, out, use_pos, p)
}

/// Patch embedding of u8 images `[B, H, W, C]` (NHWC) into tokens `out [B, T, D]`: each pixel
/// normalized by `norm` (`(v / 255 − mean[c]) / std[c]`, f32) and rounded to T, then as
/// [`patchify_latents_into`]. C ≤ 4.
#[allow(clippy::too_many_arguments)]
pub fn patchify_image_into<'a, 'o, T: FloatElement>(
    device: &Device,
    image: impl Into<BufferView<'a, u8>>,
    norm: &ImageNorm<'_>,
    weight: impl Into<BufferView<'a, T>>,
    bias: impl Into<BufferView<'a, T>>,
    pos: Option<BufferView<'a, T>>,
    shape: PatchShape,
    out: impl Into<BufferViewMut<'o, T>>,
) -> Result<()> {
    let (image, w, bias, mut out) = (image.into(), weight.into(), bias.into(), out.into());
    check_image_channels(shape.channels)?;
    let mut p = check_embed(&shape, &w, &bias, &pos, &out)?;
    let s = shape;
    check_norm(norm, s.channels, &mut p)?;
    check_len("image", image.len(), mul(mul(mul(s.batch, s.height)?, s.width)?, s.channels)?, "[B, H, W, C]")?;
    if p.m == 0 || p.n == 0 {
        return Ok(());
    }
    if device.kind() == BackendKind::Cpu {
        let pos = pos.as_ref().map(|v| host(v, "pos")).transpose()?;
        reference::patchify_image(
            host(&image, "image")?,
            norm.mean,
            norm.std,
            host(&w, "weight")?,
            host(&bias, "bias")?,
            pos,
            &s,
            host_mut(&mut out, "out")?,
        );
        return Ok(());
    }
    crate::device::emulator::hint_flops(2 * p.m as u64 * p.n as u64 * p.k as u64);
    let cfg = tile_config(p.m as usize, p.n as usize, size_of::<T>())?;
    let use_pos = pos.is_some() as u32;
    let pos = pos.unwrap_or(bias.view(0..0)?);
    patchify_fused_image::<T>(device, &cfg, image, w, bias, pos, out, use_pos, p)
}

/// Checks tokens, weight and bias of an unpatchify with K = `s.dim`; out has `out_len`.
fn check_unpatchify<T: FloatElement>(
    s: &PatchShape,
    tokens: &BufferView<'_, T>,
    w: &BufferView<'_, T>,
    bias: &BufferView<'_, T>,
    out_len: usize,
) -> Result<GemmParams> {
    let n = s.patch_len();
    let p = params(s, n, s.dim)?;
    check_len("tokens", tokens.len(), mul(mul(s.batch, s.tokens())?, s.dim)?, "[B·T, K]")?;
    check_len("weight", w.len(), mul(n, s.dim)?, "[p·p·C, K]")?;
    check_len("bias", bias.len(), n, "[p·p·C]")?;
    check_len("out", out_len, mul(mul(mul(s.batch, s.channels)?, s.height)?, s.width)?, "B·C·H·W")?;
    Ok(p)
}

/// The final projection folded to latents: `tokens [B·T, K] · weight [p·p·C, K]ᵀ + bias
/// [p·p·C]` → `out [B, C, H, W]` (DiT's unpatchify order; `shape.dim` = K).
pub fn unpatchify_latents_into<'a, 'o, T: FloatElement>(
    device: &Device,
    tokens: impl Into<BufferView<'a, T>>,
    weight: impl Into<BufferView<'a, T>>,
    bias: impl Into<BufferView<'a, T>>,
    shape: PatchShape,
    out: impl Into<BufferViewMut<'o, T>>,
) -> Result<()> {
    let (tokens, w, bias, mut out) = (tokens.into(), weight.into(), bias.into(), out.into());
    let p = check_unpatchify(&shape, &tokens, &w, &bias, out.len())?;
    if p.m == 0 {
        return Ok(());
    }
    if device.kind() == BackendKind::Cpu {
        let out = host_mut(&mut out, "out")?;
        reference::unpatchify_latents(host(&tokens, "tokens")?, host(&w, "weight")?, host(&bias, "bias")?, &shape, out);
        return Ok(());
    }
    crate::device::emulator::hint_flops(2 * p.m as u64 * p.n as u64 * p.k as u64);
    let cfg = tile_config(p.m as usize, p.n as usize, size_of::<T>())?;
    unpatchify_latents::<T>(device, &cfg, tokens, w, bias, out, p)
}

/// The final projection folded to u8 images `out [B, H, W, C]` (NHWC): each value
/// denormalized as `fma(v, std[c], mean[c])`, ×255, rounded half to even, clamped to
/// [0, 255] (NaN → 0). C ≤ 4.
pub fn unpatchify_image_into<'a, 'o, T: FloatElement>(
    device: &Device,
    tokens: impl Into<BufferView<'a, T>>,
    weight: impl Into<BufferView<'a, T>>,
    bias: impl Into<BufferView<'a, T>>,
    norm: &ImageNorm<'_>,
    shape: PatchShape,
    out: impl Into<BufferViewMut<'o, u8>>,
) -> Result<()> {
    let (tokens, w, bias, mut out) = (tokens.into(), weight.into(), bias.into(), out.into());
    let mut p = check_unpatchify(&shape, &tokens, &w, &bias, out.len())?;
    check_norm(norm, shape.channels, &mut p)?;
    if p.m == 0 {
        return Ok(());
    }
    if device.kind() == BackendKind::Cpu {
        let (t, wv, b) = (host(&tokens, "tokens")?, host(&w, "weight")?, host(&bias, "bias")?);
        reference::unpatchify_image(t, wv, b, norm.mean, norm.std, &shape, host_mut(&mut out, "out")?);
        return Ok(());
    }
    crate::device::emulator::hint_flops(2 * p.m as u64 * p.n as u64 * p.k as u64);
    let cfg = tile_config(p.m as usize, p.n as usize, size_of::<T>())?;
    unpatchify_image::<T>(device, &cfg, tokens, w, bias, out, p)
}

/// Allocating form of [`patchify_latents_into`]: tokens `[B, T, D]`.
pub fn patchify_latents<'a, T: FloatElement>(
    device: &Device,
    x: impl Into<BufferView<'a, T>>,
    weight: impl Into<BufferView<'a, T>>,
    bias: impl Into<BufferView<'a, T>>,
    pos: Option<BufferView<'a, T>>,
    shape: PatchShape,
) -> Result<DeviceBuffer<T>> {
    let mut out = DeviceBuffer::<T>::uninit(device, mul(mul(shape.batch, shape.tokens_checked()?)?, shape.dim)?)?;
    patchify_latents_into(device, x, weight, bias, pos, shape, &mut out)?;
    Ok(out)
}

/// Allocating form of [`patchify_image_into`]: tokens `[B, T, D]`.
pub fn patchify_image<'a, T: FloatElement>(
    device: &Device,
    image: impl Into<BufferView<'a, u8>>,
    norm: &ImageNorm<'_>,
    weight: impl Into<BufferView<'a, T>>,
    bias: impl Into<BufferView<'a, T>>,
    pos: Option<BufferView<'a, T>>,
    shape: PatchShape,
) -> Result<DeviceBuffer<T>> {
    let mut out = DeviceBuffer::<T>::uninit(device, mul(mul(shape.batch, shape.tokens_checked()?)?, shape.dim)?)?;
    patchify_image_into(device, image, norm, weight, bias, pos, shape, &mut out)?;
    Ok(out)
}

impl PatchShape {
    /// T, after the checks that make it meaningful (p ≥ 1, H and W multiples of p).
    fn tokens_checked(&self) -> Result<usize> {
        params(self, 0, 0)?;
        Ok(self.tokens())
    }
}

/// The fixed 2-D sin-cos position embedding `[grid_h·grid_w, dim]` at integer positions,
/// exactly as diffusers' `get_2d_sincos_pos_embed_from_grid` (MAE, DiT) computes it: in f64,
/// rounded to f32; q = dim/4 frequencies `w_k = 1 / 10000^(k/q)`; row `t = i·grid_w + j` is
/// `[sin(j·w), cos(j·w), sin(i·w), cos(i·w)]` — the first half of D encodes the patch column
/// j, the second half the row i. (diffusers' `get_2d_sincos_pos_embed(D, n, base_size = n)`
/// is this table for a square n × n grid.) `dim` must be a positive multiple of 4.
pub fn sincos_pos_embed_2d(dim: usize, grid_h: usize, grid_w: usize) -> Result<Vec<f32>> {
    if dim == 0 || dim % 4 != 0 {
        return Err(Error::invalid("dim", format!("{dim}; must be a positive multiple of 4")));
    }
    mul(mul(grid_h, grid_w)?, dim)?;
    Ok(reference::sincos_pos_embed_2d(dim, grid_h, grid_w))
}

/// The unfused baseline of [`patchify_latents_into`] / [`patchify_image_into`] (benchmarks):
/// the patch matrix `[B·T, C·p·p]` written to memory by an im2col kernel, then
/// [`linear_into`] with the bias epilogue, then `out += pos[t]` by a separate kernel.
pub enum PatchInput<'a, T: FloatElement> {
    /// Latents `[B, C, H, W]`.
    Latents(BufferView<'a, T>),
    /// u8 images `[B, H, W, C]` and their normalization.
    Image(BufferView<'a, u8>, ImageNorm<'a>),
}

/// See [`PatchInput`]: the three-kernel path, same result as the fused one up to the
/// rounding of the intermediates (in T).
pub fn patchify_unfused_into<'a, 'o, T: FloatElement + crate::kernels::gemm::LinearOutput<T>>(
    device: &Device,
    input: PatchInput<'a, T>,
    weight: impl Into<BufferView<'a, T>>,
    bias: impl Into<BufferView<'a, T>>,
    pos: Option<BufferView<'a, T>>,
    shape: PatchShape,
    out: impl Into<BufferViewMut<'o, T>>,
) -> Result<()> {
    let (w, bias, mut out) = (weight.into(), bias.into(), out.into());
    let mut p = check_embed(&shape, &w, &bias, &pos, &out)?;
    if let PatchInput::Image(_, norm) = &input {
        check_norm(norm, shape.channels, &mut p)?;
    }
    if device.kind() == BackendKind::Cpu || p.m == 0 || p.n == 0 {
        return match input {
            PatchInput::Latents(x) => patchify_latents_into(device, x, w, bias, pos, shape, out),
            PatchInput::Image(img, norm) => patchify_image_into(device, img, &norm, w, bias, pos, shape, out),
        };
    }
    let (m, n, kk) = (p.m as usize, p.n as usize, p.k as usize);
    let mut cols = DeviceBuffer::<T>::uninit(device, m * kk)?;
    let cfg = LaunchConfig::for_items(m * kk, k::PATCH_ELEM_THREADS as usize, k::PATCH_ELEM_THREADS, 0)?;
    match input {
        PatchInput::Latents(x) => {
            let s = shape;
            check_len("x", x.len(), s.batch * s.channels * s.height * s.width, "[B, C, H, W]")?;
            patchify_unfused_im2col_latents::<T>(device, &cfg, x, &mut cols, p)?
        }
        PatchInput::Image(img, _) => {
            let s = shape;
            check_len("image", img.len(), s.batch * s.height * s.width * s.channels, "[B, H, W, C]")?;
            patchify_unfused_im2col_image::<T>(device, &cfg, img, &mut cols, p)?
        }
    }
    let gs = GemmShape { m, n, k: kk };
    linear_into(device, &cols, w, gs, &GemmEpilogue::Bias(bias), out.reborrow(), &GemmOptions::default())?;
    if let Some(pos) = pos {
        let cfg = LaunchConfig::for_items(m * n, k::PATCH_ELEM_THREADS as usize, k::PATCH_ELEM_THREADS, 0)?;
        patchify_unfused_pos::<T>(device, &cfg, out, pos, p)?;
    }
    Ok(())
}

/// `tokens[b, t, :] += pos[t, :]` in place: `tokens` `[B, T, D]`, `pos` `[T, D]` (a learned
/// position embedding added after a projection, e.g. a tokenizer decoder's input). One
/// elementwise pass; the patch embeddings fuse it into their GEMM instead.
pub fn add_position_embedding<'a, 'o, T: FloatElement>(
    device: &Device,
    tokens: impl Into<BufferViewMut<'o, T>>,
    pos: impl Into<BufferView<'a, T>>,
    tokens_per_sample: usize,
    dim: usize,
) -> Result<()> {
    let (mut out, pos) = (tokens.into(), pos.into());
    if dim == 0 || tokens_per_sample == 0 {
        return Err(Error::invalid("dim", "dim and tokens_per_sample must be at least 1"));
    }
    let row = mul(tokens_per_sample, dim)?;
    check_len("pos", pos.len(), row, "[T, D]")?;
    if out.len() % row != 0 {
        return Err(Error::invalid(
            "tokens",
            format!("{} elements are not whole samples of [{tokens_per_sample}, {dim}]", out.len()),
        ));
    }
    if out.is_empty() {
        return Ok(());
    }
    if device.kind() == BackendKind::Cpu {
        let p = host(&pos, "pos")?.to_vec();
        for (i, v) in host_mut(&mut out, "tokens")?.iter_mut().enumerate() {
            *v = T::from_f32(v.to_f32() + p[i % row].to_f32());
        }
        return Ok(());
    }
    let m = out.len() / dim;
    let p = GemmParams {
        m: dim32(m, "tokens")?,
        n: dim32(dim, "dim")?,
        tokens_per_sample: dim32(tokens_per_sample, "tokens_per_sample")?,
        ..Default::default()
    };
    let cfg = LaunchConfig::for_items(out.len(), k::PATCH_ELEM_THREADS as usize, k::PATCH_ELEM_THREADS, 0)?;
    patchify_unfused_pos::<T>(device, &cfg, out, pos, p)
}
