//! Self-tests of the emulator's checks (`kernels/selftest/checks_probes.cu`): each kernel has
//! a planted bug, switched on by `bug`, that memcheck, racecheck, initcheck or the launch
//! limits must catch, and is correct with `bug == false` (the fixed twin). `tests/checks.rs`
//! runs them. Hidden from the documentation: test support, not API.

use crate::device::{Device, DeviceBuffer};
use crate::error::Result;
use crate::kernels::launch::LaunchConfig;
use half::f16;

declare_kernels! {
    /// C: `selftest_chk_reduce(const float* src, float* out, int bug)`
    fn selftest_chk_reduce(src: input f32, out: output f32, bug: scalar i32);
    /// C: `selftest_chk_warp_reduce(const float* src, float* out, int bug)`
    fn selftest_chk_warp_reduce(src: input f32, out: output f32, bug: scalar i32);
    /// C: `selftest_chk_counter(float* out, int bug)`
    fn selftest_chk_counter(out: output f32, bug: scalar i32);
    /// C: `selftest_chk_exchange(const float* src, float* out, int bug)`
    fn selftest_chk_exchange(src: input f32, out: output f32, bug: scalar i32);
    /// C: `selftest_chk_uninit_counter(float* out, int bug)`
    fn selftest_chk_uninit_counter(out: output f32, bug: scalar i32);
    /// C: `selftest_chk_view_overread(const float* src, float* out, int n, int bug)`
    fn selftest_chk_view_overread(src: input f32, out: output f32, n: scalar i32, bug: scalar i32);
    /// C: `selftest_chk_ldmatrix(const tessera::f16* src, unsigned* out, int bug)`
    fn selftest_chk_ldmatrix(src: input f16, out: output u32, bug: scalar i32);
    /// C: `selftest_chk_global_race(float* out, int bug)`
    fn selftest_chk_global_race(out: output f32, bug: scalar i32);
    /// C: `selftest_chk_store_input(const float* src, float* out, int bug)`
    fn selftest_chk_store_input(src: input f32, out: output f32, bug: scalar i32);
    /// C: `selftest_chk_undefined(const float* src, int* out, int shift, int bug)`
    fn selftest_chk_undefined(src: input f32, out: output i32, shift: scalar i32, bug: scalar i32);
    /// C: `selftest_chk_smem_limit(float* out, int dynamic_floats)`
    fn selftest_chk_smem_limit(out: output f32, dynamic_floats: scalar i32);
    /// C: `selftest_chk_big_static(float* out, int bug)`
    fn selftest_chk_big_static(out: output f32, bug: scalar i32);
}

/// The probes, by name; see `kernels/selftest/checks_probes.cu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Reduce,
    WarpReduce,
    Counter,
    Exchange,
    UninitCounter,
    ViewOverread,
    Ldmatrix,
    GlobalRace,
    StoreInput,
    FloatToIntOverflow,
    OversizedShift,
    BigStatic,
}

/// Every probe.
pub const PROBES: [Probe; 12] = [
    Probe::Reduce,
    Probe::WarpReduce,
    Probe::Counter,
    Probe::Exchange,
    Probe::UninitCounter,
    Probe::ViewOverread,
    Probe::Ldmatrix,
    Probe::GlobalRace,
    Probe::StoreInput,
    Probe::FloatToIntOverflow,
    Probe::OversizedShift,
    Probe::BigStatic,
];

/// The input every probe reads: 1, 2, ..., 256.
pub fn probe_input() -> Vec<f32> {
    (1..=256).map(|i| i as f32).collect()
}

/// Runs `probe` with its bug planted (`bug`) or not; returns its float outputs (the integer
/// outputs converted) or the launch's error.
pub fn run(device: &Device, probe: Probe, bug: bool) -> Result<Vec<f32>> {
    let b = bug as i32;
    let input = probe_input();
    let one = |threads: u32| LaunchConfig::linear(1, threads, 0);
    match probe {
        Probe::Reduce => {
            let src = device.upload(&input)?;
            let mut out = DeviceBuffer::<f32>::zeros(device, 1)?;
            selftest_chk_reduce(device, &one(256), &src, &mut out, b)?;
            out.download()
        }
        Probe::WarpReduce => {
            let src = device.upload(&input[..32])?;
            let mut out = DeviceBuffer::<f32>::zeros(device, 1)?;
            selftest_chk_warp_reduce(device, &one(32), &src, &mut out, b)?;
            out.download()
        }
        Probe::Counter => {
            let mut out = DeviceBuffer::<f32>::zeros(device, 1)?;
            selftest_chk_counter(device, &one(256), &mut out, b)?;
            out.download()
        }
        Probe::Exchange => {
            let src = device.upload(&input[..64])?;
            let mut out = DeviceBuffer::<f32>::zeros(device, 64)?;
            selftest_chk_exchange(device, &one(64), &src, &mut out, b)?;
            out.download()
        }
        Probe::UninitCounter => {
            let mut out = DeviceBuffer::<f32>::zeros(device, 1)?;
            selftest_chk_uninit_counter(device, &one(256), &mut out, b)?;
            out.download()
        }
        Probe::ViewOverread => {
            // A view of the first 100 elements of a 256-element allocation.
            let src = device.upload(&input)?;
            let mut out = DeviceBuffer::<f32>::zeros(device, 100)?;
            selftest_chk_view_overread(device, &LaunchConfig::linear(1, 128, 0), src.view(..100)?, &mut out, 100, b)?;
            out.download()
        }
        Probe::Ldmatrix => {
            let tile: Vec<f16> = (0..64).map(|i| f16::from_f32(i as f32)).collect();
            let src = device.upload(&tile)?;
            let mut out = DeviceBuffer::<u32>::zeros(device, 32)?;
            selftest_chk_ldmatrix(device, &one(32), &src, &mut out, b)?;
            Ok(out.download()?.into_iter().map(|w| w as f32).collect())
        }
        Probe::GlobalRace => {
            let mut out = DeviceBuffer::<f32>::zeros(device, 1)?;
            selftest_chk_global_race(device, &LaunchConfig::linear(2, 32, 0), &mut out, b)?;
            out.download()
        }
        Probe::StoreInput => {
            let src = device.upload(&input[..32])?;
            let mut out = DeviceBuffer::<f32>::zeros(device, 32)?;
            selftest_chk_store_input(device, &one(32), &src, &mut out, b)?;
            out.download()
        }
        Probe::FloatToIntOverflow | Probe::OversizedShift => {
            let value = if bug { 3.0e9f32 } else { 12.0 };
            let src = device.upload(&[value])?;
            let mut out = DeviceBuffer::<i32>::zeros(device, 2)?;
            let (shift, mode) = match probe {
                Probe::FloatToIntOverflow => (0, 1),
                _ => (if bug { 32 } else { 5 }, 2),
            };
            selftest_chk_undefined(device, &one(1), &src, &mut out, shift, mode)?;
            Ok(out.download()?.into_iter().map(|v| v as f32).collect())
        }
        Probe::BigStatic => {
            let mut out = DeviceBuffer::<f32>::zeros(device, 1)?;
            selftest_chk_big_static(device, &one(32), &mut out, b)?;
            out.download()
        }
    }
}

/// Bytes of static shared memory `selftest_chk_smem_limit` declares.
pub const SMEM_LIMIT_STATIC_BYTES: u32 = 8192;

/// Runs `selftest_chk_smem_limit` with `dynamic_bytes` of dynamic shared memory (a multiple
/// of 4, at least 4) beside its static 8 KiB; returns its output (3 when both parts work).
pub fn smem_limit(device: &Device, dynamic_bytes: u32) -> Result<f32> {
    let mut out = DeviceBuffer::<f32>::zeros(device, 1)?;
    let cfg = LaunchConfig::linear(1, 32, dynamic_bytes);
    selftest_chk_smem_limit(device, &cfg, &mut out, (dynamic_bytes / 4) as i32)?;
    Ok(out.download()?[0])
}

/// `selftest_chk_view_overread` (without its bug) reading a buffer allocated uninitialised:
/// `written` fills it from the host first (the fixed twin); otherwise initcheck must report
/// the first read.
pub fn uninit_device_read(device: &Device, written: bool) -> Result<Vec<f32>> {
    let mut src = DeviceBuffer::<f32>::uninit(device, 100)?;
    if written {
        src.copy_from_host(&probe_input()[..100])?;
    }
    let mut out = DeviceBuffer::<f32>::zeros(device, 100)?;
    selftest_chk_view_overread(device, &LaunchConfig::linear(1, 128, 0), &src, &mut out, 100, 0)?;
    out.download()
}
