//! Nsight-like figures of an emulated launch: coalescing, bytes moved against the op's
//! minimum, shared-memory bank conflicts, and the launch's lower-bound time on an A100,
//! H100 or H200.
//!
//! The emulator (built with `TESSERA_SANITIZE=checks`, the test suite's default) groups each
//! warp's accesses the way the hardware issues them — the k-th access of each lane at one
//! call site between two synchronization points is one warp-level request — and counts per
//! launch the requests, the 32-byte sectors of global requests and the wavefronts of shared
//! ones ([`ProfileCounters`]). [`crate::emulator::profile`] collects one
//! [`LaunchRecord`] per launch; [`LaunchProfile`] derives the figures from it.
//!
//! ```no_run
//! use tessera::{emulator, profile::{LaunchProfile, Peaks}, Device, Fsq};
//! let device = Device::emulator();
//! let fsq = Fsq::new(&[8, 5, 5, 5])?;
//! let z = device.upload(&vec![0.25f32; 4 * 4096])?;
//! let (out, records) = emulator::profile(|| fsq.quantize(&device, &z));
//! out?;
//! for r in &records {
//!     let p = LaunchProfile::new(r);
//!     let (seconds, resource) = p.lower_bound(&Peaks::H100);
//!     println!("{}: load efficiency {:?}, {:.2} µs ({resource})", p.kernel, p.global_load_efficiency(), seconds * 1e6);
//! }
//! # Ok::<(), tessera::Error>(())
//! ```
//!
//! Units: bytes, requests, sectors and wavefronts are counts (u64); efficiencies and
//! factors are plain ratios; times are seconds; bandwidths bytes per second; FLOP/s
//! floating-point operations per second (a multiply-add is 2 FLOPs).

use crate::device::emulator::{LaunchRecord, ProfileCounters};

/// Bytes of a global-memory sector: the unit in which L1/L2 and DRAM move data.
pub const SECTOR_BYTES: u64 = 32;
/// Bytes one shared-memory wavefront serves: 32 banks of 4 bytes.
pub const WAVEFRONT_BYTES: u64 = 128;

/// Peak figures of one GPU (dense, boost clock), for lower-bound times.
///
/// Sources: NVIDIA's A100 and H100/H200 datasheets for HBM bandwidth and tensor / FP32
/// FLOP/s (the tensor figures are the dense ones: half the datasheets' "with sparsity"
/// numbers), the A100 and H100 architecture whitepapers for SM counts and boost clocks.
/// Shared-memory bandwidth is not in the datasheets; it is the per-SM figure of the
/// whitepapers (32 banks × 4 bytes = 128 bytes per clock per SM, on both Ampere and
/// Hopper) × SMs × boost clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Peaks {
    /// The GPU, e.g. "H100 SXM".
    pub name: &'static str,
    /// HBM bandwidth, bytes/s.
    pub hbm_bytes_per_s: f64,
    /// Streaming multiprocessors.
    pub sms: u32,
    /// Boost clock, Hz (the one the shared-memory figure uses).
    pub clock_hz: f64,
    /// Shared-memory bytes one SM serves per clock.
    pub shared_bytes_per_clock_per_sm: f64,
    /// Dense f16/bf16 tensor-core FLOP/s (f32 accumulate), the whole GPU.
    pub tensor_flops: f64,
    /// FP32 CUDA-core FLOP/s (FMA = 2), the whole GPU.
    pub fp32_flops: f64,
}

impl Peaks {
    /// A100 SXM4 80 GB: HBM2e 2039 GB/s; 108 SMs at 1410 MHz boost; 312 TFLOP/s dense
    /// f16/bf16 tensor; 19.5 TFLOP/s FP32. Shared memory: 128 B/clk/SM × 108 × 1.41 GHz
    /// = 19.5 TB/s.
    pub const A100: Peaks = Peaks {
        name: "A100 SXM",
        hbm_bytes_per_s: 2039e9,
        sms: 108,
        clock_hz: 1410e6,
        shared_bytes_per_clock_per_sm: 128.0,
        tensor_flops: 312e12,
        fp32_flops: 19.5e12,
    };
    /// H100 SXM5 80 GB: HBM3 3.35 TB/s; 132 SMs; 989.4 TFLOP/s dense f16/bf16 tensor (at
    /// the 1830 MHz tensor boost clock); 66.9 TFLOP/s FP32 (at the 1980 MHz max boost).
    /// Shared memory: 128 B/clk/SM × 132 × 1.98 GHz = 33.5 TB/s (the higher clock, so the
    /// time stays a lower bound).
    pub const H100: Peaks = Peaks {
        name: "H100 SXM",
        hbm_bytes_per_s: 3.35e12,
        sms: 132,
        clock_hz: 1980e6,
        shared_bytes_per_clock_per_sm: 128.0,
        tensor_flops: 989.4e12,
        fp32_flops: 66.9e12,
    };
    /// H200 SXM 141 GB: the H100's GH100 chip (same SMs, clocks, FLOP/s) with HBM3e at
    /// 4.8 TB/s.
    pub const H200: Peaks = Peaks { name: "H200 SXM", hbm_bytes_per_s: 4.8e12, ..Peaks::H100 };
    /// The three GPUs above, oldest first.
    pub const ALL: [Peaks; 3] = [Peaks::A100, Peaks::H100, Peaks::H200];

    /// Shared-memory bandwidth of the whole GPU, bytes/s.
    pub fn shared_bytes_per_s(&self) -> f64 {
        self.shared_bytes_per_clock_per_sm * self.sms as f64 * self.clock_hz
    }
}

/// The resource that bounds a launch's lower-bound time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// HBM bandwidth (the distinct bytes the launch touches).
    Hbm,
    /// Shared-memory bandwidth (its wavefronts).
    SharedMemory,
    /// Tensor-core FLOP/s (launches that issue mma).
    TensorCores,
    /// CUDA-core FP32 FLOP/s (launches without mma).
    CudaCores,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resource::Hbm => "HBM",
            Resource::SharedMemory => "shared memory",
            Resource::TensorCores => "tensor cores",
            Resource::CudaCores => "CUDA cores",
        })
    }
}

/// The figures of one launch (or of several launches of one kernel, see
/// [`LaunchProfile::accumulate`]), derived from a [`LaunchRecord`].
#[derive(Clone, Debug)]
pub struct LaunchProfile {
    /// The kernel's symbol.
    pub kernel: &'static str,
    /// Grid of the (first) launch.
    pub grid: (u32, u32, u32),
    /// Block of the (first) launch.
    pub block: (u32, u32, u32),
    /// Dynamic shared memory of the (first) launch, bytes.
    pub shared_mem_bytes: u32,
    /// The emulator's counts, summed over the launches.
    pub counters: ProfileCounters,
    /// Bytes of the input views (each input read once), summed over the launches.
    pub input_bytes: u64,
    /// Bytes of the output views (each output written once), summed over the launches.
    pub output_bytes: u64,
    /// FLOPs the wrapper declared (0 if it declared none), summed over the launches.
    pub flops: u64,
    /// Launches summed here.
    pub launches: u64,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Wavefronts / the wavefronts the same requests take without bank conflicts.
fn conflict_factor(wavefronts: u64, ideal: u64) -> Option<f64> {
    ratio(wavefronts, ideal)
}

impl LaunchProfile {
    /// The profile of one launch.
    pub fn new(record: &LaunchRecord) -> Self {
        LaunchProfile {
            kernel: record.kernel,
            grid: record.grid,
            block: record.block,
            shared_mem_bytes: record.shared_mem_bytes,
            counters: record.counters,
            input_bytes: record.input_bytes,
            output_bytes: record.output_bytes,
            flops: record.flops,
            launches: 1,
        }
    }

    /// Adds another launch's counts, bytes and FLOPs (grid, block and kernel stay this one's).
    pub fn accumulate(&mut self, other: &LaunchProfile) {
        let (a, b) = (&mut self.counters, &other.counters);
        a.global_load_requests += b.global_load_requests;
        a.global_load_sectors += b.global_load_sectors;
        a.global_load_bytes += b.global_load_bytes;
        a.global_store_requests += b.global_store_requests;
        a.global_store_sectors += b.global_store_sectors;
        a.global_store_bytes += b.global_store_bytes;
        a.global_distinct_bytes += b.global_distinct_bytes;
        a.shared_load_requests += b.shared_load_requests;
        a.shared_load_wavefronts += b.shared_load_wavefronts;
        a.shared_load_bytes += b.shared_load_bytes;
        a.shared_store_requests += b.shared_store_requests;
        a.shared_store_wavefronts += b.shared_store_wavefronts;
        a.shared_store_bytes += b.shared_store_bytes;
        a.shared_load_ideal_wavefronts += b.shared_load_ideal_wavefronts;
        a.shared_store_ideal_wavefronts += b.shared_store_ideal_wavefronts;
        a.atomics += b.atomics;
        a.mma += b.mma;
        a.ldmatrix += b.ldmatrix;
        a.cp_async += b.cp_async;
        a.barriers += b.barriers;
        self.input_bytes += other.input_bytes;
        self.output_bytes += other.output_bytes;
        self.flops += other.flops;
        self.launches += other.launches;
    }

    /// Blocks of the (first) launch's grid.
    pub fn blocks(&self) -> u64 {
        self.grid.0 as u64 * self.grid.1 as u64 * self.grid.2 as u64
    }

    /// Global loads: bytes requested / bytes of the sectors they touch (1.0 = perfectly
    /// coalesced; 1/8 for 4-byte loads 32 bytes apart). A request's bytes are the distinct
    /// bytes its lanes ask for (a word all lanes read counts once), so this is the fraction
    /// of the moved bytes the warps use, at most 1. None without global loads.
    pub fn global_load_efficiency(&self) -> Option<f64> {
        ratio(self.counters.global_load_bytes, self.counters.global_load_sectors * SECTOR_BYTES)
    }

    /// Global stores: bytes requested / bytes of the sectors they touch. None without stores.
    pub fn global_store_efficiency(&self) -> Option<f64> {
        ratio(self.counters.global_store_bytes, self.counters.global_store_sectors * SECTOR_BYTES)
    }

    /// Bytes moved between the SMs and the memory system: every sector of every global
    /// request, 32 bytes each (what the L1/L2 serve; a sector two requests touch counts twice).
    pub fn bytes_moved(&self) -> u64 {
        (self.counters.global_load_sectors + self.counters.global_store_sectors) * SECTOR_BYTES
    }

    /// Bytes the global requests asked for.
    pub fn bytes_requested(&self) -> u64 {
        self.counters.global_load_bytes + self.counters.global_store_bytes
    }

    /// Distinct bytes of the launch's buffers touched: what a perfect cache would move
    /// between the GPU and HBM.
    pub fn distinct_bytes(&self) -> u64 {
        self.counters.global_distinct_bytes
    }

    /// The op's minimum traffic: each input read once, each output written once (the
    /// bytes of the input and output views).
    pub fn minimum_bytes(&self) -> u64 {
        self.input_bytes + self.output_bytes
    }

    /// Shared-memory requests, loads and stores.
    pub fn shared_requests(&self) -> u64 {
        self.counters.shared_load_requests + self.counters.shared_store_requests
    }

    /// Shared-memory wavefronts, loads and stores.
    pub fn shared_wavefronts(&self) -> u64 {
        self.counters.shared_load_wavefronts + self.counters.shared_store_wavefronts
    }

    /// Wavefronts per shared load request (1 for conflict-free 4-byte loads, 2 for 8-byte,
    /// 4 for 16-byte; 32 for a 32-way conflict). None without shared loads.
    pub fn shared_load_wavefronts_per_request(&self) -> Option<f64> {
        ratio(self.counters.shared_load_wavefronts, self.counters.shared_load_requests)
    }

    /// Wavefronts per shared store request. None without shared stores.
    pub fn shared_store_wavefronts_per_request(&self) -> Option<f64> {
        ratio(self.counters.shared_store_wavefronts, self.counters.shared_store_requests)
    }

    /// Bank-conflict factor of all shared requests: wavefronts / the wavefronts the same
    /// requests would take without bank conflicts (one per phase with an active lane; a
    /// phase is 32, 16 or 8 lanes for 4-, 8- and 16-byte accesses), counted request by
    /// request. 1.0 = conflict-free; 32 for a 32-way conflict. Narrow or partial-warp
    /// requests are not conflicts and do not raise it: see
    /// [`LaunchProfile::shared_bytes_per_wavefront`] for how full the wavefronts are.
    /// None without shared requests.
    pub fn shared_conflict_factor(&self) -> Option<f64> {
        let c = &self.counters;
        conflict_factor(self.shared_wavefronts(), c.shared_load_ideal_wavefronts + c.shared_store_ideal_wavefronts)
    }

    /// [`LaunchProfile::shared_conflict_factor`] of the shared loads alone.
    pub fn shared_load_conflict_factor(&self) -> Option<f64> {
        let c = &self.counters;
        conflict_factor(c.shared_load_wavefronts, c.shared_load_ideal_wavefronts)
    }

    /// [`LaunchProfile::shared_conflict_factor`] of the shared stores alone.
    pub fn shared_store_conflict_factor(&self) -> Option<f64> {
        let c = &self.counters;
        conflict_factor(c.shared_store_wavefronts, c.shared_store_ideal_wavefronts)
    }

    /// Bytes the shared requests move per wavefront, loads and stores (128 at most: 32
    /// banks of 4 bytes). Below 128 for conflicts, and also for narrow (1- or 2-byte) or
    /// partial-warp requests, which the conflict factor does not count. None without
    /// shared requests.
    pub fn shared_bytes_per_wavefront(&self) -> Option<f64> {
        let c = &self.counters;
        let bytes = c.shared_load_bytes + c.shared_store_bytes;
        (self.shared_wavefronts() > 0).then(|| bytes as f64 / self.shared_wavefronts() as f64)
    }

    /// SMs the launch can occupy on `peaks`: its blocks, at most the GPU's SMs.
    fn busy_sms(&self, peaks: &Peaks) -> f64 {
        self.blocks().clamp(1, peaks.sms as u64) as f64
    }

    /// The time each resource needs at least, in seconds, for a launch on `peaks`:
    ///
    /// - HBM: distinct bytes / HBM bandwidth. The distinct bytes, not the bytes moved: a
    ///   sector that several requests touch may come from L2 after the first, so only the
    ///   distinct bytes must cross the HBM interface (with a cold cache); the bytes moved
    ///   would overstate a lower bound.
    /// - shared memory: wavefronts × 128 bytes / (128 bytes per clock × the SMs the grid
    ///   can occupy × clock) — a grid of fewer blocks than SMs leaves the other SMs' banks idle.
    /// - FLOPs: the wrapper's FLOPs / the peak of the SMs the grid can occupy, tensor
    ///   cores when the launch issues mma, else CUDA cores.
    pub fn resource_times(&self, peaks: &Peaks) -> [(Resource, f64); 3] {
        let share = self.busy_sms(peaks) / peaks.sms as f64;
        let hbm = self.distinct_bytes() as f64 / peaks.hbm_bytes_per_s;
        let shared = (self.shared_wavefronts() * WAVEFRONT_BYTES) as f64 / (peaks.shared_bytes_per_s() * share);
        let (unit, flops_per_s) = if self.counters.mma > 0 {
            (Resource::TensorCores, peaks.tensor_flops)
        } else {
            (Resource::CudaCores, peaks.fp32_flops)
        };
        let compute = self.flops as f64 / (flops_per_s * share);
        [(Resource::Hbm, hbm), (Resource::SharedMemory, shared), (unit, compute)]
    }

    /// The lower-bound time of the launch on `peaks`, in seconds, and the resource that
    /// sets it: the largest of [`LaunchProfile::resource_times`] (HBM when all are zero).
    /// Summed launches ([`LaunchProfile::accumulate`]) are treated as one launch of the
    /// first one's grid: sum the launches' own bounds for a tighter figure.
    pub fn lower_bound(&self, peaks: &Peaks) -> (f64, Resource) {
        let mut best = (0.0, Resource::Hbm);
        for (resource, t) in self.resource_times(peaks) {
            if t > best.0 {
                best = (t, resource);
            }
        }
        best
    }
}

impl From<&LaunchRecord> for LaunchProfile {
    fn from(record: &LaunchRecord) -> Self {
        LaunchProfile::new(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(counters: ProfileCounters) -> LaunchRecord {
        LaunchRecord {
            kernel: "k",
            grid: (1000, 1, 1),
            block: (256, 1, 1),
            shared_mem_bytes: 0,
            counters,
            input_bytes: 4096,
            output_bytes: 1024,
            flops: 0,
        }
    }

    #[test]
    fn efficiency_is_requested_over_sector_bytes() {
        // 10 requests of 32 lanes × 4 bytes, 32 bytes apart: 32 sectors each.
        let c = ProfileCounters {
            global_load_requests: 10,
            global_load_bytes: 10 * 32 * 4,
            global_load_sectors: 10 * 32,
            global_store_requests: 10,
            global_store_bytes: 10 * 128,
            global_store_sectors: 10 * 4,
            ..Default::default()
        };
        let p = LaunchProfile::new(&record(c));
        assert_eq!(p.global_load_efficiency(), Some(1.0 / 8.0));
        assert_eq!(p.global_store_efficiency(), Some(1.0));
        assert_eq!(p.bytes_moved(), (320 + 40) * 32);
        assert_eq!(p.bytes_requested(), 2 * 1280);
        assert_eq!(p.minimum_bytes(), 5120);
        let empty = LaunchProfile::new(&record(ProfileCounters::default()));
        assert_eq!(empty.global_load_efficiency(), None);
        assert_eq!(empty.shared_conflict_factor(), None);
        assert_eq!(empty.lower_bound(&Peaks::H100), (0.0, Resource::Hbm));
    }

    #[test]
    fn conflict_factor_counts_wide_accesses_as_conflict_free() {
        // 16-byte loads of a full warp: 4 phases of 8 lanes, 4 wavefronts without conflicts.
        let wide = ProfileCounters {
            shared_load_requests: 3,
            shared_load_wavefronts: 12,
            shared_load_bytes: 3 * 512,
            shared_load_ideal_wavefronts: 12,
            ..Default::default()
        };
        let p = LaunchProfile::new(&record(wide));
        assert_eq!(p.shared_load_wavefronts_per_request(), Some(4.0));
        assert_eq!(p.shared_conflict_factor(), Some(1.0));
        assert_eq!(p.shared_bytes_per_wavefront(), Some(128.0));
        // A 32-way conflict of 4-byte stores: 32 wavefronts for 128 bytes.
        let conflicted = ProfileCounters {
            shared_store_requests: 2,
            shared_store_wavefronts: 64,
            shared_store_bytes: 256,
            shared_store_ideal_wavefronts: 2,
            ..Default::default()
        };
        let p = LaunchProfile::new(&record(conflicted));
        assert_eq!(p.shared_store_wavefronts_per_request(), Some(32.0));
        assert_eq!(p.shared_conflict_factor(), Some(32.0));
        assert_eq!(p.shared_store_conflict_factor(), Some(32.0));
        assert_eq!(p.shared_load_conflict_factor(), None);
    }

    #[test]
    fn lower_bound_takes_the_slowest_resource() {
        let peaks = Peaks::H100;
        // HBM: 3.35 MB distinct at 3.35 TB/s = 1 µs.
        let mut r = record(ProfileCounters { global_distinct_bytes: 3_350_000, ..Default::default() });
        let (t, res) = LaunchProfile::new(&r).lower_bound(&peaks);
        assert!((t - 1e-6).abs() < 1e-15, "{t}");
        assert_eq!(res, Resource::Hbm);
        // FLOPs without mma go to the CUDA cores: 66.9 MFLOP = 1 µs; twice that bounds it.
        r.flops = 2 * 66_900_000;
        let (t, res) = LaunchProfile::new(&r).lower_bound(&peaks);
        assert!((t - 2e-6).abs() < 1e-15, "{t}");
        assert_eq!(res, Resource::CudaCores);
        // With mma, the same FLOPs go to the tensor cores (faster): HBM bounds again.
        r.counters.mma = 1;
        assert_eq!(LaunchProfile::new(&r).lower_bound(&peaks).1, Resource::Hbm);
        // Shared memory: 1000 blocks fill all 132 SMs; wavefronts × 128 B at 33.5 TB/s.
        let wavefronts = 10_000_000u64;
        r.counters.shared_load_wavefronts = wavefronts;
        let p = LaunchProfile::new(&r);
        let want = (wavefronts * 128) as f64 / (128.0 * 132.0 * 1.98e9);
        let (t, res) = p.lower_bound(&peaks);
        assert_eq!(res, Resource::SharedMemory);
        assert!((t - want).abs() < 1e-12 * want.max(1.0), "{t} vs {want}");
        // One block occupies one SM: 132 times slower on shared memory.
        r.grid = (1, 1, 1);
        let (t1, _) = LaunchProfile::new(&r).lower_bound(&peaks);
        assert!((t1 / t - 132.0).abs() < 1e-9, "{}", t1 / t);
    }

    #[test]
    fn peaks_match_the_stated_figures() {
        assert!((Peaks::A100.shared_bytes_per_s() - 19.49e12).abs() < 0.01e12);
        assert!((Peaks::H100.shared_bytes_per_s() - 33.45e12).abs() < 0.01e12);
        assert_eq!((Peaks::H200.sms, Peaks::H200.tensor_flops), (Peaks::H100.sms, Peaks::H100.tensor_flops));
        assert_eq!(Peaks::H200.hbm_bytes_per_s, 4.8e12);
    }

    #[test]
    fn accumulate_sums_counts_and_keeps_the_first_grid() {
        let c = ProfileCounters { global_load_requests: 1, mma: 2, barriers: 3, ..Default::default() };
        let mut a = LaunchProfile::new(&record(c));
        let mut r = record(c);
        r.grid = (7, 1, 1);
        a.accumulate(&LaunchProfile::new(&r));
        assert_eq!((a.counters.global_load_requests, a.counters.mma, a.counters.barriers), (2, 4, 6));
        assert_eq!((a.launches, a.input_bytes, a.grid), (2, 8192, (1000, 1, 1)));
    }
}
