//! Warp convergence in the kernel emulator (kernels/selftest/warp_converge.cu, wrapped at the
//! end of src/selftest.rs): `__activemask` names exactly the lanes converged at the call, and
//! full-mask collectives work in a partial warp and after lanes have returned (their mask bits
//! are ignored, as on a GPU). Expected values are computed here in plain Rust.
//!
//! Values that are undefined on a GPU (a shuffle that reads a lane that does not exist or has
//! exited) are checked on the emulator only, where they are all bits set.

mod common;

use tessera::selftest::{self, SENTINEL_U32};
use tessera::{BackendKind, Device};

/// What the emulator's shuffle returns for a lane that does not exist or has exited.
const POISON: u32 = u32::MAX;

/// Bits of the lanes `l` of the warp starting at global index `w0` (and below `end`) with `f(w0 + l)`.
fn lanes_where(w0: usize, end: usize, f: impl Fn(usize) -> bool) -> u32 {
    (0..32).filter(|&l| w0 + l < end && f(w0 + l)).fold(0u32, |m, l| m | 1 << l)
}

fn is_emulator(device: &Device) -> bool {
    device.kind() == BackendKind::Emulator
}

#[test]
fn warp_aggregated_atomic_counts_each_true_predicate_once() {
    // Block 0: 22 of 256 threads, in every warp, mostly not at lane 0 (the leader varies).
    // Block 1: one full warp and one lone lane. Block 2: none.
    let block0 =
        [0usize, 5, 31, 33, 40, 41, 42, 70, 95, 100, 127, 128, 129, 150, 160, 191, 200, 201, 222, 230, 254, 255];
    assert_eq!(block0.len(), 22);
    let mut pred = vec![0i32; 3 * 256];
    block0.iter().for_each(|&t| pred[t] = 1);
    (256 + 64..256 + 96).for_each(|g| pred[g] = 1);
    pred[256 + 170] = 1;
    let truths = pred.iter().filter(|&&p| p != 0).count();
    assert_eq!(truths, 22 + 33);
    for device in common::kernel_devices("warp_aggregated_atomic_counts_each_true_predicate_once") {
        let (ctr, masks) = selftest::warp_aggregate(&device, &pred).unwrap();
        assert_eq!(ctr as usize, truths, "{device:?}: warp-aggregated counter");
        for g in 0..pred.len() {
            let w0 = g - g % 32;
            let want = if pred[g] != 0 { lanes_where(w0, pred.len(), |k| pred[k] != 0) } else { SENTINEL_U32 };
            assert_eq!(masks[g], want, "{device:?} thread {g} (lane {}): __activemask", g % 32);
        }
    }
}

#[test]
fn activemask_at_two_call_sites_gives_the_two_branches() {
    // Blocks of 80 threads: warp 2 has lanes 0-15 only. Warp 0 of block 1 all true, warp 1 of
    // block 2 all false, the rest mixed.
    let threads = 80usize;
    let mut pred: Vec<i32> = (0..threads * 3).map(|g| ((g * 7 + g / 5) % 3 == 0) as i32).collect();
    pred[threads..threads + 32].iter_mut().for_each(|p| *p = 1);
    pred[2 * threads + 32..2 * threads + 64].iter_mut().for_each(|p| *p = 0);
    for device in common::kernel_devices("activemask_at_two_call_sites_gives_the_two_branches") {
        let out = selftest::activemask_branches(&device, &pred, threads as u32).unwrap();
        for g in 0..pred.len() {
            let (b0, t) = (g / threads * threads, g % threads);
            let w0 = b0 + t - t % 32;
            let end = b0 + threads;
            let taken = lanes_where(w0, end, |k| pred[k] != 0);
            let other = lanes_where(w0, end, |k| pred[k] == 0);
            assert_eq!(taken & other, 0);
            let want = if pred[g] != 0 { taken } else { other };
            assert_eq!(out[g], want, "{device:?} thread {g} (block thread {t}, pred {})", pred[g]);
        }
    }
}

#[test]
fn full_mask_collectives_in_a_partial_warp() {
    for device in common::kernel_devices("full_mask_collectives_in_a_partial_warp") {
        let out = selftest::partial_warp_reduce(&device).unwrap();
        for t in 0..48usize {
            let o = &out[t * 4..t * 4 + 4];
            let half = t - t % 16; // the xor butterfly with offsets < 16 stays in 16 lanes
            let half_sum: usize = (half..half + 16).map(|k| k + 1).sum();
            assert_eq!(o[0] as usize, half_sum, "{device:?} thread {t}: xor reduction over 16 lanes");
            let (ballot, sum) = if t < 32 { (u32::MAX, (1..=32).sum::<u32>()) } else { (0xffff, (33..=48).sum()) };
            assert_eq!(o[1], ballot, "{device:?} thread {t}: __ballot_sync");
            assert_eq!(o[2], sum, "{device:?} thread {t}: __reduce_add_sync");
            if t < 32 {
                assert_eq!(o[3], (t ^ 16) as u32, "{device:?} thread {t}: shuffle across the halves");
            } else if is_emulator(&device) {
                assert_eq!(o[3], POISON, "{device:?} thread {t}: read of lane {} that does not exist", (t % 32) ^ 16);
            }
        }
    }
}

#[test]
fn full_mask_shuffle_after_lane_31_returned() {
    // Two blocks: threads start in ascending order in even blocks and descending order in odd
    // ones, so lane 31 exits after the others wait in one block and before they arrive in the other.
    let (blocks, threads) = (2u32, 64usize);
    for device in common::kernel_devices("full_mask_shuffle_after_lane_31_returned") {
        let out = selftest::shfl_after_exit(&device, blocks, threads as u32).unwrap();
        for t in 0..blocks as usize * threads {
            let lane = (t % 32) as u32;
            let o = &out[t * 4..t * 4 + 4];
            if lane == 31 {
                assert_eq!(o, &[SENTINEL_U32; 4], "thread {t} returned");
                continue;
            }
            let emu = is_emulator(&device);
            let xor = if lane == 30 { POISON } else { lane ^ 1 };
            if lane != 30 || emu {
                assert_eq!(o[0], xor, "{device:?} thread {t}: __shfl_xor_sync(full, lane, 1)");
            }
            let down = match lane {
                29 => POISON,
                30 => 30,
                _ => lane + 2,
            };
            if lane != 29 || emu {
                assert_eq!(o[1], down, "{device:?} thread {t}: __shfl_down_sync(full, lane, 2)");
            }
            assert_eq!(o[2], 0x7fff_ffff, "{device:?} thread {t}: __ballot_sync");
            assert_eq!(o[3], (1..=31).sum::<u32>(), "{device:?} thread {t}: __reduce_add_sync");
        }
    }
}
