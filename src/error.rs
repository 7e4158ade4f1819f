//! The one error type of the crate. Every bad argument names the argument.

use crate::device::kind::BackendKind;
use crate::element::DType;

/// Everything a tessera call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A token file that cannot be read or written ([`crate::tokens`]).
    #[error(transparent)]
    TokenFile(#[from] crate::tokens::TokenFileError),

    /// An argument is out of its documented range or inconsistent with another.
    #[error("invalid argument `{arg}`: {reason}")]
    InvalidArgument {
        /// The argument's name, as in the documentation.
        arg: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A buffer does not hold the number of elements the call needs.
    #[error("buffer `{arg}` has {actual} elements, expected {expected}")]
    LengthMismatch {
        /// The buffer argument's name.
        arg: &'static str,
        /// Elements the call needs.
        expected: usize,
        /// Elements the buffer (or view) has.
        actual: usize,
    },

    /// A buffer belongs to another device than the one the call runs on.
    #[error("buffer `{arg}` lives on device {buffer_device}, but the call runs on device {device}")]
    WrongDevice {
        /// The buffer argument's name.
        arg: &'static str,
        /// The device the buffer lives on ([`crate::Device::name`]).
        buffer_device: String,
        /// The device the call runs on.
        device: String,
    },

    /// The input of op `op` holds a value for which it has no defined result: the first
    /// such row of argument `arg`. On Cuda and Emulator this is found by the kernel and
    /// reported at the next synchronizing call (a download or `Device::synchronize`); on
    /// Cpu by the call itself.
    #[error("{op}: `{arg}` row {row}: {reason}")]
    InvalidValue {
        /// The op whose input it was (`Fsq::quantize`, `Codebook::quantize`, ...).
        op: &'static str,
        /// The argument holding the value.
        arg: &'static str,
        /// The first row (latent, entry, index) with such a value.
        row: usize,
        /// Why it has no result.
        reason: &'static str,
    },

    /// The kernel exists, but not for this element type.
    #[error("kernel `{kernel}` is not compiled for dtype {dtype:?}")]
    UnsupportedDtype {
        /// The kernel's base name.
        kernel: &'static str,
        /// The element type asked for.
        dtype: DType,
    },

    /// The backend cannot run this operation.
    #[error("{op} is not available on the {backend:?} backend: {reason}")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// The backend that cannot run it.
        backend: BackendKind,
        /// Why.
        reason: String,
    },

    /// No usable CUDA driver or GPU, or the kernels were not compiled for the GPU.
    #[error("CUDA backend unavailable: {0}")]
    CudaUnavailable(String),

    /// An error reported by the CUDA driver.
    #[error("CUDA driver error in {context}: {message}")]
    Driver {
        /// What tessera was doing.
        context: String,
        /// The driver's error.
        message: String,
    },

    /// The emulator stopped a kernel: deadlock, warp-collective misuse, sanitizer report.
    #[error("emulator: {0}")]
    Emulator(String),

    /// A model loader asked a checkpoint for a tensor it does not hold.
    #[error("checkpoint has no tensor `{name}`")]
    MissingTensor {
        /// The tensor's name, as PyTorch writes it (`blocks.0.attn.qkv.weight`).
        name: String,
    },

    /// A checkpoint holds tensors the model loader did not take: the first in sorted order.
    #[error("checkpoint tensor `{name}` is not a parameter of the model ({others} other unused tensors)")]
    UnexpectedTensor {
        /// The first unused tensor's name, in sorted order.
        name: String,
        /// How many other tensors were not used.
        others: usize,
    },

    /// A checkpoint tensor does not have the shape the model needs.
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        /// The tensor's name.
        name: String,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// The shape in the checkpoint.
        actual: Vec<usize>,
    },

    /// A checkpoint tensor's element type is not one the loader converts (F32, F16, BF16).
    #[error("tensor `{name}` has dtype {dtype}; only F32, F16 and BF16 tensors are read")]
    TensorDtype {
        /// The tensor's name.
        name: String,
        /// The dtype as the file names it (`I64`, `F64`, ...).
        dtype: String,
    },

    /// A checkpoint file is unreadable, truncated or corrupt (header length, header JSON,
    /// offsets, data length).
    #[error("bad checkpoint: {reason}")]
    Checkpoint {
        /// What is wrong, with the file's path when it was opened from one.
        reason: String,
    },

    /// A model's configuration is missing, or inconsistent with itself or with the
    /// checkpoint's tensor shapes.
    #[error("model configuration `{field}`: {reason}")]
    Config {
        /// The configuration field (`num_layers`, `sample_size`, ...) or `config.json`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(arg: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { arg, reason: reason.into() }
    }

    pub(crate) fn driver(context: impl Into<String>, err: impl std::fmt::Debug) -> Self {
        Error::Driver { context: context.into(), message: format!("{err:?}") }
    }
}
