// asan_hooks.cpp -- AddressSanitizer integration of the emulator (TESSERA_SANITIZE=address).
//
// ASan runs with halt_on_error=0 (the library is compiled with -fsanitize-recover=address),
// so an invalid access inside a kernel does not kill the test process: the report callback
// hands the report to the runtime (on_sanitizer_report), which makes it the error of the
// launch in progress on this OS thread (TESSERA_EMU_SANITIZER, naming the kernel); the block
// then stops at its next scheduling point. Reports outside a launch are only printed.
// Fiber-switch annotations live in fiber.cpp. Without ASan this file only defines a no-op.
#include <mutex>

#include "emu_internal.h"

#if TESSERA_EMU_ASAN
#include <sanitizer/asan_interface.h>

// Read by the ASan runtime at start-up. Leak checking is off: the process is a Rust test
// binary whose allocations ASan cannot attribute, and abandoned fibers leak by design.
extern "C" __attribute__((visibility("default"), used)) const char* __asan_default_options() {
    return "halt_on_error=0:detect_leaks=0";
}

namespace {
void report_callback(const char* report) { tessera_host::on_sanitizer_report(report); }
}  // namespace

void tessera_host::asan_install() {
    static std::once_flag once;
    std::call_once(once, [] { __asan_set_error_report_callback(report_callback); });
}
#else
void tessera_host::asan_install() {}
#endif
