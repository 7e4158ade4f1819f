//! Attention forward: the fused flash-style kernel beside the unfused path it replaces (per
//! sequence and head: the Q·Kᵀ tile GEMM, a row-softmax kernel, the P·V tile GEMM — the
//! logits make a round trip through memory), in the same run; FLOP throughput (criterion's
//! Throughput::Elements counts 4·B·H·Tq·Tk·Dh FLOPs, halved for causal) and, on a GPU,
//! TFLOP/s as a fraction of the device's bf16 peak.
//!
//! `cargo bench --bench attention` — without a GPU it runs the emulator and the Cpu reference
//! at one cut-down shape (B·H = 2, T = 256, Dh = 72: the emulator runs every thread as a
//! fiber, its times compare fused and unfused, not absolute speed). On a GPU: B·H = 512 and
//! 32, T = 256, 1,024 and 4,096, Dh = 64, 72 and 128, causal and not. The unfused path's V
//! is transposed per head beforehand (the GEMM's weight layout), outside the timing.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use half::bf16;
use std::time::Duration;
use tessera::{attention_into, attention_unfused_into, AttentionLayout, AttentionOptions, AttentionShape, Device};

fn data(len: usize, seed: usize) -> Vec<bf16> {
    (0..len).map(|i| bf16::from_f32(2.0 * common::spread(i + seed) - 1.0)).collect()
}

fn bench_shape(c: &mut Criterion, device: &Device, heads: usize, t: usize, head_dim: usize, causal: bool) {
    let shape = AttentionShape { batch: 1, heads, head_dim, q_len: t, k_len: t };
    let n = heads * t * head_dim;
    let (q, k, v) = (data(n, 1), data(n, 2), data(n, 3));
    let (dq, dk, dv) = (device.upload(&q).unwrap(), device.upload(&k).unwrap(), device.upload(&v).unwrap());
    let mut out = device.zeros::<bf16>(n).unwrap();
    let mut lse = device.zeros::<f32>(heads * t).unwrap();
    // The unfused path reads Q and K as head-major [H, T, Dh] (the same bytes) and V^T [H, Dh, T]:
    // its values are V's bytes, which does not change the time (same shapes, same work).
    let dvt = device.upload(&v).unwrap();
    let mut scores = device.zeros::<bf16>(t * t).unwrap();
    let mut out_unfused = device.zeros::<bf16>(n).unwrap();
    let layout = AttentionLayout::contiguous(heads, head_dim);
    let options = AttentionOptions { causal, ..Default::default() };
    let flops = 4 * (heads * t * t * head_dim) as u64 / if causal { 2 } else { 1 };
    let mask = if causal { "causal" } else { "full" };
    let mut group = c.benchmark_group(format!("attention_bh{heads}_t{t}_d{head_dim}_{mask}_bf16_{:?}", device.kind()));
    group.throughput(Throughput::Elements(flops));
    let variants: &[bool] = if device.kind() == tessera::BackendKind::Cpu { &[true] } else { &[true, false] };
    for &fused in variants {
        let label = if fused { "fused" } else { "unfused" };
        let id = BenchmarkId::new(common::variant_label(device, label), format!("{heads}x{t}x{head_dim}"));
        let per_iter = common::bench_synced(&mut group, id, device, || {
            if fused {
                attention_into(device, &dq, &dk, &dv, shape, &layout, &options, &mut out, &mut lse).unwrap();
            } else {
                attention_unfused_into(device, &dq, &dk, &dvt, shape, &options, &mut scores, &mut out_unfused).unwrap();
            }
        });
        if let Some(peak) = device.peak_flops(tessera::DType::BF16) {
            let achieved = flops as f64 / per_iter.as_secs_f64();
            eprintln!(
                "attention B·H={heads} T={t} Dh={head_dim} {mask} {label}: {:.1} TFLOP/s = {:.1}% of peak",
                achieved / 1e12,
                100.0 * achieved / peak
            );
        }
    }
    group.finish();
}

fn attention_benches(c: &mut Criterion) {
    for device in [Device::emulator(), Device::cpu()] {
        bench_shape(c, &device, 2, 256, 72, false);
    }
    match Device::cuda(0) {
        Ok(gpu) => {
            for bh in [512usize, 32] {
                for t in [256usize, 1024, 4096] {
                    for head_dim in [64usize, 72, 128] {
                        for causal in [false, true] {
                            bench_shape(c, &gpu, bh, t, head_dim, causal);
                        }
                    }
                }
            }
        }
        Err(e) => eprintln!("attention: Cuda benchmarks skipped ({e})"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    targets = attention_benches
}
criterion_main!(benches);
