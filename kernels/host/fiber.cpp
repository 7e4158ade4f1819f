// fiber.cpp -- the emulator's fibers: stacks and context switching.
//
// Stacks: mmap'd (MAP_NORESERVE: only touched pages cost memory), with a PROT_NONE guard page
// below, kept in a process-wide pool and reused by later blocks and launches. 256 KiB each
// (1 MiB under ASan, whose frames are larger and whose error reports run on the faulting
// fiber's stack).
//
// Switching: on x86-64, tessera_ctx_switch saves the callee-saved registers, MXCSR and the x87
// control word on the current stack, stores the stack pointer, loads the other one and
// restores the same set from it. A new fiber's stack is pre-built to look like a suspended
// switch whose return address is the entry function. Elsewhere, ucontext.
#include "emu_internal.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#if TESSERA_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace tessera_host {

namespace {
#if TESSERA_EMU_ASAN
constexpr size_t kStackSize = size_t(1) << 20;
#else
constexpr size_t kStackSize = size_t(256) << 10;
#endif

std::mutex g_pool_mu;
std::vector<Stack>& pool() {
    static std::vector<Stack>* p = new std::vector<Stack>();  // never destroyed: used until exit
    return *p;
}
size_t page_size() {
    static const size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}
}  // namespace

Stack stack_acquire() {
    {
        std::lock_guard<std::mutex> g(g_pool_mu);
        if (!pool().empty()) {
            Stack s = pool().back();
            pool().pop_back();
            return s;
        }
    }
    const size_t guard = page_size();
    void* base = mmap(nullptr, kStackSize + guard, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return Stack{};
    if (mprotect(base, guard, PROT_NONE) != 0) {
        munmap(base, kStackSize + guard);
        return Stack{};
    }
    return Stack{static_cast<char*>(base) + guard, kStackSize, false};
}

void stack_release(const Stack& s) {
    std::lock_guard<std::mutex> g(g_pool_mu);
    pool().push_back(s);
}

void stack_prepare(Stack& s) {
#if TESSERA_EMU_ASAN
    // A fiber that ran to completion unwound its frames (and their poisoning); only its
    // outermost frame remains, near the top. One that was abandoned (block aborted) may have
    // left poisoned redzones anywhere.
    if (s.dirty) {
        __asan_unpoison_memory_region(s.lo, s.size);
    } else {
        const size_t top = 16 << 10;
        __asan_unpoison_memory_region(s.lo + s.size - top, top);
    }
#endif
    s.dirty = false;
}

#if TESSERA_EMU_ASM_SWITCH
extern "C" void tessera_ctx_switch(void** save_sp, void* load_sp);
// Stack image of a suspended context, from the saved stack pointer upwards:
//   [mxcsr:4 | x87cw:2 | pad:2] r15 r14 r13 r12 rbx rbp <return address>
asm(R"(
    .text
    .p2align 4
    .globl tessera_ctx_switch
    .hidden tessera_ctx_switch
    .type tessera_ctx_switch,@function
tessera_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size tessera_ctx_switch, .-tessera_ctx_switch
)");

void context_make(Context& c, const Stack& s, void (*entry)()) {
    uintptr_t top = (reinterpret_cast<uintptr_t>(s.lo) + s.size) & ~uintptr_t(15);
    uint64_t* sp = reinterpret_cast<uint64_t*>(top);
    *--sp = 0;                                      // entry's (never used) return address: rsp % 16 == 8 at entry
    *--sp = reinterpret_cast<uint64_t>(entry);      // popped by `ret`
    for (int i = 0; i < 6; ++i) *--sp = 0;          // rbp (0 ends frame-pointer walks) rbx r12-r15
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    *--sp = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    c.sp = sp;
}

void context_switch(Context& from, Context& to) { tessera_ctx_switch(&from.sp, to.sp); }
#else
void context_make(Context& c, const Stack& s, void (*entry)()) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = s.lo;
    c.uc.uc_stack.ss_size = s.size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}

void context_switch(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

void asan_start_switch(void** fake_save, const void* bottom, size_t size) {
#if TESSERA_EMU_ASAN
    __sanitizer_start_switch_fiber(fake_save, bottom, size);
#else
    (void)fake_save, (void)bottom, (void)size;
#endif
}

void asan_finish_switch(void* fake_save, const void** old_bottom, size_t* old_size) {
#if TESSERA_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake_save, old_bottom, old_size);
#else
    (void)fake_save, (void)old_bottom, (void)old_size;
#endif
}

}  // namespace tessera_host
