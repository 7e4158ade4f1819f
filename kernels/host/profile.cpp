// profile.cpp -- the memory-traffic profile of an emulated launch (TESSERA_SANITIZE=checks):
// groups the accesses of each warp into the warp-level requests the hardware issues and
// counts, per request, the 32-byte global sectors or the shared-memory wavefronts.
//
// A request is the k-th access of each lane of a warp at one call site between two
// synchronization points of the lane (emu_internal.h). The threads of a block run one after
// another on their fibers, so the lanes of one request arrive far apart: every access is
// appended to its warp's list with the key (interval, site, space, k, lane), and at a block
// barrier's release or the block's end (profiler_flush) each warp's list is sorted and every
// run of equal (interval, site, space, k) is one request.
//
// Global request: sectors = distinct 32-byte sectors its lanes touch; bytes = the distinct
// bytes its lanes ask for (the union of their ranges: a word several lanes read counts once),
// so bytes / (32 · sectors) is the fraction of the moved bytes the warp uses, at most 1.
//
// Shared request (32 banks of 4 bytes, bank = (address / 4) % 32; the window is 128-byte
// aligned, so absolute addresses give the same banks): the request's size is the largest
// access in it; 4-byte (and 1-, 2-byte) requests are served in one phase of 32 lanes, 8-byte
// ones in two phases of 16 lanes, 16-byte (and larger) ones in four phases of 8 lanes. In each
// phase the wavefronts are the largest number of distinct 4-byte words any one bank holds
// among the words the phase's lanes touch (lanes reading one word share it: a broadcast, no
// conflict); a phase with no active lane issues nothing. An access smaller than a word counts
// as the word that contains it. Shared bytes are the sum of the lanes' access sizes (what
// the lanes receive), so bytes / 128 is the fewest wavefronts a full warp's request needs.
//
// Ideal wavefronts: one per phase with an active lane (ceil(distinct words / 32) for the rare
// phase of wider accesses) -- what the request would cost without bank conflicts, given its
// active lanes and access size (Nsight Compute's "ideal" shared wavefronts). The conflict
// factor is wavefronts / ideal wavefronts, exactly, request by request.
//
// TESSERA_PROFILE_SITES=1 also prints, at exit, every shared-memory call site whose requests
// took more wavefronts than ideal (file:line, requests, wavefronts, ideal): where a kernel's
// bank conflicts come from.
//
// Allocation-light: every buffer lives in the per-worker Profiler and keeps its capacity
// across blocks and launches.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "emu_internal.h"

namespace tessera_host {

namespace {

// One access waiting for its request to complete.
struct Access {
    uint64_t hi;    // interval << 32 | site id << 2 | store << 1 | shared
    uint64_t lo;    // k << 32 | lane << 16 | size (capped at 0xffff)
    uintptr_t addr;
};

bool operator<(const Access& a, const Access& b) {
    return a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo;
}

// A thread's count of accesses at one site in its current interval; valid when `token` is the
// thread's current token (so nothing needs clearing at a synchronization point).
struct SiteCount {
    uint32_t token = 0;
    uint32_t k = 0;
};

struct ThreadState {
    uint32_t interval = 0;  // synchronization points passed in this block
    uint32_t token = 0;     // unique per (thread, interval) within the worker
    std::vector<SiteCount> sites;
};

constexpr unsigned kWarp = 32;
constexpr uintptr_t kSectorBytes = 32;
constexpr unsigned kBanks = 32;

// TESSERA_PROFILE_SITES: shared-memory excess per call site, summed over the process.
struct SiteExcess {
    unsigned long long requests = 0, wavefronts = 0, ideal = 0;
};

bool sites_enabled() {
    static const bool on = [] {
        const char* v = std::getenv("TESSERA_PROFILE_SITES");
        return v && *v && std::strcmp(v, "0") != 0;
    }();
    return on;
}

std::mutex& sites_mutex() {
    static auto* mu = new std::mutex();
    return *mu;
}

std::map<std::pair<const void*, bool>, SiteExcess>& sites_table() {
    static auto* table = new std::map<std::pair<const void*, bool>, SiteExcess>();
    return *table;
}

void print_sites() {
    std::lock_guard<std::mutex> g(sites_mutex());
    for (const auto& [key, e] : sites_table()) {
        if (e.wavefronts <= e.ideal) continue;
        std::fprintf(stderr, "tessera profile: shared %s at %s: %llu requests, %llu wavefronts, %llu ideal (%.3fx)\n",
                     key.second ? "store" : "load", tessera_host::describe_site(key.first).c_str(), e.requests,
                     e.wavefronts, e.ideal, (double)e.wavefronts / (double)e.ideal);
    }
}

}  // namespace

struct Profiler {
    // Call sites -> small dense ids (open addressing; ids are per launch part, cleared at take).
    std::vector<const void*> site_keys;
    std::vector<uint32_t> site_ids;
    std::vector<const void*> site_of_id;  // id -> call site
    uint32_t nsites = 0;

    std::vector<ThreadState> threads;
    std::vector<std::vector<Access>> warps;  // pending accesses per warp of the block
    uint32_t next_token = 0;

    // Scratch of flush.
    std::vector<uintptr_t> scratch;
    std::vector<std::pair<uintptr_t, uintptr_t>> ranges;

    // Totals since the last take.
    tessera_emu_profile totals{};  // request, sector, wavefront and byte counts only
    std::map<std::pair<const void*, bool>, SiteExcess> site_excess;  // TESSERA_PROFILE_SITES only

    uint32_t site_id(const void* site) {
        if (2 * (nsites + 1) > site_keys.size()) grow_sites();
        size_t mask = site_keys.size() - 1;
        size_t h = (reinterpret_cast<uintptr_t>(site) * 0x9E3779B97F4A7C15ull) >> 20;
        for (size_t i = h & mask;; i = (i + 1) & mask) {
            if (site_keys[i] == site) return site_ids[i];
            if (site_keys[i] == nullptr) {
                site_keys[i] = site;
                site_ids[i] = nsites;
                if (site_of_id.size() <= nsites) site_of_id.resize(2 * (size_t)nsites + 16);
                site_of_id[nsites] = site;
                return nsites++;
            }
        }
    }

    void grow_sites() {
        std::vector<const void*> keys(std::max<size_t>(64, 2 * site_keys.size()), nullptr);
        std::vector<uint32_t> ids(keys.size(), 0);
        size_t mask = keys.size() - 1;
        for (size_t j = 0; j < site_keys.size(); j++) {
            if (site_keys[j] == nullptr) continue;
            size_t h = (reinterpret_cast<uintptr_t>(site_keys[j]) * 0x9E3779B97F4A7C15ull) >> 20;
            size_t i = h & mask;
            while (keys[i] != nullptr) i = (i + 1) & mask;
            keys[i] = site_keys[j];
            ids[i] = site_ids[j];
        }
        site_keys.swap(keys);
        site_ids.swap(ids);
    }

    uint32_t new_token() {
        if (++next_token == 0) {
            // Wrapped: no stale count may look current, so forget them all.
            for (ThreadState& t : threads)
                for (SiteCount& c : t.sites) c = SiteCount{};
            next_token = 1;
        }
        return next_token;
    }

    void global_request(const Access* a, size_t n, bool store) {
        // Bytes: the union of the lanes' byte ranges (lanes reading one word ask for it once).
        ranges.clear();
        for (size_t i = 0; i < n; i++) {
            unsigned size = static_cast<unsigned>(a[i].lo & 0xffff);
            ranges.push_back({a[i].addr, a[i].addr + (size ? size : 1)});
        }
        std::sort(ranges.begin(), ranges.end());
        unsigned long long bytes = 0, sectors = 0;
        uintptr_t covered = 0, last_sector = ~uintptr_t(0);  // end of the bytes / the last sector counted
        for (const auto& [begin, end] : ranges) {
            const uintptr_t from = std::max(begin, covered);
            if (end > from) bytes += end - from;
            covered = std::max(covered, end);
            // Sectors ascend with the sorted starts; count each once.
            for (uintptr_t s = begin / kSectorBytes; s <= (end - 1) / kSectorBytes; s++) {
                if (last_sector != ~uintptr_t(0) && s <= last_sector) continue;
                last_sector = s;
                sectors++;
            }
        }
        if (store) {
            totals.global_store_requests++, totals.global_store_sectors += sectors, totals.global_store_bytes += bytes;
        } else {
            totals.global_load_requests++, totals.global_load_sectors += sectors, totals.global_load_bytes += bytes;
        }
    }

    void shared_request(const Access* a, size_t n, bool store, uint32_t sid) {
        unsigned long long bytes = 0;
        unsigned width = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned size = static_cast<unsigned>(a[i].lo & 0xffff);
            bytes += size;
            width = std::max(width, size);
        }
        // Lanes per phase: 32 for words (and smaller), 16 for 8-byte, 8 for 16-byte accesses.
        unsigned lanes_per_phase = width <= 4 ? 32 : width <= 8 ? 16 : 8;
        unsigned long long wavefronts = 0, ideal = 0;
        // The accesses are sorted by lane, so each phase is a contiguous run.
        size_t i = 0;
        while (i < n) {
            unsigned phase = static_cast<unsigned>((a[i].lo >> 16) & 0xffff) / lanes_per_phase;
            scratch.clear();
            for (; i < n && static_cast<unsigned>((a[i].lo >> 16) & 0xffff) / lanes_per_phase == phase; i++) {
                unsigned size = static_cast<unsigned>(a[i].lo & 0xffff);
                uintptr_t first = a[i].addr / 4, last = (a[i].addr + (size ? size : 1) - 1) / 4;
                for (uintptr_t w = first; w <= last; w++) scratch.push_back(w);
            }
            std::sort(scratch.begin(), scratch.end());
            auto end = std::unique(scratch.begin(), scratch.end());
            unsigned per_bank[kBanks] = {};
            unsigned most = 0;
            for (auto w = scratch.begin(); w != end; ++w) most = std::max(most, ++per_bank[*w % kBanks]);
            wavefronts += most;
            ideal += (static_cast<size_t>(end - scratch.begin()) + kBanks - 1) / kBanks;
        }
        if (store) {
            totals.shared_store_requests++, totals.shared_store_wavefronts += wavefronts, totals.shared_store_bytes += bytes;
            totals.shared_store_ideal_wavefronts += ideal;
        } else {
            totals.shared_load_requests++, totals.shared_load_wavefronts += wavefronts, totals.shared_load_bytes += bytes;
            totals.shared_load_ideal_wavefronts += ideal;
        }
        if (sites_enabled()) {
            SiteExcess& e = site_excess[{site_of_id[sid], store}];
            e.requests++, e.wavefronts += wavefronts, e.ideal += ideal;
        }
    }

    void flush_warp(std::vector<Access>& list) {
        std::sort(list.begin(), list.end());
        size_t i = 0;
        while (i < list.size()) {
            size_t j = i + 1;
            while (j < list.size() && list[j].hi == list[i].hi && (list[j].lo >> 32) == (list[i].lo >> 32)) j++;
            bool store = (list[i].hi >> 1) & 1, shared = list[i].hi & 1;
            if (shared) {
                shared_request(&list[i], j - i, store, static_cast<uint32_t>((list[i].hi >> 2) & 0x3fffffff));
            } else {
                global_request(&list[i], j - i, store);
            }
            i = j;
        }
        list.clear();
    }
};

Profiler* profiler_new() { return new Profiler(); }

void profiler_delete(Profiler* p) { delete p; }

void profiler_begin_block(Profiler* p, unsigned nthreads) {
    if (p->threads.size() < nthreads) p->threads.resize(nthreads);
    for (unsigned t = 0; t < nthreads; t++) {
        p->threads[t].interval = 0;
        p->threads[t].token = p->new_token();
    }
    size_t nwarps = (nthreads + kWarp - 1) / kWarp;
    if (p->warps.size() < nwarps) p->warps.resize(nwarps);
    // Whatever an aborted block left behind is not counted.
    for (auto& w : p->warps) w.clear();
}

void profiler_sync(Profiler* p, unsigned tid) {
    ThreadState& t = p->threads[tid];
    t.interval++;
    t.token = p->new_token();
}

void profiler_access(Profiler* p, unsigned tid, const void* site, uintptr_t addr, unsigned size, bool store,
                     bool shared) {
    uint32_t sid = p->site_id(site);
    ThreadState& t = p->threads[tid];
    if (sid >= t.sites.size()) t.sites.resize(std::max<size_t>(16, 2 * (size_t)sid + 2));
    SiteCount& c = t.sites[sid];
    if (c.token != t.token) c = SiteCount{t.token, 0};
    uint64_t k = c.k++;
    Access a;
    a.hi = (uint64_t)t.interval << 32 | (uint64_t)sid << 2 | (uint64_t)store << 1 | (uint64_t)shared;
    a.lo = k << 32 | (uint64_t)(tid % kWarp) << 16 | std::min(size, 0xffffu);
    a.addr = addr;
    p->warps[tid / kWarp].push_back(a);
}

void profiler_flush(Profiler* p) {
    for (auto& w : p->warps)
        if (!w.empty()) p->flush_warp(w);
}

void profiler_take(Profiler* p, tessera_emu_profile* out) {
    profile_add(*out, p->totals);
    p->totals = tessera_emu_profile{};
    if (!p->site_excess.empty()) {
        static const bool registered = [] { return std::atexit(print_sites) == 0; }();
        (void)registered;
        std::lock_guard<std::mutex> g(sites_mutex());
        for (const auto& [key, e] : p->site_excess) {
            SiteExcess& into = sites_table()[key];
            into.requests += e.requests, into.wavefronts += e.wavefronts, into.ideal += e.ideal;
        }
        p->site_excess.clear();
    }
    // Site ids are per launch part; the threads' counts stay valid by token, not by id, so
    // stale ones can never be mistaken for current ones.
    std::fill(p->site_keys.begin(), p->site_keys.end(), nullptr);
    p->nsites = 0;
}

}  // namespace tessera_host
