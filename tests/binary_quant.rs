//! Binary quantizer kernels (kernels/binary_quant.cu: LFQ and BSQ, v1 and tiled) on the
//! emulator — and on a GPU when present — against the CPU reference
//! (src/reference/binary_quant.rs): indices and values exactly (they are sign bits and
//! the constants ±1, ±1/√d rounded to the dtype), the squared error within the tolerance
//! of tests/common (f32 arithmetic, a reduction of length d).

mod common;

use half::{bf16, f16};
use proptest::prelude::*;
use tessera::reference::binary_quant as reference;
use tessera::{BinaryQuantKernel, BinaryQuantOp, BinaryQuantizer, DType, Device, Error, FloatElement};

const KERNELS: [BinaryQuantKernel; 2] = [BinaryQuantKernel::Simple, BinaryQuantKernel::Tiled];
const OPS: [BinaryQuantOp; 2] = [BinaryQuantOp::Lfq, BinaryQuantOp::Bsq];

/// Outputs of one quantize call, downloaded.
#[derive(Debug)]
struct Quantized<T> {
    indices: Vec<u32>,
    values: Vec<T>,
    sq_error: Vec<f32>,
}

fn run_kernel<T: FloatElement>(
    device: &Device,
    kernel: BinaryQuantKernel,
    q: &BinaryQuantizer,
    z: &[T],
) -> tessera::Result<Quantized<T>> {
    let n = z.len() / q.dim();
    let latents = device.upload(z)?;
    let mut indices = device.zeros(n * q.groups())?;
    let mut values = device.zeros(z.len())?;
    let mut sq_error = device.zeros(n)?;
    q.using(kernel).quantize_into(device, &latents, &mut indices, &mut values, &mut sq_error)?;
    Ok(Quantized { indices: indices.download()?, values: values.download()?, sq_error: sq_error.download()? })
}

/// The reference's outputs, and the first invalid row if any (every row is written).
fn run_reference<T: FloatElement>(q: &BinaryQuantizer, z: &[T]) -> (Quantized<T>, Option<usize>) {
    let n = z.len() / q.dim();
    let mut r =
        Quantized { indices: vec![0; n * q.groups()], values: vec![T::default(); z.len()], sq_error: vec![0.0; n] };
    let run = match q.op() {
        BinaryQuantOp::Lfq => reference::lfq::<T>,
        BinaryQuantOp::Bsq => reference::bsq::<T>,
    };
    let status = run(q.dim(), q.group_bits(), z, &mut r.indices, &mut r.values, &mut r.sq_error);
    (r, status.err())
}

fn assert_matches<T: FloatElement>(ctx: &str, q: &BinaryQuantizer, got: &Quantized<T>, want: &Quantized<T>) {
    assert_eq!(got.indices, want.indices, "indices, {ctx}");
    let bits = |v: &[T]| v.iter().map(|x| x.to_f32().to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got.values), bits(&want.values), "values, {ctx}");
    let widen = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    // The error is f32 arithmetic on exactly converted inputs, whatever the dtype.
    common::assert_close(
        &format!("sq_error, {ctx}"),
        &widen(&got.sq_error),
        &widen(&want.sq_error),
        DType::F32,
        q.dim(),
    );
}

fn check_against_reference<T: FloatElement>(op: BinaryQuantOp, dim: usize, group_bits: u32, z32: &[f32]) {
    let q = BinaryQuantizer::new(op, dim, group_bits).unwrap();
    let z: Vec<T> = z32.iter().map(|&v| T::from_f32(v)).collect();
    let (want, bad) = run_reference(&q, &z);
    assert_eq!(bad, None, "these inputs are valid");
    for device in common::kernel_devices("binary_quant") {
        for kernel in KERNELS {
            let got = run_kernel(&device, kernel, &q, &z).unwrap();
            let ctx =
                format!("{op:?} {kernel:?} {:?} on {}, d = {dim}, group_bits = {group_bits}", T::DTYPE, device.name());
            assert_matches(&ctx, &q, &got, &want);
        }
    }
}

/// Dimensions: the edge cases around warp and segment sizes, and any other.
fn dim_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => prop::sample::select(vec![1usize, 2, 7, 8, 16, 17, 18, 24, 31, 32, 33, 36, 64, 100, 257, 1000, 1024]),
        1 => 1usize..=1024,
    ]
}

fn group_bits_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![3 => prop::sample::select(vec![1u32, 5, 16, 31]), 1 => 1u32..=31]
}

/// Rows: N = 0, 1, 300, or any small count; fewer rows for long ones (emulator time).
fn rows_strategy(dim: usize) -> impl Strategy<Value = usize> {
    let many = if dim > 256 { 40 } else { 300 };
    prop_oneof![Just(0usize), Just(1), Just(many), 0usize..70]
}

/// One latent value: mostly moderate, sometimes zero, −0, huge, tiny or subnormal, and
/// ±Inf where the op defines a result (LFQ).
fn latent_value(infinities: bool) -> BoxedStrategy<f32> {
    let mut special =
        vec![0.0f32, -0.0, 1e30, -1e30, 1e-40, -1e-40, f32::from_bits(1), -f32::from_bits(1), f32::MIN_POSITIVE, 1e-7];
    if infinities {
        special.extend([f32::INFINITY, f32::NEG_INFINITY]);
    }
    prop_oneof![6 => -4.0f32..4.0, 1 => prop::sample::select(special)].boxed()
}

/// A row: independent values, or a whole row of one magnitude class (all tiny, all
/// subnormal, all huge, all zero), which BSQ must normalize without overflow/underflow.
fn row_strategy(dim: usize, infinities: bool) -> impl Strategy<Value = Vec<f32>> {
    let scaled =
        |scale: f32| prop::collection::vec(-1.0f32..1.0, dim).prop_map(move |r| r.iter().map(|v| v * scale).collect());
    prop_oneof![
        8 => prop::collection::vec(latent_value(infinities), dim),
        1 => scaled(1e-38),
        1 => scaled(1e-44),
        1 => scaled(3e38),
        1 => Just(vec![0.0f32; dim]),
        1 => Just(vec![-0.0f32; dim]),
    ]
}

fn case(op: BinaryQuantOp) -> impl Strategy<Value = (usize, u32, Vec<f32>)> {
    (dim_strategy(), group_bits_strategy()).prop_flat_map(move |(dim, gb)| {
        let rows = rows_strategy(dim)
            .prop_flat_map(move |n| prop::collection::vec(row_strategy(dim, op == BinaryQuantOp::Lfq), n));
        (Just(dim), Just(gb), rows.prop_map(|r| r.concat()))
    })
}

/// For BSQ, values that overflow the dtype (1e30 in f16) would be ±Inf: clamp them to
/// the dtype's range so that the case stays valid.
fn finite_in<T: FloatElement>(z: &[f32]) -> Vec<f32> {
    let max = if T::DTYPE == DType::F16 { 65504.0 } else { f32::MAX };
    z.iter().map(|&v| v.clamp(-max, max)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn lfq_f32_matches_reference((dim, gb, z) in case(BinaryQuantOp::Lfq)) {
        check_against_reference::<f32>(BinaryQuantOp::Lfq, dim, gb, &z);
    }

    #[test]
    fn lfq_f16_matches_reference((dim, gb, z) in case(BinaryQuantOp::Lfq)) {
        check_against_reference::<f16>(BinaryQuantOp::Lfq, dim, gb, &z);
    }

    #[test]
    fn lfq_bf16_matches_reference((dim, gb, z) in case(BinaryQuantOp::Lfq)) {
        check_against_reference::<bf16>(BinaryQuantOp::Lfq, dim, gb, &z);
    }

    #[test]
    fn bsq_f32_matches_reference((dim, gb, z) in case(BinaryQuantOp::Bsq)) {
        check_against_reference::<f32>(BinaryQuantOp::Bsq, dim, gb, &finite_in::<f32>(&z));
    }

    #[test]
    fn bsq_f16_matches_reference((dim, gb, z) in case(BinaryQuantOp::Bsq)) {
        check_against_reference::<f16>(BinaryQuantOp::Bsq, dim, gb, &finite_in::<f16>(&z));
    }

    #[test]
    fn bsq_bf16_matches_reference((dim, gb, z) in case(BinaryQuantOp::Bsq)) {
        check_against_reference::<bf16>(BinaryQuantOp::Bsq, dim, gb, &finite_in::<bf16>(&z));
    }
}

/// A deterministic mix of signs and magnitudes, including exact zeros and −0.
fn mixed(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| match (i * 7919) % 13 {
            0 => 0.0,
            1 => -0.0,
            k => ((i * 2654435761) % 1000) as f32 / 250.0 - 2.0 + k as f32 * 1e-3,
        })
        .collect()
}

/// Every listed shape, every dtype, both ops, both kernels, on fixed inputs: the shapes
/// are not left to chance.
#[test]
fn listed_shapes_match_reference() {
    // Odd, even, multiple-of-4 and multiple-of-8 dims: every lane-vector width of the
    // fast kernel (1, 2, 4, 8 elements) for every dtype.
    for dim in [1usize, 2, 7, 18, 31, 32, 33, 36, 100, 257, 1024] {
        for gb in [1u32, 5, 16, 31, 3, 7] {
            for n in [0usize, 1, if dim > 256 { 33 } else { 300 }] {
                let z = mixed(n * dim);
                for op in OPS {
                    check_against_reference::<f32>(op, dim, gb, &z);
                    check_against_reference::<bf16>(op, dim, gb, &z);
                    check_against_reference::<f16>(op, dim, gb, &z);
                }
            }
        }
    }
}

/// N = 300 rows of d = 1024 on the fast kernels (many tiles, partial last tile).
#[test]
fn long_rows_many_tiles() {
    let z = mixed(300 * 1024);
    for op in OPS {
        check_against_reference::<bf16>(op, 1024, 16, &z);
    }
}

/// The conventions on a hand-computed example (independent of the reference).
#[test]
fn hand_computed_lfq_and_bsq() {
    let device = Device::emulator();
    // bits 1 0 1 0 0 1 1 → groups of 3: 0b101, 0b100, 0b1 (first dim least significant).
    let z = [1.0f32, -1.0, 2.0, 0.0, -0.0, 0.5, 3.0];
    for kernel in KERNELS {
        let lfq = BinaryQuantizer::lfq(7, 3).unwrap();
        let out = run_kernel(&device, kernel, &lfq, &z).unwrap();
        assert_eq!(out.indices, [5, 4, 1], "{kernel:?}");
        assert_eq!(out.values, [1.0, -1.0, 1.0, -1.0, -1.0, 1.0, 1.0]);
        assert_eq!(out.sq_error, [7.25]);

        // BSQ of [3, −3, 3, 3] (d = 4): u is a vertex, values ±1/2, no error.
        let bsq = BinaryQuantizer::bsq(4, 4).unwrap();
        let out = run_kernel(&device, kernel, &bsq, &[3.0f32, -3.0, 3.0, 3.0]).unwrap();
        assert_eq!(out.indices, [0b1101]);
        assert_eq!(out.values, [0.5, -0.5, 0.5, 0.5]);
        assert_eq!(out.sq_error, [0.0]);
    }
}

/// BSQ of a zero row (also −0): u = 0, all bits 0, values −1/√d, error 1.
#[test]
fn bsq_zero_row() {
    for dim in [1usize, 3, 32, 100] {
        let q = BinaryQuantizer::bsq(dim, 7).unwrap();
        let mut z = vec![0.0f32; dim * 3];
        z[dim..2 * dim].fill(-0.0);
        z[2 * dim] = 5.0; // a non-zero row in between
        for device in [Device::emulator(), Device::cpu()] {
            for kernel in KERNELS {
                let out = run_kernel(&device, kernel, &q, &z).unwrap();
                let c = -(1.0 / (dim as f64).sqrt()) as f32;
                for row in 0..2 {
                    assert!(out.indices[row * q.groups()..(row + 1) * q.groups()].iter().all(|&i| i == 0));
                    assert!(out.values[row * dim..(row + 1) * dim].iter().all(|&v| v == c), "{:?}", &out.values);
                    assert!((out.sq_error[row] - 1.0).abs() < 1e-6, "{}", out.sq_error[row]);
                }
            }
        }
    }
}

/// LFQ defines ±Inf by its sign (error +Inf); BSQ rejects a row with ±Inf.
#[test]
fn infinities() {
    let mut z = vec![0.5f32; 40 * 10];
    z[40 * 3 + 7] = f32::INFINITY;
    z[40 * 6 + 1] = f32::NEG_INFINITY;
    for device in [Device::emulator(), Device::cpu()] {
        for kernel in KERNELS {
            let lfq = BinaryQuantizer::lfq(40, 8).unwrap();
            let out = run_kernel(&device, kernel, &lfq, &z).unwrap();
            assert_eq!(out.sq_error[3], f32::INFINITY);
            assert_eq!(out.sq_error[6], f32::INFINITY);
            assert_eq!(out.sq_error[0], 40.0 * 0.25);
            assert_eq!(out.indices[3 * 5], 0xff); // dims 0..8 of row 3: all positive
            assert_eq!(out.indices[6 * 5], 0xfd); // row 6: dim 1 is −Inf

            let bsq = BinaryQuantizer::bsq(40, 8).unwrap();
            match run_kernel(&device, kernel, &bsq, &z) {
                Err(Error::InvalidValue { arg: "latents", row: 3, .. }) => {}
                other => panic!("{kernel:?} on {}: expected InvalidValue at row 3, got {other:?}", device.name()),
            }
        }
    }
}

#[test]
fn nan_latent_names_the_first_bad_row() {
    for dim in [5usize, 64, 300] {
        let mut z = vec![0.25f32; dim * 600];
        z[dim * 300 + 2] = f32::NAN;
        z[dim * 517] = f32::NAN;
        z[dim * 299 + dim - 1] = f32::NAN;
        z[dim * 598..dim * 599].fill(f32::NAN); // a row of NaN only
        for device in [Device::emulator(), Device::cpu()] {
            for op in OPS {
                for kernel in KERNELS {
                    let q = BinaryQuantizer::new(op, dim, 4).unwrap();
                    match run_kernel(&device, kernel, &q, &z) {
                        Err(Error::InvalidValue { arg: "latents", row: 299, .. }) => {}
                        other => {
                            panic!("{op:?} {kernel:?} on {}, d = {dim}: expected row 299, got {other:?}", device.name())
                        }
                    }
                }
            }
        }
    }
}

/// After an InvalidValue error every row is still written; the bad rows' error is NaN.
#[test]
fn invalid_rows_are_still_written() {
    let dim = 33;
    let mut z = mixed(dim * 50);
    z[dim * 10 + 4] = f32::NAN;
    z[dim * 20 + 32] = f32::NAN;
    z[dim * 30] = f32::INFINITY;
    for op in OPS {
        let q = BinaryQuantizer::new(op, dim, 6).unwrap();
        let (want, bad) = run_reference(&q, &z);
        assert_eq!(bad, Some(10));
        for kernel in KERNELS {
            let device = Device::emulator();
            let latents = device.upload(&z).unwrap();
            let mut indices = device.zeros(50 * q.groups()).unwrap();
            let mut values = device.zeros(z.len()).unwrap();
            let mut sq_error = device.zeros(50).unwrap();
            // The launch does not wait for the device: the NaN is reported by the next
            // synchronizing call, once, and the outputs are readable after it.
            q.using(kernel).quantize_into(&device, &latents, &mut indices, &mut values, &mut sq_error).unwrap();
            let r = device.synchronize();
            assert!(matches!(r, Err(Error::InvalidValue { op: "BinaryQuantizer::quantize", row: 10, .. })), "{r:?}");
            let got = Quantized {
                indices: indices.download().unwrap(),
                values: values.download().unwrap(),
                sq_error: sq_error.download().unwrap(),
            };
            assert_matches(&format!("{op:?} {kernel:?}"), &q, &got, &want);
            assert!(got.sq_error[10].is_nan() && got.sq_error[20].is_nan());
            assert_eq!(got.sq_error[30].is_nan(), op == BinaryQuantOp::Bsq);
        }
    }
}

#[test]
fn empty_input_gives_empty_outputs() {
    for device in [Device::emulator(), Device::cpu()] {
        for op in OPS {
            let q = BinaryQuantizer::new(op, 18, 9).unwrap();
            let latents = device.upload::<f32>(&[]).unwrap();
            let out = q.quantize(&device, &latents).unwrap();
            assert!(out.indices.is_empty() && out.values.is_empty() && out.sq_error.is_empty());
        }
    }
}

#[test]
fn cpu_backend_is_the_reference() {
    let z = mixed(300 * 18);
    for op in OPS {
        let q = BinaryQuantizer::new(op, 18, 5).unwrap();
        let (want, _) = run_reference(&q, &z);
        let got = run_kernel(&Device::cpu(), BinaryQuantKernel::Tiled, &q, &z).unwrap();
        assert_eq!(got.indices, want.indices);
        assert_eq!(got.values, want.values);
        assert_eq!(got.sq_error, want.sq_error);
    }
}

#[test]
fn bad_parameters_are_typed_errors() {
    let arg = |r: tessera::Result<BinaryQuantizer>| match r {
        Err(Error::InvalidArgument { arg, .. }) => arg,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    for op in OPS {
        assert_eq!(arg(BinaryQuantizer::new(op, 0, 4)), "dim");
        assert_eq!(arg(BinaryQuantizer::new(op, 1025, 4)), "dim");
        assert_eq!(arg(BinaryQuantizer::new(op, 16, 0)), "group_bits");
        assert_eq!(arg(BinaryQuantizer::new(op, 16, 32)), "group_bits");
        assert!(BinaryQuantizer::new(op, 1024, 31).is_ok());
        assert!(BinaryQuantizer::new(op, 1, 1).is_ok());
        assert_eq!(BinaryQuantizer::new(op, 100, 31).unwrap().groups(), 4);
    }
}

#[test]
fn wrong_lengths_and_devices_are_typed_errors() {
    let q = BinaryQuantizer::lfq(16, 5).unwrap(); // G = 4
    let device = Device::emulator();
    let other = Device::emulator();
    let latents = device.upload(&vec![0.1f32; 160]).unwrap(); // n = 10
    let mut indices = device.zeros::<u32>(40).unwrap();
    let mut values = device.zeros::<f32>(160).unwrap();
    let mut sq_error = device.zeros::<f32>(10).unwrap();
    assert!(q.quantize_into(&device, &latents, &mut indices, &mut values, &mut sq_error).is_ok());

    let ragged = device.upload(&vec![0.1f32; 161]).unwrap();
    assert!(matches!(q.quantize(&device, &ragged), Err(Error::InvalidArgument { arg: "latents", .. })));

    let mut short = device.zeros::<u32>(39).unwrap();
    let r = q.quantize_into(&device, &latents, &mut short, &mut values, &mut sq_error);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "indices", expected: 40, actual: 39 })), "{r:?}");

    let mut long_values = device.zeros::<f32>(176).unwrap();
    let r = q.quantize_into(&device, &latents, &mut indices, &mut long_values, &mut sq_error);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "values", .. })), "{r:?}");

    let mut few_errors = device.zeros::<f32>(9).unwrap();
    let r = q.quantize_into(&device, &latents, &mut indices, &mut values, &mut few_errors);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "sq_error", .. })), "{r:?}");

    let foreign = other.upload(&vec![0.1f32; 160]).unwrap();
    let r = q.quantize_into(&device, &foreign, &mut indices, &mut values, &mut sq_error);
    assert!(matches!(r, Err(Error::WrongDevice { arg: "latents", .. })), "{r:?}");

    let mut foreign_indices = other.zeros::<u32>(40).unwrap();
    let r = q.quantize_into(&device, &latents, &mut foreign_indices, &mut values, &mut sq_error);
    assert!(matches!(r, Err(Error::WrongDevice { arg: "indices", .. })), "{r:?}");

    let mut foreign_values = other.zeros::<f32>(160).unwrap();
    let r = q.quantize_into(&device, &latents, &mut indices, &mut foreign_values, &mut sq_error);
    assert!(matches!(r, Err(Error::WrongDevice { arg: "values", .. })), "{r:?}");

    let mut foreign_errors = other.zeros::<f32>(10).unwrap();
    let r = q.quantize_into(&device, &latents, &mut indices, &mut values, &mut foreign_errors);
    assert!(matches!(r, Err(Error::WrongDevice { arg: "sq_error", .. })), "{r:?}");

    // The Cpu backend checks the same.
    let cpu = Device::cpu();
    let r = q.quantize_into(&cpu, &latents, &mut indices, &mut values, &mut sq_error);
    assert!(matches!(r, Err(Error::WrongDevice { arg: "latents", .. })), "{r:?}");
}

/// Determinism: on every kernel device, both ops and both kernels run twice on the same
/// 700 rows of d = 100 (three 256-row blocks of the v1 kernels, 9 to 18 row tiles of about
/// 16 KiB for the fast ones, which the emulator's workers take in a varying order) and give the same bits:
/// indices exactly, values and the squared error by `to_bits`. Indices and values also
/// equal the Cpu backend's (the reference) exactly, as `check_against_reference` requires;
/// the squared error is compared with the Cpu backend only within tolerance there, so not
/// here.
#[test]
fn reruns_are_bit_identical() {
    fn same<T: FloatElement>(z32: &[f32], dim: usize) {
        let z: Vec<T> = z32.iter().map(|&v| T::from_f32(v)).collect();
        let bits = |v: &[T]| v.iter().map(|x| x.to_f32().to_bits()).collect::<Vec<_>>();
        let fbits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for op in OPS {
            let q = BinaryQuantizer::new(op, dim, 7).unwrap();
            let want = run_kernel(&Device::cpu(), BinaryQuantKernel::Tiled, &q, &z).unwrap();
            for device in common::kernel_devices("binary_quant") {
                for kernel in KERNELS {
                    let ctx = format!("{op:?} {kernel:?} {:?} on {}", T::DTYPE, device.name());
                    let first = run_kernel(&device, kernel, &q, &z).unwrap();
                    let again = run_kernel(&device, kernel, &q, &z).unwrap();
                    assert_eq!(first.indices, again.indices, "indices differ between runs, {ctx}");
                    assert_eq!(bits(&first.values), bits(&again.values), "values differ between runs, {ctx}");
                    assert_eq!(fbits(&first.sq_error), fbits(&again.sq_error), "sq_error differs between runs, {ctx}");
                    assert_eq!(first.indices, want.indices, "indices vs the Cpu backend, {ctx}");
                    assert_eq!(bits(&first.values), bits(&want.values), "values vs the Cpu backend, {ctx}");
                }
            }
        }
    }
    let (n, dim) = (700, 100);
    let z = mixed(n * dim);
    same::<f32>(&z, dim);
    same::<bf16>(&z, dim);
    same::<f16>(&z, dim);
}
