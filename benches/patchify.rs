//! Patch embedding throughput: the fused kernel (implicit im2col + GEMM + bias + position
//! embedding in one launch) beside the unfused path it replaces (im2col kernel writing the
//! patch matrix, `linear_into` with the bias epilogue, a position-embedding add kernel), in
//! the same run, in tokens/s (criterion's Throughput::Elements) and, on a GPU, TFLOP/s as a
//! fraction of the device's peak.
//!
//! Shapes: a ViT input (256×256 RGB u8 images, p = 16, D = 768) and DiT latents (4×32×32,
//! p = 2, D = 1152). The Cpu backend (the reference) runs at a small batch.
//!
//! `cargo bench --bench patchify`

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tessera::{
    patchify_image_into, patchify_latents_into, patchify_unfused_into, sincos_pos_embed_2d, BackendKind, Device,
    FloatElement, ImageNorm, LinearOutput, PatchInput, PatchShape,
};

#[derive(Clone, Copy, Debug)]
enum Variant {
    Fused,
    Unfused,
}

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

fn bench_shape<T: FloatElement + LinearOutput<T>>(
    c: &mut Criterion,
    device: &Device,
    name: &str,
    s: PatchShape,
    image: bool,
    variants: &[Variant],
) {
    let k = s.patch_len();
    let (m, n) = (s.batch * s.tokens(), s.dim);
    let w: Vec<T> = (0..n * k).map(|i| T::from_f32(common::spread(i) * 0.02 - 0.01)).collect();
    let bias: Vec<T> = (0..n).map(|i| T::from_f32(common::spread(i + 7) - 0.5)).collect();
    let pos: Vec<T> = sincos_pos_embed_2d(n, s.grid_h(), s.grid_w()).unwrap().into_iter().map(T::from_f32).collect();
    let pixels = s.batch * s.channels * s.height * s.width;
    let x: Vec<T> = (0..pixels).map(|i| T::from_f32(common::spread(i) * 2.0 - 1.0)).collect();
    let img: Vec<u8> = (0..pixels).map(|i| (common::spread(i) * 256.0) as u8).collect();
    let (w, bias, pos) = (device.upload(&w).unwrap(), device.upload(&bias).unwrap(), device.upload(&pos).unwrap());
    let (x, img) = (device.upload(&x).unwrap(), device.upload(&img).unwrap());
    let mut out = device.zeros::<T>(m * n).unwrap();
    let norm = ImageNorm { mean: &MEAN, std: &STD };
    let mut group = c.benchmark_group(format!("patchify_{name}_{:?}_{:?}", T::DTYPE, device.kind()));
    group.throughput(Throughput::Elements(m as u64));
    for &variant in variants {
        let id = BenchmarkId::new(common::variant_label(device, variant), s.batch);
        let per_iter = common::bench_synced(&mut group, id, device, || match (variant, image) {
            (Variant::Fused, true) => {
                patchify_image_into(device, &img, &norm, &w, &bias, Some(pos.as_view()), s, &mut out).unwrap()
            }
            (Variant::Fused, false) => {
                patchify_latents_into(device, &x, &w, &bias, Some(pos.as_view()), s, &mut out).unwrap()
            }
            (Variant::Unfused, true) => {
                let input = PatchInput::Image(img.as_view(), norm);
                patchify_unfused_into(device, input, &w, &bias, Some(pos.as_view()), s, &mut out).unwrap()
            }
            (Variant::Unfused, false) => {
                let input = PatchInput::Latents(x.as_view());
                patchify_unfused_into(device, input, &w, &bias, Some(pos.as_view()), s, &mut out).unwrap()
            }
        });
        if let Some(peak) = device.peak_flops(T::DTYPE) {
            let flops = 2.0 * m as f64 * n as f64 * k as f64 / per_iter.as_secs_f64();
            eprintln!("{name} {variant:?}: {:.1} TFLOP/s = {:.1}% of peak", flops / 1e12, 100.0 * flops / peak);
        }
    }
    group.finish();
}

fn vit(batch: usize) -> PatchShape {
    PatchShape { batch, channels: 3, height: 256, width: 256, patch: 16, dim: 768 }
}
fn dit(batch: usize) -> PatchShape {
    PatchShape { batch, channels: 4, height: 32, width: 32, patch: 2, dim: 1152 }
}

fn patchify_benches(c: &mut Criterion) {
    // The Cpu backend (the f64 reference): one sample, to keep 2 cores' runs short.
    let cpu = Device::cpu();
    bench_shape::<f32>(c, &cpu, "vit_image", vit(1), true, &[Variant::Fused]);
    bench_shape::<f32>(c, &cpu, "dit_latents", dit(1), false, &[Variant::Fused]);

    match Device::cuda(0) {
        Ok(gpu) if gpu.kind() == BackendKind::Cuda => {
            let both = [Variant::Fused, Variant::Unfused];
            for (name, s, image) in [("vit_image", vit(64), true), ("dit_latents", dit(64), false)] {
                bench_shape::<half::bf16>(c, &gpu, name, s, image, &both);
                bench_shape::<half::f16>(c, &gpu, name, s, image, &both);
                bench_shape::<f32>(c, &gpu, name, s, image, &both);
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("patchify: Cuda benchmarks skipped ({e})"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = patchify_benches
}
criterion_main!(benches);
