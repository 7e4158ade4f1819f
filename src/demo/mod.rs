//! Command-line demos built on the kernels.

pub mod fsq_image;
pub mod vq_image;
