//! The blocks of an image tokenizer and of a diffusion transformer, built from tessera's
//! public kernel API: the pre-LN ViT block, the tokenizer's ViT encoder and decoder
//! ([`VitBlock`], [`VitEncoder`], [`VitDecoder`]) and diffusers' DiT with adaLN-Zero ([`DitBlock`], [`Dit`]).
//!
//! Weights come from [`crate::weights`] (PyTorch's names and layouts) and are converted to
//! the compute dtype `T` once, at load. Every forward takes a workspace ([`Workspace`])
//! sized for one (model, batch, resolution) and writes nothing else: the activations of
//! one block are reused by the next. Forwards enqueue kernels only (no host
//! synchronization); download the output or call [`crate::Device::synchronize`] to wait.
//!
//! Layouts: tokens `[B, T, D]` row-major; images u8 `[B, H, W, C]` (NHWC); latents
//! `[B, C, H, W]` (NCHW).
//!
//! Attention runs the fused kernel, which exists for f16 and bf16 (and on the Cpu
//! backend, the f64 reference, for f32 as well): an f32 model runs on the Cpu backend.

mod bottleneck;
mod decoder;
mod dit;
mod layers;
mod upload;
mod vit;
mod workspace;

pub use bottleneck::{Bottleneck, Bottlenecked, VqBottleneck};
pub use decoder::{VitDecoder, VitDecoderConfig, VitDecoderWeights};
pub use dit::{Dit, DitBlock, DitInputs};
pub use vit::{VitBlock, VitEncoder};
pub use workspace::{Fusion, TokenShape, Workspace};
