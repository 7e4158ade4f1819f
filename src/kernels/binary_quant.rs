//! Binary quantizers LFQ and BSQ with group-wise indices: the typed wrappers of
//! `kernels/binary_quant.cu`.
//!
//! For latents `z [n, d]` (row-major, `1 ≤ d ≤ 1024`), with `bit_i = z_i > 0` (so 0, −0
//! and NaN give 0):
//! - **LFQ** (lookup-free quantization, MAGVIT-v2): `value_i = bit_i ? +1 : −1`,
//!   `sq_error = ‖z − value‖²`. ±Inf latents are defined (their sign; the error is +Inf).
//! - **BSQ** (binary spherical quantization): `u = z / ‖z‖₂`,
//!   `value_i = (bit_i ? +1 : −1) / √d`, `sq_error = ‖u − value‖²` (the commitment term).
//!   A zero row has `u = 0`: every bit 0, values `−1/√d`, error `1`. A row with an
//!   infinite entry has no finite normalization: [`Error::InvalidValue`].
//! - **Group-wise indices** (WeTok): the `d` dims form `G = ceil(d / group_bits)`
//!   consecutive groups of `group_bits` dims (the last may be shorter); the index of group
//!   `g` is `Σ_{i in g} bit_i · 2^(i − g·group_bits)`, its first dim the least significant
//!   bit. `group_bits = d` (when `d ≤ 31`) gives one token per latent.
//!
//! Outputs: `indices [n, G]` u32, `values [n, d]` in the latents' dtype (`±1/√d` is
//! rounded to f32, then to the dtype), `sq_error [n]` f32. A NaN latent (either op) is
//! [`Error::InvalidValue`] naming the first bad row, detected inside the kernel.
//!
//! ```no_run
//! use tessera::{BinaryQuantizer, Device};
//! let device = Device::best();
//! let bsq = BinaryQuantizer::bsq(18, 9)?;                  // 18 bits = 2 groups of 2^9 tokens
//! let latents = device.upload(&vec![0.3f32; 18 * 1024])?;  // [n = 1024, d = 18]
//! let out = bsq.quantize(&device, &latents)?;
//! let tokens: Vec<u32> = out.indices.download()?;          // [1024, 2]
//! # Ok::<(), tessera::Error>(())
//! ```

use crate::device::{BackendKind, BufferView, BufferViewMut, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::checks::{host, host_mut, row_count, RowStatus};
use crate::kernels::constants;
use crate::kernels::launch::LaunchConfig;
use crate::reference;

/// Largest latent dimension `d` a [`BinaryQuantizer`] supports.
pub const BINARY_QUANT_MAX_DIM: usize = constants::binary_quant::BQ_MAX_DIM as usize;
/// Largest `group_bits` (a group index is a u32 below `2^31`).
pub const BINARY_QUANT_MAX_GROUP_BITS: u32 = 31;
/// Threads per block of every binary_quant kernel (`BQ_THREADS` in binary_quant.cu).
const BQ_THREADS: u32 = constants::binary_quant::BQ_THREADS;
/// Warps per block (`BQ_WARPS`).
const BQ_WARPS: usize = BQ_THREADS as usize / 32;
/// Target bytes of one staged row tile of the fast kernels.
const BQ_TILE_TARGET_BYTES: usize = 16 * 1024;
/// Largest row tile (`BQ_MAX_TILE_BYTES`).
const BQ_MAX_TILE_BYTES: usize = 32 * 1024;

/// Kernel parameters, field for field `BinaryQuantParams` of kernels/binary_quant.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BinaryQuantParams {
    dim: u32,
    group_bits: u32,
    groups: u32,
    tile_rows: u32,
    value_scale: f32,
}
const _: () = assert!(std::mem::size_of::<BinaryQuantParams>() == 20);
// SAFETY: repr(C) plain data, same layout as the C struct (size asserted on both sides).
unsafe impl cudarc::driver::DeviceRepr for BinaryQuantParams {}

declare_kernels! {
    /// C: `binary_quant_lfq_v1_<T>(const T* z, unsigned* indices, T* values, float* sq_error,
    ///     unsigned* status, unsigned n, BinaryQuantParams p)` — one thread per row.
    fn binary_quant_lfq_v1<T: f32 | f16 | bf16>(z: input T, indices: output u32, values: output T,
        sq_error: output f32, status: output u32, n: scalar u32, p: scalar BinaryQuantParams);
    /// C: `binary_quant_bsq_v1_<T>(const T* z, unsigned* indices, T* values, float* sq_error,
    ///     unsigned* status, unsigned n, BinaryQuantParams p)` — one thread per row.
    fn binary_quant_bsq_v1<T: f32 | f16 | bf16>(z: input T, indices: output u32, values: output T,
        sq_error: output f32, status: output u32, n: scalar u32, p: scalar BinaryQuantParams);
    /// C: `binary_quant_lfq_<T>(const T* z, unsigned* indices, T* values, float* sq_error,
    ///     unsigned* status, unsigned n, BinaryQuantParams p)` — staged row tiles, lane
    ///     segments per row, ballots.
    fn binary_quant_lfq<T: f32 | f16 | bf16>(z: input T, indices: output u32, values: output T,
        sq_error: output f32, status: output u32, n: scalar u32, p: scalar BinaryQuantParams);
    /// C: `binary_quant_bsq_<T>(const T* z, unsigned* indices, T* values, float* sq_error,
    ///     unsigned* status, unsigned n, BinaryQuantParams p)` — staged row tiles, lane
    ///     segments per row, ballots.
    fn binary_quant_bsq<T: f32 | f16 | bf16>(z: input T, indices: output u32, values: output T,
        sq_error: output f32, status: output u32, n: scalar u32, p: scalar BinaryQuantParams);
}

/// Which binary quantizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryQuantOp {
    /// Lookup-free quantization: values `±1`, error `‖z − value‖²`.
    Lfq,
    /// Binary spherical quantization: values `±1/√d`, error `‖z/‖z‖ − value‖²`.
    Bsq,
}

/// Which kernel variant to run (for tests and benchmarks; [`BinaryQuantizer::quantize`]
/// uses `Tiled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryQuantKernel {
    /// `binary_quant_{lfq,bsq}_v1_*`: one thread per row, direct global accesses.
    Simple,
    /// `binary_quant_{lfq,bsq}_*`: the fused kernel, row tiles staged through shared
    /// memory with 16-byte accesses, lanes owning vectors of up to 16 bytes of a row,
    /// bit words gathered with warp ballots or shuffles.
    Tiled,
}

/// An LFQ or BSQ quantizer for latents of dimension `d` with group-wise indices of
/// `group_bits` bits (definitions: the header of kernels/binary_quant.cu).
#[derive(Clone, Debug)]
pub struct BinaryQuantizer {
    op: BinaryQuantOp,
    params: BinaryQuantParams,
    kernel: BinaryQuantKernel,
}

/// The outputs of [`BinaryQuantizer::quantize`] for `n` latents of dimension `d`.
#[derive(Debug)]
pub struct BinaryQuantized<T: FloatElement> {
    /// `[n, G]` group indices, each below `2^group_bits`.
    pub indices: DeviceBuffer<u32>,
    /// `[n, d]` quantized values (`±1` for LFQ, `±1/√d` for BSQ), in the latents' dtype.
    pub values: DeviceBuffer<T>,
    /// `[n]` squared quantization error per row (`‖z − value‖²` for LFQ,
    /// `‖z/‖z‖ − value‖²` for BSQ), f32.
    pub sq_error: DeviceBuffer<f32>,
}

impl BinaryQuantizer {
    /// Validates `dim` (1 to 1024) and `group_bits` (1 to 31).
    pub fn new(op: BinaryQuantOp, dim: usize, group_bits: u32) -> Result<Self> {
        if dim == 0 || dim > BINARY_QUANT_MAX_DIM {
            return Err(Error::invalid("dim", format!("d = {dim}, need 1 to {BINARY_QUANT_MAX_DIM}")));
        }
        if group_bits == 0 || group_bits > BINARY_QUANT_MAX_GROUP_BITS {
            return Err(Error::invalid(
                "group_bits",
                format!("{group_bits} bits per group, need 1 to {BINARY_QUANT_MAX_GROUP_BITS}"),
            ));
        }
        let value_scale = match op {
            BinaryQuantOp::Lfq => 1.0,
            BinaryQuantOp::Bsq => reference::binary_quant::bsq_scale(dim),
        };
        let params = BinaryQuantParams {
            dim: dim as u32,
            group_bits,
            groups: reference::binary_quant::groups(dim, group_bits) as u32,
            tile_rows: 0,
            value_scale,
        };
        Ok(BinaryQuantizer { op, params, kernel: BinaryQuantKernel::Tiled })
    }

    /// LFQ: `BinaryQuantizer::new(BinaryQuantOp::Lfq, dim, group_bits)`.
    pub fn lfq(dim: usize, group_bits: u32) -> Result<Self> {
        Self::new(BinaryQuantOp::Lfq, dim, group_bits)
    }

    /// BSQ: `BinaryQuantizer::new(BinaryQuantOp::Bsq, dim, group_bits)`.
    pub fn bsq(dim: usize, group_bits: u32) -> Result<Self> {
        Self::new(BinaryQuantOp::Bsq, dim, group_bits)
    }

    /// This quantizer running `kernel` (for tests and benchmarks; the default is
    /// [`BinaryQuantKernel::Tiled`]). The Cpu backend ignores it.
    pub fn using(&self, kernel: BinaryQuantKernel) -> BinaryQuantizer {
        BinaryQuantizer { kernel, ..self.clone() }
    }

    /// The kernel variant this quantizer runs.
    pub fn kernel(&self) -> BinaryQuantKernel {
        self.kernel
    }

    /// LFQ or BSQ.
    pub fn op(&self) -> BinaryQuantOp {
        self.op
    }

    /// `d`, the dimension of a latent (its number of bits).
    pub fn dim(&self) -> usize {
        self.params.dim as usize
    }

    /// Bits per group index.
    pub fn group_bits(&self) -> u32 {
        self.params.group_bits
    }

    /// `G = ceil(d / group_bits)`, indices per latent.
    pub fn groups(&self) -> usize {
        self.params.groups as usize
    }

    /// Quantizes latents `[n, d]` (row-major, `latents.len() = n·d`; a buffer or a view)
    /// into new buffers. A NaN latent, or for BSQ an infinite one, is
    /// [`Error::InvalidValue`] naming the first such row, reported at the next
    /// synchronizing call on Cuda and Emulator.
    pub fn quantize<'a, T: FloatElement>(
        &self,
        device: &Device,
        latents: impl Into<BufferView<'a, T>>,
    ) -> Result<BinaryQuantized<T>> {
        let latents = latents.into();
        let n = self.rows(latents.len())?;
        let index_len = n.checked_mul(self.groups()).ok_or_else(|| Error::invalid("latents", "too many rows"))?;
        let mut out = BinaryQuantized {
            indices: DeviceBuffer::uninit(device, index_len)?,
            values: DeviceBuffer::uninit(device, latents.len())?,
            sq_error: DeviceBuffer::uninit(device, n)?,
        };
        self.quantize_into(device, latents, &mut out.indices, &mut out.values, &mut out.sq_error)?;
        Ok(out)
    }

    /// [`BinaryQuantizer::quantize`] into outputs the caller owns (buffers or views) of
    /// `n·G`, `n·d` and `n` elements, running [`BinaryQuantizer::kernel`]. When
    /// [`Error::InvalidValue`] is reported every row is still written: the bad rows' bits,
    /// indices and values are those of the signs and their error is NaN.
    pub fn quantize_into<'a, T: FloatElement>(
        &self,
        device: &Device,
        latents: impl Into<BufferView<'a, T>>,
        indices: impl Into<BufferViewMut<'a, u32>>,
        values: impl Into<BufferViewMut<'a, T>>,
        sq_error: impl Into<BufferViewMut<'a, f32>>,
    ) -> Result<()> {
        let kernel = self.kernel;
        let (latents, mut indices, mut values, mut sq_error) =
            (latents.into(), indices.into(), values.into(), sq_error.into());
        let n = self.rows(latents.len())?;
        let (d, g) = (self.dim(), self.groups());
        check_len("indices", indices.len(), n.checked_mul(g))?;
        check_len("values", values.len(), Some(latents.len()))?;
        check_len("sq_error", sq_error.len(), Some(n))?;
        device.check_same("latents", latents.device())?;
        device.check_same("indices", indices.device())?;
        device.check_same("values", values.device())?;
        device.check_same("sq_error", sq_error.device())?;

        if device.kind() == BackendKind::Cpu {
            let z = host(&latents, "latents")?;
            let (i, v) = (host_mut(&mut indices, "indices")?, host_mut(&mut values, "values")?);
            let e = host_mut(&mut sq_error, "sq_error")?;
            let run = match self.op {
                BinaryQuantOp::Lfq => reference::binary_quant::lfq::<T>,
                BinaryQuantOp::Bsq => reference::binary_quant::bsq::<T>,
            };
            return run(d, self.group_bits(), z, i, v, e).map_err(|row| self.invalid_row(row));
        }
        let n32 = row_count(n, "latents")?;
        let mut status = RowStatus::new(device)?;
        let mut p = self.params;
        let (e, s) = (status.buffer(), sq_error);
        match (kernel, self.op) {
            (BinaryQuantKernel::Simple, op) => {
                let cfg = LaunchConfig::for_items(n, BQ_THREADS as usize, BQ_THREADS, 0)?;
                match op {
                    BinaryQuantOp::Lfq => binary_quant_lfq_v1(device, &cfg, latents, indices, values, s, e, n32, p)?,
                    BinaryQuantOp::Bsq => binary_quant_bsq_v1(device, &cfg, latents, indices, values, s, e, n32, p)?,
                }
            }
            (BinaryQuantKernel::Tiled, op) => {
                p.tile_rows = tile_rows(d, std::mem::size_of::<T>()) as u32;
                let bytes = p.tile_rows as usize * d * std::mem::size_of::<T>();
                let cfg = LaunchConfig::for_items(n, p.tile_rows as usize, BQ_THREADS, bytes as u32)?;
                match op {
                    BinaryQuantOp::Lfq => binary_quant_lfq(device, &cfg, latents, indices, values, s, e, n32, p)?,
                    BinaryQuantOp::Bsq => binary_quant_bsq(device, &cfg, latents, indices, values, s, e, n32, p)?,
                }
            }
        }
        status.defer("BinaryQuantizer::quantize", "latents", self.invalid_reason());
        Ok(())
    }

    fn rows(&self, len: usize) -> Result<usize> {
        if len % self.dim() != 0 {
            return Err(Error::invalid(
                "latents",
                format!("{len} elements is not a whole number of rows of d = {}", self.dim()),
            ));
        }
        Ok(len / self.dim())
    }

    fn invalid_reason(&self) -> &'static str {
        match self.op {
            BinaryQuantOp::Lfq => "NaN has no sign bit",
            BinaryQuantOp::Bsq => "NaN or ±Inf: the row has no finite l2 normalization",
        }
    }

    fn invalid_row(&self, row: usize) -> Error {
        Error::InvalidValue { op: "BinaryQuantizer::quantize", arg: "latents", row, reason: self.invalid_reason() }
    }
}

/// Rows per block tile of the fast kernels for rows of `dim` elements of `elem` bytes:
/// about 16 KiB, at least one row per warp, and a multiple of `16 / gcd(row bytes, 16)`
/// so that every tile starts 16-byte aligned.
fn tile_rows(dim: usize, elem: usize) -> usize {
    let row_bytes = dim * elem;
    let align = 16 / gcd(row_bytes, 16);
    let min_rows = BQ_WARPS.next_multiple_of(align);
    let rows = ((BQ_TILE_TARGET_BYTES / row_bytes) / align * align).max(min_rows);
    debug_assert!(rows * row_bytes <= BQ_MAX_TILE_BYTES);
    rows
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn check_len(arg: &'static str, actual: usize, expected: Option<usize>) -> Result<()> {
    match expected {
        Some(expected) if actual == expected => Ok(()),
        Some(expected) => Err(Error::LengthMismatch { arg, expected, actual }),
        None => Err(Error::invalid("latents", "too many rows")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_aligned_and_within_budget() {
        for elem in [2, 4] {
            for dim in 1..=BINARY_QUANT_MAX_DIM {
                let rows = tile_rows(dim, elem);
                assert_eq!(rows * dim * elem % 16, 0, "d = {dim}, {elem} bytes");
                assert!(rows * dim * elem <= BQ_MAX_TILE_BYTES, "d = {dim}");
                assert!(rows >= BQ_WARPS, "d = {dim}");
            }
        }
    }
}
