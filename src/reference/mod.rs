//! Plain-Rust CPU references, one file per kernel family, written for obviousness.
//! They are the `Cpu` backend and the oracle of every kernel test.

pub mod adaln;
pub mod attention;
pub mod binary_quant;
pub mod codebook;
pub mod embedding;
pub mod fsq;
pub mod gemm;
pub mod kl;
pub mod kmeans;
pub mod patchify;
