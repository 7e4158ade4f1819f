//! Self-tests of the kernel emulator (kernels/host/), one test per CUDA primitive, through the
//! self-test kernels of kernels/selftest/ (wrapped in src/selftest.rs). Each expected value is
//! computed here in plain Rust from the primitive's CUDA/PTX definition, so a wrong primitive
//! fails. Numeric self-tests also run on a GPU when one is usable; the error-path tests
//! (deadlock, misuse, AddressSanitizer) run on the emulator only.
//!
//! Run under AddressSanitizer too: `TESSERA_SANITIZE=address cargo test --test emulator`.

mod common;

use half::{bf16, f16};
use std::time::Duration;
use tessera::selftest::{self, Broken, SENTINEL_F32, SENTINEL_U32};
use tessera::{BackendKind, DType, Device, Error};

use common::Rng;

/// Runs `f` on another thread and fails the test if it takes longer than `secs` seconds
/// (a broken deadlock detector must fail the test, not hang it).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).expect("the emulator did not return in time (hang?)")
}

fn emulator_error(result: tessera::Result<()>) -> String {
    match result {
        Err(Error::Emulator(msg)) => msg,
        other => panic!("expected an emulator error, got {other:?}"),
    }
}

#[test]
fn block_reduction_with_syncthreads() {
    let mut rng = Rng(1);
    let n = 10_007;
    let chunk = 1500;
    let x: Vec<f32> = (0..n).map(|_| rng.int(-8, 12) as f32).collect();
    for device in common::kernel_devices("block_reduction_with_syncthreads") {
        // Powers of two, odd sizes, partial last warps, a single thread, the maximum.
        for threads in [256u32, 100, 48, 33, 1, 1024] {
            let (tree, helper, count) = selftest::block_reduce(&device, &x, chunk, threads).unwrap();
            for (b, seg) in x.chunks(chunk).enumerate() {
                let want: f64 = seg.iter().map(|&v| v as f64).sum();
                assert_eq!(tree[b] as f64, want, "{device:?} threads {threads} block {b}: tree");
                assert_eq!(helper[b] as f64, want, "{device:?} threads {threads} block {b}: block_reduce_sum");
                let positive = (0..threads as usize)
                    .filter(|&t| seg.iter().skip(t).step_by(threads as usize).sum::<f32>() > 0.0)
                    .count();
                assert_eq!(count[b] as usize, positive, "{device:?} threads {threads} block {b}: __syncthreads_count");
            }
        }
    }
}

#[test]
fn missing_barrier_is_exposed() {
    let mut rng = Rng(2);
    let threads = 128usize;
    let x: Vec<f32> = (0..threads * 4).map(|_| rng.int(1, 1000) as f32).collect();
    let want: Vec<f32> = (0..x.len())
        .map(|g| {
            let (b, t) = (g / threads * threads, g % threads);
            x[b + (t + threads - 1) % threads] + x[b + (t + 1) % threads]
        })
        .collect();
    for device in common::kernel_devices("missing_barrier_is_exposed") {
        assert_eq!(selftest::neighbour_sum(&device, &x, threads as u32, true).unwrap(), want, "{device:?}");
    }
    // Racy on a GPU too, but only the emulator guarantees to expose it: in the checks build
    // as a report (the first thread reads a neighbour's cell that nobody has written yet, or
    // that another thread wrote in the same barrier interval), otherwise as a wrong result.
    match selftest::neighbour_sum(&Device::emulator(), &x, threads as u32, false) {
        Err(Error::Emulator(m)) if tessera::emulator::checks_enabled() => {
            assert!(m.starts_with("initcheck in kernel selftest_without_barrier") || m.starts_with("racecheck"), "{m}")
        }
        Ok(racy) if !tessera::emulator::checks_enabled() => {
            assert!(racy.iter().zip(&want).any(|(g, w)| g != w), "a missing __syncthreads went unnoticed")
        }
        other => panic!("a missing __syncthreads: {other:?}"),
    }
}

/// Source lane of a shuffle per the PTX ISA (shfl.sync with c = ((32 - width) << 8) | clamp).
fn shfl_src(mode: &str, lane: usize, b: i64, width: usize) -> usize {
    let seg = 32 - width;
    let (l, b) = (lane as i64, b & 31);
    let (j, ok) = match mode {
        "up" => (l - b, l - b >= (l & seg as i64)),
        "down" => (l + b, l + b <= ((l & seg as i64) | (31 & !seg as i64))),
        "xor" => (l ^ b, (l ^ b) <= ((l & seg as i64) | (31 & !seg as i64))),
        "idx" => {
            let j = (l & seg as i64) | (b & !(seg as i64));
            (j, true)
        }
        _ => unreachable!(),
    };
    if ok {
        j as usize
    } else {
        lane
    }
}

#[test]
fn shuffles_in_divergent_code() {
    let mut rng = Rng(3);
    let blocks = 3;
    let x: Vec<f32> = (0..128 * blocks).map(|_| rng.int(-50, 50) as f32).collect();
    for device in common::kernel_devices("shuffles_in_divergent_code") {
        let (out, out64) = selftest::warp_shuffle(&device, &x).unwrap();
        for g in 0..x.len() {
            let (lane, warp) = (g % 32, (g % 128) / 32);
            let w0 = g - lane; // global index of lane 0 of this warp
            let v = |l: usize| x[w0 + l];
            let o = &out[g * 8..g * 8 + 8];
            let o64 = &out64[g * 4..g * 4 + 4];
            let mut want = [SENTINEL_F32; 8];
            let mut want64 = [SENTINEL_U32; 4];
            if warp % 2 == 1 {
                want[0] = (0..32).map(v).sum();
                want[1] = v(shfl_src("up", lane, 3, 16));
                want[2] = v(shfl_src("down", lane, 5, 32));
                want[3] = v(shfl_src("idx", lane, 7 - lane as i64, 8));
                want[4] = v(shfl_src("xor", lane, 9, 16));
                let gs = (w0 + (lane ^ 16)) as u64;
                let xv = (gs << 40) | (gs as u32).wrapping_mul(7) as u64;
                let gd = w0 + 31 - lane;
                let d = (x[gd] as f64 * 0.5 + 1e-9 * gd as f64).to_bits();
                want64 = [xv as u32, (xv >> 32) as u32, d as u32, (d >> 32) as u32];
            } else if lane < 16 {
                let mut s: Vec<f32> = (0..16).map(v).collect();
                for off in [8usize, 4, 2, 1] {
                    s = (0..16).map(|l| s[l] + s[shfl_src("down", l, off as i64, 16)]).collect();
                }
                want[0] = s[lane];
                want[5] = v((lane + 3) & 15);
            } else {
                want[6] = v(16 + ((lane * 5) & 15));
            }
            want[7] = v(0);
            assert_eq!(o, &want[..], "{device:?} thread {g} (warp {warp} lane {lane}): float outputs");
            assert_eq!(o64, &want64[..], "{device:?} thread {g}: 64-bit outputs");
        }
    }
}

#[test]
fn votes_with_data_dependent_predicates() {
    let mut rng = Rng(4);
    let threads = 64usize;
    let mut x: Vec<i32> = (0..threads * 6).map(|_| rng.int(-5, 5) as i32).collect();
    x[32..64].iter_mut().for_each(|v| *v = v.abs() + 1); // a warp where all are true
    x[96..128].iter_mut().for_each(|v| *v = -v.abs()); // a warp where none is
    for device in common::kernel_devices("votes_with_data_dependent_predicates") {
        let out = selftest::warp_vote(&device, &x, threads as u32).unwrap();
        for g in 0..x.len() {
            let (lane, w0) = (g % 32, g - g % 32);
            let p = |l: usize| x[w0 + l] > 0;
            let ballot = |f: &dyn Fn(usize) -> bool, mask: u32| {
                (0..32).filter(|&l| mask >> l & 1 == 1 && f(l)).fold(0u32, |b, l| b | 1 << l)
            };
            let full = ballot(&p, u32::MAX);
            let odd = ballot(&p, 0xaaaa_aaaa);
            let mut want = [SENTINEL_U32; 8];
            want[0] = full;
            want[1] = (full != 0) as u32;
            want[2] = (full == u32::MAX) as u32;
            if lane % 2 == 1 {
                want[3] = odd;
                want[4] = (odd != 0) as u32;
                want[5] = (odd == 0xaaaa_aaaa) as u32;
            }
            want[6] = (0..32).fold(0u32, |s, l| s.wrapping_add(x[w0 + l] as u32));
            want[7] = ballot(&|l| if l % 2 == 1 { p(l) } else { !p(l) }, u32::MAX);
            assert_eq!(&out[g * 8..g * 8 + 8], &want[..], "{device:?} thread {g} (lane {lane})");
        }
    }
}

#[test]
fn atomics_under_contention() {
    let mut rng = Rng(5);
    let n = 200_000;
    let x: Vec<u32> = (0..n).map(|_| rng.int(0, 999_999) as u32).collect();
    let nbins = 7;
    let mut hist = vec![0u32; nbins];
    let mut bits = 0u32;
    for &v in &x {
        hist[v as usize % nbins] += 1;
        bits |= 1 << (v % 32);
    }
    let want = selftest::AtomicResults {
        hist,
        fsum: x.iter().map(|&v| (v % 8) as f64).sum::<f64>() as f32, // < 2^24: exact in f32
        total: x.iter().map(|&v| v as u64).sum(),
        vmax: x.iter().map(|&v| (v % 100_003) as i32).max().unwrap(),
        vmin: x.iter().map(|&v| (v % 100_003) as i32).min().unwrap(),
        cas_count: n as u32,
        bits,
    };
    for device in common::kernel_devices("atomics_under_contention") {
        assert_eq!(selftest::atomic_hist(&device, &x, nbins, 64).unwrap(), want, "{device:?}");
    }
}

fn matmul(a: &[f32], b: &[f32], c: &[f32]) -> Vec<f64> {
    (0..32 * 16)
        .map(|ij| {
            let (i, j) = (ij / 16, ij % 16);
            c[ij] as f64 + (0..32).map(|k| a[i * 32 + k] as f64 * b[k * 16 + j] as f64).sum::<f64>()
        })
        .collect()
}

fn check_mma(bf16_inputs: bool) {
    let mut rng = Rng(6 + bf16_inputs as u64);
    let eighths = |rng: &mut Rng, len: usize| -> Vec<f32> { (0..len).map(|_| rng.int(-32, 32) as f32 / 8.0).collect() };
    // Multiples of 1/8 in [-4, 4]: exact in f16 and bf16, every product and sum exact in f32,
    // so any misplaced fragment element changes the result.
    let (a, b, c) = (eighths(&mut rng, 32 * 32), eighths(&mut rng, 32 * 16), eighths(&mut rng, 32 * 16));
    // General values, rounded to the input type: compared with the dtype's tolerance.
    let round = |v: f32| if bf16_inputs { bf16::from_f32(v).to_f32() } else { f16::from_f32(v).to_f32() };
    let general = |rng: &mut Rng, len: usize| -> Vec<f32> {
        (0..len).map(|_| round((rng.next() % 20001) as f32 / 10000.0 - 1.0)).collect()
    };
    let (ga, gb, gc) = (general(&mut rng, 32 * 32), general(&mut rng, 32 * 16), general(&mut rng, 32 * 16));
    // Tolerance of the input dtype: a GPU accumulates in its own order and precision.
    let dtype = if bf16_inputs { DType::BF16 } else { DType::F16 };
    for device in common::kernel_devices("mma") {
        let d = selftest::mma(&device, bf16_inputs, &a, &b, &c).unwrap();
        let want = matmul(&a, &b, &c);
        for (i, (&g, &w)) in d.iter().zip(&want).enumerate() {
            assert_eq!(g as f64, w, "{device:?} bf16={bf16_inputs}: D[{}][{}]", i / 16, i % 16);
        }
        let d = selftest::mma(&device, bf16_inputs, &ga, &gb, &gc).unwrap();
        let got: Vec<f64> = d.iter().map(|&v| v as f64).collect();
        common::assert_close("mma D", &got, &matmul(&ga, &gb, &gc), dtype, 32);
    }
}

#[test]
fn mma_m16n8k16_f16_matches_cpu_matmul() {
    check_mma(false);
}

#[test]
fn mma_m16n8k16_bf16_matches_cpu_matmul() {
    check_mma(true);
}

#[test]
fn ldmatrix_fragment_layouts() {
    let src: Vec<u16> = (0..256).map(|e| e as u16 + 1).collect(); // matrix m row r col c: m*64 + r*8 + c + 1
    let elem = |m: usize, r: usize, c: usize| (m * 64 + r * 8 + c + 1) as u32;
    for device in common::kernel_devices("ldmatrix_fragment_layouts") {
        let out = selftest::ldmatrix(&device, &src).unwrap();
        for (v, (num, trans)) in
            [(1, false), (2, false), (4, false), (1, true), (2, true), (4, true)].into_iter().enumerate()
        {
            for lane in 0..32 {
                let (g, t) = (lane / 4, lane % 4);
                for i in 0..4 {
                    let got = out[(v * 32 + lane) * 4 + i];
                    let want = if i >= num {
                        SENTINEL_U32
                    } else if trans {
                        elem(i, 2 * t, g) | elem(i, 2 * t + 1, g) << 16
                    } else {
                        elem(i, g, 2 * t) | elem(i, g, 2 * t + 1) << 16
                    };
                    assert_eq!(
                        got,
                        want,
                        "{device:?} ldmatrix_x{num}{} lane {lane} register {i}: got {got:#010x}, want {want:#010x}",
                        if trans { "_trans" } else { "" }
                    );
                }
            }
        }
    }
}

#[test]
fn cp_async_groups_and_16_byte_accesses() {
    let mut rng = Rng(8);
    let x: Vec<f32> = (0..512).map(|_| rng.int(0, 99) as f32).collect();
    let chunk_sum = |c: usize| x[c * 4..c * 4 + 4].iter().sum::<f32>();
    for device in common::kernel_devices("cp_async_groups_and_16_byte_accesses") {
        let (out, out16) = selftest::cp_async(&device, &x).unwrap();
        for t in 0..64 {
            assert_eq!(out[t], chunk_sum(63 - t), "{device:?} stage 0, thread {t}");
            assert_eq!(out[64 + t], chunk_sum(127 - t), "{device:?} stage 1, thread {t}");
        }
        let want16: Vec<u32> = x[256..].iter().map(|v| v.to_bits()).collect();
        assert_eq!(out16, want16, "{device:?} load16/store16");
    }
}

#[test]
fn half_conversions_match_the_half_crate() {
    let mut rng = Rng(9);
    let mut x: Vec<f32> = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffc1_2345),
        f32::from_bits(0x7fbf_ffff), // NaN payloads
        65504.0,
        65519.99,
        65520.0,
        1e6,
        -1e30,
        f32::MAX,
        f32::MIN_POSITIVE,
        f32::from_bits(1), // f16 overflow, f32 subnormal
        5.960_464_5e-8,
        2.980_232_2e-8,
        2.980_232_4e-8,
        8.940_697e-8,
        6.097_555e-5,
        6.103_515_6e-5, // f16 subnormal ties
        1.000_976_6,
        1.000_488_3,
        1.001_464_8,
        1.003_906_3,
        1.011_718_8,
        3.389_531_4e38, // f16/bf16 halfway cases
    ];
    x.extend((0..100_000).map(|_| f32::from_bits(rng.next() as u32)));
    x.extend((0..50_000).map(|_| (rng.int(-1_000_000, 1_000_000) as f32) * 1e-4));
    for device in common::kernel_devices("half_conversions_match_the_half_crate") {
        let r = selftest::half_convert(&device, &x).unwrap();
        let gpu = device.kind() == BackendKind::Cuda; // CUDA returns a canonical NaN
        for (i, &v) in x.iter().enumerate() {
            let (h, b) = (f16::from_f32(v), bf16::from_f32(v));
            if v.is_nan() && gpu {
                assert!(r.f16[i].is_nan() && r.bf16[i].is_nan(), "NaN stays NaN");
                continue;
            }
            assert_eq!(r.f16[i].to_bits(), h.to_bits(), "{device:?}: f16 of {v:e} ({:#010x})", v.to_bits());
            assert_eq!(r.bf16[i].to_bits(), b.to_bits(), "{device:?}: bf16 of {v:e} ({:#010x})", v.to_bits());
            assert_eq!(r.back_f16[i].to_bits(), h.to_f32().to_bits(), "{device:?}: f16 {h:?} to f32");
            assert_eq!(r.back_bf16[i].to_bits(), b.to_f32().to_bits(), "{device:?}: bf16 {b:?} to f32");
            assert_eq!(r.pair[i], h.to_bits() as u32 | (b.to_bits() as u32) << 16, "{device:?}: packed pair of {v:e}");
        }
        assert_eq!(r.mismatches, 0, "{device:?}: to_float/from_float disagree with the intrinsics");
    }
}

#[test]
fn out_of_bounds_read_is_caught_under_asan() {
    if !tessera::emulator::sanitizer_enabled() {
        println!("skipped: not an ASan build (run with TESSERA_SANITIZE=address)");
        return;
    }
    let device = Device::emulator();
    let x = vec![1.0f32; 100];
    let msg = match within(120, move || selftest::oob(&device, &x)) {
        Err(Error::Emulator(msg)) => msg,
        other => panic!("an out-of-bounds read went unreported: {other:?}"),
    };
    assert!(msg.contains("selftest_oob"), "names the kernel: {msg}");
    assert!(msg.contains("heap-buffer-overflow"), "says what happened: {msg}");
}

#[test]
fn deadlock_is_reported_not_hung() {
    for (blocks, threads) in [(1, 32), (4, 64)] {
        let msg = within(60, move || {
            emulator_error(selftest::run_broken(&Device::emulator(), Broken::Deadlock, blocks, threads))
        });
        assert!(msg.starts_with("deadlock in kernel selftest_deadlock"), "{msg}");
        assert!(msg.contains("__syncthreads (deadlock.cu:"), "names the barrier: {msg}");
        assert!(msg.contains("__syncwarp with mask 0xffffffff (deadlock.cu:"), "names the warp sync: {msg}");
        assert!(msg.contains("threads 0,2,4,"), "lists the stuck threads: {msg}");
    }
}

#[test]
fn divergent_syncthreads_is_reported() {
    let msg = within(60, || emulator_error(selftest::run_broken(&Device::emulator(), Broken::DivergentSync, 2, 32)));
    assert!(msg.starts_with("warp collective misuse in kernel selftest_divergent_sync"), "{msg}");
    assert!(msg.contains("divergent __syncthreads at divergent_sync.cu:"), "{msg}");
}

#[test]
fn warp_collective_misuse_is_reported() {
    let cases = [
        (Broken::SelfNotInMask, 32, "does not include the calling lane"),
        (Broken::SourceNotInMask, 32, "reads lane 16, which is not in the mask"),
        (Broken::CollectiveMismatch, 32, "lanes meet at different warp collectives"),
        (Broken::MaskMismatch, 32, "lanes meet at different warp collectives"),
    ];
    for (which, threads, what) in cases {
        let msg = within(60, move || emulator_error(selftest::run_broken(&Device::emulator(), which, 1, threads)));
        assert!(msg.starts_with(&format!("warp collective misuse in kernel {}", which.kernel())), "{which:?}: {msg}");
        assert!(msg.contains(what), "{which:?}: expected \"{what}\" in: {msg}");
    }
    // Not misuse, as in CUDA: mask bits of lanes that have exited (lane 31 returned) or do not
    // exist (a 48-thread block) are ignored. Their values: tests/emulator_warps.rs.
    for (which, threads) in [(Broken::CollectiveExited, 32), (Broken::PartialWarpFullMask, 48)] {
        // One block: these kernels write out[threadIdx.x], so two blocks would race (racecheck).
        let result = within(60, move || selftest::run_broken(&Device::emulator(), which, 1, threads));
        assert!(result.is_ok(), "{which:?}: {result:?}");
    }
}
