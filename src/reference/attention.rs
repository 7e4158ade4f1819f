//! Scaled dot-product attention on the CPU, written for obviousness: the oracle of the
//! attention kernel.
//!
//! For each batch item `b`, head `h` and query `i` of the item:
//!
//! ```text
//! s_j  = scale · Σ_d Q[b, i, h, d]·K[b, j, h, d]            over the keys j visible to i
//! m    = max_j s_j,   l = Σ_j exp(s_j − m)
//! O[b, i, h, :] = Σ_j exp(s_j − m)·V[b, j, h, :] / l
//! lse[b, h, i]  = m + ln(l)                                 (natural log)
//! ```
//!
//! A row with no visible key (every key masked, or no key at all) has `O = 0` and
//! `lse = −∞`, never NaN. Non-finite inputs propagate as IEEE arithmetic makes them.
//!
//! **Layouts.** Q, K and V are read through [`Strides`]: element `(b, t, h, d)` of a padded
//! batch is at `b·batch + t·token + h·head + d` (the head dimension is contiguous), so Q, K
//! and V may be views into one fused QKV buffer `[B, T, 3, H, Dh]` ([`Strides::fused_qkv`],
//! [`split_fused_qkv`]). A packed variable-length batch ([`Seqlens::Varlen`]) holds its
//! tokens as `[total, H, Dh]` rows (`batch` stride unused): item `b`'s queries are tokens
//! `cu_seqlens_q[b] .. cu_seqlens_q[b + 1]`, its keys tokens `cu_seqlens_k[b] ..
//! cu_seqlens_k[b + 1]`. The offsets are `u32` (the element type the kernels take for
//! indices), `B + 1` of them, starting at 0, non-decreasing; query and key lengths may
//! differ and may be 0.
//!
//! The outputs are contiguous, whatever the input strides: `O` is `[B, Tq, H, Dh]`
//! (padded) or `[total_q, H, Dh]` (varlen); `lse` is `[B, H, Tq]` (padded) or
//! `[H, total_q]` (varlen), FlashAttention's `softmax_lse` layouts. [`Problem::out_row`]
//! and [`Problem::lse_index`] say where a row is.
//!
//! **Masks** ([`Mask`]), with `Tq`, `Tk` the query and key lengths of the item:
//! - causal, aligned to the bottom-right corner as PyTorch's and FlashAttention's
//!   `causal` with `Tq ≠ Tk`: query `i` sees key `j` iff `j ≤ i + Tk − Tq` (the last query
//!   sees every key; with `Tq > Tk` the first `Tq − Tk` queries see none). Note that
//!   `torch.nn.functional.scaled_dot_product_attention(is_causal=True)` is aligned to the
//!   top-left corner (`j ≤ i`) instead; the two agree only when `Tq = Tk`;
//! - key padding as per-item key lengths: item `b` sees only keys `j < key_lengths[b]`
//!   (`key_lengths[b] ≤ Tk`; right padding). Both masks together are their intersection:
//!   the causal alignment uses the item's full `Tk`, as `attn_mask = causal & padding`
//!   does in PyTorch. (For FlashAttention's `seqused_k`, where the causal corner moves with
//!   the used length, describe the batch with [`Seqlens::Varlen`] instead.)
//!
//! **Two references.** [`attention_f64`] is exact as far as f64 goes (f64 logits,
//! max-subtracted softmax, f64 sums); [`attention_plain`] is the straightforward attention
//! in the input precision that FlashAttention's error rule measures against (its rounding
//! steps are listed there). [`error_rule`] applies the rule: a kernel's max abs error
//! against the f64 reference may be at most twice the plain reference's, plus a small floor.

use crate::element::{DType, FloatElement};

/// A shape, stride, length or offset that the references cannot work with: the argument
/// (as named in this module's documentation) and why. The kernel wrapper turns its own
/// checks into `Error::InvalidArgument`; the references return this instead of panicking.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid argument `{arg}`: {reason}")]
pub struct ShapeError {
    /// The argument's name (`q`, `cu_seqlens_k`, `key_lengths`, `head_dim`, ...).
    pub arg: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn bad(arg: &'static str, reason: impl Into<String>) -> ShapeError {
    ShapeError { arg, reason: reason.into() }
}

/// Element strides of one of Q, K, V; the head dimension is contiguous (stride 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strides {
    /// Elements between consecutive batch items (unused by [`Seqlens::Varlen`]).
    pub batch: usize,
    /// Elements between consecutive tokens.
    pub token: usize,
    /// Elements between consecutive heads.
    pub head: usize,
}

impl Strides {
    /// A contiguous `[B, tokens, H, Dh]` tensor.
    pub fn contiguous(tokens: usize, heads: usize, head_dim: usize) -> Strides {
        Strides { batch: tokens * heads * head_dim, token: heads * head_dim, head: head_dim }
    }

    /// A packed variable-length tensor `[total, H, Dh]` (batch stride 0: unused).
    pub fn packed(heads: usize, head_dim: usize) -> Strides {
        Strides { batch: 0, token: heads * head_dim, head: head_dim }
    }

    /// One of Q, K, V inside a fused `[B, tokens, 3, H, Dh]` buffer (or a packed
    /// `[total, 3, H, Dh]` one, whose batch stride is then unused): token stride `3·H·Dh`,
    /// head stride `Dh`. The three views start `H·Dh` elements apart ([`split_fused_qkv`]).
    pub fn fused_qkv(tokens: usize, heads: usize, head_dim: usize) -> Strides {
        Strides { batch: tokens * 3 * heads * head_dim, token: 3 * heads * head_dim, head: head_dim }
    }
}

/// Q, K and V of a fused `[.., 3, H, Dh]` buffer: the slices starting at elements 0,
/// `H·Dh` and `2·H·Dh`, to be read with [`Strides::fused_qkv`].
pub fn split_fused_qkv<T>(qkv: &[T], heads: usize, head_dim: usize) -> (&[T], &[T], &[T]) {
    let part = (heads * head_dim).min(qkv.len());
    let part2 = (2 * heads * head_dim).min(qkv.len());
    (qkv, &qkv[part..], &qkv[part2..])
}

/// The batch: padded items of equal lengths, or a packed variable-length batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seqlens<'a> {
    /// `batch` items of `tq` queries and `tk` keys each.
    Padded {
        /// Items (B).
        batch: usize,
        /// Queries per item (Tq).
        tq: usize,
        /// Keys (and values) per item (Tk).
        tk: usize,
    },
    /// Packed tokens `[total, H, Dh]`; item `b` has queries `cu_seqlens_q[b] ..
    /// cu_seqlens_q[b + 1]` and keys `cu_seqlens_k[b] .. cu_seqlens_k[b + 1]`. Both hold
    /// `B + 1` offsets, start at 0 and do not decrease.
    Varlen {
        /// Query offsets `[B + 1]`.
        cu_seqlens_q: &'a [u32],
        /// Key offsets `[B + 1]`.
        cu_seqlens_k: &'a [u32],
    },
}

/// Which keys each query sees (see the module documentation); `Mask::default()` is none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mask<'a> {
    /// Bottom-right causal: query `i` sees key `j` iff `j ≤ i + Tk − Tq`.
    pub causal: bool,
    /// Key padding: item `b` sees only keys `j < key_lengths[b]` (`[B]`, each ≤ the
    /// item's `Tk`). `None`: every key.
    pub key_lengths: Option<&'a [u32]>,
}

/// One attention call: the batch, the heads, the strides of Q, K, V, the mask and the scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Problem<'a> {
    /// The batch and its sequence lengths.
    pub seqlens: Seqlens<'a>,
    /// Heads (H), the same for Q, K and V.
    pub heads: usize,
    /// Head dimension (Dh ≥ 1; the kernel supports 32, 64, 72, 96, 128).
    pub head_dim: usize,
    /// Strides of Q.
    pub q: Strides,
    /// Strides of K.
    pub k: Strides,
    /// Strides of V.
    pub v: Strides,
    /// The mask.
    pub mask: Mask<'a>,
    /// The logit scale, finite; [`default_scale`] unless set.
    pub scale: f32,
}

/// `1/sqrt(Dh)` rounded to f32, the default scale. Both references use the scale as this
/// f32 value (the kernel's), so the f64 reference is exact for the scale the kernel uses.
pub fn default_scale(head_dim: usize) -> f32 {
    (1.0 / (head_dim as f64).sqrt()) as f32
}

/// The mask rule for one item: does query `i` of `tq` see key `j` of `tk`?
pub fn visible(mask: &Mask<'_>, key_length: usize, tq: usize, tk: usize, i: usize, j: usize) -> bool {
    // j ≤ i + Tk − Tq, without leaving the unsigned integers: j + Tq ≤ i + Tk.
    let causal_ok = !mask.causal || j + tq <= i + tk;
    causal_ok && j < key_length
}

impl<'a> Problem<'a> {
    /// Contiguous Q, K, V (`[B, T, H, Dh]`, or `[total, H, Dh]` for varlen), no mask,
    /// [`default_scale`].
    pub fn new(seqlens: Seqlens<'a>, heads: usize, head_dim: usize) -> Problem<'a> {
        let (sq, sk) = match seqlens {
            Seqlens::Padded { tq, tk, .. } => {
                (Strides::contiguous(tq, heads, head_dim), Strides::contiguous(tk, heads, head_dim))
            }
            Seqlens::Varlen { .. } => (Strides::packed(heads, head_dim), Strides::packed(heads, head_dim)),
        };
        Problem { seqlens, heads, head_dim, q: sq, k: sk, v: sk, mask: Mask::default(), scale: default_scale(head_dim) }
    }

    /// Batch items (B).
    pub fn batch(&self) -> usize {
        match self.seqlens {
            Seqlens::Padded { batch, .. } => batch,
            Seqlens::Varlen { cu_seqlens_q, .. } => cu_seqlens_q.len().saturating_sub(1),
        }
    }

    /// `(Tq, Tk)` of item `b`.
    pub fn lens(&self, b: usize) -> (usize, usize) {
        match self.seqlens {
            Seqlens::Padded { tq, tk, .. } => (tq, tk),
            Seqlens::Varlen { cu_seqlens_q: q, cu_seqlens_k: k } => {
                ((q[b + 1] - q[b]) as usize, (k[b + 1] - k[b]) as usize)
            }
        }
    }

    /// Keys item `b` may see at most: its `key_lengths` entry, or its `Tk`.
    pub fn key_length(&self, b: usize) -> usize {
        let tk = self.lens(b).1;
        self.mask.key_lengths.map_or(tk, |l| l[b] as usize)
    }

    /// Query tokens in all (`B·Tq`, or `cu_seqlens_q[B]`): the rows of O per head.
    pub fn total_q(&self) -> usize {
        match self.seqlens {
            Seqlens::Padded { batch, tq, .. } => batch * tq,
            Seqlens::Varlen { cu_seqlens_q, .. } => cu_seqlens_q.last().map_or(0, |&v| v as usize),
        }
    }

    /// Elements of the output O: `total_q · H · Dh`.
    pub fn out_len(&self) -> usize {
        self.total_q() * self.heads * self.head_dim
    }

    /// Elements of lse: `total_q · H`.
    pub fn lse_len(&self) -> usize {
        self.total_q() * self.heads
    }

    /// The global query token of query `i` of item `b` (its row in `[total_q, ..]`).
    fn q_token(&self, b: usize, i: usize) -> usize {
        match self.seqlens {
            Seqlens::Padded { tq, .. } => b * tq + i,
            Seqlens::Varlen { cu_seqlens_q, .. } => cu_seqlens_q[b] as usize + i,
        }
    }

    /// The first element of O's row for (item `b`, query `i`, head `h`); the row is `Dh`
    /// elements.
    pub fn out_row(&self, b: usize, i: usize, h: usize) -> usize {
        (self.q_token(b, i) * self.heads + h) * self.head_dim
    }

    /// The index in lse of (item `b`, query `i`, head `h`): `[B, H, Tq]` or `[H, total_q]`.
    pub fn lse_index(&self, b: usize, i: usize, h: usize) -> usize {
        match self.seqlens {
            Seqlens::Padded { tq, .. } => (b * self.heads + h) * tq + i,
            Seqlens::Varlen { .. } => h * self.total_q() + self.q_token(b, i),
        }
    }

    /// Element offset of token `t` of item `b`, head `h`, in a tensor with strides `s`.
    fn offset(&self, s: &Strides, cu: Option<&[u32]>, b: usize, t: usize, h: usize) -> usize {
        match cu {
            None => b * s.batch + t * s.token + h * s.head,
            Some(cu) => (cu[b] as usize + t) * s.token + h * s.head,
        }
    }

    fn cu(&self) -> (Option<&'a [u32]>, Option<&'a [u32]>) {
        match self.seqlens {
            Seqlens::Padded { .. } => (None, None),
            Seqlens::Varlen { cu_seqlens_q, cu_seqlens_k } => (Some(cu_seqlens_q), Some(cu_seqlens_k)),
        }
    }

    /// Checks the problem against the lengths of the Q, K and V slices: `heads`,
    /// `head_dim` ≥ 1, a finite `scale`, well-formed `cu_seqlens_q`/`cu_seqlens_k`,
    /// `key_lengths` of B entries each ≤ the item's Tk, and slices that hold every element
    /// the strides reach; no size computation overflows.
    pub fn validate(&self, q_len: usize, k_len: usize, v_len: usize) -> Result<(), ShapeError> {
        if self.heads == 0 {
            return Err(bad("heads", "must be at least 1"));
        }
        if self.head_dim == 0 {
            return Err(bad("head_dim", "must be at least 1"));
        }
        if !self.scale.is_finite() {
            return Err(bad("scale", format!("{} is not finite", self.scale)));
        }
        if let Seqlens::Varlen { cu_seqlens_q, cu_seqlens_k } = self.seqlens {
            for (arg, cu) in [("cu_seqlens_q", cu_seqlens_q), ("cu_seqlens_k", cu_seqlens_k)] {
                if cu.is_empty() {
                    return Err(bad(arg, "needs B + 1 ≥ 1 offsets"));
                }
                if cu[0] != 0 {
                    return Err(bad(arg, format!("starts at {}, not 0", cu[0])));
                }
                if let Some(b) = cu.windows(2).position(|w| w[1] < w[0]) {
                    return Err(bad(arg, format!("decreases after item {b}: {} then {}", cu[b], cu[b + 1])));
                }
            }
            if cu_seqlens_k.len() != cu_seqlens_q.len() {
                return Err(bad(
                    "cu_seqlens_k",
                    format!("{} offsets, but cu_seqlens_q has {}", cu_seqlens_k.len(), cu_seqlens_q.len()),
                ));
            }
        }
        let batch = self.batch();
        if let Some(lengths) = self.mask.key_lengths {
            if lengths.len() != batch {
                return Err(bad("key_lengths", format!("{} entries for B = {batch}", lengths.len())));
            }
            for (b, &l) in lengths.iter().enumerate() {
                let tk = self.lens(b).1;
                if l as usize > tk {
                    return Err(bad("key_lengths", format!("item {b}: {l} keys, but it has Tk = {tk}")));
                }
            }
        }
        let (tq_max, tk_max) = match self.seqlens {
            Seqlens::Padded { tq, tk, .. } => (tq, tk),
            Seqlens::Varlen { cu_seqlens_q, cu_seqlens_k } => {
                (*cu_seqlens_q.last().unwrap() as usize, *cu_seqlens_k.last().unwrap() as usize)
            }
        };
        let padded = matches!(self.seqlens, Seqlens::Padded { .. });
        // Elements a tensor's strides reach, plus one: 0 when it has no row at all.
        let reach = |arg: &'static str, s: &Strides, tokens: usize| -> Result<usize, ShapeError> {
            let items = if padded { batch } else { 1 };
            if items == 0 || tokens == 0 {
                return Ok(0);
            }
            let overflow = || bad(arg, "the strides' reach overflows usize");
            let batch_part = if padded { (items - 1).checked_mul(s.batch).ok_or_else(overflow)? } else { 0 };
            let token_part = (tokens - 1).checked_mul(s.token).ok_or_else(overflow)?;
            let head_part = (self.heads - 1).checked_mul(s.head).ok_or_else(overflow)?;
            batch_part
                .checked_add(token_part)
                .and_then(|v| v.checked_add(head_part))
                .and_then(|v| v.checked_add(self.head_dim))
                .ok_or_else(overflow)
        };
        for (arg, s, tokens, len) in
            [("q", &self.q, tq_max, q_len), ("k", &self.k, tk_max, k_len), ("v", &self.v, tk_max, v_len)]
        {
            let need = reach(arg, s, tokens)?;
            if len < need {
                return Err(bad(arg, format!("{len} elements, but its strides reach element {}", need - 1)));
            }
        }
        self.total_q()
            .checked_mul(self.heads)
            .and_then(|v| v.checked_mul(self.head_dim))
            .ok_or_else(|| bad("q", "total_q·H·Dh overflows usize"))?;
        Ok(())
    }

    /// Calls `f(q_offset, keys, out_row, lse_index)` for every query row (item, head,
    /// query), where `keys` lists `(k_offset, v_offset)` of the keys the row sees, in key
    /// order.
    fn for_each_row(&self, mut f: impl FnMut(usize, &[(usize, usize)], usize, usize)) {
        let (cu_q, cu_k) = self.cu();
        let mut keys = Vec::new();
        for b in 0..self.batch() {
            let (tq, tk) = self.lens(b);
            let key_length = self.key_length(b);
            for h in 0..self.heads {
                for i in 0..tq {
                    keys.clear();
                    for j in (0..tk).filter(|&j| visible(&self.mask, key_length, tq, tk, i, j)) {
                        keys.push((self.offset(&self.k, cu_k, b, j, h), self.offset(&self.v, cu_k, b, j, h)));
                    }
                    let q_off = self.offset(&self.q, cu_q, b, i, h);
                    f(q_off, &keys, self.out_row(b, i, h), self.lse_index(b, i, h));
                }
            }
        }
    }
}

/// What a reference returns: O (`[total_q, H, Dh]` rows, see [`Problem::out_row`]) and
/// lse (see [`Problem::lse_index`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Output<O, L> {
    /// The attention output.
    pub out: Vec<O>,
    /// The log-sum-exp of each row's scaled, masked logits (natural log; −∞ for a row
    /// that sees no key).
    pub lse: Vec<L>,
}

fn f64_of<T: FloatElement>(v: T) -> f64 {
    v.to_f32() as f64
}

/// The f64 reference: every input widened exactly to f64; logits `scale·Σ_d q_d·k_d`
/// summed in f64 in the order d = 0, 1, ...; softmax with the row maximum subtracted
/// before `exp`; `Σ_j exp(s_j − m)·v_j` and `l` summed in f64 in key order; O divided by
/// `l` once; `lse = m + ln(l)`. A row that sees no key: O = 0, lse = −∞.
pub fn attention_f64<T: FloatElement>(
    p: &Problem<'_>,
    q: &[T],
    k: &[T],
    v: &[T],
) -> Result<Output<f64, f64>, ShapeError> {
    p.validate(q.len(), k.len(), v.len())?;
    let dh = p.head_dim;
    let scale = p.scale as f64;
    let mut out = vec![0.0f64; p.out_len()];
    let mut lse = vec![f64::NEG_INFINITY; p.lse_len()];
    let mut s = Vec::new();
    p.for_each_row(|q_off, keys, out_row, lse_idx| {
        if keys.is_empty() {
            return; // O stays 0, lse −∞.
        }
        let qr = &q[q_off..q_off + dh];
        s.clear();
        s.extend(keys.iter().map(|&(k_off, _)| {
            let kr = &k[k_off..k_off + dh];
            scale * qr.iter().zip(kr).map(|(&a, &b)| f64_of(a) * f64_of(b)).sum::<f64>()
        }));
        let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let o = &mut out[out_row..out_row + dh];
        let mut l = 0.0f64;
        for (&sj, &(_, v_off)) in s.iter().zip(keys) {
            let e = (sj - m).exp();
            l += e;
            for (od, &vd) in o.iter_mut().zip(&v[v_off..v_off + dh]) {
                *od += e * f64_of(vd);
            }
        }
        for od in o.iter_mut() {
            *od /= l;
        }
        lse[lse_idx] = m + l.ln();
    });
    Ok(Output { out, lse })
}

/// The plain attention in the input precision, the baseline of FlashAttention's error
/// rule (its tests' "PyTorch attention in the input dtype, softmax in f32"). Per row:
///
/// 1. `S_j = fl_T(Σ_d q_d·k_d)`: products and sum in f32 (d = 0, 1, ..., no FMA), the dot
///    product then rounded to T (identity for f32; may overflow to ±∞ in f16 past 65504);
/// 2. `x_j = fl32(S_j · scale)`, the scaled logit in f32;
/// 3. softmax in f32: `m = max_j x_j`, `e_j = fl32(exp(fl32(x_j − m)))`, `l = Σ_j e_j`
///    summed in f32 in key order, `p_j = fl32(e_j / l)`;
/// 4. `P_j = fl_T(p_j)`, the probabilities rounded to T;
/// 5. `O_d = fl_T(Σ_j P_j·v_jd)`: products and sum in f32 in key order, rounded once to T;
/// 6. `lse = fl32(m + fl32(ln l))`, kept in f32.
///
/// A row that sees no key: O = 0, lse = −∞.
pub fn attention_plain<T: FloatElement>(
    p: &Problem<'_>,
    q: &[T],
    k: &[T],
    v: &[T],
) -> Result<Output<T, f32>, ShapeError> {
    p.validate(q.len(), k.len(), v.len())?;
    let dh = p.head_dim;
    let mut out = vec![T::from_f32(0.0); p.out_len()];
    let mut lse = vec![f32::NEG_INFINITY; p.lse_len()];
    let mut x = Vec::new();
    let mut acc = vec![0.0f32; dh];
    p.for_each_row(|q_off, keys, out_row, lse_idx| {
        if keys.is_empty() {
            return;
        }
        let qr = &q[q_off..q_off + dh];
        x.clear();
        x.extend(keys.iter().map(|&(k_off, _)| {
            let mut dot = 0.0f32;
            for (&a, &b) in qr.iter().zip(&k[k_off..k_off + dh]) {
                dot += a.to_f32() * b.to_f32();
            }
            T::from_f32(dot).to_f32() * p.scale
        }));
        let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for xj in x.iter_mut() {
            *xj = (*xj - m).exp();
        }
        let mut l = 0.0f32;
        for &e in x.iter() {
            l += e;
        }
        acc.iter_mut().for_each(|a| *a = 0.0);
        for (&e, &(_, v_off)) in x.iter().zip(keys) {
            let pj = T::from_f32(e / l).to_f32();
            for (a, &vd) in acc.iter_mut().zip(&v[v_off..v_off + dh]) {
                *a += pj * vd.to_f32();
            }
        }
        for (o, &a) in out[out_row..out_row + dh].iter_mut().zip(&acc) {
            *o = T::from_f32(a);
        }
        lse[lse_idx] = m + l.ln();
    });
    Ok(Output { out, lse })
}

/// Machine epsilon of an element type (the distance from 1 to the next value): 2⁻²³ for
/// f32, 2⁻¹⁰ for f16, 2⁻⁷ for bf16.
pub fn epsilon<T: FloatElement>() -> f64 {
    match T::DTYPE {
        DType::F16 => 2f64.powi(-10),
        DType::BF16 => 2f64.powi(-7),
        _ => 2f64.powi(-23),
    }
}

/// The spacing of `T`'s values at magnitude `x` (`x ≥ 0`): `ε_T·2^⌊log2 x⌋` for normal
/// values, the smallest subnormal below them, 0 for `x = 0`.
pub fn ulp<T: FloatElement>(x: f64) -> f64 {
    let (min_normal_exp, min_subnormal) = match T::DTYPE {
        DType::F16 => (-14, 2f64.powi(-24)),
        DType::BF16 => (-126, 2f64.powi(-133)),
        _ => (-126, 2f64.powi(-149)),
    };
    if x == 0.0 {
        return 0.0;
    }
    let e = (x.abs().log2().floor() as i32).max(min_normal_exp);
    (epsilon::<T>() * 2f64.powi(e)).max(min_subnormal)
}

/// The largest `|got − want|` over the elements. An element where `want` is infinite
/// counts 0 if `got` is the same infinity and +∞ otherwise; a NaN in `got` (or in a finite
/// `want`'s difference) counts +∞, so it can never pass a finite bound.
pub fn max_abs_error(want: &[f64], got: impl IntoIterator<Item = f64>) -> f64 {
    let mut n = 0;
    let mut worst = 0.0f64;
    for (&w, g) in want.iter().zip(got) {
        n += 1;
        let e = if w.is_infinite() && g == w { 0.0 } else { (g - w).abs() };
        worst = if e.is_nan() { f64::INFINITY } else { worst.max(e) };
    }
    assert_eq!(n, want.len(), "max_abs_error: got has fewer elements than want");
    worst
}

/// One application of the error rule: `kernel_err ≤ 2·plain_err + floor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErrorRule {
    /// Max abs error of the kernel against the f64 reference.
    pub kernel_err: f64,
    /// Max abs error of the plain input-precision reference against the f64 reference.
    pub plain_err: f64,
    /// The absolute floor (see [`error_rule`]).
    pub floor: f64,
}

impl ErrorRule {
    /// `2·plain_err + floor`.
    pub fn bound(&self) -> f64 {
        2.0 * self.plain_err + self.floor
    }

    /// Whether the kernel is within the bound. False when the plain reference itself is
    /// not finite (an f16 logit past 65504): the rule then has no baseline, and a test must
    /// choose inputs the plain reference can represent.
    pub fn holds(&self) -> bool {
        self.plain_err.is_finite() && self.kernel_err <= self.bound()
    }
}

impl std::fmt::Display for ErrorRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kernel error {:e} {} 2 × plain error {:e} + floor {:e} = {:e}",
            self.kernel_err,
            if self.holds() { "≤" } else { "EXCEEDS" },
            self.plain_err,
            self.floor,
            self.bound()
        )
    }
}

/// The error rule on both outputs of an attention kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionErrors {
    /// The rule on O.
    pub out: ErrorRule,
    /// The rule on lse.
    pub lse: ErrorRule,
}

impl AttentionErrors {
    /// Both hold.
    pub fn holds(&self) -> bool {
        self.out.holds() && self.lse.holds()
    }
}

impl std::fmt::Display for AttentionErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "out: {}; lse: {}", self.out, self.lse)
    }
}

/// FlashAttention's error rule for a kernel's `out` (element type K: the input type T, or
/// f32) and `lse` (f32), laid out as the references' outputs: each max abs error against
/// `exact` ([`attention_f64`]) must be at most twice that of `plain`
/// ([`attention_plain`] on the same inputs) plus a floor.
///
/// The floor is one ulp of the largest output: `ulp_K(max|O|)` for O and
/// `ulp_f32(max|lse|)` (finite lse only) for lse, in the type the kernel writes ([`ulp`]).
/// It matters when the plain reference happens to be exact or nearly so (plain_err ≈ 0:
/// one visible key, outputs that round exactly, every row masked), where `2·plain_err`
/// alone would demand bit-exactness that no kernel can promise: its final rounding of each
/// output to K costs up to half an ulp, and its f32 work (an online softmax's rescaled
/// accumulators, one division by `l` at the end) differs from the plain reference's in the
/// last places, which can move that rounding to the neighbouring value — together at most
/// one ulp. Otherwise the floor adds little to FlashAttention's `2·plain_err`: the plain
/// reference rounds O to T as well, so for f16 and bf16 its error is itself about half an
/// ulp of the largest output or more; and any real bug (a wrong mask, a lost rescale, a
/// missing max subtraction) is larger by orders of magnitude. When every output is 0 (all
/// rows masked) the floor is 0 and the kernel must write exact zeros and −∞, as the spec
/// says.
pub fn error_rule<T: FloatElement, K: FloatElement>(
    exact: &Output<f64, f64>,
    plain: &Output<T, f32>,
    kernel_out: &[K],
    kernel_lse: &[f32],
) -> AttentionErrors {
    assert_eq!(plain.out.len(), exact.out.len(), "error_rule: plain.out is not the shape of exact.out");
    assert_eq!(kernel_out.len(), exact.out.len(), "error_rule: kernel_out is not the shape of exact.out");
    assert_eq!(plain.lse.len(), exact.lse.len(), "error_rule: plain.lse is not the shape of exact.lse");
    assert_eq!(kernel_lse.len(), exact.lse.len(), "error_rule: kernel_lse is not the shape of exact.lse");
    let max_abs = |v: &[f64]| v.iter().filter(|x| x.is_finite()).fold(0.0f64, |m, x| m.max(x.abs()));
    let out = ErrorRule {
        kernel_err: max_abs_error(&exact.out, kernel_out.iter().map(|&x| f64_of(x))),
        plain_err: max_abs_error(&exact.out, plain.out.iter().map(|&x| f64_of(x))),
        floor: ulp::<K>(max_abs(&exact.out)),
    };
    let lse = ErrorRule {
        kernel_err: max_abs_error(&exact.lse, kernel_lse.iter().map(|&x| x as f64)),
        plain_err: max_abs_error(&exact.lse, plain.lse.iter().map(|&x| x as f64)),
        floor: ulp::<f32>(max_abs(&exact.lse)),
    };
    AttentionErrors { out, lse }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_is_its_value() {
        let p = Problem::new(Seqlens::Padded { batch: 1, tq: 1, tk: 1 }, 1, 2);
        let r = attention_f64(&p, &[1.0f32, 2.0], &[3.0, 4.0], &[5.0, -6.0]).unwrap();
        assert_eq!(r.out, [5.0, -6.0]);
        assert_eq!(r.lse, [(11.0f64) * default_scale(2) as f64]);
    }

    #[test]
    fn bottom_right_rule() {
        let causal = Mask { causal: true, key_lengths: None };
        // Tq = 2, Tk = 4: query 0 sees keys 0..=2, query 1 all four.
        assert!(visible(&causal, 4, 2, 4, 0, 2) && !visible(&causal, 4, 2, 4, 0, 3));
        assert!(visible(&causal, 4, 2, 4, 1, 3));
        // Tq = 4, Tk = 2: queries 0 and 1 see nothing, query 2 sees key 0.
        assert!(!visible(&causal, 2, 4, 2, 1, 0) && visible(&causal, 2, 4, 2, 2, 0));
        assert!(!visible(&causal, 2, 4, 2, 2, 1));
    }
}
