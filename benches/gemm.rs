//! Linear layers with fused epilogues beside the unfused path they replace (the plain GEMM,
//! then each epilogue step as its own elementwise kernel), in the same run, at the shapes of
//! DiT blocks and a ViT tokenizer; FLOP throughput (criterion's Throughput::Elements counts
//! 2·m·n·k FLOPs) and, on a GPU, TFLOP/s as a fraction of the device's peak.
//!
//! On a GPU a third variant, `cublaslt`, times NVIDIA's cuBLASLt (loaded at run time, see
//! `tessera::baseline`) with its own fused epilogues at the same shapes: Bias and BiasGelu
//! as they are; at the gated shapes cuBLASLt has no gated-residual epilogue (and tessera's
//! elementwise gated kernel is not public), so it runs with the Bias epilogue only, less
//! work than the gated variants do. Without libcublasLt the variant is skipped with a line
//! saying so.
//!
//! `cargo bench --bench gemm` — without a GPU it runs the emulator and the Cpu reference at
//! one cut-down DiT-S shape (the emulator runs every thread as a fiber: its times are for
//! comparing fused and unfused, not for absolute speed).

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use half::bf16;
use std::time::Duration;
use tessera::baseline::cublaslt_linear_into;
use tessera::{
    linear_into, linear_unfused_into, BackendKind, Device, FloatElement, GemmEpilogue, GemmOptions, GemmShape,
};

/// What a benchmark row runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// tessera's GEMM with the epilogue fused.
    Fused,
    /// tessera's GEMM, then the epilogue as elementwise kernels.
    Unfused,
    /// cuBLASLt with its own epilogue (GPU only).
    Cublaslt,
}

#[derive(Clone, Copy, Debug)]
enum Epi {
    Bias,
    BiasGelu,
    Gated,
}

fn data<T: FloatElement>(len: usize, seed: usize) -> Vec<T> {
    (0..len).map(|i| T::from_f32(common::spread(i + seed) - 0.5)).collect()
}

fn bench_shape(c: &mut Criterion, device: &Device, name: &str, shape: GemmShape, epi: Epi, tokens: usize) {
    let GemmShape { m, n, k } = shape;
    let x = device.upload(&data::<bf16>(m * k, 1)).unwrap();
    let w = device.upload(&data::<bf16>(n * k, 2)).unwrap();
    let bias = device.upload(&data::<bf16>(n, 3)).unwrap();
    let gate = device.upload(&data::<bf16>(n * (m / tokens).max(1), 4)).unwrap();
    let mut out = device.upload(&data::<bf16>(m * n, 5)).unwrap();
    let epilogue = match epi {
        Epi::Bias => GemmEpilogue::Bias(bias.as_view()),
        Epi::BiasGelu => GemmEpilogue::BiasGelu(bias.as_view()),
        Epi::Gated => GemmEpilogue::GatedResidual {
            bias: bias.as_view(),
            gate: gate.as_view(),
            gate_stride: n,
            tokens_per_sample: tokens,
        },
    };
    let flops = 2 * (m * n * k) as u64;
    let options = GemmOptions::default();
    let mut group = c.benchmark_group(format!("gemm_{name}_{epi:?}_bf16_{:?}", device.kind()));
    group.throughput(Throughput::Elements(flops));
    // The Cpu backend runs the reference whatever the variant: one row for it. cuBLASLt only
    // on a GPU.
    let variants: &[Variant] = match device.kind() {
        BackendKind::Cpu => &[Variant::Fused],
        BackendKind::Emulator => &[Variant::Fused, Variant::Unfused],
        BackendKind::Cuda => &[Variant::Fused, Variant::Unfused, Variant::Cublaslt],
    };
    // cuBLASLt's own epilogue: the gated residual is not one (see the header).
    let lt_epilogue = match epilogue {
        GemmEpilogue::GatedResidual { bias, .. } => GemmEpilogue::Bias(bias),
        e => e,
    };
    for &variant in variants {
        let label = match variant {
            Variant::Fused => "fused",
            Variant::Unfused => "unfused",
            Variant::Cublaslt => "cublaslt",
        };
        if variant == Variant::Cublaslt {
            // One call outside the timing: makes the handle, or says why there is none.
            let probe =
                cublaslt_linear_into(device, &x, &w, shape, &lt_epilogue, &mut out).and_then(|()| device.synchronize());
            if let Err(e) = probe {
                eprintln!("{name} {epi:?} cublaslt: skipped ({e})");
                continue;
            }
        }
        let id = BenchmarkId::new(common::variant_label(device, label), format!("{m}x{n}x{k}"));
        let per_iter = common::bench_synced(&mut group, id, device, || match variant {
            Variant::Fused => linear_into(device, &x, &w, shape, &epilogue, &mut out, &options).unwrap(),
            Variant::Unfused => linear_unfused_into(device, &x, &w, shape, &epilogue, &mut out, &options).unwrap(),
            Variant::Cublaslt => cublaslt_linear_into(device, &x, &w, shape, &lt_epilogue, &mut out).unwrap(),
        });
        if let Some(peak) = device.peak_flops(tessera::DType::BF16) {
            let achieved = flops as f64 / per_iter.as_secs_f64();
            let note = if variant == Variant::Cublaslt && matches!(epi, Epi::Gated) { " (Bias epilogue)" } else { "" };
            eprintln!(
                "{name} {epi:?} {label}{note}: {:.1} TFLOP/s = {:.1}% of peak",
                achieved / 1e12,
                100.0 * achieved / peak
            );
        }
    }
    group.finish();
}

fn gemm_benches(c: &mut Criterion) {
    // A DiT-S/2 block cut to 256 tokens: the MLP's first GEMM and the gated output projection.
    for device in [Device::emulator(), Device::cpu()] {
        bench_shape(c, &device, "dit_s_mlp1", GemmShape { m: 256, n: 1536, k: 384 }, Epi::BiasGelu, 256);
        bench_shape(c, &device, "dit_s_proj", GemmShape { m: 256, n: 384, k: 384 }, Epi::Gated, 256);
    }
    match Device::cuda(0) {
        Ok(gpu) => {
            // Batch 32 at 256² → 256 tokens each: m = 8192; the ViT tokenizer: 1024 tokens × 8.
            for (name, d) in [("dit_s", 384), ("dit_b", 768), ("dit_l", 1024), ("dit_xl", 1152)] {
                bench_shape(c, &gpu, &format!("{name}_qkv"), GemmShape { m: 8192, n: 3 * d, k: d }, Epi::Bias, 256);
                bench_shape(
                    c,
                    &gpu,
                    &format!("{name}_mlp1"),
                    GemmShape { m: 8192, n: 4 * d, k: d },
                    Epi::BiasGelu,
                    256,
                );
                bench_shape(c, &gpu, &format!("{name}_mlp2"), GemmShape { m: 8192, n: d, k: 4 * d }, Epi::Gated, 256);
                bench_shape(c, &gpu, &format!("{name}_adaln"), GemmShape { m: 32, n: 6 * d, k: d }, Epi::Bias, 1);
            }
            bench_shape(c, &gpu, "vit_b_mlp1", GemmShape { m: 8192, n: 3072, k: 768 }, Epi::BiasGelu, 1024);
        }
        Err(e) => eprintln!("gemm: Cuda benchmarks skipped ({e})"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    targets = gemm_benches
}
criterion_main!(benches);
