// emu_internal.h -- private interface between the emulator's translation units:
//   fiber.cpp      fiber stacks (mmap + guard page, pooled), context switch, ASan fiber annotations
//   runtime.cpp    scheduler, block barrier, warp collectives, launch entry point
//   asan_hooks.cpp AddressSanitizer options and report callback (sanitizer builds only)
// Not included by kernels.
#pragma once
#include <cstddef>
#include <cstdint>

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

}  // namespace tessera_host
