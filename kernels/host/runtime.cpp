// runtime.cpp -- the kernel emulator: launch, block scheduler, barriers, warp collectives.
//
// Launch. tessera_emu_launch validates the configuration against sm_90 limits, then starts
// min(hardware threads, blocks) workers (the calling thread is one of them). Workers pull
// linear block indices from an atomic counter and run each block to completion. Once any
// block fails, no new block starts and running blocks stop at their next scheduling point;
// the first error recorded is the launch's result.
//
// Block. Every thread of the block is a fiber with its own stack; all of them run on the
// worker's OS thread. A fiber runs without interruption until it blocks, i.e. at
// __syncthreads*, at a warp collective, at __activemask, or when it exits; then control
// returns to the scheduler loop (run_block), which handles that event and resumes the next
// runnable fiber from a FIFO queue. Threads start in ascending order in even blocks and
// descending order in odd ones, and the order flips at every barrier, so a read of another
// thread's write that lacks a barrier sees stale data in one direction or the other.
//
// Barrier. A fiber at __syncthreads records its call site and waits. When the number of
// waiting fibers equals the number of live (not exited) threads -- checked at each arrival and
// at each exit -- the barrier releases, provided all wait at the same call site (else
// WARP_MISUSE: divergent __syncthreads).
//
// Warp collectives. A lane deposits a WarpCall (operation, mask, value, parameters, call site)
// in its fiber record and waits. At its arrival the scheduler checks the call (the mask must
// contain the caller), then looks at the lanes of the mask that exist and have not exited --
// bits of a partial last warp's missing lanes and of exited lanes are ignored, as on a GPU: if
// all of them wait at a collective, they must all show the same operation, value size and
// mask (else WARP_MISUSE), and the scheduler computes every lane's result at once from the
// deposited values (shuffle source lanes per the PTX shfl.sync definition, ballots, mma,
// ldmatrix) and makes the lanes runnable. A shuffle that reads a lane that does not exist or
// has exited gets all bits set (undefined on a GPU); one that reads a live lane outside the
// mask is WARP_MISUSE. When a lane exits, the collectives whose mask names it are checked
// again and may complete without it; mma and ldmatrix need all 32 lanes (a missing or exited
// lane is WARP_MISUSE). If the queue runs dry with live threads left, nothing can ever be
// released: DEADLOCK, with a message that lists what each group of threads waits at.
//
// __activemask. The calling lane records its call site and waits until no lane of its warp is
// runnable (each live lane waits at a barrier, a collective or an __activemask); then the
// lanes waiting at __activemask at one call site all get the mask of exactly those lanes, one
// group per call site. So the mask names the lanes that are converged at the call, as a
// warp-aggregated atomic needs, and code that assumes divergent lanes have reconverged (CUDA
// does not promise it) can see a partial mask. Caveat: grouping is by call site only, so lanes
// at one call site in different loop iterations share a mask. This check runs after every
// event that blocks a lane, and again when the queue runs dry, before a deadlock is declared.
//
// Errors found inside a fiber (misuse()) record the error and switch to the scheduler for
// good; the block's other fibers are abandoned (their stacks are reused; see stack_prepare).
#include "emu_internal.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cuda_host.h"
#include "emulator_api.h"

namespace tessera_host {

thread_local const ThreadBuiltins* tls_builtins = nullptr;

std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string strf(const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

void profile_add(tessera_emu_profile& into, const tessera_emu_profile& c) {
    const auto* from = reinterpret_cast<const unsigned long long*>(&c);
    auto* to = reinterpret_cast<unsigned long long*>(&into);
    for (size_t i = 0; i < sizeof(tessera_emu_profile) / sizeof(unsigned long long); ++i) to[i] += from[i];
}

const char* base_name(const char* path) {
    if (!path) return "?";
    const char* s = std::strrchr(path, '/');
    return s ? s + 1 : path;
}

namespace {

// ---- launch, block, fiber records ---------------------------------------------------------------------

struct Launch {
    std::string kernel;
    dim3 grid, block;
    unsigned nthreads = 0;
    uint64_t nblocks = 0;
    size_t smem_bytes = 0;
    size_t smem_limit = 0;             // static + dynamic, of the emulated architecture
    LaunchChecks* checks = nullptr;    // the argument ranges and shadows
    tessera_emu_profile counts{};      // runtime-side counts (mma, barriers, ...), summed over workers
    tessera_emu_thunk thunk = nullptr;
    const void* ctx = nullptr;
    std::atomic<uint64_t> next_block{0};
    std::atomic<int> status{TESSERA_EMU_OK};
    std::mutex mu;
    std::string message;

    bool failed() const { return status.load(std::memory_order_relaxed) != TESSERA_EMU_OK; }
    void fail(int st, const std::string& msg) {
        std::lock_guard<std::mutex> g(mu);
        if (status.load() != TESSERA_EMU_OK) return;  // keep the first error
        message = msg;
        status.store(st);
    }
};

// ActiveMask: at __activemask, call site in `call.file`/`call.line`, the mask goes to `result`.
enum class Wait : unsigned char { Runnable, Barrier, Warp, ActiveMask, Exited, Aborted };

struct AsyncCopy {
    void* dst;
    unsigned group;
    unsigned char data[16];
};

struct Fiber {
    ThreadBuiltins bi;
    unsigned tid = 0, warp = 0, lane = 0;
    Wait wait = Wait::Runnable;
    // at a warp collective
    WarpCall call{};
    uint64_t result = 0;
    // at a barrier
    const char* bar_file = nullptr;
    unsigned bar_line = 0;
    int bar_kind = 0, bar_pred = 0, bar_result = 0;
    // cp.async copies not yet retired
    std::vector<AsyncCopy> async;
    unsigned async_group = 0;  // group id that the next copy joins (= number of commits so far)
    // execution
    Context ctx;
    Stack* stack = nullptr;
    void* asan_fake = nullptr;
    CheckThread check;  // memcheck/racecheck context of this thread
};

struct Block {
    Launch* L = nullptr;
    uint64_t linear = 0;
    uint3 idx{};
    unsigned n = 0;             // threads
    Fiber* f = nullptr;         // n records
    unsigned exists[32] = {};   // per warp: lanes that exist
    unsigned exited[32] = {};   // per warp: lanes that have exited
    unsigned live = 0, at_barrier = 0, phase = 0;
    std::vector<unsigned> queue;  // ring buffer of runnable fiber indices
    unsigned q_head = 0, q_len = 0;
    int status = TESSERA_EMU_OK;
    std::string message;
    SharedWindow smem;                                       // the block's shared memory (in the worker's arena)
    struct Static {
        const void* key;
        size_t offset, size;
        const char* name;
    };
    std::vector<Static> statics;                             // static __shared__ variables in use

    void push(unsigned i) { queue[(q_head + q_len++) % n] = i; }
    unsigned pop() {
        unsigned i = queue[q_head];
        q_head = (q_head + 1) % n;
        --q_len;
        return i;
    }
    // `msg` starts with where ("kernel K, block (x,y,z)..."); the category is prepended.
    void fail(int st, const std::string& msg);
};

struct Worker {
    Launch* launch = nullptr;
    Block* block = nullptr;
    std::vector<Fiber> fibers;
    std::vector<Stack> stacks;
    char* arena = nullptr;           // shared memory: kStaticSmemMax of static variables, then the dynamic part
    BlockChecks* checks = nullptr;
    tessera_emu_profile counts{};
    Context sched;
    void* sched_fake = nullptr;
    const void* sched_bottom = nullptr;  // the worker thread's own stack, for ASan
    size_t sched_size = 0;
};

thread_local Worker* tls_worker = nullptr;
thread_local Fiber* tls_fiber = nullptr;

// Static shared memory per block (every architecture since sm_20); dynamic shared memory beyond
// it needs the opt-in attribute, up to the architecture's per-block maximum.
constexpr size_t kStaticSmemMax = 48u * 1024u;
size_t smem_optin_limit(unsigned sm) { return sm >= 90 ? 227u * 1024u : 163u * 1024u; }
constexpr size_t kArenaBytes = kStaticSmemMax + 227u * 1024u;

// ---- messages ----------------------------------------------------------------------------------------
// Every error message reads "<category> in kernel K, block (x,y,z)[, thread (x,y,z) [warp w
// lane l]]: <what happened>", the category saying which tessera_emu_status it is.

const char* category(int st) {
    switch (st) {
        case TESSERA_EMU_BAD_CONFIG: return "bad launch configuration";
        case TESSERA_EMU_DEADLOCK: return "deadlock";
        case TESSERA_EMU_WARP_MISUSE: return "warp collective misuse";
        case TESSERA_EMU_SANITIZER: return "AddressSanitizer report";
        case TESSERA_EMU_RESOURCES: return "out of host resources";
        case TESSERA_EMU_MEMCHECK: return "memcheck";
        case TESSERA_EMU_RACECHECK: return "racecheck";
        case TESSERA_EMU_INITCHECK: return "initcheck";
        case TESSERA_EMU_UNDEFINED: return "undefined behaviour";
    }
    return "error";
}

void Block::fail(int st, const std::string& msg) {
    if (status == TESSERA_EMU_OK) {
        status = st;
        message = std::string(category(st)) + " in " + msg;
    }
}

std::string block_name(const Block& b) {
    return strf("kernel %s, block (%u,%u,%u)", b.L->kernel.c_str(), b.idx.x, b.idx.y, b.idx.z);
}
std::string thread_name(const Block& b, const Fiber& f) {
    return block_name(b) + strf(", thread (%u,%u,%u) [warp %u lane %u]", f.bi.thread_idx.x, f.bi.thread_idx.y,
                                f.bi.thread_idx.z, f.warp, f.lane);
}

std::string op_name(const WarpCall& c) {
    switch (c.op) {
        case WarpOp::SyncWarp: return "__syncwarp";
        case WarpOp::ShflIdx: return "__shfl_sync";
        case WarpOp::ShflUp: return "__shfl_up_sync";
        case WarpOp::ShflDown: return "__shfl_down_sync";
        case WarpOp::ShflXor: return "__shfl_xor_sync";
        case WarpOp::Ballot: return "__ballot_sync";
        case WarpOp::Any: return "__any_sync";
        case WarpOp::All: return "__all_sync";
        case WarpOp::ReduceAdd: return "__reduce_add_sync";
        case WarpOp::ReduceMinU: return "__reduce_min_sync(unsigned)";
        case WarpOp::ReduceMinI: return "__reduce_min_sync(int)";
        case WarpOp::ReduceMaxU: return "__reduce_max_sync(unsigned)";
        case WarpOp::ReduceMaxI: return "__reduce_max_sync(int)";
        case WarpOp::ReduceAnd: return "__reduce_and_sync";
        case WarpOp::ReduceOr: return "__reduce_or_sync";
        case WarpOp::ReduceXor: return "__reduce_xor_sync";
        case WarpOp::MatchAny: return "__match_any_sync";
        case WarpOp::MatchAll: return "__match_all_sync";
        case WarpOp::Mma:
            switch (c.aux) {
                case MMA_M16N8K16_F16: return "mma_m16n8k16_f16";
                case MMA_M16N8K16_BF16: return "mma_m16n8k16_bf16";
                case MMA_M16N8K8_F16: return "mma_m16n8k8_f16";
                case MMA_M16N8K8_BF16: return "mma_m16n8k8_bf16";
                case MMA_M16N8K8_TF32: return "mma_m16n8k8_tf32";
            }
            return "mma";
        case WarpOp::Ldmatrix: return strf("ldmatrix_x%u%s", c.aux & 7u, (c.aux & 8u) ? "_trans" : "");
    }
    return "?";
}
bool has_value_size(WarpOp op) {
    return op == WarpOp::ShflIdx || op == WarpOp::ShflUp || op == WarpOp::ShflDown || op == WarpOp::ShflXor ||
           op == WarpOp::MatchAny || op == WarpOp::MatchAll;
}
std::string describe_call(const WarpCall& c, bool with_size = false) {
    std::string s = op_name(c);
    if (with_size && has_value_size(c.op)) s += strf(" (%u-byte value)", c.aux);
    return s + strf(" with mask 0x%08x (%s:%u)", c.mask, base_name(c.file), c.line);
}
std::string describe_wait(const Fiber& f) {
    switch (f.wait) {
        case Wait::Barrier: {
            static const char* names[] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and",
                                          "__syncthreads_or"};
            return strf("%s (%s:%u)", names[f.bar_kind & 3], base_name(f.bar_file), f.bar_line);
        }
        case Wait::Warp: return describe_call(f.call);
        case Wait::ActiveMask: return strf("__activemask (%s:%u)", base_name(f.call.file), f.call.line);
        case Wait::Runnable: return "nothing (runnable)";
        case Wait::Exited: return "nothing (exited)";
        case Wait::Aborted: return "nothing (aborted)";
    }
    return "?";
}
// "0-15", "0,2,4,6,8,10,... (16 threads)"
std::string id_list(const std::vector<unsigned>& ids) {
    std::string s;
    size_t ranges = 0, i = 0;
    while (i < ids.size()) {
        size_t j = i;
        while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
        if (ranges == 6) {
            s += strf(",... (%zu threads)", ids.size());
            return s;
        }
        if (!s.empty()) s += ",";
        s += (j == i) ? strf("%u", ids[i]) : strf("%u-%u", ids[i], ids[j]);
        ++ranges;
        i = j + 1;
    }
    return s;
}

// ---- switching ------------------------------------------------------------------------------------------

// Scheduler -> fiber. Returns when the fiber blocks, exits or aborts.
void resume(Worker& w, Fiber& f) {
    tls_fiber = &f;
    tls_builtins = &f.bi;
    tls_check = &f.check;
    asan_start_switch(&w.sched_fake, f.stack->lo, f.stack->size);
    context_switch(w.sched, f.ctx);
    asan_finish_switch(w.sched_fake, nullptr, nullptr);
    tls_fiber = nullptr;
    tls_builtins = nullptr;
    tls_check = nullptr;
}

// Fiber -> scheduler. `final`: this fiber will never be resumed.
void yield_to_scheduler(Fiber& f, bool final) {
    Worker& w = *tls_worker;
    asan_start_switch(final ? nullptr : &f.asan_fake, w.sched_bottom, w.sched_size);
    context_switch(f.ctx, w.sched);
    asan_finish_switch(f.asan_fake, &w.sched_bottom, &w.sched_size);
}

void fiber_entry() {
    Worker* w = tls_worker;
    asan_finish_switch(nullptr, &w->sched_bottom, &w->sched_size);
    w->launch->thunk(w->launch->ctx);
    Fiber* f = tls_fiber;
    f->wait = Wait::Exited;
    yield_to_scheduler(*f, true);
    __builtin_trap();  // an exited fiber is never resumed
}

Fiber& current_fiber(const char* what) {
    if (!tls_fiber) {
        fprintf(stderr, "tessera emulator: %s called outside an emulated kernel thread\n", what);
        abort();
    }
    return *tls_fiber;
}

// ---- barrier --------------------------------------------------------------------------------------------

void enqueue_all_waiting(Block& b, Wait what) {
    const bool descending = ((b.linear + b.phase) & 1) != 0;
    for (unsigned k = 0; k < b.n; ++k) {
        unsigned i = descending ? b.n - 1 - k : k;
        if (b.f[i].wait == what) {
            b.f[i].wait = Wait::Runnable;
            b.push(i);
        }
    }
}

void release_barrier(Block& b) {
    const Fiber* first = nullptr;
    int count = 0;
    for (unsigned i = 0; i < b.n; ++i) {
        const Fiber& f = b.f[i];
        if (f.wait != Wait::Barrier) continue;
        if (!first) {
            first = &f;
        } else if (f.bar_line != first->bar_line || f.bar_kind != first->bar_kind ||
                   std::strcmp(f.bar_file, first->bar_file) != 0) {
            b.fail(TESSERA_EMU_WARP_MISUSE,
                   block_name(b) + strf(": divergent __syncthreads at %s:%u (thread %u) and %s:%u (thread %u)",
                                        base_name(first->bar_file), first->bar_line, first->tid,
                                        base_name(f.bar_file), f.bar_line, f.tid));
            return;
        }
        count += f.bar_pred;
    }
    const unsigned waiting = b.at_barrier;
    int result = 0;
    switch (first->bar_kind) {
        case 1: result = count; break;
        case 2: result = count == (int)waiting; break;
        case 3: result = count != 0; break;
    }
    for (unsigned i = 0; i < b.n; ++i)
        if (b.f[i].wait == Wait::Barrier) b.f[i].bar_result = result;
    b.at_barrier = 0;
    ++b.phase;
    ++tls_worker->counts.barriers;
    checks_barrier(tls_worker->checks);
    enqueue_all_waiting(b, Wait::Barrier);
}

// ---- warp collectives -----------------------------------------------------------------------------------

// Source lane of a shuffle, per the PTX ISA definition of shfl.sync (CUDA's __shfl_*_sync pass
// c = ((32 - width) << 8) | clamp, clamp = 0x1f except for .up). Returns the lane to read,
// which is the caller itself when the source is out of its segment.
unsigned shfl_source(WarpOp op, unsigned lane, int param, int width) {
    const int segmask = (32 - width) & 31;
    const int clamp = op == WarpOp::ShflUp ? 0 : 31;
    const int l = (int)lane, b = param & 31;
    const int max_lane = (l & segmask) | (clamp & ~segmask);
    const int min_lane = l & segmask;
    int j = l;
    bool ok = false;
    switch (op) {
        case WarpOp::ShflUp: j = l - b; ok = j >= max_lane; break;
        case WarpOp::ShflDown: j = l + b; ok = j <= max_lane; break;
        case WarpOp::ShflXor: j = l ^ b; ok = j <= max_lane; break;
        default: j = min_lane | (b & ~segmask); ok = j <= max_lane; break;
    }
    return ok ? (unsigned)j : lane;
}

// mma.sync m16n8kK, K = 16 or 8 (PTX ISA "Matrix Fragments for mma.m16n8k16" / "... for
// mma.m16n8k8"): every lane's A/B/C fragments are placed into the 16xK, Kx8 and 16x8
// matrices by the layouts of tessera.cuh section 5, then D = C + A*B with exact products
// (f16/bf16: 11/8-bit significands, tf32: 11, so each product fits an f32), summed in f32
// with k ascending. All operands are read before any d is written: d may alias c.
template <int K, class Place>
void mma_tile(Fiber* lanes, Place place) {
    float A[16][K], B[K][8], C[16][8];
    for (unsigned l = 0; l < 32; ++l) {
        const unsigned g = l >> 2, t = l & 3;
        const MmaArgs& m = *static_cast<const MmaArgs*>(lanes[l].call.in);
        place(A, B, g, t, m);
        C[g][2 * t] = m.c[0], C[g][2 * t + 1] = m.c[1], C[g + 8][2 * t] = m.c[2], C[g + 8][2 * t + 1] = m.c[3];
    }
    float D[16][8];
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 8; ++j) {
            float acc = C[i][j];
            for (int k = 0; k < K; ++k) acc += A[i][k] * B[k][j];
            D[i][j] = acc;
        }
    for (unsigned l = 0; l < 32; ++l) {
        const unsigned g = l >> 2, t = l & 3;
        float* d = static_cast<float*>(lanes[l].call.out);
        d[0] = D[g][2 * t], d[1] = D[g][2 * t + 1], d[2] = D[g + 8][2 * t], d[3] = D[g + 8][2 * t + 1];
    }
}

void compute_mma(Block& b, Fiber* lanes) {
    (void)b;
    const unsigned kind = lanes[0].call.aux;  // the same in every lane (checked at arrival)
    const bool bf16 = kind == MMA_M16N8K16_BF16 || kind == MMA_M16N8K8_BF16;
    auto cvt = [bf16](uint32_t h) { return bf16 ? bf16_bits_to_f32((uint16_t)h) : f16_bits_to_f32((uint16_t)h); };
    // tf32: a GPU reads the top 19 bits of each operand (sign, exponent, 10 mantissa bits)
    // and ignores the low 13 (the PTX ISA's wgmma.mma_async: "will truncate lower 13 bits of
    // the 32-bit input data before multiplication"): a value not rounded by f32_to_tf32 is
    // truncated toward zero, as here.
    auto tf32 = [](uint32_t x) { return std::bit_cast<float>(x & 0xffffe000u); };
    if (kind == MMA_M16N8K16_F16 || kind == MMA_M16N8K16_BF16) {
        mma_tile<16>(lanes, [&](float (&A)[16][16], float (&B)[16][8], unsigned g, unsigned t, const MmaArgs& m) {
            const uint32_t a0 = m.a[0], a1 = m.a[1], a2 = m.a[2], a3 = m.a[3], b0 = m.b[0], b1 = m.b[1];
            A[g][2 * t] = cvt(a0 & 0xffff), A[g][2 * t + 1] = cvt(a0 >> 16);
            A[g + 8][2 * t] = cvt(a1 & 0xffff), A[g + 8][2 * t + 1] = cvt(a1 >> 16);
            A[g][2 * t + 8] = cvt(a2 & 0xffff), A[g][2 * t + 9] = cvt(a2 >> 16);
            A[g + 8][2 * t + 8] = cvt(a3 & 0xffff), A[g + 8][2 * t + 9] = cvt(a3 >> 16);
            B[2 * t][g] = cvt(b0 & 0xffff), B[2 * t + 1][g] = cvt(b0 >> 16);
            B[2 * t + 8][g] = cvt(b1 & 0xffff), B[2 * t + 9][g] = cvt(b1 >> 16);
        });
    } else if (kind == MMA_M16N8K8_TF32) {
        mma_tile<8>(lanes, [&](float (&A)[16][8], float (&B)[8][8], unsigned g, unsigned t, const MmaArgs& m) {
            A[g][t] = tf32(m.a[0]), A[g + 8][t] = tf32(m.a[1]);
            A[g][t + 4] = tf32(m.a[2]), A[g + 8][t + 4] = tf32(m.a[3]);
            B[t][g] = tf32(m.b[0]), B[t + 4][g] = tf32(m.b[1]);
        });
    } else {  // m16n8k8 f16 / bf16
        mma_tile<8>(lanes, [&](float (&A)[16][8], float (&B)[8][8], unsigned g, unsigned t, const MmaArgs& m) {
            const uint32_t a0 = m.a[0], a1 = m.a[1], b0 = m.b[0];
            A[g][2 * t] = cvt(a0 & 0xffff), A[g][2 * t + 1] = cvt(a0 >> 16);
            A[g + 8][2 * t] = cvt(a1 & 0xffff), A[g + 8][2 * t + 1] = cvt(a1 >> 16);
            B[2 * t][g] = cvt(b0 & 0xffff), B[2 * t + 1][g] = cvt(b0 >> 16);
        });
    }
}

void compute_ldmatrix(Block& b, Fiber* lanes) {
    (void)b;
    const unsigned num = lanes[0].call.aux & 7u;
    const bool trans = (lanes[0].call.aux & 8u) != 0;
    uint16_t M[4][8][8];
    for (unsigned i = 0; i < num; ++i)
        for (unsigned r = 0; r < 8; ++r)  // row r of matrix i comes from lane 8i + r (alignment checked at the call)
            std::memcpy(M[i][r], reinterpret_cast<const void*>(lanes[8 * i + r].call.value), 16);
    for (unsigned l = 0; l < 32; ++l) {
        uint32_t* out = static_cast<uint32_t*>(lanes[l].call.out);
        const unsigned g = l >> 2, t = l & 3;
        for (unsigned i = 0; i < num; ++i) {
            const uint32_t lo = trans ? M[i][2 * t][g] : M[i][g][2 * t];
            const uint32_t hi = trans ? M[i][2 * t + 1][g] : M[i][g][2 * t + 1];
            out[i] = lo | (hi << 16);
        }
    }
}

// What a shuffle returns when it reads a lane that does not exist or has exited (undefined
// on a GPU): all bits set, the emulator's "uninitialised" pattern (NaN, -1).
constexpr uint64_t SHFL_POISON = ~0ull;

// Every lane of `mask` in warp `w` waits at a collective with the same operation and mask
// (`mask`: the lanes of the callers' mask that exist and have not exited): compute all
// results and wake the lanes.
void complete_collective(Block& b, unsigned w, unsigned mask) {
    Fiber* lanes = &b.f[w * 32];
    const WarpCall& c0 = lanes[__builtin_ctz(mask)].call;
    const WarpOp op = c0.op;
    auto each = [mask](auto fn) {
        for (unsigned m = mask; m; m &= m - 1) fn((unsigned)__builtin_ctz(m));
    };
    auto value_eq = [&](unsigned x, unsigned y) {
        const uint64_t sz_mask = c0.aux >= 8 ? ~0ull : ((1ull << (8 * c0.aux)) - 1);
        return ((lanes[x].call.value ^ lanes[y].call.value) & sz_mask) == 0;
    };
    switch (op) {
        case WarpOp::SyncWarp: each([&](unsigned l) { lanes[l].result = 0; }); break;
        case WarpOp::ShflIdx:
        case WarpOp::ShflUp:
        case WarpOp::ShflDown:
        case WarpOp::ShflXor: {
            uint64_t res[32];
            bool bad = false;
            const unsigned alive = b.exists[w] & ~b.exited[w];
            each([&](unsigned l) {
                if (bad) return;
                const WarpCall& c = lanes[l].call;
                const unsigned src = shfl_source(op, l, c.param, c.width);
                if (!((alive >> src) & 1u)) {
                    res[l] = SHFL_POISON;  // a lane that does not exist or has exited: undefined on a GPU
                    return;
                }
                if (!((mask >> src) & 1u)) {
                    b.fail(TESSERA_EMU_WARP_MISUSE,
                           thread_name(b, lanes[l]) +
                               strf(": %s reads lane %u, which is not in the mask", describe_call(c).c_str(), src));
                    bad = true;
                    return;
                }
                res[l] = lanes[src].call.value;
            });
            if (bad) return;
            each([&](unsigned l) { lanes[l].result = res[l]; });
            break;
        }
        case WarpOp::Ballot:
        case WarpOp::Any:
        case WarpOp::All: {
            unsigned ballot = 0;
            each([&](unsigned l) { ballot |= (lanes[l].call.value != 0 ? 1u : 0u) << l; });
            const uint64_t r = op == WarpOp::Ballot ? ballot : op == WarpOp::Any ? (ballot != 0) : (ballot == mask);
            each([&](unsigned l) { lanes[l].result = r; });
            break;
        }
        case WarpOp::ReduceAdd:
        case WarpOp::ReduceMinU:
        case WarpOp::ReduceMaxU:
        case WarpOp::ReduceMinI:
        case WarpOp::ReduceMaxI:
        case WarpOp::ReduceAnd:
        case WarpOp::ReduceOr:
        case WarpOp::ReduceXor: {
            const unsigned first = __builtin_ctz(mask);
            uint32_t r = (uint32_t)lanes[first].call.value;
            each([&](unsigned l) {
                if (l == first) return;
                const uint32_t v = (uint32_t)lanes[l].call.value;
                switch (op) {
                    case WarpOp::ReduceAdd: r += v; break;
                    case WarpOp::ReduceMinU: r = v < r ? v : r; break;
                    case WarpOp::ReduceMaxU: r = v > r ? v : r; break;
                    case WarpOp::ReduceMinI: r = (int32_t)v < (int32_t)r ? v : r; break;
                    case WarpOp::ReduceMaxI: r = (int32_t)v > (int32_t)r ? v : r; break;
                    case WarpOp::ReduceAnd: r &= v; break;
                    case WarpOp::ReduceOr: r |= v; break;
                    default: r ^= v; break;
                }
            });
            each([&](unsigned l) { lanes[l].result = r; });
            break;
        }
        case WarpOp::MatchAny:
            each([&](unsigned l) {
                unsigned same = 0;
                each([&](unsigned k) { same |= (value_eq(l, k) ? 1u : 0u) << k; });
                lanes[l].result = same;
            });
            break;
        case WarpOp::MatchAll: {
            bool all = true;
            const unsigned first = __builtin_ctz(mask);
            each([&](unsigned l) { all = all && value_eq(l, first); });
            each([&](unsigned l) { lanes[l].result = all ? mask : 0; });
            break;
        }
        case WarpOp::Mma: compute_mma(b, lanes); break;
        case WarpOp::Ldmatrix: compute_ldmatrix(b, lanes); break;
    }
    if (op == WarpOp::Mma) ++tls_worker->counts.mma;
    if (op == WarpOp::Ldmatrix) ++tls_worker->counts.ldmatrix;
    checks_warp_sync(tls_worker->checks, w, mask);  // the lanes are ordered with each other now
    each([&](unsigned l) {
        lanes[l].wait = Wait::Runnable;
        b.push(w * 32 + l);
    });
}

// If every lane of the mask of waiting lane `lane` that exists and has not exited waits at a
// collective, they must all show the same operation, value size and mask (else WARP_MISUSE);
// then complete it among them.
void try_complete(Block& b, unsigned w, unsigned lane) {
    Fiber* lanes = &b.f[w * 32];
    const WarpCall& c = lanes[lane].call;
    const unsigned mask = c.mask & b.exists[w] & ~b.exited[w];
    for (unsigned m = mask; m; m &= m - 1)
        if (lanes[__builtin_ctz(m)].wait != Wait::Warp) return;  // not everyone is here yet
    for (unsigned m = mask; m; m &= m - 1) {
        const Fiber& o = lanes[__builtin_ctz(m)];
        if (o.call.op != c.op || o.call.aux != c.aux || o.call.mask != c.mask) {
            b.fail(TESSERA_EMU_WARP_MISUSE,
                   block_name(b) + strf(", warp %u: lanes meet at different warp collectives: lane %u at %s, lane %u at %s",
                                        w, lane, describe_call(c, true).c_str(), o.lane,
                                        describe_call(o.call, true).c_str()));
            return;
        }
    }
    complete_collective(b, w, mask);
}

// Lane `f` has just arrived at a collective: validate its call, complete the collective if
// every lane of the mask is there.
void on_warp_arrive(Block& b, Fiber& f) {
    const WarpCall& c = f.call;
    const unsigned w = f.warp, bit = 1u << f.lane;
    if (!(c.mask & bit)) {
        b.fail(TESSERA_EMU_WARP_MISUSE,
               thread_name(b, f) + ": " + describe_call(c) + ": the mask does not include the calling lane");
        return;
    }
    // Bits of lanes that do not exist (a partial last warp) or have exited are ignored, as on a
    // GPU: the collective completes among the others (try_complete).
    const bool shuffle = c.op == WarpOp::ShflIdx || c.op == WarpOp::ShflUp || c.op == WarpOp::ShflDown ||
                         c.op == WarpOp::ShflXor;
    if (shuffle && (c.width < 1 || c.width > 32 || (c.width & (c.width - 1)) != 0)) {
        b.fail(TESSERA_EMU_WARP_MISUSE,
               thread_name(b, f) + ": " + describe_call(c) + strf(": width %d is not a power of two in 1..32", c.width));
        return;
    }
    if ((c.op == WarpOp::Mma || c.op == WarpOp::Ldmatrix) &&
        (c.mask != 0xffffffffu || (b.exists[w] & ~b.exited[w]) != 0xffffffffu)) {
        b.fail(TESSERA_EMU_WARP_MISUSE,
               thread_name(b, f) + ": " + describe_call(c) +
                   strf(": needs all 32 lanes of the warp (lanes 0x%08x exist and have not exited)",
                        b.exists[w] & ~b.exited[w]));
        return;
    }
    try_complete(b, w, f.lane);
    // f may also be the last lane that another waiting lane's (different) mask waited for:
    // that collective can now never complete, which try_complete reports.
    for (unsigned l = 0; l < 32 && w * 32 + l < b.n && b.status == TESSERA_EMU_OK && f.wait == Wait::Warp; ++l) {
        const Fiber& o = b.f[w * 32 + l];
        if (l != f.lane && o.wait == Wait::Warp && (o.call.mask & bit) && o.call.mask != c.mask) try_complete(b, w, l);
    }
}

void on_exit(Block& b, Fiber& f) {
    const unsigned w = f.warp, bit = 1u << f.lane;
    --b.live;
    b.exited[w] |= bit;
    f.async.clear();  // copies never waited for: nobody can observe them
    // Collectives that wait for this lane complete without it now, if everyone else is there;
    // mma and ldmatrix need all 32 lanes.
    Fiber* lanes = &b.f[w * 32];
    for (unsigned l = 0; l < 32 && w * 32 + l < b.n && b.status == TESSERA_EMU_OK; ++l) {
        if (lanes[l].wait != Wait::Warp || !(lanes[l].call.mask & bit)) continue;
        if (lanes[l].call.op == WarpOp::Mma || lanes[l].call.op == WarpOp::Ldmatrix) {
            b.fail(TESSERA_EMU_WARP_MISUSE, thread_name(b, f) + ": exited while lane " + std::to_string(l) +
                                                " waits for it at " + describe_call(lanes[l].call));
            return;
        }
        try_complete(b, w, l);
    }
    if (b.status != TESSERA_EMU_OK) return;
    if (b.at_barrier > 0 && b.at_barrier == b.live) release_barrier(b);
}

// __activemask: once no lane of warp `w` can run (each live lane waits at a barrier, a
// collective or an __activemask), the lanes waiting at __activemask get their masks: those
// at one call site get the set of exactly those lanes, one group per call site. Returns
// whether it woke any lane.
bool resolve_active_mask(Block& b, unsigned w) {
    Fiber* lanes = &b.f[w * 32];
    const unsigned nl = std::min(32u, b.n - w * 32);
    unsigned waiting = 0;
    for (unsigned l = 0; l < nl; ++l) {
        if (lanes[l].wait == Wait::Runnable) return false;  // it may still reach this __activemask
        if (lanes[l].wait == Wait::ActiveMask) waiting |= 1u << l;
    }
    if (!waiting) return false;
    while (waiting) {
        const WarpCall& site = lanes[__builtin_ctz(waiting)].call;
        unsigned group = 0;
        for (unsigned m = waiting; m; m &= m - 1) {
            const WarpCall& c = lanes[__builtin_ctz(m)].call;
            if (c.line == site.line && std::strcmp(c.file, site.file) == 0) group |= m & -m;
        }
        for (unsigned m = group; m; m &= m - 1) {
            const unsigned l = __builtin_ctz(m);
            lanes[l].result = group;
            lanes[l].wait = Wait::Runnable;
            b.push(w * 32 + l);
        }
        waiting &= ~group;
    }
    return true;
}

void report_deadlock(Block& b) {
    std::vector<std::string> kinds;
    std::vector<std::vector<unsigned>> ids;
    for (unsigned i = 0; i < b.n; ++i) {
        if (b.f[i].wait == Wait::Exited) continue;
        std::string d = describe_wait(b.f[i]);
        size_t k = 0;
        while (k < kinds.size() && kinds[k] != d) ++k;
        if (k == kinds.size()) {
            kinds.push_back(d);
            ids.emplace_back();
        }
        ids[k].push_back(i);
    }
    std::string msg = block_name(b) + ":";
    for (size_t k = 0; k < kinds.size(); ++k)
        msg += strf("%s threads %s wait at %s", k ? "," : "", id_list(ids[k]).c_str(), kinds[k].c_str());
    b.fail(TESSERA_EMU_DEADLOCK, msg);
}

// ---- running a block ----------------------------------------------------------------------------------

void run_block(Worker& w, uint64_t linear) {
    Launch& L = *w.launch;
    const unsigned n = L.nthreads;
    Block b;
    b.L = &L;
    b.linear = linear;
    b.idx = uint3{(unsigned)(linear % L.grid.x), (unsigned)((linear / L.grid.x) % L.grid.y),
                  (unsigned)(linear / ((uint64_t)L.grid.x * L.grid.y))};
    b.n = n;
    b.queue.assign(n, 0);
    while (w.stacks.size() < n) {
        Stack s = stack_acquire();
        if (!s.lo) {
            L.fail(TESSERA_EMU_RESOURCES, std::string(category(TESSERA_EMU_RESOURCES)) + " in " + block_name(b) +
                                              ": cannot map fiber stacks");
            return;
        }
        w.stacks.push_back(s);
    }
    if (w.fibers.size() < n) w.fibers.resize(n);
    b.f = w.fibers.data();
    if (!w.arena) w.arena = static_cast<char*>(std::aligned_alloc(1024, kArenaBytes));
    if (!w.arena) {
        L.fail(TESSERA_EMU_RESOURCES, std::string(category(TESSERA_EMU_RESOURCES)) + " in " + block_name(b) +
                                          ": cannot allocate the shared-memory arena");
        return;
    }
    // Static variables from the arena's start (placed as the block first uses them), the
    // dynamic part after the largest possible static part; the gap is outside the window.
    b.smem.base = w.arena;
    b.smem.dyn_offset = kStaticSmemMax;
    b.smem.dyn_bytes = L.smem_bytes;
    if (L.smem_bytes) std::memset(w.arena + kStaticSmemMax, 0xff, L.smem_bytes);  // "uninitialised": NaN / -1
    checks_begin_block(w.checks, L.checks, linear, n, &b.smem);

    const unsigned bx = L.block.x, by = L.block.y;
    for (unsigned i = 0; i < n; ++i) {
        Fiber& f = b.f[i];
        f.bi = ThreadBuiltins{uint3{i % bx, (i / bx) % by, i / (bx * by)}, b.idx, L.block, L.grid};
        f.tid = i;
        f.warp = i / 32;
        f.lane = i % 32;
        f.wait = Wait::Runnable;
        f.async.clear();
        f.async_group = 0;
        f.asan_fake = nullptr;
        f.stack = &w.stacks[i];
        f.check = CheckThread{w.checks, i, reinterpret_cast<uintptr_t>(f.stack->lo), f.stack->size};
        stack_prepare(*f.stack);
        context_make(f.ctx, *f.stack, fiber_entry);
        b.exists[i / 32] |= 1u << (i % 32);
    }
    b.live = n;
    for (unsigned k = 0; k < n; ++k) b.push((linear & 1) ? n - 1 - k : k);

    w.block = &b;
    while (b.status == TESSERA_EMU_OK && !L.failed()) {
        if (b.q_len == 0) {
            // Nothing runnable: pending __activemask calls resolve first (normally done already
            // at the event that blocked a warp's last runnable lane, below).
            bool woke = false;
            for (unsigned wi = 0; wi * 32 < n; ++wi) woke = resolve_active_mask(b, wi) || woke;
            if (woke) continue;
            if (b.live > 0) report_deadlock(b);
            break;
        }
        Fiber& f = b.f[b.pop()];
        resume(w, f);
        if (b.status != TESSERA_EMU_OK) break;  // misuse() inside the fiber, or an ASan report
        switch (f.wait) {
            case Wait::Exited: on_exit(b, f); break;
            case Wait::Barrier:
                if (++b.at_barrier == b.live) release_barrier(b);
                break;
            case Wait::Warp: on_warp_arrive(b, f); break;
            case Wait::ActiveMask:
            case Wait::Runnable:
            case Wait::Aborted: break;
        }
        // f's warp may have no runnable lane left: its __activemask calls can resolve.
        if (b.status == TESSERA_EMU_OK && f.wait != Wait::Runnable) resolve_active_mask(b, f.warp);
    }
    w.block = nullptr;
    checks_end_block(w.checks);
    for (unsigned i = 0; i < n; ++i)
        if (b.f[i].wait != Wait::Exited) w.stacks[i].dirty = true;  // abandoned mid-kernel
    if (b.status != TESSERA_EMU_OK) L.fail(b.status, b.message);
}


void worker_main(Launch* L) {
    Worker w;
    w.launch = L;
    w.checks = checks_block_new();
    Worker* saved = tls_worker;
    tls_worker = &w;
    while (!L->failed()) {
        const uint64_t i = L->next_block.fetch_add(1, std::memory_order_relaxed);
        if (i >= L->nblocks) break;
        run_block(w, i);
    }
    tls_worker = saved;
    for (const Stack& s : w.stacks) stack_release(s);
    checks_block_delete(w.checks);  // adds its profile figures into the launch's
    std::free(w.arena);
    std::lock_guard<std::mutex> g(L->mu);
    profile_add(L->counts, w.counts);
}

unsigned worker_count(uint64_t nblocks) {
    static const unsigned hw = [] {
        if (const char* e = std::getenv("TESSERA_EMU_THREADS")) {
            int v = std::atoi(e);
            if (v > 0) return (unsigned)v;
        }
        unsigned h = std::thread::hardware_concurrency();
        return h ? h : 1u;
    }();
    return (unsigned)std::min<uint64_t>(hw, nblocks);
}

void copy_message(const std::string& msg, char* err, size_t err_len) {
    if (!err || err_len == 0) return;
    const size_t k = std::min(msg.size(), err_len - 1);
    std::memcpy(err, msg.data(), k);
    err[k] = '\0';
}

}  // namespace

// ---- runtime interface used by cuda_host.h / tessera.cuh --------------------------------------------------

uint64_t warp_collective(const WarpCall& call) {
    Fiber& f = current_fiber("a warp collective");
    checks_sync_point(f.check);
    f.call = call;
    f.wait = Wait::Warp;
    yield_to_scheduler(f, false);
    return f.result;
}

int block_barrier(int kind, int predicate, const char* file, unsigned line) {
    Fiber& f = current_fiber("__syncthreads");
    checks_sync_point(f.check);
    f.bar_kind = kind;
    f.bar_pred = predicate;
    f.bar_file = file;
    f.bar_line = line;
    f.wait = Wait::Barrier;
    yield_to_scheduler(f, false);
    return f.bar_result;
}

unsigned active_mask(const char* file, unsigned line) {
    Fiber& f = current_fiber("__activemask");
    f.call = WarpCall{};
    f.call.file = file;
    f.call.line = line;
    f.wait = Wait::ActiveMask;
    yield_to_scheduler(f, false);  // resolve_active_mask sets the result
    return (unsigned)f.result;
}

void* dynamic_smem() {
    current_fiber("dynamic shared memory");
    const SharedWindow& w = tls_worker->block->smem;
    return w.base + w.dyn_offset;
}

void* static_shared_alloc(size_t size, size_t align, const void* key, const char* name) {
    current_fiber("a __shared__ variable");
    Block& b = *tls_worker->block;
    for (const Block::Static& v : b.statics)
        if (v.key == key) return b.smem.base + v.offset;
    const size_t offset = (b.smem.static_used + align - 1) / align * align;
    const size_t end = offset + size;
    if (end > kStaticSmemMax)
        check_failed(TESSERA_EMU_BAD_CONFIG,
                     strf("static shared memory of %zu bytes (with `%s`, %zu bytes) exceeds the 48 KiB limit of every "
                          "architecture (use dynamic shared memory with the opt-in attribute)",
                          end, name, size));
    if (end + b.L->smem_bytes > b.L->smem_limit)
        check_failed(TESSERA_EMU_BAD_CONFIG,
                     strf("static shared memory of %zu bytes (with `%s`) plus %zu bytes of dynamic shared memory "
                          "exceeds the %zu-byte per-block limit of the emulated architecture",
                          end, name, b.L->smem_bytes, b.L->smem_limit));
    b.statics.push_back(Block::Static{key, offset, size, name});
    b.smem.static_used = end;
    std::memset(b.smem.base + offset, 0xff, size);  // poisoned, like every block's shared memory
    return b.smem.base + offset;
}

void atomic_access(const void* p, size_t size, const void* site) {
    Fiber& f = current_fiber("an atomic");
    ++tls_worker->counts.atomics;
    int status = 0;
    std::string message;
    if (!checks_access(f.check.block, f.tid, reinterpret_cast<uintptr_t>(p), size, true, true, site, &status,
                       &message))
        check_failed(status, message);
}

std::string describe_shared(size_t offset) {
    const Block* b = tls_worker ? tls_worker->block : nullptr;
    if (!b) return strf("shared offset %zu", offset);
    for (const Block::Static& v : b->statics)
        if (offset >= v.offset && offset < v.offset + v.size) return strf("`%s` + %zu bytes", v.name, offset - v.offset);
    if (offset >= b->smem.dyn_offset && offset < b->smem.dyn_offset + b->smem.dyn_bytes)
        return strf("dynamic shared memory + %zu bytes", offset - b->smem.dyn_offset);
    return strf("shared offset %zu (outside every variable)", offset);
}

std::string thread_label(unsigned tid) {
    const Block* b = tls_worker ? tls_worker->block : nullptr;
    if (!b || tid >= b->n) return strf("thread %u", tid);
    const Fiber& f = b->f[tid];
    return strf("thread (%u,%u,%u) [warp %u lane %u]", f.bi.thread_idx.x, f.bi.thread_idx.y, f.bi.thread_idx.z, f.warp,
                f.lane);
}

std::string block_label(uint64_t linear) {
    const Launch* L = tls_worker ? tls_worker->launch : nullptr;
    if (!L) return strf("block %llu", (unsigned long long)linear);
    return strf("block (%u,%u,%u)", (unsigned)(linear % L->grid.x), (unsigned)((linear / L->grid.x) % L->grid.y),
                (unsigned)(linear / ((uint64_t)L->grid.x * L->grid.y)));
}

uint3 builtin_thread_idx() { return tls_builtins->thread_idx; }
uint3 builtin_block_idx() { return tls_builtins->block_idx; }
dim3 builtin_block_dim() { return tls_builtins->block_dim; }
dim3 builtin_grid_dim() { return tls_builtins->grid_dim; }

void check_failed(int status, const std::string& what) {
    Fiber& f = current_fiber("a check");
    Block& b = *tls_worker->block;
    b.fail(status, thread_name(b, f) + ": " + what);
    f.wait = Wait::Aborted;
    yield_to_scheduler(f, true);
    __builtin_trap();
}

void misuse(const char* what, const char* file, unsigned line) {
    Fiber& f = current_fiber("misuse");
    Block& b = *tls_worker->block;
    b.fail(TESSERA_EMU_WARP_MISUSE, thread_name(b, f) + ": " + what + strf(" (%s:%u)", base_name(file), line));
    f.wait = Wait::Aborted;
    yield_to_scheduler(f, true);
    __builtin_trap();
}

void mma_m16n8k16(int bf16, float* d, const uint32_t* a, const uint32_t* b, const float* c, const char* file,
                  unsigned line) {
    MmaArgs args{a, b, c};
    WarpCall call{WarpOp::Mma, bf16 ? MMA_M16N8K16_BF16 : MMA_M16N8K16_F16, 0xffffffffu, 0, 32, 0, &args, d, file, line};
    warp_collective(call);
}

void mma_m16n8k8(int type, float* d, const uint32_t* a, const uint32_t* b, const float* c, const char* file,
                 unsigned line) {
    MmaArgs args{a, b, c};
    const unsigned char kind = type == 2 ? MMA_M16N8K8_TF32 : type == 1 ? MMA_M16N8K8_BF16 : MMA_M16N8K8_F16;
    WarpCall call{WarpOp::Mma, kind, 0xffffffffu, 0, 32, 0, &args, d, file, line};
    warp_collective(call);
}

void ldmatrix(int num, int trans, uint32_t* r, const void* row, const char* file, unsigned line) {
    Fiber& f = current_fiber("ldmatrix");
    if (f.lane < 8u * (unsigned)num && reinterpret_cast<uintptr_t>(row) % 16 != 0) {
        char buf[160];
        snprintf(buf, sizeof buf, "ldmatrix_x%d%s: row address %p (matrix %u, row %u) is not 16-byte aligned", num,
                 trans ? "_trans" : "", row, f.lane / 8, f.lane % 8);
        misuse(buf, file, line);
    }
    if (f.lane < 8u * (unsigned)num) {
        const uintptr_t a = reinterpret_cast<uintptr_t>(row);
        if (!checks_is_shared(&tls_worker->block->smem, a, 16))
            check_failed(TESSERA_EMU_MEMCHECK,
                         strf("ldmatrix_x%d%s: row address %p (matrix %u, row %u) is not in the block's shared memory "
                              "(ldmatrix reads the .shared state space only) (%s:%u)",
                              num, trans ? "_trans" : "", row, f.lane / 8, f.lane % 8, base_name(file), line));
        int status = 0;
        std::string message;
        if (!checks_access(f.check.block, f.tid, a, 16, false, false, __builtin_return_address(0), &status, &message))
            check_failed(status, message);
    }
    WarpCall call{WarpOp::Ldmatrix, (unsigned char)(num | (trans ? 8 : 0)), 0xffffffffu, 0, 32,
                  (uint64_t)reinterpret_cast<uintptr_t>(row), nullptr, r, file, line};
    warp_collective(call);
}

void cp_async16(const void* smem_dst, const void* gmem_src, const char* file, unsigned line) {
    Fiber& f = current_fiber("cp_async16");
    if ((reinterpret_cast<uintptr_t>(smem_dst) | reinterpret_cast<uintptr_t>(gmem_src)) % 16 != 0) {
        char buf[160];
        snprintf(buf, sizeof buf, "cp_async16: addresses %p <- %p are not both 16-byte aligned", smem_dst, gmem_src);
        misuse(buf, file, line);
    }
    const uintptr_t dst = reinterpret_cast<uintptr_t>(smem_dst), src = reinterpret_cast<uintptr_t>(gmem_src);
    if (!checks_is_shared(&tls_worker->block->smem, dst, 16))
        check_failed(TESSERA_EMU_MEMCHECK, strf("cp_async16: destination %p is not in the block's shared memory (%s:%u)",
                                                smem_dst, base_name(file), line));
    if (checks_is_shared(&tls_worker->block->smem, src, 16))
        check_failed(TESSERA_EMU_MEMCHECK, strf("cp_async16: source %p is shared memory; cp.async copies global to "
                                                "shared (%s:%u)", gmem_src, base_name(file), line));
    int status = 0;
    std::string message;
    if (!checks_access(f.check.block, f.tid, src, 16, false, false, __builtin_return_address(0), &status, &message))
        check_failed(status, message);
    ++tls_worker->counts.cp_async;
    AsyncCopy c;
    c.dst = const_cast<void*>(smem_dst);
    c.group = f.async_group;
    std::memcpy(c.data, gmem_src, 16);
    f.async.push_back(c);
}

void cp_async_commit() { ++current_fiber("cp_async_commit").async_group; }

void cp_async_wait(int n_pending) {
    Fiber& f = current_fiber("cp_async_wait");
    // Groups 0 .. async_group-1 are committed; the newest n_pending of them may stay in flight.
    const long long keep_from = (long long)f.async_group - (n_pending < 0 ? 0 : n_pending);
    size_t kept = 0;
    for (size_t i = 0; i < f.async.size(); ++i) {
        AsyncCopy& c = f.async[i];
        if ((long long)c.group < keep_from) {
            int status = 0;
            std::string message;
            if (!checks_access(f.check.block, f.tid, reinterpret_cast<uintptr_t>(c.dst), 16, true, false,
                               __builtin_return_address(0), &status, &message))
                check_failed(status, message);
            std::memcpy(c.dst, c.data, 16);
        } else {
            f.async[kept++] = c;
        }
    }
    f.async.resize(kept);
}

void on_sanitizer_report(const char* report) {
    Worker* w = tls_worker;
    if (!w || !w->launch) return;  // not inside a kernel launch: ASan has printed it, nothing more to do
    // Keep the report's first informative lines (the error kind, the access, the top frames).
    std::string lines;
    int count = 0;
    for (const char* p = report; *p && count < 8;) {
        const char* e = std::strchr(p, '\n');
        std::string line(p, e ? (size_t)(e - p) : std::strlen(p));
        p = e ? e + 1 : p + line.size();
        if (line.empty() || line.find_first_not_of('=') == std::string::npos) continue;
        lines += "\n  " + line;
        ++count;
    }
    std::string where = w->block ? (tls_fiber ? thread_name(*w->block, *tls_fiber) : block_name(*w->block))
                                 : "kernel " + w->launch->kernel;
    std::string msg = where + ":" + lines;
    if (w->block) {
        w->block->fail(TESSERA_EMU_SANITIZER, msg);
    } else {
        w->launch->fail(TESSERA_EMU_SANITIZER, std::string(category(TESSERA_EMU_SANITIZER)) + " in " + msg);
    }
}

}  // namespace tessera_host

// ---- C entry points ----------------------------------------------------------------------------------

extern "C" int tessera_emu_launch(const char* kernel_name, unsigned grid_x, unsigned grid_y, unsigned grid_z,
                                  unsigned block_x, unsigned block_y, unsigned block_z, size_t dynamic_smem_bytes,
                                  tessera_emu_thunk thunk, const void* ctx, const tessera_emu_arg* args, size_t nargs,
                                  const tessera_emu_options* options, tessera_emu_profile* profile, char* err,
                                  size_t err_len) {
    using namespace tessera_host;
    asan_install();
    if (err && err_len) err[0] = '\0';
    const char* name = kernel_name ? kernel_name : "?";
    const uint64_t threads = (uint64_t)block_x * block_y * block_z;
    const unsigned sm = options && options->sm ? options->sm : 90;
    const size_t smem_limit = smem_optin_limit(sm);
    std::string bad;
    if (block_x < 1 || block_y < 1 || block_z < 1 || block_x > 1024 || block_y > 1024 || block_z > 64 ||
        threads > 1024)
        bad = strf("block (%u,%u,%u): each dimension must be >= 1, x,y <= 1024, z <= 64, x*y*z <= 1024", block_x,
                   block_y, block_z);
    else if (grid_x < 1 || grid_y < 1 || grid_z < 1 || grid_x > 0x7fffffffu || grid_y > 65535 || grid_z > 65535)
        bad = strf("grid (%u,%u,%u): each dimension must be >= 1, x <= 2^31-1, y,z <= 65535", grid_x, grid_y, grid_z);
    else if (sm != 80 && sm != 90)
        bad = strf("emulated architecture sm_%u: only sm_80 and sm_90 are emulated", sm);
    else if (dynamic_smem_bytes > smem_limit)
        bad = strf("dynamic shared memory of %zu bytes exceeds the %zu-byte (%zu KiB) per-block limit of sm_%u",
                   dynamic_smem_bytes, smem_limit, smem_limit / 1024, sm);
    else if (!thunk)
        bad = "no kernel thunk";
    if (!bad.empty()) {
        copy_message(strf("bad launch configuration in kernel %s: ", name) + bad, err, err_len);
        return TESSERA_EMU_BAD_CONFIG;
    }
    if (tls_worker) {
        copy_message(strf("bad launch configuration in kernel %s: launched from inside an emulated kernel", name),
                     err, err_len);
        return TESSERA_EMU_BAD_CONFIG;
    }

    Launch L;
    L.kernel = name;
    L.grid = dim3(grid_x, grid_y, grid_z);
    L.block = dim3(block_x, block_y, block_z);
    L.nthreads = (unsigned)threads;
    L.nblocks = (uint64_t)grid_x * grid_y * grid_z;
    L.smem_bytes = dynamic_smem_bytes;
    L.thunk = thunk;
    L.ctx = ctx;
    L.smem_limit = smem_limit;
    L.checks = checks_begin_launch(name, args, nargs, options && options->profile && profile);

    const unsigned nw = worker_count(L.nblocks);
    std::vector<std::thread> helpers;
    for (unsigned i = 1; i < nw; ++i) {
        try {
            helpers.emplace_back(worker_main, &L);
        } catch (...) {
            break;  // fewer workers is fine
        }
    }
    worker_main(&L);
    for (std::thread& t : helpers) t.join();

    tessera_emu_profile* out = options && options->profile ? profile : nullptr;
    if (out) {
        *out = tessera_emu_profile{};
        profile_add(*out, L.counts);
    }
    checks_end_launch(L.checks, out);
    const int st = L.status.load();
    if (st != TESSERA_EMU_OK) copy_message(L.message, err, err_len);
    return st;
}

extern "C" int tessera_emu_sanitizer_enabled(void) { return TESSERA_EMU_ASAN; }

extern "C" int tessera_emu_checks_enabled(void) {
#if defined(TESSERA_EMU_CHECKS)
    return 1;
#else
    return 0;
#endif
}
