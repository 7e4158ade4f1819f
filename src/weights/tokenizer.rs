//! A ViT image tokenizer in one safetensors file: a ViT encoder (timm's names) → a
//! bottleneck → a ViT decoder, with the settings no tensor shape holds in the file's
//! `__metadata__`. The layout that `tessera tokenize --tokenizer FILE.safetensors` reads.
//!
//! [`TokenizerWeights::from_checkpoint`] reads it (every tensor must be used, every shape
//! agrees with the others); [`TokenizerWeights::to_safetensors_bytes`] writes it (F32
//! tensors), so that converted or synthetic tokenizers need no Python. Upload with
//! [`crate::blocks::VitTokenizer::load`].
//!
//! # Metadata (`__metadata__`, strings)
//!
//! | key | value | required |
//! |---|---|---|
//! | `tessera.tokenizer` | `vit` | yes |
//! | `bottleneck` | `fsq`, `vq`, `vq-cosine`, `lfq`, `bsq`, `residual-vq` or `kl` | yes |
//! | `encoder.heads` | the encoder's attention heads (dividing its D) | yes |
//! | `decoder.heads` | the decoder's attention heads (dividing its D) | yes |
//! | `fsq.levels` | FSQ levels, comma-separated, e.g. `8,5,5,5` | with `fsq` only |
//! | `group_bits` | bits per id (1 to 31); default `min(d, 16)` | optional, `lfq`/`bsq` only |
//! | `kl.mode` | `mean` (default) or `sample` | optional, `kl` only |
//! | `kl.seed` | the sample's seed (u64, default 0) | optional, `kl` with `sample` only |
//! | `image.mean`, `image.std` | per channel, comma-separated, in units of [0, 1]: the encoder reads `(v/255 − mean)/std`, the decoder writes `(x·std + mean)·255`; default `0.5,0.5,0.5` each (pixels in [−1, 1]) | optional |
//! | `grid` | token rows, columns: `rows,cols`; default square (√T) | optional (needed when T is not a square) |
//!
//! A key of this table given for another bottleneck (`fsq.levels` with `vq`, ...) is
//! `Error::Config` naming it. Other keys are ignored (but enter the hash).
//!
//! # Tensors
//!
//! D<sub>e</sub>, D<sub>d</sub>: the encoder's and decoder's widths; p the patch; T the
//! tokens (= rows·cols); C = 3 channels; h<sub>e</sub>, h<sub>d</sub> the MLP widths;
//! `in` / `out` the bottleneck's input and output widths (table below).
//!
//! | tensor | shape |
//! |---|---|
//! | `encoder.patch_embed.proj.{weight,bias}` | `[De, 3, p, p]`, `[De]` |
//! | `encoder.pos_embed` | `[1, T, De]` |
//! | `encoder.blocks.N.*` (timm's block names, N = 0, 1, ...) | see [`VitBlockWeights`] |
//! | `encoder.norm.{weight,bias}` | `[De]` |
//! | `encoder.head.{weight,bias}` | `[in, De]`, `[in]` |
//! | `quantizer.codebook` (`vq`, `vq-cosine`) | `[K, d]` |
//! | `quantizer.stages.N.codebook` (`residual-vq`, N = 0, 1, ...) | `[K_N, d]` |
//! | `decoder.embed.{weight,bias}` | `[Dd, out]`, `[Dd]` |
//! | `decoder.pos_embed` | `[1, T, Dd]` |
//! | `decoder.blocks.N.*` (the same block names) | see [`VitBlockWeights`] |
//! | `decoder.norm.{weight,bias}` | `[Dd]` |
//! | `decoder.head.{weight,bias}` | `[p·p·3, Dd]`, `[p·p·3]`; row `(i·p + j)·3 + c` is pixel (i, j) of channel c |
//!
//! The `encoder.` tensors are exactly what [`VitWeights::from_checkpoint`] reads (timm's
//! `VisionTransformer(class_token=False, global_pool='')` state dict, here with the head
//! required). Block names: `norm1.{weight,bias}`, `attn.qkv.{weight,bias}`,
//! `attn.proj.{weight,bias}`, `norm2.{weight,bias}`, `mlp.fc1.{weight,bias}`,
//! `mlp.fc2.{weight,bias}`.
//!
//! # Bottlenecks
//!
//! | `bottleneck` | in | out | ids per token | vocabulary | tensors |
//! |---|---|---|---|---|---|
//! | `fsq` | the number of levels | the same | 1 | Π levels | none |
//! | `vq` (squared L2), `vq-cosine` | d | d | 1 | K | `quantizer.codebook` |
//! | `lfq` (±1), `bsq` (±1/√d) | d | d | ⌈d / group_bits⌉ | 2^group_bits | none |
//! | `residual-vq` (squared L2) | d | d | stages | max K_N | `quantizer.stages.N.codebook` |
//! | `kl` | 2C (mean, logvar) | C | 0 (continuous) | none | none |
//!
//! For `fsq` and the codebooks the width comes from the bottleneck (the levels, the
//! codebook's d) and `encoder.head.weight` must match it; for `lfq`, `bsq` and `kl` it is
//! the encoder head's output width. `decoder.embed.weight` must read `out`.
//!
//! # Errors
//!
//! A missing or malformed metadata key, an unknown bottleneck, or settings that contradict
//! the shapes are `Error::Config` naming the key (or the tensor); a missing tensor
//! `Error::MissingTensor`, a tensor no part of the model reads `Error::UnexpectedTensor`, a
//! shape that disagrees with the others `Error::TensorShape` — each with the tensor's full
//! name (`encoder.blocks.0.attn.qkv.weight`).
//!
//! # Identity
//!
//! [`TokenizerWeights::hash`] is [`Checkpoint::parameter_hash`] of the file as read (every
//! tensor and every metadata entry): a token file records it, so that detokenizing with
//! another tokenizer is a clear error.

use std::collections::BTreeMap;

use super::{Checkpoint, HostTensor, VitBlockWeights, VitConfig, VitWeights};
use crate::blocks::{VitDecoderConfig, VitDecoderWeights};
use crate::error::{Error, Result};
use crate::kernels::binary_quant::{BinaryQuantOp, BinaryQuantizer};
use crate::kernels::fsq::Fsq;
use crate::kernels::kl::KlMode;

/// The metadata key naming the file's format, and its value.
pub const TOKENIZER_FORMAT_KEY: &str = "tessera.tokenizer";
/// See [`TOKENIZER_FORMAT_KEY`].
pub const TOKENIZER_FORMAT: &str = "vit";
/// The `bottleneck` values, in the order of the module's table.
pub const BOTTLENECK_KINDS: [&str; 7] = ["fsq", "vq", "vq-cosine", "lfq", "bsq", "residual-vq", "kl"];
/// `image.mean` and `image.std` when not given: pixels in [−1, 1].
pub const DEFAULT_IMAGE_NORM: f32 = 0.5;
/// Bits per id of LFQ/BSQ when `group_bits` is not given (at most this, at most d).
pub const DEFAULT_GROUP_BITS: u32 = 16;

/// Keys that belong to one bottleneck only.
const BOTTLENECK_KEYS: [(&str, &[&str]); 4] =
    [("fsq.levels", &["fsq"]), ("group_bits", &["lfq", "bsq"]), ("kl.mode", &["kl"]), ("kl.seed", &["kl"])];

/// A bottleneck's parameters, host side.
#[derive(Clone, Debug, PartialEq)]
pub enum BottleneckWeights {
    /// Finite scalar quantization with these levels (one per latent channel).
    Fsq {
        /// The levels.
        levels: Vec<u32>,
    },
    /// Nearest entry by squared L2: `codebook [K, d]`.
    Vq {
        /// `quantizer.codebook`.
        codebook: HostTensor,
    },
    /// Nearest entry by cosine (the entries and latents l2-normalized): `codebook [K, d]`.
    VqCosine {
        /// `quantizer.codebook`.
        codebook: HostTensor,
    },
    /// Lookup-free quantization: the sign of each of `dim` channels, ids of `group_bits`.
    Lfq {
        /// Channels.
        dim: usize,
        /// Bits per id.
        group_bits: u32,
    },
    /// Binary spherical quantization: LFQ of the l2-normalized latent, values ±1/√d.
    Bsq {
        /// Channels.
        dim: usize,
        /// Bits per id.
        group_bits: u32,
    },
    /// Residual VQ (squared L2), one codebook `[K_s, d]` per stage.
    ResidualVq {
        /// `quantizer.stages.N.codebook`, in order.
        stages: Vec<HostTensor>,
    },
    /// The KL bottleneck: `[2C]` (mean, logvar) → `[C]`.
    Kl {
        /// C.
        channels: usize,
        /// The mean or a seeded sample.
        mode: KlMode,
    },
}

impl BottleneckWeights {
    /// Its `bottleneck` metadata value.
    pub fn name(&self) -> &'static str {
        match self {
            BottleneckWeights::Fsq { .. } => "fsq",
            BottleneckWeights::Vq { .. } => "vq",
            BottleneckWeights::VqCosine { .. } => "vq-cosine",
            BottleneckWeights::Lfq { .. } => "lfq",
            BottleneckWeights::Bsq { .. } => "bsq",
            BottleneckWeights::ResidualVq { .. } => "residual-vq",
            BottleneckWeights::Kl { .. } => "kl",
        }
    }

    /// The width of the latents it reads (the encoder head's output).
    pub fn in_dim(&self) -> usize {
        match self {
            BottleneckWeights::Kl { channels, .. } => 2 * channels,
            other => other.out_dim(),
        }
    }

    /// The width of the values it gives the decoder.
    pub fn out_dim(&self) -> usize {
        match self {
            BottleneckWeights::Fsq { levels } => levels.len(),
            BottleneckWeights::Vq { codebook } | BottleneckWeights::VqCosine { codebook } => codebook_dim(codebook),
            BottleneckWeights::ResidualVq { stages } => stages.first().map_or(0, codebook_dim),
            BottleneckWeights::Lfq { dim, .. } | BottleneckWeights::Bsq { dim, .. } => *dim,
            BottleneckWeights::Kl { channels, .. } => *channels,
        }
    }
}

fn codebook_dim(codebook: &HostTensor) -> usize {
    codebook.shape.get(1).copied().unwrap_or(0)
}

/// A whole ViT tokenizer, host side (see the module documentation for the file layout).
#[derive(Clone, Debug)]
pub struct TokenizerWeights {
    /// The encoder, with its head (D → the bottleneck's input width).
    pub encoder: VitWeights,
    /// The bottleneck.
    pub bottleneck: BottleneckWeights,
    /// The decoder (its grid and patch are the encoder's, 3 channels).
    pub decoder: VitDecoderWeights,
    /// Per-channel mean of the image normalization, in units of [0, 1].
    pub image_mean: Vec<f32>,
    /// Per-channel standard deviation, in units of [0, 1].
    pub image_std: Vec<f32>,
    /// [`Checkpoint::parameter_hash`] of the file it was read from (0 or anything for
    /// weights built in memory; the writer does not store it).
    pub hash: u64,
}

/// `e` from a loader that read tensors without `prefix`, naming them with it.
fn under(prefix: &str, e: Error) -> Error {
    match e {
        Error::MissingTensor { name } => Error::MissingTensor { name: format!("{prefix}{name}") },
        Error::UnexpectedTensor { name, others } => Error::UnexpectedTensor { name: format!("{prefix}{name}"), others },
        Error::TensorShape { name, expected, actual } => {
            Error::TensorShape { name: format!("{prefix}{name}"), expected, actual }
        }
        Error::TensorDtype { name, dtype } => Error::TensorDtype { name: format!("{prefix}{name}"), dtype },
        // VitWeights names the heads timm's way; here they come from `{prefix}heads`.
        Error::Config { field, reason } if field == "num_heads" => {
            Error::Config { field: format!("{prefix}heads"), reason }
        }
        Error::Config { field, reason } => Error::Config { field: format!("{prefix}{field}"), reason },
        other => other,
    }
}

fn config(field: &str, reason: impl Into<String>) -> Error {
    Error::Config { field: field.to_string(), reason: reason.into() }
}

/// The metadata, read key by key.
struct Meta<'a>(&'a BTreeMap<String, String>);

impl Meta<'_> {
    fn required(&self, key: &str) -> Result<&str> {
        self.0.get(key).map(|v| v.trim()).ok_or_else(|| config(key, "missing metadata key"))
    }

    fn optional(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim())
    }

    fn count(&self, key: &str) -> Result<usize> {
        let v = self.required(key)?;
        v.parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| config(key, format!("`{v}` is not a positive integer")))
    }

    /// A comma list of `n` finite floats, `default` each when absent.
    fn floats(&self, key: &str, n: usize, default: f32) -> Result<Vec<f32>> {
        let Some(v) = self.optional(key) else { return Ok(vec![default; n]) };
        let values = v
            .split(',')
            .map(|s| s.trim().parse::<f32>().ok().filter(|x| x.is_finite()))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| config(key, format!("`{v}` is not a comma-separated list of finite numbers")))?;
        if values.len() != n {
            return Err(config(key, format!("{} values, one per channel ({n}) needed", values.len())));
        }
        Ok(values)
    }
}

/// Image channels of a tokenizer (RGB).
const CHANNELS: usize = 3;

/// The names of one ViT block's tensors (timm's), in [`block_parts`]' order.
const BLOCK_NAMES: [&str; 12] = [
    "norm1.weight",
    "norm1.bias",
    "attn.qkv.weight",
    "attn.qkv.bias",
    "attn.proj.weight",
    "attn.proj.bias",
    "norm2.weight",
    "norm2.bias",
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
];

/// A block's tensors in [`BLOCK_NAMES`]' order.
fn block_parts(b: &VitBlockWeights) -> [&HostTensor; 12] {
    [
        &b.norm1_w, &b.norm1_b, &b.qkv_w, &b.qkv_b, &b.proj_w, &b.proj_b, &b.norm2_w, &b.norm2_b, &b.fc1_w, &b.fc1_b,
        &b.fc2_w, &b.fc2_b,
    ]
}

/// Takes block `{prefix}{i}.*` of width `d` and MLP width `h`.
fn take_block(ckpt: &mut Checkpoint, prefix: &str, i: usize, d: usize, h: usize) -> Result<VitBlockWeights> {
    let shapes: [&[usize]; 12] =
        [&[d], &[d], &[3 * d, d], &[3 * d], &[d, d], &[d], &[d], &[d], &[h, d], &[h], &[d, h], &[d]];
    let mut parts = Vec::with_capacity(12);
    for (name, shape) in BLOCK_NAMES.iter().zip(shapes) {
        parts.push(ckpt.take(&format!("{prefix}{i}.{name}"), shape)?);
    }
    let mut p = parts.into_iter();
    let mut next = || p.next().expect("12 tensors taken");
    Ok(VitBlockWeights {
        norm1_w: next(),
        norm1_b: next(),
        qkv_w: next(),
        qkv_b: next(),
        proj_w: next(),
        proj_b: next(),
        norm2_w: next(),
        norm2_b: next(),
        fc1_w: next(),
        fc1_b: next(),
        fc2_w: next(),
        fc2_b: next(),
    })
}

/// Takes the codebook `name` as `[K ≥ 1, d]`; `d = None` takes its width.
fn take_codebook(ckpt: &mut Checkpoint, name: &str, d: Option<usize>) -> Result<HostTensor> {
    let [k, width] = ckpt.dims::<2>(name)?;
    let d = d.unwrap_or(width);
    if k == 0 || d == 0 {
        return Err(config(name, format!("a codebook needs at least one entry of width ≥ 1, it is [{k}, {width}]")));
    }
    ckpt.take(name, &[k, d])
}

/// A reshaped copy of `t` (the same values).
fn reshaped(t: &HostTensor, shape: &[usize]) -> HostTensor {
    HostTensor { shape: shape.to_vec(), data: t.data.clone() }
}

fn join<T: ToString>(values: &[T]) -> String {
    values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")
}

impl TokenizerWeights {
    /// Reads a tokenizer checkpoint (see the module documentation): the hash of the whole
    /// checkpoint first, then the metadata, the encoder (through
    /// [`VitWeights::from_checkpoint`] on the `encoder.` tensors), the bottleneck and the
    /// decoder; every tensor must be taken ([`Checkpoint::finish`]).
    pub fn from_checkpoint(mut ckpt: Checkpoint) -> Result<TokenizerWeights> {
        let hash = ckpt.parameter_hash();
        let metadata = ckpt.metadata().clone();
        let meta = Meta(&metadata);
        let format = meta.required(TOKENIZER_FORMAT_KEY)?;
        if format != TOKENIZER_FORMAT {
            return Err(config(
                TOKENIZER_FORMAT_KEY,
                format!("`{format}`; this reader knows `{TOKENIZER_FORMAT}` (a ViT encoder, bottleneck, ViT decoder)"),
            ));
        }
        let kind = meta.required("bottleneck")?;
        if !BOTTLENECK_KINDS.contains(&kind) {
            return Err(config(
                "bottleneck",
                format!("unknown bottleneck `{kind}`; expected one of {BOTTLENECK_KINDS:?}"),
            ));
        }
        for (key, kinds) in BOTTLENECK_KEYS {
            if meta.optional(key).is_some() && !kinds.contains(&kind) {
                return Err(config(key, format!("given for bottleneck `{kind}`; it belongs to {kinds:?}")));
            }
        }
        let encoder_heads = meta.count("encoder.heads")?;
        let decoder_heads = meta.count("decoder.heads")?;
        let image_mean = meta.floats("image.mean", CHANNELS, DEFAULT_IMAGE_NORM)?;
        let image_std = meta.floats("image.std", CHANNELS, DEFAULT_IMAGE_NORM)?;
        if let Some(s) = image_std.iter().find(|s| **s == 0.0) {
            return Err(config("image.std", format!("a standard deviation of {s}")));
        }

        // The encoder (whose loader takes the head as optional; here it is required).
        if !ckpt.contains("encoder.head.weight") {
            return Err(Error::MissingTensor { name: "encoder.head.weight".into() });
        }
        let encoder = VitWeights::from_checkpoint(ckpt.split_prefix("encoder."), Some(encoder_heads))
            .map_err(|e| under("encoder.", e))?;
        let VitConfig { in_channels, patch, tokens, dim: d_enc, .. } = encoder.config;
        if in_channels != CHANNELS {
            return Err(Error::TensorShape {
                name: "encoder.patch_embed.proj.weight".into(),
                expected: vec![d_enc, CHANNELS, patch, patch],
                actual: vec![d_enc, in_channels, patch, patch],
            });
        }
        let head_out = encoder
            .head
            .as_ref()
            .map(|(w, _)| w.shape[0])
            .ok_or_else(|| Error::MissingTensor { name: "encoder.head.weight".into() })?;
        let head_must_be = |width: usize| -> Result<()> {
            match width == head_out {
                true => Ok(()),
                false => Err(Error::TensorShape {
                    name: "encoder.head.weight".into(),
                    expected: vec![width, d_enc],
                    actual: vec![head_out, d_enc],
                }),
            }
        };

        // The bottleneck.
        let bottleneck = match kind {
            "fsq" => {
                let v = meta.required("fsq.levels")?;
                let levels =
                    v.split(',').map(|s| s.trim().parse::<u32>().ok()).collect::<Option<Vec<u32>>>().ok_or_else(
                        || config("fsq.levels", format!("`{v}` is not a comma-separated list of integers")),
                    )?;
                Fsq::new(&levels).map_err(|e| config("fsq.levels", e.to_string()))?;
                head_must_be(levels.len())?;
                BottleneckWeights::Fsq { levels }
            }
            "vq" | "vq-cosine" => {
                let codebook = take_codebook(&mut ckpt, "quantizer.codebook", None)?;
                head_must_be(codebook.shape[1])?;
                match kind {
                    "vq" => BottleneckWeights::Vq { codebook },
                    _ => BottleneckWeights::VqCosine { codebook },
                }
            }
            "residual-vq" => {
                let count = ckpt.block_count("quantizer.stages", "quantizer.stages")?;
                let first = take_codebook(&mut ckpt, "quantizer.stages.0.codebook", None)?;
                let d = first.shape[1];
                head_must_be(d)?;
                let mut stages = vec![first];
                for s in 1..count {
                    stages.push(take_codebook(&mut ckpt, &format!("quantizer.stages.{s}.codebook"), Some(d))?);
                }
                BottleneckWeights::ResidualVq { stages }
            }
            "lfq" | "bsq" => {
                let dim = head_out;
                let group_bits = match meta.optional("group_bits") {
                    None => (dim as u32).clamp(1, DEFAULT_GROUP_BITS),
                    Some(v) => {
                        v.parse::<u32>().map_err(|_| config("group_bits", format!("`{v}` is not an integer")))?
                    }
                };
                let op = if kind == "lfq" { BinaryQuantOp::Lfq } else { BinaryQuantOp::Bsq };
                BinaryQuantizer::new(op, dim, group_bits).map_err(|e| match e {
                    Error::InvalidArgument { arg: "dim", reason } => config("encoder.head.weight", reason),
                    other => config("group_bits", other.to_string()),
                })?;
                match op {
                    BinaryQuantOp::Lfq => BottleneckWeights::Lfq { dim, group_bits },
                    BinaryQuantOp::Bsq => BottleneckWeights::Bsq { dim, group_bits },
                }
            }
            _ => {
                if head_out % 2 != 0 {
                    return Err(config(
                        "encoder.head.weight",
                        format!("{head_out} outputs; the KL bottleneck reads 2C (mean, then logvar)"),
                    ));
                }
                let mode = match meta.optional("kl.mode").unwrap_or("mean") {
                    "mean" => {
                        if meta.optional("kl.seed").is_some() {
                            return Err(config("kl.seed", "given with kl.mode `mean`, which draws nothing"));
                        }
                        KlMode::Mean
                    }
                    "sample" => {
                        let seed = match meta.optional("kl.seed") {
                            None => 0,
                            Some(v) => {
                                v.parse::<u64>().map_err(|_| config("kl.seed", format!("`{v}` is not a u64")))?
                            }
                        };
                        KlMode::Sample { seed }
                    }
                    other => return Err(config("kl.mode", format!("`{other}`; expected `mean` or `sample`"))),
                };
                BottleneckWeights::Kl { channels: head_out / 2, mode }
            }
        };

        // The decoder.
        let latent_dim = bottleneck.out_dim();
        let [d_dec, embed_in] = ckpt.dims::<2>("decoder.embed.weight")?;
        if embed_in != latent_dim {
            return Err(Error::TensorShape {
                name: "decoder.embed.weight".into(),
                expected: vec![d_dec, latent_dim],
                actual: vec![d_dec, embed_in],
            });
        }
        if d_dec == 0 || d_dec % decoder_heads != 0 {
            return Err(config("decoder.heads", format!("{decoder_heads} heads do not divide D = {d_dec}")));
        }
        let grid = match meta.optional("grid") {
            Some(v) => {
                let parts: Vec<Option<usize>> = v.split(',').map(|s| s.trim().parse::<usize>().ok()).collect();
                match parts[..] {
                    [Some(rows), Some(cols)] if rows.checked_mul(cols) == Some(tokens) => (rows, cols),
                    _ => {
                        return Err(config(
                            "grid",
                            format!("`{v}` is not `rows,cols` with rows·cols = the encoder's {tokens} tokens"),
                        ))
                    }
                }
            }
            None => {
                let side = (tokens as f64).sqrt().round() as usize;
                if side * side != tokens {
                    return Err(config("grid", format!("missing, and the {tokens} tokens are not a square grid")));
                }
                (side, side)
            }
        };
        let in_w = ckpt.take("decoder.embed.weight", &[d_dec, latent_dim])?;
        let in_b = ckpt.take("decoder.embed.bias", &[d_dec])?;
        let pos_embed = ckpt.take_reshaped("decoder.pos_embed", &[1, tokens, d_dec], &[tokens, d_dec])?;
        let layers = ckpt.block_count("decoder.blocks", "decoder.blocks")?;
        let [mlp, _] = ckpt.dims::<2>("decoder.blocks.0.mlp.fc1.weight")?;
        let blocks =
            (0..layers).map(|i| take_block(&mut ckpt, "decoder.blocks.", i, d_dec, mlp)).collect::<Result<Vec<_>>>()?;
        let norm_w = ckpt.take("decoder.norm.weight", &[d_dec])?;
        let norm_b = ckpt.take("decoder.norm.bias", &[d_dec])?;
        let pixels = patch * patch * CHANNELS;
        let out_w = ckpt.take("decoder.head.weight", &[pixels, d_dec])?;
        let out_b = ckpt.take("decoder.head.bias", &[pixels])?;
        ckpt.finish()?;
        let config = VitDecoderConfig { latent_dim, dim: d_dec, heads: decoder_heads, channels: CHANNELS, patch, grid };
        let decoder = VitDecoderWeights { config, in_w, in_b, pos_embed, blocks, norm_w, norm_b, out_w, out_b };
        Ok(TokenizerWeights { encoder, bottleneck, decoder, image_mean, image_std, hash })
    }

    /// This tokenizer as a checkpoint of the module's layout: the tensors under their
    /// names and shapes, the metadata (every key written, defaults included). It is
    /// checked only when read back ([`TokenizerWeights::from_checkpoint`]).
    /// `Error::Config` when a tensor's shape does not fit the configuration it is written
    /// with.
    pub fn to_checkpoint(&self) -> Result<Checkpoint> {
        let mut tensors: Vec<(String, HostTensor)> = Vec::new();
        let e = &self.encoder;
        let c = &e.config;
        let reshape = |name: &str, t: &HostTensor, shape: &[usize]| -> Result<HostTensor> {
            match shape.iter().product::<usize>() == t.len() {
                true => Ok(reshaped(t, shape)),
                false => Err(config(name, format!("holds {} values, {shape:?} needed", t.len()))),
            }
        };
        let (p, d) = (c.patch, c.dim);
        tensors.push((
            "encoder.patch_embed.proj.weight".into(),
            reshape("encoder.patch_embed.proj.weight", &e.patch_w, &[d, c.in_channels, p, p])?,
        ));
        tensors.push(("encoder.patch_embed.proj.bias".into(), e.patch_b.clone()));
        tensors.push(("encoder.pos_embed".into(), reshape("encoder.pos_embed", &e.pos_embed, &[1, c.tokens, d])?));
        let blocks = |tensors: &mut Vec<(String, HostTensor)>, prefix: &str, blocks: &[VitBlockWeights]| {
            for (i, b) in blocks.iter().enumerate() {
                for (name, t) in BLOCK_NAMES.iter().zip(block_parts(b)) {
                    tensors.push((format!("{prefix}{i}.{name}"), t.clone()));
                }
            }
        };
        blocks(&mut tensors, "encoder.blocks.", &e.blocks);
        tensors.push(("encoder.norm.weight".into(), e.norm_w.clone()));
        tensors.push(("encoder.norm.bias".into(), e.norm_b.clone()));
        if let Some((w, b)) = &e.head {
            tensors.push(("encoder.head.weight".into(), w.clone()));
            tensors.push(("encoder.head.bias".into(), b.clone()));
        }

        let mut metadata: Vec<(&str, String)> = vec![
            (TOKENIZER_FORMAT_KEY, TOKENIZER_FORMAT.into()),
            ("bottleneck", self.bottleneck.name().into()),
            ("encoder.heads", c.heads.to_string()),
            ("decoder.heads", self.decoder.config.heads.to_string()),
            ("image.mean", join(&self.image_mean)),
            ("image.std", join(&self.image_std)),
            ("grid", join(&[self.decoder.config.grid.0, self.decoder.config.grid.1])),
        ];
        match &self.bottleneck {
            BottleneckWeights::Fsq { levels } => metadata.push(("fsq.levels", join(levels))),
            BottleneckWeights::Vq { codebook } | BottleneckWeights::VqCosine { codebook } => {
                tensors.push(("quantizer.codebook".into(), codebook.clone()))
            }
            BottleneckWeights::ResidualVq { stages } => {
                for (s, codebook) in stages.iter().enumerate() {
                    tensors.push((format!("quantizer.stages.{s}.codebook"), codebook.clone()));
                }
            }
            BottleneckWeights::Lfq { group_bits, .. } | BottleneckWeights::Bsq { group_bits, .. } => {
                metadata.push(("group_bits", group_bits.to_string()))
            }
            BottleneckWeights::Kl { mode, .. } => match mode {
                KlMode::Mean => metadata.push(("kl.mode", "mean".into())),
                KlMode::Sample { seed } => {
                    metadata.push(("kl.mode", "sample".into()));
                    metadata.push(("kl.seed", seed.to_string()));
                }
            },
        }

        let dc = &self.decoder.config;
        let w = &self.decoder;
        tensors.push(("decoder.embed.weight".into(), w.in_w.clone()));
        tensors.push(("decoder.embed.bias".into(), w.in_b.clone()));
        tensors.push((
            "decoder.pos_embed".into(),
            reshape("decoder.pos_embed", &w.pos_embed, &[1, dc.grid.0 * dc.grid.1, dc.dim])?,
        ));
        blocks(&mut tensors, "decoder.blocks.", &w.blocks);
        tensors.push(("decoder.norm.weight".into(), w.norm_w.clone()));
        tensors.push(("decoder.norm.bias".into(), w.norm_b.clone()));
        tensors.push(("decoder.head.weight".into(), w.out_w.clone()));
        tensors.push(("decoder.head.bias".into(), w.out_b.clone()));
        Ok(Checkpoint::from_tensors(tensors)?.with_metadata(metadata))
    }

    /// [`TokenizerWeights::to_checkpoint`] as a safetensors file (F32 tensors), which
    /// [`Checkpoint::from_bytes`] and [`TokenizerWeights::from_checkpoint`] read back to
    /// the same weights.
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        self.to_checkpoint()?.to_safetensors_bytes()
    }
}
