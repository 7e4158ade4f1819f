//! Typed launch wrappers, one file per kernel family (`kernels/<family>.cu`).

#[macro_use]
pub(crate) mod launch;

pub mod codebook;
pub mod fsq;
