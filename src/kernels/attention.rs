//! Attention forward (kernels/attention.cu): `O = softmax(Q·Kᵀ·scale [+ mask])·V` and the
//! log-sum-exp of every query row, flash style (no T×T matrix in memory), on tensor cores,
//! for f16 and bf16 at head dims 32, 64, 72, 96 and 128 (72 without padding to 96).
//!
//! Layouts (element strides, the head dimension contiguous): element `(b, t, h, d)` of Q is
//! at `(b·Tq + t)·q.token + h·q.head + d`, of K and V likewise with `Tk`, of O with `Tq` —
//! so Q, K and V can be views into one fused QKV buffer `[B, T, 3, H, Dh]`
//! ([`AttentionLayout::fused_qkv`]). `lse` is f32 `[B, H, Tq]`, natural log.
//!
//! Masks ([`AttentionOptions`]): causal, bottom-right aligned (query `i` sees key `j` iff
//! `j ≤ i + Tk − Tq`; PyTorch's `is_causal=True` is top-left aligned and agrees only when
//! `Tq = Tk`); key padding as per-sequence key lengths. A query row that sees no key gets
//! `O = 0` and `lse = −∞`, never NaN.
//!
//! Not yet: packed variable-length batches (the kernel takes `cu_seqlens`, the wrapper does
//! not expose them yet). Each call uploads a small u32 buffer (the key lengths, or one
//! placeholder word) — an allocation per call.

use crate::device::{BackendKind, BufferView, BufferViewMut, Device, DeviceBuffer, FloatElement};
use crate::element::DType;
use crate::error::{Error, Result};
use crate::kernels::checks::{host, host_mut};
use crate::kernels::constants::attention as c;
use crate::kernels::launch::LaunchConfig;
use crate::reference::attention as reference;

/// Token and head strides (in elements) of one of Q, K, V, O; the head dimension is
/// contiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLayout {
    /// Elements between consecutive tokens (a multiple of 8: 16-byte rows).
    pub token: usize,
    /// Elements between consecutive heads (a multiple of 8).
    pub head: usize,
}

impl HeadLayout {
    /// A contiguous `[.., T, H, Dh]` tensor.
    pub fn contiguous(heads: usize, head_dim: usize) -> Self {
        HeadLayout { token: heads * head_dim, head: head_dim }
    }

    /// One of Q, K, V in a fused `[.., T, 3, H, Dh]` buffer (the views start `H·Dh` apart).
    pub fn fused_qkv(heads: usize, head_dim: usize) -> Self {
        HeadLayout { token: 3 * heads * head_dim, head: head_dim }
    }
}

/// The strides of Q, K, V and O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionLayout {
    /// Queries.
    pub q: HeadLayout,
    /// Keys.
    pub k: HeadLayout,
    /// Values.
    pub v: HeadLayout,
    /// Output (rows must not overlap: `head ≥ Dh`, `token ≥ (H − 1)·head + Dh`).
    pub o: HeadLayout,
}

impl AttentionLayout {
    /// Q, K, V and O contiguous `[B, T, H, Dh]`.
    pub fn contiguous(heads: usize, head_dim: usize) -> Self {
        let l = HeadLayout::contiguous(heads, head_dim);
        AttentionLayout { q: l, k: l, v: l, o: l }
    }

    /// Q, K, V views into one fused `[B, T, 3, H, Dh]` buffer; O contiguous `[B, T, H, Dh]`.
    pub fn fused_qkv(heads: usize, head_dim: usize) -> Self {
        let f = HeadLayout::fused_qkv(heads, head_dim);
        AttentionLayout { q: f, k: f, v: f, o: HeadLayout::contiguous(heads, head_dim) }
    }
}

/// Sizes of one attention call (a batch of equal-length sequences).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// Sequences (B).
    pub batch: usize,
    /// Heads (H), the same for Q, K and V.
    pub heads: usize,
    /// Head dimension: 32, 64, 72, 96 or 128.
    pub head_dim: usize,
    /// Queries per sequence (Tq).
    pub q_len: usize,
    /// Keys (and values) per sequence (Tk).
    pub k_len: usize,
}

/// Masking and scale.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttentionOptions<'a> {
    /// Bottom-right causal mask.
    pub causal: bool,
    /// Logit scale; `None`: `1/√Dh`. Must be finite.
    pub scale: Option<f32>,
    /// Key padding: sequence `b` attends to keys `j < key_lengths[b]` (`[B]`, each ≤ Tk).
    pub key_lengths: Option<&'a [u32]>,
}

/// Head dims with a kernel.
pub const ATTENTION_HEAD_DIMS: [usize; 5] = [32, 64, 72, 96, 128];

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AttnParams {
    batch: u32,
    heads: u32,
    q_len: u32,
    k_len: u32,
    varlen: u32,
    causal: u32,
    q_token_stride: u32,
    k_token_stride: u32,
    v_token_stride: u32,
    o_token_stride: u32,
    q_head_stride: u32,
    k_head_stride: u32,
    v_head_stride: u32,
    o_head_stride: u32,
    lse_head_stride: u32,
    has_key_lengths: u32,
    scale_log2: f32,
    pad: u32,
}
const _: () = assert!(std::mem::size_of::<AttnParams>() == 72);
// SAFETY: repr(C) plain data, same layout as the C struct (size asserted on both sides).
unsafe impl cudarc::driver::DeviceRepr for AttnParams {}

declare_kernels! {
    /// C: `attention_fwd_d32_<T>(q, k, v, o, lse, cu_seqlens_q, cu_seqlens_k, key_lengths, p)`
    fn attention_fwd_d32<T: f16 | bf16>(q: input T, k: input T, v: input T, o: output T, lse: output f32,
        cu_seqlens_q: input u32, cu_seqlens_k: input u32, key_lengths: input u32, p: scalar AttnParams);
    /// Head dim 64.
    fn attention_fwd_d64<T: f16 | bf16>(q: input T, k: input T, v: input T, o: output T, lse: output f32,
        cu_seqlens_q: input u32, cu_seqlens_k: input u32, key_lengths: input u32, p: scalar AttnParams);
    /// Head dim 72 (DiT-XL/2): four m16n8k16 steps and one m16n8k8 per Q·Kᵀ tile.
    fn attention_fwd_d72<T: f16 | bf16>(q: input T, k: input T, v: input T, o: output T, lse: output f32,
        cu_seqlens_q: input u32, cu_seqlens_k: input u32, key_lengths: input u32, p: scalar AttnParams);
    /// Head dim 96.
    fn attention_fwd_d96<T: f16 | bf16>(q: input T, k: input T, v: input T, o: output T, lse: output f32,
        cu_seqlens_q: input u32, cu_seqlens_k: input u32, key_lengths: input u32, p: scalar AttnParams);
    /// Head dim 128.
    fn attention_fwd_d128<T: f16 | bf16>(q: input T, k: input T, v: input T, o: output T, lse: output f32,
        cu_seqlens_q: input u32, cu_seqlens_k: input u32, key_lengths: input u32, p: scalar AttnParams);
}

/// Shared memory of the kernel for `head_dim` (attention.cu, AttnTile): two stages of a K
/// and a V tile of BN rows, rows padded to an odd number of 16-byte chunks.
fn smem_bytes(head_dim: usize) -> u32 {
    let bn = if head_dim <= 72 { 64 } else { 32 };
    let stride = ((head_dim / 8) | 1) * 8;
    (2 * 2 * bn * stride * 2) as u32
}

fn u32_of(v: usize, arg: &'static str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::invalid(arg, format!("{v} exceeds u32::MAX")))
}

/// Elements a view needs for `tokens` tokens of `heads` heads of `head_dim` at `l`.
fn span(tokens: usize, heads: usize, head_dim: usize, l: HeadLayout) -> Option<usize> {
    if tokens == 0 || heads == 0 {
        return Some(0);
    }
    (tokens - 1).checked_mul(l.token)?.checked_add((heads - 1).checked_mul(l.head)?)?.checked_add(head_dim)
}

fn check_view(arg: &'static str, len: usize, aligned: bool, need: Option<usize>, l: HeadLayout) -> Result<()> {
    let need = need.ok_or_else(|| Error::invalid(arg, "its extent overflows usize"))?;
    if len < need {
        return Err(Error::invalid(arg, format!("{len} elements; the shape and strides need at least {need}")));
    }
    if l.token % 8 != 0 || l.head % 8 != 0 {
        return Err(Error::invalid(
            arg,
            format!("token stride {} and head stride {} must be multiples of 8 (16-byte rows)", l.token, l.head),
        ));
    }
    if !aligned {
        return Err(Error::invalid(arg, "must start 16-byte aligned"));
    }
    Ok(())
}

/// Attention forward into `out` (`[B, Tq, H, Dh]` at `layout.o`) and `lse` (f32
/// `[B, H, Tq]`), see the module documentation. T is f16 or bf16. Enqueued on the
/// device's stream; no host synchronization.
///
/// Errors: [`Error::UnsupportedDtype`] for f32; [`Error::InvalidArgument`] naming
/// `shape.head_dim` (not 32/64/72/96/128), `shape` (a grid dimension too large), `q`/`k`/
/// `v`/`out` (too short for the shape and strides, strides not multiples of 8, not 16-byte
/// aligned), `layout.o` (rows overlap), `lse` (≠ B·H·Tq), `options.scale` (not finite),
/// `options.key_lengths` (≠ B entries or one above Tk); [`Error::WrongDevice`].
#[allow(clippy::too_many_arguments)]
pub fn attention_into<'a, T: FloatElement>(
    device: &Device,
    q: impl Into<BufferView<'a, T>>,
    k: impl Into<BufferView<'a, T>>,
    v: impl Into<BufferView<'a, T>>,
    shape: AttentionShape,
    layout: &AttentionLayout,
    options: &AttentionOptions<'_>,
    out: impl Into<BufferViewMut<'a, T>>,
    lse: impl Into<BufferViewMut<'a, f32>>,
) -> Result<()> {
    let (q, k, v, mut out, mut lse) = (q.into(), k.into(), v.into(), out.into(), lse.into());
    let AttentionShape { batch, heads, head_dim, q_len, k_len } = shape;
    if T::DTYPE == DType::F32 {
        return Err(Error::UnsupportedDtype { kernel: "attention_fwd", dtype: T::DTYPE });
    }
    if !ATTENTION_HEAD_DIMS.contains(&head_dim) {
        return Err(Error::invalid("shape.head_dim", format!("{head_dim}; kernels exist for {ATTENTION_HEAD_DIMS:?}")));
    }
    let q_tokens = batch.checked_mul(q_len).ok_or_else(|| Error::invalid("shape", "B·Tq overflows"))?;
    let k_tokens = batch.checked_mul(k_len).ok_or_else(|| Error::invalid("shape", "B·Tk overflows"))?;
    check_view("q", q.len(), q.is_aligned(16), span(q_tokens, heads, head_dim, layout.q), layout.q)?;
    check_view("k", k.len(), k.is_aligned(16), span(k_tokens, heads, head_dim, layout.k), layout.k)?;
    check_view("v", v.len(), v.is_aligned(16), span(k_tokens, heads, head_dim, layout.v), layout.v)?;
    check_view("out", out.len(), out.is_aligned(16), span(q_tokens, heads, head_dim, layout.o), layout.o)?;
    if heads > 1 && (layout.o.head < head_dim || layout.o.token < (heads - 1) * layout.o.head + head_dim)
        || layout.o.token < head_dim
    {
        return Err(Error::invalid("layout.o", format!("{:?}: output rows would overlap", layout.o)));
    }
    let lse_len = q_tokens.checked_mul(heads).ok_or_else(|| Error::invalid("shape", "B·H·Tq overflows"))?;
    if lse.len() != lse_len {
        return Err(Error::LengthMismatch { arg: "lse", expected: lse_len, actual: lse.len() });
    }
    let scale = options.scale.unwrap_or_else(|| reference::default_scale(head_dim));
    if !scale.is_finite() {
        return Err(Error::invalid("options.scale", format!("{scale} is not finite")));
    }
    if let Some(lens) = options.key_lengths {
        if lens.len() != batch {
            return Err(Error::invalid("options.key_lengths", format!("{} entries for B = {batch}", lens.len())));
        }
        if let Some((b, &l)) = lens.iter().enumerate().find(|(_, &l)| l as usize > k_len) {
            return Err(Error::invalid("options.key_lengths", format!("entry {b} is {l}, above Tk = {k_len}")));
        }
    }
    for (arg, d) in [("q", q.device()), ("k", k.device()), ("v", v.device()), ("out", out.device())] {
        device.check_same(arg, d)?;
    }
    device.check_same("lse", lse.device())?;

    if device.kind() == BackendKind::Cpu {
        let strides =
            |l: HeadLayout, len: usize| reference::Strides { batch: len * l.token, token: l.token, head: l.head };
        let mut problem =
            reference::Problem::new(reference::Seqlens::Padded { batch, tq: q_len, tk: k_len }, heads, head_dim);
        problem.q = strides(layout.q, q_len);
        problem.k = strides(layout.k, k_len);
        problem.v = strides(layout.v, k_len);
        problem.mask = reference::Mask { causal: options.causal, key_lengths: options.key_lengths };
        problem.scale = scale;
        let (qs, ks, vs) = (host(&q, "q")?, host(&k, "k")?, host(&v, "v")?);
        let result = reference::attention_f64(&problem, qs, ks, vs).map_err(|e| Error::invalid(e.arg, e.reason))?;
        let o = host_mut(&mut out, "out")?;
        for t in 0..q_tokens {
            for h in 0..heads {
                let src = (t * heads + h) * head_dim;
                let dst = t * layout.o.token + h * layout.o.head;
                for d in 0..head_dim {
                    o[dst + d] = T::from_f32(result.out[src + d] as f32);
                }
            }
        }
        host_mut(&mut lse, "lse")?.iter_mut().zip(&result.lse).for_each(|(l, r)| *l = *r as f32);
        return Ok(());
    }
    if q_tokens == 0 || heads == 0 {
        return Ok(());
    }
    let grid =
        (u32_of(q_len.div_ceil(c::ATTN_BLOCK_M as usize), "shape")?, u32_of(heads, "shape")?, u32_of(batch, "shape")?);
    if grid.1 > 65_535 || grid.2 > 65_535 {
        return Err(Error::invalid("shape", format!("H = {heads} and B = {batch} must be at most 65535")));
    }
    let p = AttnParams {
        batch: grid.2,
        heads: grid.1,
        q_len: u32_of(q_len, "shape")?,
        k_len: u32_of(k_len, "shape")?,
        varlen: 0,
        causal: options.causal as u32,
        q_token_stride: u32_of(layout.q.token, "q")?,
        k_token_stride: u32_of(layout.k.token, "k")?,
        v_token_stride: u32_of(layout.v.token, "v")?,
        o_token_stride: u32_of(layout.o.token, "out")?,
        q_head_stride: u32_of(layout.q.head, "q")?,
        k_head_stride: u32_of(layout.k.head, "k")?,
        v_head_stride: u32_of(layout.v.head, "v")?,
        o_head_stride: u32_of(layout.o.head, "out")?,
        lse_head_stride: u32_of(q_len, "shape")?,
        has_key_lengths: options.key_lengths.is_some() as u32,
        scale_log2: scale * std::f32::consts::LOG2_E,
        pad: 0,
    };
    // The profile's FLOPs: 4·Dh per visible (query, key) pair (Q·Kᵀ and P·V), per head.
    let visible: u64 = (0..batch)
        .map(|b| {
            let keys = options.key_lengths.map_or(k_len, |l| l[b] as usize);
            (0..q_len)
                .map(|i| if options.causal { keys.min((i + k_len + 1).saturating_sub(q_len)) } else { keys } as u64)
                .sum::<u64>()
        })
        .sum();
    crate::device::emulator::hint_flops(4 * head_dim as u64 * heads as u64 * visible);
    let words = DeviceBuffer::<u32>::upload(device, options.key_lengths.unwrap_or(&[0]))?;
    let cfg = LaunchConfig { grid, block: (c::ATTN_THREADS, 1, 1), shared_mem_bytes: smem_bytes(head_dim) };
    let (wq, wk, wl) = (words.as_view(), words.as_view(), words.as_view());
    match head_dim {
        32 => attention_fwd_d32(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        64 => attention_fwd_d64(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        72 => attention_fwd_d72(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        96 => attention_fwd_d96(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        _ => attention_fwd_d128(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
    }
}
