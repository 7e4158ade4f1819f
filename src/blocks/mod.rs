//! The blocks of an image tokenizer and of a diffusion transformer, built from tessera's
//! public kernel API: the pre-LN ViT block, the tokenizer's ViT encoder and decoder
//! ([`VitBlock`], [`VitEncoder`], [`VitDecoder`]), the whole image tokenizer
//! ([`VitTokenizer`]: encoder → [`Bottleneck`] → decoder) and diffusers' DiT with adaLN-Zero
//! ([`DitBlock`], [`Dit`]).
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
//! ```no_run
//! use half::bf16;
//! use tessera::blocks::{Dit, DitInputs};
//! use tessera::weights::{Checkpoint, DitWeights};
//! use tessera::Device;
//!
//! let device = Device::best();
//! // A diffusers DiTTransformer2DModel: its safetensors file and config.json.
//! let config = std::fs::read_to_string("dit/config.json").expect("config.json");
//! let weights = DitWeights::from_checkpoint(Checkpoint::open("dit/diffusion_pytorch_model.safetensors")?, Some(&config))?;
//! let model = Dit::<bf16>::load(&device, &weights)?;
//! let (batch, c) = (2, model.config().clone());
//! let mut ws = model.workspace(&device, batch)?;      // sized once, reused by every forward
//! let latents = device.zeros::<bf16>(batch * c.in_channels * c.sample_size * c.sample_size)?;
//! let timesteps = device.upload(&[999.0f32, 999.0])?;
//! let labels = device.upload(&[207u32, c.num_classes as u32])?; // a class and the null class (CFG)
//! let inputs = DitInputs { latents: latents.as_view(), timesteps: timesteps.as_view(), labels: labels.as_view() };
//! let mut tokens = device.zeros::<bf16>(batch * model.tokens() * c.dim)?;
//! let mut out = device.zeros::<bf16>(batch * c.out_channels * c.sample_size * c.sample_size)?;
//! model.forward(&device, &inputs, &mut ws, &mut tokens, &mut out)?; // [B, out_channels, H, W]
//! # Ok::<(), tessera::Error>(())
//! ```
//!
//! Compute dtypes: f16 and bf16 (tensor cores) and f32 (CUDA cores, exact f32 products)
//! on every backend.

mod bottleneck;
mod decoder;
mod dit;
mod layers;
mod tokenizer;
mod upload;
mod vit;
mod workspace;

pub use bottleneck::{Bottleneck, Bottlenecked, KlBottleneck, VqBottleneck};
pub use decoder::{VitDecoder, VitDecoderConfig, VitDecoderWeights};
pub use dit::{Dit, DitBlock, DitInputs};
pub use tokenizer::{TokenizerWorkspace, VitTokenizer};
pub use vit::{VitBlock, VitEncoder};
pub use workspace::{Fusion, TokenShape, Workspace};
