//! Tests of the attention references (`reference::attention`) against hand computations:
//! the softmax, the masks and their bottom-right alignment, varlen batches, strides, empty
//! sequences, large logits, typed shape errors, and the error rule (which must be able to
//! fail).

use half::{bf16, f16};
use tessera::reference::attention::{
    self as attn, attention_f64, attention_plain, error_rule, Mask, Output, Problem, Seqlens, ShapeError, Strides,
};
use tessera::reference::kmeans::{unit_interval, Rng};
use tessera::FloatElement;

/// `n` values uniform in `[−amp, amp)`.
fn values(rng: &mut Rng, n: usize, amp: f64) -> Vec<f32> {
    (0..n).map(|_| ((2.0 * unit_interval(rng.next_u64()) - 1.0) * amp) as f32).collect()
}

fn to<T: FloatElement>(v: &[f32]) -> Vec<T> {
    v.iter().map(|&x| T::from_f32(x)).collect()
}

/// Attention of one item and one head written differently from the reference: contiguous
/// `q [tq, dh]`, `k, v [tk, dh]`, the full logit matrix, and each probability as
/// `p_j = 1 / Σ_k exp(s_k − s_j)` over the allowed keys (no maximum needed: an overflowing
/// term makes p_j = 0, its limit). Returns (out [tq, dh], lse [tq]).
#[allow(clippy::too_many_arguments)]
fn manual(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    tq: usize,
    tk: usize,
    dh: usize,
    scale: f32,
    allowed: impl Fn(usize, usize) -> bool,
) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![0.0; tq * dh];
    let mut lse = vec![f64::NEG_INFINITY; tq];
    for i in 0..tq {
        let s: Vec<Option<f64>> = (0..tk)
            .map(|j| {
                allowed(i, j)
                    .then(|| scale as f64 * (0..dh).map(|d| q[i * dh + d] as f64 * k[j * dh + d] as f64).sum::<f64>())
            })
            .collect();
        let seen: Vec<(usize, f64)> = s.iter().enumerate().filter_map(|(j, s)| s.map(|s| (j, s))).collect();
        if seen.is_empty() {
            continue;
        }
        for &(j, sj) in &seen {
            let p = 1.0 / seen.iter().map(|&(_, sk)| (sk - sj).exp()).sum::<f64>();
            for d in 0..dh {
                out[i * dh + d] += p * v[j * dh + d] as f64;
            }
        }
        let (_, smax) = seen.iter().copied().fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
        lse[i] = smax + seen.iter().map(|&(_, sk)| (sk - smax).exp()).sum::<f64>().ln();
    }
    (out, lse)
}

/// Rows (item b, head h) of a contiguous `[B, T, H, Dh]` tensor as a `[T, Dh]` matrix.
fn head_rows(x: &[f32], b: usize, h: usize, t: usize, heads: usize, dh: usize) -> Vec<f32> {
    (0..t).flat_map(|i| x[((b * t + i) * heads + h) * dh..][..dh].to_vec()).collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (n, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_infinite() { g == w } else { (g - w).abs() <= tol * (1.0 + w.abs()) };
        assert!(ok, "{what}[{n}]: got {g:e}, want {w:e}");
    }
}

/// Checks a padded problem with contiguous inputs against `manual`, every item and head.
fn check_against_manual(what: &str, p: &Problem<'_>, q: &[f32], k: &[f32], v: &[f32], tol: f64) -> Output<f64, f64> {
    let Seqlens::Padded { batch, tq, tk } = p.seqlens else { panic!("padded only") };
    let (heads, dh) = (p.heads, p.head_dim);
    let r = attention_f64(p, q, k, v).unwrap();
    for b in 0..batch {
        for h in 0..heads {
            let kl = p.key_length(b);
            let (out, lse) = manual(
                &head_rows(q, b, h, tq, heads, dh),
                &head_rows(k, b, h, tk, heads, dh),
                &head_rows(v, b, h, tk, heads, dh),
                tq,
                tk,
                dh,
                p.scale,
                |i, j| attn::visible(&p.mask, kl, tq, tk, i, j),
            );
            for i in 0..tq {
                let row = p.out_row(b, i, h);
                assert_close(&format!("{what} b{b} h{h} q{i} out"), &r.out[row..row + dh], &out[i * dh..][..dh], tol);
                assert_close(&format!("{what} b{b} h{h} q{i} lse"), &[r.lse[p.lse_index(b, i, h)]], &[lse[i]], tol);
            }
        }
    }
    r
}

fn padded(batch: usize, tq: usize, tk: usize, heads: usize, dh: usize) -> Problem<'static> {
    Problem::new(Seqlens::Padded { batch, tq, tk }, heads, dh)
}

const CAUSAL: Mask<'static> = Mask { causal: true, key_lengths: None };

#[test]
fn softmax_rows_sum_to_one() {
    // V = identity (Dh = Tk, v_j = e_j): each output row is the row's probabilities.
    let (tq, tk) = (6, 11);
    let mut rng = Rng::new(1);
    let q = values(&mut rng, tq * tk, 2.0);
    let k = values(&mut rng, tk * tk, 2.0);
    let v: Vec<f32> = (0..tk * tk).map(|n| if n / tk == n % tk { 1.0 } else { 0.0 }).collect();
    let lengths = [9u32];
    for mask in [Mask::default(), CAUSAL, Mask { causal: true, key_lengths: Some(&lengths) }] {
        let mut p = padded(1, tq, tk, 1, tk);
        p.mask = mask;
        let r = check_against_manual("softmax", &p, &q, &k, &v, 1e-14);
        for i in 0..tq {
            let probs = &r.out[i * tk..(i + 1) * tk];
            assert!(probs.iter().all(|&x| x >= 0.0), "{mask:?} row {i}: {probs:?}");
            let sum: f64 = probs.iter().sum();
            assert!((sum - 1.0).abs() <= 1e-15 * tk as f64, "{mask:?} row {i}: Σp = {sum}");
            for (j, &pj) in probs.iter().enumerate() {
                if !attn::visible(&mask, p.key_length(0), tq, tk, i, j) {
                    assert_eq!(pj, 0.0, "{mask:?} row {i}: masked key {j} has p = {pj}");
                }
            }
        }
    }
    // V = ones: every output is 1.
    let ones = vec![1.0f32; tk * 3];
    let mut p = padded(1, tq, tk, 1, 3);
    p.mask = CAUSAL;
    let q3 = values(&mut rng, tq * 3, 2.0);
    let k3 = values(&mut rng, tk * 3, 2.0);
    let r = attention_f64(&p, &q3, &k3, &ones).unwrap();
    assert!(r.out.iter().all(|&o| (o - 1.0).abs() <= 1e-15), "{:?}", r.out);
}

#[test]
fn causal_square_is_lower_triangular() {
    let (b, t, h, dh) = (2, 9, 2, 8);
    let mut rng = Rng::new(2);
    let (q, k, v) = (
        values(&mut rng, b * t * h * dh, 1.5),
        values(&mut rng, b * t * h * dh, 1.5),
        values(&mut rng, b * t * h * dh, 1.0),
    );
    let mut p = padded(b, t, t, h, dh);
    p.mask = CAUSAL;
    let r = attention_f64(&p, &q, &k, &v).unwrap();
    for bi in 0..b {
        for hi in 0..h {
            let (out, lse) = manual(
                &head_rows(&q, bi, hi, t, h, dh),
                &head_rows(&k, bi, hi, t, h, dh),
                &head_rows(&v, bi, hi, t, h, dh),
                t,
                t,
                dh,
                p.scale,
                |i, j| j <= i,
            );
            for i in 0..t {
                let row = p.out_row(bi, i, hi);
                assert_close("causal out", &r.out[row..row + dh], &out[i * dh..][..dh], 1e-14);
                assert_close("causal lse", &[r.lse[p.lse_index(bi, i, hi)]], &[lse[i]], 1e-14);
            }
            // Row 0 sees key 0 only: O = v_0 exactly, lse = s_00.
            let row = p.out_row(bi, 0, hi);
            let v0: Vec<f64> = head_rows(&v, bi, hi, t, h, dh)[..dh].iter().map(|&x| x as f64).collect();
            assert_eq!(&r.out[row..row + dh], &v0[..]);
        }
    }
}

#[test]
fn causal_is_bottom_right_with_fewer_queries() {
    // Tq = 3 < Tk = 8: query i sees keys j ≤ i + 5; the last query sees every key.
    let (tq, tk, h, dh) = (3, 8, 2, 5);
    let mut rng = Rng::new(3);
    let q = values(&mut rng, tq * h * dh, 1.5);
    let k = values(&mut rng, tk * h * dh, 1.5);
    let v = values(&mut rng, tk * h * dh, 1.0);
    let mut p = padded(1, tq, tk, h, dh);
    p.mask = CAUSAL;
    let r = attention_f64(&p, &q, &k, &v).unwrap();
    for hi in 0..h {
        let (out, lse) = manual(
            &head_rows(&q, 0, hi, tq, h, dh),
            &head_rows(&k, 0, hi, tk, h, dh),
            &head_rows(&v, 0, hi, tk, h, dh),
            tq,
            tk,
            dh,
            p.scale,
            |i, j| j <= i + 5,
        );
        for i in 0..tq {
            let row = p.out_row(0, i, hi);
            assert_close("short q out", &r.out[row..row + dh], &out[i * dh..][..dh], 1e-14);
            assert_close("short q lse", &[r.lse[p.lse_index(0, i, hi)]], &[lse[i]], 1e-14);
        }
    }
    // The last query row is the unmasked one, bit for bit.
    let full = attention_f64(&padded(1, tq, tk, h, dh), &q, &k, &v).unwrap();
    for hi in 0..h {
        let row = p.out_row(0, tq - 1, hi);
        assert_eq!(r.out[row..row + dh], full.out[row..row + dh]);
        assert_eq!(r.lse[p.lse_index(0, tq - 1, hi)], full.lse[p.lse_index(0, tq - 1, hi)]);
    }
    // Top-left alignment (j ≤ i) would be something else.
    let (top_left, _) = manual(
        &head_rows(&q, 0, 0, tq, h, dh),
        &head_rows(&k, 0, 0, tk, h, dh),
        &head_rows(&v, 0, 0, tk, h, dh),
        tq,
        tk,
        dh,
        p.scale,
        |i, j| j <= i,
    );
    assert!((top_left[0] - r.out[0]).abs() > 1e-3, "the test cannot tell the alignments apart");
}

#[test]
fn causal_is_bottom_right_with_more_queries() {
    // Tq = 8 > Tk = 3: query i sees keys j ≤ i − 5; queries 0..=4 see none.
    let (b, tq, tk, h, dh) = (2, 8, 3, 2, 4);
    let mut rng = Rng::new(4);
    let q = values(&mut rng, b * tq * h * dh, 1.5);
    let k = values(&mut rng, b * tk * h * dh, 1.5);
    let v = values(&mut rng, b * tk * h * dh, 1.0);
    let mut p = padded(b, tq, tk, h, dh);
    p.mask = CAUSAL;
    let r = check_against_manual("long q", &p, &q, &k, &v, 1e-14);
    for bi in 0..b {
        for hi in 0..h {
            for i in 0..5 {
                let row = p.out_row(bi, i, hi);
                assert!(r.out[row..row + dh].iter().all(|&o| o.to_bits() == 0), "row {i} is not +0");
                assert_eq!(r.lse[p.lse_index(bi, i, hi)], f64::NEG_INFINITY);
            }
            // Query 5 sees key 0 alone: O = v_0, lse = s_00.
            let row = p.out_row(bi, 5, hi);
            let v0: Vec<f64> = head_rows(&v, bi, hi, tk, h, dh)[..dh].iter().map(|&x| x as f64).collect();
            assert_eq!(r.out[row..row + dh], v0[..]);
            let (q5, k0) = (&head_rows(&q, bi, hi, tq, h, dh)[5 * dh..6 * dh], &head_rows(&k, bi, hi, tk, h, dh)[..dh]);
            let s = p.scale as f64 * q5.iter().zip(k0).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>();
            assert_eq!(r.lse[p.lse_index(bi, 5, hi)], s);
        }
    }
    // The plain reference agrees on the empty rows.
    let plain = attention_plain(&p, &to::<f16>(&q), &to::<f16>(&k), &to::<f16>(&v)).unwrap();
    assert!(plain.out[..5 * h * dh].iter().all(|&o| o.to_bits() == 0));
    assert_eq!(plain.lse[p.lse_index(0, 4, 0)], f32::NEG_INFINITY);
}

#[test]
fn key_padding_equals_truncated_keys() {
    let (b, tq, tk, h, dh) = (3, 4, 7, 2, 6);
    let mut rng = Rng::new(5);
    let q = values(&mut rng, b * tq * h * dh, 1.5);
    let k = values(&mut rng, b * tk * h * dh, 1.5);
    let v = values(&mut rng, b * tk * h * dh, 1.0);
    let lengths = [5u32, 0, 7];
    for causal in [false, true] {
        let mut p = padded(b, tq, tk, h, dh);
        p.mask = Mask { causal, key_lengths: Some(&lengths) };
        let r = check_against_manual("key padding", &p, &q, &k, &v, 1e-14);
        if causal {
            continue; // the causal corner uses the full Tk: no truncated problem equals it
        }
        for (bi, &len) in lengths.iter().enumerate() {
            let len = len as usize;
            let item = |x: &[f32], t: usize| x[bi * t * h * dh..][..t * h * dh].to_vec();
            let (qb, kb, vb) = (item(&q, tq), item(&k, tk), item(&v, tk));
            // Keys 0..len of the item, as a padded problem of Tk = len with the same strides.
            let mut pb = padded(1, tq, len, h, dh);
            pb.k = Strides::contiguous(tk, h, dh);
            pb.v = pb.k;
            let rb = attention_f64(&pb, &qb, &kb, &vb).unwrap();
            for hi in 0..h {
                for i in 0..tq {
                    let (row, rowb) = (p.out_row(bi, i, hi), pb.out_row(0, i, hi));
                    assert_eq!(r.out[row..row + dh], rb.out[rowb..rowb + dh], "item {bi} head {hi} query {i}");
                    assert_eq!(r.lse[p.lse_index(bi, i, hi)], rb.lse[pb.lse_index(0, i, hi)]);
                }
            }
        }
        // Item 1 has no key at all.
        assert!(r.out[p.out_row(1, 0, 0)..p.out_row(2, 0, 0)].iter().all(|&o| o.to_bits() == 0));
    }
}

#[test]
fn varlen_batch_equals_per_sequence_calls() {
    // Items (Tq, Tk): (3, 5), (0, 1), (5, 0), (1, 4), (0, 0).
    let cu_q = [0u32, 3, 3, 8, 9, 9];
    let cu_k = [0u32, 5, 6, 6, 10, 10];
    let (h, dh) = (2, 6);
    let mut rng = Rng::new(6);
    let q = values(&mut rng, 9 * h * dh, 1.5);
    let k = values(&mut rng, 10 * h * dh, 1.5);
    let v = values(&mut rng, 10 * h * dh, 1.0);
    let lengths = [4u32, 1, 0, 2, 0];
    for mask in [
        Mask::default(),
        CAUSAL,
        Mask { causal: false, key_lengths: Some(&lengths) },
        Mask { causal: true, key_lengths: Some(&lengths) },
    ] {
        let mut p = Problem::new(Seqlens::Varlen { cu_seqlens_q: &cu_q, cu_seqlens_k: &cu_k }, h, dh);
        p.mask = mask;
        let r = attention_f64(&p, &q, &k, &v).unwrap();
        let plain = attention_plain(&p, &to::<bf16>(&q), &to::<bf16>(&k), &to::<bf16>(&v)).unwrap();
        assert_eq!((r.out.len(), r.lse.len()), (9 * h * dh, 9 * h));
        for bi in 0..5 {
            let (q0, q1, k0, k1) = (cu_q[bi] as usize, cu_q[bi + 1] as usize, cu_k[bi] as usize, cu_k[bi + 1] as usize);
            let row = h * dh;
            let (qb, kb, vb) = (&q[q0 * row..q1 * row], &k[k0 * row..k1 * row], &v[k0 * row..k1 * row]);
            let one = [lengths[bi]];
            let mut pb = padded(1, q1 - q0, k1 - k0, h, dh);
            pb.mask = Mask { causal: mask.causal, key_lengths: mask.key_lengths.map(|_| &one[..]) };
            let rb = attention_f64(&pb, qb, kb, vb).unwrap();
            let plain_b = attention_plain(&pb, &to::<bf16>(qb), &to::<bf16>(kb), &to::<bf16>(vb)).unwrap();
            for hi in 0..h {
                for i in 0..q1 - q0 {
                    let (o, ob) = (p.out_row(bi, i, hi), pb.out_row(0, i, hi));
                    let (l, lb) = (p.lse_index(bi, i, hi), pb.lse_index(0, i, hi));
                    assert_eq!(r.out[o..o + dh], rb.out[ob..ob + dh], "{mask:?} item {bi} head {hi} query {i}");
                    assert_eq!(r.lse[l].to_bits(), rb.lse[lb].to_bits(), "{mask:?} item {bi} lse");
                    assert_eq!(plain.out[o..o + dh], plain_b.out[ob..ob + dh], "{mask:?} item {bi} plain");
                    assert_eq!(plain.lse[l].to_bits(), plain_b.lse[lb].to_bits(), "{mask:?} item {bi} plain lse");
                }
            }
        }
        // Item 2 (Tq = 5, Tk = 0): every row 0 and −∞.
        for i in 0..5 {
            for hi in 0..h {
                assert!(r.out[p.out_row(2, i, hi)..][..dh].iter().all(|&o| o.to_bits() == 0));
                assert_eq!(r.lse[p.lse_index(2, i, hi)], f64::NEG_INFINITY);
            }
        }
    }
    // lse is [H, total_q] for varlen.
    let p = Problem::new(Seqlens::Varlen { cu_seqlens_q: &cu_q, cu_seqlens_k: &cu_k }, h, dh);
    assert_eq!(p.lse_index(3, 0, 1), 9 + 8);
    assert_eq!(p.out_row(3, 0, 1), (8 * h + 1) * dh);
}

#[test]
fn all_zero_length_sequences() {
    let zeros = [0u32; 4];
    let p = Problem::new(Seqlens::Varlen { cu_seqlens_q: &zeros, cu_seqlens_k: &zeros }, 2, 32);
    let r = attention_f64::<f32>(&p, &[], &[], &[]).unwrap();
    assert!(r.out.is_empty() && r.lse.is_empty());
    let r = attention_plain::<f16>(&p, &[], &[], &[]).unwrap();
    assert!(r.out.is_empty() && r.lse.is_empty());
    // No batch at all (one offset), and padded items with no queries.
    let p = Problem::new(Seqlens::Varlen { cu_seqlens_q: &[0], cu_seqlens_k: &[0] }, 1, 8);
    assert!(attention_f64::<f32>(&p, &[], &[], &[]).unwrap().out.is_empty());
    let r = attention_f64::<f32>(&padded(3, 0, 5, 2, 4), &[], &[0.0; 3 * 5 * 8], &[0.0; 3 * 5 * 8]).unwrap();
    assert!(r.out.is_empty());
    // Queries but no keys: zeros and −∞, no NaN.
    let cu_q = [0u32, 2, 5];
    let p = Problem::new(Seqlens::Varlen { cu_seqlens_q: &cu_q, cu_seqlens_k: &[0, 0, 0] }, 2, 4);
    let r = attention_f64(&p, &[1.0f32; 5 * 2 * 4], &[], &[]).unwrap();
    assert!(r.out.iter().all(|&o| o.to_bits() == 0) && r.out.len() == 40);
    assert!(r.lse.iter().all(|&l| l == f64::NEG_INFINITY) && r.lse.len() == 10);
    let r = attention_f64(&padded(2, 3, 0, 1, 4), &[1.0f32; 24], &[], &[]).unwrap();
    assert!(r.out.iter().all(|&o| o.to_bits() == 0) && r.lse.iter().all(|&l| l == f64::NEG_INFINITY));
}

#[test]
fn large_logits_give_finite_results() {
    // |q·k| up to ~4e4 before the scale of 1/4: logits ~1e4, far past exp's range.
    let (b, tq, tk, h, dh) = (1, 6, 9, 2, 16);
    let mut rng = Rng::new(7);
    let q = values(&mut rng, b * tq * h * dh, 100.0);
    let k = values(&mut rng, b * tk * h * dh, 100.0);
    let v = values(&mut rng, b * tk * h * dh, 1.0);
    let mut p = padded(b, tq, tk, h, dh);
    p.mask = CAUSAL;
    let r = check_against_manual("large logits", &p, &q, &k, &v, 1e-12);
    let max_logit = r.lse.iter().fold(0.0f64, |m, &l| m.max(l.abs()));
    assert!(max_logit > 5e3, "the logits are not large: {max_logit}");
    assert!(r.out.iter().chain(&r.lse).all(|x| x.is_finite()));
    // Each output is a convex combination of the values.
    for hi in 0..h {
        for i in 0..tq {
            for d in 0..dh {
                let o = r.out[p.out_row(0, i, hi) + d];
                let vs = (0..=i + 3).map(|j| v[(j * h + hi) * dh + d] as f64);
                let (lo, hi_v) = vs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
                assert!(lo - 1e-12 <= o && o <= hi_v + 1e-12, "{o} not in [{lo}, {hi_v}]");
            }
        }
    }
    // The plain reference is finite in f32 and bf16 (whose range holds the logits).
    let plain32 = attention_plain(&p, &q, &k, &v).unwrap();
    assert!(plain32.out.iter().chain(&plain32.lse).all(|x| x.is_finite()));
    let plain_bf = attention_plain(&p, &to::<bf16>(&q), &to::<bf16>(&k), &to::<bf16>(&v)).unwrap();
    assert!(plain_bf.out.iter().all(|x| x.to_f32().is_finite()) && plain_bf.lse.iter().all(|x| x.is_finite()));
    let rule = error_rule(&r, &plain32, &plain32.out, &plain32.lse);
    assert!(rule.holds(), "{rule}");
}

#[test]
fn error_rule_has_no_baseline_when_f16_logits_overflow() {
    // Q·Kᵀ past 65504 rounds to ∞ in f16 in the plain reference: the rule cannot hold.
    let (tq, tk, dh) = (2, 3, 4);
    let q = vec![200.0f32; tq * dh];
    let k = vec![100.0f32; tk * dh];
    let v: Vec<f32> = (0..tk * dh).map(|n| n as f32).collect();
    let p = padded(1, tq, tk, 1, dh);
    let (qh, kh, vh) = (to::<f16>(&q), to::<f16>(&k), to::<f16>(&v));
    let exact = attention_f64(&p, &qh, &kh, &vh).unwrap();
    assert!(exact.out.iter().all(|x| x.is_finite()));
    let plain = attention_plain(&p, &qh, &kh, &vh).unwrap();
    assert!(plain.out.iter().any(|x| !x.to_f32().is_finite()));
    let kernel: Vec<f16> = exact.out.iter().map(|&x| f16::from_f64(x)).collect();
    let lse: Vec<f32> = exact.lse.iter().map(|&x| x as f32).collect();
    assert!(!error_rule(&exact, &plain, &kernel, &lse).holds());
}

/// Random inputs of `T`, with the f64 and plain references.
struct Setup<T> {
    p: Problem<'static>,
    q: Vec<T>,
    k: Vec<T>,
    v: Vec<T>,
    exact: Output<f64, f64>,
    plain: Output<T, f32>,
}

fn setup<T: FloatElement>(seed: u64, mask: Mask<'static>) -> Setup<T> {
    let (b, tq, tk, h, dh) = (2, 13, 17, 2, 32);
    let mut rng = Rng::new(seed);
    let q = to::<T>(&values(&mut rng, b * tq * h * dh, 2.0));
    let k = to::<T>(&values(&mut rng, b * tk * h * dh, 2.0));
    let v = to::<T>(&values(&mut rng, b * tk * h * dh, 1.0));
    let mut p = padded(b, tq, tk, h, dh);
    p.mask = mask;
    let exact = attention_f64(&p, &q, &k, &v).unwrap();
    let plain = attention_plain(&p, &q, &k, &v).unwrap();
    Setup { p, q, k, v, exact, plain }
}

fn rounded<K: FloatElement>(x: &[f64]) -> Vec<K> {
    x.iter().map(|&v| K::from_f32(v as f32)).collect()
}

fn check_rule_can_fail<T: FloatElement>(seed: u64) {
    let s = setup::<T>(seed, CAUSAL);
    let lse32: Vec<f32> = s.exact.lse.iter().map(|&x| x as f32).collect();
    let dtype = T::DTYPE;
    // The exact result rounded to T, and the plain reference itself, pass.
    let good: Vec<T> = rounded(&s.exact.out);
    let rule = error_rule(&s.exact, &s.plain, &good, &lse32);
    assert!(rule.holds(), "{dtype:?} exact rounded: {rule}");
    assert!(rule.out.plain_err > 0.0, "{dtype:?}: the plain reference has no error to compare with");
    assert!(error_rule(&s.exact, &s.plain, &s.plain.out, &s.plain.lse).holds(), "{dtype:?} plain");
    // So does an f32 output of a T computation.
    assert!(error_rule(&s.exact, &s.plain, &rounded::<f32>(&s.exact.out), &lse32).holds());

    // One element off by 16 ulps of the largest output: fails (the plain reference is within
    // about 1.5 ulps in f16 and bf16, 4 in f32).
    let m = s.exact.out.iter().fold(0.0f64, |a, &x| a.max(x.abs()));
    let mut bad = good.clone();
    let n = bad.len() / 3;
    bad[n] = T::from_f32((s.exact.out[n] + 16.0 * attn::ulp::<T>(m)) as f32);
    let rule = error_rule(&s.exact, &s.plain, &bad, &lse32);
    assert!(!rule.holds(), "{dtype:?} +16 ulps: {rule}");
    // A NaN: fails.
    let mut bad = good.clone();
    bad[n] = T::from_f32(f32::NAN);
    assert!(!error_rule(&s.exact, &s.plain, &bad, &lse32).holds(), "{dtype:?} NaN");
    // lse off by 0.05 in one row (f16's plain lse is itself off by ~1e-3: its logits are
    // rounded to f16): fails.
    let mut bad_lse = lse32.clone();
    bad_lse[5] += 0.05;
    let rule = error_rule(&s.exact, &s.plain, &good, &bad_lse);
    assert!(!rule.holds(), "{dtype:?} lse: {rule}");
    // Typical kernel bugs, each computed exactly and rounded to T: all fail.
    // (bf16 cannot resolve a 1 % scale error at these logits: its own rounding is 0.4 %.)
    let scale_error = if dtype == tessera::DType::BF16 { 0.05 } else { 0.01 };
    let scale_bug = {
        let mut p = s.p;
        p.scale *= 1.0 + scale_error;
        attention_f64(&p, &s.q, &s.k, &s.v).unwrap()
    };
    let mask_bug = {
        let mut p = s.p;
        p.mask = Mask::default();
        attention_f64(&p, &s.q, &s.k, &s.v).unwrap()
    };
    for (what, wrong) in [("scale off", scale_bug), ("causal mask ignored", mask_bug)] {
        let rule = error_rule(&s.exact, &s.plain, &rounded::<T>(&wrong.out), &lse32);
        assert!(!rule.holds(), "{dtype:?} {what}: {rule}");
    }
}

#[test]
fn error_rule_fails_for_perturbed_outputs() {
    check_rule_can_fail::<f16>(11);
    check_rule_can_fail::<bf16>(12);
    check_rule_can_fail::<f32>(13);
    // Fully masked rows: a finite lse or a nonzero row fails (the floor is 0 there).
    let mut p = padded(1, 4, 2, 1, 8);
    p.mask = CAUSAL;
    let ones = vec![f16::ONE; 4 * 8];
    let exact = attention_f64(&p, &ones, &ones[..16], &ones[..16]).unwrap();
    let plain = attention_plain(&p, &ones, &ones[..16], &ones[..16]).unwrap();
    let mut lse: Vec<f32> = exact.lse.iter().map(|&x| x as f32).collect();
    let out: Vec<f16> = rounded(&exact.out);
    assert!(error_rule(&exact, &plain, &out, &lse).holds());
    lse[0] = 0.0;
    assert!(!error_rule(&exact, &plain, &out, &lse).holds());
}

#[test]
fn plain_reference_precision_follows_the_dtype() {
    let e32 = setup::<f32>(21, CAUSAL);
    let e16 = setup::<f16>(21, CAUSAL);
    let ebf = setup::<bf16>(21, CAUSAL);
    let err = |s: &Output<f64, f64>, out: Vec<f64>| attn::max_abs_error(&s.out, out);
    let f = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<_>>();
    let p32 = err(&e32.exact, f(&e32.plain.out));
    let p16 = err(&e16.exact, e16.plain.out.iter().map(|v| v.to_f64()).collect());
    let pbf = err(&ebf.exact, ebf.plain.out.iter().map(|v| v.to_f64()).collect());
    assert!(p32 < 1e-6 && p32 > 0.0, "f32 {p32}");
    assert!(p32 < p16 && p16 < pbf, "f32 {p32}, f16 {p16}, bf16 {pbf}");
    assert!(p16 < 4.0 * attn::epsilon::<f16>() && pbf < 4.0 * attn::epsilon::<bf16>(), "f16 {p16}, bf16 {pbf}");
}

#[test]
fn plain_reference_rounds_where_documented() {
    // One row, bf16, keys chosen so that each documented rounding shows:
    // S = fl_bf16(q·k) (257 rounds to 256), P = fl_bf16(p), O = fl_bf16(Σ P·v).
    let p = {
        let mut p = padded(1, 1, 3, 1, 1);
        p.scale = 1.0 / 64.0;
        p
    };
    let b = |x: f32| bf16::from_f32(x);
    let q = [b(1.0)];
    let k = [b(257.0), b(64.0), b(0.0)]; // 257 is not a bf16: it is 256 (to nearest even)
    let v = [b(1.0), b(3.0), b(-5.0)];
    let plain = attention_plain(&p, &q, &k, &v).unwrap();
    // By the documented steps: x = [4, 1, 0] (256/64, 64/64, 0), softmax in f32, P in bf16.
    let x = [4.0f32, 1.0, 0.0];
    let e: Vec<f32> = x.iter().map(|&xi| (xi - 4.0).exp()).collect();
    let l = e[0] + e[1] + e[2];
    let pr: Vec<f32> = e.iter().map(|&ei| bf16::from_f32(ei / l).to_f32()).collect();
    let o = bf16::from_f32(pr[0] * 1.0 + pr[1] * 3.0 + pr[2] * -5.0);
    assert_eq!(plain.out[0], o);
    assert_eq!(plain.lse[0], 4.0 + l.ln());
    // The f64 reference keeps the 256 (the input is the bf16 value) but rounds nothing else.
    let exact = attention_f64(&p, &q, &k, &v).unwrap();
    let xs = [4.0f64, 1.0, 0.0];
    let l64: f64 = xs.iter().map(|&xi| (xi - 4.0).exp()).sum();
    let o64 = ((0.0f64).exp() * 1.0 + (-3.0f64).exp() * 3.0 + (-4.0f64).exp() * -5.0) / l64;
    assert!((exact.out[0] - o64).abs() < 1e-15);
    assert_ne!(exact.out[0] as f32, o.to_f32(), "bf16 rounding should show");
}

#[test]
fn fused_qkv_strides_equal_separate_buffers() {
    let (b, t, h, dh) = (2, 5, 3, 8);
    let mut rng = Rng::new(8);
    let qkv = values(&mut rng, b * t * 3 * h * dh, 1.5);
    let mut sep = [vec![], vec![], vec![]];
    for bi in 0..b {
        for ti in 0..t {
            for (part, dst) in sep.iter_mut().enumerate() {
                dst.extend_from_slice(&qkv[(((bi * t + ti) * 3 + part) * h) * dh..][..h * dh]);
            }
        }
    }
    let (q, k, v) = attn::split_fused_qkv(&qkv, h, dh);
    let mut fused = padded(b, t, t, h, dh);
    let s = Strides::fused_qkv(t, h, dh);
    (fused.q, fused.k, fused.v) = (s, s, s);
    fused.mask = CAUSAL;
    let mut plain = padded(b, t, t, h, dh);
    plain.mask = CAUSAL;
    assert_eq!(attention_f64(&fused, q, k, v).unwrap(), attention_f64(&plain, &sep[0], &sep[1], &sep[2]).unwrap());
    let (qh, kh, vh) = (to::<f16>(q), to::<f16>(k), to::<f16>(v));
    assert_eq!(
        attention_plain(&fused, &qh, &kh, &vh).unwrap(),
        attention_plain(&plain, &to::<f16>(&sep[0]), &to::<f16>(&sep[1]), &to::<f16>(&sep[2])).unwrap()
    );
    // Packed varlen QKV [total, 3, H, Dh] works the same way.
    let cu = [0u32, 2, 5, 10];
    let mut packed = Problem::new(Seqlens::Varlen { cu_seqlens_q: &cu, cu_seqlens_k: &cu }, h, dh);
    let s = Strides::fused_qkv(0, h, dh);
    (packed.q, packed.k, packed.v) = (s, s, s);
    let r = attention_f64(&packed, q, k, v).unwrap();
    let rs = attention_f64(&Problem::new(packed.seqlens, h, dh), &sep[0], &sep[1], &sep[2]).unwrap();
    assert_eq!(r, rs);
}

#[test]
fn bad_shapes_are_typed_errors() {
    let x = vec![0.0f32; 64];
    let err = |p: &Problem<'_>, q: &[f32]| attention_f64(p, q, &x, &x).unwrap_err();
    let arg = |e: ShapeError| e.arg;
    assert_eq!(arg(err(&padded(1, 2, 2, 0, 4), &x)), "heads");
    assert_eq!(arg(err(&padded(1, 2, 2, 1, 0), &x)), "head_dim");
    let mut p = padded(1, 2, 2, 1, 4);
    p.scale = f32::NAN;
    assert_eq!(arg(err(&p, &x)), "scale");
    // q needs 2·3·4 = 24 elements here.
    let e = err(&padded(1, 2, 2, 3, 4), &x[..23]);
    assert_eq!(e.arg, "q", "{e}");
    assert!(attention_f64(&padded(1, 2, 2, 3, 4), &x[..24], &x, &x).is_ok());
    assert_eq!(arg(attention_f64(&padded(2, 2, 8, 4, 4), &x, &x[..63], &x).unwrap_err()), "k");
    let v = |cu_q: &'static [u32], cu_k: &'static [u32]| {
        Problem::new(Seqlens::Varlen { cu_seqlens_q: cu_q, cu_seqlens_k: cu_k }, 1, 4)
    };
    assert_eq!(arg(err(&v(&[0, 3, 2], &[0, 1, 2]), &x)), "cu_seqlens_q");
    assert_eq!(arg(err(&v(&[1, 3], &[0, 1]), &x)), "cu_seqlens_q");
    assert_eq!(arg(err(&v(&[0, 3], &[0, 1, 2]), &x)), "cu_seqlens_k");
    assert_eq!(arg(err(&v(&[], &[]), &x)), "cu_seqlens_q");
    assert_eq!(arg(err(&v(&[0, 20], &[0, 1]), &x)), "q");
    let mut p = padded(2, 2, 3, 1, 4);
    p.mask.key_lengths = Some(&[3, 4]);
    assert_eq!(arg(err(&p, &x)), "key_lengths");
    p.mask.key_lengths = Some(&[3]);
    assert_eq!(arg(err(&p, &x)), "key_lengths");
    let mut p = padded(1, 2, 2, 1, 4);
    p.q.token = usize::MAX;
    assert_eq!(arg(err(&p, &x)), "q");
    // The plain reference checks the same.
    assert_eq!(attention_plain(&padded(1, 2, 2, 3, 4), &x[..23], &x, &x).unwrap_err().arg, "q");
    assert!(err(&padded(1, 2, 2, 3, 4), &x[..23]).to_string().starts_with("invalid argument `q`"));
}
