//! The f32 attention kernel (kernels/attention_f32.cu, CUDA cores) on the emulator — and on a
//! GPU when present — against the f64 reference under FlashAttention's error rule with the
//! plain f32 attention as its baseline (src/reference/attention.rs): every head dim at ragged
//! lengths, bottom-right causal with Tq < Tk, Tq = Tk and Tq > Tk, key padding with a
//! sequence that has no key (O exactly 0, lse −∞), a varlen batch, large
//! logits over many key tiles, bit-identical reruns (fused QKV views: tests/attention.rs, both dtypes). Small sizes.

mod common;

use tessera::reference::attention::{self as reference, Mask, Output, Problem, Seqlens};
use tessera::{attention_into, attention_varlen_into, AttentionLayout, AttentionOptions, AttentionShape, Device};

fn values(seed: u64, n: usize, amplitude: f32) -> Vec<f32> {
    let mut rng = common::Rng(seed);
    (0..n).map(|_| amplitude * ((rng.word() >> 8) as f32 / 8_388_608.0 - 1.0)).collect()
}

fn shape(batch: usize, heads: usize, head_dim: usize, q_len: usize, k_len: usize) -> AttentionShape {
    AttentionShape { batch, heads, head_dim, q_len, k_len }
}

/// The error rule on one kernel result, and no NaN anywhere.
fn assert_rule(what: &str, exact: &Output<f64, f64>, plain: &Output<f32, f32>, out: &[f32], lse: &[f32]) {
    assert!(out.iter().all(|x| !x.is_nan()) && lse.iter().all(|x| !x.is_nan()), "{what}: NaN in the output");
    let errors = reference::error_rule(exact, plain, out, lse);
    assert!(errors.holds(), "{what}: {errors}");
}

/// A padded batch with contiguous Q, K, V: runs it on every kernel device, checks the rule
/// and returns the emulator's O and lse.
fn check(
    s: AttentionShape,
    causal: bool,
    key_lengths: Option<&[u32]>,
    amplitude: f32,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let AttentionShape { batch, heads, head_dim, q_len, k_len } = s;
    let q = values(seed, batch * q_len * heads * head_dim, amplitude);
    let k = values(seed + 1, batch * k_len * heads * head_dim, amplitude);
    let v = values(seed + 2, batch * k_len * heads * head_dim, 1.0);
    let mut problem = Problem::new(Seqlens::Padded { batch, tq: q_len, tk: k_len }, heads, head_dim);
    problem.mask = Mask { causal, key_lengths };
    let exact = reference::attention_f64(&problem, &q, &k, &v).unwrap();
    let plain = reference::attention_plain::<f32>(&problem, &q, &k, &v).unwrap();
    let options = AttentionOptions { causal, scale: None, key_lengths };
    let mut first = None;
    for device in common::kernel_devices("attention_f32") {
        let (dq, dk, dv) = (device.upload(&q).unwrap(), device.upload(&k).unwrap(), device.upload(&v).unwrap());
        // Poisoned outputs: every element must be written.
        let mut out = device.upload(&vec![f32::NAN; q.len()]).unwrap();
        let mut lse = device.upload(&vec![f32::NAN; batch * heads * q_len]).unwrap();
        let layout = AttentionLayout::contiguous(heads, head_dim);
        attention_into(&device, &dq, &dk, &dv, s, &layout, &options, &mut out, &mut lse).unwrap();
        let (got, got_lse) = (out.download().unwrap(), lse.download().unwrap());
        let what = format!("{s:?} causal {causal} key lengths {key_lengths:?} on {}", device.name());
        assert_rule(&what, &exact, &plain, &got, &got_lse);
        first.get_or_insert((got, got_lse));
    }
    first.unwrap()
}

/// Every head dim at ragged lengths (one more than a multiple of the 32-row query block and
/// of the key tiles).
#[test]
fn every_head_dim_matches_the_reference() {
    for head_dim in tessera::ATTENTION_HEAD_DIMS {
        check(shape(1, 2, head_dim, 65, 97), false, None, 1.0, head_dim as u64);
    }
}

/// Bottom-right causal with Tq < Tk, Tq = Tk and Tq > Tk (the first Tq − Tk rows see no key:
/// O = 0, lse = −∞), at a narrow and a wide head dim.
#[test]
fn causal_is_bottom_right_aligned() {
    for (head_dim, q_len, k_len) in [(64usize, 40usize, 70usize), (64, 45, 45), (96, 70, 30)] {
        let (out, lse) = check(shape(1, 2, head_dim, q_len, k_len), true, None, 1.0, q_len as u64);
        if q_len > k_len {
            let blind = q_len - k_len; // rows 0 .. blind see no key, in both heads
            for h in 0..2 {
                assert!(lse[h * q_len..h * q_len + blind].iter().all(|&l| l == f32::NEG_INFINITY));
            }
            for t in 0..blind {
                assert!(out[t * 2 * head_dim..(t + 1) * 2 * head_dim].iter().all(|&x| x == 0.0));
            }
        }
    }
}

/// Key padding, alone and with causal; sequence 2 has no key at all: its O is exactly 0 and
/// its lse −∞.
#[test]
fn key_padding_and_a_sequence_without_keys() {
    let lens = [70u32, 3, 0];
    let (heads, head_dim, q_len) = (2usize, 32usize, 20usize);
    for causal in [false, true] {
        let (out, lse) = check(shape(3, heads, head_dim, q_len, 70), causal, Some(&lens), 1.0, 11 + causal as u64);
        let per_seq = q_len * heads * head_dim;
        assert!(out[2 * per_seq..].iter().all(|&x| x.to_bits() == 0), "O of the keyless sequence is +0");
        assert!(lse[2 * heads * q_len..].iter().all(|&l| l == f32::NEG_INFINITY), "its lse is −∞");
    }
}

/// |q·k|/√Dh up to ~90 over five key tiles: the online softmax's rescaling keeps O finite
/// and accurate.
#[test]
fn large_logits_over_many_key_tiles() {
    check(shape(1, 1, 128, 33, 70), false, None, 8.0, 5);
    check(shape(1, 1, 72, 33, 150), true, None, 6.0, 6);
}

/// A packed varlen batch: 37, 0, 1 and 50 queries against 45, 5, 0 and 50 keys (the third
/// sequence's query sees no key), with and without the causal mask.
#[test]
fn varlen_batch_matches_the_reference() {
    let cu_q = [0u32, 37, 37, 38, 88];
    let cu_k = [0u32, 45, 50, 50, 100];
    let (heads, head_dim) = (2usize, 64usize);
    let (tq, tk) = (88usize, 100usize);
    let q = values(31, tq * heads * head_dim, 1.0);
    let k = values(32, tk * heads * head_dim, 1.0);
    let v = values(33, tk * heads * head_dim, 1.0);
    for causal in [false, true] {
        let mut problem = Problem::new(Seqlens::Varlen { cu_seqlens_q: &cu_q, cu_seqlens_k: &cu_k }, heads, head_dim);
        problem.mask = Mask { causal, key_lengths: None };
        let exact = reference::attention_f64(&problem, &q, &k, &v).unwrap();
        let plain = reference::attention_plain::<f32>(&problem, &q, &k, &v).unwrap();
        let options = AttentionOptions { causal, ..Default::default() };
        for device in common::kernel_devices("attention_f32") {
            let (dq, dk, dv) = (device.upload(&q).unwrap(), device.upload(&k).unwrap(), device.upload(&v).unwrap());
            let mut out = device.upload(&vec![f32::NAN; q.len()]).unwrap();
            let mut lse = device.upload(&vec![f32::NAN; heads * tq]).unwrap();
            let layout = AttentionLayout::contiguous(heads, head_dim);
            attention_varlen_into(
                &device, &dq, &dk, &dv, &cu_q, &cu_k, heads, head_dim, &layout, &options, &mut out, &mut lse,
            )
            .unwrap();
            let (got, got_lse) = (out.download().unwrap(), lse.download().unwrap());
            assert_rule(&format!("varlen causal {causal} on {}", device.name()), &exact, &plain, &got, &got_lse);
            // Token 37 (sequence 2's only query) has no key.
            assert!(got[37 * heads * head_dim..38 * heads * head_dim].iter().all(|&x| x == 0.0));
            assert!((0..heads).all(|h| got_lse[h * tq + 37] == f32::NEG_INFINITY));
        }
    }
}

/// Reruns write the same bits.
#[test]
fn reruns_are_bit_identical() {
    let device = Device::emulator();
    let (heads, head_dim, q_len, k_len) = (2usize, 72usize, 40usize, 70usize);
    let s = shape(1, heads, head_dim, q_len, k_len);
    let q = device.upload(&values(1, q_len * heads * head_dim, 1.0)).unwrap();
    let k = device.upload(&values(2, k_len * heads * head_dim, 1.0)).unwrap();
    let layout = AttentionLayout::contiguous(heads, head_dim);
    let run = || {
        let mut out = device.zeros::<f32>(q_len * heads * head_dim).unwrap();
        let mut lse = device.zeros::<f32>(heads * q_len).unwrap();
        let options = AttentionOptions { causal: true, ..Default::default() };
        attention_into(&device, &q, &k, &k, s, &layout, &options, &mut out, &mut lse).unwrap();
        (out.download().unwrap(), lse.download().unwrap())
    };
    let (a, b) = (run(), run());
    assert!(a.0.iter().zip(&b.0).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(a.1.iter().zip(&b.1).all(|(x, y)| x.to_bits() == y.to_bits()));
}
