//! The bottleneck of a KL-regularized (continuous, VAE-style) tokenizer: the typed wrappers
//! of `kernels/kl.cu`.
//!
//! The encoder emits `params [n, 2C]` per token, `mean [C]` then `logvar [C]` (the order of
//! diffusers' `DiagonalGaussianDistribution`, `mean, logvar = torch.chunk(parameters, 2,
//! dim=1)`, here on the last axis). [`kl_sample`] / [`kl_sample_into`] give `z [n, C]`:
//!
//! - [`KlMode::Mean`] ("mode", inference): `z = mean`, an exact copy;
//! - [`KlMode::Sample`]: `z = mean + exp(logvar / 2)·ε`, ε ~ N(0, 1), with logvar first
//!   clamped to [−30, 20] as diffusers does. In f32 (one FMA) and rounded once to `T`.
//!
//! ε comes from a counter-based generator, Philox4x32-10 keyed by the 64-bit seed with the
//! counter = flat output index / 4, and Box–Muller: it depends only on (seed, row·C + column),
//! not on the launch, so a result is reproducible and the same bits on every backend (Cuda,
//! Emulator, and Cpu, which runs [`crate::reference::kl`]: the kernel's log, exp and sin/cos
//! are fixed sequences of correctly rounded f32 operations that the reference repeats). See
//! kernels/kl.cu for the details (the normal is truncated at 5.77σ by its 24-bit uniforms).
//!
//! The per-token KL divergence `0.5·Σ(mean² + var − 1 − logvar)` is not computed here: it is
//! a row reduction, which would force a row-per-warp mapping on this flat elementwise kernel
//! for a value only training needs; compute it separately.
//!
//! ```no_run
//! use tessera::{kl_sample, Device, KlMode};
//! let device = Device::best();
//! let params = device.upload(&vec![0.0f32; 256 * 2 * 16])?; // [n = 256, 2C], C = 16
//! let z = kl_sample(&device, &params, 16, KlMode::Sample { seed: 42 })?; // [256, 16]
//! let mode = kl_sample(&device, &params, 16, KlMode::Mean)?;
//! # Ok::<(), tessera::Error>(())
//! ```

use crate::device::{BackendKind, BufferView, BufferViewMut, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::checks::{check_len, host, host_mut, row_count, RowStatus};
use crate::kernels::constants::kl as consts;
use crate::kernels::launch::LaunchConfig;
use crate::reference;

const OP: &str = "kl_sample";
const REASON: &str = "mean (or, when sampling, logvar) is NaN or infinite";

/// What the bottleneck outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KlMode {
    /// The distribution's mode: `z = mean` (inference).
    Mean,
    /// The reparameterized sample `z = mean + exp(clamp(logvar, −30, 20) / 2)·ε` with ε from
    /// Philox4x32-10 under `seed` (the same seed gives the same bits on every backend).
    Sample {
        /// The generator's key.
        seed: u64,
    },
}

/// Must match `KlParams` in kernels/kl.cu field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct KlParams {
    n: u32,
    channels: u32,
    seed_lo: u32,
    seed_hi: u32,
    sample: u32,
}
const _: () = assert!(std::mem::size_of::<KlParams>() == 20);
// SAFETY: repr(C) plain data, same layout as the C struct (size asserted on both sides).
unsafe impl cudarc::driver::DeviceRepr for KlParams {}

/// The raw kernel, in its own module: its name is the public [`kl_sample`]'s.
mod raw {
    #[allow(unused_imports)]
    use super::KlParams;
    declare_kernels! {
        /// C: `kl_sample_<T>(const T* params, T* z, unsigned* status, KlParams p)` — one
        /// thread per 16 bytes of `z`.
        fn kl_sample<T: f32 | f16 | bf16>(params: input T, z: output T, status: output u32, p: scalar KlParams);
    }
}

/// `channels` checked (≥ 1, 2·channels within u32) and the row count of `params`.
fn rows_of(params_len: usize, channels: usize) -> Result<usize> {
    if channels == 0 {
        return Err(Error::invalid("channels", "must be at least 1"));
    }
    if channels > (u32::MAX / 2) as usize {
        return Err(Error::invalid("channels", format!("{channels} is more than {}", u32::MAX / 2)));
    }
    let row = 2 * channels;
    if params_len % row != 0 {
        return Err(Error::invalid(
            "params",
            format!("{params_len} elements are not whole rows of 2·channels = {row} (mean, then logvar)"),
        ));
    }
    Ok(params_len / row)
}

/// The bottleneck of `params` (`[n, 2·channels]`) as a new `[n, channels]` buffer; see
/// [`kl_sample_into`].
pub fn kl_sample<'a, T: FloatElement>(
    device: &Device,
    params: impl Into<BufferView<'a, T>>,
    channels: usize,
    mode: KlMode,
) -> Result<DeviceBuffer<T>> {
    let params = params.into();
    let n = rows_of(params.len(), channels)?;
    let mut out = DeviceBuffer::uninit(device, n * channels)?;
    kl_sample_into(device, params, channels, mode, &mut out)?;
    Ok(out)
}

/// The bottleneck of `params` (`[n, 2·channels]`, row-major: `mean [channels]` then
/// `logvar [channels]` per row; a buffer or a view) into `out` (`[n, channels]`):
/// `out = mean` ([`KlMode::Mean`], exact) or `out = mean + exp(clamp(logvar, −30, 20)/2)·ε`
/// ([`KlMode::Sample`]), computed in f32 as one FMA and rounded once to `T`. ε of element
/// `(i, c)` depends only on the seed and `i·channels + c`: the same bits on Cuda, Emulator
/// and Cpu, whatever the launch.
///
/// Errors: `channels` = 0 or above `u32::MAX / 2`, `params` not whole rows of `2·channels`
/// ([`Error::InvalidArgument`] naming the argument); `out.len() ≠ n·channels`
/// ([`Error::LengthMismatch`] naming `out`). A row whose mean (or, when sampling, logvar) is
/// NaN or ±inf is [`Error::InvalidValue`] naming `params` and the first such row, reported at
/// the next synchronizing call on Cuda and Emulator (from this call on Cpu); that row is still
/// written (NaN where a NaN went in; an infinite logvar is clamped).
pub fn kl_sample_into<'a, T: FloatElement>(
    device: &Device,
    params: impl Into<BufferView<'a, T>>,
    channels: usize,
    mode: KlMode,
    out: impl Into<BufferViewMut<'a, T>>,
) -> Result<()> {
    let (params, mut out) = (params.into(), out.into());
    let n = rows_of(params.len(), channels)?;
    check_len("out", out.len(), n * channels)?;
    device.check_same("params", params.device())?;
    device.check_same("out", out.device())?;
    let seed = match mode {
        KlMode::Mean => None,
        KlMode::Sample { seed } => Some(seed),
    };

    if device.kind() == BackendKind::Cpu {
        let (p, o) = (host(&params, "params")?, host_mut(&mut out, "out")?);
        return reference::kl::kl_sample(p, channels, seed, o).map_err(|row| Error::InvalidValue {
            op: OP,
            arg: "params",
            row,
            reason: REASON,
        });
    }
    let n32 = row_count(n, "params")?;
    let threads = consts::KL_THREADS;
    let per_thread = 16 / std::mem::size_of::<T>();
    let cfg = LaunchConfig::for_items(n * channels, per_thread * threads as usize, threads, 0)?;
    let s = seed.unwrap_or(0);
    let p = KlParams {
        n: n32,
        channels: channels as u32,
        seed_lo: s as u32,
        seed_hi: (s >> 32) as u32,
        sample: seed.is_some() as u32,
    };
    let mut status = RowStatus::new(device)?;
    raw::kl_sample(device, &cfg, params, out, status.buffer(), p)?;
    status.defer(OP, "params", REASON);
    Ok(())
}
