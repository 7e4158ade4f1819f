//! Linear layers `Y = X·Wᵀ` with fused epilogues: the typed wrappers of `kernels/gemm.cu`.
//!
//! `x [m, k]` row-major (tokens × features), `w [n, k]` (PyTorch's `nn.Linear.weight`, so
//! checkpoints load without a transpose), `out [m, n]`. Inputs are f32, f16 or bf16; the
//! output is the input type or f32 (f16/bf16 in, f32 out). Accumulation is always f32.
//!
//! ```no_run
//! use tessera::{linear_into, Device, GemmEpilogue, GemmOptions, GemmShape};
//! let device = Device::emulator();
//! let (m, n, k) = (256, 1536, 384);
//! let x = device.upload(&vec![half::bf16::from_f32(0.5); m * k])?;
//! let w = device.upload(&vec![half::bf16::from_f32(0.25); n * k])?;
//! let bias = device.upload(&vec![half::bf16::ZERO; n])?;
//! let mut y = device.zeros::<half::bf16>(m * n)?;
//! let epilogue = GemmEpilogue::BiasGelu(bias.as_view());
//! linear_into(&device, &x, &w, GemmShape { m, n, k }, &epilogue, &mut y, &GemmOptions::default())?;
//! # Ok::<(), tessera::Error>(())
//! ```
//!
//! Paths ([`GemmPath`]): f16/bf16 on tensor cores; f32 on CUDA cores (exact f32 products),
//! or on tensor cores with TF32 operands when asked for ([`GemmPath::Tf32`]: 10 mantissa
//! bits, about 1e-3 relative error). Shapes with few output tiles (the adaLN modulation
//! GEMM has m = batch size) take the skinny kernel: 64×64 tiles and split-K over a f32
//! workspace, reduced in a fixed order (deterministic) by a kernel that applies the
//! epilogue.

use crate::device::{BackendKind, BufferView, BufferViewMut, DType, Device, DeviceBuffer, Element, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::checks::{host, host_mut};
use crate::kernels::constants::gemm as k;
use crate::kernels::launch::LaunchConfig;
use crate::reference::gemm as reference;

/// Launch parameters shared by every GEMM-shaped kernel (`GemmParams` in
/// kernels/gemm_epilogue.cuh, same field order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GemmParams {
    pub(crate) m: u32,
    pub(crate) n: u32,
    pub(crate) k: u32,
    pub(crate) kt_per_split: u32,
    pub(crate) tokens_per_sample: u32,
    pub(crate) gate_stride: u32,
    pub(crate) grid_w: u32,
    pub(crate) patch: u32,
    pub(crate) channels: u32,
    pub(crate) height: u32,
    pub(crate) width: u32,
    pub(crate) pad: u32,
    pub(crate) mean: [f32; 4],
    pub(crate) std_dev: [f32; 4],
}
// SAFETY: plain old data with the C struct's layout (#[repr(C)], same field order and types).
unsafe impl cudarc::driver::DeviceRepr for GemmParams {}

declare_kernels! {
    /// C: `gemm_none_<T>(const T* x, const T* w, const T* bias, const T* gate, T* out, GemmParams p)`;
    /// the same signature for every epilogue and path below (f32out: `float* out`).
    fn gemm_none<T: f32 | f16 | bf16>(x: input T, w: input T, bias: input T, gate: input T, out: output T, p: scalar GemmParams);
    fn gemm_bias<T: f32 | f16 | bf16>(x: input T, w: input T, bias: input T, gate: input T, out: output T, p: scalar GemmParams);
    fn gemm_bias_gelu<T: f32 | f16 | bf16>(x: input T, w: input T, bias: input T, gate: input T, out: output T, p: scalar GemmParams);
    fn gemm_bias_silu<T: f32 | f16 | bf16>(x: input T, w: input T, bias: input T, gate: input T, out: output T, p: scalar GemmParams);
    fn gemm_gated<T: f32 | f16 | bf16>(x: input T, w: input T, bias: input T, gate: input T, out: output T, p: scalar GemmParams);
    fn gemm_tf32_none<T: f32>(x: input T, w: input T, bias: input T, gate: input T, out: output T, p: scalar GemmParams);
    fn gemm_tf32_bias<T: f32>(x: input T, w: input T, bias: input T, gate: input T, out: output T, p: scalar GemmParams);
    fn gemm_tf32_bias_gelu<T: f32>(x: input T, w: input T, bias: input T, gate: input T, out: output T, p: scalar GemmParams);
    fn gemm_tf32_bias_silu<T: f32>(x: input T, w: input T, bias: input T, gate: input T, out: output T, p: scalar GemmParams);
    fn gemm_tf32_gated<T: f32>(x: input T, w: input T, bias: input T, gate: input T, out: output T, p: scalar GemmParams);
    fn gemm_f32out_none<T: f16 | bf16>(x: input T, w: input T, bias: input T, gate: input T, out: output f32, p: scalar GemmParams);
    fn gemm_f32out_bias<T: f16 | bf16>(x: input T, w: input T, bias: input T, gate: input T, out: output f32, p: scalar GemmParams);
    fn gemm_f32out_bias_gelu<T: f16 | bf16>(x: input T, w: input T, bias: input T, gate: input T, out: output f32, p: scalar GemmParams);
    fn gemm_f32out_bias_silu<T: f16 | bf16>(x: input T, w: input T, bias: input T, gate: input T, out: output f32, p: scalar GemmParams);
    fn gemm_f32out_gated<T: f16 | bf16>(x: input T, w: input T, bias: input T, gate: input T, out: output f32, p: scalar GemmParams);
    /// C: `gemm_skinny_<T>(const T* x, const T* w, float* workspace, GemmParams p)`
    fn gemm_skinny<T: f32 | f16 | bf16>(x: input T, w: input T, workspace: output f32, p: scalar GemmParams);
    fn gemm_tf32_skinny<T: f32>(x: input T, w: input T, workspace: output f32, p: scalar GemmParams);
    /// C: `gemm_reduce_none_<T>(const float* workspace, const T* bias, const T* gate, T* out,
    ///     unsigned splits, GemmParams p)`; the same for every epilogue (f32out: `float* out`).
    fn gemm_reduce_none<T: f32 | f16 | bf16>(workspace: input f32, bias: input T, gate: input T, out: output T, splits: scalar u32, p: scalar GemmParams);
    fn gemm_reduce_bias<T: f32 | f16 | bf16>(workspace: input f32, bias: input T, gate: input T, out: output T, splits: scalar u32, p: scalar GemmParams);
    fn gemm_reduce_bias_gelu<T: f32 | f16 | bf16>(workspace: input f32, bias: input T, gate: input T, out: output T, splits: scalar u32, p: scalar GemmParams);
    fn gemm_reduce_bias_silu<T: f32 | f16 | bf16>(workspace: input f32, bias: input T, gate: input T, out: output T, splits: scalar u32, p: scalar GemmParams);
    fn gemm_reduce_gated<T: f32 | f16 | bf16>(workspace: input f32, bias: input T, gate: input T, out: output T, splits: scalar u32, p: scalar GemmParams);
    fn gemm_reduce_f32out_none<T: f16 | bf16>(workspace: input f32, bias: input T, gate: input T, out: output f32, splits: scalar u32, p: scalar GemmParams);
    fn gemm_reduce_f32out_bias<T: f16 | bf16>(workspace: input f32, bias: input T, gate: input T, out: output f32, splits: scalar u32, p: scalar GemmParams);
    fn gemm_reduce_f32out_bias_gelu<T: f16 | bf16>(workspace: input f32, bias: input T, gate: input T, out: output f32, splits: scalar u32, p: scalar GemmParams);
    fn gemm_reduce_f32out_bias_silu<T: f16 | bf16>(workspace: input f32, bias: input T, gate: input T, out: output f32, splits: scalar u32, p: scalar GemmParams);
    fn gemm_reduce_f32out_gated<T: f16 | bf16>(workspace: input f32, bias: input T, gate: input T, out: output f32, splits: scalar u32, p: scalar GemmParams);
    /// C: `gemm_unfused_bias_<T>(T* out, const T* bias, GemmParams p)` — baseline, in place.
    fn gemm_unfused_bias<T: f32 | f16 | bf16>(out: output T, bias: input T, p: scalar GemmParams);
    /// C: `gemm_unfused_gelu_<T>(T* out, GemmParams p)` — baseline, in place.
    fn gemm_unfused_gelu<T: f32 | f16 | bf16>(out: output T, p: scalar GemmParams);
    /// C: `gemm_unfused_silu_<T>(T* out, GemmParams p)` — baseline, in place.
    fn gemm_unfused_silu<T: f32 | f16 | bf16>(out: output T, p: scalar GemmParams);
    /// C: `gemm_unfused_gated_<T>(T* out, const T* gate, const T* value, GemmParams p)`: out += gate ⊙ value.
    fn gemm_unfused_gated<T: f32 | f16 | bf16>(out: output T, gate: input T, value: input T, p: scalar GemmParams);
}

/// The shape of `Y [m, n] = X [m, k] · W [n, k]ᵀ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmShape {
    /// Rows of x and of the output (tokens).
    pub m: usize,
    /// Rows of w, columns of the output (output features).
    pub n: usize,
    /// Columns of x and w (input features).
    pub k: usize,
}

/// What the GEMM does with each output element `acc = (X·Wᵀ)[r, c]` before writing it.
#[derive(Clone, Copy, Debug)]
pub enum GemmEpilogue<'a, T: Element> {
    /// `out = acc`.
    None,
    /// `out = acc + bias[c]`; bias `[n]`.
    Bias(BufferView<'a, T>),
    /// `out = gelu_tanh(acc + bias[c])` (`F.gelu(approximate="tanh")`, as DiT and ViT use).
    BiasGelu(BufferView<'a, T>),
    /// `out = silu(acc + bias[c])`.
    BiasSilu(BufferView<'a, T>),
    /// adaLN-Zero's gated residual, in place: `out = out + gate[b, c] · (acc + bias[c])`
    /// where `out` holds the residual on entry and row r belongs to sample
    /// `b = r / tokens_per_sample`.
    GatedResidual {
        /// `[n]`.
        bias: BufferView<'a, T>,
        /// Sample b's gates start at element `b·gate_stride` of the view: a view into the
        /// modulation GEMM's `[B, 6D]` output starting at the gate chunk, stride 6D.
        gate: BufferView<'a, T>,
        /// Elements between consecutive samples' gate rows (≥ n).
        gate_stride: usize,
        /// Rows of x per sample (m must be a multiple of it).
        tokens_per_sample: usize,
    },
}

impl<T: Element> GemmEpilogue<'_, T> {
    fn kind(&self) -> Epi {
        match self {
            GemmEpilogue::None => Epi::None,
            GemmEpilogue::Bias(_) => Epi::Bias,
            GemmEpilogue::BiasGelu(_) => Epi::BiasGelu,
            GemmEpilogue::BiasSilu(_) => Epi::BiasSilu,
            GemmEpilogue::GatedResidual { .. } => Epi::Gated,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Epi {
    None,
    Bias,
    BiasGelu,
    BiasSilu,
    Gated,
}

/// Which math units compute the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GemmPath {
    /// f16/bf16: tensor cores; f32: CUDA cores.
    #[default]
    Auto,
    /// Tensor cores, f16/bf16 inputs only.
    TensorCore,
    /// CUDA cores, exact f32 products; f32 inputs only.
    Simt,
    /// Tensor cores with TF32 operands (rounded to 10 mantissa bits), f32 inputs only.
    Tf32,
}

/// Which kernel grid [`linear_into`] uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitK {
    /// By shape: the skinny kernel when the direct grid would not fill one wave of an
    /// H100 (132 blocks), with enough splits for two waves; the direct kernel otherwise.
    #[default]
    Auto,
    /// The direct kernel: 128×128 tiles, no workspace.
    Direct,
    /// The skinny kernel with this many splits of k (≥ 1; fewer when k has fewer 32-wide
    /// k-tiles), through an f32 workspace of `splits·m·n`.
    Splits(usize),
}

/// How [`linear_into`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GemmOptions {
    /// The math path (default: by dtype).
    pub path: GemmPath,
    /// The kernel grid (default: by shape).
    pub split_k: SplitK,
}

/// The kernel grid a shape gets: direct 128×128 tiles, or 64×64 tiles with `splits` splits
/// of `kt_per_split` k-tiles each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmPlan {
    /// The math path actually used.
    pub path: GemmPath,
    /// 1 for the direct kernel (no workspace); otherwise the skinny kernel's splits.
    pub splits: usize,
    /// Whether the skinny kernel runs (even with one split, through the workspace).
    pub skinny: bool,
    /// k-tiles (32 wide) per split.
    pub kt_per_split: usize,
}

/// Blocks to aim for on the skinny path: two waves of an H100's 132 SMs.
const TARGET_BLOCKS: usize = 264;
/// Below one wave of direct tiles, the skinny kernel runs.
const ONE_WAVE: usize = 132;
/// Most rows, columns and depth: the kernels count in u32 and step by a tile.
const MAX_DIM: usize = 1 << 31;

/// Chooses the kernel for a shape (see [`GemmPlan`]).
pub fn gemm_plan(dtype: DType, shape: GemmShape, options: &GemmOptions) -> Result<GemmPlan> {
    let path = match (options.path, dtype) {
        (GemmPath::Auto, DType::F32) => GemmPath::Simt,
        (GemmPath::Auto, DType::F16 | DType::BF16) => GemmPath::TensorCore,
        (GemmPath::TensorCore, DType::F16 | DType::BF16) => GemmPath::TensorCore,
        (GemmPath::Simt | GemmPath::Tf32, DType::F32) => options.path,
        (p, d) => {
            return Err(Error::invalid("options.path", format!("{p:?} does not take {d:?} inputs")));
        }
    };
    let ktiles = shape.k.div_ceil(k::SKINNY_BK as usize);
    let direct_tiles = shape.m.div_ceil(k::GEMM_BM as usize) * shape.n.div_ceil(k::GEMM_BN as usize);
    let skinny_tiles = shape.m.div_ceil(k::SKINNY_BM as usize) * shape.n.div_ceil(k::SKINNY_BN as usize);
    let splits = match options.split_k {
        SplitK::Splits(0) => return Err(Error::invalid("options.split_k", "at least one split")),
        SplitK::Splits(s) => Some(s),
        SplitK::Auto if direct_tiles < ONE_WAVE && ktiles > 0 => {
            // Enough splits to fill two waves, but at least four k-tiles per split.
            Some((TARGET_BLOCKS / skinny_tiles.max(1)).clamp(1, (ktiles / 4).max(1)))
        }
        SplitK::Auto | SplitK::Direct => None,
    };
    Ok(match splits {
        None => GemmPlan { path, splits: 1, skinny: false, kt_per_split: ktiles },
        Some(s) => {
            let kt_per_split = ktiles.div_ceil(s.min(ktiles.max(1))).max(1);
            let splits = ktiles.div_ceil(kt_per_split).max(1);
            GemmPlan { path, splits, skinny: true, kt_per_split }
        }
    })
}

/// `v` as a u32 kernel counter (< 2^31, see `MAX_DIM`), or a typed error naming `arg`.
pub(crate) fn dim32(v: usize, arg: &'static str) -> Result<u32> {
    if v >= MAX_DIM {
        return Err(Error::invalid(arg, format!("{v}; at most 2^31 − 1")));
    }
    Ok(v as u32)
}

/// `got == want` elements, or a typed error naming `arg` and the layout `what` that needs `want`.
pub(crate) fn check_len(arg: &'static str, got: usize, want: usize, what: &str) -> Result<()> {
    if got != want {
        return Err(Error::invalid(arg, format!("{got} elements; {what} needs {want}")));
    }
    Ok(())
}

/// Checks the epilogue's operands against the shape; fills its fields of `p`.
fn check_epilogue<T: Element>(epilogue: &GemmEpilogue<'_, T>, shape: GemmShape, p: &mut GemmParams) -> Result<()> {
    let bias = match epilogue {
        GemmEpilogue::None => return Ok(()),
        GemmEpilogue::Bias(b) | GemmEpilogue::BiasGelu(b) | GemmEpilogue::BiasSilu(b) => b,
        GemmEpilogue::GatedResidual { bias, .. } => bias,
    };
    check_len("bias", bias.len(), shape.n, "[n]")?;
    if let GemmEpilogue::GatedResidual { gate, gate_stride, tokens_per_sample, .. } = *epilogue {
        if tokens_per_sample == 0 || shape.m % tokens_per_sample != 0 {
            return Err(Error::invalid(
                "tokens_per_sample",
                format!("{tokens_per_sample}; must be ≥ 1 and divide m = {}", shape.m),
            ));
        }
        if gate_stride < shape.n {
            return Err(Error::invalid("gate_stride", format!("{gate_stride} < n = {}", shape.n)));
        }
        let samples = shape.m / tokens_per_sample;
        let need = if samples == 0 { 0 } else { (samples - 1) * gate_stride + shape.n };
        if gate.len() < need {
            return Err(Error::invalid(
                "gate",
                format!("{} elements; {samples} samples at stride {gate_stride} need {need}", gate.len()),
            ));
        }
        p.tokens_per_sample = dim32(tokens_per_sample, "tokens_per_sample")?;
        p.gate_stride = dim32(gate_stride, "gate_stride")?;
    }
    Ok(())
}

/// The output types a GEMM on `T` inputs can write: `T` itself, or f32 (for f16/bf16 inputs).
pub trait LinearOutput<T: FloatElement>: FloatElement + sealed::Launch<T> {}

/// The epilogue and path of a launch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EpiSel {
    epi: Epi,
    tf32: bool,
}

mod sealed {
    use super::*;
    /// The launches of one (input, output) type pair; crate-private so that the set is closed.
    #[allow(private_interfaces)]
    pub trait Launch<T: FloatElement> {
        #[allow(clippy::too_many_arguments)]
        fn direct(
            device: &Device,
            cfg: &LaunchConfig,
            epi: EpiSel,
            x: BufferView<'_, T>,
            w: BufferView<'_, T>,
            bias: BufferView<'_, T>,
            gate: BufferView<'_, T>,
            out: BufferViewMut<'_, Self>,
            p: GemmParams,
        ) -> Result<()>
        where
            Self: Element;
        #[allow(clippy::too_many_arguments)]
        fn reduce(
            device: &Device,
            cfg: &LaunchConfig,
            epi: EpiSel,
            workspace: BufferView<'_, f32>,
            bias: BufferView<'_, T>,
            gate: BufferView<'_, T>,
            out: BufferViewMut<'_, Self>,
            splits: u32,
            p: GemmParams,
        ) -> Result<()>
        where
            Self: Element;
    }
}

macro_rules! linear_output {
    ($t:ty => $o:ty, [$none:ident, $bias:ident, $gelu:ident, $silu:ident, $gated:ident],
     tf32: [$($tf32:ident),*], reduce: [$rnone:ident, $rbias:ident, $rgelu:ident, $rsilu:ident, $rgated:ident]) => {
        impl LinearOutput<$t> for $o {}
        // The trait's module is private: these types are not reachable from outside the crate.
        #[allow(private_interfaces)]
        impl sealed::Launch<$t> for $o {
            fn direct(
                device: &Device, cfg: &LaunchConfig, epi: EpiSel, x: BufferView<'_, $t>, w: BufferView<'_, $t>,
                bias: BufferView<'_, $t>, gate: BufferView<'_, $t>, out: BufferViewMut<'_, $o>, p: GemmParams,
            ) -> Result<()> {
                linear_output!(@tf32 epi, device, cfg, x, w, bias, gate, out, p, [$($tf32),*]);
                match epi.epi {
                    Epi::None => $none::<$t>(device, cfg, x, w, bias, gate, out, p),
                    Epi::Bias => $bias::<$t>(device, cfg, x, w, bias, gate, out, p),
                    Epi::BiasGelu => $gelu::<$t>(device, cfg, x, w, bias, gate, out, p),
                    Epi::BiasSilu => $silu::<$t>(device, cfg, x, w, bias, gate, out, p),
                    Epi::Gated => $gated::<$t>(device, cfg, x, w, bias, gate, out, p),
                }
            }
            fn reduce(
                device: &Device, cfg: &LaunchConfig, epi: EpiSel, ws: BufferView<'_, f32>, bias: BufferView<'_, $t>,
                gate: BufferView<'_, $t>, out: BufferViewMut<'_, $o>, splits: u32, p: GemmParams,
            ) -> Result<()> {
                match epi.epi {
                    Epi::None => $rnone::<$t>(device, cfg, ws, bias, gate, out, splits, p),
                    Epi::Bias => $rbias::<$t>(device, cfg, ws, bias, gate, out, splits, p),
                    Epi::BiasGelu => $rgelu::<$t>(device, cfg, ws, bias, gate, out, splits, p),
                    Epi::BiasSilu => $rsilu::<$t>(device, cfg, ws, bias, gate, out, splits, p),
                    Epi::Gated => $rgated::<$t>(device, cfg, ws, bias, gate, out, splits, p),
                }
            }
        }
    };
    (@tf32 $epi:ident, $device:ident, $cfg:ident, $x:ident, $w:ident, $bias:ident, $gate:ident, $out:ident, $p:ident, []) => {};
    (@tf32 $epi:ident, $device:ident, $cfg:ident, $x:ident, $w:ident, $bias:ident, $gate:ident, $out:ident, $p:ident,
     [$none:ident, $b:ident, $gelu:ident, $silu:ident, $gated:ident]) => {
        if $epi.tf32 {
            return match $epi.epi {
                Epi::None => $none::<f32>($device, $cfg, $x, $w, $bias, $gate, $out, $p),
                Epi::Bias => $b::<f32>($device, $cfg, $x, $w, $bias, $gate, $out, $p),
                Epi::BiasGelu => $gelu::<f32>($device, $cfg, $x, $w, $bias, $gate, $out, $p),
                Epi::BiasSilu => $silu::<f32>($device, $cfg, $x, $w, $bias, $gate, $out, $p),
                Epi::Gated => $gated::<f32>($device, $cfg, $x, $w, $bias, $gate, $out, $p),
            };
        }
    };
}

linear_output!(f32 => f32, [gemm_none, gemm_bias, gemm_bias_gelu, gemm_bias_silu, gemm_gated],
    tf32: [gemm_tf32_none, gemm_tf32_bias, gemm_tf32_bias_gelu, gemm_tf32_bias_silu, gemm_tf32_gated],
    reduce: [gemm_reduce_none, gemm_reduce_bias, gemm_reduce_bias_gelu, gemm_reduce_bias_silu, gemm_reduce_gated]);
linear_output!(half::f16 => half::f16, [gemm_none, gemm_bias, gemm_bias_gelu, gemm_bias_silu, gemm_gated],
    tf32: [], reduce: [gemm_reduce_none, gemm_reduce_bias, gemm_reduce_bias_gelu, gemm_reduce_bias_silu, gemm_reduce_gated]);
linear_output!(half::bf16 => half::bf16, [gemm_none, gemm_bias, gemm_bias_gelu, gemm_bias_silu, gemm_gated],
    tf32: [], reduce: [gemm_reduce_none, gemm_reduce_bias, gemm_reduce_bias_gelu, gemm_reduce_bias_silu, gemm_reduce_gated]);
linear_output!(half::f16 => f32, [gemm_f32out_none, gemm_f32out_bias, gemm_f32out_bias_gelu, gemm_f32out_bias_silu, gemm_f32out_gated],
    tf32: [], reduce: [gemm_reduce_f32out_none, gemm_reduce_f32out_bias, gemm_reduce_f32out_bias_gelu, gemm_reduce_f32out_bias_silu, gemm_reduce_f32out_gated]);
linear_output!(half::bf16 => f32, [gemm_f32out_none, gemm_f32out_bias, gemm_f32out_bias_gelu, gemm_f32out_bias_silu, gemm_f32out_gated],
    tf32: [], reduce: [gemm_reduce_f32out_none, gemm_reduce_f32out_bias, gemm_reduce_f32out_bias_gelu, gemm_reduce_f32out_bias_silu, gemm_reduce_f32out_gated]);

/// The tile shape of a kernel on gemm_tile.cuh's main loop, as its `#define`s give it.
pub(crate) struct TileDims {
    pub(crate) bm: u32,
    pub(crate) bn: u32,
    pub(crate) bk: u32,
    pub(crate) stages: u32,
    pub(crate) threads: u32,
}

const DIRECT: TileDims =
    TileDims { bm: k::GEMM_BM, bn: k::GEMM_BN, bk: k::GEMM_BK, stages: k::GEMM_STAGES, threads: k::GEMM_THREADS };
const SKINNY: TileDims = TileDims {
    bm: k::SKINNY_BM,
    bn: k::SKINNY_BN,
    bk: k::SKINNY_BK,
    stages: k::SKINNY_STAGES,
    threads: k::SKINNY_THREADS,
};

/// The launch of a tile kernel over an `m × n` output (grid x = column tiles, y = row
/// tiles, z = splits) with the dynamic shared memory of its pipeline for `elem`-byte tile
/// elements; more than 65535 row tiles is a typed error naming `rows_arg`.
pub(crate) fn tile_launch(
    tile: &TileDims,
    m: usize,
    n: usize,
    splits: usize,
    elem: usize,
    rows_arg: &'static str,
) -> Result<LaunchConfig> {
    let grid_y = u32::try_from(m.div_ceil(tile.bm as usize))
        .ok()
        .filter(|&y| y <= 65535)
        .ok_or_else(|| Error::invalid(rows_arg, format!("{m} rows; at most 65535·{} per call", tile.bm)))?;
    let grid_x = u32::try_from(n.div_ceil(tile.bn as usize))
        .map_err(|_| Error::invalid("shape.n", format!("{n} columns: too many column tiles")))?;
    Ok(LaunchConfig {
        grid: (grid_x, grid_y, splits as u32),
        block: (tile.threads, 1, 1),
        shared_mem_bytes: tile.stages * (tile.bm + tile.bn) * tile.bk * elem as u32,
    })
}

/// The kernel parameters of a shape (m, n, k as u32 counters).
fn shape_params(shape: GemmShape) -> Result<GemmParams> {
    Ok(GemmParams {
        m: dim32(shape.m, "shape.m")?,
        n: dim32(shape.n, "shape.n")?,
        k: dim32(shape.k, "shape.k")?,
        ..Default::default()
    })
}

/// `out = epilogue(x · wᵀ)`: see the module documentation for layouts and paths. `out` must
/// hold `m·n` elements (for [`GemmEpilogue::GatedResidual`], the residual). m = 0 or n = 0
/// launches nothing; k = 0 gives `epilogue(0)`.
pub fn linear_into<'a, 'o, T: FloatElement, O: LinearOutput<T>>(
    device: &Device,
    x: impl Into<BufferView<'a, T>>,
    w: impl Into<BufferView<'a, T>>,
    shape: GemmShape,
    epilogue: &GemmEpilogue<'a, T>,
    out: impl Into<BufferViewMut<'o, O>>,
    options: &GemmOptions,
) -> Result<()> {
    let (x, w, mut out) = (x.into(), w.into(), out.into());
    let GemmShape { m, n, k: kd } = shape;
    let mut p = shape_params(shape)?;
    let mn = m.checked_mul(n).ok_or_else(|| Error::invalid("shape", "m·n overflows"))?;
    check_len("x", x.len(), m.checked_mul(kd).ok_or_else(|| Error::invalid("shape", "m·k overflows"))?, "[m, k]")?;
    check_len("w", w.len(), n.checked_mul(kd).ok_or_else(|| Error::invalid("shape", "n·k overflows"))?, "[n, k]")?;
    check_len("out", out.len(), mn, "[m, n]")?;
    check_epilogue(epilogue, shape, &mut p)?;
    let plan = gemm_plan(T::DTYPE, shape, options)?;
    if mn == 0 {
        return Ok(());
    }
    if device.kind() == BackendKind::Cpu {
        return linear_cpu(&x, &w, shape, epilogue, &mut out);
    }
    let empty = x.view(0..0)?;
    let (bias, gate) = match *epilogue {
        GemmEpilogue::None => (empty, empty),
        GemmEpilogue::Bias(b) | GemmEpilogue::BiasGelu(b) | GemmEpilogue::BiasSilu(b) => (b, empty),
        GemmEpilogue::GatedResidual { bias, gate, .. } => (bias, gate),
    };
    let sel = EpiSel { epi: epilogue.kind(), tf32: plan.path == GemmPath::Tf32 };
    crate::device::emulator::hint_flops(2 * m as u64 * n as u64 * kd as u64);
    if !plan.skinny {
        let cfg = tile_launch(&DIRECT, m, n, 1, size_of::<T>(), "shape.m")?;
        return O::direct(device, &cfg, sel, x, w, bias, gate, out, p);
    }
    p.kt_per_split = plan.kt_per_split as u32;
    let cfg = tile_launch(&SKINNY, m, n, plan.splits, size_of::<T>(), "shape.m")?;
    let ws_len = plan.splits.checked_mul(mn).ok_or_else(|| Error::invalid("shape", "split-K workspace overflows"))?;
    let mut workspace = device.scratch_f32(ws_len)?;
    if sel.tf32 {
        gemm_tf32_skinny::<T>(device, &cfg, x, w, &mut workspace, p)?;
    } else {
        gemm_skinny::<T>(device, &cfg, x, w, &mut workspace, p)?;
    }
    let vecs = m * n.div_ceil(4);
    let cfg = LaunchConfig::for_items(vecs, k::REDUCE_THREADS as usize, k::REDUCE_THREADS, 0)?;
    O::reduce(device, &cfg, sel, workspace.as_view(), bias, gate, out, plan.splits as u32, p)?;
    // Stream order: the next GEMM that takes this workspace runs after this reduce.
    device.recycle_f32(workspace);
    Ok(())
}

/// The Cpu backend: the f64 reference, rounded once.
fn linear_cpu<T: FloatElement, O: FloatElement>(
    x: &BufferView<'_, T>,
    w: &BufferView<'_, T>,
    shape: GemmShape,
    epilogue: &GemmEpilogue<'_, T>,
    out: &mut BufferViewMut<'_, O>,
) -> Result<()> {
    let (xs, ws) = (host(x, "x")?, host(w, "w")?);
    let r = match *epilogue {
        GemmEpilogue::None => reference::Epilogue::None,
        GemmEpilogue::Bias(b) => reference::Epilogue::Bias(host(&b, "bias")?),
        GemmEpilogue::BiasGelu(b) => reference::Epilogue::BiasGelu(host(&b, "bias")?),
        GemmEpilogue::BiasSilu(b) => reference::Epilogue::BiasSilu(host(&b, "bias")?),
        GemmEpilogue::GatedResidual { bias, gate, gate_stride, tokens_per_sample } => reference::Epilogue::Gated {
            bias: host(&bias, "bias")?,
            gate: host(&gate, "gate")?,
            gate_stride,
            tokens_per_sample,
        },
    };
    reference::linear(xs, ws, shape.m, shape.n, shape.k, &r, host_mut(out, "out")?);
    Ok(())
}

/// Allocating form of [`linear_into`] (not for the in-place gated residual).
pub fn linear<'a, T: FloatElement, O: LinearOutput<T>>(
    device: &Device,
    x: impl Into<BufferView<'a, T>>,
    w: impl Into<BufferView<'a, T>>,
    shape: GemmShape,
    epilogue: &GemmEpilogue<'a, T>,
    options: &GemmOptions,
) -> Result<DeviceBuffer<O>> {
    if let GemmEpilogue::GatedResidual { .. } = epilogue {
        return Err(Error::invalid("epilogue", "the gated residual updates its output in place: use linear_into"));
    }
    let len = shape.m.checked_mul(shape.n).ok_or_else(|| Error::invalid("shape", "m·n overflows"))?;
    let mut out = DeviceBuffer::<O>::uninit(device, len)?;
    linear_into(device, x, w, shape, epilogue, &mut out, options)?;
    Ok(out)
}

/// The unfused baseline of [`linear_into`] (benchmarks): the plain GEMM, then the epilogue
/// as separate elementwise kernels — `+ bias`, then the activation; for the gated residual
/// the GEMM into a scratch buffer, `+ bias` on it, then `out += gate ⊙ scratch`. Same
/// results as the fused path up to the rounding of the intermediates (stored in T).
pub fn linear_unfused_into<'a, 'o, T: FloatElement + LinearOutput<T>>(
    device: &Device,
    x: impl Into<BufferView<'a, T>>,
    w: impl Into<BufferView<'a, T>>,
    shape: GemmShape,
    epilogue: &GemmEpilogue<'a, T>,
    out: impl Into<BufferViewMut<'o, T>>,
    options: &GemmOptions,
) -> Result<()> {
    let (x, w, mut out) = (x.into(), w.into(), out.into());
    let mut p = shape_params(shape)?;
    check_epilogue(epilogue, shape, &mut p)?;
    if device.kind() == BackendKind::Cpu || shape.m * shape.n == 0 {
        return linear_into(device, x, w, shape, epilogue, out, options);
    }
    let cfg = LaunchConfig::for_items(shape.m * shape.n, k::REDUCE_THREADS as usize, k::REDUCE_THREADS, 0)?;
    let bias_act = |dst: &mut BufferViewMut<'_, T>, bias: BufferView<'_, T>, act: Epi| -> Result<()> {
        gemm_unfused_bias::<T>(device, &cfg, dst.reborrow(), bias, p)?;
        match act {
            Epi::BiasGelu => gemm_unfused_gelu::<T>(device, &cfg, dst.reborrow(), p),
            Epi::BiasSilu => gemm_unfused_silu::<T>(device, &cfg, dst.reborrow(), p),
            _ => Ok(()),
        }
    };
    match *epilogue {
        GemmEpilogue::None => linear_into(device, x, w, shape, &GemmEpilogue::None, out, options),
        GemmEpilogue::Bias(b) | GemmEpilogue::BiasGelu(b) | GemmEpilogue::BiasSilu(b) => {
            linear_into(device, x, w, shape, &GemmEpilogue::None, out.reborrow(), options)?;
            bias_act(&mut out, b, epilogue.kind())
        }
        GemmEpilogue::GatedResidual { bias, gate, .. } => {
            let mut scratch = DeviceBuffer::<T>::uninit(device, shape.m * shape.n)?;
            linear_into(device, x, w, shape, &GemmEpilogue::None, &mut scratch, options)?;
            bias_act(&mut scratch.as_view_mut(), bias, Epi::Bias)?;
            gemm_unfused_gated::<T>(device, &cfg, out, gate, &scratch, p)
        }
    }
}

/// `x = silu(x)` in place, elementwise (the SiLU of the GEMM epilogue as its own kernel;
/// DiT applies it to the conditioning `c` before the modulation GEMM).
pub fn silu_in_place<'o, T: FloatElement>(device: &Device, x: impl Into<BufferViewMut<'o, T>>) -> Result<()> {
    let mut x = x.into();
    let n = x.len();
    if n == 0 {
        return Ok(());
    }
    if device.kind() == BackendKind::Cpu {
        for v in host_mut(&mut x, "x")?.iter_mut() {
            *v = T::from_f32(reference::silu(v.to_f32() as f64) as f32);
        }
        return Ok(());
    }
    let p = GemmParams { m: 1, n: dim32(n, "x")?, k: 0, ..Default::default() };
    let cfg = LaunchConfig::for_items(n, k::REDUCE_THREADS as usize, k::REDUCE_THREADS, 0)?;
    gemm_unfused_silu::<T>(device, &cfg, x, p)
}
