//! Command-line demos built on the kernels.

pub mod fsq_image;
