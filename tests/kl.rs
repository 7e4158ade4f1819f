//! The KL bottleneck (kernels/kl.cu) on the emulator — and on a GPU when present — and on
//! the Cpu backend, against the reference (src/reference/kl.rs).
//!
//! The kernel's log, exp and sin/cos are fixed sequences of correctly rounded f32
//! operations that the reference repeats, and ε is a function of (seed, flat index) only,
//! so every comparison with the reference is bit for bit. The reference's own math is
//! checked against f64 (ulp bounds), Philox against the published known-answer vectors,
//! and the normals statistically.

mod common;

use common::Rng;
use half::{bf16, f16};
use tessera::reference::kl as reference;
use tessera::{kl_sample, kl_sample_into, Device, Error, FloatElement, KlMode};

/// Every backend the op runs on: the kernel devices and the Cpu reference.
fn all_devices() -> Vec<Device> {
    let mut d = common::kernel_devices("kl");
    d.push(Device::cpu());
    d
}

fn bits<T: FloatElement>(v: &[T]) -> Vec<u32> {
    v.iter().map(|x| x.to_f32().to_bits()).collect()
}

/// One ulp of an f32 at `v` (exact value, normal range).
fn ulp_f32(v: f64) -> f64 {
    2f64.powi(v.abs().log2().floor() as i32 - 23)
}

/// `[n, 2C]` params: mean uniform in [−3, 3), logvar uniform in [lv_lo, lv_hi).
fn random_params<T: FloatElement>(n: usize, c: usize, lv: (f32, f32), seed: u64) -> Vec<T> {
    let mut rng = Rng(seed);
    let mut u = || (rng.next() >> 40) as f32 / (1u64 << 24) as f32;
    let mut p = Vec::with_capacity(n * 2 * c);
    for _ in 0..n {
        for _ in 0..c {
            p.push(T::from_f32(6.0 * u() - 3.0));
        }
        for _ in 0..c {
            p.push(T::from_f32(lv.0 + (lv.1 - lv.0) * u()));
        }
    }
    p
}

/// Runs the op on `device` into an output prefilled with NaN (an element the kernel forgets shows).
fn run<T: FloatElement>(device: &Device, params: &[T], c: usize, mode: KlMode) -> tessera::Result<Vec<T>> {
    let p = device.upload(params)?;
    let mut out = device.upload(&vec![T::from_f32(f32::NAN); params.len() / 2])?;
    kl_sample_into(device, &p, c, mode, &mut out)?;
    out.download()
}

fn want<T: FloatElement>(params: &[T], c: usize, mode: KlMode) -> Vec<T> {
    let seed = match mode {
        KlMode::Mean => None,
        KlMode::Sample { seed } => Some(seed),
    };
    let mut out = vec![T::default(); params.len() / 2];
    reference::kl_sample(params, c, seed, &mut out).expect("finite params");
    out
}

fn check_bit_exact<T: FloatElement>(n: usize, c: usize, mode: KlMode) {
    let params = random_params::<T>(n, c, (-8.0, 4.0), (n * 1000 + c) as u64);
    let want = bits(&want(&params, c, mode));
    for device in all_devices() {
        let got = bits(&run(&device, &params, c, mode).unwrap());
        assert_eq!(got, want, "{:?} n {n} C {c} {mode:?} on {}", T::DTYPE, device.name());
    }
}

#[test]
fn philox_matches_the_published_known_answers() {
    // Random123's kat_vectors for philox4x32_10.
    assert_eq!(reference::philox4x32_10([0; 4], [0; 2]), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
    assert_eq!(
        reference::philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
        [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
    );
    assert_eq!(
        reference::philox4x32_10([0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], [0xa409_3822, 0x299f_31d0]),
        [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
    );
}

#[test]
fn reference_math_is_accurate() {
    // kl_log on every uniform the generator can produce: ((x >> 8) + 1)·2^−24.
    let mut worst_log = 0.0f64;
    for a in (1u32..=1 << 24).step_by(3).chain([1, 2, (1 << 24) - 1, 1 << 24]) {
        let u = a as f32 * 5.960_464_5e-8;
        assert_eq!(u as f64, a as f64 / (1u64 << 24) as f64, "u is exact");
        let got = reference::kl_log(u) as f64;
        let exact = (u as f64).ln();
        if exact == 0.0 {
            assert_eq!(got, 0.0);
            continue;
        }
        worst_log = worst_log.max((got - exact).abs() / ulp_f32(exact));
    }
    // kl_exp over the clamped range of logvar / 2.
    let mut worst_exp = 0.0f64;
    for i in 0..=500_000 {
        let x = -15.0 + 25.0 * i as f32 / 500_000.0;
        let exact = (x as f64).exp();
        worst_exp = worst_exp.max((reference::kl_exp(x) as f64 - exact).abs() / ulp_f32(exact));
    }
    // sin/cos of every 24-bit angle, against the exact angle 2π·a/2^24: absolute error.
    let mut worst_trig = 0.0f64;
    for a in (0u32..1 << 24).step_by(5) {
        let theta = std::f64::consts::TAU * a as f64 / (1u64 << 24) as f64;
        let (c, s) = reference::kl_sincos(a);
        worst_trig = worst_trig.max((c as f64 - theta.cos()).abs()).max((s as f64 - theta.sin()).abs());
    }
    eprintln!(
        "kl_log {worst_log:.3} ulp, kl_exp {worst_exp:.3} ulp, sin/cos {:.3}·2^-24 absolute",
        worst_trig * 16777216.0
    );
    assert!(worst_log <= 2.0, "kl_log: {worst_log} ulp");
    assert!(worst_exp <= 2.0, "kl_exp: {worst_exp} ulp");
    assert!(worst_trig <= 2.0 / 16_777_216.0, "sin/cos: {worst_trig} absolute");
}

/// Ragged and vector-friendly channel counts, odd row counts, every dtype, both modes: the
/// same bits as the reference on every backend.
#[test]
fn matches_reference_bit_for_bit() {
    for c in [1usize, 3, 4, 8, 16, 17, 64] {
        for n in [1usize, 5, 33] {
            for mode in [KlMode::Mean, KlMode::Sample { seed: 7 }, KlMode::Sample { seed: 0xdead_beef_0123_4567 }] {
                check_bit_exact::<f32>(n, c, mode);
                check_bit_exact::<f16>(n, c, mode);
                check_bit_exact::<bf16>(n, c, mode);
            }
        }
    }
}

#[test]
fn mean_mode_is_the_mean() {
    let (n, c) = (19, 17);
    let params = random_params::<bf16>(n, c, (-50.0, 50.0), 3);
    for device in all_devices() {
        let got = run(&device, &params, c, KlMode::Mean).unwrap();
        for i in 0..n {
            assert_eq!(
                bits(&got[i * c..(i + 1) * c]),
                bits(&params[i * 2 * c..i * 2 * c + c]),
                "row {i} on {}",
                device.name()
            );
        }
    }
}

/// With mean = 0 and logvar = 0 the output is ε itself: the reference's `normal(seed, e)`,
/// whatever the dtype (4 or 8 elements per thread) or the alignment of the views (the
/// vector or the element-by-element path): ε does not depend on the launch.
#[test]
fn noise_depends_only_on_seed_and_index() {
    let (n, c) = (7, 24);
    let params = vec![0.0f32; n * 2 * c];
    let seed = 0x1234_5678_9abc_def0;
    let eps: Vec<f32> = (0..(n * c) as u64).map(|e| reference::normal(seed, e)).collect();
    for device in all_devices() {
        let name = device.name();
        let got = run(&device, &params, c, KlMode::Sample { seed }).unwrap();
        assert_eq!(bits(&got), bits(&eps), "f32 on {name}");
        let p16: Vec<f16> = params.iter().map(|&v| f16::from_f32(v)).collect();
        let got = run(&device, &p16, c, KlMode::Sample { seed }).unwrap();
        let eps16: Vec<f16> = eps.iter().map(|&v| f16::from_f32(v)).collect();
        assert_eq!(bits(&got), bits(&eps16), "f16 on {name}");
        // Views at an odd offset: misaligned, so element by element.
        let mut padded = vec![7.0f32; 1];
        padded.extend(&params);
        let pb = device.upload(&padded).unwrap();
        let mut out = device.upload(&vec![f32::NAN; n * c + 3]).unwrap();
        kl_sample_into(&device, pb.view(1..).unwrap(), c, KlMode::Sample { seed }, out.view_mut(3..).unwrap()).unwrap();
        let got = out.download().unwrap();
        assert!(got[..3].iter().all(|v| v.is_nan()), "outside the view on {name}");
        assert_eq!(bits(&got[3..]), bits(&eps), "misaligned views on {name}");
    }
}

#[test]
fn seeds_reproduce_and_differ() {
    let (n, c) = (64, 16);
    let params = random_params::<f32>(n, c, (-2.0, 1.0), 11);
    for device in all_devices() {
        let a = run(&device, &params, c, KlMode::Sample { seed: 1 }).unwrap();
        let b = run(&device, &params, c, KlMode::Sample { seed: 1 }).unwrap();
        assert_eq!(bits(&a), bits(&b), "same seed on {}", device.name());
        for other in [2u64, 1 << 32, u64::MAX] {
            let d = run(&device, &params, c, KlMode::Sample { seed: other }).unwrap();
            let same = a.iter().zip(&d).filter(|(x, y)| x.to_bits() == y.to_bits()).count();
            assert!(same <= 2, "seed 1 and {other}: {same} of {} elements equal on {}", a.len(), device.name());
        }
    }
}

/// mean = 0, logvar = 0 over 65 536 elements: the sample moments and tails of N(0, 1).
#[test]
fn noise_is_standard_normal() {
    let (n, c) = (4096, 16);
    let params = vec![0.0f32; n * 2 * c];
    for device in all_devices() {
        let z = run(&device, &params, c, KlMode::Sample { seed: 2024 }).unwrap();
        let m = z.len() as f64;
        let mean = z.iter().map(|&v| v as f64).sum::<f64>() / m;
        let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / m;
        let beyond3 = z.iter().filter(|v| v.abs() > 3.0).count() as f64 / m; // 0.0027 for N(0, 1)
        let beyond2 = z.iter().filter(|v| v.abs() > 2.0).count() as f64 / m; // 0.0455
        let positive = z.iter().filter(|&&v| v > 0.0).count() as f64 / m;
        // Neighbours (the pairs of one Box–Muller transform included) are uncorrelated.
        let lag1 = z.windows(2).map(|w| w[0] as f64 * w[1] as f64).sum::<f64>() / (m - 1.0);
        let kurtosis = z.iter().map(|&v| (v as f64 - mean).powi(4)).sum::<f64>() / m / (var * var);
        let ctx = format!(
            "{}: mean {mean:.4} var {var:.4} >3σ {beyond3:.5} >2σ {beyond2:.4} positive {positive:.4} lag-1 {lag1:.4} \
             kurtosis {kurtosis:.3}",
            device.name()
        );
        eprintln!("{ctx}");
        assert!(mean.abs() < 0.02, "{ctx}");
        assert!((var - 1.0).abs() < 0.03, "{ctx}");
        assert!((0.0017..0.0038).contains(&beyond3), "{ctx}");
        assert!((0.041..0.050).contains(&beyond2), "{ctx}");
        assert!((positive - 0.5).abs() < 0.01, "{ctx}");
        assert!(lag1.abs() < 0.02, "{ctx}");
        assert!((kurtosis - 3.0).abs() < 0.15, "{ctx}");
        assert!(z.iter().all(|v| v.abs() < 5.8), "{}: beyond the 24-bit radius", device.name());
    }
}

/// logvar is clamped to [−30, 20] before the exp (diffusers): 100 samples like 20, −100 like −30.
#[test]
fn logvar_is_clamped() {
    let c = 5;
    let seed = 99;
    // Row 0: logvar 100 (and 20 itself); row 1: logvar −100 (and −30); row 2: in range.
    let rows: [[f32; 5]; 3] =
        [[100.0, 20.0, 1e30, 21.0, 25.0], [-100.0, -30.0, -1e30, -31.0, -35.0], [0.0, 2.0, -4.0, 19.5, -29.5]];
    let mean = [0.25f32, -1.0, 3.0, 0.0, 1.5];
    let mut params = Vec::new();
    for lv in rows {
        params.extend(mean);
        params.extend(lv);
    }
    let expect: Vec<f32> = (0..3 * c)
        .map(|e| {
            let lv = rows[e / c][e % c].clamp(-30.0, 20.0);
            reference::sample_value(mean[e % c], lv, reference::normal(seed, e as u64))
        })
        .collect();
    assert_eq!(reference::clamp_logvar(f32::INFINITY), 20.0);
    assert_eq!(reference::clamp_logvar(f32::NEG_INFINITY), -30.0);
    assert!(reference::clamp_logvar(f32::NAN).is_nan());
    // σ at the bounds: exp(10) and exp(−15), within 2 ulp.
    let sigma_hi = reference::kl_exp(0.5 * 20.0) as f64;
    assert!((sigma_hi - 10f64.exp()).abs() <= 2.0 * ulp_f32(10f64.exp()));
    for device in all_devices() {
        let got = run(&device, &params, c, KlMode::Sample { seed }).unwrap();
        assert_eq!(bits(&got), bits(&expect), "{}", device.name());
        for k in 0..c {
            let eps = reference::normal(seed, k as u64) as f64;
            let z = got[k] as f64;
            let want = mean[k] as f64 + 10f64.exp() * eps;
            assert!((z - want).abs() <= 1e-5 * want.abs().max(1.0), "row 0 col {k}: {z} vs {want}");
        }
    }
}

/// A NaN or infinite mean — or, when sampling, logvar — is InvalidValue naming params and the
/// first such row; every row is still written. In Mean mode logvar is not read.
#[test]
fn non_finite_params_name_params_and_row() {
    let (n, c) = (6, 8);
    let mut params = random_params::<f32>(n, c, (-1.0, 1.0), 5);
    params[4 * 2 * c + c + 3] = f32::NAN; // logvar of row 4
    params[5 * 2 * c + 1] = f32::INFINITY; // mean of row 5
    for device in all_devices() {
        let name = device.name();
        let p = device.upload(&params).unwrap();
        let mut out = device.upload(&vec![f32::NAN; n * c]).unwrap();
        let r = kl_sample_into(&device, &p, c, KlMode::Sample { seed: 3 }, &mut out).and_then(|_| out.download());
        match r {
            Err(Error::InvalidValue { op: "kl_sample", arg: "params", row: 4, .. }) => {}
            other => panic!("{name}: expected InvalidValue naming params, row 4, got {other:?}"),
        }
        let got = out.download().unwrap();
        assert!(got[4 * c + 3].is_nan() && got[5 * c + 1] == f32::INFINITY, "{name}");
        let good = want(&params[..4 * 2 * c], c, KlMode::Sample { seed: 3 });
        assert_eq!(bits(&got[..4 * c]), bits(&good), "{name}: the valid rows");
        // Mean mode: the NaN logvar is not used; the infinite mean (row 5) is flagged.
        let r = kl_sample_into(&device, &p, c, KlMode::Mean, &mut out).and_then(|_| out.download());
        assert!(matches!(r, Err(Error::InvalidValue { arg: "params", row: 5, .. })), "{name}: {r:?}");
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    let device = Device::emulator();
    let other = Device::emulator();
    let params = device.upload(&vec![0.0f32; 3 * 2 * 4]).unwrap();
    let mut out = device.zeros::<f32>(12).unwrap();
    let arg = |r: tessera::Result<()>| match r {
        Err(Error::InvalidArgument { arg, .. }) => arg,
        Err(Error::LengthMismatch { arg, .. }) => arg,
        Err(Error::WrongDevice { arg, .. }) => arg,
        other => panic!("expected a typed argument error, got {other:?}"),
    };
    let mode = KlMode::Sample { seed: 1 };
    assert_eq!(arg(kl_sample_into(&device, &params, 0, mode, &mut out)), "channels");
    assert!(matches!(
        kl_sample(&device, &params, 0, KlMode::Mean),
        Err(Error::InvalidArgument { arg: "channels", .. })
    ));
    // 24 elements are not whole rows of 2·5 = 10, nor of 2·7.
    assert_eq!(arg(kl_sample_into(&device, &params, 5, mode, &mut out)), "params");
    assert!(matches!(kl_sample(&device, &params, 7, mode), Err(Error::InvalidArgument { arg: "params", .. })));
    let mut short = device.zeros::<f32>(11).unwrap();
    let r = kl_sample_into(&device, &params, 4, mode, &mut short);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "out", expected: 12, actual: 11 })), "{r:?}");
    let foreign = other.upload(&vec![0.0f32; 24]).unwrap();
    assert_eq!(arg(kl_sample_into(&device, &foreign, 4, mode, &mut out)), "params");
    let mut foreign_out = other.zeros::<f32>(12).unwrap();
    assert_eq!(arg(kl_sample_into(&device, &params, 4, mode, &mut foreign_out)), "out");
    // No rows: nothing to do.
    let empty = device.zeros::<f32>(0).unwrap();
    assert_eq!(kl_sample(&device, &empty, 3, mode).unwrap().len(), 0);
}
