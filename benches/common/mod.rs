//! Shared by the benchmarks: device-synchronized timing and labels.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId};
use std::time::{Duration, Instant};
use tessera::{BackendKind, Device};

/// Times `run` under `id`, synchronizing `device` before the clock starts and after the
/// last iteration, so that work a GPU still has queued is inside the measurement.
/// Returns the time per iteration of the last measured batch.
pub fn bench_synced(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    device: &Device,
    mut run: impl FnMut(),
) -> Duration {
    let mut per_iter = Duration::ZERO;
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            device.synchronize().unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                run();
            }
            device.synchronize().unwrap();
            let elapsed = start.elapsed();
            per_iter = elapsed / iters.max(1) as u32;
            elapsed
        })
    });
    per_iter
}

/// The benchmark label of a kernel variant: the Cpu backend runs the reference whatever
/// the variant, so it is labelled `reference` there.
pub fn variant_label(device: &Device, variant: impl std::fmt::Debug) -> String {
    if device.kind() == BackendKind::Cpu {
        "reference".to_string()
    } else {
        format!("{variant:?}")
    }
}

/// A deterministic value in [0, 1) for element `i` (multiplicative hashing): benchmark
/// inputs that are spread out but the same in every run.
pub fn spread(i: usize) -> f32 {
    ((i as u32).wrapping_mul(2654435761) >> 8) as f32 / 16_777_216.0
}
