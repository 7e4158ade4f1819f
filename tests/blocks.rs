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
use tessera::blocks::{Dit, DitInputs, Fusion, TokenShape, VitBlock, Workspace};
use tessera::weights::{DitConfig, DitWeights, VitBlockWeights};
use tessera::{Device, FloatElement};

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
