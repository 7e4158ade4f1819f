//! The cuBLASLt baseline (`tessera::baseline`): on the Emulator and Cpu backends a typed
//! error, never a panic; argument errors name the argument; on a GPU with libcublasLt (the
//! test skips, and says so, without one) the same results as the Cpu reference.

mod common;

use half::{bf16, f16};
use tessera::baseline::{cublaslt_linear_into, CublasLtElement};
use tessera::{BackendKind, Device, DeviceBuffer, Error, FloatElement, GemmEpilogue, GemmOptions, GemmShape};

const SHAPE: GemmShape = GemmShape { m: 129, n: 72, k: 40 };

/// Small multiples of 1/8: exact in every dtype, so the references agree up to the one rounding.
fn values<T: FloatElement>(len: usize, seed: u64) -> Vec<T> {
    let mut rng = common::Rng(seed);
    (0..len).map(|_| T::from_f32(rng.int(-4, 4) as f32 / 8.0)).collect()
}

struct Operands<T: FloatElement> {
    x: DeviceBuffer<T>,
    w: DeviceBuffer<T>,
    bias: DeviceBuffer<T>,
    gate: DeviceBuffer<T>,
    out: DeviceBuffer<T>,
}

fn operands<T: FloatElement>(device: &Device, shape: GemmShape) -> Operands<T> {
    let GemmShape { m, n, k } = shape;
    Operands {
        x: device.upload(&values::<T>(m * k, 1)).unwrap(),
        w: device.upload(&values::<T>(n * k, 2)).unwrap(),
        bias: device.upload(&values::<T>(n, 3)).unwrap(),
        gate: device.upload(&values::<T>(n, 4)).unwrap(),
        out: device.upload(&values::<T>(m * n, 5)).unwrap(),
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    None,
    Bias,
    Gelu,
}

fn epilogue<T: FloatElement>(kind: Kind, bias: &DeviceBuffer<T>) -> GemmEpilogue<'_, T> {
    match kind {
        Kind::None => GemmEpilogue::None,
        Kind::Bias => GemmEpilogue::Bias(bias.as_view()),
        Kind::Gelu => GemmEpilogue::BiasGelu(bias.as_view()),
    }
}

fn host_backends_unsupported<T: CublasLtElement>() {
    for device in [Device::emulator(), Device::cpu()] {
        let mut o = operands::<T>(&device, SHAPE);
        let before = o.out.download().unwrap();
        for kind in [Kind::None, Kind::Bias, Kind::Gelu] {
            let epi = epilogue(kind, &o.bias);
            let err = cublaslt_linear_into(&device, &o.x, &o.w, SHAPE, &epi, &mut o.out).unwrap_err();
            match err {
                Error::Unsupported { op: "cublaslt_linear_into", backend, .. } => {
                    assert_eq!(backend, device.kind(), "{kind:?} {:?}", T::DTYPE)
                }
                other => panic!("{:?} {kind:?} {:?}: expected Unsupported, got {other:?}", device.kind(), T::DTYPE),
            }
        }
        assert_eq!(o.out.download().unwrap(), before, "out must be left as it was");
    }
}

#[test]
fn emulator_and_cpu_return_unsupported_bf16() {
    host_backends_unsupported::<bf16>();
}

#[test]
fn emulator_and_cpu_return_unsupported_f16() {
    host_backends_unsupported::<f16>();
}

#[test]
fn emulator_and_cpu_return_unsupported_f32() {
    host_backends_unsupported::<f32>();
}

#[test]
fn epilogues_cublaslt_lacks_name_epilogue() {
    for device in [Device::emulator(), Device::cpu()] {
        let mut o = operands::<bf16>(&device, SHAPE);
        let silu = GemmEpilogue::BiasSilu(o.bias.as_view());
        let gated = GemmEpilogue::GatedResidual {
            bias: o.bias.as_view(),
            gate: o.gate.as_view(),
            gate_stride: SHAPE.n,
            tokens_per_sample: SHAPE.m,
        };
        for epi in [silu, gated] {
            match cublaslt_linear_into(&device, &o.x, &o.w, SHAPE, &epi, &mut o.out) {
                Err(Error::InvalidArgument { arg: "epilogue", .. }) => {}
                other => panic!("{:?} {epi:?}: expected InvalidArgument(epilogue), got {other:?}", device.kind()),
            }
        }
    }
}

#[test]
fn bad_arguments_are_named() {
    let device = Device::emulator();
    let mut o = operands::<bf16>(&device, SHAPE);
    let short_x = o.x.view(1..).unwrap();
    let err = cublaslt_linear_into(&device, short_x, &o.w, SHAPE, &GemmEpilogue::None, &mut o.out).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { arg: "x", .. }), "{err:?}");
    let short_bias = GemmEpilogue::Bias(o.bias.view(1..).unwrap());
    let err = cublaslt_linear_into(&device, &o.x, &o.w, SHAPE, &short_bias, &mut o.out).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { arg: "bias", .. }), "{err:?}");
    let other = Device::emulator();
    let w_elsewhere = other.upload(&o.w.download().unwrap()).unwrap();
    let err = cublaslt_linear_into(&device, &o.x, &w_elsewhere, SHAPE, &GemmEpilogue::None, &mut o.out).unwrap_err();
    assert!(matches!(err, Error::WrongDevice { arg: "w", .. }), "{err:?}");
    let no_k = GemmShape { k: 0, ..SHAPE };
    let empty = device.zeros::<bf16>(0).unwrap();
    let err = cublaslt_linear_into(&device, &empty, &empty, no_k, &GemmEpilogue::None, &mut o.out).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { arg: "shape.k", .. }), "{err:?}");
}

/// On a GPU: cuBLASLt against tessera's Cpu reference, for each epilogue it has.
fn matches_reference<T: CublasLtElement + tessera::LinearOutput<T>>(gpu: &Device) -> bool {
    let cpu = Device::cpu();
    let (mut g, mut c) = (operands::<T>(gpu, SHAPE), operands::<T>(&cpu, SHAPE));
    for kind in [Kind::None, Kind::Bias, Kind::Gelu] {
        match cublaslt_linear_into(gpu, &g.x, &g.w, SHAPE, &epilogue(kind, &g.bias), &mut g.out) {
            Ok(()) => {}
            Err(e @ Error::Unsupported { .. }) => {
                eprintln!("cublaslt: the Cuda checks are skipped ({e})");
                return false;
            }
            Err(e) => panic!("{kind:?} {:?}: {e}", T::DTYPE),
        }
        let epi = epilogue(kind, &c.bias);
        tessera::linear_into(&cpu, &c.x, &c.w, SHAPE, &epi, &mut c.out, &GemmOptions::default()).unwrap();
        let got: Vec<f64> = g.out.download().unwrap().iter().map(|v| v.to_f32() as f64).collect();
        let want: Vec<f64> = c.out.download().unwrap().iter().map(|v| v.to_f32() as f64).collect();
        common::assert_close(&format!("cublaslt {kind:?} {:?}", T::DTYPE), &got, &want, T::DTYPE, SHAPE.k);
    }
    // A view that does not start 256-byte aligned is refused, naming it.
    let mut padded = vec![T::from_f32(0.0); 8];
    padded.extend(g.x.download().unwrap());
    let padded = gpu.upload(&padded).unwrap();
    let err =
        cublaslt_linear_into(gpu, padded.view(8..).unwrap(), &g.w, SHAPE, &GemmEpilogue::None, &mut g.out).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { arg: "x", .. }), "{err:?}");
    true
}

#[test]
fn cuda_matches_the_reference_when_present() {
    let gpu = match Device::cuda(0) {
        Ok(gpu) => gpu,
        Err(e) => {
            eprintln!("cublaslt: the Cuda checks are skipped ({e})");
            return;
        }
    };
    assert_eq!(gpu.kind(), BackendKind::Cuda);
    if matches_reference::<bf16>(&gpu) {
        matches_reference::<f16>(&gpu);
    }
}
