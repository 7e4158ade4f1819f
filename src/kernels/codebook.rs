//! Nearest-codebook search (vector quantization): the typed wrappers of
//! `kernels/codebook.cu`.
//!
//! ```no_run
//! use tessera::{Codebook, Device, Metric, SearchOptions};
//! let device = Device::emulator();
//! let entries = device.upload(&vec![0.5f32; 1024 * 8])?;      // K = 1024 entries of D = 8
//! let codebook = Codebook::new(&device, entries, 8, Metric::SquaredL2)?;
//! let z = device.upload(&vec![0.25f32; 256 * 8])?;              // N = 256 latents
//! let out = codebook.quantize(&device, &z, &SearchOptions::default())?;
//! let tokens = out.indices.download()?;
//! # Ok::<(), tessera::Error>(())
//! ```
//!
//! Paths (chosen by shape in [`Codebook::plan`], forced with [`SearchPath`]):
//! - `TensorCore`: f16/bf16 with `d % 16 == 0` and `32 ≤ d ≤ 512` — mma.sync tiles.
//! - `Simt`: everything else (f32 at any d, small or ragged d such as LlamaGen's 8).
//! - Either path splits the codebook across `splits` blocks per 64 latents when there are
//!   too few latents to fill the GPU (small N × huge K); blocks combine through a 64-bit
//!   atomicMin of (distance, index) keys.
//! - `Unfused`: the baseline for benchmarks — the whole distance matrix, then an argmin.

use crate::device::{BackendKind, BufferView, DType, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::checks::{row_count, RowStatus};
use crate::kernels::constants;
use crate::kernels::launch::LaunchConfig;
use crate::reference::codebook as reference;
pub use crate::reference::codebook::Metric;

/// Latents per block of both search paths.
const ROWS_PER_BLOCK: usize = constants::codebook::SEARCH_BM as usize;
/// Codes per tile of both search paths; split ranges are multiples of it.
const CODES_PER_TILE: usize = constants::codebook::SEARCH_BN as usize;
/// Warps (rows) per block of the one-warp-per-row kernels.
const ROWS_WARPS: usize = constants::codebook::ROWS_WARPS as usize;
/// Threads per block of the search kernels (and of the unfused baseline's GEMM).
const SEARCH_THREADS: u32 = constants::codebook::SEARCH_THREADS;

/// Dynamic shared memory of a search kernel (kernels/codebook.cu): the main loop's stages
/// of 64 latents and 64 codes × 32 dims, in `elem`-byte tile elements, plus the resident
/// latents (all of d in 32-dim tiles) when `resident`.
fn search_smem(d: usize, elem: usize, resident: bool) -> u32 {
    use constants::codebook::{SEARCH_BK, SEARCH_BM, SEARCH_BN, SEARCH_STAGES};
    let pipeline = (SEARCH_STAGES * (SEARCH_BM + SEARCH_BN) * SEARCH_BK) as usize * elem;
    let ktiles = d.div_ceil(SEARCH_BK as usize);
    let latents = if resident { SEARCH_BM as usize * ktiles * SEARCH_BK as usize * elem } else { 0 };
    (pipeline + latents) as u32
}

/// Largest d the tensor-core path keeps resident in shared memory.
const MMA_MAX_D: usize = constants::codebook::MMA_MAX_D as usize;
/// Fewest codes a split of the codebook gets (below this, splitting costs more than it gains).
const MIN_CODES_PER_SPLIT: usize = 256;
/// Blocks to aim for when splitting: two waves of an H100's 132 SMs.
const TARGET_BLOCKS: usize = 264;
/// Most entries of a codebook, latents of a search call and dimensions of a row: 2^31. The
/// kernels count codes, rows and dimensions in u32 and step them by a tile (64 codes, 32
/// dimensions); below 2^31 a stepped counter cannot wrap past 2^32 (which would never end
/// the loop). Element offsets (row · d) are 64-bit in the kernels, so k·d and n·d are
/// limited only by memory.
pub(crate) const MAX_INDEX: usize = 1 << 31;

/// The shape limits of a codebook search: `k` entries (named `entries`), `n` latents
/// (named `z`) and `d` dimensions (named `dim`), each at most [`MAX_INDEX`].
pub(crate) fn check_shape(k: usize, n: usize, d: usize) -> Result<()> {
    if k > MAX_INDEX {
        return Err(Error::invalid(
            "entries",
            format!("{k} entries; a codebook holds at most 2^31 (the kernels' u32 code counters)"),
        ));
    }
    if n > MAX_INDEX {
        return Err(Error::invalid("z", format!("{n} latents; at most 2^31 per call")));
    }
    if d > MAX_INDEX {
        return Err(Error::invalid("dim", format!("d = {d}; at most 2^31")));
    }
    Ok(())
}

declare_kernels! {
    /// C: `codebook_rows_<T>(const T* src, T* dst, float* sqnorm, unsigned* status,
    ///     unsigned rows, unsigned d, unsigned normalize)`
    fn codebook_rows<T: f32 | f16 | bf16>(src: input T, dst: output T, sqnorm: output f32,
        status: output u32, rows: scalar u32, d: scalar u32, normalize: scalar u32);
    /// C: `codebook_search_simt_<T>(const T* z, const T* e, const float* e_sqnorm,
    ///     unsigned long long* keys, unsigned n, unsigned k, unsigned d, unsigned codes_per_split)`
    fn codebook_search_simt<T: f32 | f16 | bf16>(z: input T, e: input T, e_sqnorm: input f32,
        keys: output u64, n: scalar u32, k: scalar u32, d: scalar u32, codes_per_split: scalar u32);
    /// C: `codebook_search_mma_<T>(...)`, same arguments as the SIMT search; f16/bf16 only.
    fn codebook_search_mma<T: f16 | bf16>(z: input T, e: input T, e_sqnorm: input f32,
        keys: output u64, n: scalar u32, k: scalar u32, d: scalar u32, codes_per_split: scalar u32);
    /// C: `codebook_finalize_<T>(const T* z, const T* e, const unsigned long long* keys,
    ///     unsigned* indices, T* quantized, float* distances, unsigned* histogram,
    ///     float* block_sums, T* residual, unsigned* status, unsigned n, unsigned k,
    ///     unsigned d, unsigned flags)`; flags: 1 = write residual, 2 = histogram, 4 = distances.
    fn codebook_finalize<T: f32 | f16 | bf16>(z: input T, e: input T, keys: input u64,
        indices: output u32, quantized: output T, distances: output f32, histogram: output u32,
        block_sums: output f32, residual: output T, status: output u32, n: scalar u32,
        k: scalar u32, d: scalar u32, flags: scalar u32);
    /// C: `codebook_distances_<T>(const T* z, const T* e, const float* e_sqnorm, float* out,
    ///     unsigned n, unsigned k, unsigned d)` — unfused baseline.
    fn codebook_distances<T: f32 | f16 | bf16>(z: input T, e: input T, e_sqnorm: input f32,
        out: output f32, n: scalar u32, k: scalar u32, d: scalar u32);
    /// C: `codebook_init_keys(unsigned long long* keys, unsigned n)`
    fn codebook_init_keys(keys: output u64, n: scalar u32);
    /// C: `codebook_argmin(const float* dist, unsigned long long* keys, unsigned n, unsigned k)`
    fn codebook_argmin(dist: input f32, keys: output u64, n: scalar u32, k: scalar u32);
}

/// Which search kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SearchPath {
    /// Pick by shape and dtype (see the module documentation).
    Auto,
    /// CUDA cores, any dtype and d.
    Simt,
    /// Tensor cores: f16/bf16, `d % 16 == 0`, `32 ≤ d ≤ 512`.
    TensorCore,
    /// The unfused baseline: distance matrix, then argmin (benchmarks).
    Unfused,
}

/// What [`Codebook::quantize`] computes besides indices and quantized rows.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Return each latent's squared distance to its entry.
    pub distances: bool,
    /// Return the usage histogram and its perplexity.
    pub histogram: bool,
    /// Force a kernel path (default: `Auto`).
    pub path: SearchPath,
    /// Force the number of codebook splits per 64 latents (default: chosen by shape).
    pub splits: Option<usize>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions { distances: true, histogram: true, path: SearchPath::Auto, splits: None }
    }
}

/// The plan [`Codebook::quantize`] follows for a given number of latents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchPlan {
    /// The kernel path.
    pub path: SearchPath,
    /// Blocks that share the codebook of one group of 64 latents (1 = no split).
    pub splits: usize,
    /// Codes each split scans (a multiple of 64).
    pub codes_per_split: usize,
}

/// Outputs of [`Codebook::quantize`] for `n` latents.
#[derive(Debug)]
pub struct VqOutput<T: FloatElement> {
    /// `[n]` index of the nearest entry (ties to the lowest index).
    pub indices: DeviceBuffer<u32>,
    /// `[n, d]` the chosen entries (for cosine: the l2-normalized entries).
    pub quantized: DeviceBuffer<T>,
    /// `[n]` squared distance `||z − e||²` (cosine: `||ẑ − ê||²`), when asked for.
    pub distances: Option<DeviceBuffer<f32>>,
    /// `[k]` how many latents chose each entry, when asked for.
    pub histogram: Option<DeviceBuffer<u32>>,
    /// What the commitment is computed from (see [`VqOutput::commitment`]).
    commitment: Commitment,
}

/// The commitment term of a search: known already (Cpu), or the per-block partial sums of
/// the distances that the finalize kernel wrote, read back only when asked for.
#[derive(Debug)]
pub(crate) enum Commitment {
    Known(f64),
    BlockSums { sums: DeviceBuffer<f32>, n: usize },
}

impl Commitment {
    /// The value; reads block sums back (synchronizes) when they are on the device.
    pub(crate) fn value(&self) -> Result<f64> {
        match self {
            Commitment::Known(c) => Ok(*c),
            Commitment::BlockSums { sums, n } => Ok(mean_in_order(&sums.download()?, *n)),
        }
    }
}

impl<T: FloatElement> VqOutput<T> {
    /// The commitment's source, for an op that reports it later (residual VQ).
    pub(crate) fn into_parts(self) -> (DeviceBuffer<u32>, DeviceBuffer<T>, Commitment) {
        (self.indices, self.quantized, self.commitment)
    }

    /// Mean squared distance of the latents to their entries (the commitment term),
    /// summed in a fixed order (the same value on every run): 0 for n = 0. On Cuda and
    /// Emulator this reads the kernel's per-block sums back, so it synchronizes (and
    /// reports pending invalid values, see [`Device::synchronize`]); the search itself does
    /// not.
    pub fn commitment(&self) -> Result<f64> {
        self.commitment.value()
    }

    /// `exp(entropy)` of the usage distribution, when the histogram was asked for; reads
    /// the histogram back (synchronizes).
    pub fn perplexity(&self) -> Result<Option<f64>> {
        match &self.histogram {
            Some(h) => Ok(Some(reference::perplexity(&h.download()?))),
            None => Ok(None),
        }
    }
}

/// A codebook `[k, d]` prepared for search: `||e_k||²` computed once (and, for cosine,
/// the l2-normalized rows), finite values checked.
pub struct Codebook<T: FloatElement> {
    entries: DeviceBuffer<T>,
    normalized: Option<DeviceBuffer<T>>,
    sqnorm: DeviceBuffer<f32>,
    k: usize,
    d: usize,
    metric: Metric,
}

impl<T: FloatElement> std::fmt::Debug for Codebook<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Codebook<{:?}>[{} × {}, {:?}]", T::DTYPE, self.k, self.d, self.metric)
    }
}

impl<T: FloatElement> Codebook<T> {
    /// Prepares `entries` (`[k, dim]` row-major). Errors: `dim = 0`; a length that is not a
    /// multiple of `dim`; `k = 0`; `k > 2^31` or `dim > 2^31` (the kernels count codes and
    /// dimensions in u32 and step them by tiles: the limit keeps every loop finite); a
    /// non-finite entry ([`Error::InvalidValue`] naming its row). A search takes at most
    /// 2^31 latents per call.
    pub fn new(device: &Device, entries: DeviceBuffer<T>, dim: usize, metric: Metric) -> Result<Self> {
        if dim == 0 {
            return Err(Error::invalid("dim", "must be at least 1"));
        }
        check_shape(0, 0, dim)?;
        device.check_same("entries", entries.device())?;
        if entries.len() % dim != 0 {
            return Err(Error::invalid(
                "entries",
                format!("{} elements is not a whole number of rows of d = {dim}", entries.len()),
            ));
        }
        let k = entries.len() / dim;
        if k == 0 {
            return Err(Error::invalid("entries", "a codebook needs at least one entry"));
        }
        check_shape(k, 0, dim)?;
        let (normalized, sqnorm) =
            row_norms(device, entries.as_view(), k, dim, metric == Metric::Cosine, "Codebook::new", "entries")?;
        Ok(Codebook { entries, normalized, sqnorm, k, d: dim, metric })
    }

    /// Number of entries `k`.
    pub fn len(&self) -> usize {
        self.k
    }

    /// Always false: a codebook has at least one entry.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Dimension `d` of an entry.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// The search metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The entries as given.
    pub fn entries(&self) -> &DeviceBuffer<T> {
        &self.entries
    }

    /// The rows the search compares against: the entries, or for cosine the normalized ones.
    pub fn searched_entries(&self) -> &DeviceBuffer<T> {
        self.normalized.as_ref().unwrap_or(&self.entries)
    }

    /// The path, splits and split size a search of `n` latents uses with `options`.
    pub fn plan(&self, n: usize, options: &SearchOptions) -> Result<SearchPlan> {
        let tc_ok =
            matches!(T::DTYPE, DType::F16 | DType::BF16) && self.d % 16 == 0 && (32..=MMA_MAX_D).contains(&self.d);
        let path = match options.path {
            SearchPath::Auto if tc_ok => SearchPath::TensorCore,
            SearchPath::Auto => SearchPath::Simt,
            SearchPath::TensorCore if !tc_ok => {
                return Err(Error::invalid(
                    "options.path",
                    format!(
                    "the tensor-core path needs f16/bf16 and d % 16 == 0 with 32 ≤ d ≤ {MMA_MAX_D} (have {:?}, d = {})",
                    T::DTYPE,
                    self.d
                ),
                ))
            }
            p => p,
        };
        let row_blocks = n.div_ceil(ROWS_PER_BLOCK).max(1);
        let max_splits = self.k.div_ceil(CODES_PER_TILE);
        let splits = match options.splits {
            Some(0) => return Err(Error::invalid("options.splits", "must be at least 1")),
            Some(s) => s.min(max_splits),
            None if path == SearchPath::Unfused => 1,
            None => TARGET_BLOCKS.div_ceil(row_blocks).min(self.k.div_ceil(MIN_CODES_PER_SPLIT)).max(1),
        };
        let codes_per_split = self.k.div_ceil(splits).div_ceil(CODES_PER_TILE) * CODES_PER_TILE;
        let splits = self.k.div_ceil(codes_per_split);
        if splits > 65535 {
            return Err(Error::invalid("options.splits", format!("{splits} splits exceed the grid's y limit")));
        }
        Ok(SearchPlan { path, splits, codes_per_split })
    }

    /// Finds the nearest entry of every latent of `z` (`[n, d]`, row-major; a buffer or a
    /// view). A non-finite latent is [`Error::InvalidValue`] naming the first such row,
    /// reported at the next synchronizing call on Cuda and Emulator: the search never waits
    /// for the device ([`VqOutput::commitment`] and [`VqOutput::perplexity`] do). The
    /// tensor-core path stages `z` with 16-byte `cp.async`: a view of `z` that is not
    /// 16-byte aligned takes the CUDA-core path under `SearchPath::Auto` and is
    /// [`Error::InvalidArgument`] naming `z` under `SearchPath::TensorCore`.
    pub fn quantize<'a>(
        &self,
        device: &Device,
        z: impl Into<BufferView<'a, T>>,
        options: &SearchOptions,
    ) -> Result<VqOutput<T>> {
        self.search(device, z.into(), options, false).map(|(out, _)| out)
    }

    /// Like [`Codebook::quantize`], and also returns the residual `z − e[index]` (`[n, d]`),
    /// computed in the same pass (residual VQ keeps it on the device for the next stage).
    pub fn quantize_residual<'a>(
        &self,
        device: &Device,
        z: impl Into<BufferView<'a, T>>,
        options: &SearchOptions,
    ) -> Result<(VqOutput<T>, DeviceBuffer<T>)> {
        let z = z.into();
        if self.metric != Metric::SquaredL2 {
            return Err(Error::invalid("metric", "residual quantization is defined for the squared L2 metric"));
        }
        self.search(device, z, options, true).map(|(out, r)| (out, r.expect("residual requested")))
    }

    fn search(
        &self,
        device: &Device,
        z: BufferView<'_, T>,
        options: &SearchOptions,
        want_residual: bool,
    ) -> Result<(VqOutput<T>, Option<DeviceBuffer<T>>)> {
        device.check_same("z", z.device())?;
        device.check_same("codebook", self.entries.device())?;
        if z.len() % self.d != 0 {
            return Err(Error::invalid(
                "z",
                format!("{} elements is not a whole number of rows of d = {}", z.len(), self.d),
            ));
        }
        let n = z.len() / self.d;
        check_shape(self.k, n, self.d)?;
        let n32 = row_count(n, "z")?;
        let mut plan = self.plan(n, options)?;
        if device.kind() == BackendKind::Cpu {
            return self.search_cpu(device, z, options, want_residual);
        }

        // Cosine: the latents are searched normalized, like the entries.
        let z_unit = match self.metric {
            Metric::Cosine => row_norms(device, z, n, self.d, true, "Codebook::quantize", "z")?.0,
            Metric::SquaredL2 => None,
        };
        let zs = match &z_unit {
            Some(unit) => unit.as_view(),
            None => z,
        };
        if plan.path == SearchPath::TensorCore && !zs.is_aligned(16) {
            if options.path == SearchPath::Auto {
                plan.path = SearchPath::Simt;
            } else {
                return Err(Error::invalid("z", "the tensor-core path needs a 16-byte aligned view of z (cp.async)"));
            }
        }
        let es = self.searched_entries();
        let (k32, d32) = (self.k as u32, self.d as u32);

        let mut keys = device.zeros::<u64>(n)?;
        if n > 0 {
            codebook_init_keys(device, &LaunchConfig::for_items(n, 256, 256, 0)?, &mut keys, n32)?;
            let grid_x =
                u32::try_from(n.div_ceil(ROWS_PER_BLOCK)).map_err(|_| Error::invalid("z", "too many latents"))?;
            let cps = plan.codes_per_split as u32;
            // The search's arithmetic, for the emulator's profile: one multiply-add per
            // latent, entry and dimension (the distance's cross term).
            let search_flops = 2 * (n as u64) * (self.k as u64) * (self.d as u64);
            crate::device::emulator::hint_flops(search_flops);
            match plan.path {
                SearchPath::Simt | SearchPath::Auto => {
                    let resident = self.d <= constants::codebook::SIMT_RESIDENT_MAX_D as usize;
                    let cfg = LaunchConfig {
                        grid: (grid_x, plan.splits as u32, 1),
                        block: (SEARCH_THREADS, 1, 1),
                        shared_mem_bytes: search_smem(self.d, 4, resident),
                    };
                    codebook_search_simt(device, &cfg, zs, es, &self.sqnorm, &mut keys, n32, k32, d32, cps)?;
                }
                SearchPath::TensorCore => {
                    let cfg = LaunchConfig {
                        grid: (grid_x, plan.splits as u32, 1),
                        block: (SEARCH_THREADS, 1, 1),
                        shared_mem_bytes: search_smem(self.d, 2, true),
                    };
                    codebook_search_mma(device, &cfg, zs, es, &self.sqnorm, &mut keys, n32, k32, d32, cps)?;
                }
                SearchPath::Unfused => {
                    let len = n.checked_mul(self.k).ok_or_else(|| Error::invalid("z", "distance matrix too large"))?;
                    let mut dist = device.zeros::<f32>(len)?;
                    let grid_y = u32::try_from(self.k.div_ceil(CODES_PER_TILE))
                        .ok()
                        .filter(|&y| y <= 65535)
                        .ok_or_else(|| Error::invalid("entries", "too many entries for the unfused baseline's grid"))?;
                    let cfg = LaunchConfig {
                        grid: (grid_x, grid_y, 1),
                        block: (SEARCH_THREADS, 1, 1),
                        shared_mem_bytes: search_smem(self.d, 4, false),
                    };
                    codebook_distances(device, &cfg, zs, es, &self.sqnorm, &mut dist, n32, k32, d32)?;
                    let cfg = LaunchConfig::for_items(n, ROWS_WARPS, 256, 0)?;
                    codebook_argmin(device, &cfg, &dist, &mut keys, n32, k32)?;
                }
            }
        }

        // Outputs the kernel writes in full are not zeroed; those nobody asked for are
        // empty and not written (flags). The histogram is accumulated, so it starts at 0.
        let mut indices = DeviceBuffer::<u32>::uninit(device, n)?;
        let mut quantized = DeviceBuffer::<T>::uninit(device, n * self.d)?;
        let mut distances = DeviceBuffer::<f32>::uninit(device, if options.distances { n } else { 0 })?;
        let mut histogram = device.zeros::<u32>(if options.histogram { self.k } else { 0 })?;
        let blocks = n.div_ceil(ROWS_WARPS);
        let mut block_sums = DeviceBuffer::<f32>::uninit(device, blocks)?;
        let mut residual = DeviceBuffer::<T>::uninit(device, if want_residual { n * self.d } else { 0 })?;
        let mut status = RowStatus::new(device)?;
        let flags =
            u32::from(want_residual) | (u32::from(options.histogram) << 1) | (u32::from(options.distances) << 2);
        let cfg = LaunchConfig::for_items(n, ROWS_WARPS, 256, 0)?;
        codebook_finalize(
            device,
            &cfg,
            zs,
            es,
            &keys,
            &mut indices,
            &mut quantized,
            &mut distances,
            &mut histogram,
            &mut block_sums,
            &mut residual,
            status.buffer(),
            n32,
            k32,
            d32,
            flags,
        )?;
        status.defer("Codebook::quantize", "z", "non-finite latent");
        // For cosine, quantized rows are the normalized entries (what the search compared).
        let out = VqOutput {
            indices,
            quantized,
            distances: options.distances.then_some(distances),
            histogram: options.histogram.then_some(histogram),
            commitment: Commitment::BlockSums { sums: block_sums, n },
        };
        Ok((out, want_residual.then_some(residual)))
    }

    /// The Cpu backend: the f64 reference, rounded to the output types.
    fn search_cpu(
        &self,
        device: &Device,
        z: BufferView<'_, T>,
        options: &SearchOptions,
        want_residual: bool,
    ) -> Result<(VqOutput<T>, Option<DeviceBuffer<T>>)> {
        let zh = z.download()?;
        if let Some(row) = zh.iter().position(|v| !v.to_f32().is_finite()) {
            return Err(Error::InvalidValue {
                op: "Codebook::quantize",
                arg: "z",
                row: row / self.d,
                reason: "non-finite latent",
            });
        }
        let eh = self.entries.download()?;
        let found = reference::search(&zh, &eh, self.d, self.metric);
        let searched = self.searched_entries().download()?;
        let d = self.d;
        let mut quantized = Vec::with_capacity(zh.len());
        let mut residual = Vec::new();
        for (row, &idx) in found.indices.iter().enumerate() {
            let e = &searched[idx as usize * d..(idx as usize + 1) * d];
            quantized.extend_from_slice(e);
            if want_residual {
                residual.extend(
                    zh[row * d..(row + 1) * d].iter().zip(e).map(|(a, b)| T::from_f32(a.to_f32() - b.to_f32())),
                );
            }
        }
        let n = found.indices.len();
        let hist = reference::histogram(&found.indices, self.k);
        let commitment = if n == 0 { 0.0 } else { found.distances.iter().sum::<f64>() / n as f64 };
        let dists: Vec<f32> = found.distances.iter().map(|&x| x as f32).collect();
        let out = VqOutput {
            indices: device.upload(&found.indices)?,
            quantized: device.upload(&quantized)?,
            distances: if options.distances { Some(device.upload(&dists)?) } else { None },
            histogram: if options.histogram { Some(device.upload(&hist)?) } else { None },
            commitment: Commitment::Known(commitment),
        };
        let residual = if want_residual { Some(device.upload(&residual)?) } else { None };
        Ok((out, residual))
    }
}

/// Squared norms of `rows` rows (and the normalized rows when `normalize`), flagging the
/// first non-finite row as an [`Error::InvalidValue`] of `arg`.
pub(crate) fn row_norms<'a, T: FloatElement>(
    device: &Device,
    src: impl Into<BufferView<'a, T>>,
    rows: usize,
    d: usize,
    normalize: bool,
    op: &'static str,
    arg: &'static str,
) -> Result<(Option<DeviceBuffer<T>>, DeviceBuffer<f32>)> {
    let src = src.into();
    if device.kind() == BackendKind::Cpu {
        let host = src.download()?;
        if let Some(i) = host.iter().position(|v| !v.to_f32().is_finite()) {
            return Err(Error::InvalidValue { op, arg, row: i / d, reason: "non-finite value" });
        }
        let mut sq = Vec::with_capacity(rows);
        let mut unit = Vec::new();
        for r in host.chunks(d) {
            let v: Vec<f64> = r.iter().map(|x| x.to_f32() as f64).collect();
            if normalize {
                let rounded: Vec<T> = reference::normalized(&v).iter().map(|&x| T::from_f32(x as f32)).collect();
                sq.push(rounded.iter().map(|x| (x.to_f32() as f64).powi(2)).sum::<f64>() as f32);
                unit.extend(rounded);
            } else {
                sq.push(v.iter().map(|x| x * x).sum::<f64>() as f32);
            }
        }
        let unit = if normalize { Some(device.upload(&unit)?) } else { None };
        return Ok((unit, device.upload(&sq)?));
    }
    let mut sqnorm = device.zeros::<f32>(rows)?;
    let mut dst = device.zeros::<T>(if normalize { rows * d } else { 0 })?;
    let mut status = RowStatus::new(device)?;
    let cfg = LaunchConfig::for_items(rows, ROWS_WARPS, 256, 0)?;
    let (rows32, d32) = (row_count(rows, arg)?, d as u32);
    codebook_rows(device, &cfg, src, &mut dst, &mut sqnorm, status.buffer(), rows32, d32, u32::from(normalize))?;
    status.defer(op, arg, "non-finite value");
    Ok((normalize.then_some(dst), sqnorm))
}

/// Σ block sums in block order, in f64, divided by n (0 for n = 0).
fn mean_in_order(block_sums: &[f32], n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        block_sums.iter().map(|&s| s as f64).sum::<f64>() / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_past_the_u32_loop_limit_are_typed_errors() {
        // 2^31 entries cannot be allocated in a test; the check is what Codebook::new and
        // every search call run first.
        assert!(check_shape(MAX_INDEX, MAX_INDEX, MAX_INDEX).is_ok());
        assert!(check_shape(1, 0, 1).is_ok());
        let arg = |r: Result<()>| match r {
            Err(Error::InvalidArgument { arg, .. }) => arg,
            other => panic!("{other:?}"),
        };
        assert_eq!(arg(check_shape(MAX_INDEX + 1, 1, 8)), "entries");
        assert_eq!(arg(check_shape(u32::MAX as usize, 1, 8)), "entries");
        assert_eq!(arg(check_shape(1 << 40, 1, 8)), "entries");
        assert_eq!(arg(check_shape(16, MAX_INDEX + 1, 8)), "z");
        assert_eq!(arg(check_shape(16, 1, MAX_INDEX + 1)), "dim");
        // The dimension is checked before the entries' length: a shape-only path.
        let device = Device::emulator();
        let entries = device.upload(&[0.5f32; 10]).unwrap();
        assert_eq!(arg(Codebook::new(&device, entries, MAX_INDEX + 1, Metric::SquaredL2).map(|_| ())), "dim");
    }
}
