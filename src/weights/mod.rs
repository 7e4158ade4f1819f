//! Model weights from safetensors checkpoints, by the names PyTorch writes them.
//!
//! A checkpoint is read into a [`Checkpoint`]: every tensor converted to an f32 host copy
//! ([`HostTensor`]; f32, f16 and bf16 files), each taken once by name with the shape the
//! model expects. The model loaders ([`DitWeights::from_checkpoint`] with diffusers'
//! `config.json`, [`DitWeights::from_checkpoint_with`], [`VitWeights::from_checkpoint`],
//! [`TokenizerWeights::from_checkpoint`] for tessera's ViT tokenizer file) read
//! the configuration from the tensors' shapes, take every tensor they need and fail on any
//! they did not take. Every failure is typed: `Error::MissingTensor`,
//! `Error::UnexpectedTensor`, `Error::TensorShape`, `Error::TensorDtype`, `Error::Checkpoint`
//! (a truncated or corrupt file), `Error::Config` (a configuration the shapes contradict).
//! The blocks
//! (`crate::blocks`) convert the host copies to the compute dtype when they upload them.
//!
//! Layouts are PyTorch's: an `nn.Linear` weight is `[out, in]` (the GEMM's `W [n, k]`), a
//! patch-embedding convolution `[D, C, p, p]`.

mod checkpoint;
mod dit;
mod tokenizer;
mod vit;

pub use checkpoint::{Checkpoint, HostTensor};
pub use dit::{DitBlockWeights, DitConfig, DitWeights};
pub use tokenizer::{
    BottleneckWeights, TokenizerWeights, BOTTLENECK_KINDS, DEFAULT_GROUP_BITS, DEFAULT_IMAGE_NORM, TOKENIZER_FORMAT,
    TOKENIZER_FORMAT_KEY,
};
pub use vit::{VitBlockWeights, VitConfig, VitWeights};
