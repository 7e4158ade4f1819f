//! The Emulator backend: calls the host-compiled kernels through `tessera_emu_launch`
//! (kernels/host/emulator_api.h), which runs one fiber per emulated GPU thread.
//!
//! Every launch passes its pointer arguments with their exact byte ranges, so that the
//! checks build (`TESSERA_SANITIZE=checks`, the test suite's default) can hold each access of
//! the kernel to the views it was given. [`profile`] collects the memory-traffic figures of
//! the launches made inside it.

use super::LaunchConfig;
use crate::error::{Error, Result};
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void, CStr, CString};

/// One pointer argument of a launch (`tessera_emu_arg`).
#[repr(C)]
pub(crate) struct EmuArg {
    ptr: *const c_void,
    bytes: usize,
    flags: u32,
    name: *const c_char,
}

const ARG_WRITABLE: u32 = 1;

impl EmuArg {
    /// A read-only argument: `name` must be NUL-terminated (`concat!(name, "\0")`).
    pub(crate) fn input(name: &'static str, ptr: *const c_void, bytes: usize) -> Self {
        debug_assert!(name.ends_with('\0'));
        EmuArg { ptr, bytes, flags: 0, name: name.as_ptr() as *const c_char }
    }
    /// A writable argument.
    pub(crate) fn output(name: &'static str, ptr: *const c_void, bytes: usize) -> Self {
        debug_assert!(name.ends_with('\0'));
        EmuArg { ptr, bytes, flags: ARG_WRITABLE, name: name.as_ptr() as *const c_char }
    }
}

#[repr(C)]
struct EmuOptions {
    sm: u32,
    profile: u32,
}

/// The memory-traffic counters of one launch (`tessera_emu_profile`). A request is one
/// warp-level instruction (the k-th access of each lane at one call site between two
/// synchronization points of the lane); sectors are 32 bytes; bytes are bytes requested.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProfileCounters {
    /// Warp-level global load requests.
    pub global_load_requests: u64,
    /// 32-byte sectors those loads touch.
    pub global_load_sectors: u64,
    /// Bytes the loads request.
    pub global_load_bytes: u64,
    /// Warp-level global store requests.
    pub global_store_requests: u64,
    /// 32-byte sectors those stores touch.
    pub global_store_sectors: u64,
    /// Bytes the stores write.
    pub global_store_bytes: u64,
    /// Distinct bytes of the launch's arguments touched (what perfect caching would move).
    pub global_distinct_bytes: u64,
    /// Warp-level shared-memory load requests.
    pub shared_load_requests: u64,
    /// Their wavefronts (1 per request when free of bank conflicts).
    pub shared_load_wavefronts: u64,
    /// Bytes the shared loads request.
    pub shared_load_bytes: u64,
    /// Warp-level shared-memory store requests.
    pub shared_store_requests: u64,
    /// Their wavefronts.
    pub shared_store_wavefronts: u64,
    /// Bytes the shared stores write.
    pub shared_store_bytes: u64,
    /// Wavefronts the shared loads would take without bank conflicts: one per phase (32,
    /// 16 or 8 lanes for 4-, 8- and 16-byte accesses) in which a lane is active.
    pub shared_load_ideal_wavefronts: u64,
    /// Wavefronts the shared stores would take without bank conflicts.
    pub shared_store_ideal_wavefronts: u64,
    /// Thread-level atomic operations.
    pub atomics: u64,
    /// Warp-level `mma.sync` operations (m16n8k16 and m16n8k8, every dtype), one per warp instruction.
    pub mma: u64,
    /// Warp-level `ldmatrix` operations.
    pub ldmatrix: u64,
    /// Thread-level 16-byte `cp.async` copies.
    pub cp_async: u64,
    /// Block barriers released.
    pub barriers: u64,
}

/// One profiled emulator launch.
#[derive(Clone, Debug)]
pub struct LaunchRecord {
    /// The kernel's symbol, e.g. `fsq_quantize_f32`.
    pub kernel: &'static str,
    /// Grid of the launch, in blocks.
    pub grid: (u32, u32, u32),
    /// Block of the launch, in threads.
    pub block: (u32, u32, u32),
    /// Dynamic shared memory of the launch, in bytes.
    pub shared_mem_bytes: u32,
    /// The emulator's counts.
    pub counters: ProfileCounters,
    /// Bytes of the input views (each read once: the op's minimum).
    pub input_bytes: u64,
    /// Bytes of the output views (each written once).
    pub output_bytes: u64,
    /// Floating-point operations of the launch, as its wrapper counts them (0: not given).
    pub flops: u64,
}

extern "C" {
    fn tessera_emu_launch(
        kernel_name: *const c_char,
        grid_x: u32,
        grid_y: u32,
        grid_z: u32,
        block_x: u32,
        block_y: u32,
        block_z: u32,
        dynamic_smem_bytes: usize,
        thunk: extern "C" fn(*const c_void),
        ctx: *const c_void,
        args: *const EmuArg,
        nargs: usize,
        options: *const EmuOptions,
        profile: *mut ProfileCounters,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn tessera_emu_sanitizer_enabled() -> c_int;
    fn tessera_emu_checks_enabled() -> c_int;
}

/// True when the emulator was built with AddressSanitizer (`TESSERA_SANITIZE=address`).
pub fn sanitizer_enabled() -> bool {
    // SAFETY: reads a compile-time constant of the C++ library.
    unsafe { tessera_emu_sanitizer_enabled() != 0 }
}

/// True when the kernels were built with the emulator's checks (`TESSERA_SANITIZE=checks`,
/// the default of the test suite): memcheck, racecheck, initcheck and [`profile`].
pub fn checks_enabled() -> bool {
    // SAFETY: reads a compile-time constant of the C++ library.
    unsafe { tessera_emu_checks_enabled() != 0 }
}

thread_local! {
    static RECORDS: RefCell<Option<Vec<LaunchRecord>>> = const { RefCell::new(None) };
    static NEXT_FLOPS: Cell<u64> = const { Cell::new(0) };
    static EMULATED_SM: Cell<u32> = const { Cell::new(90) };
}

/// Runs `f` with every emulator launch made on this thread profiled; returns `f`'s value and
/// the records, in launch order. The counters are filled only when [`checks_enabled`]
/// (otherwise they are zero, apart from the runtime's own counts: mma, ldmatrix, cp.async,
/// barriers, atomics).
pub fn profile<R>(f: impl FnOnce() -> R) -> (R, Vec<LaunchRecord>) {
    let outer = RECORDS.with(|r| r.borrow_mut().replace(Vec::new()));
    let value = f();
    let records = RECORDS.with(|r| std::mem::replace(&mut *r.borrow_mut(), outer)).unwrap_or_default();
    (value, records)
}

/// The FLOPs of the next emulator launch made on this thread (wrappers call it just before
/// launching); ignored outside [`profile`].
pub(crate) fn hint_flops(flops: u64) {
    if RECORDS.with(|r| r.borrow().is_some()) {
        NEXT_FLOPS.with(|c| c.set(flops));
    }
}

/// Runs `f` with the emulator enforcing the limits of `sm` (80 or 90; the default is 90)
/// for launches made on this thread: shared memory per block is 163 KiB on sm_80, 227 KiB on
/// sm_90.
pub fn with_arch<R>(sm: u32, f: impl FnOnce() -> R) -> R {
    let old = EMULATED_SM.with(|c| c.replace(sm));
    let value = f();
    EMULATED_SM.with(|c| c.set(old));
    value
}

extern "C" fn call_thread<F: Fn()>(ctx: *const c_void) {
    // SAFETY: `ctx` is the `&F` passed to `launch` below, alive for the whole launch.
    let f = unsafe { &*(ctx as *const F) };
    f();
}

/// Runs `thread_body` once per emulated thread of the launch `cfg`. The body calls the
/// host-compiled kernel; it must not panic (it only makes the FFI call). `args`: the
/// kernel's pointer arguments with their exact ranges.
pub(crate) fn launch<F: Fn()>(kernel: &'static str, cfg: &LaunchConfig, args: &[EmuArg], thread_body: F) -> Result<()> {
    let name = CString::new(kernel).expect("kernel names have no NUL");
    let mut err = vec![0u8; 4096];
    let profiling = RECORDS.with(|r| r.borrow().is_some());
    let flops = NEXT_FLOPS.with(|c| c.replace(0));
    let options = EmuOptions { sm: EMULATED_SM.with(Cell::get), profile: profiling as u32 };
    let mut counters = ProfileCounters::default();
    // SAFETY: the runtime calls `call_thread::<F>` with `ctx` on worker threads and joins
    // them all before returning, so `thread_body` outlives every call; `args` and `options`
    // outlive the call.
    let status = unsafe {
        tessera_emu_launch(
            name.as_ptr(),
            cfg.grid.0,
            cfg.grid.1,
            cfg.grid.2,
            cfg.block.0,
            cfg.block.1,
            cfg.block.2,
            cfg.shared_mem_bytes as usize,
            call_thread::<F>,
            &thread_body as *const F as *const c_void,
            args.as_ptr(),
            args.len(),
            &options,
            &mut counters,
            err.as_mut_ptr() as *mut c_char,
            err.len(),
        )
    };
    if profiling {
        let (mut input_bytes, mut output_bytes) = (0u64, 0u64);
        for a in args {
            if a.flags & ARG_WRITABLE != 0 {
                output_bytes += a.bytes as u64;
            } else {
                input_bytes += a.bytes as u64;
            }
        }
        let record = LaunchRecord {
            kernel,
            grid: cfg.grid,
            block: cfg.block,
            shared_mem_bytes: cfg.shared_mem_bytes,
            counters,
            input_bytes,
            output_bytes,
            flops,
        };
        RECORDS.with(|r| r.borrow_mut().as_mut().map(|v| v.push(record)));
    }
    if status == 0 {
        return Ok(());
    }
    let message = CStr::from_bytes_until_nul(&err)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(&err).into_owned());
    Err(Error::Emulator(if message.is_empty() {
        format!("kernel {kernel} failed with status {status}")
    } else {
        message
    }))
}
