//! FSQ throughput: the CPU reference always; on a GPU, the tiled kernel beside the
//! plain one-thread-per-row kernel it replaces, in the same run, in GB/s of HBM traffic
//! (criterion's Throughput::Bytes) and as a fraction of the device's peak bandwidth.
//!
//! `cargo bench --bench fsq`

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tessera::{BackendKind, Device, FloatElement, Fsq, FsqKernel};

/// Bytes one quantize call moves: latents in; codes, values, indices out.
fn bytes_moved<T>(n: usize, d: usize) -> u64 {
    let elem = std::mem::size_of::<T>();
    (n * d * (2 * elem + 4) + n * 4) as u64
}

fn latents<T: FloatElement>(n: usize, d: usize) -> Vec<T> {
    // A deterministic spread over the tanh range.
    (0..n * d).map(|i| T::from_f32(common::spread(i) * 6.0 - 3.0)).collect()
}

fn bench_device<T: FloatElement>(c: &mut Criterion, device: &Device, n: usize, kernels: &[FsqKernel]) {
    let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
    let d = fsq.dim();
    let z = device.upload(&latents::<T>(n, d)).unwrap();
    let mut codes = device.zeros::<i32>(n * d).unwrap();
    let mut values = device.zeros::<T>(n * d).unwrap();
    let mut indices = device.zeros::<u32>(n).unwrap();
    let bytes = bytes_moved::<T>(n, d);
    let mut group = c.benchmark_group(format!("fsq_quantize_{:?}_{:?}", T::DTYPE, device.kind()));
    group.throughput(Throughput::Bytes(bytes));
    for &kernel in kernels {
        let id = BenchmarkId::new(common::variant_label(device, kernel), n);
        let fsq = fsq.using(kernel);
        let per_iter = common::bench_synced(&mut group, id, device, || {
            fsq.quantize_into(device, &z, &mut codes, &mut values, &mut indices).unwrap();
        });
        if let Some(peak) = device.peak_memory_bandwidth() {
            let achieved = bytes as f64 / per_iter.as_secs_f64();
            eprintln!(
                "{kernel:?}: {:.1} GB/s = {:.1}% of peak {:.0} GB/s",
                achieved / 1e9,
                100.0 * achieved / peak,
                peak / 1e9
            );
        }
    }
    group.finish();
}

fn fsq_benches(c: &mut Criterion) {
    // CPU reference: always. Large enough to leave the caches, small enough for 2 cores.
    let cpu = Device::cpu();
    bench_device::<f32>(c, &cpu, 1 << 18, &[FsqKernel::Tiled]);
    bench_device::<half::bf16>(c, &cpu, 1 << 18, &[FsqKernel::Tiled]);

    match Device::cuda(0) {
        Ok(gpu) if gpu.kind() == BackendKind::Cuda => {
            // 4M latents × 4 dims: 64 MiB of f32 latents in, well above the 50 MiB L2.
            let n = 1 << 22;
            bench_device::<f32>(c, &gpu, n, &[FsqKernel::Simple, FsqKernel::Tiled]);
            bench_device::<half::bf16>(c, &gpu, n, &[FsqKernel::Simple, FsqKernel::Tiled]);
        }
        Ok(_) => {}
        Err(e) => eprintln!("fsq: Cuda benchmarks skipped ({e})"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = fsq_benches
}
criterion_main!(benches);
