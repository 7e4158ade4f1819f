//! The emulator's mma.sync m16n8k8 (f16, bf16, tf32 inputs; f32 accumulate) and
//! `f32_to_tf32` (cvt.rna.tf32.f32), through kernels/selftest/mma_k8.cu. Every expected value
//! is computed here in plain Rust from the PTX ISA's definitions: a matrix product for the
//! mma (the fragment layouts are the kernel's business: a misplaced element changes D), and
//! round-to-nearest-ties-away to 10 mantissa bits, written with f64 arithmetic rather than
//! the emulator's bit trick, for the conversion. The results also run on a GPU when one is
//! usable (with a tolerance where a GPU's summation order may differ).

mod common;

use tessera::selftest::{self, MmaK8Type};
use tessera::{BackendKind, DType, Device, Error};

use common::Rng;

const M: usize = 16;
const N: usize = 8;
const K: usize = 8;

fn is_emulator(device: &Device) -> bool {
    device.kind() == BackendKind::Emulator
}

/// D = C + A·B in f64 (exact for the small dyadic values of the exact tests).
fn matmul_f64(a: &[f32], b: &[f32], c: &[f32]) -> Vec<f64> {
    (0..M * N)
        .map(|e| {
            let (i, j) = (e / N, e % N);
            c[e] as f64 + (0..K).map(|k| a[i * K + k] as f64 * b[k * N + j] as f64).sum::<f64>()
        })
        .collect()
}

/// D = C + A·B as the emulator defines it: f32 sums in k order (each product is exact in f32
/// for tf32/f16/bf16 operands; Rust never fuses a multiply-add).
fn matmul_f32_k_order(a: &[f32], b: &[f32], c: &[f32]) -> Vec<f32> {
    (0..M * N)
        .map(|e| {
            let (i, j) = (e / N, e % N);
            let mut acc = c[e];
            for k in 0..K {
                acc += a[i * K + k] * b[k * N + j];
            }
            acc
        })
        .collect()
}

/// Distinct per-element values: A[i][k] = ±(1 + a permutation of 0..128) / 16, B[k][j] =
/// ±(1 + a permutation of 0..64) / 8, C[i][j] = integers. At most 8 significant bits (exact in
/// bf16, f16 and tf32), every product and partial sum exact in f32.
fn distinct_inputs(seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng(seed);
    let mut sign = move || if rng.next() & 1 == 0 { 1.0f32 } else { -1.0 };
    let a: Vec<f32> = (0..M * K).map(|e| sign() * (1 + (e * 37) % 128) as f32 / 16.0).collect();
    let b: Vec<f32> = (0..K * N).map(|e| sign() * (1 + (e * 13) % 64) as f32 / 8.0).collect();
    let c: Vec<f32> = (0..M * N).map(|e| e as f32 - 64.0).collect();
    (a, b, c)
}

fn assert_exact(what: &str, got: &[f32], want: &[f64]) {
    for (e, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g as f64, w, "{what}: D[{}][{}]", e / N, e % N);
    }
}

/// How many elements of D differ from `want`.
fn mismatches(got: &[f32], want: &[f64]) -> usize {
    got.iter().zip(want).filter(|(&g, &w)| g as f64 != w).count()
}

#[test]
fn mma_m16n8k8_f16_and_bf16_match_a_matrix_product() {
    for (ty, seed) in [(MmaK8Type::F16, 1), (MmaK8Type::Bf16, 2)] {
        let (a, b, c) = distinct_inputs(seed);
        let want = matmul_f64(&a, &b, &c);
        // General values rounded to the input type: within the dtype's tolerance.
        let mut rng = Rng(seed + 10);
        let round = |v: f32| match ty {
            MmaK8Type::Bf16 => half::bf16::from_f32(v).to_f32(),
            _ => half::f16::from_f32(v).to_f32(),
        };
        let mut general =
            |len: usize| -> Vec<f32> { (0..len).map(|_| round((rng.next() % 20001) as f32 / 10000.0 - 1.0)).collect() };
        let (ga, gb, gc) = (general(M * K), general(K * N), general(M * N));
        let dtype = if ty == MmaK8Type::Bf16 { DType::BF16 } else { DType::F16 };
        for device in common::kernel_devices("mma_m16n8k8_f16_and_bf16") {
            let d = selftest::mma_k8(&device, ty, &a, &b, &c, 0).unwrap();
            assert_exact(&format!("{device:?} {ty:?}"), &d, &want);
            let d = selftest::mma_k8(&device, ty, &ga, &gb, &gc, 0).unwrap();
            let got: Vec<f64> = d.iter().map(|&v| v as f64).collect();
            common::assert_close(&format!("{device:?} {ty:?} general"), &got, &matmul_f64(&ga, &gb, &gc), dtype, K);
        }
    }
}

#[test]
fn mma_m16n8k8_f16_and_bf16_catch_fragment_mistakes() {
    for (ty, seed) in [(MmaK8Type::F16, 3), (MmaK8Type::Bf16, 4)] {
        let (a, b, c) = distinct_inputs(seed);
        let want = matmul_f64(&a, &b, &c);
        for device in common::kernel_devices("mma_m16n8k8_f16_and_bf16_catch_fragment_mistakes") {
            // a[0] <-> a[1] (rows g and g+8): every element of D is wrong.
            let d = selftest::mma_k8(&device, ty, &a, &b, &c, 1).unwrap();
            assert_eq!(mismatches(&d, &want), M * N, "{device:?} {ty:?}: a[0] and a[1] swapped");
            // The two halves of b[0] swapped (k 2t <-> 2t+1).
            let d = selftest::mma_k8(&device, ty, &a, &b, &c, 2).unwrap();
            assert!(mismatches(&d, &want) >= M * N / 2, "{device:?} {ty:?}: b[0] halves swapped went unnoticed");
        }
    }
}

// ---- tf32 ---------------------------------------------------------------------------------------

/// cvt.rna.tf32.f32 in plain arithmetic: None for NaN (only "some NaN" is defined). The value
/// is scaled by its tf32 ulp (2^(e-10), e = its binade's exponent, -126 for subnormals), rounded
/// to the nearest integer with ties away from zero, and scaled back; past the largest tf32 the
/// conversion to f32 gives Inf.
fn tf32_rna_reference(x: f32) -> Option<u32> {
    if x.is_nan() {
        return None;
    }
    if x.is_infinite() || x == 0.0 {
        return Some(x.to_bits());
    }
    let a = x.abs() as f64; // exact, and a normal f64 even for an f32 subnormal
    let e = (((a.to_bits() >> 52) & 0x7ff) as i32 - 1023).max(-126);
    let ulp = 2f64.powi(e - 10);
    let q = a / ulp; // exact: a power-of-two scaling, q < 2^11 with at most 13 fraction bits
    let r = (q + 0.5).floor() * ulp; // ties away from zero (q > 0)
    let r = r as f32; // exact, or Inf when r = 2^128
    Some(if x < 0.0 { (-r).to_bits() } else { r.to_bits() })
}

/// The value an mma reads from a 32-bit tf32 operand: the low 13 bits ignored.
fn tf32_truncate(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0xffff_e000)
}

fn tf32_round(x: f32) -> f32 {
    f32::from_bits(tf32_rna_reference(x).unwrap())
}

#[test]
fn f32_to_tf32_rounds_to_nearest_ties_away() {
    // (input bits, expected bits); NaN inputs are checked separately below.
    let cases: &[(u32, u32)] = &[
        (0x0000_0000, 0x0000_0000), // +0
        (0x8000_0000, 0x8000_0000), // -0
        (0x3f80_0000, 0x3f80_0000), // 1
        (0x3f80_0fff, 0x3f80_0000), // just below half an ulp: down
        (0x3f80_1000, 0x3f80_2000), // tie, even kept bit: away (nearest-even would give 1.0)
        (0xbf80_1000, 0xbf80_2000), // negative tie: away from zero
        (0x3f80_1001, 0x3f80_2000), // above the tie: up
        (0x3f80_3000, 0x3f80_4000), // tie, odd kept bit: away
        (0x3fff_f000, 0x4000_0000), // tie that carries into the exponent
        (0x3f80_1fff, 0x3f80_2000), // all low bits set: up
        (0x7f7f_efff, 0x7f7f_e000), // near the top: down to the largest tf32
        (0x7f7f_f000, 0x7f80_0000), // tie at the largest tf32: away = Inf
        (0x7f7f_ffff, 0x7f80_0000), // f32::MAX: Inf
        (0xff7f_ffff, 0xff80_0000), // -f32::MAX: -Inf
        (0x7f80_0000, 0x7f80_0000), // Inf
        (0xff80_0000, 0xff80_0000), // -Inf
        (0x0000_0001, 0x0000_0000), // smallest subnormal: to zero
        (0x0000_0fff, 0x0000_0000), // below half a subnormal tf32 ulp (0x2000)
        (0x0000_1000, 0x0000_2000), // subnormal tie: away
        (0x8000_1000, 0x8000_2000), // negative subnormal tie
        (0x0000_3000, 0x0000_4000), // subnormal tie, odd kept bit
        (0x007f_f000, 0x0080_0000), // largest subnormal tie: the smallest normal
        (0x0080_0000, 0x0080_0000), // smallest normal
        (0x0080_1000, 0x0080_2000), // tie just above it
    ];
    let nans: &[u32] = &[0x7fc0_0000, 0xffc0_0000, 0x7f80_0001, 0x7f80_1fff, 0x7fbf_ffff, 0xffff_ffff, 0x7fff_f000];
    // The reference agrees with the table (a check of the reference itself).
    for &(x, want) in cases {
        assert_eq!(tf32_rna_reference(f32::from_bits(x)), Some(want), "reference at {x:#010x}");
    }
    let mut rng = Rng(20);
    let mut inputs: Vec<u32> = cases.iter().map(|c| c.0).chain(nans.iter().copied()).collect();
    inputs.extend((0..20_000).map(|_| rng.word()));
    // Every binade's ties, both signs.
    inputs.extend((0..256u32).flat_map(|e| [(e << 23) | 0x1000, (e << 23) | 0x3000 | 0x8000_0000]));
    let x: Vec<f32> = inputs.iter().map(|&b| f32::from_bits(b)).collect();
    for device in common::kernel_devices("f32_to_tf32_rounds_to_nearest_ties_away") {
        let out = selftest::f32_to_tf32(&device, &x).unwrap();
        for (&xi, &got) in x.iter().zip(&out) {
            let bits = xi.to_bits();
            match tf32_rna_reference(xi) {
                Some(want) => assert_eq!(got, want, "{device:?} f32_to_tf32({bits:#010x}): got {got:#010x}"),
                None => assert!(
                    f32::from_bits(got).is_nan() && got & 0x1fff == 0,
                    "{device:?} f32_to_tf32(NaN {bits:#010x}) = {got:#010x}: want a NaN with the low 13 bits zero"
                ),
            }
        }
    }
}

#[test]
fn mma_m16n8k8_tf32_matches_a_matrix_product() {
    // Exact tf32 values (8 significant bits): raw and rounded operands give the same, exact D.
    let (a, b, c) = distinct_inputs(5);
    let want = matmul_f64(&a, &b, &c);
    for device in common::kernel_devices("mma_m16n8k8_tf32_matches_a_matrix_product") {
        for variant in [0, 1] {
            let d = selftest::mma_k8(&device, MmaK8Type::Tf32, &a, &b, &c, variant).unwrap();
            assert_exact(&format!("{device:?} tf32 variant {variant}"), &d, &want);
        }
    }
}

#[test]
fn mma_m16n8k8_tf32_truncates_operands_not_rounded_by_f32_to_tf32() {
    // Full f32 mantissas: the mma reads only the top 19 bits of each operand.
    let mut rng = Rng(6);
    let mut full = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| {
                let v = (rng.next() % 2_000_001) as f32 / 1_000_000.0 - 1.0;
                // make sure the low 13 bits are not all zero (else truncation changes nothing)
                f32::from_bits(v.to_bits() | 0x0800)
            })
            .collect()
    };
    let (a, b, c) = (full(M * K), full(K * N), full(M * N));
    let trunc: (Vec<f32>, Vec<f32>) =
        (a.iter().map(|&v| tf32_truncate(v)).collect(), b.iter().map(|&v| tf32_truncate(v)).collect());
    let round: (Vec<f32>, Vec<f32>) =
        (a.iter().map(|&v| tf32_round(v)).collect(), b.iter().map(|&v| tf32_round(v)).collect());
    let want_trunc = matmul_f32_k_order(&trunc.0, &trunc.1, &c);
    let want_round = matmul_f32_k_order(&round.0, &round.1, &c);
    let exact = matmul_f64(&a, &b, &c);
    // The test means something: the three differ by far more than f32 rounding.
    let (atol, rtol) = common::tolerance(DType::F32, K);
    let far =
        |x: &[f32], y: &[f64]| x.iter().zip(y).filter(|(&p, &q)| (p as f64 - q).abs() > atol + rtol * q.abs()).count();
    let round_f64: Vec<f64> = want_round.iter().map(|&v| v as f64).collect();
    assert!(far(&want_trunc, &round_f64) > M * N / 2, "truncation and rounding give nearly the same D");
    assert!(far(&want_trunc, &exact) > M * N / 2, "truncation gives nearly the exact D");
    for device in common::kernel_devices("mma_m16n8k8_tf32_truncates_operands") {
        let raw = selftest::mma_k8(&device, MmaK8Type::Tf32, &a, &b, &c, 0).unwrap();
        let rounded = selftest::mma_k8(&device, MmaK8Type::Tf32, &a, &b, &c, 1).unwrap();
        if is_emulator(&device) {
            // f32 sums in k order, exact products: bit for bit.
            assert_eq!(raw, want_trunc, "{device:?}: raw f32 operands must be truncated to tf32");
            assert_eq!(rounded, want_round, "{device:?}: f32_to_tf32 operands");
        } else {
            let (raw, rounded): (Vec<f64>, Vec<f64>) =
                (raw.iter().map(|&v| v as f64).collect(), rounded.iter().map(|&v| v as f64).collect());
            let trunc_f64: Vec<f64> = want_trunc.iter().map(|&v| v as f64).collect();
            common::assert_close(&format!("{device:?} raw"), &raw, &trunc_f64, DType::F32, K);
            common::assert_close(&format!("{device:?} rounded"), &rounded, &round_f64, DType::F32, K);
        }
    }
}

#[test]
fn mma_m16n8k8_tf32_catches_fragment_mistakes() {
    let (a, b, c) = distinct_inputs(7);
    let want = matmul_f64(&a, &b, &c);
    for device in common::kernel_devices("mma_m16n8k8_tf32_catches_fragment_mistakes") {
        // a[1] <-> a[2]: the f16 order (k before rows) taken for tf32.
        let d = selftest::mma_k8(&device, MmaK8Type::Tf32, &a, &b, &c, 2).unwrap();
        assert_eq!(mismatches(&d, &want), M * N, "{device:?}: a[1] and a[2] swapped went unnoticed");
        // b[0] <-> b[1] (k t and t+4).
        let d = selftest::mma_k8(&device, MmaK8Type::Tf32, &a, &b, &c, 3).unwrap();
        assert_eq!(mismatches(&d, &want), M * N, "{device:?}: b[0] and b[1] swapped went unnoticed");
    }
}

// ---- emulator only: accounting and misuse ---------------------------------------------------------

#[test]
fn each_mma_m16n8k8_counts_as_one_mma() {
    let device = Device::emulator();
    let (a, b, c) = distinct_inputs(8);
    for ty in [MmaK8Type::F16, MmaK8Type::Bf16, MmaK8Type::Tf32] {
        let (d, records) = tessera::emulator::profile(|| selftest::mma_k8(&device, ty, &a, &b, &c, 0));
        d.unwrap();
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0].counters.mma, 1, "{ty:?}: one warp, one mma");
    }
}

#[test]
fn mma_m16n8k8_needs_a_full_warp() {
    let device = Device::emulator();
    match selftest::mma_k8_tf32_threads(&device, 16) {
        Err(Error::Emulator(msg)) => {
            assert!(msg.contains("mma_m16n8k8_tf32") && msg.contains("all 32 lanes"), "{msg}");
            assert!(msg.contains("selftest_mma_k8_tf32"), "the message names the kernel: {msg}");
        }
        other => panic!("expected an emulator error, got {other:?}"),
    }
    selftest::mma_k8_tf32_threads(&device, 32).unwrap();
}
