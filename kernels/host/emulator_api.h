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
    TESSERA_EMU_BAD_CONFIG = 1,       // grid/block/shared-memory limits of the emulated architecture exceeded
    TESSERA_EMU_DEADLOCK = 2,         // no thread can make progress (barrier or warp collective never completes)
    TESSERA_EMU_WARP_MISUSE = 3,      // a warp collective used wrongly (lane not in its own mask, inactive source lane,
                                      // mismatched masks/operations, divergent __syncthreads call sites, ...)
    TESSERA_EMU_SANITIZER = 4,        // AddressSanitizer reported an invalid memory access inside the kernel
    TESSERA_EMU_RESOURCES = 5,        // the host could not allocate fiber stacks or shared memory
    TESSERA_EMU_MEMCHECK = 6,         // an access outside the launch's buffers or the block's shared memory, a store
                                      // into an input, a misaligned or wrong-space ldmatrix/cp.async pointer
    TESSERA_EMU_RACECHECK = 7,        // a shared-memory hazard between threads with no barrier (or, within a warp,
                                      // no __syncwarp/collective) between them; two blocks storing to one address
    TESSERA_EMU_INITCHECK = 8,        // a read of shared memory no thread of the block wrote, or of device memory
                                      // allocated uninitialised and never written
    TESSERA_EMU_UNDEFINED = 9,        // a float->int conversion out of range, a shift by >= the operand's width
};

// One pointer argument of a launch: the exact range the kernel may touch.
typedef struct {
    const void* ptr;
    size_t bytes;
    unsigned flags;    // TESSERA_EMU_ARG_*
    const char* name;  // the parameter's name, for messages
} tessera_emu_arg;
#define TESSERA_EMU_ARG_WRITABLE 1u

typedef struct {
    unsigned sm;        // emulated architecture: 80 or 90 (shared-memory limits)
    unsigned profile;   // 1: fill *profile
} tessera_emu_options;

// Memory-traffic figures of one launch (TESSERA_SANITIZE=checks builds only). A request is one
// warp-level instruction: the k-th access of each lane at one call site between two
// synchronization points of the lane.
typedef struct {
    unsigned long long global_load_requests, global_load_sectors, global_load_bytes;     // bytes: requested
    unsigned long long global_store_requests, global_store_sectors, global_store_bytes;
    unsigned long long global_distinct_bytes;   // distinct bytes of the arguments touched
    unsigned long long shared_load_requests, shared_load_wavefronts, shared_load_bytes;
    unsigned long long shared_store_requests, shared_store_wavefronts, shared_store_bytes;
    // wavefronts the shared requests would take without bank conflicts: one per phase
    // (8, 16 or 32 lanes by access size) with an active lane
    unsigned long long shared_load_ideal_wavefronts, shared_store_ideal_wavefronts;
    unsigned long long atomics;     // thread-level atomic operations (global and shared)
    unsigned long long mma;         // warp-level mma.sync (m16n8k16 and m16n8k8, every type)
    unsigned long long ldmatrix;    // warp-level ldmatrix
    unsigned long long cp_async;    // thread-level 16-byte cp.async copies
    unsigned long long barriers;    // block barriers released
} tessera_emu_profile;

// Runs one kernel launch to completion. `args`: the pointer arguments (memcheck bounds).
// `profile` may be null. Returns a tessera_emu_status; on failure writes a NUL-terminated
// message naming the kernel, the block and thread(s) involved into `err` (truncated to
// err_len bytes).
int tessera_emu_launch(const char* kernel_name,
                       unsigned grid_x, unsigned grid_y, unsigned grid_z,
                       unsigned block_x, unsigned block_y, unsigned block_z,
                       size_t dynamic_smem_bytes,
                       tessera_emu_thunk thunk, const void* ctx,
                       const tessera_emu_arg* args, size_t nargs,
                       const tessera_emu_options* options, tessera_emu_profile* profile,
                       char* err, size_t err_len);

// Device memory allocated uninitialised (initcheck): reads of bytes never written since are
// reported. mark_written: the host wrote [p, p+bytes). forget: the allocation is freed.
void tessera_emu_track_uninit(const void* p, size_t bytes);
void tessera_emu_mark_written(const void* p, size_t bytes);
void tessera_emu_forget(const void* p);

// 1 when the emulator was compiled with AddressSanitizer (TESSERA_SANITIZE=address), else 0.
int tessera_emu_sanitizer_enabled(void);
// 1 when the kernels were compiled with the emulator's checks (TESSERA_SANITIZE=checks), else 0.
int tessera_emu_checks_enabled(void);

#ifdef __cplusplus
}
#endif
