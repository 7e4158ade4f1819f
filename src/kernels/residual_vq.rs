//! Residual vector quantization: a chain of codebooks, stage `s` quantizing what stages
//! `0..s` left over. The typed wrapper of `kernels/residual_vq.cu`.
//!
//! ```no_run
//! use tessera::{Device, KmeansOptions, ResidualVq};
//! let device = Device::emulator();
//! let data = device.upload(&vec![0.5f32; 4096 * 8])?;                 // 4096 rows, d = 8
//! let rvq = ResidualVq::fit(&device, &data, 4, &KmeansOptions::new(8, 256), &mut |_, _| {})?;
//! let out = rvq.quantize(&device, &data)?;
//! let tokens = out.indices.download()?;                                // [4096, 4], stage fastest
//! # Ok::<(), tessera::Error>(())
//! ```
//!
//! The residual stays on the device: each stage is [`Codebook::quantize_residual`], whose
//! finalize kernel writes `r − e[idx]` for the next stage; after each stage
//! `residual_vq_accumulate` adds the chosen entries to a running f32 sum (rounded once to
//! `T` at the last stage: `quantized` is the sum of the chosen entries) and writes the
//! stage's indices into column `s` of the `[n, S]` index matrix.

use crate::device::{BackendKind, BufferView, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::codebook::{Codebook, Commitment, Metric, SearchOptions, SearchPath};
use crate::kernels::constants;
use crate::kernels::kmeans::{fit_codebook, KmeansOptions, KmeansProgress};
use crate::kernels::launch::LaunchConfig;

/// Threads per block of the accumulate kernel (`RVQ_THREADS`).
const THREADS: u32 = constants::residual_vq::RVQ_THREADS;

declare_kernels! {
    /// C: `residual_vq_accumulate_<T>(const T* stage_quantized, const unsigned* stage_indices,
    ///     float* acc, T* quantized, unsigned* indices, unsigned n, unsigned d, unsigned stages,
    ///     unsigned stage, unsigned last)`
    fn residual_vq_accumulate<T: f32 | f16 | bf16>(stage_quantized: input T, stage_indices: input u32,
        acc: output f32, quantized: output T, indices: output u32, n: scalar u32, d: scalar u32,
        stages: scalar u32, stage: scalar u32, last: scalar u32);
}

/// Outputs of [`ResidualVq::quantize`] for `n` latents and `S` stages.
#[derive(Debug)]
pub struct ResidualVqOutput<T: FloatElement> {
    /// `[n, S]` row-major (stage fastest): the entry each stage chose.
    pub indices: DeviceBuffer<u32>,
    /// `[n, d]` the sum of the chosen entries (f32 sum in stage order, rounded once to `T`).
    pub quantized: DeviceBuffer<T>,
    /// Per stage, what its commitment is computed from (see [`ResidualVqOutput::commitment`]).
    stage_commitments: Vec<Commitment>,
}

impl<T: FloatElement> ResidualVqOutput<T> {
    /// `[S]` the mean squared distance of each stage's input to its chosen entry; stage
    /// `s`'s is the mean squared residual left after stages `0..=s`. Reads the stages' sums
    /// back (synchronizes once per stage on Cuda and Emulator); the quantization itself
    /// does not wait for the device.
    pub fn commitment(&self) -> Result<Vec<f64>> {
        self.stage_commitments.iter().map(Commitment::value).collect()
    }
}

/// `S ≥ 1` codebooks of one dimension on one device, squared-L2.
pub struct ResidualVq<T: FloatElement> {
    stages: Vec<Codebook<T>>,
}

impl<T: FloatElement> std::fmt::Debug for ResidualVq<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.stages).finish()
    }
}

impl<T: FloatElement> ResidualVq<T> {
    /// Chains `stages`. Errors (argument `stages`): none given; a dimension or device that
    /// differs from stage 0's; a cosine codebook (residuals are defined for squared L2).
    pub fn new(stages: Vec<Codebook<T>>) -> Result<Self> {
        let first = stages.first().ok_or_else(|| Error::invalid("stages", "residual VQ needs at least one stage"))?;
        let (dim, device) = (first.dim(), first.entries().device().clone());
        for (s, cb) in stages.iter().enumerate() {
            if cb.metric() != Metric::SquaredL2 {
                return Err(Error::invalid(
                    "stages",
                    format!("stage {s} uses {:?}; residual VQ needs SquaredL2", cb.metric()),
                ));
            }
            if cb.dim() != dim {
                return Err(Error::invalid("stages", format!("stage {s} has d = {}, stage 0 has d = {dim}", cb.dim())));
            }
            if let Err(Error::WrongDevice { buffer_device, device, .. }) =
                device.check_same("stages", cb.entries().device())
            {
                return Err(Error::invalid(
                    "stages",
                    format!("stage {s} lives on {buffer_device}, stage 0 on {device}"),
                ));
            }
        }
        Ok(ResidualVq { stages })
    }

    /// Fits `stages` codebooks of `options.k` entries, stage by stage with k-means
    /// ([`fit_codebook`](crate::fit_codebook)): stage 0 on `data`, stage `s` on the residuals stages `0..s` leave.
    /// Stage `s` uses seed `options.seed + s` (wrapping). `progress(stage, report)` after every
    /// iteration of every stage. Errors: those of [`fit_codebook`](crate::fit_codebook); `stages = 0`; a cosine
    /// `options.metric`.
    pub fn fit(
        device: &Device,
        data: &DeviceBuffer<T>,
        stages: usize,
        options: &KmeansOptions,
        progress: &mut dyn FnMut(usize, &KmeansProgress),
    ) -> Result<Self> {
        if stages == 0 {
            return Err(Error::invalid("stages", "residual VQ needs at least one stage"));
        }
        if options.metric != Metric::SquaredL2 {
            return Err(Error::invalid("options.metric", "residual VQ is defined for the squared L2 metric"));
        }
        let mut fitted = Vec::with_capacity(stages);
        let mut residual: Option<DeviceBuffer<T>> = None;
        for s in 0..stages {
            let input = residual.as_ref().unwrap_or(data);
            let stage_options = KmeansOptions { seed: options.seed.wrapping_add(s as u64), ..*options };
            let cb = fit_codebook(device, input, &stage_options, &mut |p| progress(s, p))?;
            if s + 1 < stages {
                let opts = SearchOptions { distances: false, histogram: false, path: SearchPath::Auto, splits: None };
                residual = Some(cb.quantize_residual(device, input, &opts)?.1);
            }
            fitted.push(cb);
        }
        Self::new(fitted)
    }

    /// The codebooks, stage 0 first.
    pub fn stages(&self) -> &[Codebook<T>] {
        &self.stages
    }

    /// Dimension `d` of a latent.
    pub fn dim(&self) -> usize {
        self.stages[0].dim()
    }

    /// Quantizes every latent of `z` (`[n, d]`) through all stages. Errors: `z` not a whole
    /// number of rows or on another device; a non-finite latent ([`Error::InvalidValue`]
    /// naming `z` and its first row).
    pub fn quantize<'a>(&self, device: &Device, z: impl Into<BufferView<'a, T>>) -> Result<ResidualVqOutput<T>> {
        let z = z.into();
        device.check_same("z", z.device())?;
        let d = self.dim();
        if z.len() % d != 0 {
            return Err(Error::invalid("z", format!("{} elements is not a whole number of rows of d = {d}", z.len())));
        }
        let n = z.len() / d;
        let count = self.stages.len();
        if n.checked_mul(count.max(d)).map_or(true, |len| len >= u32::MAX as usize) {
            return Err(Error::invalid(
                "z",
                format!("{n} latents × {count} stages × d = {d} is too large for one call"),
            ));
        }
        let opts = SearchOptions { distances: false, histogram: false, path: SearchPath::Auto, splits: None };
        let mut commitment = Vec::with_capacity(count);
        let mut indices = device.zeros::<u32>(n * count)?;
        let mut quantized = device.zeros::<T>(n * d)?;
        let cpu = device.kind() == BackendKind::Cpu;
        let mut acc = device.zeros::<f32>(if count > 1 && !cpu { n * d } else { 0 })?;
        let mut host_acc = vec![0.0f32; if cpu { n * d } else { 0 }];
        let mut host_indices = vec![0u32; if cpu { n * count } else { 0 }];
        let mut residual: Option<DeviceBuffer<T>> = None;
        for (s, cb) in self.stages.iter().enumerate() {
            let input = residual.as_ref().map_or(z, DeviceBuffer::as_view);
            let last = s + 1 == count;
            let (out, next) = if last {
                (cb.quantize(device, input, &opts)?, None)
            } else {
                let (out, r) = cb.quantize_residual(device, input, &opts)?;
                (out, Some(r))
            };
            let (stage_indices, stage_quantized, stage_commitment) = out.into_parts();
            commitment.push(stage_commitment);
            if cpu {
                // The kernel's arithmetic on the host: f32 sums in stage order.
                let q = stage_quantized.download()?;
                for (a, e) in host_acc.iter_mut().zip(&q) {
                    *a = if s == 0 { e.to_f32() } else { *a + e.to_f32() };
                }
                for (row, &i) in stage_indices.download()?.iter().enumerate() {
                    host_indices[row * count + s] = i;
                }
            } else {
                let cfg = LaunchConfig::for_items(n * d, THREADS as usize, THREADS, 0)?;
                residual_vq_accumulate(
                    device,
                    &cfg,
                    &stage_quantized,
                    &stage_indices,
                    &mut acc,
                    &mut quantized,
                    &mut indices,
                    n as u32,
                    d as u32,
                    count as u32,
                    s as u32,
                    u32::from(last),
                )?;
            }
            residual = next;
        }
        if cpu {
            indices = device.upload(&host_indices)?;
            quantized = device.upload(&host_acc.iter().map(|&a| T::from_f32(a)).collect::<Vec<T>>())?;
        }
        Ok(ResidualVqOutput { indices, quantized, stage_commitments: commitment })
    }
}
