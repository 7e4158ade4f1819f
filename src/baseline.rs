//! NVIDIA's cuBLASLt as a baseline for [`linear_into`](crate::linear_into), for the GEMM
//! benchmark (benches/gemm.rs): the vendor library's GEMM with its own fused epilogues, on
//! the same device stream as tessera's kernels.
//!
//! libcublasLt is loaded at run time, on the first call on a Cuda device; a build or a
//! host without it works as before, and a call without it returns
//! [`Error::Unsupported`] instead of panicking. GPU only: the Emulator and Cpu backends
//! return [`Error::Unsupported`] too.

use crate::device::cuda::CudaBackend;
use crate::device::{Backend, BackendKind, BufferView, BufferViewMut, Device, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::gemm::{check_len, GemmEpilogue, GemmShape};
use crate::kernels::launch::cuda_storage_missing;
use cudarc::cublaslt::result::CublasError;
use cudarc::cublaslt::{Activation, CudaBlasLT, Matmul, MatmulConfig};
use cudarc::driver::{CudaView, CudaViewMut};

const OP: &str = "cublaslt_linear_into";

/// Byte alignment every operand must start at: cudarc asks cuBLASLt's heuristic for an
/// algorithm without lowering its alignment preferences, whose default is 256 bytes.
pub const CUBLASLT_ALIGN: usize = 256;

/// The element types [`cublaslt_linear_into`] takes: `f16`, `bf16` (f32 accumulation), and
/// `f32` (cudarc asks for `CUBLAS_COMPUTE_32F_FAST_TF32`: TF32 tensor cores, comparable
/// to [`GemmPath::Tf32`](crate::GemmPath::Tf32), not to the exact f32 SIMT path). Sealed.
pub trait CublasLtElement: FloatElement + sealed::Sealed {}

mod sealed {
    use super::*;

    /// The cudarc matmul of one element type.
    pub trait Sealed: Sized {
        /// # Safety
        /// As [`Matmul::matmul`]: `cfg` must describe the views' extents.
        unsafe fn matmul<'v>(
            blas: &CudaBlasLT,
            cfg: MatmulConfig,
            a: &CudaView<'v, Self>,
            b: &CudaView<'v, Self>,
            c: &mut CudaViewMut<'_, Self>,
            bias: Option<&CudaView<'v, Self>>,
            act: Option<&Activation>,
        ) -> std::result::Result<(), CublasError>;
    }
}

macro_rules! cublaslt_element {
    ($($t:ty),*) => {$(
        impl CublasLtElement for $t {}
        impl sealed::Sealed for $t {
            unsafe fn matmul<'v>(
                blas: &CudaBlasLT,
                cfg: MatmulConfig,
                a: &CudaView<'v, Self>,
                b: &CudaView<'v, Self>,
                c: &mut CudaViewMut<'_, Self>,
                bias: Option<&CudaView<'v, Self>>,
                act: Option<&Activation>,
            ) -> std::result::Result<(), CublasError> {
                // SAFETY: the caller's contract.
                unsafe { <CudaBlasLT as Matmul<$t>>::matmul(blas, cfg, a, b, c, bias, act) }
            }
        }
    )*};
}
cublaslt_element!(f32, half::f16, half::bf16);

/// `out = epilogue(x · wᵀ)` computed by cuBLASLt: the same layouts and results (up to
/// rounding and summation order) as [`linear_into`](crate::linear_into) for the epilogues
/// cuBLASLt has.
///
/// - `x`: `[m, k]` row-major; `w`: `[n, k]` row-major (PyTorch's `nn.Linear.weight`);
///   `out`: `[m, n]` row-major, the input type, overwritten. Lengths in elements. In
///   cuBLASLt's column-major terms this is `outᵀ (n×m, ld n) = wᵀ·xᵀ` with `w` seen as
///   `k×n` (ld k) transposed and `x` as `k×m` (ld k).
/// - `epilogue`: [`GemmEpilogue::None`] (`CUBLASLT_EPILOGUE_DEFAULT`),
///   [`GemmEpilogue::Bias`] (`CUBLASLT_EPILOGUE_BIAS`, bias `[n]`: one value per output
///   feature), [`GemmEpilogue::BiasGelu`] (`CUBLASLT_EPILOGUE_GELU_BIAS`, the tanh
///   approximation, as tessera's). cuBLASLt has no SiLU and no gated-residual epilogue:
///   [`GemmEpilogue::BiasSilu`] and [`GemmEpilogue::GatedResidual`] are an
///   [`Error::InvalidArgument`] naming `epilogue`. (tessera's elementwise gated-residual
///   kernel is not public, so the benchmark times cuBLASLt with [`GemmEpilogue::Bias`] at
///   the gated shapes: less work than the gated residual, which also reads the residual
///   and the gates.)
/// - Work is queued on the device's stream, in order with tessera's kernels; the call does
///   not wait for it. The device's cuBLASLt handle (with its workspace: 32 MiB on Hopper,
///   4 MiB before) is made on the first call and kept with the device.
/// - m = 0 or n = 0 does nothing.
///
/// Errors: [`Error::InvalidArgument`] naming `x`, `w`, `out` or `bias` for a wrong length
/// or a view that does not start [`CUBLASLT_ALIGN`]-byte aligned, `shape.k` for k = 0,
/// `shape` for an overflowing size, `epilogue` as above; [`Error::WrongDevice`] for a
/// buffer of another device; [`Error::Unsupported`] on the Emulator and Cpu backends and on
/// a Cuda device when libcublasLt cannot be loaded; [`Error::Driver`] when cuBLASLt fails
/// (handle creation, no algorithm for the shape, the matmul itself).
pub fn cublaslt_linear_into<'a, 'o, T: CublasLtElement>(
    device: &Device,
    x: impl Into<BufferView<'a, T>>,
    w: impl Into<BufferView<'a, T>>,
    shape: GemmShape,
    epilogue: &GemmEpilogue<'a, T>,
    out: impl Into<BufferViewMut<'o, T>>,
) -> Result<()> {
    let (x, w, mut out) = (x.into(), w.into(), out.into());
    let GemmShape { m, n, k } = shape;
    let (bias, act) = match *epilogue {
        GemmEpilogue::None => (None, None),
        GemmEpilogue::Bias(b) => (Some(b), None),
        GemmEpilogue::BiasGelu(b) => (Some(b), Some(Activation::Gelu)),
        GemmEpilogue::BiasSilu(_) => {
            return Err(Error::invalid("epilogue", "BiasSilu: cuBLASLt has no SiLU epilogue"));
        }
        GemmEpilogue::GatedResidual { .. } => {
            return Err(Error::invalid("epilogue", "GatedResidual: cuBLASLt has no gated-residual epilogue"));
        }
    };
    let overflow = |what: &str| Error::invalid("shape", format!("{what} overflows"));
    let mn = m.checked_mul(n).ok_or_else(|| overflow("m·n"))?;
    check_len("x", x.len(), m.checked_mul(k).ok_or_else(|| overflow("m·k"))?, "[m, k]")?;
    check_len("w", w.len(), n.checked_mul(k).ok_or_else(|| overflow("n·k"))?, "[n, k]")?;
    check_len("out", out.len(), mn, "[m, n]")?;
    if let Some(b) = &bias {
        check_len("bias", b.len(), n, "[n]")?;
    }
    if k == 0 {
        return Err(Error::invalid("shape.k", "0; cuBLASLt needs k ≥ 1"));
    }
    device.check_same("x", x.device())?;
    device.check_same("w", w.device())?;
    device.check_same("out", out.device())?;
    if let Some(b) = &bias {
        device.check_same("bias", b.device())?;
    }
    let cuda = match device.backend() {
        Backend::Cuda(c) => c,
        Backend::Emulator | Backend::Cpu => {
            return Err(Error::Unsupported {
                op: OP,
                backend: device.kind(),
                reason: "cuBLASLt runs on a GPU only; compare against linear_unfused_into here".into(),
            });
        }
    };
    if mn == 0 {
        return Ok(());
    }
    let aligned = |arg: &'static str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(arg, format!("view does not start {CUBLASLT_ALIGN}-byte aligned (cuBLASLt baseline)")))
        }
    };
    aligned("x", x.is_aligned(CUBLASLT_ALIGN))?;
    aligned("w", w.is_aligned(CUBLASLT_ALIGN))?;
    aligned("out", out.is_aligned(CUBLASLT_ALIGN))?;
    if let Some(b) = &bias {
        aligned("bias", b.is_aligned(CUBLASLT_ALIGN))?;
    }
    let dim = |v: usize| i64::try_from(v).map_err(|_| overflow("a dimension"));
    let cfg = MatmulConfig {
        transa: true,
        transb: false,
        transc: false,
        m: n as u64,
        n: m as u64,
        k: k as u64,
        alpha: 1.0,
        lda: dim(k)?,
        ldb: dim(k)?,
        beta: 0.0,
        ldc: dim(n)?,
        stride_a: None,
        stride_b: None,
        stride_c: None,
        stride_bias: None,
        batch_size: None,
    };
    let blas = handle(cuda)?;
    let xv = x.cuda_view().ok_or_else(|| cuda_storage_missing("x"))?;
    let wv = w.cuda_view().ok_or_else(|| cuda_storage_missing("w"))?;
    let bv = match &bias {
        Some(b) => Some(b.cuda_view().ok_or_else(|| cuda_storage_missing("bias"))?),
        None => None,
    };
    let mut ov = out.cuda_view_mut().ok_or_else(|| cuda_storage_missing("out"))?;
    // cudarc's matmul calls cuBLASLt directly, which runs in the thread's current context.
    cuda.stream().context().bind_to_thread().map_err(|e| Error::driver("binding the CUDA context", e))?;
    // SAFETY: `cfg` describes exactly the checked extents: w is k×n (ld k), x is k×m
    // (ld k), out is n×m (ld n), bias has n elements; all views live on this device's
    // stream and outlive the queued work (cudarc records their use on the stream).
    unsafe { T::matmul(blas, cfg, &wv, &xv, &mut ov, bv.as_ref(), act.as_ref()) }
        .map_err(|e| Error::driver("cublasLtMatmul", e))
}

/// The device's cuBLASLt handle, made (and kept) on first use. Checks that libcublasLt
/// loads before touching it: cudarc panics when a symbol's library is missing.
fn handle(cuda: &CudaBackend) -> Result<&CudaBlasLT> {
    let cell = cuda.cublaslt();
    if let Some(h) = cell.get() {
        return Ok(h);
    }
    // SAFETY: only tries to dlopen libcublasLt (and closes it again).
    if !unsafe { cudarc::cublaslt::sys::is_culib_present() } {
        return Err(Error::Unsupported {
            op: OP,
            backend: BackendKind::Cuda,
            reason: "libcublasLt could not be loaded (not installed, or not on LD_LIBRARY_PATH)".into(),
        });
    }
    let stream = cuda.stream().clone();
    // CudaBlasLT::new unwraps its workspace allocation: a failure there is a panic.
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| CudaBlasLT::new(stream)))
        .map_err(|_| Error::driver("creating the cuBLASLt handle", "panicked (allocating its workspace failed)"))?
        .map_err(|e| Error::driver("cublasLtCreate", e))?;
    // Another thread may have made one meanwhile: keep the first, drop ours.
    Ok(cell.get_or_init(|| Box::new(made)))
}
