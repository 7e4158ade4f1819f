//! Command-line demos built on the kernels.

pub(crate) mod fsq_image;
pub(crate) mod vq_image;
