//! Typed launch wrappers, one file per kernel family (`kernels/<family>.cu`).

#[macro_use]
pub(crate) mod launch;

pub(crate) mod checks;
pub(crate) mod constants;

pub mod adaln;
pub mod attention;
mod attention_f32;
pub mod binary_quant;
pub mod codebook;
pub mod embedding;
pub mod fsq;
mod fsq_thresholds;
pub mod gemm;
pub mod kl;
pub mod kmeans;
pub mod patchify;
pub(crate) mod radix_sort;
pub mod residual_vq;
