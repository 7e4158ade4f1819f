//! Conditioning embeddings: the timestep embedding (B timesteps, dim 256, DiT's frequency
//! size) and the label embedding (D = 1152, DiT-XL's width, 1000 classes + null): the CPU
//! reference always; on a GPU, the warp-per-row label gather beside the plain
//! one-thread-per-element gather it replaces, in the same run. Throughput in bytes of HBM
//! traffic (criterion's Throughput::Bytes) and, on a GPU, the fraction of peak bandwidth.
//!
//! `cargo bench --bench embedding`

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tessera::{
    label_embedding_into_using, timestep_embedding_into, BackendKind, Device, FloatElement, LabelEmbeddingKernel,
    DEFAULT_MAX_PERIOD,
};

const TIMESTEP_DIM: usize = 256;
const LABEL_DIM: usize = 1152;
const CLASSES: usize = 1000;

fn report(device: &Device, what: &str, bytes: u64, per_iter: Duration) {
    if let Some(peak) = device.peak_memory_bandwidth() {
        let achieved = bytes as f64 / per_iter.as_secs_f64();
        eprintln!(
            "{what}: {:.1} GB/s = {:.1}% of peak {:.0} GB/s",
            achieved / 1e9,
            100.0 * achieved / peak,
            peak / 1e9
        );
    }
}

fn bench_timestep<T: FloatElement>(c: &mut Criterion, device: &Device, batches: &[usize]) {
    let mut group = c.benchmark_group(format!("timestep_embedding_{:?}_{:?}", T::DTYPE, device.kind()));
    for &b in batches {
        let t: Vec<f32> = (0..b).map(|i| common::spread(i) * 1000.0).collect();
        let t = device.upload(&t).unwrap();
        let mut out = device.zeros::<T>(b * TIMESTEP_DIM).unwrap();
        // t in, the embedding out.
        let bytes = (b * 4 + b * TIMESTEP_DIM * std::mem::size_of::<T>()) as u64;
        group.throughput(Throughput::Bytes(bytes));
        let id = BenchmarkId::new(common::variant_label(device, "Flat16B"), b);
        let per_iter = common::bench_synced(&mut group, id, device, || {
            timestep_embedding_into(device, &t, TIMESTEP_DIM, DEFAULT_MAX_PERIOD, &mut out).unwrap();
        });
        report(device, &format!("timestep B={b}"), bytes, per_iter);
    }
    group.finish();
}

fn bench_label<T: FloatElement>(
    c: &mut Criterion,
    device: &Device,
    batches: &[usize],
    kernels: &[LabelEmbeddingKernel],
) {
    let table: Vec<T> = (0..(CLASSES + 1) * LABEL_DIM).map(|i| T::from_f32(common::spread(i) - 0.5)).collect();
    let table = device.upload(&table).unwrap();
    let mut group = c.benchmark_group(format!("label_embedding_{:?}_{:?}", T::DTYPE, device.kind()));
    for &b in batches {
        let labels: Vec<u32> = (0..b as u32).map(|i| i.wrapping_mul(2_654_435_761) % (CLASSES as u32 + 1)).collect();
        let labels = device.upload(&labels).unwrap();
        let mut out = device.zeros::<T>(b * LABEL_DIM).unwrap();
        // Labels in, the B gathered rows read and written.
        let bytes = (b * 4 + 2 * b * LABEL_DIM * std::mem::size_of::<T>()) as u64;
        group.throughput(Throughput::Bytes(bytes));
        for &kernel in kernels {
            let id = BenchmarkId::new(common::variant_label(device, kernel), b);
            let per_iter = common::bench_synced(&mut group, id, device, || {
                label_embedding_into_using(device, kernel, &labels, &table, CLASSES, LABEL_DIM, &mut out).unwrap();
            });
            report(device, &format!("label {kernel:?} B={b}"), bytes, per_iter);
        }
    }
    group.finish();
}

fn embedding_benches(c: &mut Criterion) {
    let cpu = Device::cpu();
    bench_timestep::<f32>(c, &cpu, &[32, 256]);
    bench_label::<half::bf16>(c, &cpu, &[32, 256], &[LabelEmbeddingKernel::Warp]);

    match Device::cuda(0) {
        Ok(gpu) if gpu.kind() == BackendKind::Cuda => {
            // B = 32 is DiT's sampling batch (launch-bound); 64K rows make the output
            // (32 MiB of f32 timestep embeddings, 144 MiB of bf16 label rows) exceed the L2.
            let batches = [32, 1024, 65536];
            bench_timestep::<f32>(c, &gpu, &batches);
            bench_timestep::<half::bf16>(c, &gpu, &batches);
            let kernels = [LabelEmbeddingKernel::Simple, LabelEmbeddingKernel::Warp];
            bench_label::<half::bf16>(c, &gpu, &batches, &kernels);
            bench_label::<f32>(c, &gpu, &batches, &kernels);
        }
        Ok(_) => {}
        Err(e) => eprintln!("embedding: Cuda benchmarks skipped ({e})"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = embedding_benches
}
criterion_main!(benches);
