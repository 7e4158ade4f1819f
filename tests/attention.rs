//! The attention kernel (kernels/attention.cu) on the emulator — and on a GPU when present —
//! against the f64 reference under FlashAttention's error rule (src/reference/attention.rs):
//! every head dim, f16 and bf16, ragged lengths, causal with Tq ≠ Tk, key padding, fully
//! masked rows, fused QKV views, bad arguments.

mod common;

use half::{bf16, f16};
use tessera::reference::attention::{self as reference, Mask, Problem, Seqlens, Strides};
use tessera::{
    attention_into, AttentionLayout, AttentionOptions, AttentionShape, Device, Error, FloatElement, HeadLayout,
};

fn values<T: FloatElement>(seed: u64, n: usize, amplitude: f32) -> Vec<T> {
    let mut rng = common::Rng(seed);
    (0..n).map(|_| T::from_f32(amplitude * ((rng.word() >> 8) as f32 / 8_388_608.0 - 1.0))).collect()
}

struct Case<'a> {
    shape: AttentionShape,
    causal: bool,
    key_lengths: Option<&'a [u32]>,
    amplitude: f32,
}

impl Case<'_> {
    fn check<T: FloatElement>(&self, seed: u64) {
        let AttentionShape { batch, heads, head_dim, q_len, k_len } = self.shape;
        let q = values::<T>(seed, batch * q_len * heads * head_dim, self.amplitude);
        let k = values::<T>(seed + 1, batch * k_len * heads * head_dim, self.amplitude);
        let v = values::<T>(seed + 2, batch * k_len * heads * head_dim, 1.0);
        let mut problem = Problem::new(Seqlens::Padded { batch, tq: q_len, tk: k_len }, heads, head_dim);
        problem.mask = Mask { causal: self.causal, key_lengths: self.key_lengths };
        let exact = reference::attention_f64(&problem, &q, &k, &v).unwrap();
        let plain = reference::attention_plain(&problem, &q, &k, &v).unwrap();
        let options = AttentionOptions { causal: self.causal, scale: None, key_lengths: self.key_lengths };
        for device in common::kernel_devices("attention") {
            let (dq, dk, dv) = (device.upload(&q).unwrap(), device.upload(&k).unwrap(), device.upload(&v).unwrap());
            let mut out = device.zeros::<T>(q.len()).unwrap();
            let mut lse = device.zeros::<f32>(batch * heads * q_len).unwrap();
            let layout = AttentionLayout::contiguous(heads, head_dim);
            attention_into(&device, &dq, &dk, &dv, self.shape, &layout, &options, &mut out, &mut lse).unwrap();
            let (got, got_lse) = (out.download().unwrap(), lse.download().unwrap());
            assert!(got.iter().all(|x| !x.to_f32().is_nan()), "NaN in the output");
            let errors = reference::error_rule(&exact, &plain, &got, &got_lse);
            assert!(
                errors.holds(),
                "{:?} causal {} key lengths {:?} on {} {:?}: {errors}",
                self.shape,
                self.causal,
                self.key_lengths,
                device.name(),
                T::DTYPE
            );
        }
    }
}

fn shape(batch: usize, heads: usize, head_dim: usize, q_len: usize, k_len: usize) -> AttentionShape {
    AttentionShape { batch, heads, head_dim, q_len, k_len }
}

/// Every head dim at ragged lengths (one more than a multiple of the key tile and of the
/// 64-row query block), both dtypes.
#[test]
fn every_head_dim_matches_the_reference() {
    for head_dim in tessera::ATTENTION_HEAD_DIMS {
        let case = Case { shape: shape(1, 2, head_dim, 65, 97), causal: false, key_lengths: None, amplitude: 1.0 };
        case.check::<f16>(head_dim as u64);
        case.check::<bf16>(head_dim as u64 + 100);
    }
}

/// DiT-XL/2's head dim with several key tiles and a ragged query block.
#[test]
fn head_dim_72_over_several_key_tiles() {
    Case { shape: shape(2, 1, 72, 113, 200), causal: false, key_lengths: None, amplitude: 2.0 }.check::<bf16>(7);
}

/// Bottom-right causal with Tq < Tk, Tq = Tk and Tq > Tk (the first Tq − Tk rows see no key:
/// O = 0, lse = −∞).
#[test]
fn causal_is_bottom_right_aligned() {
    for (q_len, k_len) in [(70usize, 150usize), (97, 97), (130, 60)] {
        let case = Case { shape: shape(1, 2, 64, q_len, k_len), causal: true, key_lengths: None, amplitude: 1.0 };
        case.check::<f16>(q_len as u64);
    }
}

/// Key padding, alone and with causal; one sequence sees no key at all.
#[test]
fn key_padding_and_empty_sequences() {
    let lens = [100u32, 3, 0];
    let case = Case { shape: shape(3, 2, 32, 40, 100), causal: false, key_lengths: Some(&lens), amplitude: 1.0 };
    case.check::<bf16>(11);
    Case { causal: true, ..case }.check::<f16>(12);
}

/// |q·k| ~ 1e4 in bf16: the f32 softmax does not overflow.
#[test]
fn large_logits_stay_finite() {
    Case { shape: shape(1, 1, 128, 33, 70), causal: false, key_lengths: None, amplitude: 30.0 }.check::<bf16>(5);
}

/// Q, K and V as views into one fused [B, T, 3, H, Dh] buffer, in bf16 (tensor cores) and
/// f32 (the CUDA-core kernel).
#[test]
fn fused_qkv_views() {
    fused_qkv_case::<bf16>();
    fused_qkv_case::<f32>();
}

fn fused_qkv_case<T: FloatElement>() {
    let (batch, tokens, heads, head_dim) = (2usize, 37usize, 3usize, 72usize);
    let qkv = values::<T>(9, batch * tokens * 3 * heads * head_dim, 1.0);
    let (q, k, v) = reference::split_fused_qkv(&qkv, heads, head_dim);
    let mut problem = Problem::new(Seqlens::Padded { batch, tq: tokens, tk: tokens }, heads, head_dim);
    let fused = Strides::fused_qkv(tokens, heads, head_dim);
    (problem.q, problem.k, problem.v) = (fused, fused, fused);
    let exact = reference::attention_f64(&problem, q, k, v).unwrap();
    let plain = reference::attention_plain(&problem, q, k, v).unwrap();
    let s = shape(batch, heads, head_dim, tokens, tokens);
    for device in common::kernel_devices("attention") {
        let buf = device.upload(&qkv).unwrap();
        let part = heads * head_dim;
        let (dq, dk, dv) = (buf.view(..).unwrap(), buf.view(part..).unwrap(), buf.view(2 * part..).unwrap());
        let mut out = device.zeros::<T>(batch * tokens * part).unwrap();
        let mut lse = device.zeros::<f32>(batch * heads * tokens).unwrap();
        let layout = AttentionLayout::fused_qkv(heads, head_dim);
        attention_into(&device, dq, dk, dv, s, &layout, &AttentionOptions::default(), &mut out, &mut lse).unwrap();
        let errors = reference::error_rule(&exact, &plain, &out.download().unwrap(), &lse.download().unwrap());
        assert!(errors.holds(), "fused QKV {:?} on {}: {errors}", T::DTYPE, device.name());
    }
}

/// Reruns write the same bits.
#[test]
fn reruns_are_bit_identical() {
    let device = Device::emulator();
    let s = shape(1, 2, 72, 70, 90);
    let q = device.upload(&values::<f16>(1, 70 * 2 * 72, 1.0)).unwrap();
    let k = device.upload(&values::<f16>(2, 90 * 2 * 72, 1.0)).unwrap();
    let layout = AttentionLayout::contiguous(2, 72);
    let run = || {
        let mut out = device.zeros::<f16>(70 * 2 * 72).unwrap();
        let mut lse = device.zeros::<f32>(2 * 70).unwrap();
        let options = AttentionOptions { causal: true, ..Default::default() };
        attention_into(&device, &q, &k, &k, s, &layout, &options, &mut out, &mut lse).unwrap();
        (out.download().unwrap(), lse.download().unwrap())
    };
    let (a, b) = (run(), run());
    assert!(a.0.iter().zip(&b.0).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(a.1.iter().zip(&b.1).all(|(x, y)| x.to_bits() == y.to_bits()));
}

fn invalid(r: tessera::Result<()>) -> String {
    match r {
        Err(Error::InvalidArgument { arg, .. }) => arg.to_string(),
        Err(Error::LengthMismatch { arg, .. }) => arg.to_string(),
        other => panic!("expected a typed argument error, got {other:?}"),
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    let device = Device::emulator();
    let s = shape(1, 1, 64, 8, 8);
    let buf = device.upload(&values::<f16>(3, 8 * 64, 1.0)).unwrap();
    let mut out = device.zeros::<f16>(8 * 64).unwrap();
    let mut lse = device.zeros::<f32>(8).unwrap();
    let layout = AttentionLayout::contiguous(1, 64);
    let opts = AttentionOptions::default();
    let mut run = |s: AttentionShape, layout: &AttentionLayout, opts: &AttentionOptions<'_>, lse_len: usize| {
        let mut l = device.zeros::<f32>(lse_len).unwrap();
        attention_into(&device, &buf, &buf, &buf, s, layout, opts, &mut out, &mut l)
    };
    assert_eq!(invalid(run(AttentionShape { head_dim: 80, ..s }, &layout, &opts, 8)), "shape.head_dim");
    assert_eq!(invalid(run(AttentionShape { q_len: 9, ..s }, &layout, &opts, 9)), "q");
    assert_eq!(invalid(run(AttentionShape { k_len: 9, ..s }, &layout, &opts, 8)), "k");
    assert_eq!(invalid(run(s, &layout, &opts, 7)), "lse");
    let odd = AttentionLayout { k: HeadLayout { token: 60, head: 60 }, ..layout };
    assert_eq!(invalid(run(AttentionShape { k_len: 1, ..s }, &odd, &opts, 8)), "k");
    let nan = AttentionOptions { scale: Some(f32::NAN), ..opts };
    assert_eq!(invalid(run(s, &layout, &nan, 8)), "options.scale");
    let too_long = [9u32];
    let lens = AttentionOptions { key_lengths: Some(&too_long), ..opts };
    assert_eq!(invalid(run(s, &layout, &lens, 8)), "options.key_lengths");
    let misaligned = buf.view(1..).unwrap();
    let r = attention_into(
        &device,
        misaligned,
        &buf,
        &buf,
        AttentionShape { q_len: 7, ..s },
        &layout,
        &opts,
        &mut out,
        &mut lse,
    );
    assert_eq!(invalid(r), "q");
    // f32 runs (on CUDA cores, kernels/attention_f32.cu; tests/attention_f32.rs checks it):
    // all-zero inputs give uniform weights over zero values.
    let f32s = device.zeros::<f32>(8 * 64).unwrap();
    let mut out32 = device.upload(&[1.0f32; 8 * 64]).unwrap();
    attention_into(&device, &f32s, &f32s, &f32s, s, &layout, &opts, &mut out32, &mut lse).unwrap();
    assert!(out32.download().unwrap().iter().all(|&x| x == 0.0));
    let want_lse = (8.0f32).ln();
    assert!(lse.download().unwrap().iter().all(|&l| (l - want_lse).abs() <= 1e-6), "lse = ln 8");
}

/// The mma instructions of one launch (None without the emulator's checks: nothing is profiled).
fn mma_count(causal: bool, q_len: usize, k_len: usize) -> Option<u64> {
    if !tessera::emulator::checks_enabled() {
        eprintln!("skipped: the emulator was built without TESSERA_SANITIZE=checks, so nothing is profiled");
        return None;
    }
    let device = Device::emulator();
    let s = shape(1, 1, 72, q_len, k_len);
    let q = device.upload(&values::<bf16>(1, q_len * 72, 1.0)).unwrap();
    let k = device.upload(&values::<bf16>(2, k_len * 72, 1.0)).unwrap();
    let mut out = device.zeros::<bf16>(q_len * 72).unwrap();
    let mut lse = device.zeros::<f32>(q_len).unwrap();
    let layout = AttentionLayout::contiguous(1, 72);
    let options = AttentionOptions { causal, ..Default::default() };
    let (r, records) =
        tessera::emulator::profile(|| attention_into(&device, &q, &k, &k, s, &layout, &options, &mut out, &mut lse));
    r.unwrap();
    assert_eq!(records.len(), 1);
    Some(records[0].counters.mma)
}

/// Head dim 72 costs 72/72 of the FLOPs, not 96/72: per warp and 64-key tile, Q·Kᵀ is 4
/// k-steps of m16n8k16 and one m16n8k8 over 8 n8 tiles (2·16·64·72 FLOPs exactly) and P·V
/// is 4 k-steps over 9 n8 tiles: 40 + 36 = 76 mma. And causal key tiles above the diagonal
/// are skipped, not masked: with Tq = Tk = 128, block 0 (queries 0..63) reads 1 key tile
/// and block 1 reads 2, against 2 + 2 without the mask.
#[test]
fn head_dim_72_is_not_padded_and_causal_tiles_are_skipped() {
    let Some(full) = mma_count(false, 128, 128) else { return };
    let per_tile = 4 * (8 * 4 + 8 + 4 * 9);
    assert_eq!(full, 4 * per_tile, "two blocks of two key tiles");
    assert_eq!(mma_count(true, 128, 128).unwrap(), 3 * per_tile, "causal: 1 + 2 key tiles");
    // Tq < Tk: the diagonal moves right by Tk − Tq = 64 keys, block 0 reads 2 tiles, block 1 all 3.
    assert_eq!(mma_count(true, 128, 192).unwrap(), 5 * per_tile, "causal, Tk − Tq = 64: 2 + 3 key tiles");
}

/// A packed varlen batch against the reference (offsets of every kind: empty sequences,
/// T = 1, odd and mismatched query/key lengths), with and without the causal mask.
fn check_varlen<T: FloatElement>(cu_q: &[u32], cu_k: &[u32], heads: usize, head_dim: usize, causal: bool, seed: u64) {
    let (tq, tk) = (*cu_q.last().unwrap() as usize, *cu_k.last().unwrap() as usize);
    let q = values::<T>(seed, tq * heads * head_dim, 1.0);
    let k = values::<T>(seed + 1, tk * heads * head_dim, 1.0);
    let v = values::<T>(seed + 2, tk * heads * head_dim, 1.0);
    let mut problem = Problem::new(Seqlens::Varlen { cu_seqlens_q: cu_q, cu_seqlens_k: cu_k }, heads, head_dim);
    problem.mask = Mask { causal, key_lengths: None };
    let exact = reference::attention_f64(&problem, &q, &k, &v).unwrap();
    let plain = reference::attention_plain(&problem, &q, &k, &v).unwrap();
    let options = AttentionOptions { causal, ..Default::default() };
    for device in common::kernel_devices("attention") {
        // One spare element in front keeps every view's allocation non-empty.
        let up = |x: &[T]| device.upload(&[&[T::default(); 8][..], x].concat()).unwrap();
        let (dq, dk, dv) = (up(&q), up(&k), up(&v));
        let mut out = device.zeros::<T>(8 + q.len()).unwrap();
        let mut lse = device.zeros::<f32>(heads * tq).unwrap();
        let layout = AttentionLayout::contiguous(heads, head_dim);
        tessera::attention_varlen_into(
            &device,
            dq.view(8..).unwrap(),
            dk.view(8..).unwrap(),
            dv.view(8..).unwrap(),
            cu_q,
            cu_k,
            heads,
            head_dim,
            &layout,
            &options,
            out.view_mut(8..).unwrap(),
            &mut lse,
        )
        .unwrap();
        let got = out.download().unwrap();
        assert!(got[..8].iter().all(|x| x.to_f32() == 0.0), "wrote before the output view");
        let errors = reference::error_rule(&exact, &plain, &got[8..], &lse.download().unwrap());
        assert!(errors.holds(), "varlen {cu_q:?} / {cu_k:?} causal {causal} on {}: {errors}", device.name());
    }
}

#[test]
fn varlen_batches_match_the_reference() {
    // Lengths 97, 0, 1, 113 queries against 40, 5, 0, 130 keys.
    let cu_q = [0u32, 97, 97, 98, 211];
    let cu_k = [0u32, 40, 45, 45, 175];
    for causal in [false, true] {
        check_varlen::<f16>(&cu_q, &cu_k, 2, 72, causal, 31);
        check_varlen::<bf16>(&cu_q, &cu_k, 1, 64, causal, 32);
    }
    // A batch of only empty sequences: nothing to write.
    check_varlen::<bf16>(&[0, 0, 0], &[0, 0, 0], 1, 32, false, 33);
}

#[test]
fn bad_offsets_are_typed_errors() {
    let device = Device::emulator();
    let buf = device.upload(&values::<f16>(3, 8 * 64, 1.0)).unwrap();
    let mut out = device.zeros::<f16>(8 * 64).unwrap();
    let mut lse = device.zeros::<f32>(8).unwrap();
    let layout = AttentionLayout::contiguous(1, 64);
    let mut run = |cu_q: &[u32], cu_k: &[u32], opts: &AttentionOptions<'_>| {
        tessera::attention_varlen_into(&device, &buf, &buf, &buf, cu_q, cu_k, 1, 64, &layout, opts, &mut out, &mut lse)
    };
    let none = AttentionOptions::default();
    assert_eq!(invalid(run(&[], &[0], &none)), "cu_seqlens_q");
    assert_eq!(invalid(run(&[1, 8], &[0, 8], &none)), "cu_seqlens_q");
    assert_eq!(invalid(run(&[0, 8], &[0, 5, 4], &none)), "cu_seqlens_k");
    assert_eq!(invalid(run(&[0, 8], &[0, 4, 8], &none)), "cu_seqlens_k");
    assert_eq!(invalid(run(&[0, 9], &[0, 8], &none)), "q");
    assert_eq!(invalid(run(&[0, 8], &[0, 9], &none)), "k");
    let lens = [8u32];
    assert_eq!(
        invalid(run(&[0, 8], &[0, 8], &AttentionOptions { key_lengths: Some(&lens), ..none })),
        "options.key_lengths"
    );
}

/// The odd lengths around a 1024-token sequence, and a 16 384-key sequence (a few
/// queries, so that the emulator runs it in a second or two).
#[test]
fn long_and_odd_sequences() {
    for (q_len, k_len) in [(1023usize, 1025usize), (1025, 1023)] {
        let case = Case { shape: shape(1, 1, 64, q_len, k_len), causal: true, key_lengths: None, amplitude: 1.0 };
        case.check::<bf16>(q_len as u64);
    }
    Case { shape: shape(1, 1, 32, 3, 16_384), causal: false, key_lengths: None, amplitude: 1.0 }.check::<f16>(77);
    Case { shape: shape(1, 1, 128, 1, 1), causal: true, key_lengths: None, amplitude: 1.0 }.check::<f16>(78);
}

/// The unfused baseline (GEMM, softmax kernel, GEMM, in head-major layouts) computes what the
/// plain reference does, so it meets the error rule too; on every device and the Cpu backend.
#[test]
fn unfused_baseline_matches_the_reference() {
    let (batch, heads, head_dim, q_len, k_len) = (2usize, 2usize, 72usize, 40usize, 70usize);
    for causal in [false, true] {
        let q = values::<bf16>(41, batch * heads * q_len * head_dim, 1.0);
        let k = values::<bf16>(42, batch * heads * k_len * head_dim, 1.0);
        let v = values::<bf16>(43, batch * heads * k_len * head_dim, 1.0);
        // Head-major [B, H, T, Dh] for the reference's strides; V transposed per head.
        let head_major = |t: usize| Strides { batch: heads * t * head_dim, token: head_dim, head: t * head_dim };
        let mut problem = Problem::new(Seqlens::Padded { batch, tq: q_len, tk: k_len }, heads, head_dim);
        (problem.q, problem.k, problem.v) = (head_major(q_len), head_major(k_len), head_major(k_len));
        problem.mask = Mask { causal, key_lengths: None };
        let exact = reference::attention_f64(&problem, &q, &k, &v).unwrap();
        let plain = reference::attention_plain(&problem, &q, &k, &v).unwrap();
        let mut v_t = vec![bf16::ZERO; v.len()];
        for bh in 0..batch * heads {
            for t in 0..k_len {
                for d in 0..head_dim {
                    v_t[(bh * head_dim + d) * k_len + t] = v[(bh * k_len + t) * head_dim + d];
                }
            }
        }
        let s = shape(batch, heads, head_dim, q_len, k_len);
        let options = AttentionOptions { causal, ..Default::default() };
        let mut devices = common::kernel_devices("attention");
        devices.push(Device::cpu());
        for device in devices {
            let (dq, dk, dvt) = (device.upload(&q).unwrap(), device.upload(&k).unwrap(), device.upload(&v_t).unwrap());
            let mut scores = device.zeros::<bf16>(q_len * k_len).unwrap();
            let mut out = device.zeros::<bf16>(q.len()).unwrap();
            tessera::attention_unfused_into(&device, &dq, &dk, &dvt, s, &options, &mut scores, &mut out).unwrap();
            let got = out.download().unwrap();
            // [B, H, Tq, Dh] → the reference's [B, Tq, H, Dh].
            let mut reordered = vec![bf16::ZERO; got.len()];
            for b in 0..batch {
                for h in 0..heads {
                    for t in 0..q_len {
                        for d in 0..head_dim {
                            reordered[((b * q_len + t) * heads + h) * head_dim + d] =
                                got[((b * heads + h) * q_len + t) * head_dim + d];
                        }
                    }
                }
            }
            let errors = reference::error_rule(&exact, &plain, &reordered, &plain.lse);
            assert!(errors.out.holds(), "unfused, causal {causal}, on {}: {errors}", device.name());
        }
    }
}
