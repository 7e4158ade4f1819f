//! FSQ (finite scalar quantization): the typed wrappers of `kernels/fsq.cu`.
//!
//! The kernels do not evaluate FSQ's `round(tanh(z + shift)·half_l − offset)`: the map
//! from a latent to its code is monotone, so [`Fsq::new`] computes, per dimension, the
//! smallest f32 latent of every code above the lowest (bisection on the reference
//! formula, `fsq_thresholds.rs`), and the kernels count how many of those thresholds a
//! latent reaches. Codes are then bit-identical to the reference on every device and
//! compiler (no FMA contraction, math library or FP64 involved), and the kernels are
//! memory-bound whatever the GPU's FP64 rate.
//!
//! ```no_run
//! use tessera::{Device, Fsq};
//! let device = Device::best();
//! let fsq = Fsq::new(&[8, 5, 5, 5])?;                    // d = 4, 1000 tokens
//! let latents = device.upload(&vec![0.3f32; 4 * 1024])?; // [n = 1024, d = 4], row-major
//! let out = fsq.quantize(&device, &latents)?;
//! let tokens: Vec<u32> = out.indices.download()?;
//! # Ok::<(), tessera::Error>(())
//! ```

use crate::device::{BackendKind, BufferView, BufferViewMut, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::checks::{check_len, host, host_mut, row_count, RowStatus};
use crate::kernels::constants;
use crate::kernels::fsq_thresholds::DimThresholds;
use crate::kernels::launch::LaunchConfig;
use crate::reference;

const NAN_REASON: &str = "NaN has no FSQ code";
const INDEX_REASON: &str = "index is not below the codebook size (product of levels)";

/// Largest number of dimensions (levels) an [`Fsq`] supports.
pub const FSQ_MAX_DIM: usize = constants::fsq::FSQ_MAX_DIM as usize;
/// Threads per block of the FSQ kernels, and rows per block tile (`FSQ_THREADS` in fsq.cu).
const FSQ_THREADS: u32 = constants::fsq::FSQ_THREADS;

/// Divisor magic numbers for `n / d` = `(umulhi(n, mul) + n) >> shift` (see fsq.cu).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FastDiv {
    mul: u32,
    shift: u32,
}

impl FastDiv {
    fn new(d: u32) -> Self {
        assert!(d >= 1);
        let shift = 32 - (d - 1).leading_zeros(); // ceil(log2 d); 0 for d = 1
        let mul = (((1u64 << 32) * ((1u64 << shift) - d as u64)) / d as u64 + 1) as u32;
        FastDiv { mul, shift }
    }
}

/// Most FSQ thresholds a quantizer may need, `Σ_j (L_j − 1)` (`FSQ_MAX_THRESHOLDS` in
/// fsq.cu): they travel in the kernel parameter block, which stays under 4 KiB.
pub const FSQ_MAX_THRESHOLDS: usize = constants::fsq::FSQ_MAX_THRESHOLDS as usize;

/// Kernel parameters, field for field `FsqParams` of kernels/fsq.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct FsqParams {
    dim: u32,
    codebook_size: u32,
    levels: [u32; FSQ_MAX_DIM],
    half_width: [i32; FSQ_MAX_DIM],
    inv_half_width: [f32; FSQ_MAX_DIM],
    basis: [u32; FSQ_MAX_DIM],
    level_div: [FastDiv; FSQ_MAX_DIM],
    /// The code of −∞ in dimension j.
    lowest_code: [i32; FSQ_MAX_DIM],
    /// Dimension j's thresholds are `thresholds[threshold_begin[j] ..][.. threshold_count[j]]`.
    threshold_begin: [u32; FSQ_MAX_DIM],
    threshold_count: [u32; FSQ_MAX_DIM],
    /// The largest power of two ≤ `threshold_count[j]` (0 when there are none): the
    /// first step of the kernel's binary search.
    search_step: [u32; FSQ_MAX_DIM],
    /// Every dimension's thresholds, ascending within a dimension (see fsq_thresholds.rs).
    thresholds: [f32; FSQ_MAX_THRESHOLDS],
}
const _: () = assert!(
    std::mem::size_of::<FsqParams>() == 8 + 10 * 4 * FSQ_MAX_DIM + 4 * FSQ_MAX_THRESHOLDS
        && std::mem::size_of::<FsqParams>() + 64 <= 4096
);

impl Default for FsqParams {
    fn default() -> Self {
        FsqParams {
            dim: 0,
            codebook_size: 0,
            levels: [0; FSQ_MAX_DIM],
            half_width: [0; FSQ_MAX_DIM],
            inv_half_width: [0.0; FSQ_MAX_DIM],
            basis: [0; FSQ_MAX_DIM],
            level_div: [FastDiv::default(); FSQ_MAX_DIM],
            lowest_code: [0; FSQ_MAX_DIM],
            threshold_begin: [0; FSQ_MAX_DIM],
            threshold_count: [0; FSQ_MAX_DIM],
            search_step: [0; FSQ_MAX_DIM],
            // Unused slots are never read; +inf would not be counted if they were.
            thresholds: [f32::INFINITY; FSQ_MAX_THRESHOLDS],
        }
    }
}
// SAFETY: repr(C) plain data, same layout as the C struct (size asserted on both sides).
unsafe impl cudarc::driver::DeviceRepr for FsqParams {}

declare_kernels! {
    /// C: `fsq_quantize_v1_<T>(const T* z, int* codes, T* values, unsigned* indices,
    ///     unsigned* status, unsigned n, FsqParams p)` — one thread per row.
    fn fsq_quantize_v1<T: f32 | f16 | bf16>(z: input T, codes: output i32, values: output T,
        indices: output u32, status: output u32, n: scalar u32, p: scalar FsqParams);
    /// C: `fsq_quantize_<T>(const T* z, int* codes, T* values, unsigned* indices,
    ///     unsigned* status, unsigned n, FsqParams p)` — shared-memory row tiles.
    fn fsq_quantize<T: f32 | f16 | bf16>(z: input T, codes: output i32, values: output T,
        indices: output u32, status: output u32, n: scalar u32, p: scalar FsqParams);
    /// C: `fsq_dequantize_<T>(const unsigned* indices, int* codes, T* values,
    ///     unsigned* status, unsigned n, FsqParams p)`
    fn fsq_dequantize<T: f32 | f16 | bf16>(indices: input u32, codes: output i32, values: output T,
        status: output u32, n: scalar u32, p: scalar FsqParams);
}

/// Which quantize kernel to run (for tests and benchmarks, see [`Fsq::using`]; the default is `Tiled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsqKernel {
    /// `fsq_quantize_v1_*`: one thread per row, direct global accesses.
    Simple,
    /// `fsq_quantize_*`: row tiles staged through shared memory, 16-byte accesses.
    Tiled,
}

/// A finite scalar quantizer with levels `L_0..L_{d-1}`: a latent `[d]` becomes one
/// token in `0..Π L_j`. Token-exact with vector-quantize-pytorch's `FSQ`.
#[derive(Clone, Debug)]
pub struct Fsq {
    levels: Vec<u32>,
    params: FsqParams,
    kernel: FsqKernel,
}

/// The outputs of [`Fsq::quantize`] for `n` latents of dimension `d`.
#[derive(Debug)]
pub struct FsqQuantized<T: FloatElement> {
    /// `[n, d]` integer codes, `code_j ∈ [−(L_j div 2), L_j − 1 − L_j div 2]`.
    pub codes: DeviceBuffer<i32>,
    /// `[n, d]` normalized values `code_j / (L_j div 2)`, in the latents' dtype.
    pub values: DeviceBuffer<T>,
    /// `[n]` token indices `Σ_j (code_j + L_j div 2)·basis_j`, first dimension fastest.
    pub indices: DeviceBuffer<u32>,
}

/// The outputs of [`Fsq::dequantize`].
#[derive(Debug)]
pub struct FsqDequantized<T: FloatElement> {
    /// `[n, d]` integer codes.
    pub codes: DeviceBuffer<i32>,
    /// `[n, d]` normalized values.
    pub values: DeviceBuffer<T>,
}

impl Fsq {
    /// Validates the levels: 1 to 16 of them, each ≥ 2, product < 2^31, and
    /// `Σ_j (L_j − 1) ≤` [`FSQ_MAX_THRESHOLDS`] (= 512: e.g. one level up to 513, or
    /// `[255, 31, 31, 31]`), since the kernels find a code by counting the thresholds it
    /// passes and every threshold travels in the kernel's parameter block. Any of these
    /// violated is [`Error::InvalidArgument`] naming `levels`.
    ///
    /// Computes the thresholds here, once: for each dimension and each code above the
    /// lowest, the smallest f32 latent reaching that code under the reference formula
    /// (`reference::fsq::quantize_value`), by bisection (32 evaluations per threshold).
    pub fn new(levels: &[u32]) -> Result<Self> {
        if levels.is_empty() || levels.len() > FSQ_MAX_DIM {
            return Err(Error::invalid("levels", format!("{} levels given, need 1 to {FSQ_MAX_DIM}", levels.len())));
        }
        if let Some((j, &l)) = levels.iter().enumerate().find(|(_, &l)| l < 2) {
            return Err(Error::invalid("levels", format!("level {j} is {l}, every level must be at least 2")));
        }
        let size: u64 = levels.iter().map(|&l| l as u64).fold(1, |a, l| a.saturating_mul(l));
        if size >= 1 << 31 {
            return Err(Error::invalid("levels", format!("product of levels {size} must be below 2^31")));
        }
        let needed: u64 = levels.iter().map(|&l| l as u64 - 1).sum();
        if needed > FSQ_MAX_THRESHOLDS as u64 {
            return Err(Error::invalid(
                "levels",
                format!(
                    "the levels need Σ (L − 1) = {needed} thresholds, at most {FSQ_MAX_THRESHOLDS} are supported \
                     (e.g. one level up to {})",
                    FSQ_MAX_THRESHOLDS + 1
                ),
            ));
        }
        let mut p = FsqParams { dim: levels.len() as u32, codebook_size: size as u32, ..Default::default() };
        let mut used = 0usize;
        for (j, (&l, b)) in levels.iter().zip(reference::fsq::basis(levels)).enumerate() {
            let c = reference::fsq::dim_constants(l);
            p.levels[j] = l;
            p.half_width[j] = c.half_width;
            p.inv_half_width[j] = 1.0 / c.half_width as f32;
            p.basis[j] = b;
            p.level_div[j] = FastDiv::new(l);
            let t = DimThresholds::new(&c);
            // Within the limit above, a dimension's codes are exactly
            // -(L div 2) ..= L - 1 - (L div 2) (fsq_thresholds.rs tests every L ≤ 513).
            assert!(
                t.lowest == -c.half_width && t.thresholds.len() == l as usize - 1,
                "FSQ level {l}: codes {}..={} differ from the nominal range",
                t.lowest,
                t.lowest + t.thresholds.len() as i32
            );
            let count = t.thresholds.len();
            p.lowest_code[j] = t.lowest;
            p.threshold_begin[j] = used as u32;
            p.threshold_count[j] = count as u32;
            p.search_step[j] = if count == 0 { 0 } else { 1 << count.ilog2() };
            p.thresholds[used..used + count].copy_from_slice(&t.thresholds);
            used += count;
        }
        Ok(Fsq { levels: levels.to_vec(), params: p, kernel: FsqKernel::Tiled })
    }

    /// This quantizer running `kernel` (for tests and benchmarks; the default is
    /// [`FsqKernel::Tiled`]). The Cpu backend ignores it.
    pub fn using(&self, kernel: FsqKernel) -> Fsq {
        Fsq { kernel, ..self.clone() }
    }

    /// The quantize kernel variant this quantizer runs.
    pub fn kernel(&self) -> FsqKernel {
        self.kernel
    }

    /// The levels `L_j`.
    pub fn levels(&self) -> &[u32] {
        &self.levels
    }

    /// `d`, the number of dimensions of a latent.
    pub fn dim(&self) -> usize {
        self.levels.len()
    }

    /// Number of distinct tokens, `Π L_j`.
    pub fn codebook_size(&self) -> u32 {
        self.params.codebook_size
    }

    /// Bits of information per token, `log2 Π L_j`.
    pub fn bits_per_token(&self) -> f64 {
        (self.codebook_size() as f64).log2()
    }

    /// Quantizes latents `[n, d]` (row-major, `latents.len() = n·d`; a buffer or a view)
    /// into new buffers. A NaN latent is [`Error::InvalidValue`] naming its row, reported
    /// at the next synchronizing call on Cuda and Emulator (±Inf saturate, as tanh does).
    pub fn quantize<'a, T: FloatElement>(
        &self,
        device: &Device,
        latents: impl Into<BufferView<'a, T>>,
    ) -> Result<FsqQuantized<T>> {
        let latents = latents.into();
        let n = self.rows(latents.len(), "latents")?;
        let mut out = FsqQuantized {
            codes: DeviceBuffer::uninit(device, latents.len())?,
            values: DeviceBuffer::uninit(device, latents.len())?,
            indices: DeviceBuffer::uninit(device, n)?,
        };
        self.quantize_into(device, latents, &mut out.codes, &mut out.values, &mut out.indices)?;
        Ok(out)
    }

    /// [`Fsq::quantize`] into outputs the caller owns (buffers or views) of `n·d`, `n·d`
    /// and `n` elements. Views at any offset work: the tiled kernel stages through 16-byte
    /// vectors only where both sides are 16-byte aligned. Runs [`Fsq::kernel`].
    pub fn quantize_into<'a, T: FloatElement>(
        &self,
        device: &Device,
        latents: impl Into<BufferView<'a, T>>,
        codes: impl Into<BufferViewMut<'a, i32>>,
        values: impl Into<BufferViewMut<'a, T>>,
        indices: impl Into<BufferViewMut<'a, u32>>,
    ) -> Result<()> {
        let kernel = self.kernel;
        let (latents, mut codes, mut values, mut indices) =
            (latents.into(), codes.into(), values.into(), indices.into());
        let n = self.rows(latents.len(), "latents")?;
        let d = self.dim();
        check_len("codes", codes.len(), n * d)?;
        check_len("values", values.len(), n * d)?;
        check_len("indices", indices.len(), n)?;
        device.check_same("latents", latents.device())?;
        device.check_same("codes", codes.device())?;
        device.check_same("values", values.device())?;
        device.check_same("indices", indices.device())?;

        if device.kind() == BackendKind::Cpu {
            let (z, c) = (host(&latents, "latents")?, host_mut(&mut codes, "codes")?);
            let (v, i) = (host_mut(&mut values, "values")?, host_mut(&mut indices, "indices")?);
            return reference::fsq::quantize(&self.levels, z, c, v, i).map_err(|row| Error::InvalidValue {
                op: "Fsq::quantize",
                arg: "latents",
                row,
                reason: NAN_REASON,
            });
        }
        let n32 = row_count(n, "latents")?;
        let mut status = RowStatus::new(device)?;
        let s = status.buffer();
        match kernel {
            FsqKernel::Simple => {
                let cfg = LaunchConfig::for_items(n, FSQ_THREADS as usize, FSQ_THREADS, 0)?;
                fsq_quantize_v1(device, &cfg, latents, codes, values, indices, s, n32, self.params)?;
            }
            FsqKernel::Tiled => {
                let cfg = self.tiled_config::<T>(n)?;
                fsq_quantize(device, &cfg, latents, codes, values, indices, s, n32, self.params)?;
            }
        }
        status.defer("Fsq::quantize", "latents", NAN_REASON);
        Ok(())
    }

    /// Decodes token indices `[n]` (a buffer or a view) into codes and normalized values
    /// `[n, d]`. An index `≥ codebook_size()` is [`Error::InvalidValue`] naming its row,
    /// reported at the next synchronizing call on Cuda and Emulator.
    pub fn dequantize<'a, T: FloatElement>(
        &self,
        device: &Device,
        indices: impl Into<BufferView<'a, u32>>,
    ) -> Result<FsqDequantized<T>> {
        let indices = indices.into();
        let len = indices.len().checked_mul(self.dim()).ok_or_else(|| Error::invalid("indices", "too many rows"))?;
        let mut out =
            FsqDequantized { codes: DeviceBuffer::uninit(device, len)?, values: DeviceBuffer::uninit(device, len)? };
        self.dequantize_into(device, indices, &mut out.codes, &mut out.values)?;
        Ok(out)
    }

    /// [`Fsq::dequantize`] into outputs the caller owns (buffers or views) of `n·d` elements.
    pub fn dequantize_into<'a, T: FloatElement>(
        &self,
        device: &Device,
        indices: impl Into<BufferView<'a, u32>>,
        codes: impl Into<BufferViewMut<'a, i32>>,
        values: impl Into<BufferViewMut<'a, T>>,
    ) -> Result<()> {
        let (indices, mut codes, mut values) = (indices.into(), codes.into(), values.into());
        let n = indices.len();
        let d = self.dim();
        check_len("codes", codes.len(), n * d)?;
        check_len("values", values.len(), n * d)?;
        device.check_same("indices", indices.device())?;
        device.check_same("codes", codes.device())?;
        device.check_same("values", values.device())?;

        if device.kind() == BackendKind::Cpu {
            let i = host(&indices, "indices")?;
            let (c, v) = (host_mut(&mut codes, "codes")?, host_mut(&mut values, "values")?);
            return reference::fsq::dequantize(&self.levels, i, c, v).map_err(|row| Error::InvalidValue {
                op: "Fsq::dequantize",
                arg: "indices",
                row,
                reason: INDEX_REASON,
            });
        }
        let n32 = row_count(n, "indices")?;
        let mut status = RowStatus::new(device)?;
        let cfg = self.tiled_config::<T>(n)?;
        fsq_dequantize(device, &cfg, indices, codes, values, status.buffer(), n32, self.params)?;
        status.defer("Fsq::dequantize", "indices", INDEX_REASON);
        Ok(())
    }

    fn tiled_config<T: FloatElement>(&self, n: usize) -> Result<LaunchConfig> {
        let tile_bytes = FSQ_THREADS as usize * self.dim() * (std::mem::size_of::<T>() + 4);
        LaunchConfig::for_items(n, FSQ_THREADS as usize, FSQ_THREADS, tile_bytes as u32)
    }

    fn rows(&self, len: usize, arg: &'static str) -> Result<usize> {
        if len % self.dim() != 0 {
            return Err(Error::invalid(
                arg,
                format!("{len} elements is not a whole number of rows of d = {}", self.dim()),
            ));
        }
        Ok(len / self.dim())
    }
}

#[cfg(test)]
mod tests {
    use super::FastDiv;

    #[test]
    fn fast_div_matches_division() {
        let divisors = (1..=300u32).chain([1000, 4095, 4096, 65535, 65536, 1 << 20, (1 << 31) - 1, u32::MAX]);
        let numerators = (0..2000u32).chain([u32::MAX, u32::MAX - 1, 1 << 31, (1 << 31) - 1, 123_456_789]);
        let numerators: Vec<u32> = numerators.collect();
        for d in divisors {
            let f = FastDiv::new(d);
            for &n in &numerators {
                let q = ((((n as u64 * f.mul as u64) >> 32) + n as u64) >> f.shift) as u32;
                assert_eq!(q, n / d, "{n} / {d}");
            }
        }
    }
}
