//! Attention forward (kernels/attention.cu): `O = softmax(Q·Kᵀ·scale [+ mask])·V` and the
//! log-sum-exp of every query row, flash style (no T×T matrix in memory): f16 and bf16 on
//! tensor cores; f32 on CUDA cores (kernels/attention_f32.cu, exact f32 FMAs, the same
//! semantics); at head dims 32, 64, 72, 96 and 128 (72 without padding to 96).
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
//! Packed variable-length batches ([`attention_varlen_into`]): tokens `[total, H, Dh]`,
//! sequence `b`'s queries are tokens `cu_seqlens_q[b] .. cu_seqlens_q[b + 1]`, its keys
//! `cu_seqlens_k[b] .. cu_seqlens_k[b + 1]` (lengths may differ and may be 0); `lse` is
//! `[H, total_q]`. The offsets are host slices, checked (start at 0, non-decreasing, `B + 1`
//! of each) and uploaded with the call: a call with offsets or key lengths copies them into
//! a small u32 buffer the device keeps for reuse (one without either copies nothing), so
//! repeated calls at the same shapes allocate nothing.

use crate::device::{BackendKind, BufferView, BufferViewMut, Device, FloatElement};
use crate::element::DType;
use crate::error::{Error, Result};
use crate::kernels::attention_f32;
use crate::kernels::checks::{host, host_mut};
use crate::kernels::constants::attention as c;
use crate::kernels::gemm::{linear_into, GemmEpilogue, GemmOptions, GemmShape};
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

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AttnSoftmaxParams {
    q_len: u32,
    k_len: u32,
    causal: u32,
    scale: f32,
}
const _: () = assert!(std::mem::size_of::<AttnSoftmaxParams>() == 16);
// SAFETY: repr(C) plain data, same layout as the C struct (size asserted on both sides).
unsafe impl cudarc::driver::DeviceRepr for AttnSoftmaxParams {}

declare_kernels! {
    /// C: `attention_softmax_unfused_<T>(T* s, AttnSoftmaxParams p)` — the unfused
    /// baseline's row softmax of one head's logits [Tq, Tk], in place.
    fn attention_softmax_unfused<T: f16 | bf16>(s: output T, p: scalar AttnSoftmaxParams);
}

/// Shared memory of the kernel for `head_dim` (attention.cu, AttnTile::SMEM_BYTES): two
/// stages of a K and a V tile of BN rows of 16-bit elements, rows padded to an odd number of
/// 16-byte chunks.
fn smem_bytes(head_dim: usize) -> u32 {
    let bn = if head_dim <= c::ATTN_NARROW_MAX_DIM as usize { c::ATTN_BLOCK_N_NARROW } else { c::ATTN_BLOCK_N_WIDE }
        as usize;
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

/// Attention forward over a batch of equal-length sequences into `out` (`[B, Tq, H, Dh]` at
/// `layout.o`) and `lse` (f32 `[B, H, Tq]`), see the module documentation. T is f16 or
/// bf16 (on tensor cores) or f32 (on CUDA cores). Enqueued on the device's stream; no host
/// synchronization.
///
/// Errors: [`Error::InvalidArgument`] naming
/// `shape.head_dim` (not 32/64/72/96/128), `shape` (a grid dimension too large), `q`/`k`/
/// `v`/`out` (too short for the shape and strides, strides not multiples of 8, not 16-byte
/// aligned), `layout.o` (rows overlap), `options.scale` (not finite), `options.key_lengths`
/// (≠ B entries or one above Tk); [`Error::LengthMismatch`] naming `lse` (≠ B·H·Tq);
/// [`Error::WrongDevice`].
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
    let AttentionShape { batch, heads, head_dim, q_len, k_len } = shape;
    let batch_kind = Batch::Fixed { batch, q_len, k_len };
    run(device, q.into(), k.into(), v.into(), batch_kind, heads, head_dim, layout, options, out.into(), lse.into())
}

/// Attention forward over a packed variable-length batch: Q `[total_q, H, Dh]`, K and V
/// `[total_k, H, Dh]` (at `layout`'s strides), sequence `b` = query tokens
/// `cu_seqlens_q[b] .. cu_seqlens_q[b + 1]` and key tokens `cu_seqlens_k[b] ..
/// cu_seqlens_k[b + 1]`; `out` `[total_q, H, Dh]` at `layout.o`, `lse` f32 `[H, total_q]`.
/// Causal masks are bottom-right aligned per sequence; `options.key_lengths` must be None
/// (the offsets already say which keys exist).
///
/// Errors: those of [`attention_into`], and [`Error::InvalidArgument`] naming
/// `cu_seqlens_q` / `cu_seqlens_k` (empty, not starting at 0, decreasing, different counts,
/// a sequence longer than u32 or a batch above 65535) or `options.key_lengths` (given).
#[allow(clippy::too_many_arguments)]
pub fn attention_varlen_into<'a, T: FloatElement>(
    device: &Device,
    q: impl Into<BufferView<'a, T>>,
    k: impl Into<BufferView<'a, T>>,
    v: impl Into<BufferView<'a, T>>,
    cu_seqlens_q: &[u32],
    cu_seqlens_k: &[u32],
    heads: usize,
    head_dim: usize,
    layout: &AttentionLayout,
    options: &AttentionOptions<'_>,
    out: impl Into<BufferViewMut<'a, T>>,
    lse: impl Into<BufferViewMut<'a, f32>>,
) -> Result<()> {
    for (arg, cu) in [("cu_seqlens_q", cu_seqlens_q), ("cu_seqlens_k", cu_seqlens_k)] {
        if cu.is_empty() {
            return Err(Error::invalid(arg, "needs B + 1 ≥ 1 offsets"));
        }
        if cu[0] != 0 {
            return Err(Error::invalid(arg, format!("starts at {}, not 0", cu[0])));
        }
        if let Some(b) = cu.windows(2).position(|w| w[1] < w[0]) {
            return Err(Error::invalid(arg, format!("decreases after sequence {b}: {} then {}", cu[b], cu[b + 1])));
        }
    }
    if cu_seqlens_k.len() != cu_seqlens_q.len() {
        return Err(Error::invalid(
            "cu_seqlens_k",
            format!("{} offsets, but cu_seqlens_q has {}", cu_seqlens_k.len(), cu_seqlens_q.len()),
        ));
    }
    if options.key_lengths.is_some() {
        return Err(Error::invalid(
            "options.key_lengths",
            "not with a varlen batch: cu_seqlens_k says which keys exist",
        ));
    }
    let batch_kind = Batch::Varlen { cu_q: cu_seqlens_q, cu_k: cu_seqlens_k };
    run(device, q.into(), k.into(), v.into(), batch_kind, heads, head_dim, layout, options, out.into(), lse.into())
}

/// The batch of one call: equal lengths, or packed sequences (offsets checked by the caller).
#[derive(Clone, Copy)]
enum Batch<'s> {
    Fixed { batch: usize, q_len: usize, k_len: usize },
    Varlen { cu_q: &'s [u32], cu_k: &'s [u32] },
}

impl Batch<'_> {
    fn batch(&self) -> usize {
        match *self {
            Batch::Fixed { batch, .. } => batch,
            Batch::Varlen { cu_q, .. } => cu_q.len() - 1,
        }
    }

    /// Total query and key tokens.
    fn tokens(&self) -> Result<(usize, usize)> {
        match *self {
            Batch::Fixed { batch, q_len, k_len } => Ok((
                batch.checked_mul(q_len).ok_or_else(|| Error::invalid("shape", "B·Tq overflows"))?,
                batch.checked_mul(k_len).ok_or_else(|| Error::invalid("shape", "B·Tk overflows"))?,
            )),
            Batch::Varlen { cu_q, cu_k } => Ok((cu_q[cu_q.len() - 1] as usize, cu_k[cu_k.len() - 1] as usize)),
        }
    }

    /// Query and key lengths of sequence `b`.
    fn lens(&self, b: usize) -> (usize, usize) {
        match *self {
            Batch::Fixed { q_len, k_len, .. } => (q_len, k_len),
            Batch::Varlen { cu_q, cu_k } => ((cu_q[b + 1] - cu_q[b]) as usize, (cu_k[b + 1] - cu_k[b]) as usize),
        }
    }

    /// The longest query sequence (the grid's x extent, in blocks of query rows).
    fn max_q(&self) -> usize {
        match *self {
            Batch::Fixed { q_len, .. } => q_len,
            Batch::Varlen { cu_q, .. } => (0..cu_q.len() - 1).map(|b| self.lens(b).0).max().unwrap_or(0),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run<T: FloatElement>(
    device: &Device,
    q: BufferView<'_, T>,
    k: BufferView<'_, T>,
    v: BufferView<'_, T>,
    seqs: Batch<'_>,
    heads: usize,
    head_dim: usize,
    layout: &AttentionLayout,
    options: &AttentionOptions<'_>,
    mut out: BufferViewMut<'_, T>,
    mut lse: BufferViewMut<'_, f32>,
) -> Result<()> {
    if !ATTENTION_HEAD_DIMS.contains(&head_dim) {
        return Err(Error::invalid("shape.head_dim", format!("{head_dim}; kernels exist for {ATTENTION_HEAD_DIMS:?}")));
    }
    let batch = seqs.batch();
    let (q_tokens, k_tokens) = seqs.tokens()?;
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
    if let Some(kl) = options.key_lengths {
        if kl.len() != batch {
            return Err(Error::invalid("options.key_lengths", format!("{} entries for B = {batch}", kl.len())));
        }
        if let Some((b, &l)) = kl.iter().enumerate().find(|(b, &l)| l as usize > seqs.lens(*b).1) {
            return Err(Error::invalid(
                "options.key_lengths",
                format!("entry {b} is {l}, above Tk = {}", seqs.lens(b).1),
            ));
        }
    }
    for (arg, d) in [("q", q.device()), ("k", k.device()), ("v", v.device()), ("out", out.device())] {
        device.check_same(arg, d)?;
    }
    device.check_same("lse", lse.device())?;

    if device.kind() == BackendKind::Cpu {
        let (seqlens, q_batch, k_batch) = match seqs {
            Batch::Fixed { batch, q_len, k_len } => {
                (reference::Seqlens::Padded { batch, tq: q_len, tk: k_len }, q_len, k_len)
            }
            Batch::Varlen { cu_q, cu_k } => {
                (reference::Seqlens::Varlen { cu_seqlens_q: cu_q, cu_seqlens_k: cu_k }, 0, 0)
            }
        };
        let strides =
            |l: HeadLayout, len: usize| reference::Strides { batch: len * l.token, token: l.token, head: l.head };
        let mut problem = reference::Problem::new(seqlens, heads, head_dim);
        problem.q = strides(layout.q, q_batch);
        problem.k = strides(layout.k, k_batch);
        problem.v = strides(layout.v, k_batch);
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
    let max_q = seqs.max_q();
    if batch == 0 || max_q == 0 || heads == 0 {
        return Ok(());
    }
    // Query rows per block: 64 (tensor cores) or 32 (f32 on CUDA cores).
    let f32_kernel = T::DTYPE == DType::F32;
    let block_m = if f32_kernel { attention_f32::BLOCK_M } else { c::ATTN_BLOCK_M as usize };
    let grid = (u32_of(max_q.div_ceil(block_m), "shape")?, u32_of(heads, "shape")?, u32_of(batch, "shape")?);
    if grid.1 > 65_535 || grid.2 > 65_535 {
        return Err(Error::invalid("shape", format!("H = {heads} and B = {batch} must be at most 65535")));
    }
    let (fixed_q, fixed_k) = match seqs {
        Batch::Fixed { q_len, k_len, .. } => (u32_of(q_len, "shape")?, u32_of(k_len, "shape")?),
        Batch::Varlen { .. } => (0, 0),
    };
    let varlen = matches!(seqs, Batch::Varlen { .. });
    let p = AttnParams {
        batch: grid.2,
        heads: grid.1,
        q_len: fixed_q,
        k_len: fixed_k,
        varlen: varlen as u32,
        causal: options.causal as u32,
        q_token_stride: u32_of(layout.q.token, "q")?,
        k_token_stride: u32_of(layout.k.token, "k")?,
        v_token_stride: u32_of(layout.v.token, "v")?,
        o_token_stride: u32_of(layout.o.token, "out")?,
        q_head_stride: u32_of(layout.q.head, "q")?,
        k_head_stride: u32_of(layout.k.head, "k")?,
        v_head_stride: u32_of(layout.v.head, "v")?,
        o_head_stride: u32_of(layout.o.head, "out")?,
        lse_head_stride: u32_of(if varlen { q_tokens } else { fixed_q as usize }, "shape")?,
        has_key_lengths: options.key_lengths.is_some() as u32,
        scale_log2: scale * std::f32::consts::LOG2_E,
        pad: 0,
    };
    // The profile's FLOPs: 4·Dh per visible (query, key) pair (Q·Kᵀ and P·V), per head.
    let visible: u64 = (0..batch)
        .map(|b| {
            let (tq, tk) = seqs.lens(b);
            let keys = options.key_lengths.map_or(tk, |l| l[b] as usize);
            (0..tq)
                .map(|i| if options.causal { keys.min((i + tk + 1).saturating_sub(tq)) } else { keys } as u64)
                .sum::<u64>()
        })
        .sum();
    crate::device::emulator::hint_flops(4 * head_dim as u64 * heads as u64 * visible);
    // One u32 buffer: [cu_seqlens_q | cu_seqlens_k] (varlen), the key lengths, or one word.
    // Without offsets or key lengths the kernel reads none of it: a pooled placeholder word,
    // no copy (the common case of a model forward).
    let words = match (seqs, options.key_lengths) {
        (Batch::Varlen { cu_q, cu_k }, _) => device.scratch_u32(&[cu_q, cu_k].concat())?,
        (Batch::Fixed { .. }, Some(lengths)) => device.scratch_u32(lengths)?,
        (Batch::Fixed { .. }, None) => device.scratch_u32_unread(1)?,
    };
    let (wq, wk, wl) = if varlen {
        (words.view(..batch + 1)?, words.view(batch + 1..)?, words.view(..1)?)
    } else {
        (words.as_view(), words.as_view(), words.as_view())
    };
    if f32_kernel {
        let internal = || Error::invalid("q", "internal: DType::F32 is not f32");
        let (q, k, v) = (
            q.downcast().ok_or_else(internal)?,
            k.downcast().ok_or_else(internal)?,
            v.downcast().ok_or_else(internal)?,
        );
        let out = out.downcast().ok_or_else(internal)?;
        return attention_f32::launch(device, grid, head_dim, q, k, v, out, lse, (wq, wk, wl), p);
    }
    let cfg = LaunchConfig { grid, block: (c::ATTN_THREADS, 1, 1), shared_mem_bytes: smem_bytes(head_dim) };
    let launched = match head_dim {
        32 => attention_fwd_d32(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        64 => attention_fwd_d64(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        72 => attention_fwd_d72(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        96 => attention_fwd_d96(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        _ => attention_fwd_d128(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
    };
    // Stream order: the next call that takes this buffer runs after this kernel.
    device.recycle_u32(words);
    launched
}

/// The unfused baseline of [`attention_into`], as it is written without a fused kernel: per
/// sequence and head, `S = Q·Kᵀ` by the tile GEMM into `scores`, a row-softmax kernel over
/// S in place (scale and bottom-right causal mask; P rounded to T), then `O = P·V` by the
/// tile GEMM — S makes a round trip through memory. Head-major layouts, contiguous: `q`
/// `[B·H, Tq, Dh]`, `k` `[B·H, Tk, Dh]`, `v_t` = V transposed per head `[B·H, Dh, Tk]` (the
/// GEMM's weight layout; the transpose is not counted), `scores` `[Tq, Tk]` (scratch),
/// `out` `[B·H, Tq, Dh]`. No lse, no key padding. For benchmarks; f16/bf16, any head dim.
///
/// Errors: [`Error::UnsupportedDtype`] for f32; [`Error::InvalidArgument`] naming
/// `options.key_lengths` (not supported here) or `options.scale`; [`Error::LengthMismatch`]
/// naming the first buffer whose length does not fit; [`Error::WrongDevice`].
#[allow(clippy::too_many_arguments)]
pub fn attention_unfused_into<'a, T: FloatElement + crate::kernels::gemm::LinearOutput<T>>(
    device: &Device,
    q: impl Into<BufferView<'a, T>>,
    k: impl Into<BufferView<'a, T>>,
    v_t: impl Into<BufferView<'a, T>>,
    shape: AttentionShape,
    options: &AttentionOptions<'_>,
    scores: impl Into<BufferViewMut<'a, T>>,
    out: impl Into<BufferViewMut<'a, T>>,
) -> Result<()> {
    let (q, k, v_t, mut scores, mut out) = (q.into(), k.into(), v_t.into(), scores.into(), out.into());
    let AttentionShape { batch, heads, head_dim, q_len, k_len } = shape;
    if T::DTYPE == DType::F32 {
        return Err(Error::UnsupportedDtype { kernel: "attention_softmax_unfused", dtype: T::DTYPE });
    }
    if options.key_lengths.is_some() {
        return Err(Error::invalid("options.key_lengths", "the unfused baseline has no key padding"));
    }
    let scale = options.scale.unwrap_or_else(|| reference::default_scale(head_dim));
    if !scale.is_finite() {
        return Err(Error::invalid("options.scale", format!("{scale} is not finite")));
    }
    let bh = batch * heads;
    for (arg, len, want) in [
        ("q", q.len(), bh * q_len * head_dim),
        ("k", k.len(), bh * k_len * head_dim),
        ("v_t", v_t.len(), bh * k_len * head_dim),
        ("scores", scores.len(), q_len * k_len),
        ("out", out.len(), bh * q_len * head_dim),
    ] {
        if len != want {
            return Err(Error::LengthMismatch { arg, expected: want, actual: len });
        }
    }
    let gemm = GemmOptions::default();
    let p = AttnSoftmaxParams {
        q_len: u32_of(q_len, "shape")?,
        k_len: u32_of(k_len, "shape")?,
        causal: options.causal as u32,
        scale,
    };
    let cfg = LaunchConfig::linear(p.q_len.clamp(1, 1 << 16), c::ATTN_SOFTMAX_THREADS, 0);
    for i in 0..bh {
        let (qs, ks) = (
            q.view(i * q_len * head_dim..(i + 1) * q_len * head_dim)?,
            k.view(i * k_len * head_dim..(i + 1) * k_len * head_dim)?,
        );
        let vs = v_t.view(i * k_len * head_dim..(i + 1) * k_len * head_dim)?;
        linear_into(
            device,
            qs,
            ks,
            GemmShape { m: q_len, n: k_len, k: head_dim },
            &GemmEpilogue::None,
            scores.reborrow(),
            &gemm,
        )?;
        if device.kind() == BackendKind::Cpu {
            softmax_rows_host(host_mut(&mut scores, "scores")?, p);
        } else if q_len > 0 && k_len > 0 {
            attention_softmax_unfused(device, &cfg, scores.reborrow(), p)?;
        }
        let os = out.view_mut(i * q_len * head_dim..(i + 1) * q_len * head_dim)?;
        linear_into(
            device,
            scores.as_view(),
            vs,
            GemmShape { m: q_len, n: head_dim, k: k_len },
            &GemmEpilogue::None,
            os,
            &gemm,
        )?;
    }
    Ok(())
}

/// The softmax kernel's computation on the host (the Cpu backend's baseline).
fn softmax_rows_host<T: FloatElement>(s: &mut [T], p: AttnSoftmaxParams) {
    let (tq, tk) = (p.q_len as usize, p.k_len as usize);
    for (i, row) in s.chunks_exact_mut(tk.max(1)).take(tq).enumerate() {
        let visible = if p.causal != 0 { (i + tk + 1).saturating_sub(tq).min(tk) } else { tk };
        let m = row[..visible].iter().map(|x| x.to_f32() * p.scale).fold(f32::NEG_INFINITY, f32::max);
        let m = if m == f32::NEG_INFINITY { 0.0 } else { m };
        let l: f32 = row[..visible].iter().map(|x| (x.to_f32() * p.scale - m).exp()).sum();
        let inv = if l > 0.0 { 1.0 / l } else { 0.0 };
        for (j, x) in row.iter_mut().enumerate() {
            *x = T::from_f32(if j < visible { (x.to_f32() * p.scale - m).exp() * inv } else { 0.0 });
        }
    }
}
