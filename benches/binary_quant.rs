//! Binary quantizer (LFQ, BSQ) throughput: the CPU reference always; on a GPU, the fused
//! tiled kernel beside the plain one-thread-per-row kernel, in the same run, in GB/s of
//! HBM traffic (criterion's Throughput::Bytes) and as a fraction of the device's peak
//! bandwidth.
//!
//! `cargo bench --bench binary_quant`

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tessera::{BackendKind, BinaryQuantKernel, BinaryQuantOp, BinaryQuantizer, Device, FloatElement};

/// Bits per group index in every benchmark.
const GROUP_BITS: u32 = 16;

/// Bytes one quantize call moves: latents in; values, indices and errors out.
fn bytes_moved<T>(n: usize, d: usize, groups: usize) -> u64 {
    (n * d * 2 * std::mem::size_of::<T>() + n * groups * 4 + n * 4) as u64
}

fn latents<T: FloatElement>(n: usize, d: usize) -> Vec<T> {
    // A deterministic spread of both signs.
    (0..n * d).map(|i| T::from_f32(common::spread(i) * 4.0 - 2.0)).collect()
}

fn bench_device<T: FloatElement>(
    c: &mut Criterion,
    device: &Device,
    n: usize,
    d: usize,
    kernels: &[BinaryQuantKernel],
) {
    let z = device.upload(&latents::<T>(n, d)).unwrap();
    for op in [BinaryQuantOp::Lfq, BinaryQuantOp::Bsq] {
        let q = BinaryQuantizer::new(op, d, GROUP_BITS).unwrap();
        let mut indices = device.zeros::<u32>(n * q.groups()).unwrap();
        let mut values = device.zeros::<T>(n * d).unwrap();
        let mut sq_error = device.zeros::<f32>(n).unwrap();
        let bytes = bytes_moved::<T>(n, d, q.groups());
        let mut group = c.benchmark_group(format!("binary_quant_{op:?}_{:?}_d{d}_{:?}", T::DTYPE, device.kind()));
        group.throughput(Throughput::Bytes(bytes));
        for &kernel in kernels {
            let id = BenchmarkId::new(common::variant_label(device, kernel), n);
            let q = q.using(kernel);
            let per_iter = common::bench_synced(&mut group, id, device, || {
                q.quantize_into(device, &z, &mut indices, &mut values, &mut sq_error).unwrap();
            });
            if let Some(peak) = device.peak_memory_bandwidth() {
                let achieved = bytes as f64 / per_iter.as_secs_f64();
                eprintln!(
                    "{op:?} {:?} d = {d} {kernel:?}: {:.1} GB/s = {:.1}% of peak {:.0} GB/s",
                    T::DTYPE,
                    achieved / 1e9,
                    100.0 * achieved / peak,
                    peak / 1e9
                );
            }
        }
        group.finish();
    }
}

fn binary_quant_benches(c: &mut Criterion) {
    // CPU reference: always.
    let cpu = Device::cpu();
    for d in [32, 256] {
        bench_device::<f32>(c, &cpu, 65_536, d, &[BinaryQuantKernel::Tiled]);
        bench_device::<half::bf16>(c, &cpu, 65_536, d, &[BinaryQuantKernel::Tiled]);
    }

    match Device::cuda(0) {
        Ok(gpu) if gpu.kind() == BackendKind::Cuda => {
            // 2^26 elements: 256 MiB of f32 (128 MiB of bf16) latents in, well above the
            // 50 MiB L2, so the figures are HBM bandwidth.
            let kernels = [BinaryQuantKernel::Simple, BinaryQuantKernel::Tiled];
            for d in [32, 256] {
                let n = (1 << 26) / d;
                bench_device::<f32>(c, &gpu, n, d, &kernels);
                bench_device::<half::bf16>(c, &gpu, n, d, &kernels);
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("binary_quant: Cuda benchmarks skipped ({e})"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = binary_quant_benches
}
criterion_main!(benches);
