//! Patch embedding and unpatchify (kernels/patchify.cu) on the emulator — and a GPU when
//! present — against the f64 reference and against PyTorch/diffusers fixtures.
//!
//! Shapes are ragged against the 128×128×32 tiles: B·T = 129 tokens, D = 65 or 129,
//! K = C·p·p = 12 (p = 2) and 192 (p = 8), patches p = 1, 2, 8, 14, 16.

mod common;

use common::fixture::Fixture;
use common::Rng;
use half::{bf16, f16};
use tessera::reference::patchify as reference;
use tessera::{
    patchify_image_into, patchify_latents_into, patchify_unfused_into, sincos_pos_embed_2d, unpatchify_image_into,
    unpatchify_latents_into, Device, Error, FloatElement, ImageNorm, PatchInput, PatchShape,
};

fn shape(batch: usize, channels: usize, gh: usize, gw: usize, patch: usize, dim: usize) -> PatchShape {
    PatchShape { batch, channels, height: gh * patch, width: gw * patch, patch, dim }
}

/// (B, C, grid_h, grid_w, p, D): ragged in every tile dimension, every patch size.
const SHAPES: [(usize, usize, usize, usize, usize, usize); 5] = [
    (1, 3, 3, 43, 2, 65), // B·T = 129, K = 12
    (2, 3, 2, 3, 8, 129), // K = 192, D = 129
    (1, 4, 5, 7, 1, 33),  // p = 1
    (1, 3, 2, 2, 14, 40), // p = 14, K = 588
    (1, 3, 1, 2, 16, 24), // p = 16, K = 768
];

fn ints<T: FloatElement>(rng: &mut Rng, len: usize, lo: i64, hi: i64, scale: f32) -> Vec<T> {
    (0..len).map(|_| T::from_f32(rng.int(lo, hi) as f32 * scale)).collect()
}

fn f64s<T: FloatElement>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f32() as f64).collect()
}

/// Inputs of a patch embedding: x (latents NCHW) or the image (NHWC), weight, bias, pos.
struct Embed<T> {
    s: PatchShape,
    x: Vec<T>,
    image: Vec<u8>,
    w: Vec<T>,
    bias: Vec<T>,
    pos: Vec<T>,
}

impl<T: FloatElement> Embed<T> {
    /// Integer-valued latents, weights, bias and pos; images of 0 / 255 pixels: every product
    /// and sum is exact in f32 (|sum| ≤ 2·768), so the results are bit-exact in every dtype.
    fn integers(s: PatchShape, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let (n_x, k) = (s.batch * s.channels * s.height * s.width, s.patch_len());
        Embed {
            s,
            x: ints(&mut rng, n_x, -2, 2, 1.0),
            image: (0..n_x).map(|_| if rng.int(0, 1) == 1 { 255 } else { 0 }).collect(),
            w: ints(&mut rng, s.dim * k, -1, 1, 1.0),
            bias: ints(&mut rng, s.dim, -2, 2, 1.0),
            pos: ints(&mut rng, s.tokens() * s.dim, -2, 2, 1.0),
        }
    }
    /// Random values; weights of magnitude ~1/√K.
    fn random(s: PatchShape, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let (n_x, k) = (s.batch * s.channels * s.height * s.width, s.patch_len());
        let ws = 1.0 / 1000.0 / (k as f32).sqrt();
        Embed {
            s,
            x: ints(&mut rng, n_x, -1000, 1000, 1e-3),
            image: (0..n_x).map(|_| rng.int(0, 255) as u8).collect(),
            w: ints(&mut rng, s.dim * k, -1000, 1000, ws),
            bias: ints(&mut rng, s.dim, -1000, 1000, 1e-3),
            pos: ints(&mut rng, s.tokens() * s.dim, -1000, 1000, 1e-3),
        }
    }
    fn out_len(&self) -> usize {
        self.s.batch * self.s.tokens() * self.s.dim
    }
}

/// Exact per-channel normalization for 0 / 255 pixels: values ±1, {0, 4}, ±0.5, {−1, 3}.
const EXACT_MEAN: [f32; 4] = [0.5, 0.0, 0.5, 0.25];
const EXACT_STD: [f32; 4] = [0.5, 0.25, 1.0, 0.25];
const IMAGENET_MEAN: [f32; 4] = [0.485, 0.456, 0.406, 0.5];
const IMAGENET_STD: [f32; 4] = [0.229, 0.224, 0.225, 0.25];

fn run_latents<T: FloatElement>(device: &Device, c: &Embed<T>, with_pos: bool) -> Vec<f64> {
    let (x, w, b, pos) = (
        device.upload(&c.x).unwrap(),
        device.upload(&c.w).unwrap(),
        device.upload(&c.bias).unwrap(),
        device.upload(&c.pos).unwrap(),
    );
    let mut out = device.zeros::<T>(c.out_len()).unwrap();
    patchify_latents_into(device, &x, &w, &b, with_pos.then(|| pos.as_view()), c.s, &mut out).unwrap();
    f64s(&out.download().unwrap())
}

fn want_latents<T: FloatElement>(c: &Embed<T>, with_pos: bool) -> Vec<f64> {
    let mut out = vec![T::from_f32(0.0); c.out_len()];
    reference::patchify_latents(&c.x, &c.w, &c.bias, with_pos.then_some(&c.pos[..]), &c.s, &mut out);
    f64s(&out)
}

fn norm(mean: &[f32; 4], std: &[f32; 4], channels: usize) -> (Vec<f32>, Vec<f32>) {
    (mean[..channels].to_vec(), std[..channels].to_vec())
}

fn run_image<T: FloatElement>(device: &Device, c: &Embed<T>, mean: &[f32], std: &[f32]) -> Vec<f64> {
    let (img, w, b, pos) = (
        device.upload(&c.image).unwrap(),
        device.upload(&c.w).unwrap(),
        device.upload(&c.bias).unwrap(),
        device.upload(&c.pos).unwrap(),
    );
    let mut out = device.zeros::<T>(c.out_len()).unwrap();
    let nm = ImageNorm { mean, std };
    patchify_image_into(device, &img, &nm, &w, &b, Some(pos.as_view()), c.s, &mut out).unwrap();
    f64s(&out.download().unwrap())
}

fn want_image<T: FloatElement>(c: &Embed<T>, mean: &[f32], std: &[f32]) -> Vec<f64> {
    let mut out = vec![T::from_f32(0.0); c.out_len()];
    reference::patchify_image(&c.image, mean, std, &c.w, &c.bias, Some(&c.pos), &c.s, &mut out);
    f64s(&out)
}

fn assert_bits(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g.to_bits() == w.to_bits(), "{what}[{i}]: got {g}, want {w}");
    }
}

fn integer_exact<T: FloatElement>() {
    let device = Device::emulator();
    for (i, &(b, ch, gh, gw, p, d)) in SHAPES.iter().enumerate() {
        let c = Embed::<T>::integers(shape(b, ch, gh, gw, p, d), 10 + i as u64);
        let what = format!("{:?} {:?}", T::DTYPE, c.s);
        for with_pos in [true, false] {
            assert_bits(
                &format!("latents {what} pos {with_pos}"),
                &run_latents(&device, &c, with_pos),
                &want_latents(&c, with_pos),
            );
        }
        let (mean, std) = norm(&EXACT_MEAN, &EXACT_STD, ch);
        assert_bits(&format!("image {what}"), &run_image(&device, &c, &mean, &std), &want_image(&c, &mean, &std));
    }
}

#[test]
fn patchify_integer_exact_f32() {
    integer_exact::<f32>();
}
#[test]
fn patchify_integer_exact_f16() {
    integer_exact::<f16>();
}
#[test]
fn patchify_integer_exact_bf16() {
    integer_exact::<bf16>();
}

fn random_close<T: FloatElement>() {
    for device in common::kernel_devices("patchify") {
        for (i, &(b, ch, gh, gw, p, d)) in SHAPES.iter().enumerate().take(3) {
            let c = Embed::<T>::random(shape(b, ch, gh, gw, p, d), 100 + i as u64);
            let k = c.s.patch_len() + 2;
            let what = format!("{:?} {:?}", T::DTYPE, c.s);
            let got = run_latents(&device, &c, true);
            common::assert_close(&format!("latents {what}"), &got, &want_latents(&c, true), T::DTYPE, k);
            let (mean, std) = norm(&IMAGENET_MEAN, &IMAGENET_STD, ch);
            let got = run_image(&device, &c, &mean, &std);
            common::assert_close(&format!("image {what}"), &got, &want_image(&c, &mean, &std), T::DTYPE, k);
        }
    }
}

#[test]
fn patchify_random_f32() {
    random_close::<f32>();
}
#[test]
fn patchify_random_f16() {
    random_close::<f16>();
}
#[test]
fn patchify_random_bf16() {
    random_close::<bf16>();
}

/// The three-kernel baseline (im2col, GEMM + bias, pos add) gives the fused result.
#[test]
fn unfused_baseline_matches() {
    let device = Device::emulator();
    let c = Embed::<f32>::integers(shape(1, 3, 3, 43, 2, 65), 7);
    let (x, img, w, b, pos) = (
        device.upload(&c.x).unwrap(),
        device.upload(&c.image).unwrap(),
        device.upload(&c.w).unwrap(),
        device.upload(&c.bias).unwrap(),
        device.upload(&c.pos).unwrap(),
    );
    let mut out = device.zeros::<f32>(c.out_len()).unwrap();
    patchify_unfused_into(&device, PatchInput::Latents(x.as_view()), &w, &b, Some(pos.as_view()), c.s, &mut out)
        .unwrap();
    assert_bits("unfused latents", &f64s(&out.download().unwrap()), &want_latents(&c, true));
    let (mean, std) = norm(&EXACT_MEAN, &EXACT_STD, 3);
    let nm = ImageNorm { mean: &mean, std: &std };
    patchify_unfused_into(&device, PatchInput::Image(img.as_view(), nm), &w, &b, Some(pos.as_view()), c.s, &mut out)
        .unwrap();
    assert_bits("unfused image", &f64s(&out.download().unwrap()), &want_image(&c, &mean, &std));
}

// ---- unpatchify ---------------------------------------------------------------------------------------------

struct Unpatch<T> {
    s: PatchShape,
    tokens: Vec<T>,
    w: Vec<T>,
    bias: Vec<T>,
}

impl<T: FloatElement> Unpatch<T> {
    fn integers(s: PatchShape, seed: u64, scale: f32) -> Self {
        let mut rng = Rng(seed);
        let n = s.patch_len();
        Unpatch {
            s,
            tokens: ints(&mut rng, s.batch * s.tokens() * s.dim, -2, 2, 1.0),
            w: ints(&mut rng, n * s.dim, -1, 1, 1.0),
            bias: ints(&mut rng, n, -2, 2, 1.0),
        }
        .scaled(scale)
    }
    fn scaled(mut self, scale: f32) -> Self {
        for v in self.bias.iter_mut() {
            *v = T::from_f32(v.to_f32() * scale);
        }
        self
    }
    fn pixels(&self) -> usize {
        self.s.batch * self.s.channels * self.s.height * self.s.width
    }
}

fn unpatchify_exact<T: FloatElement>() {
    let device = Device::emulator();
    // (B, C, gh, gw, p, K): B·T = 129 tokens and n = 12; n = 192 (two column tiles); p = 1.
    for (i, &(b, ch, gh, gw, p, k)) in
        [(1, 3, 3, 43, 2, 33), (2, 3, 2, 3, 8, 40), (1, 4, 3, 5, 1, 17)].iter().enumerate()
    {
        let c = Unpatch::<T>::integers(shape(b, ch, gh, gw, p, k), 50 + i as u64, 1.0);
        let (t, w, bias) =
            (device.upload(&c.tokens).unwrap(), device.upload(&c.w).unwrap(), device.upload(&c.bias).unwrap());
        let mut out = device.zeros::<T>(c.pixels()).unwrap();
        unpatchify_latents_into(&device, &t, &w, &bias, c.s, &mut out).unwrap();
        let mut want = vec![T::from_f32(0.0); c.pixels()];
        reference::unpatchify_latents(&c.tokens, &c.w, &c.bias, &c.s, &mut want);
        assert_bits(
            &format!("unpatchify latents {:?} {:?}", T::DTYPE, c.s),
            &f64s(&out.download().unwrap()),
            &f64s(&want),
        );
        // Images: the integer values v ∈ [−82, 82] map to 255·(v/255 + 0.5)-ish bytes, some clamped.
        let (mean, std) = (vec![0.5f32, 0.25, 0.75, 0.0][..ch].to_vec(), vec![1.0f32 / 64.0; ch]);
        let nm = ImageNorm { mean: &mean, std: &std };
        let mut img = device.zeros::<u8>(c.pixels()).unwrap();
        unpatchify_image_into(&device, &t, &w, &bias, &nm, c.s, &mut img).unwrap();
        let mut want = vec![0u8; c.pixels()];
        reference::unpatchify_image(&c.tokens, &c.w, &c.bias, &mean, &std, &c.s, &mut want);
        assert_eq!(img.download().unwrap(), want, "unpatchify image {:?} {:?}", T::DTYPE, c.s);
    }
}

#[test]
fn unpatchify_integer_exact_f32() {
    unpatchify_exact::<f32>();
}
#[test]
fn unpatchify_integer_exact_f16() {
    unpatchify_exact::<f16>();
}
#[test]
fn unpatchify_integer_exact_bf16() {
    unpatchify_exact::<bf16>();
}

// ---- PyTorch conformance ------------------------------------------------------------------------------------

fn max_abs(got: &[f64], want: &[f64]) -> f64 {
    got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max)
}

fn fixture_devices() -> Vec<Device> {
    let mut d = common::kernel_devices("patchify");
    d.push(Device::cpu());
    d
}

#[test]
fn sincos_table_matches_diffusers() {
    let f = Fixture::load("patch_embed_image");
    let got = sincos_pos_embed_2d(40, 4, 3).unwrap();
    let want: Vec<f64> = f.f32s("pos_embed_unit").iter().map(|&v| v as f64).collect();
    let got: Vec<f64> = got.iter().map(|&v| v as f64).collect();
    common::assert_close("pos_embed_unit", &got, &want, tessera::DType::F32, 1);
    eprintln!("sincos 40 (4×3): max abs error {:e}", max_abs(&got, &want));
    let f = Fixture::load("patch_embed_latent");
    let got: Vec<f64> = sincos_pos_embed_2d(48, 8, 8).unwrap().iter().map(|&v| v as f64).collect();
    let want: Vec<f64> = f.f32s("pos_embed").iter().map(|&v| v as f64).collect();
    common::assert_close("pos_embed", &got, &want, tessera::DType::F32, 1);
    eprintln!("sincos 48 (8×8): max abs error {:e}", max_abs(&got, &want));
    assert!(matches!(sincos_pos_embed_2d(42, 2, 2), Err(Error::InvalidArgument { arg: "dim", .. })));
}

#[test]
fn fixture_patch_embed_image() {
    let f = Fixture::load("patch_embed_image");
    let s = PatchShape { batch: 2, channels: 3, height: 32, width: 24, patch: 8, dim: 40 };
    let (mean, std) = (f.f32s("mean"), f.f32s("std"));
    let pos = sincos_pos_embed_2d(40, 4, 3).unwrap();
    for device in fixture_devices() {
        let img = device.upload(&f.u8s("image")).unwrap();
        let (w, b) = (device.upload(&f.f32s("weight")).unwrap(), device.upload(&f.f32s("bias")).unwrap());
        let nm = ImageNorm { mean: &mean, std: &std };
        for (key, table) in [("y_pos_unit", pos.clone()), ("y_pos", f.f32s("pos_embed"))] {
            let pos = device.upload(&table).unwrap();
            let mut out = device.zeros::<f32>(2 * 12 * 40).unwrap();
            patchify_image_into(&device, &img, &nm, &w, &b, Some(pos.as_view()), s, &mut out).unwrap();
            let got = f64s(&out.download().unwrap());
            let want: Vec<f64> = f.f32s(key).iter().map(|&v| v as f64).collect();
            common::assert_close(key, &got, &want, tessera::DType::F32, 192);
            eprintln!("patch_embed_image {key} on {:?}: max abs error {:e}", device.kind(), max_abs(&got, &want));
        }
    }
}

#[test]
fn fixture_patch_embed_latent() {
    let f = Fixture::load("patch_embed_latent");
    let s = PatchShape { batch: 2, channels: 4, height: 16, width: 16, patch: 2, dim: 48 };
    let pos = sincos_pos_embed_2d(48, 8, 8).unwrap();
    for device in fixture_devices() {
        let x = device.upload(&f.f32s("x")).unwrap();
        let (w, b) = (device.upload(&f.f32s("weight")).unwrap(), device.upload(&f.f32s("bias")).unwrap());
        let pos = device.upload(&pos).unwrap();
        for (key, with_pos) in [("y", false), ("y_pos", true)] {
            let mut out = device.zeros::<f32>(2 * 64 * 48).unwrap();
            patchify_latents_into(&device, &x, &w, &b, with_pos.then(|| pos.as_view()), s, &mut out).unwrap();
            let got = f64s(&out.download().unwrap());
            let want: Vec<f64> = f.f32s(key).iter().map(|&v| v as f64).collect();
            common::assert_close(key, &got, &want, tessera::DType::F32, 16);
            eprintln!("patch_embed_latent {key} on {:?}: max abs error {:e}", device.kind(), max_abs(&got, &want));
        }
    }
}

#[test]
fn fixture_unpatchify() {
    let f = Fixture::load("unpatchify");
    for device in fixture_devices() {
        // The final projection + fold.
        let s = PatchShape { batch: 2, channels: 3, height: 8, width: 8, patch: 2, dim: 24 };
        let t = device.upload(&f.f32s("tokens_in")).unwrap();
        let (w, b) = (device.upload(&f.f32s("weight")).unwrap(), device.upload(&f.f32s("bias")).unwrap());
        let mut out = device.zeros::<f32>(2 * 3 * 8 * 8).unwrap();
        unpatchify_latents_into(&device, &t, &w, &b, s, &mut out).unwrap();
        let got = f64s(&out.download().unwrap());
        let want: Vec<f64> = f.f32s("img_final").iter().map(|&v| v as f64).collect();
        common::assert_close("img_final", &got, &want, tessera::DType::F32, 24);
        eprintln!("unpatchify img_final on {:?}: max abs error {:e}", device.kind(), max_abs(&got, &want));
        // The fold alone: an identity projection (exact).
        let s = PatchShape { dim: 12, ..s };
        let t = device.upload(&f.f32s("tokens")).unwrap();
        let eye: Vec<f32> = (0..144).map(|i| if i / 12 == i % 12 { 1.0 } else { 0.0 }).collect();
        let (w, b) = (device.upload(&eye).unwrap(), device.zeros::<f32>(12).unwrap());
        unpatchify_latents_into(&device, &t, &w, &b, s, &mut out).unwrap();
        let want: Vec<f64> = f.f32s("img").iter().map(|&v| v as f64).collect();
        assert_bits("img", &f64s(&out.download().unwrap()), &want);
    }
}

// ---- properties of the launch -------------------------------------------------------------------------------

#[test]
fn reruns_are_bit_identical() {
    let device = Device::emulator();
    let c = Embed::<bf16>::random(shape(2, 3, 2, 3, 8, 129), 3);
    let (mean, std) = norm(&IMAGENET_MEAN, &IMAGENET_STD, 3);
    assert_bits("rerun image", &run_image(&device, &c, &mean, &std), &run_image(&device, &c, &mean, &std));
    assert_bits("rerun latents", &run_latents(&device, &c, true), &run_latents(&device, &c, true));
}

#[test]
fn empty_batch_launches_nothing() {
    let device = Device::emulator();
    let s = shape(0, 3, 2, 2, 2, 8);
    let (x, w, b) =
        (device.zeros::<f32>(0).unwrap(), device.zeros::<f32>(8 * 12).unwrap(), device.zeros::<f32>(8).unwrap());
    let mut out = device.zeros::<f32>(0).unwrap();
    patchify_latents_into(&device, &x, &w, &b, None, s, &mut out).unwrap();
    let s = PatchShape { dim: 8, ..s };
    let (w, b) = (device.zeros::<f32>(12 * 8).unwrap(), device.zeros::<f32>(12).unwrap());
    unpatchify_latents_into(&device, &x, &w, &b, s, &mut out).unwrap();
}

fn arg_of(r: tessera::Result<()>) -> &'static str {
    match r {
        Err(Error::InvalidArgument { arg, .. }) => arg,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    let device = Device::emulator();
    let good = shape(1, 3, 2, 2, 2, 8); // H = W = 4, T = 4, K = 12
    let buf = |n: usize| device.zeros::<f32>(n).unwrap();
    let (x, w, b, pos, out) = (buf(48), buf(96), buf(8), buf(32), buf(32));
    let lat = |s: PatchShape,
               x: &tessera::DeviceBuffer<f32>,
               w: &tessera::DeviceBuffer<f32>,
               b: &tessera::DeviceBuffer<f32>,
               pos: &tessera::DeviceBuffer<f32>| {
        let mut o = buf(out.len());
        arg_of(patchify_latents_into(&device, x, w, b, Some(pos.as_view()), s, &mut o))
    };
    assert_eq!(lat(PatchShape { height: 5, ..good }, &x, &w, &b, &pos), "shape.height");
    assert_eq!(lat(PatchShape { height: 6, width: 8, patch: 4, ..good }, &x, &w, &b, &pos), "shape.height");
    assert_eq!(lat(PatchShape { width: 5, ..good }, &x, &w, &b, &pos), "shape.width");
    assert_eq!(lat(PatchShape { patch: 0, ..good }, &x, &w, &b, &pos), "shape.patch");
    assert_eq!(lat(PatchShape { channels: 0, ..good }, &x, &w, &b, &pos), "shape.channels");
    assert_eq!(lat(good, &buf(47), &w, &b, &pos), "x");
    assert_eq!(lat(good, &x, &buf(95), &b, &pos), "weight");
    assert_eq!(lat(good, &x, &w, &buf(9), &pos), "bias");
    assert_eq!(lat(good, &x, &w, &b, &buf(31)), "pos");
    assert_eq!(arg_of(patchify_latents_into(&device, &x, &w, &b, None, good, &mut buf(31))), "out");
    let img = device.zeros::<u8>(48).unwrap();
    let (m3, s3) = ([0.5f32; 3], [0.25f32; 3]);
    let im = |nm: ImageNorm<'_>, s: PatchShape, img: &tessera::DeviceBuffer<u8>| {
        let mut o = buf(out.len());
        arg_of(patchify_image_into(&device, img, &nm, &w, &b, None, s, &mut o))
    };
    assert_eq!(im(ImageNorm { mean: &m3[..2], std: &s3 }, good, &img), "mean");
    assert_eq!(im(ImageNorm { mean: &m3, std: &[0.25, 0.0, 0.25] }, good, &img), "std");
    assert_eq!(im(ImageNorm { mean: &m3, std: &s3 }, good, &device.zeros::<u8>(47).unwrap()), "image");
    let (m5, s5) = ([0.5f32; 5], [0.25f32; 5]);
    assert_eq!(im(ImageNorm { mean: &m5, std: &s5 }, PatchShape { channels: 5, ..good }, &img), "shape.channels");
    // Unpatchify: tokens [4, K = 8], weight [12, 8], bias [12], out [1, 3, 4, 4].
    let up = PatchShape { dim: 8, ..good };
    let (t, w2, b2) = (buf(32), buf(96), buf(12));
    assert_eq!(arg_of(unpatchify_latents_into(&device, &buf(31), &w2, &b2, up, &mut buf(48))), "tokens");
    assert_eq!(arg_of(unpatchify_latents_into(&device, &t, &buf(95), &b2, up, &mut buf(48))), "weight");
    assert_eq!(arg_of(unpatchify_latents_into(&device, &t, &w2, &buf(11), up, &mut buf(48))), "bias");
    assert_eq!(arg_of(unpatchify_latents_into(&device, &t, &w2, &b2, up, &mut buf(47))), "out");
    assert_eq!(
        arg_of(unpatchify_latents_into(&device, &t, &w2, &b2, PatchShape { width: 3, ..up }, &mut buf(48))),
        "shape.width"
    );
    let nm = ImageNorm { mean: &m3, std: &s3 };
    let mut o8 = device.zeros::<u8>(47).unwrap();
    assert_eq!(arg_of(unpatchify_image_into(&device, &t, &w2, &b2, &nm, up, &mut o8)), "out");
    let mut o8 = device.zeros::<u8>(48).unwrap();
    let bad = ImageNorm { mean: &m3, std: &[f32::NAN, 1.0, 1.0] };
    assert_eq!(arg_of(unpatchify_image_into(&device, &t, &w2, &b2, &bad, up, &mut o8)), "std");
}
