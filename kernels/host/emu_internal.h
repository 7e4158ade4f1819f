// emu_internal.h -- private interface between the emulator's translation units:
//   fiber.cpp      fiber stacks (mmap + guard page, pooled), context switch, ASan fiber annotations
//   runtime.cpp    scheduler, block barrier, warp collectives, launch entry point
//   asan_hooks.cpp AddressSanitizer options and report callback (sanitizer builds only)
//   checks.cpp     memcheck, racecheck, initcheck: the per-access hooks (TESSERA_SANITIZE=checks)
//   checks_ubsan.cpp  the undefined-behaviour hooks (float->int out of range, oversized shifts)
//   profile.cpp    warp-level request grouping: sectors, bank-conflict wavefronts
// Not included by kernels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "emulator_api.h"

#if defined(TESSERA_SANITIZE_ADDRESS) || defined(__SANITIZE_ADDRESS__)
#define TESSERA_EMU_ASAN 1
#else
#define TESSERA_EMU_ASAN 0
#endif

// x86-64 gets a hand-written register switch (a few ns); elsewhere ucontext (~1 us: it
// saves the signal mask with a system call). Define TESSERA_EMU_UCONTEXT to force ucontext.
#if defined(__x86_64__) && !defined(TESSERA_EMU_UCONTEXT)
#define TESSERA_EMU_ASM_SWITCH 1
#else
#define TESSERA_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif

namespace tessera_host {

// ---- messages (runtime.cpp) ----------------------------------------------------------------------------
std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// into += c, field by field (every field of tessera_emu_profile is a counter).
void profile_add(tessera_emu_profile& into, const tessera_emu_profile& c);
static_assert(sizeof(tessera_emu_profile) % sizeof(unsigned long long) == 0, "tessera_emu_profile holds counters only");
// The file name of a path ("fsq.cu" of "/x/kernels/fsq.cu").
const char* base_name(const char* path);

// ---- fiber stacks (fiber.cpp) ----------------------------------------------------------------------
struct Stack {
    char* lo = nullptr;  // lowest usable byte (a PROT_NONE guard page lies just below)
    size_t size = 0;     // usable bytes
    bool dirty = false;  // last fiber on it did not run to completion (ASan: frames still poisoned)
};
// A stack from the process-wide pool, or a fresh mapping; lo == nullptr when mmap fails.
Stack stack_acquire();
void stack_release(const Stack& s);
// Makes a (reused) stack ready for a new fiber: under ASan, clears the poisoning that frames
// of an abandoned fiber left behind.
void stack_prepare(Stack& s);

// ---- execution contexts (fiber.cpp) ----------------------------------------------------------------
struct Context {
#if TESSERA_EMU_ASM_SWITCH
    void* sp = nullptr;
#else
    ucontext_t uc;
#endif
};
// Prepares `c` so that switching to it calls entry() on stack `s`; entry must never return.
void context_make(Context& c, const Stack& s, void (*entry)());
// Saves the running context into `from` and resumes `to`.
void context_switch(Context& from, Context& to);

// ASan fiber annotations (no-ops without ASan). start: just before a switch, naming the
// target's stack; fake_save == nullptr when the current fiber will never be resumed.
// finish: first thing after a switch lands; reports the stack that was left.
void asan_start_switch(void** fake_save, const void* bottom, size_t size);
void asan_finish_switch(void* fake_save, const void** old_bottom, size_t* old_size);

// ---- sanitizer hooks (asan_hooks.cpp / runtime.cpp) -----------------------------------------------------
// Registers the ASan report callback once (no-op without ASan).
void asan_install();
// Called by the ASan report callback: turns the report into the current launch's error.
void on_sanitizer_report(const char* report);

// ---- profiler (profile.cpp) ------------------------------------------------------------------------------
// One per worker thread. A warp-level request is the k-th access of each lane of a warp at one
// call site (`site`) between two synchronization points of that lane (profiler_sync). Requests
// are complete at a block barrier's release and at the block's end (profiler_flush), which
// adds their figures (sectors, wavefronts, bytes) to the worker's totals.
struct Profiler;
Profiler* profiler_new();
void profiler_delete(Profiler* p);
void profiler_begin_block(Profiler* p, unsigned nthreads);
void profiler_sync(Profiler* p, unsigned tid);
void profiler_access(Profiler* p, unsigned tid, const void* site, uintptr_t addr, unsigned size, bool store,
                     bool shared);
void profiler_flush(Profiler* p);
// Adds the worker's totals (request, sector, wavefront and byte counts only) into `out` and
// clears them.
void profiler_take(Profiler* p, tessera_emu_profile* out);

// ---- checks (checks.cpp) -----------------------------------------------------------------------------------
// The block's shared memory as the kernel sees it: static variables from `base` (static_used
// bytes in use), the dynamic part at `base + dyn_offset` (dyn_bytes).
struct SharedWindow {
    char* base = nullptr;
    size_t static_used = 0;
    size_t dyn_offset = 0, dyn_bytes = 0;
};
struct LaunchChecks;   // per launch: the argument ranges, their shadows, the profile totals
struct BlockChecks;    // per worker: the shared-memory shadow and the warps' sync state

LaunchChecks* checks_begin_launch(const char* kernel, const tessera_emu_arg* args, size_t nargs, bool profile);
// Ends the launch; adds its profile into `out` when non-null.
void checks_end_launch(LaunchChecks* l, tessera_emu_profile* out);
BlockChecks* checks_block_new();
void checks_block_delete(BlockChecks* b);
void checks_begin_block(BlockChecks* b, LaunchChecks* l, uint64_t linear, unsigned nthreads, const SharedWindow* smem);
void checks_end_block(BlockChecks* b);
void checks_barrier(BlockChecks* b);                           // a block barrier released
void checks_warp_sync(BlockChecks* b, unsigned warp, unsigned mask);  // a collective of these lanes completed
// Accesses made by the runtime on a thread's behalf (cp.async, ldmatrix, atomics). Return
// false with a message and a tessera_emu_status in *status on a violation.
bool checks_access(BlockChecks* b, unsigned tid, uintptr_t addr, size_t size, bool store, bool atomic,
                   const void* site, int* status, std::string* message);
// The calling fiber's checking context, set by the scheduler at every switch.
struct CheckThread {
    BlockChecks* block = nullptr;
    unsigned tid = 0;
    uintptr_t stack_lo = 0, stack_size = 0;  // the fiber's stack: local memory, not checked
    unsigned last_arg = 0;                    // the argument its last global access hit (a lookup hint)
};
extern thread_local CheckThread* tls_check;
// The thread reaches a synchronization point (barrier or collective): ends its profile interval.
void checks_sync_point(const CheckThread& t);
// Is [addr, addr+size) in the block's shared window?
bool checks_is_shared(const SharedWindow* w, uintptr_t addr, size_t size);
// Names for messages (runtime.cpp): the shared variable at an offset of the calling block's
// window ("`buf` + 12 bytes", "dynamic shared memory + 40 bytes"), a thread of the calling
// block by index ("thread (5,0,0) [warp 0 lane 5]"), a block by linear index.
std::string describe_shared(size_t offset);
std::string thread_label(unsigned tid);
std::string block_label(uint64_t linear);
// "file:line (function)" of a code address, for messages.
std::string describe_site(const void* pc);
// Ends the calling fiber's block with `status`; the message is prefixed with the kernel, block
// and thread (runtime.cpp).
[[noreturn]] void check_failed(int status, const std::string& what);

}  // namespace tessera_host
