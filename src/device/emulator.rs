//! The Emulator backend: calls the host-compiled kernels through `tessera_emu_launch`
//! (kernels/host/emulator_api.h), which runs one fiber per emulated GPU thread.

use super::LaunchConfig;
use crate::error::{Error, Result};
use std::ffi::{c_char, c_int, c_void, CStr, CString};

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
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn tessera_emu_sanitizer_enabled() -> c_int;
}

/// True when the emulator was built with AddressSanitizer (`TESSERA_SANITIZE=address`).
pub fn sanitizer_enabled() -> bool {
    // SAFETY: reads a compile-time constant of the C++ library.
    unsafe { tessera_emu_sanitizer_enabled() != 0 }
}

extern "C" fn call_thread<F: Fn()>(ctx: *const c_void) {
    // SAFETY: `ctx` is the `&F` passed to `launch` below, alive for the whole launch.
    let f = unsafe { &*(ctx as *const F) };
    f();
}

/// Runs `thread_body` once per emulated thread of the launch `cfg`. The body calls the
/// host-compiled kernel; it must not panic (it only makes the FFI call).
pub(crate) fn launch<F: Fn()>(kernel: &'static str, cfg: &LaunchConfig, thread_body: F) -> Result<()> {
    let name = CString::new(kernel).expect("kernel names have no NUL");
    let mut err = vec![0u8; 4096];
    // SAFETY: the runtime calls `call_thread::<F>` with `ctx` on worker threads and joins
    // them all before returning, so `thread_body` outlives every call.
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
            err.as_mut_ptr() as *mut c_char,
            err.len(),
        )
    };
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
