#![warn(missing_docs)]
//! tessera: hand-optimized CUDA kernels for image tokenizers and diffusion transformers.
//!
//! Every kernel runs on three backends (see [`BackendKind`]): a GPU through the CUDA
//! driver, the kernel emulator (the same kernel sources compiled for the host), and the
//! plain-Rust reference implementations. See README.md and docs/design.md for the layout.

pub mod baseline;
pub mod blocks;
mod device;
mod element;
mod error;
#[macro_use]
mod kernels;
pub mod profile;
pub mod reference;
pub mod tokens;
pub mod weights;

/// The emulator's self-test kernels (feature `selftest`, for the test suite only).
#[cfg(feature = "selftest")]
#[doc(hidden)]
pub mod selftest;
/// Self-tests of the emulator's checks (feature `selftest`, for the test suite only).
#[cfg(feature = "selftest")]
#[doc(hidden)]
pub mod selftest_checks;

pub use device::{BackendKind, BufferView, BufferViewMut, DType, Device, DeviceBuffer, Element, FloatElement};
pub use error::{Error, Result};
pub use kernels::adaln::{
    adaln_modulate, adaln_modulate_into, layer_norm, layer_norm_into, AdalnShape, Affine, Modulation, NormKernel,
    NormOptions, ADALN_DEFAULT_EPS, ADALN_MAX_DIM,
};
pub use kernels::attention::{
    attention_into, attention_unfused_into, attention_varlen_into, AttentionLayout, AttentionOptions, AttentionShape,
    HeadLayout, ATTENTION_HEAD_DIMS,
};
pub use kernels::binary_quant::{
    BinaryQuantKernel, BinaryQuantOp, BinaryQuantized, BinaryQuantizer, BINARY_QUANT_MAX_DIM,
    BINARY_QUANT_MAX_GROUP_BITS,
};
pub use kernels::codebook::{Codebook, Metric, SearchOptions, SearchPath, SearchPlan, VqOutput};
pub use kernels::embedding::{
    label_embedding, label_embedding_into, label_embedding_into_using, timestep_embedding, timestep_embedding_into,
    timestep_embedding_shifted_into, timestep_mlp_into, LabelEmbeddingKernel, TimestepMlp, DEFAULT_MAX_PERIOD,
};
pub use kernels::fsq::{Fsq, FsqDequantized, FsqKernel, FsqQuantized, FSQ_MAX_DIM, FSQ_MAX_THRESHOLDS};
pub use kernels::gemm::{
    gemm_plan, linear, linear_into, linear_unfused_into, silu_in_place, GemmEpilogue, GemmOptions, GemmPath, GemmPlan,
    GemmShape, LinearOutput, SplitK,
};
pub use kernels::kl::{kl_sample, kl_sample_into, KlMode};
pub use kernels::kmeans::{
    fit_codebook, update_centroids, CentroidKernel, CentroidUpdate, KmeansOptions, KmeansProgress,
};
pub use kernels::patchify::{
    add_position_embedding, patchify_image, patchify_image_into, patchify_latents, patchify_latents_into,
    patchify_unfused_into, sincos_pos_embed_2d, unpatchify_image_into, unpatchify_latents_into, ImageNorm, PatchInput,
    PatchShape,
};
pub use kernels::residual_vq::{ResidualVq, ResidualVqOutput};

/// Facts about the CUDA side of this build and host, for `tessera doctor`.
pub mod cuda {
    pub use crate::device::cuda::{compiled_kernel_files, probe, CudaProbe, KERNELS_COMPILED};
}

/// Facts about the kernel emulator.
pub mod emulator {
    pub use crate::device::emulator::{
        checks_enabled, profile, sanitizer_enabled, with_arch, LaunchRecord, ProfileCounters,
    };
}
