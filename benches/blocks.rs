//! Whole-model forwards: DiT (diffusers' architecture, adaLN-Zero) and a ViT tokenizer
//! encoder, the fused blocks beside the same blocks through the unfused kernels
//! (`Fusion::Unfused`), in the same run; images per second (criterion's
//! Throughput::Elements counts images) and, on a GPU, the fraction of the bf16 peak and
//! the forward's device memory beside the weights'.
//!
//! `cargo bench --bench blocks` — without a GPU the emulator and the Cpu reference run
//! cut-down models (one block, one sample: the emulator runs every thread as a fiber, so
//! its times compare fused and unfused, not absolute speed): DiT-S/2's width (384, 6 heads)
//! on 256 tokens, and ViT-S/16's (384, 6 heads) encoder at 256² → 256 tokens. On a GPU:
//! DiT-S/2, B/2 and XL/2 (batch 32, 256² images → 32×32 latents → 256 tokens) and the
//! ViT-B/16 encoder (batch 32, 256²), random weights, bf16.

#[allow(dead_code)]
mod common;
#[path = "../tests/common/models.rs"]
mod models;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use half::bf16;
use std::time::Duration;
use tessera::blocks::{Dit, DitInputs, Fusion, VitEncoder};
use tessera::weights::{DitConfig, VitConfig, VitWeights};
use tessera::{BackendKind, Device, ImageNorm};

fn dit_config(dim: usize, heads: usize, layers: usize) -> DitConfig {
    DitConfig {
        in_channels: 4,
        out_channels: 8,
        patch: 2,
        sample_size: 32,
        dim,
        heads,
        layers,
        mlp_hidden: 4 * dim,
        num_classes: 1000,
        freq_dim: 256,
    }
}

/// FLOPs of one DiT forward per sample: the token GEMMs and attention (the conditioning's
/// B-row GEMMs are negligible).
fn dit_flops(c: &DitConfig, tokens: usize) -> f64 {
    let (t, d) = (tokens as f64, c.dim as f64);
    let per_block = 2.0 * t * d * (3.0 * d + d + 2.0 * c.mlp_hidden as f64) + 4.0 * t * t * d;
    c.layers as f64 * per_block + 2.0 * t * d * (c.in_channels * c.patch * c.patch) as f64
}

fn bench_dit(c: &mut Criterion, device: &Device, name: &str, config: DitConfig, batch: usize) {
    let mut rng = models::Rng::new(3);
    let weights = models::dit(&mut rng, config.clone());
    let model = Dit::<bf16>::load(device, &weights).unwrap();
    let s = config.sample_size;
    let latents: Vec<bf16> = rng.tensor(&[batch, 4, s, s], 1.0).data.iter().map(|&v| bf16::from_f32(v)).collect();
    let lat = device.upload(&latents).unwrap();
    let t = device.upload(&(0..batch).map(|i| (i * 37 % 1000) as f32).collect::<Vec<_>>()).unwrap();
    let y = device
        .upload(&(0..batch).map(|i| if i % 2 == 0 { (i % 1000) as u32 } else { 1000 }).collect::<Vec<_>>())
        .unwrap();
    let inputs = DitInputs { latents: lat.as_view(), timesteps: t.as_view(), labels: y.as_view() };
    let mut ws = model.workspace(device, batch).unwrap();
    let mut tokens = device.zeros::<bf16>(batch * model.tokens() * config.dim).unwrap();
    let mut out = device.zeros::<bf16>(batch * config.out_channels * s * s).unwrap();
    let mut group = c.benchmark_group(format!("{name}_b{batch}_bf16_{:?}", device.kind()));
    group.throughput(Throughput::Elements(batch as u64));
    let fusions: &[Fusion] =
        if device.kind() == BackendKind::Cpu { &[Fusion::Fused] } else { &[Fusion::Fused, Fusion::Unfused] };
    for &fusion in fusions {
        ws.set_fusion(fusion);
        let id = BenchmarkId::new(common::variant_label(device, fusion), format!("{} layers", config.layers));
        let per_iter = common::bench_synced(&mut group, id, device, || {
            model.forward(device, &inputs, &mut ws, &mut tokens, &mut out).unwrap();
        });
        report(device, name, fusion, batch, per_iter, dit_flops(&config, model.tokens()) * batch as f64);
    }
    group.finish();
}

fn vit_config(dim: usize, heads: usize, layers: usize) -> VitConfig {
    VitConfig { in_channels: 3, patch: 16, tokens: 256, dim, heads, layers, mlp_hidden: 4 * dim, out_dim: Some(16) }
}

fn vit_weights(rng: &mut models::Rng, config: VitConfig) -> VitWeights {
    let d = config.dim;
    let blocks = (0..config.layers).map(|_| models::vit_block(rng, d, config.mlp_hidden)).collect();
    let (patch_w, patch_b) = rng.linear(d, 3 * 16 * 16);
    let head = rng.linear(config.out_dim.unwrap(), d);
    VitWeights {
        patch_w,
        patch_b,
        pos_embed: rng.tensor(&[config.tokens, d], 0.5),
        blocks,
        norm_w: rng.tensor(&[d], 0.2),
        norm_b: rng.tensor(&[d], 0.2),
        head: Some(head),
        config,
    }
}

fn bench_vit(c: &mut Criterion, device: &Device, name: &str, config: VitConfig, batch: usize) {
    let mut rng = models::Rng::new(5);
    let weights = vit_weights(&mut rng, config.clone());
    let model = VitEncoder::<bf16>::load(device, &weights).unwrap();
    let images: Vec<u8> = (0..batch * 256 * 256 * 3).map(|i| (i * 2654435761usize >> 13) as u8).collect();
    let images = device.upload(&images).unwrap();
    let norm = ImageNorm { mean: &[0.485, 0.456, 0.406], std: &[0.229, 0.224, 0.225] };
    let mut ws = model.workspace(device, batch).unwrap();
    let mut tokens = device.zeros::<bf16>(batch * 256 * config.dim).unwrap();
    let mut out = device.zeros::<bf16>(batch * 256 * model.out_dim()).unwrap();
    let mut group = c.benchmark_group(format!("{name}_b{batch}_bf16_{:?}", device.kind()));
    group.throughput(Throughput::Elements(batch as u64));
    let fusions: &[Fusion] =
        if device.kind() == BackendKind::Cpu { &[Fusion::Fused] } else { &[Fusion::Fused, Fusion::Unfused] };
    let (t, d) = (256.0, config.dim as f64);
    let flops = batch as f64
        * (config.layers as f64 * (2.0 * t * d * (4.0 * d + 2.0 * config.mlp_hidden as f64) + 4.0 * t * t * d)
            + 2.0 * t * d * 768.0);
    for &fusion in fusions {
        ws.set_fusion(fusion);
        let id = BenchmarkId::new(common::variant_label(device, fusion), format!("{} layers", config.layers));
        let per_iter = common::bench_synced(&mut group, id, device, || {
            model.forward(device, images.as_view(), &norm, (256, 256), &mut ws, &mut tokens, &mut out).unwrap();
        });
        report(device, name, fusion, batch, per_iter, flops);
    }
    group.finish();
}

/// Images per second, and on a GPU the fraction of the bf16 tensor-core peak.
fn report(device: &Device, name: &str, fusion: Fusion, batch: usize, per_iter: Duration, flops: f64) {
    let secs = per_iter.as_secs_f64();
    let peak = device.peak_flops(tessera::DType::BF16).map_or(String::new(), |p| {
        format!(", {:.1} TFLOP/s = {:.1}% of peak", flops / secs / 1e12, 100.0 * flops / secs / p)
    });
    eprintln!("{name} {fusion:?} on {}: {:.2} images/s{peak}", device.name(), batch as f64 / secs);
}

fn blocks_benches(c: &mut Criterion) {
    for device in [Device::emulator(), Device::cpu()] {
        bench_dit(c, &device, "dit_s2_1block", DitConfig { sample_size: 32, ..dit_config(384, 6, 1) }, 1);
        bench_vit(c, &device, "vit_s16_encoder_1block", vit_config(384, 6, 1), 1);
    }
    match Device::cuda(0) {
        Ok(gpu) => {
            for (name, dim, heads, layers) in
                [("dit_s2", 384, 6, 12), ("dit_b2", 768, 12, 12), ("dit_xl2", 1152, 16, 28)]
            {
                bench_dit(c, &gpu, name, dit_config(dim, heads, layers), 32);
            }
            bench_vit(c, &gpu, "vit_b16_encoder", vit_config(768, 12, 12), 32);
        }
        Err(e) => eprintln!("blocks: Cuda benchmarks skipped ({e})"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    targets = blocks_benches
}
criterion_main!(benches);
