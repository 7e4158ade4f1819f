//! timm's `VisionTransformer` (no class token, per-token head) by its parameter names: the
//! tokenizer encoder's layout.
//!
//! The loader is [`VitWeights::from_checkpoint`], for a model created with
//! `class_token=False, global_pool=''` (and timm's defaults otherwise: `qkv_bias=True`, no
//! qk-norm, no layer scale, no pre-norm, final norm, no `fc_norm`). A tensor of any variant
//! outside that (`blocks.N.ls1.gamma`, `norm_pre.*`, `fc_norm.*`, ...) is reported by the
//! loader as `Error::UnexpectedTensor`.

use super::{Checkpoint, HostTensor};
use crate::error::{Error, Result};

/// The architecture, read from the checkpoint's shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct VitConfig {
    /// Image channels (3).
    pub in_channels: usize,
    /// Patch size.
    pub patch: usize,
    /// Tokens of the learned position embedding (grid_h · grid_w).
    pub tokens: usize,
    /// Embedding width D.
    pub dim: usize,
    /// Attention heads (given to the loader, or D / 64 when not given; see
    /// [`VitWeights::from_checkpoint`]).
    pub heads: usize,
    /// Blocks.
    pub layers: usize,
    /// The MLP's hidden width.
    pub mlp_hidden: usize,
    /// `head` output width (the bottleneck width), or None when the checkpoint has no head.
    pub out_dim: Option<usize>,
}

/// One `blocks.N`.
#[derive(Clone, Debug)]
pub struct VitBlockWeights {
    /// `norm1.{weight,bias}` `[D]`.
    pub norm1_w: HostTensor,
    /// See `norm1_w`.
    pub norm1_b: HostTensor,
    /// `attn.qkv.{weight,bias}` `[3D, D]`, `[3D]`.
    pub qkv_w: HostTensor,
    /// See `qkv_w`.
    pub qkv_b: HostTensor,
    /// `attn.proj.{weight,bias}` `[D, D]`, `[D]`.
    pub proj_w: HostTensor,
    /// See `proj_w`.
    pub proj_b: HostTensor,
    /// `norm2.{weight,bias}` `[D]`.
    pub norm2_w: HostTensor,
    /// See `norm2_w`.
    pub norm2_b: HostTensor,
    /// `mlp.fc1.{weight,bias}` `[mlp_hidden, D]`, `[mlp_hidden]`.
    pub fc1_w: HostTensor,
    /// See `fc1_w`.
    pub fc1_b: HostTensor,
    /// `mlp.fc2.{weight,bias}` `[D, mlp_hidden]`, `[D]`.
    pub fc2_w: HostTensor,
    /// See `fc2_w`.
    pub fc2_b: HostTensor,
}

/// A whole `VisionTransformer` encoder.
#[derive(Clone, Debug)]
pub struct VitWeights {
    /// The architecture.
    pub config: VitConfig,
    /// `patch_embed.proj.weight` `[D, C, p, p]`, reshaped to `[D, C·p·p]`.
    pub patch_w: HostTensor,
    /// `patch_embed.proj.bias` `[D]`.
    pub patch_b: HostTensor,
    /// `pos_embed` `[1, tokens, D]`, reshaped to `[tokens, D]`.
    pub pos_embed: HostTensor,
    /// The blocks in order.
    pub blocks: Vec<VitBlockWeights>,
    /// `norm.{weight,bias}` `[D]`.
    pub norm_w: HostTensor,
    /// See `norm_w`.
    pub norm_b: HostTensor,
    /// `head.{weight,bias}` `[out_dim, D]`, `[out_dim]`, when present.
    pub head: Option<(HostTensor, HostTensor)>,
}

/// The head width assumed when the caller does not give the heads.
const DEFAULT_HEAD_DIM: usize = 64;

impl VitWeights {
    /// Loads a timm `VisionTransformer` encoder from its checkpoint, taking every tensor: a
    /// tensor the model does not have is `Error::UnexpectedTensor`, a missing one
    /// `Error::MissingTensor`, a shape inconsistent with the others `Error::TensorShape`.
    ///
    /// From the shapes: D (`patch_embed.proj.bias`), C and p (`patch_embed.proj.weight`), the
    /// tokens T (`pos_embed` `[1, T, D]`), the layers (the `blocks.N` present, contiguous from
    /// 0), the MLP width (`mlp.fc1`), and the head's width when `head.weight` is present
    /// (`head` is optional: a model built with `num_classes=0` has none).
    ///
    /// `heads` is the number of attention heads (timm's `num_heads`, which no shape holds):
    /// when None, D / 64 when D is a multiple of 64 (timm's ViT-S/B/L/H head width), else
    /// `Error::Config`. Given, it must divide D (`Error::Config`).
    ///
    /// A `cls_token` (or `reg_token`) in the checkpoint is `Error::Config`: tessera's
    /// encoder has no prefix tokens, and its position embedding covers the patches only.
    pub fn from_checkpoint(mut ckpt: Checkpoint, heads: Option<usize>) -> Result<VitWeights> {
        for token in ["cls_token", "reg_token"] {
            if ckpt.contains(token) {
                return Err(Error::Config {
                    field: token.to_string(),
                    reason: format!(
                        "the checkpoint has `{token}`, but tessera's ViT encoder has no prefix tokens (create the \
                         timm model with class_token=False, reg_tokens=0, global_pool='')"
                    ),
                });
            }
        }
        let [d] = ckpt.dims::<1>("patch_embed.proj.bias")?;
        let [_, c, p, _] = ckpt.dims::<4>("patch_embed.proj.weight")?;
        let [_, tokens, _] = ckpt.dims::<3>("pos_embed")?;
        let layers = ckpt.block_count("blocks", "depth")?;
        let [mlp_hidden, _] = ckpt.dims::<2>("blocks.0.mlp.fc1.weight")?;
        let out_dim = match ckpt.contains("head.weight") {
            true => Some(ckpt.dims::<2>("head.weight")?[0]),
            false => None,
        };
        let heads = match heads {
            Some(h) if h != 0 && d % h == 0 => h,
            Some(h) => {
                return Err(Error::Config {
                    field: "num_heads".to_string(),
                    reason: format!("{h} heads do not divide D = {d}"),
                })
            }
            None if d % DEFAULT_HEAD_DIM == 0 && d > 0 => d / DEFAULT_HEAD_DIM,
            None => {
                return Err(Error::Config {
                    field: "num_heads".to_string(),
                    reason: format!("D = {d} is not a multiple of {DEFAULT_HEAD_DIM}; give the number of heads"),
                })
            }
        };
        let config = VitConfig { in_channels: c, patch: p, tokens, dim: d, heads, layers, mlp_hidden, out_dim };
        let patch_w = ckpt.take_reshaped("patch_embed.proj.weight", &[d, c, p, p], &[d, c * p * p])?;
        let patch_b = ckpt.take("patch_embed.proj.bias", &[d])?;
        let pos_embed = ckpt.take_reshaped("pos_embed", &[1, tokens, d], &[tokens, d])?;
        let blocks = (0..layers).map(|i| load_block(&mut ckpt, &config, i)).collect::<Result<Vec<_>>>()?;
        let norm_w = ckpt.take("norm.weight", &[d])?;
        let norm_b = ckpt.take("norm.bias", &[d])?;
        let head = match out_dim {
            Some(o) => Some((ckpt.take("head.weight", &[o, d])?, ckpt.take("head.bias", &[o])?)),
            None => None,
        };
        ckpt.finish()?;
        Ok(VitWeights { config, patch_w, patch_b, pos_embed, blocks, norm_w, norm_b, head })
    }
}

fn load_block(ckpt: &mut Checkpoint, config: &VitConfig, i: usize) -> Result<VitBlockWeights> {
    let (d, h) = (config.dim, config.mlp_hidden);
    let mut take = |name: &str, shape: &[usize]| ckpt.take(&format!("blocks.{i}.{name}"), shape);
    Ok(VitBlockWeights {
        norm1_w: take("norm1.weight", &[d])?,
        norm1_b: take("norm1.bias", &[d])?,
        qkv_w: take("attn.qkv.weight", &[3 * d, d])?,
        qkv_b: take("attn.qkv.bias", &[3 * d])?,
        proj_w: take("attn.proj.weight", &[d, d])?,
        proj_b: take("attn.proj.bias", &[d])?,
        norm2_w: take("norm2.weight", &[d])?,
        norm2_b: take("norm2.bias", &[d])?,
        fc1_w: take("mlp.fc1.weight", &[h, d])?,
        fc1_b: take("mlp.fc1.bias", &[h])?,
        fc2_w: take("mlp.fc2.weight", &[d, h])?,
        fc2_b: take("mlp.fc2.bias", &[d])?,
    })
}
