// The C entry points of the kernel emulator, called from Rust (src/device/emulator.rs).
//
// A launch runs `thunk(ctx)` once per emulated GPU thread, each on its own fiber, with
// the thread's builtin variables (threadIdx, blockIdx, blockDim, gridDim) set. The
// thunk is generated on the Rust side: it calls the host-compiled kernel with the
// launch's arguments. Blocks run in parallel on the host's cores; the threads of a
// block run cooperatively on one OS thread and switch only at barriers, warp
// collectives and exit.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*tessera_emu_thunk)(const void* ctx);

// Status codes returned by tessera_emu_launch.
enum tessera_emu_status {
    TESSERA_EMU_OK = 0,
    TESSERA_EMU_BAD_CONFIG = 1,       // grid/block/shared-memory limits of an sm_90 device exceeded
    TESSERA_EMU_DEADLOCK = 2,         // no thread can make progress (barrier or warp collective never completes)
    TESSERA_EMU_WARP_MISUSE = 3,      // a warp collective used wrongly (lane not in its own mask, inactive source lane,
                                      // mismatched masks/operations, divergent __syncthreads call sites, ...)
    TESSERA_EMU_SANITIZER = 4,        // AddressSanitizer reported an invalid memory access inside the kernel
    TESSERA_EMU_RESOURCES = 5,        // the host could not allocate fiber stacks or shared memory
};

// Runs one kernel launch to completion. Returns a tessera_emu_status; on failure writes a
// NUL-terminated message naming the kernel, the block and thread(s) involved into
// `err` (truncated to err_len bytes).
int tessera_emu_launch(const char* kernel_name,
                       unsigned grid_x, unsigned grid_y, unsigned grid_z,
                       unsigned block_x, unsigned block_y, unsigned block_z,
                       size_t dynamic_smem_bytes,
                       tessera_emu_thunk thunk, const void* ctx,
                       char* err, size_t err_len);

// 1 when the emulator was compiled with AddressSanitizer (TESSERA_SANITIZE=address), else 0.
int tessera_emu_sanitizer_enabled(void);

#ifdef __cplusplus
}
#endif
