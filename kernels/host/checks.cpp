// checks.cpp -- memcheck, racecheck and initcheck of the emulator.
//
// In the checks build (TESSERA_SANITIZE=checks) the kernel units are compiled with
// ThreadSanitizer's instrumentation (-fsanitize=thread): every load and store of kernel code
// calls one of the __tsan_{read,write}* hooks below with its address (and size), and the
// hook's return address is the access's site. No TSan runtime is linked; this file is the
// runtime. The
// runtime also reports the accesses it makes on a thread's behalf (cp.async, ldmatrix,
// atomics) through checks_access. Each access is classified:
//   local   the fiber's own stack (local arrays, spilled arguments): not checked;
//   shared  the block's shared window: bounds (static variables in use, the dynamic part),
//           initcheck (some thread of this block wrote the byte), racecheck (below);
//   global  one of the launch's pointer arguments, with the view's exact bounds: stores into
//           an input are errors; initcheck against allocations made uninitialised
//           (tessera_emu_track_uninit); racecheck between blocks (two blocks storing to one
//           byte, atomics excepted);
//   image   the program's own loaded segments (constant tables of kernel code): allowed;
//   anything else is a memcheck error.
//
// Racecheck of shared memory keeps, per byte, the last write (thread, epoch, the writer's
// warp-sync count) and the last read. The epoch advances at every barrier release, so
// accesses in different epochs are ordered. Within one epoch, two accesses of different
// threads (one of them a write) are a hazard unless both are lanes of one warp and a warp
// collective (__syncwarp, a shuffle, a vote, ...) that included both completed after the
// first access: per warp, seen[x][y] holds lane y's collective count at the last collective
// shared by lanes x and y. Detection does not depend on the order in which the emulator runs
// the threads, so a race is reported on every run, in a one-block launch too.
#include "emu_internal.h"

#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tessera_host {

thread_local CheckThread* tls_check = nullptr;

namespace {

// ---- allocations made uninitialised -------------------------------------------------------------------
struct Tracked {
    uintptr_t hi;
    std::unique_ptr<uint8_t[]> written;  // one flag per byte
};
std::mutex g_tracked_mu;
std::map<uintptr_t, Tracked>& tracked() {
    static auto* m = new std::map<uintptr_t, Tracked>();  // never destroyed: used until exit
    return *m;
}
// The tracked allocation containing [lo, hi), or null. Caller holds g_tracked_mu.
Tracked* find_tracked(uintptr_t lo, uintptr_t hi, uintptr_t* base) {
    auto& m = tracked();
    auto it = m.upper_bound(lo);
    if (it == m.begin()) return nullptr;
    --it;
    if (hi > it->second.hi) return nullptr;
    *base = it->first;
    return &it->second;
}

// ---- the program's loaded segments ------------------------------------------------------------------
struct Range {
    uintptr_t lo, hi;
};
const std::vector<Range>& image_segments() {
    static const std::vector<Range>* segs = [] {
        auto* v = new std::vector<Range>();
        dl_iterate_phdr(
            [](dl_phdr_info* info, size_t, void* data) {
                auto* out = static_cast<std::vector<Range>*>(data);
                for (int i = 0; i < info->dlpi_phnum; ++i) {
                    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
                    if (ph.p_type != PT_LOAD) continue;
                    const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
                    out->push_back(Range{lo, lo + ph.p_memsz});
                }
                return 0;
            },
            v);
        return v;
    }();
    return *segs;
}
bool in_image(uintptr_t a, size_t n) {
    for (const Range& r : image_segments())
        if (a >= r.lo && a + n <= r.hi) return true;
    return false;
}

// Shadow memory that costs only what is touched.
template <class T>
T* shadow_alloc(size_t count) {
    if (count == 0) return nullptr;
    void* p = mmap(nullptr, count * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                   0);
    return p == MAP_FAILED ? nullptr : static_cast<T*>(p);
}
template <class T>
void shadow_free(T* p, size_t count) {
    if (p) munmap(p, count * sizeof(T));
}

}  // namespace

// ---- per launch -----------------------------------------------------------------------------------------
struct ArgShadow {
    uintptr_t lo = 0, hi = 0;
    bool writable = false;
    const char* name = "?";
    uint8_t* written = nullptr;   // initcheck: the tracked allocation's flags from lo (null: initialised)
    uint32_t* writer = nullptr;   // racecheck between blocks: linear block index + 1 per byte (writable only)
    uint8_t* touched = nullptr;   // profile: distinct bytes, one bit per byte
};

struct LaunchChecks {
    std::string kernel;
    std::vector<ArgShadow> args;
    bool profile = false;
    std::mutex mu;
    tessera_emu_profile totals{};
};

// ---- per worker ------------------------------------------------------------------------------------------
// Per byte of shared memory: the last write, and the first and the latest distinct readers of
// the current epoch (two readers cover the common hazards: a thread that reads its own cell
// after another thread did still leaves that other reader on record).
struct Cell {
    uint32_t w_epoch = 0, r_epoch = 0;           // 0: never
    uint32_t w_sync = 0, r_sync = 0, r2_sync = 0;  // the accessing lane's collective count at the access
    uint16_t w_tid = 0, r_tid = 0, r2_tid = 0;
};

struct BlockChecks {
    LaunchChecks* launch = nullptr;
    uint64_t linear = 0;
    unsigned n = 0;
    const SharedWindow* smem = nullptr;
    std::vector<Cell> cells;               // one per byte of the window
    uint32_t epoch = 0, first_epoch = 0;   // the current epoch; the block's first
    std::vector<uint32_t> sync_count;      // per thread: collectives completed
    std::vector<uint32_t> seen;            // per warp: 32x32, see the top
    Profiler* prof = nullptr;
};

namespace {

const char* rw(bool store) { return store ? "write" : "read"; }

// Without the instrumentation only the runtime's own accesses (cp.async, ldmatrix, atomics)
// come here: bounds are still exact, but the shadows (initcheck, racecheck) would miss the
// kernel's plain stores, so they are not consulted.
#if defined(TESSERA_EMU_CHECKS)
constexpr bool kShadows = true;
#else
constexpr bool kShadows = false;
#endif

std::string site_suffix(const void* site) { return site ? " at " + describe_site(site) : std::string(); }

// The argument nearest to [a, a+n), for a message about an access outside every argument.
std::string nearest_arg(const LaunchChecks& l, uintptr_t a, size_t n) {
    const ArgShadow* best = nullptr;
    uintptr_t best_d = ~uintptr_t(0);
    for (const ArgShadow& g : l.args) {
        const uintptr_t d = a + n <= g.lo ? g.lo - (a + n) : a >= g.hi ? a - g.hi : 0;
        if (d < best_d) best_d = d, best = &g;
    }
    if (!best || best_d > (uintptr_t(1) << 20)) return "it is in no buffer of this launch";
    if (a >= best->hi)
        return strf("%zu bytes past the end of `%s` (a view of %zu bytes)", (size_t)(a - best->hi), best->name,
                    (size_t)(best->hi - best->lo));
    if (a + n <= best->lo)
        return strf("%zu bytes before the start of `%s` (a view of %zu bytes)", (size_t)(best->lo - a), best->name,
                    (size_t)(best->hi - best->lo));
    return strf("it straddles the end of `%s` (a view of %zu bytes) at offset %zu", best->name,
                (size_t)(best->hi - best->lo), (size_t)(a - best->lo));
}

bool fail(int* status, std::string* message, int st, std::string msg) {
    *status = st;
    *message = std::move(msg);
    return false;
}

bool global_access(BlockChecks& b, unsigned tid, unsigned* hint, uintptr_t a, size_t n, bool store, bool atomic,
                   const void* site, int* status, std::string* message) {
    LaunchChecks& l = *b.launch;
    ArgShadow* g = nullptr;
    if (*hint < l.args.size() && a >= l.args[*hint].lo && a + n <= l.args[*hint].hi) {
        g = &l.args[*hint];
    } else {
        for (size_t i = 0; i < l.args.size(); ++i)
            if (a >= l.args[i].lo && a + n <= l.args[i].hi) {
                g = &l.args[i];
                *hint = (unsigned)i;
                break;
            }
    }
    if (!g) {
        if (!store && in_image(a, n)) return true;  // a constant table of the kernel's code
        return fail(status, message, TESSERA_EMU_MEMCHECK,
                    strf("invalid global %s%s of %zu bytes at %p: ", atomic ? "atomic " : "", rw(store), n,
                         reinterpret_cast<void*>(a)) +
                        nearest_arg(l, a, n) + site_suffix(site));
    }
    const size_t off = a - g->lo;
    if ((store || atomic) && !g->writable)
        return fail(status, message, TESSERA_EMU_MEMCHECK,
                    strf("%s of %zu bytes into the input `%s` at offset %zu: inputs are read-only (const)",
                         atomic ? "atomic" : "write", n, g->name, off) +
                        site_suffix(site));
    if (kShadows && g->written) {
        if (!store || atomic) {
            for (size_t i = 0; i < n; ++i)
                if (!__atomic_load_n(&g->written[off + i], __ATOMIC_RELAXED))
                    return fail(status, message, TESSERA_EMU_INITCHECK,
                                strf("%s of %zu bytes of `%s` at offset %zu: byte %zu was never written (the buffer "
                                     "was allocated uninitialised)",
                                     atomic ? "atomic" : "read", n, g->name, off, off + i) +
                                    site_suffix(site));
        }
        if (store)
            for (size_t i = 0; i < n; ++i) __atomic_store_n(&g->written[off + i], 1, __ATOMIC_RELAXED);
    }
    if (store && !atomic && g->writer) {
        const uint32_t me = (uint32_t)b.linear + 1;
        for (size_t i = 0; i < n; ++i) {
            uint32_t* w = &g->writer[off + i];
            uint32_t old = __atomic_load_n(w, __ATOMIC_RELAXED);
            if (old == me) continue;
            if (old == 0 && __atomic_compare_exchange_n(w, &old, me, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                continue;
            if (old == me) continue;
            return fail(status, message, TESSERA_EMU_RACECHECK,
                        strf("global write-write race on byte %zu of `%s`: ", off + i, g->name) + block_label(old - 1) +
                            " and " + block_label(b.linear) +
                            " both store to it without atomics (the result depends on their order)" +
                            site_suffix(site));
        }
    }
    if (l.profile) {
        for (size_t i = 0; i < n; ++i)
            __atomic_fetch_or(&g->touched[(off + i) >> 3], (uint8_t)(1u << ((off + i) & 7)), __ATOMIC_RELAXED);
        if (!atomic) profiler_access(b.prof, tid, site, a, (unsigned)n, store, false);
    }
    return true;
}

bool ordered(const BlockChecks& b, unsigned x, unsigned y, uint32_t y_sync) {
    if (x / 32 != y / 32) return false;
    return b.seen[(size_t)(x / 32) * 1024 + (x % 32) * 32 + (y % 32)] > y_sync;
}

const char* hazard_name(bool first_store, bool second_store) {
    if (first_store && second_store) return "write after write";
    return first_store ? "read after write" : "write after read";
}

bool shared_access(BlockChecks& b, unsigned tid, uintptr_t a, size_t n, bool store, bool atomic, const void* site,
                   int* status, std::string* message) {
    const SharedWindow& w = *b.smem;
    const size_t off = a - reinterpret_cast<uintptr_t>(w.base);
    const bool in_static = off + n <= w.static_used;
    const bool in_dynamic = off >= w.dyn_offset && off + n <= w.dyn_offset + w.dyn_bytes;
    if (!in_static && !in_dynamic)
        return fail(status, message, TESSERA_EMU_MEMCHECK,
                    strf("invalid shared %s of %zu bytes at %s: the block has %zu bytes of static shared variables "
                         "and %zu bytes of dynamic shared memory",
                         rw(store), n, describe_shared(off).c_str(), w.static_used, w.dyn_bytes) +
                        site_suffix(site));
    for (size_t i = 0; i < n && kShadows; ++i) {
        Cell& c = b.cells[off + i];
        const bool written = c.w_epoch >= b.first_epoch;
        if ((!store || atomic) && !written)
            return fail(status, message, TESSERA_EMU_INITCHECK,
                        strf("%s of %zu bytes at %s: no thread of this block has written it", atomic ? "atomic" : "read",
                             n, describe_shared(off + i).c_str()) +
                            site_suffix(site));
        if (!atomic) {
            if (written && c.w_epoch == b.epoch && c.w_tid != tid && !ordered(b, tid, c.w_tid, c.w_sync))
                return fail(status, message, TESSERA_EMU_RACECHECK,
                            strf("shared-memory race (%s) at %s: ", hazard_name(true, store),
                                 describe_shared(off + i).c_str()) +
                                thread_label(c.w_tid) + " wrote it, and this thread " + (store ? "writes" : "reads") +
                                " it with no __syncthreads (or, within a warp, no __syncwarp) between them" +
                                site_suffix(site));
            if (store && c.r_epoch == b.epoch && c.r_epoch >= b.first_epoch) {
                for (int k = 0; k < 2; ++k) {
                    const unsigned reader = k ? c.r2_tid : c.r_tid;
                    if (reader == tid || ordered(b, tid, reader, k ? c.r2_sync : c.r_sync)) continue;
                    return fail(status, message, TESSERA_EMU_RACECHECK,
                                strf("shared-memory race (write after read) at %s: ",
                                     describe_shared(off + i).c_str()) +
                                    thread_label(reader) +
                                    " read it, and this thread writes it with no __syncthreads (or, within a warp, "
                                    "no __syncwarp) between them" +
                                    site_suffix(site));
                }
            }
        }
        if (store) {
            c.w_epoch = b.epoch, c.w_tid = (uint16_t)tid, c.w_sync = b.sync_count[tid];
        } else if (c.r_epoch != b.epoch) {
            c.r_epoch = b.epoch, c.r_tid = c.r2_tid = (uint16_t)tid, c.r_sync = c.r2_sync = b.sync_count[tid];
        } else if (tid != c.r_tid) {
            c.r2_tid = (uint16_t)tid, c.r2_sync = b.sync_count[tid];
        } else {
            c.r_sync = b.sync_count[tid];
        }
    }
    if (b.launch->profile && !atomic) profiler_access(b.prof, tid, site, a, (unsigned)n, store, true);
    return true;
}

bool classify(BlockChecks& b, unsigned tid, unsigned* hint, uintptr_t a, size_t n, bool store, bool atomic,
              const void* site, int* status, std::string* message) {
    // Anything in the window or just past it is a shared access (in bounds or not).
    const size_t window = b.smem->dyn_offset + b.smem->dyn_bytes;
    if (a - reinterpret_cast<uintptr_t>(b.smem->base) < window + 65536)
        return shared_access(b, tid, a, n, store, atomic, site, status, message);
    return global_access(b, tid, hint, a, n, store, atomic, site, status, message);
}

// The hook of every instrumented access.
inline void on_access(uintptr_t a, size_t n, bool store, const void* site) {
    CheckThread* t = tls_check;
    if (!t) return;  // not inside an emulated kernel thread
    if (a - t->stack_lo < t->stack_size) return;  // local memory
    int status = 0;
    std::string message;
    if (!classify(*t->block, t->tid, &t->last_arg, a, n, store, false, site, &status, &message))
        check_failed(status, message);
}

}  // namespace

// ---- interface ------------------------------------------------------------------------------------------

bool checks_is_shared(const SharedWindow* w, uintptr_t a, size_t n) {
    const uintptr_t base = reinterpret_cast<uintptr_t>(w->base);
    if (a < base) return false;
    const size_t off = a - base;
    return off + n <= w->static_used || (off >= w->dyn_offset && off + n <= w->dyn_offset + w->dyn_bytes);
}

LaunchChecks* checks_begin_launch(const char* kernel, const tessera_emu_arg* args, size_t nargs, bool profile) {
    auto* l = new LaunchChecks();
    l->kernel = kernel ? kernel : "?";
    l->profile = profile;
    std::lock_guard<std::mutex> g(g_tracked_mu);
    for (size_t i = 0; i < nargs; ++i) {
        ArgShadow s;
        s.lo = reinterpret_cast<uintptr_t>(args[i].ptr);
        s.hi = s.lo + args[i].bytes;
        s.writable = (args[i].flags & TESSERA_EMU_ARG_WRITABLE) != 0;
        s.name = args[i].name ? args[i].name : "?";
        if (args[i].bytes == 0) {
            l->args.push_back(s);
            continue;
        }
        uintptr_t base = 0;
        if (Tracked* t = find_tracked(s.lo, s.hi, &base)) s.written = t->written.get() + (s.lo - base);
#if defined(TESSERA_EMU_CHECKS)
        if (s.writable) s.writer = shadow_alloc<uint32_t>(args[i].bytes);
#endif
        if (profile) s.touched = shadow_alloc<uint8_t>((args[i].bytes + 7) / 8);
        l->args.push_back(s);
    }
    return l;
}

void checks_end_launch(LaunchChecks* l, tessera_emu_profile* out) {
    if (!l) return;
    for (ArgShadow& s : l->args) {
        const size_t bytes = s.hi - s.lo;
        if (out && s.touched)
            for (size_t i = 0; i < (bytes + 7) / 8; ++i) out->global_distinct_bytes += __builtin_popcount(s.touched[i]);
        shadow_free(s.writer, bytes);
        shadow_free(s.touched, (bytes + 7) / 8);
    }
    if (out) profile_add(*out, l->totals);
    delete l;
}

BlockChecks* checks_block_new() { return new BlockChecks(); }

void checks_block_delete(BlockChecks* b) {
    if (!b) return;
    if (b->prof) {
        if (b->launch) {
            std::lock_guard<std::mutex> g(b->launch->mu);
            profiler_take(b->prof, &b->launch->totals);
        }
        profiler_delete(b->prof);
    }
    delete b;
}

void checks_begin_block(BlockChecks* b, LaunchChecks* l, uint64_t linear, unsigned nthreads, const SharedWindow* smem) {
    b->launch = l;
    b->linear = linear;
    b->n = nthreads;
    b->smem = smem;
    const size_t window = smem->dyn_offset + smem->dyn_bytes;
    if (b->cells.size() < window) b->cells.resize(window);
    b->first_epoch = ++b->epoch;
    b->sync_count.assign(nthreads, 0);
    b->seen.assign((size_t)(nthreads + 31) / 32 * 1024, 0);
    if (l->profile) {
        if (!b->prof) b->prof = profiler_new();
        profiler_begin_block(b->prof, nthreads);
    }
}

void checks_end_block(BlockChecks* b) {
    if (b->launch && b->launch->profile) profiler_flush(b->prof);
}

void checks_barrier(BlockChecks* b) {
    ++b->epoch;
    if (b->launch && b->launch->profile) profiler_flush(b->prof);
}

void checks_warp_sync(BlockChecks* b, unsigned warp, unsigned mask) {
    const unsigned first = warp * 32;
    if (first >= b->n) return;
    if (b->n - first < 32) mask &= (1u << (b->n - first)) - 1u;  // lanes of a partial warp that exist
    for (unsigned m = mask; m; m &= m - 1) ++b->sync_count[warp * 32 + __builtin_ctz(m)];
    uint32_t* seen = &b->seen[(size_t)warp * 1024];
    for (unsigned mx = mask; mx; mx &= mx - 1) {
        const unsigned x = __builtin_ctz(mx);
        for (unsigned my = mask; my; my &= my - 1) {
            const unsigned y = __builtin_ctz(my);
            seen[x * 32 + y] = b->sync_count[warp * 32 + y];
        }
    }
}

void checks_sync_point(const CheckThread& t) {
    if (t.block && t.block->launch && t.block->launch->profile) profiler_sync(t.block->prof, t.tid);
}

bool checks_access(BlockChecks* b, unsigned tid, uintptr_t addr, size_t size, bool store, bool atomic, const void* site,
                   int* status, std::string* message) {
    unsigned hint = 0;
    return classify(*b, tid, &hint, addr, size, store, atomic, site, status, message);
}

std::string describe_site(const void* pc) {
    static std::mutex mu;
    static auto* cache = new std::map<const void*, std::string>();
    std::lock_guard<std::mutex> g(mu);
    auto it = cache->find(pc);
    if (it != cache->end()) return it->second;
    Dl_info info{};
    std::string out = strf("%p", pc);
    if (dladdr(pc, &info) && info.dli_fname) {
        // The call returns to pc: the access is the instruction before it.
        const uintptr_t offset = reinterpret_cast<uintptr_t>(pc) - 1 - reinterpret_cast<uintptr_t>(info.dli_fbase);
        const std::string cmd = strf("addr2line -C -f -e '%s' 0x%llx 2>/dev/null", info.dli_fname, (unsigned long long)offset);
        std::string text;
        if (FILE* p = popen(cmd.c_str(), "r")) {
            char buf[512];
            while (fgets(buf, sizeof buf, p)) text += buf;
            pclose(p);
        }
        const size_t nl = text.find('\n');
        std::string func = nl == std::string::npos ? std::string() : text.substr(0, nl);
        std::string loc = nl == std::string::npos ? std::string() : text.substr(nl + 1);
        while (!loc.empty() && (loc.back() == '\n' || loc.back() == ' ')) loc.pop_back();
        if (const size_t d = loc.find(" (discriminator"); d != std::string::npos) loc.resize(d);
        if (const size_t slash = loc.rfind('/'); slash != std::string::npos) loc = loc.substr(slash + 1);
        if (!loc.empty() && loc.rfind("??", 0) != 0) {
            out = loc + (func.empty() || func == "??" ? "" : " (" + func + ")");
        } else if (info.dli_sname) {
            out = strf("%s+0x%llx", info.dli_sname,
                       (unsigned long long)(reinterpret_cast<uintptr_t>(pc) - reinterpret_cast<uintptr_t>(info.dli_saddr)));
        }
    }
    (*cache)[pc] = out;
    return out;
}

}  // namespace tessera_host

// ---- the instrumentation's entry points (called by kernel code in the checks build) ---------------------
// ThreadSanitizer's instrumentation (-fsanitize=thread) without its runtime: a call per load
// and store with the address (the size in the name, or an argument for ranges), one at each
// function entry and exit, and an initialisation call from a constructor.
#define TESSERA_HOOK(N)                                                                                        \
    extern "C" void __tsan_read##N(uintptr_t a) { tessera_host::on_access(a, N, false, __builtin_return_address(0)); } \
    extern "C" void __tsan_write##N(uintptr_t a) { tessera_host::on_access(a, N, true, __builtin_return_address(0)); } \
    extern "C" void __tsan_unaligned_read##N(uintptr_t a) {                                                  \
        tessera_host::on_access(a, N, false, __builtin_return_address(0));                                     \
    }                                                                                                          \
    extern "C" void __tsan_unaligned_write##N(uintptr_t a) {                                                 \
        tessera_host::on_access(a, N, true, __builtin_return_address(0));                                      \
    }
TESSERA_HOOK(1)
TESSERA_HOOK(2)
TESSERA_HOOK(4)
TESSERA_HOOK(8)
TESSERA_HOOK(16)
#undef TESSERA_HOOK
// A copy of an 8- or 16-byte vector type (cuda_host.h): one access of the whole vector at the
// kernel's call site, as the GPU's ld/st.v2/.v4 make it.
namespace tessera_host {
void vector_copy(void* dst, const void* src, size_t bytes) {
    const void* site = __builtin_return_address(0);
    on_access(reinterpret_cast<uintptr_t>(src), bytes, false, site);
    on_access(reinterpret_cast<uintptr_t>(dst), bytes, true, site);
    std::memcpy(dst, src, bytes);
}
}  // namespace tessera_host

extern "C" void __tsan_read_range(uintptr_t a, size_t n) {
    if (n) tessera_host::on_access(a, n, false, __builtin_return_address(0));
}
extern "C" void __tsan_write_range(uintptr_t a, size_t n) {
    if (n) tessera_host::on_access(a, n, true, __builtin_return_address(0));
}
extern "C" void __tsan_func_entry(void*) {}
extern "C" void __tsan_func_exit() {}
extern "C" void __tsan_init() {}
extern "C" void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
extern "C" void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

// ---- allocations made uninitialised (from Rust) ------------------------------------------------------------
extern "C" void tessera_emu_track_uninit(const void* p, size_t bytes) {
    using namespace tessera_host;
    if (!p || bytes == 0) return;
    std::lock_guard<std::mutex> g(g_tracked_mu);
    Tracked t;
    t.hi = reinterpret_cast<uintptr_t>(p) + bytes;
    t.written.reset(new uint8_t[bytes]());
    tracked()[reinterpret_cast<uintptr_t>(p)] = std::move(t);
}

extern "C" void tessera_emu_mark_written(const void* p, size_t bytes) {
    using namespace tessera_host;
    if (!p || bytes == 0) return;
    std::lock_guard<std::mutex> g(g_tracked_mu);
    uintptr_t base = 0;
    const uintptr_t lo = reinterpret_cast<uintptr_t>(p);
    if (Tracked* t = find_tracked(lo, lo + bytes, &base)) std::memset(t->written.get() + (lo - base), 1, bytes);
}

extern "C" void tessera_emu_forget(const void* p) {
    using namespace tessera_host;
    std::lock_guard<std::mutex> g(g_tracked_mu);
    tracked().erase(reinterpret_cast<uintptr_t>(p));
}
