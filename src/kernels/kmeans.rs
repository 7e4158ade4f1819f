//! k-means codebooks: [`fit_codebook`] (Lloyd's algorithm on the device, returning a
//! [`Codebook`]) and the typed wrappers of `kernels/kmeans.cu`.
//!
//! ```no_run
//! use tessera::{fit_codebook, Device, KmeansOptions};
//! let device = Device::emulator();
//! let data = device.upload(&vec![0.5f32; 4096 * 8])?;            // 4096 rows of d = 8
//! let options = KmeansOptions { iterations: 20, ..KmeansOptions::new(8, 256) };
//! let codebook = fit_codebook(&device, &data, &options, &mut |p| {
//!     println!("iteration {}/{}: objective {:.4}", p.iteration, p.iterations, p.objective)
//! })?;
//! # Ok::<(), tessera::Error>(())
//! ```
//!
//! One iteration = assignment ([`Codebook::quantize`], the search kernels, with the usage
//! histogram) + update ([`update_centroids`] with [`CentroidKernel::Sorted`]: a stable radix
//! sort of the rows by entry, then f64 member sums in row order). Every step is
//! deterministic: the same seed gives the same codebook bit for bit on a backend, run after
//! run; and because the update sums exactly as `src/reference/kmeans.rs` does, the Cpu
//! backend (the f64 reference) gives the same codebook as the device whenever the
//! assignments agree (well-separated data). The seeding agrees bit for bit whatever the
//! data, given the same points: the reference computes D² in the kernel's order.
//!
//! Initialization: batched k-means++ ([`crate::reference::kmeans::plusplus_rows`]) — the
//! first entry a uniformly drawn data row, then at most 32 rounds, each drawing
//! `⌈(k − 1) / 32⌉` data rows at stratified quantiles of their squared distance to the
//! nearest entry so far (classic k-means++, Arthur & Vassilvitskii 2007, when k ≤ 33) —
//! with the seeded splitmix64 generator of [`crate::reference::kmeans`], run on the device
//! without host round trips (`kmeans_plusplus_*`: two launches per round, at most 64 for
//! any k). The rows are distinct unless the data has fewer than k distinct rows or one row
//! holds more than a stratum of a round's mass (then an entry is a copy, re-seeded by the
//! first update). An entry that no row chose in an assignment becomes a random data row
//! (drawn in increasing entry order, counted in [`KmeansProgress::reseeded`]). For [`Metric::Cosine`] the rows are l2-normalized once,
//! entries are means of unit rows (spherical k-means), and [`Codebook::new`] normalizes
//! them for the search.

use crate::device::{BackendKind, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::checks::RowStatus;
use crate::kernels::codebook::{Codebook, Metric, SearchOptions, SearchPath};
use crate::kernels::constants;
use crate::kernels::launch::LaunchConfig;
use crate::kernels::radix_sort::{exclusive_scan, sort_rows_by_key};
use crate::reference::kmeans as reference;

/// Threads per block of every kernel of kmeans.cu (`KM_THREADS`).
const THREADS: u32 = constants::kmeans::KM_THREADS;
/// Entries (warps) per block of the v1 centroid kernel.
const WARPS: usize = 8;
/// Most rows a fit or an update takes, and most entries (k ≤ n): 2^31, the limit of the
/// search (`codebook::MAX_INDEX`). Row and entry counters in the kernels are u32, stepped
/// by up to 256 (a block) or 32 (a warp); below 2^31 none can wrap.
const MAX_ROWS: usize = crate::kernels::codebook::MAX_INDEX;

declare_kernels! {
    /// C: `kmeans_histogram(const unsigned* indices, unsigned* counts, unsigned* status,
    ///     unsigned n, unsigned k)`
    fn kmeans_histogram(indices: input u32, counts: output u32, status: output u32, n: scalar u32, k: scalar u32);
    /// C: `kmeans_centroids_<T>(const T* data, const unsigned* rows, const unsigned* offsets,
    ///     const unsigned* reseed_rows, T* out, unsigned k, unsigned d)`
    fn kmeans_centroids<T: f32 | f16 | bf16>(data: input T, rows: input u32, offsets: input u32,
        reseed_rows: input u32, out: output T, k: scalar u32, d: scalar u32);
    /// C: `kmeans_centroids_v1_<T>(const T* data, const unsigned* indices,
    ///     const unsigned* reseed_rows, T* out, unsigned n, unsigned k, unsigned d)`
    fn kmeans_centroids_v1<T: f32 | f16 | bf16>(data: input T, indices: input u32, reseed_rows: input u32,
        out: output T, n: scalar u32, k: scalar u32, d: scalar u32);
    /// C: `kmeans_plusplus_distances_<T>(const T* data, float* d2, unsigned long long* block_sums,
    ///     const unsigned* chosen, unsigned begin, unsigned end, unsigned n, unsigned d,
    ///     unsigned rows_per_block)`; `block_sums` holds f64 values in a u64 buffer (the crate
    ///     has no f64 element type).
    fn kmeans_plusplus_distances<T: f32 | f16 | bf16>(data: input T, d2: output f32, block_sums: output u64,
        chosen: input u32, begin: scalar u32, end: scalar u32, n: scalar u32, d: scalar u32,
        rows_per_block: scalar u32);
    /// C: `kmeans_plusplus_pick(const float* d2, const unsigned long long* block_sums,
    ///     const unsigned long long* uniforms, unsigned* chosen, unsigned first_draw,
    ///     unsigned draws, unsigned n, unsigned rows_per_block, unsigned blocks)` — one thread
    ///     per draw of the round.
    fn kmeans_plusplus_pick(d2: input f32, block_sums: input u64, uniforms: input u64, chosen: output u32,
        first_draw: scalar u32, draws: scalar u32, n: scalar u32, rows_per_block: scalar u32, blocks: scalar u32);
}

/// What [`fit_codebook`] fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KmeansOptions {
    /// Dimension `d` of a row (the data is `[n, d]` row-major).
    pub dim: usize,
    /// Number of entries `k`, `1 ≤ k ≤ n`.
    pub k: usize,
    /// Lloyd iterations (assignment + update). 0 is allowed: the codebook is then the
    /// seeded initialization (`k` distinct data rows) and `progress` is never called.
    pub iterations: usize,
    /// Seed of the initialization and of the reseeding of unused entries.
    pub seed: u64,
    /// Search metric; cosine fits spherical k-means (means of the l2-normalized rows).
    pub metric: Metric,
}

impl KmeansOptions {
    /// `k` entries of dimension `dim`, 10 iterations, seed 0, squared L2.
    pub fn new(dim: usize, k: usize) -> Self {
        KmeansOptions { dim, k, iterations: 10, seed: 0, metric: Metric::SquaredL2 }
    }
}

/// Reported by [`fit_codebook`] after each iteration.
#[derive(Clone, Debug, PartialEq)]
pub struct KmeansProgress {
    /// This iteration, 1-based.
    pub iteration: usize,
    /// Iterations in all.
    pub iterations: usize,
    /// Mean squared distance of the rows to their entry in this iteration's assignment (the
    /// search's commitment; for cosine `||ẑ − ê||²`). It never increases from one iteration
    /// to the next, up to float rounding.
    pub objective: f64,
    /// Entries that no row chose in this assignment, re-seeded from random data rows.
    pub reseeded: usize,
}

/// Which centroid kernel [`update_centroids`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CentroidKernel {
    /// `kmeans_centroids_v1_*`: one warp per entry scans the whole index array (O(n·k)).
    Simple,
    /// Radix sort of the rows by entry, then `kmeans_centroids_*`, one thread per (entry,
    /// dimension) (O(n·d)). What [`fit_codebook`] uses.
    Sorted,
}

/// Result of [`update_centroids`].
#[derive(Debug)]
pub struct CentroidUpdate<T: FloatElement> {
    /// `[k, d]` the new entries.
    pub centroids: DeviceBuffer<T>,
    /// `[k]` rows per entry.
    pub counts: Vec<u32>,
}

/// One Lloyd update: entry `e` becomes the mean of the rows `r` of `data` (`[n, dim]`) with
/// `indices[r] == e` — the f64 sum in increasing row order, divided by the count, rounded to
/// f32 then `T` — or, if no row has index `e`, the data row `reseed_rows[e]`. Deterministic,
/// and equal bit for bit to [`crate::reference::kmeans::means`].
///
/// Errors: `dim = 0` or `dim > 2^31`; `data` not a whole number of rows, or without rows, or more than 2^31
/// rows; `indices` not of length n; `k = 0` or `k > 2^31`; `reseed_rows` not of length `k` or naming a row ≥ n; an index ≥ `k`
/// ([`Error::InvalidValue`] naming its row, found by the histogram kernel); buffers of
/// another device.
pub fn update_centroids<T: FloatElement>(
    device: &Device,
    data: &DeviceBuffer<T>,
    dim: usize,
    indices: &DeviceBuffer<u32>,
    k: usize,
    reseed_rows: &[u32],
    kernel: CentroidKernel,
) -> Result<CentroidUpdate<T>> {
    if dim == 0 || dim > MAX_ROWS {
        return Err(Error::invalid("dim", format!("d = {dim}: must be in 1..=2^31")));
    }
    device.check_same("data", data.device())?;
    device.check_same("indices", indices.device())?;
    let n = rows_of(data, dim)?;
    if n == 0 {
        return Err(Error::invalid("data", "has no rows"));
    }
    if indices.len() != n {
        return Err(Error::LengthMismatch { arg: "indices", expected: n, actual: indices.len() });
    }
    if k == 0 || k > MAX_ROWS {
        return Err(Error::invalid("k", format!("{k} entries: must be in 1..=2^31")));
    }
    if reseed_rows.len() != k {
        return Err(Error::LengthMismatch { arg: "reseed_rows", expected: k, actual: reseed_rows.len() });
    }
    if let Some(e) = reseed_rows.iter().position(|&r| r as usize >= n) {
        return Err(Error::invalid("reseed_rows", format!("entry {e} names row {} of {n}", reseed_rows[e])));
    }
    if device.kind() == BackendKind::Cpu {
        let idx = indices.download()?;
        if let Some(row) = idx.iter().position(|&i| i as usize >= k) {
            return Err(Error::InvalidValue { op: "update_centroids", arg: "indices", row, reason: "index ≥ k" });
        }
        let (c, counts) = reference::means(&data.download()?, dim, &idx, k, reseed_rows);
        return Ok(CentroidUpdate { centroids: device.upload(&c)?, counts });
    }
    let mut counts = device.zeros::<u32>(k)?;
    let mut status = RowStatus::new(device)?;
    let cfg = LaunchConfig::for_items(n, THREADS as usize, THREADS, 0)?;
    kmeans_histogram(device, &cfg, indices, &mut counts, status.buffer(), n as u32, k as u32)?;
    status.defer("update_centroids", "indices", "index ≥ k");
    let reseed = device.upload(reseed_rows)?;
    let centroids = match kernel {
        CentroidKernel::Sorted => sorted_update(device, data, dim, indices, &counts, k, &reseed)?,
        CentroidKernel::Simple => {
            let mut out = device.zeros::<T>(k * dim)?;
            let cfg = LaunchConfig::for_items(k, WARPS, THREADS, 0)?;
            kmeans_centroids_v1(device, &cfg, data, indices, &reseed, &mut out, n as u32, k as u32, dim as u32)?;
            out
        }
    };
    Ok(CentroidUpdate { centroids, counts: counts.download()? })
}

/// The sorted update, given valid indices and their histogram.
fn sorted_update<T: FloatElement>(
    device: &Device,
    data: &DeviceBuffer<T>,
    dim: usize,
    indices: &DeviceBuffer<u32>,
    counts: &DeviceBuffer<u32>,
    k: usize,
    reseed: &DeviceBuffer<u32>,
) -> Result<DeviceBuffer<T>> {
    let rows = sort_rows_by_key(device, indices, k)?;
    let offsets = exclusive_scan(device, counts)?;
    let mut out = device.zeros::<T>(k * dim)?;
    let cfg = LaunchConfig::for_items(k * dim, THREADS as usize, THREADS, 0)?;
    kmeans_centroids(device, &cfg, data, &rows, &offsets, reseed, &mut out, k as u32, dim as u32)?;
    Ok(out)
}

/// Rows of a `[n, dim]` buffer, or an error naming `data`.
fn rows_of<T: FloatElement>(data: &DeviceBuffer<T>, dim: usize) -> Result<usize> {
    if data.len() % dim != 0 {
        return Err(Error::invalid(
            "data",
            format!("{} elements is not a whole number of rows of d = {dim}", data.len()),
        ));
    }
    let n = data.len() / dim;
    if n > MAX_ROWS {
        return Err(Error::invalid("data", format!("{n} rows; at most {MAX_ROWS}")));
    }
    Ok(n)
}

/// Fits a `[k, dim]` codebook to the rows of `data` (`[n, dim]` row-major) with Lloyd's
/// k-means, seeded by batched k-means++ ([`crate::reference::kmeans::plusplus_rows`]
/// defines it; at most 64 launches for any k). Every step is deterministic: the same seed
/// gives the same codebook, and the Cpu backend gives the device's codebook whenever the
/// assignments agree (src/kernels/kmeans.rs, the driver, says more). `progress` is called
/// after every iteration.
///
/// Errors: `options.dim = 0` or `> 2^31`; `data` not a whole number of rows, or more than
/// 2^31 rows; `options.k = 0` or larger than the number of rows; a non-finite value in `data` ([`Error::InvalidValue`]
/// naming its first row); `data` on another device.
pub fn fit_codebook<T: FloatElement>(
    device: &Device,
    data: &DeviceBuffer<T>,
    options: &KmeansOptions,
    progress: &mut dyn FnMut(&KmeansProgress),
) -> Result<Codebook<T>> {
    let KmeansOptions { dim, k, iterations, seed, metric } = *options;
    if dim == 0 || dim > MAX_ROWS {
        return Err(Error::invalid("options.dim", format!("d = {dim}: must be in 1..=2^31")));
    }
    device.check_same("data", data.device())?;
    let n = rows_of(data, dim)?;
    if k == 0 {
        return Err(Error::invalid("options.k", "a codebook needs at least one entry"));
    }
    if k > n {
        return Err(Error::invalid(
            "options.k",
            format!("{k} entries but only {n} data rows: k must be at most the number of rows"),
        ));
    }
    let report = |iteration, objective, reseeded| KmeansProgress { iteration, iterations, objective, reseeded };

    if device.kind() == BackendKind::Cpu {
        let host = data.download()?;
        if let Some(i) = host.iter().position(|v| !v.to_f32().is_finite()) {
            return Err(Error::InvalidValue {
                op: "fit_codebook",
                arg: "data",
                row: i / dim,
                reason: "non-finite value",
            });
        }
        let entries =
            reference::fit(&host, dim, k, iterations, seed, metric, &mut |it, obj, re| progress(&report(it, obj, re)));
        return Codebook::new(device, device.upload(&entries)?, dim, metric);
    }

    // The points searched and averaged: the data, or its normalized rows (cosine). The
    // row kernel also finds the first non-finite row.
    // Flags the first non-finite row of `data`; for cosine also returns the unit rows.
    let unit =
        crate::kernels::codebook::row_norms(device, data, n, dim, metric == Metric::Cosine, "fit_codebook", "data")?.0;
    let points = unit.as_ref().unwrap_or(data);

    let mut rng = reference::Rng::new(seed);
    let init = plusplus_rows(device, points, n, dim, k, &mut rng)?.0;
    // The initialization is an update in which no entry has a member.
    let mut entries = device.zeros::<T>(k * dim)?;
    let no_members = device.zeros::<u32>(k + 1)?;
    let cfg = LaunchConfig::for_items(k * dim, THREADS as usize, THREADS, 0)?;
    kmeans_centroids(
        device,
        &cfg,
        points,
        &device.zeros::<u32>(1)?,
        &no_members,
        &init,
        &mut entries,
        k as u32,
        dim as u32,
    )?;
    let mut codebook = Codebook::new(device, entries, dim, metric)?;

    let search = SearchOptions { distances: false, histogram: true, path: SearchPath::Auto, splits: None };
    for iteration in 1..=iterations {
        let assigned = codebook.quantize(device, points, &search)?;
        let counts = assigned.histogram.as_ref().expect("histogram requested");
        let (reseed, reseeded) = reference::reseed_rows(&mut rng, &counts.download()?, n);
        let reseed = device.upload(&reseed)?;
        let entries = sorted_update(device, points, dim, &assigned.indices, counts, k, &reseed)?;
        codebook = Codebook::new(device, entries, dim, metric)?;
        progress(&report(iteration, assigned.commitment()?, reseeded));
    }
    Ok(codebook)
}

/// Kernel launches of the device seeding of `k` entries: two per round of
/// [`reference::PlusPlusPlan`] (`kmeans_plusplus_distances`, `kmeans_plusplus_pick`), at
/// most 64 whatever `k` (k = 65,536: 32 rounds of 2,048 draws, 64 launches).
pub(crate) fn plusplus_launches(k: usize) -> usize {
    2 * reference::PlusPlusPlan::new(k).rounds
}

/// Batched k-means++ seeding on the device: [`reference::plusplus_rows`] exactly (the same
/// draws from `rng`, the same f32 distances, the same f64 sums and picks), with two
/// launches per round, no host synchronization, and the draws uploaded once. Returns the
/// `[k]` chosen rows and the number of launches.
fn plusplus_rows<T: FloatElement>(
    device: &Device,
    points: &DeviceBuffer<T>,
    n: usize,
    dim: usize,
    k: usize,
    rng: &mut reference::Rng,
) -> Result<(DeviceBuffer<u32>, usize)> {
    let mut first = vec![0u32; k];
    first[0] = rng.below(n) as u32;
    let mut chosen = device.upload(&first)?;
    let draws: Vec<u64> = (1..k).map(|_| rng.next_u64()).collect();
    let uniforms = device.upload(&draws)?;
    let plan = reference::PlusPlusPlan::new(k);
    let (blocks, rows_per_block) = reference::plusplus_blocks(n);
    let mut d2 = device.zeros::<f32>(n)?;
    let mut block_sums = device.zeros::<u64>(blocks)?;
    let spread = LaunchConfig::linear(blocks as u32, THREADS, 0);
    let (n32, d32, rpb, g) = (n as u32, dim as u32, rows_per_block as u32, blocks as u32);
    let mut launches = 0;
    let mut fresh = 0..1; // the centres the last round chose (entry 0 before the first)
    for round in 0..plan.rounds {
        let these = plan.round(round);
        kmeans_plusplus_distances(
            device,
            &spread,
            points,
            &mut d2,
            &mut block_sums,
            &chosen,
            fresh.start as u32,
            fresh.end as u32,
            n32,
            d32,
            rpb,
        )?;
        let picks = LaunchConfig::for_items(these.len(), THREADS as usize, THREADS, 0)?;
        let (first_draw, count) = (these.start as u32, these.len() as u32);
        kmeans_plusplus_pick(device, &picks, &d2, &block_sums, &uniforms, &mut chosen, first_draw, count, n32, rpb, g)?;
        launches += 2;
        fresh = 1 + these.start..1 + these.end;
    }
    debug_assert_eq!(launches, plusplus_launches(k));
    Ok((chosen, launches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_launches_do_not_grow_with_k() {
        assert_eq!(plusplus_launches(65_536), 64);
        assert_eq!(plusplus_launches(1), 0);
        assert_eq!(plusplus_launches(20), 38);
        let device = Device::emulator();
        let (n, d, k) = (700, 3, 300);
        let data: Vec<f32> = (0..n * d).map(|i| ((i * 7919) % 1013) as f32 / 1013.0).collect();
        let points = device.upload(&data).unwrap();
        let (rows, launches) = plusplus_rows(&device, &points, n, d, k, &mut reference::Rng::new(11)).unwrap();
        // k − 1 = 299 draws: 30 rounds of 10 (the last of 9), two launches each.
        assert_eq!(launches, 60);
        assert_eq!(launches, plusplus_launches(k));
        assert_eq!(rows.download().unwrap(), reference::plusplus_rows(&mut reference::Rng::new(11), &data, d, k));
    }
}
