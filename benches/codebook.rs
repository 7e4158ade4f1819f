//! Nearest-codebook search throughput in latents/s.
//!
//! - GPU (when `Device::cuda(0)` works): N = 65,536 latents, K ∈ {1,024, 4,096, 16,384,
//!   65,536}, D ∈ {8, 32, 256}, f32 and bf16; the fused search (automatic path) beside the
//!   unfused baseline (distance matrix written by a GEMM kernel, then an argmin kernel),
//!   in the same run; achieved TFLOP/s (2·N·K·D) as a fraction of the device's peak.
//! - CPU reference (always): the same K and D for K ≤ 4,096 with N = 256 latents per
//!   iteration — the f64 reference is O(N·K·D), so the GPU's N would take minutes.
//!
//! `cargo bench --bench codebook`

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tessera::{Codebook, Device, FloatElement, Metric, SearchOptions, SearchPath};

fn pseudo_random(i: usize) -> f32 {
    common::spread(i) * 2.0 - 1.0
}

fn bench_shape<T: FloatElement>(
    c: &mut Criterion,
    device: &Device,
    n: usize,
    k: usize,
    d: usize,
    paths: &[SearchPath],
) {
    let z = device.upload(&(0..n * d).map(|i| T::from_f32(pseudo_random(i))).collect::<Vec<T>>()).unwrap();
    let e = device.upload(&(0..k * d).map(|i| T::from_f32(pseudo_random(i + 12_345_678))).collect::<Vec<T>>()).unwrap();
    let codebook = Codebook::new(device, e, d, Metric::SquaredL2).unwrap();
    let mut group = c.benchmark_group(format!("codebook_{:?}_{:?}_k{k}_d{d}", T::DTYPE, device.kind()));
    group.throughput(Throughput::Elements(n as u64));
    for &path in paths {
        let options = SearchOptions { distances: false, histogram: false, path, splits: None };
        let plan = codebook.plan(n, &options).unwrap();
        let id = BenchmarkId::new(common::variant_label(device, plan.path), n);
        let per_iter = common::bench_synced(&mut group, id, device, || {
            criterion::black_box(codebook.quantize(device, &z, &options).unwrap());
        });
        if let Some(peak) = device.peak_flops(T::DTYPE) {
            let flops = 2.0 * n as f64 * k as f64 * d as f64 / per_iter.as_secs_f64();
            eprintln!(
                "{path:?} ({:?}, {} splits): {:.1} TFLOP/s = {:.1}% of peak {:.0} TFLOP/s",
                plan.path,
                plan.splits,
                flops / 1e12,
                100.0 * flops / peak,
                peak / 1e12
            );
        }
    }
    group.finish();
}

fn codebook_benches(c: &mut Criterion) {
    let cpu = Device::cpu();
    for k in [1024, 4096] {
        for d in [8, 32, 256] {
            bench_shape::<f32>(c, &cpu, 256, k, d, &[SearchPath::Auto]);
            bench_shape::<half::bf16>(c, &cpu, 256, k, d, &[SearchPath::Auto]);
        }
    }
    match Device::cuda(0) {
        Ok(gpu) => {
            for k in [1024, 4096, 16384, 65536] {
                for d in [8, 32, 256] {
                    bench_shape::<f32>(c, &gpu, 65536, k, d, &[SearchPath::Auto, SearchPath::Unfused]);
                    bench_shape::<half::bf16>(c, &gpu, 65536, k, d, &[SearchPath::Auto, SearchPath::Unfused]);
                }
            }
        }
        Err(e) => eprintln!("codebook: Cuda benchmarks skipped ({e})"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = codebook_benches
}
criterion_main!(benches);
