//! Conditioning embeddings (kernels/embedding.cu) on the emulator — and on a GPU when
//! present — and on the Cpu backend, against the reference (src/reference/embedding.rs).
//!
//! The accuracy rule of the timestep embedding: the reference evaluates cos/sin in f64 of
//! the *same* f32 argument `fl(t·freq_i)` the kernel uses (the frequency is bit-identical
//! on every backend: `reference::frequency_exp` is the kernel's exp, step for step), so the
//! comparison measures the kernel's sinusoid alone, not the f32 rounding of large arguments
//! (up to |arg|·2^−24 rad, the same everywhere, as in PyTorch). Every output must be
//! within the shared per-dtype tolerance (tests/common) of the reference, and f32 outputs
//! within 2 ulp of the exact f64 value. Label embeddings are copies: compared bit for bit.

mod common;

use common::Rng;
use half::{bf16, f16};
use proptest::prelude::*;
use tessera::reference::embedding as reference;
use tessera::{
    label_embedding, label_embedding_into, label_embedding_into_using, timestep_embedding, timestep_embedding_into,
    timestep_embedding_shifted_into, DType, Device, Error, FloatElement, LabelEmbeddingKernel, DEFAULT_MAX_PERIOD,
};

const DIMS: [usize; 6] = [1, 2, 3, 255, 256, 1152];
const TIMESTEPS: [f32; 8] = [0.0, 0.5, 999.0, 1e4, 1.0, 0.25, 37.125, 500.75];

/// Every backend the op runs on: the kernel devices and the Cpu reference.
fn all_devices() -> Vec<Device> {
    let mut d = common::kernel_devices("embedding");
    d.push(Device::cpu());
    d
}

fn bits<T: FloatElement>(v: &[T]) -> Vec<u32> {
    v.iter().map(|x| x.to_f32().to_bits()).collect()
}

/// One ulp of an f32 at `v` (exact value), subnormals included.
fn ulp_f32(v: f64) -> f64 {
    let v = v.abs();
    if v < f32::MIN_POSITIVE as f64 {
        return 2f64.powi(-149);
    }
    2f64.powi(v.log2().floor() as i32 - 23)
}

/// The exact cos/sin (f64) of the reference's f32 arguments, `[t.len(), dim]`, with
/// diffusers' `downscale_freq_shift` `shift` (frequency divisor `dim / 2 − shift`).
fn exact(t: &[f32], dim: usize, max_period: f64, shift: usize) -> Vec<f64> {
    let half = dim / 2;
    let c = reference::neg_log_max_period(max_period);
    let mut out = Vec::with_capacity(t.len() * dim);
    for &tb in t {
        let args: Vec<f64> = (0..half).map(|i| (tb * reference::frequency(i, half - shift, c)) as f64).collect();
        out.extend(args.iter().map(|a| a.cos()));
        out.extend(args.iter().map(|a| a.sin()));
        if dim % 2 == 1 {
            out.push(0.0);
        }
    }
    out
}

/// Runs the timestep embedding on `device` into an output prefilled with NaN (so that an
/// element the kernel forgets shows), returning the downloaded result.
/// Shift 0 goes through `timestep_embedding_into`, any other through the shifted entry point.
fn run_timestep<T: FloatElement>(
    device: &Device,
    t: &[f32],
    dim: usize,
    max_period: f64,
    shift: usize,
) -> tessera::Result<Vec<T>> {
    let tb = device.upload(t)?;
    let mut out = device.upload(&vec![T::from_f32(f32::NAN); t.len() * dim])?;
    if shift == 0 {
        timestep_embedding_into(device, &tb, dim, max_period, &mut out)?;
    } else {
        timestep_embedding_shifted_into(device, &tb, dim, max_period, shift, &mut out)?;
    }
    out.download()
}

fn check_timestep<T: FloatElement>(t: &[f32], dim: usize, max_period: f64) {
    check_timestep_shifted::<T>(t, dim, max_period, 0);
}

/// The embedding with `downscale_freq_shift` = `shift` on every backend against the
/// reference: the Cpu backend bit for bit, the kernels within the rule (and 2 ulp of the
/// exact sinusoid of the reference's f32 arguments in f32).
fn check_timestep_shifted<T: FloatElement>(t: &[f32], dim: usize, max_period: f64, shift: usize) {
    let mut want = vec![T::default(); t.len() * dim];
    reference::timestep_embedding_shifted(t, dim, max_period, shift, &mut want).expect("finite timesteps");
    let want64: Vec<f64> = want.iter().map(|v| v.to_f32() as f64).collect();
    let exact = exact(t, dim, max_period, shift);
    for device in all_devices() {
        let ctx = format!("{:?} dim {dim} max_period {max_period} shift {shift} on {}", T::DTYPE, device.name());
        let got = run_timestep::<T>(&device, t, dim, max_period, shift).unwrap();
        let got64: Vec<f64> = got.iter().map(|v| v.to_f32() as f64).collect();
        if device.kind() == tessera::BackendKind::Cpu {
            assert_eq!(bits(&got), bits(&want), "{ctx}: the Cpu backend is the reference");
        }
        common::assert_close(&ctx, &got64, &want64, T::DTYPE, 1);
        if T::DTYPE == DType::F32 {
            for (i, (&g, &e)) in got64.iter().zip(&exact).enumerate() {
                let ulps = (g - e).abs() / ulp_f32(e);
                assert!(ulps <= 2.0, "{ctx}: element {i} (t = {}) is {g}, exact {e}: {ulps} ulp", t[i / dim]);
            }
        }
        if dim % 2 == 1 {
            for b in 0..t.len() {
                assert_eq!(got64[b * dim + dim - 1], 0.0, "{ctx}: pad column of row {b}");
            }
        }
    }
}

#[test]
fn frequency_exp_is_within_1_ulp_of_exp() {
    assert_eq!(reference::frequency_exp(0.0), 1.0);
    let mut worst = 0.0f64;
    let mut check = |e: f32| {
        let want = (e as f64).exp();
        let got = reference::frequency_exp(e) as f64;
        let ulps = (got - want).abs() / ulp_f32(want);
        worst = worst.max(ulps);
        assert!(ulps <= 1.0, "exp({e}) = {got}, exact {want}: {ulps} ulp");
    };
    for i in 0..=200_000 {
        check(-87.0 + 175.0 * i as f32 / 200_000.0);
    }
    // Every exponent of the default max_period's frequencies for dim up to 4096.
    let c = reference::neg_log_max_period(DEFAULT_MAX_PERIOD);
    for half in [1usize, 2, 128, 576, 2048] {
        for i in 0..half {
            check(c * i as f32 / half as f32);
        }
    }
    // Beyond the range: 0 and +inf, like exp in f32.
    assert_eq!(reference::frequency_exp(-200.0), 0.0);
    assert_eq!(reference::frequency_exp(200.0), f32::INFINITY);
    eprintln!("frequency_exp: worst {worst:.3} ulp");
}

/// The shapes and timesteps of the issue: every dtype, odd and even dims, fractional and
/// large t, on every backend.
#[test]
fn timestep_embedding_matches_reference_on_listed_shapes() {
    for dim in DIMS {
        check_timestep::<f32>(&TIMESTEPS, dim, DEFAULT_MAX_PERIOD);
        check_timestep::<f16>(&TIMESTEPS, dim, DEFAULT_MAX_PERIOD);
        check_timestep::<bf16>(&TIMESTEPS, dim, DEFAULT_MAX_PERIOD);
    }
}

/// Large and negative arguments (the full-range reduction) and other max periods.
#[test]
fn timestep_embedding_large_arguments_and_periods() {
    let t = [-999.0f32, 1e6, -3.5e7, 1.0e30, 3.4e38, -1e-3, 7.0, 1e-30];
    for max_period in [DEFAULT_MAX_PERIOD, 1.0, 100.0, 1e6] {
        check_timestep::<f32>(&t, 33, max_period);
    }
    check_timestep::<bf16>(&t, 64, DEFAULT_MAX_PERIOD);
}

fn dim_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![prop::sample::select(DIMS.to_vec()), 1usize..80]
}

fn timestep_value() -> impl Strategy<Value = f32> {
    prop_oneof![
        2 => prop::sample::select(TIMESTEPS.to_vec()),
        2 => 0.0f32..1000.0,
        1 => (0u32..1000).prop_map(|v| v as f32),
        1 => -1e5f32..1e5,
    ]
}

fn timestep_case() -> impl Strategy<Value = (Vec<f32>, usize, f64)> {
    (
        prop::collection::vec(timestep_value(), 0..12),
        dim_strategy(),
        prop::sample::select(vec![DEFAULT_MAX_PERIOD, 1.0, 100.0, 1e5]),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn timestep_f32_matches_reference((t, dim, mp) in timestep_case()) {
        check_timestep::<f32>(&t, dim, mp);
    }

    #[test]
    fn timestep_f16_matches_reference((t, dim, mp) in timestep_case()) {
        check_timestep::<f16>(&t, dim, mp);
    }

    #[test]
    fn timestep_bf16_matches_reference((t, dim, mp) in timestep_case()) {
        check_timestep::<bf16>(&t, dim, mp);
    }
}

/// diffusers' `downscale_freq_shift = 1` (its DiT's `CombinedTimestepLabelEmbeddings`):
/// every dtype, the listed dims from the smallest allowed (2·(shift + 1)), odd ones included,
/// and larger shifts; the frequencies really are the shifted ones (freq_{half−1} of shift 1
/// is 1/max_period, within an ulp), and differ from shift 0's.
#[test]
fn timestep_embedding_shifted_matches_reference() {
    for dim in [4usize, 5, 255, 256, 1152] {
        check_timestep_shifted::<f32>(&TIMESTEPS, dim, DEFAULT_MAX_PERIOD, 1);
        check_timestep_shifted::<f16>(&TIMESTEPS, dim, DEFAULT_MAX_PERIOD, 1);
        check_timestep_shifted::<bf16>(&TIMESTEPS, dim, DEFAULT_MAX_PERIOD, 1);
    }
    check_timestep_shifted::<f32>(&TIMESTEPS, 6, DEFAULT_MAX_PERIOD, 2);
    check_timestep_shifted::<f32>(&[-999.0, 1e6, 1e30, 7.0], 33, 100.0, 15);
    let c = reference::neg_log_max_period(DEFAULT_MAX_PERIOD);
    let last = reference::frequency(127, 127, c) as f64;
    assert!((last - 1e-4).abs() <= 1e-4 * 2f64.powi(-22), "freq_127 of shift 1 at dim 256: {last}");
    // The shift matters: shift 1 differs from shift 0 on every backend (cos half, column 64 at t = 999).
    for device in all_devices() {
        let s0 = run_timestep::<f32>(&device, &[999.0], 256, DEFAULT_MAX_PERIOD, 0).unwrap();
        let s1 = run_timestep::<f32>(&device, &[999.0], 256, DEFAULT_MAX_PERIOD, 1).unwrap();
        assert_eq!(s0[0], s1[0], "{}: column 0 (freq 1) is the same", device.name());
        assert!((s0[64] - s1[64]).abs() > 1e-3, "{}: {} vs {}", device.name(), s0[64], s1[64]);
    }
}

/// A shift that leaves no divisor (`dim / 2 − shift` < 1) is a typed error on every
/// backend, and nothing is written.
#[test]
fn timestep_embedding_bad_shift_is_a_typed_error() {
    for device in all_devices() {
        let t = device.upload(&[1.0f32, 2.0]).unwrap();
        for (dim, shift) in [(2usize, 1usize), (3, 1), (8, 4), (8, 5), (1, 1), (255, 127), (256, usize::MAX)] {
            let mut out = device.upload(&vec![f32::NAN; 2 * dim]).unwrap();
            let r = timestep_embedding_shifted_into(&device, &t, dim, DEFAULT_MAX_PERIOD, shift, &mut out);
            assert!(
                matches!(r, Err(Error::InvalidArgument { arg: "downscale_freq_shift", .. })),
                "{}: dim {dim} shift {shift}: {r:?}",
                device.name()
            );
            assert!(out.download().unwrap().iter().all(|v| v.is_nan()), "{}: written", device.name());
        }
        // The smallest allowed dims: one frequency, divisor 1.
        for (dim, shift) in [(4usize, 1usize), (5, 1), (8, 3), (2, 0)] {
            let mut out = device.zeros::<f32>(2 * dim).unwrap();
            timestep_embedding_shifted_into(&device, &t, dim, DEFAULT_MAX_PERIOD, shift, &mut out).unwrap();
        }
    }
}

/// Output views at any offset: an odd offset takes the element-by-element stores, and
/// nothing outside the view is written.
#[test]
fn timestep_embedding_into_views_at_any_offset() {
    let t = [3.0f32, 999.0, 0.5];
    let dim = 20;
    let mut want = vec![0f32; t.len() * dim];
    reference::timestep_embedding(&t, dim, DEFAULT_MAX_PERIOD, &mut want).unwrap();
    for device in all_devices() {
        for offset in [0usize, 1, 3, 4] {
            let tb = device.upload(&t).unwrap();
            let total = t.len() * dim + 8;
            let mut out = device.upload(&vec![f32::NAN; total]).unwrap();
            timestep_embedding_into(
                &device,
                &tb,
                dim,
                DEFAULT_MAX_PERIOD,
                out.view_mut(offset..offset + t.len() * dim).unwrap(),
            )
            .unwrap();
            let got = out.download().unwrap();
            assert!(got[..offset].iter().chain(&got[offset + t.len() * dim..]).all(|v| v.is_nan()), "outside the view");
            let g: Vec<f64> = got[offset..offset + t.len() * dim].iter().map(|&v| v as f64).collect();
            let w: Vec<f64> = want.iter().map(|&v| v as f64).collect();
            common::assert_close(&format!("offset {offset} on {}", device.name()), &g, &w, DType::F32, 1);
        }
    }
}

#[test]
fn non_finite_timestep_names_t_and_its_row() {
    let t = [0.0f32, 2.0, f32::NAN, 5.0, f32::INFINITY];
    let dim = 9;
    for device in all_devices() {
        let tb = device.upload(&t).unwrap();
        let mut out = device.upload(&vec![f32::from_bits(0x7fc0_1234); t.len() * dim]).unwrap();
        let r = timestep_embedding_into(&device, &tb, dim, DEFAULT_MAX_PERIOD, &mut out).and_then(|_| out.download());
        match r {
            Err(Error::InvalidValue { op: "timestep_embedding", arg: "t", row: 2, .. }) => {}
            other => panic!("{}: expected InvalidValue naming t, row 2, got {other:?}", device.name()),
        }
        // The finding was reported once; the rows are defined: NaN for the NaN row's
        // arguments, the pad 0, and the other rows as usual.
        let got = out.download().unwrap();
        let row = &got[2 * dim..3 * dim];
        assert!(row[..dim - 1].iter().all(|v| v.is_nan()) && row[dim - 1] == 0.0, "{}: {row:?}", device.name());
        assert!(got[4 * dim..5 * dim - 1].iter().all(|v| v.is_nan()));
        let mut want = vec![0f32; 2 * dim];
        reference::timestep_embedding(&t[..2], dim, DEFAULT_MAX_PERIOD, &mut want).unwrap();
        let (g, w): (Vec<f64>, Vec<f64>) =
            (got[..2 * dim].iter().map(|&v| v as f64).collect(), want.iter().map(|&v| v as f64).collect());
        common::assert_close(&device.name(), &g, &w, DType::F32, 1);
    }
}

#[test]
fn timestep_bad_arguments_are_typed_errors() {
    let device = Device::emulator();
    let other = Device::emulator();
    let t = device.upload(&[1.0f32, 2.0]).unwrap();
    let mut out = device.zeros::<f32>(2 * 8).unwrap();
    let arg = |r: tessera::Result<()>| match r {
        Err(Error::InvalidArgument { arg, .. }) => arg,
        Err(Error::LengthMismatch { arg, .. }) => arg,
        Err(Error::WrongDevice { arg, .. }) => arg,
        other => panic!("expected a typed argument error, got {other:?}"),
    };
    for mp in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(arg(timestep_embedding_into(&device, &t, 8, mp, &mut out)), "max_period");
    }
    let mut empty = device.zeros::<f32>(0).unwrap();
    assert_eq!(arg(timestep_embedding_into(&device, &t, 0, DEFAULT_MAX_PERIOD, &mut empty)), "dim");
    assert!(matches!(timestep_embedding::<f32>(&device, &t, 0, 1e4), Err(Error::InvalidArgument { arg: "dim", .. })));
    let mut short = device.zeros::<f32>(15).unwrap();
    let r = timestep_embedding_into(&device, &t, 8, DEFAULT_MAX_PERIOD, &mut short);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "out", expected: 16, actual: 15 })), "{r:?}");
    let foreign = other.upload(&[1.0f32, 2.0]).unwrap();
    assert_eq!(arg(timestep_embedding_into(&device, &foreign, 8, DEFAULT_MAX_PERIOD, &mut out)), "t");
    let mut foreign_out = other.zeros::<f32>(16).unwrap();
    assert_eq!(arg(timestep_embedding_into(&device, &t, 8, DEFAULT_MAX_PERIOD, &mut foreign_out)), "out");
}

// ---- label embedding ---------------------------------------------------------------------------

fn table<T: FloatElement>(rows: usize, dim: usize, seed: u64) -> Vec<T> {
    let mut rng = Rng(seed);
    (0..rows * dim).map(|_| T::from_f32((rng.int(-1000, 1000) as f32) / 64.0)).collect()
}

fn run_label<T: FloatElement>(
    device: &Device,
    kernel: LabelEmbeddingKernel,
    labels: &[u32],
    table: &[T],
    num_classes: usize,
    dim: usize,
) -> tessera::Result<Vec<T>> {
    let l = device.upload(labels)?;
    let tb = device.upload(table)?;
    let mut out = device.upload(&vec![T::from_f32(f32::NAN); labels.len() * dim])?;
    label_embedding_into_using(device, kernel, &l, &tb, num_classes, dim, &mut out)?;
    out.download()
}

fn check_label<T: FloatElement>(labels: &[u32], num_classes: usize, dim: usize) {
    let tab = table::<T>(num_classes + 1, dim, (num_classes * 131 + dim) as u64);
    let mut want = vec![T::default(); labels.len() * dim];
    reference::label_embedding(labels, &tab, num_classes, dim, &mut want).expect("labels in range");
    for device in all_devices() {
        for kernel in [LabelEmbeddingKernel::Simple, LabelEmbeddingKernel::Warp] {
            let got = run_label(&device, kernel, labels, &tab, num_classes, dim).unwrap();
            assert_eq!(
                bits(&got),
                bits(&want),
                "{kernel:?} {:?} classes {num_classes} dim {dim} on {}",
                T::DTYPE,
                device.name()
            );
        }
    }
}

fn label_case() -> impl Strategy<Value = (Vec<u32>, usize, usize)> {
    (0usize..40, prop_oneof![prop::sample::select(vec![1usize, 2, 3, 7, 8, 64, 255, 256, 1152]), 1usize..100])
        .prop_flat_map(|(classes, dim)| {
            // Labels in range, the null class (num_classes) drawn often.
            let label = prop_oneof![3 => 0..=classes as u32, 1 => Just(classes as u32)];
            (prop::collection::vec(label, 0..40), Just(classes), Just(dim))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn label_f32_matches_reference((labels, classes, dim) in label_case()) {
        check_label::<f32>(&labels, classes, dim);
    }

    #[test]
    fn label_f16_matches_reference((labels, classes, dim) in label_case()) {
        check_label::<f16>(&labels, classes, dim);
    }

    #[test]
    fn label_bf16_matches_reference((labels, classes, dim) in label_case()) {
        check_label::<bf16>(&labels, classes, dim);
    }
}

/// DiT's shape: 1000 classes plus the null class, D = 1152, the null class included.
#[test]
fn label_embedding_dit_shape_with_null_class() {
    let labels: Vec<u32> = (0..24u32).map(|i| if i % 5 == 0 { 1000 } else { i * 41 % 1000 }).collect();
    check_label::<bf16>(&labels, 1000, 1152);
    check_label::<f32>(&labels[..6], 1000, 1152);
}

/// Views of the table and of the output at element offsets: unaligned ones take the
/// element copies; nothing outside the output view is written.
#[test]
fn label_embedding_views_at_any_offset() {
    let (classes, dim) = (5usize, 16usize);
    let tab = table::<f32>(classes + 2, dim, 3);
    let labels = [0u32, 5, 3, 5, 1];
    for device in all_devices() {
        for offset in [0usize, 1, 4] {
            let t = &tab[offset..offset + (classes + 1) * dim];
            let mut want = vec![0f32; labels.len() * dim];
            reference::label_embedding(&labels, t, classes, dim, &mut want).unwrap();
            let tb = device.upload(&tab).unwrap();
            let l = device.upload(&labels).unwrap();
            let n = labels.len() * dim;
            let mut out = device.upload(&vec![f32::NAN; n + 8]).unwrap();
            let table_view = tb.view(offset..offset + (classes + 1) * dim).unwrap();
            label_embedding_into(&device, &l, table_view, classes, dim, out.view_mut(offset..offset + n).unwrap())
                .unwrap();
            let got = out.download().unwrap();
            assert_eq!(bits(&got[offset..offset + n]), bits(&want), "offset {offset} on {}", device.name());
            assert!(got[..offset].iter().chain(&got[offset + n..]).all(|v| v.is_nan()));
        }
    }
}

#[test]
fn out_of_range_label_names_labels_and_its_row() {
    let (classes, dim) = (10usize, 24usize);
    let tab = table::<f16>(classes + 1, dim, 9);
    let mut labels: Vec<u32> = (0..300).map(|i| i % 11).collect();
    labels[123] = 11;
    labels[200] = u32::MAX;
    for device in all_devices() {
        for kernel in [LabelEmbeddingKernel::Simple, LabelEmbeddingKernel::Warp] {
            let l = device.upload(&labels).unwrap();
            let tb = device.upload(&tab).unwrap();
            let mut out = device.upload(&vec![f16::NAN; labels.len() * dim]).unwrap();
            let r = label_embedding_into_using(&device, kernel, &l, &tb, classes, dim, &mut out)
                .and_then(|_| out.download());
            match r {
                Err(Error::InvalidValue { op: "label_embedding", arg: "labels", row: 123, .. }) => {}
                other => panic!(
                    "{kernel:?} on {}: expected InvalidValue naming labels, row 123, got {other:?}",
                    device.name()
                ),
            }
            // The bad rows are zeros, the others their table rows.
            let got = out.download().unwrap();
            for b in [123usize, 200] {
                assert!(got[b * dim..(b + 1) * dim].iter().all(|v| v.to_bits() == 0), "{kernel:?} row {b}");
            }
            assert_eq!(bits(&got[124 * dim..125 * dim]), bits(&tab[(124 % 11) * dim..(124 % 11 + 1) * dim]));
        }
    }
    // The allocating form on the emulator: reported at the download.
    let device = Device::emulator();
    let (l, tb) = (device.upload(&labels).unwrap(), device.upload(&tab).unwrap());
    let r = label_embedding(&device, &l, &tb, classes, dim).and_then(|out| out.download());
    assert!(matches!(r, Err(Error::InvalidValue { arg: "labels", row: 123, .. })), "{r:?}");
}

#[test]
fn label_bad_arguments_are_typed_errors() {
    let device = Device::emulator();
    let other = Device::emulator();
    let labels = device.upload(&[0u32, 3]).unwrap();
    let tab = device.upload(&vec![0.5f32; 4 * 8]).unwrap(); // 3 classes + null, D = 8
    let mut out = device.zeros::<f32>(16).unwrap();
    assert!(label_embedding_into(&device, &labels, &tab, 3, 8, &mut out).is_ok());
    let r = label_embedding_into(&device, &labels, &tab, 4, 8, &mut out);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "table", expected: 40, actual: 32 })), "{r:?}");
    let r = label_embedding_into(&device, &labels, &tab, 3, 0, &mut out);
    assert!(matches!(r, Err(Error::InvalidArgument { arg: "dim", .. })), "{r:?}");
    let mut short = device.zeros::<f32>(15).unwrap();
    let r = label_embedding_into(&device, &labels, &tab, 3, 8, &mut short);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "out", expected: 16, actual: 15 })), "{r:?}");
    let r = label_embedding_into(&device, &labels, &tab, usize::MAX, 8, &mut out);
    assert!(matches!(r, Err(Error::InvalidArgument { arg: "num_classes", .. })), "{r:?}");
    let r = label_embedding_into(&device, &labels, &tab, 1 << 31, 1 << 33, &mut out);
    assert!(matches!(r, Err(Error::InvalidArgument { .. }) | Err(Error::LengthMismatch { .. })), "{r:?}");
    let foreign = other.upload(&[0u32, 3]).unwrap();
    let r = label_embedding_into(&device, &foreign, &tab, 3, 8, &mut out);
    assert!(matches!(r, Err(Error::WrongDevice { arg: "labels", .. })), "{r:?}");
    let foreign_tab = other.upload(&vec![0.5f32; 32]).unwrap();
    let r = label_embedding_into(&device, &labels, &foreign_tab, 3, 8, &mut out);
    assert!(matches!(r, Err(Error::WrongDevice { arg: "table", .. })), "{r:?}");
}

#[test]
fn empty_inputs_give_empty_outputs() {
    for device in all_devices() {
        let t = device.upload::<f32>(&[]).unwrap();
        assert!(timestep_embedding::<bf16>(&device, &t, 256, DEFAULT_MAX_PERIOD).unwrap().is_empty());
        let l = device.upload::<u32>(&[]).unwrap();
        let tab = device.upload(&[1.0f32; 6]).unwrap();
        assert!(label_embedding(&device, &l, &tab, 2, 2).unwrap().is_empty());
    }
}

/// Determinism: on every backend, two runs of each op give the same bits (1,000 rows: many
/// blocks, which the emulator's workers take in varying order); label embeddings equal the
/// Cpu reference bit for bit everywhere; the timestep kernel is a fixed sequence of
/// correctly rounded operations, so the emulator and a GPU agree bit for bit too.
#[test]
fn reruns_are_bit_identical() {
    let t: Vec<f32> = (0..1000).map(|i| (i * 7919 % 1000) as f32 + (i % 4) as f32 * 0.25).collect();
    let labels: Vec<u32> = (0..1000u32).map(|i| i * 37 % 1001).collect();
    let tab = table::<bf16>(1001, 72, 5);
    let mut emulator_ts: Option<Vec<u32>> = None;
    for device in all_devices() {
        let first = run_timestep::<f32>(&device, &t, 256, DEFAULT_MAX_PERIOD, 0).unwrap();
        let again = run_timestep::<f32>(&device, &t, 256, DEFAULT_MAX_PERIOD, 0).unwrap();
        assert_eq!(bits(&first), bits(&again), "timestep reruns on {}", device.name());
        if device.kind() != tessera::BackendKind::Cpu {
            match &emulator_ts {
                None => emulator_ts = Some(bits(&first)),
                Some(e) => assert_eq!(&bits(&first), e, "timestep on {} vs the emulator", device.name()),
            }
        }
        for kernel in [LabelEmbeddingKernel::Simple, LabelEmbeddingKernel::Warp] {
            let a = run_label(&device, kernel, &labels, &tab, 1000, 72).unwrap();
            let b = run_label(&device, kernel, &labels, &tab, 1000, 72).unwrap();
            assert_eq!(bits(&a), bits(&b), "{kernel:?} reruns on {}", device.name());
            let want = run_label(&Device::cpu(), kernel, &labels, &tab, 1000, 72).unwrap();
            assert_eq!(bits(&a), bits(&want), "{kernel:?} on {} vs the Cpu backend", device.name());
        }
    }
}

/// With max_period < 1 the frequencies exceed 1, so a finite t can overflow its argument:
/// that row is flagged too (naming `t`), the rows before it are exact.
#[test]
fn overflowing_argument_names_t_and_its_row() {
    let t = [1.0f32, 3.0e38, 2.0];
    for device in all_devices() {
        let tb = device.upload(&t).unwrap();
        let r = timestep_embedding::<f32>(&device, &tb, 16, 0.5).and_then(|out| out.download());
        assert!(matches!(r, Err(Error::InvalidValue { arg: "t", row: 1, .. })), "{}: {r:?}", device.name());
    }
}
