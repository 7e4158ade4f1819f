// profile.cpp -- placeholder: counts nothing (the request grouping lands with the profiler).
#include "emu_internal.h"

namespace tessera_host {
struct Profiler {};
Profiler* profiler_new() { return new Profiler(); }
void profiler_delete(Profiler* p) { delete p; }
void profiler_begin_block(Profiler*, unsigned) {}
void profiler_sync(Profiler*, unsigned) {}
void profiler_access(Profiler*, unsigned, const void*, uintptr_t, unsigned, bool, bool) {}
void profiler_flush(Profiler*) {}
void profiler_take(Profiler*, tessera_emu_profile*) {}
}  // namespace tessera_host
