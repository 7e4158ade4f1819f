//! FSQ kernels (kernels/fsq.cu) on the emulator — and on a GPU when present — against
//! the CPU reference (src/reference/fsq.rs): codes and indices exactly on every device,
//! values exactly on the emulator (same rounding steps).

mod common;

use half::{bf16, f16};
use proptest::prelude::*;
use tessera::reference::fsq as reference;
use tessera::{BackendKind, Device, Error, FloatElement, Fsq, FsqKernel};

/// Outputs of one quantize call, downloaded.
struct Quantized<T> {
    codes: Vec<i32>,
    values: Vec<T>,
    indices: Vec<u32>,
}

fn run_kernel<T: FloatElement>(
    device: &Device,
    kernel: FsqKernel,
    fsq: &Fsq,
    z: &[T],
) -> tessera::Result<Quantized<T>> {
    let n = z.len() / fsq.dim();
    let latents = device.upload(z)?;
    let mut codes = device.zeros(z.len())?;
    let mut values = device.zeros(z.len())?;
    let mut indices = device.zeros(n)?;
    fsq.using(kernel).quantize_into(device, &latents, &mut codes, &mut values, &mut indices)?;
    Ok(Quantized { codes: codes.download()?, values: values.download()?, indices: indices.download()? })
}

fn run_reference<T: FloatElement>(fsq: &Fsq, z: &[T]) -> Result<Quantized<T>, usize> {
    let n = z.len() / fsq.dim();
    let mut q = Quantized { codes: vec![0; z.len()], values: vec![T::default(); z.len()], indices: vec![0; n] };
    reference::quantize(fsq.levels(), z, &mut q.codes, &mut q.values, &mut q.indices)?;
    Ok(q)
}

fn check_against_reference<T: FloatElement>(levels: &[u32], z32: &[f32]) {
    let fsq = Fsq::new(levels).unwrap();
    let z: Vec<T> = z32.iter().map(|&v| T::from_f32(v)).collect();
    let zf: Vec<f32> = z.iter().map(|v| v.to_f32()).collect();
    let want = run_reference(&fsq, &z).expect("no NaN in these inputs");
    for device in common::kernel_devices("fsq") {
        for kernel in [FsqKernel::Simple, FsqKernel::Tiled] {
            let got = run_kernel(&device, kernel, &fsq, &z).unwrap();
            let ctx = format!("{kernel:?} on {} with levels {levels:?}", device.name());
            // Codes and indices are exact on every device: the kernels count thresholds
            // that the host computed with the reference formula itself.
            for (i, (&g, &w)) in got.codes.iter().zip(&want.codes).enumerate() {
                assert_eq!(g, w, "code {i} (z = {:e}), {ctx}", zf[i]);
            }
            assert_eq!(got.indices, want.indices, "indices, {ctx}");
            if device.kind() == BackendKind::Emulator {
                let bits = |v: &[T]| v.iter().map(|x| x.to_f32().to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got.values), bits(&want.values), "values, {ctx}");
            } else {
                // Recompute what the reference gives for the device's codes.
                let recomputed: Vec<f64> = got
                    .codes
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| T::from_f32(c as f32 / (levels[i % levels.len()] / 2) as f32).to_f32() as f64)
                    .collect();
                let values: Vec<f64> = got.values.iter().map(|v| v.to_f32() as f64).collect();
                common::assert_close(&ctx, &values, &recomputed, T::DTYPE, 1);
            }
        }
    }
}

/// Levels drawn like real FSQ configurations: 1 to 8 dimensions, 2 to 17 levels each
/// (odd and even), product below 2^31.
fn levels_strategy() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(2u32..=17, 1..=8)
        .prop_filter("product < 2^31", |l| l.iter().map(|&x| x as u64).product::<u64>() < 1 << 31)
}

/// A latent value: mostly moderate, sometimes huge, infinite, or placed exactly on a
/// rounding boundary of the bounded value.
fn latent_value() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -4.0f32..4.0,
        1 => prop_oneof![Just(f32::INFINITY), Just(f32::NEG_INFINITY), Just(0.0), Just(-0.0), Just(1e30), Just(-1e30), Just(f32::MIN_POSITIVE)],
        1 => (-20.0f32..20.0).prop_map(|v| v.round() / 2.0),
    ]
}

fn case() -> impl Strategy<Value = (Vec<u32>, Vec<f32>)> {
    (levels_strategy(), 0usize..700).prop_flat_map(|(levels, n)| {
        let d = levels.len();
        (Just(levels), prop::collection::vec(latent_value(), n * d))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn quantize_f32_matches_reference((levels, z) in case()) {
        check_against_reference::<f32>(&levels, &z);
    }

    #[test]
    fn quantize_f16_matches_reference((levels, z) in case()) {
        check_against_reference::<f16>(&levels, &z);
    }

    #[test]
    fn quantize_bf16_matches_reference((levels, z) in case()) {
        check_against_reference::<bf16>(&levels, &z);
    }
}

/// Values whose bounded value lands exactly on x.5 exercise round-half-to-even.
#[test]
fn round_half_to_even_at_boundaries() {
    let levels = [8u32, 5, 7, 6];
    let mut z = Vec::new();
    // For each dimension, latents that make `bounded` as close to k + 0.5 as f32 allows.
    for k in -3..3 {
        for (j, &l) in levels.iter().enumerate() {
            let c = reference::dim_constants(l);
            let target = k as f32 + 0.5;
            let t = ((target + c.offset) / c.half_l).clamp(-0.999_999, 0.999_999);
            let zj = t.atanh() - c.shift;
            let mut row = vec![0.0f32; levels.len()];
            row[j] = zj;
            z.extend(row);
        }
    }
    check_against_reference::<f32>(&levels, &z);
}

/// Large levels (many thresholds, up to the 512 limit) against the reference: latents
/// swept densely over the active range, placed next to every rounding boundary, and
/// arbitrary bit patterns; f32 and bf16.
#[test]
fn large_levels_match_reference() {
    for levels in [vec![513u32], vec![256], vec![255, 31, 31, 31], vec![100, 2, 17, 65]] {
        let d = levels.len();
        let mut z = Vec::new();
        for i in 0..4000 {
            for j in 0..d {
                z.push((i as f32 / 4000.0 - 0.5) * 12.0 + j as f32 * 1e-3);
            }
        }
        let max = *levels.iter().max().unwrap() as i32;
        for k in -max / 2 - 1..=max / 2 {
            for j in 0..d {
                let c = reference::dim_constants(levels[j]);
                let t = ((k as f32 + 0.5 + c.offset) / c.half_l).clamp(-0.999_999_9, 0.999_999_9);
                let b = t.atanh() - c.shift;
                for ulps in -2i32..=2 {
                    let mut row = vec![0.0f32; d];
                    row[j] = f32::from_bits((b.to_bits() as i32 + ulps) as u32);
                    z.extend(row);
                }
            }
        }
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        while z.len() % d != 0 || z.len() < 40_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let v = f32::from_bits(s as u32);
            z.push(if v.is_nan() { 1.0 } else { v });
        }
        check_against_reference::<f32>(&levels, &z);
        check_against_reference::<bf16>(&levels, &z);
    }
}

/// Every token of several small level sets survives index → codes → latent → index,
/// through both kernels.
#[test]
fn every_index_round_trips() {
    let device = Device::emulator();
    for levels in
        [vec![2u32], vec![3], vec![8, 5, 5, 5], vec![7, 5, 3], vec![2, 2, 2, 2, 2], vec![16, 16, 16], vec![4, 3, 2, 9]]
    {
        let fsq = Fsq::new(&levels).unwrap();
        let all: Vec<u32> = (0..fsq.codebook_size()).collect();
        let indices = device.upload(&all).unwrap();
        let decoded = fsq.dequantize::<f32>(&device, &indices).unwrap();
        let codes = decoded.codes.download().unwrap();

        // Reference decoding agrees exactly.
        let mut ref_codes = vec![0; codes.len()];
        let mut ref_values = vec![0f32; codes.len()];
        reference::dequantize(&levels, &all, &mut ref_codes, &mut ref_values).unwrap();
        assert_eq!(codes, ref_codes, "codes of {levels:?}");
        let values = decoded.values.download().unwrap();
        assert_eq!(values, ref_values, "values of {levels:?}");

        // A latent whose bounded value is exactly the code quantizes back to it.
        let z: Vec<f32> = codes
            .iter()
            .enumerate()
            .map(|(i, &code)| {
                let c = reference::dim_constants(levels[i % levels.len()]);
                ((code as f32 + c.offset) / c.half_l).atanh() - c.shift
            })
            .collect();
        for kernel in [FsqKernel::Simple, FsqKernel::Tiled] {
            let back = run_kernel(&device, kernel, &fsq, &z).unwrap();
            assert_eq!(back.indices, all, "{kernel:?} round trip of {levels:?}");
            assert_eq!(back.codes, codes);
        }
    }
}

#[test]
fn empty_input_gives_empty_outputs() {
    let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
    for device in [Device::emulator(), Device::cpu()] {
        let latents = device.upload::<f32>(&[]).unwrap();
        let out = fsq.quantize(&device, &latents).unwrap();
        assert!(out.codes.is_empty() && out.values.is_empty() && out.indices.is_empty());
        let none = device.upload::<u32>(&[]).unwrap();
        let dec = fsq.dequantize::<f32>(&device, &none).unwrap();
        assert!(dec.codes.is_empty() && dec.values.is_empty());
    }
}

#[test]
fn cpu_backend_is_the_reference() {
    let fsq = Fsq::new(&[7, 6, 5]).unwrap();
    let z: Vec<f32> = (0..300).map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0).collect();
    let want = run_reference(&fsq, &z).unwrap();
    let got = run_kernel(&Device::cpu(), FsqKernel::Tiled, &fsq, &z).unwrap();
    assert_eq!(got.indices, want.indices);
    assert_eq!(got.codes, want.codes);
}

#[test]
fn bad_levels_are_typed_errors() {
    let arg = |r: tessera::Result<Fsq>| match r {
        Err(Error::InvalidArgument { arg, .. }) => arg,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert_eq!(arg(Fsq::new(&[])), "levels");
    assert_eq!(arg(Fsq::new(&[8, 1, 5])), "levels");
    assert_eq!(arg(Fsq::new(&[0])), "levels");
    assert_eq!(arg(Fsq::new(&[2; 17])), "levels");
    assert_eq!(arg(Fsq::new(&[1 << 16, 1 << 15])), "levels"); // product = 2^31
    assert!(Fsq::new(&[2; 16]).is_ok());
    // Σ (L − 1) thresholds must fit the kernel parameters' FSQ_MAX_THRESHOLDS = 512.
    assert_eq!(tessera::FSQ_MAX_THRESHOLDS, 512);
    assert_eq!(arg(Fsq::new(&[(1 << 16) - 1, 1 << 15])), "levels"); // product < 2^31, too many thresholds
    assert_eq!(arg(Fsq::new(&[514])), "levels");
    assert_eq!(arg(Fsq::new(&[257, 258])), "levels");
    assert!(Fsq::new(&[513]).is_ok());
    assert!(Fsq::new(&[257, 257]).is_ok());
    assert!(Fsq::new(&[255, 31, 31, 31]).is_ok());
}

#[test]
fn nan_latent_names_the_first_bad_row() {
    let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
    let mut z = vec![0.25f32; 4 * 600];
    z[4 * 300 + 2] = f32::NAN;
    z[4 * 517] = f32::NAN;
    z[4 * 299 + 3] = f32::NAN;
    for device in [Device::emulator(), Device::cpu()] {
        for kernel in [FsqKernel::Simple, FsqKernel::Tiled] {
            match run_kernel(&device, kernel, &fsq, &z) {
                Err(Error::InvalidValue { arg: "latents", row: 299, .. }) => {}
                Err(other) => panic!("{kernel:?} on {}: unexpected {other}", device.name()),
                Ok(_) => panic!("{kernel:?} on {}: NaN accepted", device.name()),
            }
        }
    }
}

#[test]
fn out_of_range_index_names_its_row() {
    let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
    let mut idx: Vec<u32> = (0..700).map(|i| i % 1000).collect();
    idx[411] = 1000;
    idx[650] = u32::MAX;
    for device in [Device::emulator(), Device::cpu()] {
        let indices = device.upload(&idx).unwrap();
        // On the emulator (as on a GPU) the kernel's finding arrives with the download.
        match fsq.dequantize::<f16>(&device, &indices).and_then(|out| out.codes.download()) {
            Err(Error::InvalidValue { op: "Fsq::dequantize", arg: "indices", row: 411, .. }) => {}
            other => panic!("{}: expected InvalidValue at row 411, got {other:?}", device.name()),
        }
    }
}

#[test]
fn wrong_lengths_and_devices_are_typed_errors() {
    let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
    let device = Device::emulator();
    let other = Device::emulator();
    let latents = device.upload(&[0.1f32; 40]).unwrap(); // n = 10
    let mut codes = device.zeros::<i32>(40).unwrap();
    let mut values = device.zeros::<f32>(40).unwrap();
    let mut indices = device.zeros::<u32>(10).unwrap();

    let ragged = device.upload(&[0.1f32; 41]).unwrap();
    assert!(matches!(fsq.quantize(&device, &ragged), Err(Error::InvalidArgument { arg: "latents", .. })));

    let mut short_codes = device.zeros::<i32>(39).unwrap();
    let r = fsq.quantize_into(&device, &latents, &mut short_codes, &mut values, &mut indices);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "codes", expected: 40, actual: 39 })), "{r:?}");

    let mut long_values = device.zeros::<f32>(44).unwrap();
    let r = fsq.quantize_into(&device, &latents, &mut codes, &mut long_values, &mut indices);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "values", .. })), "{r:?}");

    let mut few_indices = device.zeros::<u32>(9).unwrap();
    let r = fsq.quantize_into(&device, &latents, &mut codes, &mut values, &mut few_indices);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "indices", .. })), "{r:?}");

    let foreign = other.upload(&[0.1f32; 40]).unwrap();
    let r = fsq.quantize_into(&device, &foreign, &mut codes, &mut values, &mut indices);
    assert!(matches!(r, Err(Error::WrongDevice { arg: "latents", .. })), "{r:?}");

    let mut foreign_idx = other.zeros::<u32>(10).unwrap();
    let r = fsq.quantize_into(&device, &latents, &mut codes, &mut values, &mut foreign_idx);
    assert!(matches!(r, Err(Error::WrongDevice { arg: "indices", .. })), "{r:?}");

    let idx = device.upload(&[0u32; 10]).unwrap();
    let r = fsq.dequantize_into(&device, &idx, &mut short_codes, &mut values);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "codes", .. })), "{r:?}");
}

#[test]
fn cuda_without_gpu_is_an_error_not_a_panic() {
    match Device::cuda(0) {
        Ok(dev) => eprintln!("GPU present: {}", dev.selection_note()),
        Err(e) => assert!(matches!(e, Error::CudaUnavailable(_)), "{e}"),
    }
    let best = Device::best();
    assert!(!best.selection_note().is_empty());
}

/// Tokens produced by the real `FSQ` module of vector-quantize-pytorch (CPU, float32),
/// see tests/fixtures/gen_fsq_vector_quantize_pytorch.py: the kernels must reproduce
/// every code and index, including boundary-adjacent latents and ±Inf.
#[test]
fn reproduces_vector_quantize_pytorch_tokens() {
    let text = include_str!("fixtures/fsq_vector_quantize_pytorch.txt");
    // (levels, latents, codes, indices) of one level set.
    type Case = (Vec<u32>, Vec<f32>, Vec<i32>, Vec<u32>);
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let parts: Vec<&str> = line.split('|').collect();
        let levels: Vec<u32> = parts[0].split(',').map(|v| v.parse().unwrap()).collect();
        let z = parts[1].split(',').map(|h| f32::from_bits(u32::from_str_radix(h, 16).unwrap()));
        let codes = parts[2].split(',').map(|v| v.parse::<i32>().unwrap());
        let index: u32 = parts[3].parse().unwrap();
        match cases.last_mut() {
            Some(case) if case.0 == levels => {
                case.1.extend(z);
                case.2.extend(codes);
                case.3.push(index);
            }
            _ => cases.push((levels, z.collect(), codes.collect(), vec![index])),
        }
    }
    assert_eq!(cases.len(), 6);
    for (levels, z, codes, indices) in &cases {
        let fsq = Fsq::new(levels).unwrap();
        for device in [Device::emulator(), Device::cpu()] {
            for kernel in [FsqKernel::Simple, FsqKernel::Tiled] {
                let got = run_kernel(&device, kernel, &fsq, z).unwrap();
                assert_eq!(&got.codes, codes, "{kernel:?} on {}, levels {levels:?}", device.name());
                assert_eq!(&got.indices, indices, "{kernel:?} on {}, levels {levels:?}", device.name());
            }
        }
    }
}

/// Determinism: on every kernel device, both quantize kernels and the dequantize kernel run
/// twice on the same inputs (1,500 rows: six 256-row blocks, which the emulator's workers
/// take in an order that varies from run to run) and give the same bits: codes and indices
/// exactly, values by `to_bits`. On the emulator the outputs also equal the Cpu backend's
/// (the reference) bit for bit, as `check_against_reference` and `every_index_round_trips`
/// already require; on a GPU only codes and indices are exact against it.
#[test]
fn reruns_are_bit_identical() {
    fn same<T: FloatElement>(levels: &[u32], z32: &[f32]) {
        let fsq = Fsq::new(levels).unwrap();
        let z: Vec<T> = z32.iter().map(|&v| T::from_f32(v)).collect();
        let bits = |v: &[T]| v.iter().map(|x| x.to_f32().to_bits()).collect::<Vec<_>>();
        let cpu = Device::cpu();
        let want = run_kernel(&cpu, FsqKernel::Tiled, &fsq, &z).unwrap();
        let dequantize = |device: &Device, indices: &[u32]| {
            let out = fsq.dequantize::<T>(device, &device.upload(indices).unwrap()).unwrap();
            (out.codes.download().unwrap(), out.values.download().unwrap())
        };
        let want_dec = dequantize(&cpu, &want.indices);
        for device in common::kernel_devices("fsq") {
            for kernel in [FsqKernel::Simple, FsqKernel::Tiled] {
                let ctx = format!("{kernel:?} {:?} on {} with levels {levels:?}", T::DTYPE, device.name());
                let first = run_kernel(&device, kernel, &fsq, &z).unwrap();
                let again = run_kernel(&device, kernel, &fsq, &z).unwrap();
                assert_eq!(first.codes, again.codes, "codes differ between runs, {ctx}");
                assert_eq!(first.indices, again.indices, "indices differ between runs, {ctx}");
                assert_eq!(bits(&first.values), bits(&again.values), "values differ between runs, {ctx}");
                assert_eq!(first.codes, want.codes, "codes vs the Cpu backend, {ctx}");
                assert_eq!(first.indices, want.indices, "indices vs the Cpu backend, {ctx}");
                if device.kind() == BackendKind::Emulator {
                    assert_eq!(bits(&first.values), bits(&want.values), "values vs the Cpu backend, {ctx}");
                }
            }
            let ctx = format!("dequantize {:?} on {} with levels {levels:?}", T::DTYPE, device.name());
            let first = dequantize(&device, &want.indices);
            let again = dequantize(&device, &want.indices);
            assert_eq!(first.0, again.0, "codes differ between runs, {ctx}");
            assert_eq!(bits(&first.1), bits(&again.1), "values differ between runs, {ctx}");
            assert_eq!(first.0, want_dec.0, "codes vs the Cpu backend, {ctx}");
            if device.kind() == BackendKind::Emulator {
                assert_eq!(bits(&first.1), bits(&want_dec.1), "values vs the Cpu backend, {ctx}");
            }
        }
    }
    let levels = [8u32, 5, 5, 5];
    let z: Vec<f32> = (0..1500 * 4).map(|i| ((i * 7919 % 4001) as f32 - 2000.0) / 500.0).collect();
    same::<f32>(&levels, &z);
    same::<bf16>(&levels, &z);
    same::<f16>(&[7, 6, 5], &z[..1500 * 3]);
}
