//! The blocks (src/blocks/) against themselves in f32 on the Cpu backend (every op its f64
//! reference, rounded once to f32: the composition of the references), in bf16 on the
//! emulator — and on a GPU when present — and on the Cpu backend: random weights far from
//! zero (so that a wrong gate chunk, a lost residual or a swapped shift/scale is visible),
//! CFG-style label batches with the null class.
//!
//! The f32 Cpu run is the same block code over the references, so this checks that the
//! kernels compose (views, strides, epilogue gates, workspace reuse) as the references do
//! — not the block's own formula, which tests/blocks_pytorch.rs holds to diffusers and timm.

mod common;

use common::models::{dit, vit_block, Rng};
use half::bf16;
use tessera::blocks::{
    Dit, DitInputs, Fusion, TokenShape, VitBlock, VitDecoder, VitDecoderConfig, VitDecoderWeights, Workspace,
};
use tessera::weights::{DitConfig, DitWeights, VitBlockWeights};
use tessera::{Device, FloatElement, ImageNorm};

/// Asserts `max |got − want| ≤ 8·ε_bf16·max |want|` (ε = 2⁻⁸): eight bf16 roundings of
/// the largest value, for a chain whose every op rounds to bf16 (about 10 per block here),
/// and prints the figure. A wrong gate chunk, a lost residual or a swapped shift/scale
/// is off by tens of percent of max |want|.
fn assert_within_bf16(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    let err = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| if (g - w).is_nan() { f64::INFINITY } else { m.max((g - w).abs()) });
    let eps = 2f64.powi(-8);
    eprintln!("{what}: max |err| {err:.3e} = {:.2} ε·max|want| (max|want| {scale:.3})", err / (eps * scale));
    assert!(err <= 8.0 * eps * scale, "{what}: max |err| {err:e} > 8·ε·max|want| = {:e}", 8.0 * eps * scale);
}

fn f64s<T: FloatElement>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f32() as f64).collect()
}

fn vit_block_forward<T: FloatElement + tessera::LinearOutput<T>>(
    device: &Device,
    w: &VitBlockWeights,
    shape: TokenShape,
    (d, heads): (usize, usize),
    x: &[f32],
) -> Vec<f64> {
    let block = VitBlock::<T>::load(device, w, d, heads).unwrap();
    let mut ws = Workspace::<T>::new(device, shape, d, heads, block.mlp_hidden(), 0).unwrap();
    let xs: Vec<T> = x.iter().map(|&v| T::from_f32(v)).collect();
    let mut buf = device.upload(&xs).unwrap();
    block.forward(device, &mut buf, &mut ws).unwrap();
    f64s(&buf.download().unwrap())
}

/// A pre-LN ViT block, D = 64 in 2 heads of 32, 2 samples of 33 tokens.
#[test]
fn vit_block_matches_the_composed_references() {
    let (d, heads, mlp) = (64, 2, 256);
    let shape = TokenShape { batch: 2, tokens: 33 };
    let mut rng = Rng::new(7);
    let w = vit_block(&mut rng, d, mlp);
    let x = rng.tensor(&[shape.rows(), d], 1.0).data;
    let want = vit_block_forward::<f32>(&Device::cpu(), &w, shape, (d, heads), &x);
    let mut devices = common::kernel_devices("blocks");
    devices.push(Device::cpu());
    for device in devices {
        let got = vit_block_forward::<bf16>(&device, &w, shape, (d, heads), &x);
        assert_within_bf16(&format!("vit block on {}", device.name()), &got, &want);
    }
}

fn dit_forward<T: FloatElement + tessera::LinearOutput<T>>(
    device: &Device,
    fusion: Fusion,
    w: &DitWeights,
    latents: &[f32],
    timesteps: &[f32],
    labels: &[u32],
) -> Vec<f64> {
    let model = Dit::<T>::load(device, w).unwrap();
    let batch = labels.len();
    let mut ws = model.workspace(device, batch).unwrap();
    ws.set_fusion(fusion);
    let c = model.config();
    let lat: Vec<T> = latents.iter().map(|&v| T::from_f32(v)).collect();
    let (lat, t, y) = (device.upload(&lat).unwrap(), device.upload(timesteps).unwrap(), device.upload(labels).unwrap());
    let mut tokens = device.zeros::<T>(batch * model.tokens() * c.dim).unwrap();
    let mut out = device.zeros::<T>(batch * c.out_channels * c.sample_size * c.sample_size).unwrap();
    let inputs = DitInputs { latents: lat.as_view(), timesteps: t.as_view(), labels: y.as_view() };
    model.forward(device, &inputs, &mut ws, &mut tokens, &mut out).unwrap();
    // A second forward through the same workspace gives the same bits and allocates nothing.
    let first = out.download().unwrap();
    let allocations = device.allocations();
    model.forward(device, &inputs, &mut ws, &mut tokens, &mut out).unwrap();
    assert_eq!(first, out.download().unwrap(), "a rerun through the same workspace differs on {}", device.name());
    if fusion == Fusion::Fused {
        assert_eq!(device.allocations(), allocations, "the second forward allocated on {}", device.name());
    }
    f64s(&first)
}

/// A 2-block DiT (D = 64, 2 heads, patch 2, 8×8 latents of 4 channels, learned sigma),
/// a guidance batch: two labels and their null-class twins.
#[test]
fn dit_matches_the_composed_references() {
    let config = DitConfig {
        in_channels: 4,
        out_channels: 8,
        patch: 2,
        sample_size: 8,
        dim: 64,
        heads: 2,
        layers: 2,
        mlp_hidden: 256,
        num_classes: 10,
        freq_dim: 256,
    };
    let mut rng = Rng::new(11);
    let w = dit(&mut rng, config.clone());
    let batch = 4;
    let latents = rng.tensor(&[batch, 4, 8, 8], 1.0).data;
    let timesteps = [999.0f32, 500.0, 17.0, 0.0];
    let labels = [3u32, 10, 7, 10];
    let want = dit_forward::<f32>(&Device::cpu(), Fusion::Fused, &w, &latents, &timesteps, &labels);
    let mut devices = common::kernel_devices("blocks");
    devices.push(Device::cpu());
    for device in devices {
        for fusion in [Fusion::Fused, Fusion::Unfused] {
            let got = dit_forward::<bf16>(&device, fusion, &w, &latents, &timesteps, &labels);
            assert_within_bf16(&format!("dit {fusion:?} on {}", device.name()), &got, &want);
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 6, ..Default::default() })]

    /// The ViT block at random shapes: samples, tokens (ragged against every tile), heads
    /// and head dims, MLP widths.
    #[test]
    fn vit_block_at_random_shapes(
        batch in 1usize..=3,
        tokens in 1usize..=70,
        heads in 1usize..=2,
        head_dim in proptest::sample::select(vec![32usize, 64, 72]),
        mlp in proptest::sample::select(vec![64usize, 200]),
        seed in 0u64..1000,
    ) {
        let d = heads * head_dim;
        let shape = TokenShape { batch, tokens };
        let mut rng = Rng::new(seed);
        let w = vit_block(&mut rng, d, mlp);
        let x = rng.tensor(&[shape.rows(), d], 1.0).data;
        let want = vit_block_forward::<f32>(&Device::cpu(), &w, shape, (d, heads), &x);
        for device in common::kernel_devices("blocks") {
            let got = vit_block_forward::<bf16>(&device, &w, shape, (d, heads), &x);
            assert_within_bf16(&format!("vit block {shape:?} D {d} on {}", device.name()), &got, &want);
        }
    }
}

fn decoder_weights(rng: &mut Rng, config: VitDecoderConfig, layers: usize, mlp: usize) -> VitDecoderWeights {
    let d = config.dim;
    let tokens = config.grid.0 * config.grid.1;
    let (in_w, in_b) = rng.linear(d, config.latent_dim);
    let (out_w, mut out_b) = rng.linear(config.patch * config.patch * config.channels, d);
    // Centre the pixels at mid-grey so that few clamp at 0 or 255.
    out_b.data.iter_mut().for_each(|b| *b *= 0.1);
    VitDecoderWeights {
        in_w,
        in_b,
        pos_embed: rng.tensor(&[tokens, d], 0.5),
        blocks: (0..layers).map(|_| vit_block(rng, d, mlp)).collect(),
        norm_w: rng.tensor(&[d], 0.1),
        norm_b: rng.tensor(&[d], 0.1),
        out_w,
        out_b,
        config,
    }
}

fn decode<T: FloatElement + tessera::LinearOutput<T>>(
    device: &Device,
    w: &VitDecoderWeights,
    latents: &[f32],
    batch: usize,
) -> Vec<u8> {
    let model = VitDecoder::<T>::load(device, w).unwrap();
    let c = model.config().clone();
    let mut ws = model.workspace(device, batch).unwrap();
    let tokens_per = c.grid.0 * c.grid.1;
    let lat: Vec<T> = latents.iter().map(|&v| T::from_f32(v)).collect();
    let lat = device.upload(&lat).unwrap();
    let mut tokens = device.zeros::<T>(batch * tokens_per * c.dim).unwrap();
    let mut images = device.zeros::<u8>(batch * tokens_per * c.patch * c.patch * c.channels).unwrap();
    let norm = ImageNorm { mean: &[0.5, 0.5, 0.5], std: &[0.25, 0.25, 0.25] };
    model.forward(device, lat.as_view(), &norm, &mut ws, &mut tokens, &mut images).unwrap();
    let first = images.download().unwrap();
    // A second forward through the same workspace: the same pixels, no allocation.
    let allocations = device.allocations();
    model.forward(device, lat.as_view(), &norm, &mut ws, &mut tokens, &mut images).unwrap();
    assert_eq!(images.download().unwrap(), first, "a rerun of the decoder differs on {}", device.name());
    assert_eq!(device.allocations(), allocations, "the decoder's second forward allocated on {}", device.name());
    first
}

/// The tokenizer decoder (latent tokens → u8 pixels), D = 64 in 2 heads, 2 blocks, a 3×5
/// grid of 4×4 patches: bf16 on the emulator against the f32 composition, in pixel levels.
#[test]
fn vit_decoder_matches_the_composed_references() {
    let config = VitDecoderConfig { latent_dim: 8, dim: 64, heads: 2, channels: 3, patch: 4, grid: (3, 5) };
    let mut rng = Rng::new(13);
    let w = decoder_weights(&mut rng, config, 2, 128);
    let batch = 2;
    let latents = rng.tensor(&[batch * 15, 8], 1.0).data;
    let want = decode::<f32>(&Device::cpu(), &w, &latents, batch);
    let spread = want.iter().filter(|&&p| p != 0 && p != 255).count();
    assert!(
        spread * 10 > want.len() * 8,
        "the test image is mostly clamped: {spread} of {} inside (0, 255)",
        want.len()
    );
    let mut devices = common::kernel_devices("blocks");
    devices.push(Device::cpu());
    for device in devices {
        let got = decode::<bf16>(&device, &w, &latents, batch);
        let worst = got.iter().zip(&want).map(|(&g, &w)| (g as i32 - w as i32).abs()).max().unwrap();
        let mean =
            got.iter().zip(&want).map(|(&g, &w)| (g as i32 - w as i32).abs() as f64).sum::<f64>() / want.len() as f64;
        eprintln!("vit decoder on {}: max {worst} levels, mean {mean:.3}", device.name());
        // bf16's 2⁻⁸ relative on pixel values of up to ±2 std = ±0.5·255 levels: a few levels.
        assert!(worst <= 4, "vit decoder on {}: a pixel is {worst} levels off (mean {mean:.3})", device.name());
    }
}
