//! adaLN throughput: the fused kernel (`NormKernel::Auto`) beside the unfused path it
//! replaces (LayerNorm without affine, then the elementwise modulation kernel in place), in
//! the same run, at DiT-XL's shape B = 32, T = 256, D = 1152 on a GPU (f32 and bf16), in
//! GB/s of the op's minimum traffic (x read once, y written once, shift and scale read
//! once: criterion's Throughput::Bytes) and as a fraction of the device's peak bandwidth.
//! The CPU reference and the emulator run a small shape (B = 2, T = 16).
//!
//! `cargo bench --bench adaln`

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tessera::{
    adaln_modulate_into, AdalnShape, BackendKind, Device, FloatElement, Modulation, NormKernel, NormOptions,
};

/// The op's minimum traffic: x in, y out, one shift and one scale row per sample.
fn bytes_moved<T>(s: AdalnShape) -> u64 {
    (std::mem::size_of::<T>() * (2 * s.batch * s.tokens * s.dim + 2 * s.batch * s.dim)) as u64
}

fn bench_device<T: FloatElement>(c: &mut Criterion, device: &Device, shape: AdalnShape, kernels: &[NormKernel]) {
    let n = shape.batch * shape.tokens * shape.dim;
    let x: Vec<T> = (0..n).map(|i| T::from_f32(common::spread(i) * 4.0 - 2.0)).collect();
    let emb: Vec<T> = (0..shape.batch * 6 * shape.dim).map(|i| T::from_f32(common::spread(i + 7) - 0.5)).collect();
    let x = device.upload(&x).unwrap();
    let emb = device.upload(&emb).unwrap();
    let m = Modulation::chunks(&emb, shape.dim, 6, 0, 1).unwrap();
    let mut y = device.zeros::<T>(n).unwrap();
    let bytes = bytes_moved::<T>(shape);
    let mut group = c.benchmark_group(format!("adaln_modulate_{:?}_{:?}", T::DTYPE, device.kind()));
    group.throughput(Throughput::Bytes(bytes));
    for &kernel in kernels {
        let options = NormOptions { kernel, ..NormOptions::default() };
        let label =
            format!("{}/B{}xT{}xD{}", common::variant_label(device, kernel), shape.batch, shape.tokens, shape.dim);
        let per_iter = common::bench_synced(&mut group, BenchmarkId::from_parameter(label), device, || {
            adaln_modulate_into(device, &x, shape, &m, &options, &mut y).unwrap();
        });
        if let Some(peak) = device.peak_memory_bandwidth() {
            let achieved = bytes as f64 / per_iter.as_secs_f64();
            eprintln!(
                "adaln {kernel:?} {:?}: {:.1} GB/s = {:.1}% of peak {:.0} GB/s",
                T::DTYPE,
                achieved / 1e9,
                100.0 * achieved / peak,
                peak / 1e9
            );
        }
    }
    group.finish();
}

fn adaln_benches(c: &mut Criterion) {
    let small = AdalnShape { batch: 2, tokens: 16, dim: 1152 };
    let cpu = Device::cpu();
    bench_device::<f32>(c, &cpu, small, &[NormKernel::Auto]);
    let emulator = Device::emulator();
    bench_device::<f32>(c, &emulator, small, &[NormKernel::Auto, NormKernel::Unfused]);

    match Device::cuda(0) {
        Ok(gpu) if gpu.kind() == BackendKind::Cuda => {
            // DiT-XL: 32·256·1152 = 9.4M elements, 37.7 MB of f32 x plus as much y; bf16 half.
            let dit_xl = AdalnShape { batch: 32, tokens: 256, dim: 1152 };
            let kernels = [NormKernel::Auto, NormKernel::Unfused];
            bench_device::<f32>(c, &gpu, dit_xl, &kernels);
            bench_device::<half::bf16>(c, &gpu, dit_xl, &kernels);
        }
        Ok(_) => {}
        Err(e) => eprintln!("adaln: Cuda benchmarks skipped ({e})"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = adaln_benches
}
criterion_main!(benches);
