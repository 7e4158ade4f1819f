//! The emulator's memory-traffic profile (`tessera::emulator::profile`) on access patterns
//! whose figures are known: the expected counts are computed here from the patterns with
//! the hardware model (32-byte sectors; 32 banks of 4 bytes, served in 1, 2 or 4 phases for
//! 4-, 8- and 16-byte accesses), never copied from the profiler's output.

use std::collections::BTreeSet;
use tessera::emulator::{checks_enabled, profile, LaunchRecord};
use tessera::profile::LaunchProfile;
use tessera::{selftest, Device};

/// The one record of a launch made by `f`, or None (with a note) when the build has no checks.
fn one_launch<R>(kernel: &str, f: impl FnOnce() -> tessera::Result<R>) -> Option<(R, LaunchRecord)> {
    if !checks_enabled() {
        eprintln!("skipped: the emulator was built without TESSERA_SANITIZE=checks, so nothing is profiled");
        return None;
    }
    let (value, records) = profile(f);
    let value = value.expect("the probe runs");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].kernel, kernel);
    Some((value, records.into_iter().next().unwrap()))
}

/// Distinct 32-byte sectors of one warp's accesses (byte address, size).
fn sectors(accesses: &[(usize, usize)]) -> u64 {
    accesses.iter().flat_map(|&(a, n)| a / 32..=(a + n - 1) / 32).collect::<BTreeSet<_>>().len() as u64
}

/// Wavefronts of one warp-level shared request: `accesses[lane] = (byte address, size)`.
/// The request's width is its largest access: 32 lanes per phase for ≤ 4 bytes, 16 for 8,
/// 8 for 16; each phase costs the largest number of distinct words any bank holds.
fn wavefronts(accesses: &[(usize, usize)]) -> u64 {
    let width = accesses.iter().map(|a| a.1).max().unwrap_or(4);
    let per_phase = match width {
        0..=4 => 32,
        5..=8 => 16,
        _ => 8,
    };
    accesses
        .chunks(per_phase)
        .map(|phase| {
            let words: BTreeSet<usize> = phase.iter().flat_map(|&(a, n)| a / 4..=(a + n - 1) / 4).collect();
            (0..32).map(|bank| words.iter().filter(|w| *w % 32 == bank).count()).max().unwrap() as u64
        })
        .sum()
}

#[test]
fn coalesced_and_strided_loads() {
    let device = Device::emulator();
    let blocks = 3u32;
    for stride in [1usize, 8] {
        let n = blocks as usize * 64;
        let x: Vec<f32> = (0..n * stride).map(|i| i as f32).collect();
        let Some((out, r)) =
            one_launch("selftest_profile_global", || selftest::profile_global(&device, &x, blocks, stride))
        else {
            return;
        };
        // The kernel's output starts at the first 128-byte boundary: find it.
        let want: Vec<f32> = (0..n).map(|t| x[t * stride]).collect();
        assert!((0..32).any(|off| out[off..off + n] == want[..]), "stride {stride}: wrong output");

        let warps = n as u64 / 32;
        // Per warp: lane l loads the 4 bytes at byte 4·stride·(32w + l) of an aligned array.
        let load_sectors: u64 = (0..warps as usize)
            .map(|w| sectors(&(0..32).map(|l| (4 * stride * (32 * w + l), 4)).collect::<Vec<_>>()))
            .sum();
        let store_sectors: u64 =
            (0..warps as usize).map(|w| sectors(&(0..32).map(|l| (4 * (32 * w + l), 4)).collect::<Vec<_>>())).sum();
        let c = r.counters;
        assert_eq!(
            (c.global_load_requests, c.global_load_sectors, c.global_load_bytes),
            (warps, load_sectors, warps * 128)
        );
        assert_eq!(
            (c.global_store_requests, c.global_store_sectors, c.global_store_bytes),
            (warps, store_sectors, warps * 128)
        );
        let p = LaunchProfile::new(&r);
        let efficiency = p.global_load_efficiency().unwrap();
        assert_eq!(efficiency, if stride == 1 { 1.0 } else { 1.0 / 8.0 }, "stride {stride}");
        assert_eq!(efficiency, (warps * 128) as f64 / (load_sectors * 32) as f64);
        assert_eq!(p.global_store_efficiency(), Some(1.0));
        assert_eq!(p.bytes_moved(), (load_sectors + store_sectors) * 32);
        // Distinct bytes: each loaded and each stored float once; the minimum is the views.
        assert_eq!(p.distinct_bytes(), 2 * 4 * n as u64);
        assert_eq!(p.minimum_bytes(), 4 * (n * stride + 32 + n + 32) as u64);
        assert_eq!(c.shared_load_requests + c.shared_store_requests, 0);
    }
}

#[test]
fn transpose_without_padding_has_32_way_conflicts_and_with_padding_none() {
    let device = Device::emulator();
    let x: Vec<f32> = (0..1024).map(|i| i as f32).collect();
    let transposed: Vec<f32> = (0..1024).map(|i| x[(i % 32) * 32 + i / 32]).collect();
    for pitch in [32usize, 33] {
        let Some((out, r)) =
            one_launch("selftest_profile_transpose", || selftest::profile_transpose(&device, &x, pitch))
        else {
            return;
        };
        assert!((0..32).any(|off| out[off..off + 1024] == transposed[..]), "pitch {pitch}: wrong output");
        // Warp ty (the block is 32×32, so warp = ty): stores row ty (word ty·pitch + lane),
        // then loads column ty (word lane·pitch + ty).
        let store: u64 =
            (0..32).map(|ty| wavefronts(&(0..32).map(|l| (4 * (ty * pitch + l), 4)).collect::<Vec<_>>())).sum();
        let load: u64 =
            (0..32).map(|ty| wavefronts(&(0..32).map(|l| (4 * (l * pitch + ty), 4)).collect::<Vec<_>>())).sum();
        assert_eq!((store, load), if pitch == 32 { (32, 32 * 32) } else { (32, 32) });
        let c = r.counters;
        assert_eq!((c.shared_store_requests, c.shared_store_wavefronts, c.shared_store_bytes), (32, store, 4096));
        assert_eq!((c.shared_load_requests, c.shared_load_wavefronts, c.shared_load_bytes), (32, load, 4096));
        let p = LaunchProfile::new(&r);
        let per_request = if pitch == 32 { 32.0 } else { 1.0 };
        assert_eq!(p.shared_load_wavefronts_per_request(), Some(per_request), "pitch {pitch}");
        assert_eq!(p.shared_store_wavefronts_per_request(), Some(1.0));
        assert_eq!(p.shared_load_conflict_factor(), Some(per_request));
        assert_eq!(c.barriers, 1);
        // Both global sides are coalesced: 4 sectors per warp.
        assert_eq!((c.global_load_requests, c.global_load_sectors), (32, 128));
        assert_eq!((c.global_store_requests, c.global_store_sectors), (32, 128));
    }
}

#[test]
fn wide_shared_accesses_use_the_hardware_phases() {
    let device = Device::emulator();
    // (pattern, bytes per lane, word of lane l): see kernels/selftest/profile_probes.cu.
    type Pattern = (i32, usize, fn(usize) -> usize);
    let patterns: [Pattern; 8] = [
        (0, 8, |l| 2 * l),
        (1, 8, |l| 4 * l),
        (2, 16, |l| 4 * l),
        (3, 16, |l| 8 * l),
        (4, 4, |_| 0),
        (5, 4, |l| 2 * l),
        (6, 16, |l| 4 * l),
        (7, 8, |l| 4 * l),
    ];
    for (pattern, size, word) in patterns {
        let Some((out, r)) =
            one_launch("selftest_profile_shared_wide", || selftest::profile_shared_wide(&device, pattern))
        else {
            return;
        };
        // s[i] = i, so the sum of the loaded words is known.
        let want: Vec<u32> = (0..32).map(|l| (0..size / 4).map(|i| (word(l) + i) as u32).sum()).collect();
        assert_eq!(out, want, "pattern {pattern}");
        let expected = wavefronts(&(0..32).map(|l| (4 * word(l), size)).collect::<Vec<_>>());
        let by_hand = [2, 4, 4, 8, 1, 2, 4, 4][pattern as usize];
        assert_eq!(expected, by_hand, "the model itself, pattern {pattern}");
        let c = r.counters;
        assert_eq!(
            (c.shared_load_requests, c.shared_load_wavefronts, c.shared_load_bytes),
            (1, expected, 32 * size as u64),
            "pattern {pattern}"
        );
        // The fill: 32 conflict-free requests of 32 consecutive words.
        assert_eq!((c.shared_store_requests, c.shared_store_wavefronts), (32, 32), "pattern {pattern}");
        // Without conflicts: one wavefront per phase (32 lanes of words, 16 of 8 bytes, 8 of
        // 16 bytes; a broadcast is one phase too).
        let fewest = (32 * size as u64).div_ceil(128);
        assert_eq!(c.shared_load_ideal_wavefronts, fewest, "pattern {pattern}");
        assert_eq!(c.shared_store_ideal_wavefronts, 32, "pattern {pattern}");
        let conflict = LaunchProfile::new(&r).shared_load_conflict_factor().unwrap();
        assert_eq!(conflict, expected as f64 / fewest as f64, "pattern {pattern}");
    }
}

#[test]
fn nothing_is_recorded_outside_profile() {
    let device = Device::emulator();
    let x = vec![1.0f32; 64];
    selftest::profile_global(&device, &x, 1, 1).unwrap();
    let ((), records) = profile(|| ());
    assert!(records.is_empty());
}
