//! The tile GEMM with its fused epilogues (kernels/gemm.cu) on the emulator — and a GPU when
//! present — against the f64 reference.
//!
//! Shapes are one more than a multiple of every tile size (m, n = 129 for the 128-wide direct
//! tiles, 65 for the 64-wide skinny tiles; k = 33, 129 for the 32-wide k-tiles), so that a
//! tile count rounded down, a dropped last tile or a wrong edge mask fails here.

mod common;

use half::{bf16, f16};
use tessera::reference::gemm as reference;
use tessera::{
    gemm_plan, linear_into, linear_unfused_into, BufferView, Device, DeviceBuffer, Error, FloatElement, GemmEpilogue,
    GemmOptions, GemmPath, GemmShape, LinearOutput, SplitK,
};

use common::Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    None,
    Bias,
    Gelu,
    Silu,
    Gated,
}
const KINDS: [Kind; 5] = [Kind::None, Kind::Bias, Kind::Gelu, Kind::Silu, Kind::Gated];

/// Inputs of one case; values drawn as integers in lo..=hi times `scale`.
struct Case<T> {
    shape: GemmShape,
    x: Vec<T>,
    w: Vec<T>,
    bias: Vec<T>,
    /// `[samples, gate_stride]`, the gate chunk at `gate_offset`.
    gate: Vec<T>,
    gate_offset: usize,
    gate_stride: usize,
    tokens: usize,
    residual: Vec<f32>,
}

fn draw<T: FloatElement>(rng: &mut Rng, len: usize, lo: i64, hi: i64, scale: f32) -> Vec<T> {
    (0..len).map(|_| T::from_f32(rng.int(lo, hi) as f32 * scale)).collect()
}

impl<T: FloatElement> Case<T> {
    /// Integer-valued inputs (|x| ≤ 2, |w| ≤ 1, bias and residual small integers): every
    /// product and partial sum is exact in f32 (and the results in bf16 for k ≤ 120).
    fn integers(shape: GemmShape, seed: u64) -> Self {
        Self::new(shape, seed, (2, 1, 1.0))
    }
    /// Random values of magnitude ~1/√k.
    fn random(shape: GemmShape, seed: u64) -> Self {
        Self::new(shape, seed, (1000, 1000, 1.0 / 1000.0 / (shape.k.max(1) as f32).sqrt().sqrt()))
    }
    fn new(shape: GemmShape, seed: u64, (xr, wr, scale): (i64, i64, f32)) -> Self {
        let mut rng = Rng(seed);
        let GemmShape { m, n, k } = shape;
        let tokens = [1usize, 3, 5].into_iter().rev().find(|t| m % t == 0).unwrap_or(1);
        let samples = m / tokens;
        let gate_stride = 3 * n + 2;
        let gate_offset = n + 1;
        Case {
            shape,
            x: draw(&mut rng, m * k, -xr, xr, scale),
            w: draw(&mut rng, n * k, -wr, wr, scale),
            bias: draw(&mut rng, n, -2, 2, 1.0),
            gate: draw(&mut rng, gate_offset + samples.max(1) * gate_stride, -2, 2, 0.5),
            gate_offset,
            gate_stride,
            tokens,
            residual: (0..m * n).map(|_| rng.int(-3, 3) as f32).collect(),
        }
    }
    fn gate_view<'a>(&self, buf: &'a DeviceBuffer<T>) -> BufferView<'a, T> {
        buf.view(self.gate_offset..).unwrap()
    }
}

fn epilogue<'a, T: FloatElement>(
    kind: Kind,
    bias: BufferView<'a, T>,
    gate: BufferView<'a, T>,
    case: &Case<T>,
) -> GemmEpilogue<'a, T> {
    match kind {
        Kind::None => GemmEpilogue::None,
        Kind::Bias => GemmEpilogue::Bias(bias),
        Kind::Gelu => GemmEpilogue::BiasGelu(bias),
        Kind::Silu => GemmEpilogue::BiasSilu(bias),
        Kind::Gated => {
            GemmEpilogue::GatedResidual { bias, gate, gate_stride: case.gate_stride, tokens_per_sample: case.tokens }
        }
    }
}

fn ref_epilogue<'a, T: FloatElement>(kind: Kind, case: &'a Case<T>) -> reference::Epilogue<'a, T> {
    match kind {
        Kind::None => reference::Epilogue::None,
        Kind::Bias => reference::Epilogue::Bias(&case.bias),
        Kind::Gelu => reference::Epilogue::BiasGelu(&case.bias),
        Kind::Silu => reference::Epilogue::BiasSilu(&case.bias),
        Kind::Gated => reference::Epilogue::Gated {
            bias: &case.bias,
            gate: &case.gate[case.gate_offset..],
            gate_stride: case.gate_stride,
            tokens_per_sample: case.tokens,
        },
    }
}

/// Runs the case on `device`; the output as f64.
fn run<T: FloatElement, O: LinearOutput<T>>(
    device: &Device,
    case: &Case<T>,
    kind: Kind,
    options: &GemmOptions,
) -> Vec<f64> {
    let x = device.upload(&case.x).unwrap();
    let w = device.upload(&case.w).unwrap();
    let bias = device.upload(&case.bias).unwrap();
    let gate = device.upload(&case.gate).unwrap();
    let residual: Vec<O> = case.residual.iter().map(|&v| O::from_f32(v)).collect();
    let mut out = device.upload(&residual).unwrap();
    let epi = epilogue(kind, bias.as_view(), case.gate_view(&gate), case);
    linear_into(device, &x, &w, case.shape, &epi, &mut out, options).unwrap();
    out.download().unwrap().iter().map(|v| v.to_f32() as f64).collect()
}

/// The reference in f64, rounded once to O.
fn want<T: FloatElement, O: FloatElement>(case: &Case<T>, kind: Kind) -> Vec<f64> {
    let GemmShape { m, n, k } = case.shape;
    let mut out: Vec<O> = case.residual.iter().map(|&v| O::from_f32(v)).collect();
    reference::linear(&case.x, &case.w, m, n, k, &ref_epilogue(kind, case), &mut out);
    out.iter().map(|v| v.to_f32() as f64).collect()
}

/// The error bound of a random case: the tolerance rule with |ref| replaced by the sum of
/// |products| behind the element (cancellation leaves |ref| small but not the rounding
/// errors of the sum), plus the rounding of the output.
fn check_random<T: FloatElement, O: FloatElement>(what: &str, case: &Case<T>, kind: Kind, got: &[f64], tf32: bool) {
    let GemmShape { m, n, k } = case.shape;
    let want = want::<T, O>(case, kind);
    let input = if tf32 { tessera::DType::F16 } else { T::DTYPE };
    let (atol, rtol) = common::tolerance(input, k);
    let (_, out_rtol) = common::tolerance(O::DTYPE, 1);
    for r in 0..m {
        for c in 0..n {
            let magnitude: f64 =
                (0..k).map(|i| (case.x[r * k + i].to_f32() as f64 * case.w[c * k + i].to_f32() as f64).abs()).sum();
            // gate ≤ 1, activations have slope ≤ 1.13: the product's error carries through.
            let bound = atol + rtol * magnitude * 1.2 + out_rtol * want[r * n + c].abs() + 1e-30;
            let (g, e) = (got[r * n + c], want[r * n + c]);
            assert!((g - e).abs() <= bound, "{what}: ({r}, {c}) got {g}, want {e} (bound {bound})");
        }
    }
}

const SHAPES: [GemmShape; 5] = [
    GemmShape { m: 129, n: 129, k: 33 },
    GemmShape { m: 65, n: 130, k: 129 }, // 5 k-tiles: every stage of the 3- and 4-stage pipelines is reused
    GemmShape { m: 3, n: 65, k: 40 },    // k % 8 == 0: the 16-byte cp.async path, ragged k-tile
    GemmShape { m: 130, n: 7, k: 1 },
    GemmShape { m: 1, n: 1, k: 0 },
];

fn options(path: GemmPath, split: SplitK) -> GemmOptions {
    GemmOptions { path, split_k: split }
}

/// Bit-exact on every path, dtype, output type and epilogue whose result is an integer.
fn exact<T: FloatElement, O: LinearOutput<T>>(path: GemmPath) {
    for device in common::kernel_devices("gemm").into_iter().chain([Device::cpu()]) {
        for (s, &shape) in SHAPES.iter().enumerate() {
            let case = Case::<T>::integers(shape, 11 + s as u64);
            for split in [SplitK::Direct, SplitK::Splits(1), SplitK::Splits(3), SplitK::Auto] {
                for kind in [Kind::None, Kind::Bias, Kind::Gated] {
                    let got = run::<T, O>(&device, &case, kind, &options(path, split));
                    let what = format!(
                        "{:?}→{:?} {path:?} split {split:?} {kind:?} {shape:?} on {}",
                        T::DTYPE,
                        O::DTYPE,
                        device.name()
                    );
                    assert_eq!(got, want::<T, O>(&case, kind), "{what}");
                }
            }
        }
    }
}

#[test]
fn integer_inputs_are_exact_f32_simt() {
    exact::<f32, f32>(GemmPath::Simt);
}
#[test]
fn integer_inputs_are_exact_f32_tf32() {
    exact::<f32, f32>(GemmPath::Tf32);
}
#[test]
fn integer_inputs_are_exact_f16() {
    exact::<f16, f16>(GemmPath::TensorCore);
    exact::<f16, f32>(GemmPath::TensorCore);
}
#[test]
fn integer_inputs_are_exact_bf16() {
    exact::<bf16, bf16>(GemmPath::TensorCore);
    exact::<bf16, f32>(GemmPath::TensorCore);
}

/// Random inputs, every epilogue, within the tolerance rule.
fn random<T: FloatElement, O: LinearOutput<T>>(path: GemmPath) {
    let tf32 = path == GemmPath::Tf32;
    for device in common::kernel_devices("gemm") {
        for (s, &shape) in SHAPES[..3].iter().enumerate() {
            let case = Case::<T>::random(shape, 100 + s as u64);
            for kind in KINDS {
                for split in [SplitK::Direct, SplitK::Splits(2)] {
                    let got = run::<T, O>(&device, &case, kind, &options(path, split));
                    let what = format!("{:?}→{:?} {path:?} {kind:?} split {split:?} {shape:?}", T::DTYPE, O::DTYPE);
                    check_random::<T, O>(&what, &case, kind, &got, tf32);
                }
            }
        }
    }
}

#[test]
fn random_inputs_every_epilogue_f32() {
    random::<f32, f32>(GemmPath::Simt);
    random::<f32, f32>(GemmPath::Tf32);
}
#[test]
fn random_inputs_every_epilogue_f16() {
    random::<f16, f16>(GemmPath::TensorCore);
    random::<f16, f32>(GemmPath::TensorCore);
}
#[test]
fn random_inputs_every_epilogue_bf16() {
    random::<bf16, bf16>(GemmPath::TensorCore);
    random::<bf16, f32>(GemmPath::TensorCore);
}

/// TF32 rounds its operands: a product of values with low mantissa bits set differs from
/// the exact f32 one (so the TF32 path really runs), and stays within TF32's error.
#[test]
fn tf32_rounds_its_operands() {
    let device = Device::emulator();
    let shape = GemmShape { m: 2, n: 2, k: 1 };
    let v = 1.0 + 2f32.powi(-20);
    let x = device.upload(&[v, v]).unwrap();
    let w = device.upload(&[v, v]).unwrap();
    let mut simt = device.zeros::<f32>(4).unwrap();
    let mut tf32 = device.zeros::<f32>(4).unwrap();
    linear_into(&device, &x, &w, shape, &GemmEpilogue::None, &mut simt, &options(GemmPath::Simt, SplitK::Auto))
        .unwrap();
    linear_into(&device, &x, &w, shape, &GemmEpilogue::None, &mut tf32, &options(GemmPath::Tf32, SplitK::Auto))
        .unwrap();
    assert_eq!(simt.download().unwrap(), vec![v * v; 4]);
    assert_eq!(tf32.download().unwrap(), vec![1.0; 4]);
}

/// The unfused baseline computes the same thing.
#[test]
fn unfused_baseline_agrees() {
    let device = Device::emulator();
    let case = Case::<f32>::random(GemmShape { m: 65, n: 33, k: 17 }, 7);
    let x = device.upload(&case.x).unwrap();
    let w = device.upload(&case.w).unwrap();
    let bias = device.upload(&case.bias).unwrap();
    let gate = device.upload(&case.gate).unwrap();
    for kind in KINDS {
        let mut out = device.upload(&case.residual).unwrap();
        let epi = epilogue(kind, bias.as_view(), case.gate_view(&gate), &case);
        linear_unfused_into(&device, &x, &w, case.shape, &epi, &mut out, &GemmOptions::default()).unwrap();
        let got: Vec<f64> = out.download().unwrap().iter().map(|&v| v as f64).collect();
        check_random::<f32, f32>(&format!("unfused {kind:?}"), &case, kind, &got, false);
    }
}

/// A misaligned view of x (offset by one element) takes the element-wise loader.
#[test]
fn misaligned_views_are_correct() {
    let device = Device::emulator();
    let shape = GemmShape { m: 20, n: 24, k: 64 };
    let case = Case::<f16>::integers(shape, 5);
    let mut padded = vec![f16::ZERO];
    padded.extend_from_slice(&case.x);
    let xbuf = device.upload(&padded).unwrap();
    let w = device.upload(&case.w).unwrap();
    let mut out = device.zeros::<f16>(shape.m * shape.n).unwrap();
    let x = xbuf.view(1..).unwrap();
    linear_into(&device, x, &w, shape, &GemmEpilogue::None, &mut out, &GemmOptions::default()).unwrap();
    let got: Vec<f64> = out.download().unwrap().iter().map(|v| v.to_f32() as f64).collect();
    let zero = Case { residual: vec![0.0; shape.m * shape.n], ..case };
    assert_eq!(got, want::<f16, f16>(&zero, Kind::None));
}

#[test]
fn reruns_are_bit_identical() {
    let device = Device::emulator();
    let case = Case::<bf16>::random(GemmShape { m: 33, n: 129, k: 129 }, 3);
    for split in [SplitK::Direct, SplitK::Splits(3)] {
        let a = run::<bf16, f32>(&device, &case, Kind::Gelu, &options(GemmPath::Auto, split));
        let b = run::<bf16, f32>(&device, &case, Kind::Gelu, &options(GemmPath::Auto, split));
        assert_eq!(a, b, "split {split:?}");
    }
}

#[test]
fn empty_shapes_launch_nothing_and_k0_is_the_bias() {
    let device = Device::emulator();
    let x = device.zeros::<f32>(0).unwrap();
    let w = device.zeros::<f32>(0).unwrap();
    let mut out = device.zeros::<f32>(0).unwrap();
    let opts = GemmOptions::default();
    linear_into(&device, &x, &w, GemmShape { m: 0, n: 5, k: 0 }, &GemmEpilogue::None, &mut out, &opts).unwrap();
    let bias = device.upload(&[1.0f32, -2.0, 3.0]).unwrap();
    let mut out = device.zeros::<f32>(6).unwrap();
    let shape = GemmShape { m: 2, n: 3, k: 0 };
    linear_into(&device, &x, &w, shape, &GemmEpilogue::Bias(bias.as_view()), &mut out, &opts).unwrap();
    assert_eq!(out.download().unwrap(), vec![1.0, -2.0, 3.0, 1.0, -2.0, 3.0]);
}

/// The skinny shapes of DiT (m = batch) take the split-K kernel by default.
#[test]
fn plans_follow_the_shape() {
    let opts = GemmOptions::default();
    let modulation = gemm_plan(tessera::DType::BF16, GemmShape { m: 32, n: 6 * 1152, k: 1152 }, &opts).unwrap();
    assert!(modulation.skinny && modulation.splits > 1, "{modulation:?}");
    let mlp = gemm_plan(tessera::DType::BF16, GemmShape { m: 8192, n: 4608, k: 1152 }, &opts).unwrap();
    assert!(!mlp.skinny, "{mlp:?}");
    let forced =
        gemm_plan(tessera::DType::F32, GemmShape { m: 8, n: 8, k: 64 }, &options(GemmPath::Simt, SplitK::Splits(5)))
            .unwrap();
    assert_eq!((forced.splits, forced.kt_per_split), (2, 1), "at most one split per k-tile");
}

#[test]
fn bad_arguments_are_typed_errors() {
    let device = Device::emulator();
    let shape = GemmShape { m: 4, n: 6, k: 8 };
    let x = device.zeros::<f16>(32).unwrap();
    let w = device.zeros::<f16>(48).unwrap();
    let bias = device.zeros::<f16>(6).unwrap();
    let gate = device.zeros::<f16>(12).unwrap();
    let opts = GemmOptions::default();
    let arg = |r: tessera::Result<()>| match r {
        Err(Error::InvalidArgument { arg, .. }) => arg,
        other => panic!("expected a typed error, got {other:?}"),
    };
    let mut out = device.zeros::<f16>(24).unwrap();
    let short = device.zeros::<f16>(31).unwrap();
    assert_eq!(arg(linear_into(&device, &short, &w, shape, &GemmEpilogue::None, &mut out, &opts)), "x");
    assert_eq!(arg(linear_into(&device, &x, &x, shape, &GemmEpilogue::None, &mut out, &opts)), "w");
    let mut small = device.zeros::<f16>(23).unwrap();
    assert_eq!(arg(linear_into(&device, &x, &w, shape, &GemmEpilogue::None, &mut small, &opts)), "out");
    let b5 = bias.view(..5).unwrap();
    assert_eq!(arg(linear_into(&device, &x, &w, shape, &GemmEpilogue::Bias(b5), &mut out, &opts)), "bias");
    fn gated<'a>(
        bias: &'a DeviceBuffer<f16>,
        gate: BufferView<'a, f16>,
        stride: usize,
        tokens: usize,
    ) -> GemmEpilogue<'a, f16> {
        GemmEpilogue::GatedResidual { bias: bias.as_view(), gate, gate_stride: stride, tokens_per_sample: tokens }
    }
    let g = gate.as_view();
    assert_eq!(arg(linear_into(&device, &x, &w, shape, &gated(&bias, g, 6, 3), &mut out, &opts)), "tokens_per_sample");
    assert_eq!(arg(linear_into(&device, &x, &w, shape, &gated(&bias, g, 6, 0), &mut out, &opts)), "tokens_per_sample");
    assert_eq!(arg(linear_into(&device, &x, &w, shape, &gated(&bias, g, 5, 2), &mut out, &opts)), "gate_stride");
    assert_eq!(
        arg(linear_into(&device, &x, &w, shape, &gated(&bias, g.view(..12).unwrap(), 7, 2), &mut out, &opts)),
        "gate"
    );
    let simt = options(GemmPath::Simt, SplitK::Auto);
    assert_eq!(arg(linear_into(&device, &x, &w, shape, &GemmEpilogue::None, &mut out, &simt)), "options.path");
    let zero_split = options(GemmPath::Auto, SplitK::Splits(0));
    assert_eq!(arg(linear_into(&device, &x, &w, shape, &GemmEpilogue::None, &mut out, &zero_split)), "options.split_k");
    let other = Device::emulator();
    let foreign = other.zeros::<f16>(32).unwrap();
    assert!(linear_into(&device, &foreign, &w, shape, &GemmEpilogue::None, &mut out, &opts).is_err());
}
