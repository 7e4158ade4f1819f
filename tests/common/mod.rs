//! Helpers shared by the kernel tests: the one tolerance rule of DESIGN.md, and the
//! devices the properties run on.
#![allow(dead_code)]

use tessera::{DType, Device};

pub mod fixture;
pub mod models;

/// `atol + rtol·|ref|` per dtype, growing with the length of the reduction behind each
/// output element (`reduction_len` = 1 for elementwise ops).
pub fn tolerance(dtype: DType, reduction_len: usize) -> (f64, f64) {
    let (atol, rtol) = match dtype {
        DType::F32 => (1e-6, 1e-5),
        DType::F16 => (1e-4, 1e-3),
        DType::BF16 => (1e-3, 8e-3),
        other => panic!("no tolerance for {other:?}"),
    };
    let growth = (reduction_len.max(1) as f64).sqrt();
    (atol * growth, rtol * growth)
}

/// Asserts `|got − want| ≤ atol + rtol·|want|` elementwise; NaN must match NaN, and
/// infinities must match exactly.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], dtype: DType, reduction_len: usize) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let (atol, rtol) = tolerance(dtype, reduction_len);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= atol + rtol * w.abs()
        };
        assert!(ok, "{what}[{i}]: got {g}, want {w} (atol {atol}, rtol {rtol})");
    }
}

/// The devices on which kernel properties run: always the emulator; the GPU when one is
/// usable. Otherwise the skip is said once per test binary, on stderr past the test
/// harness's capture, so that it shows in a passing run too.
pub fn kernel_devices(test: &str) -> Vec<Device> {
    static SAID: std::sync::Once = std::sync::Once::new();
    let mut devices = vec![Device::emulator()];
    match Device::cuda(0) {
        Ok(gpu) => devices.push(gpu),
        Err(e) => SAID.call_once(|| {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{test}: the Cuda runs of these properties are skipped ({e})");
        }),
    }
    devices
}

/// Deterministic pseudo-random numbers (splitmix64), for the self-tests' inputs.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform integer in lo..=hi.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    /// A uniform 32-bit word.
    pub fn word(&mut self) -> u32 {
        self.next() as u32
    }
}
