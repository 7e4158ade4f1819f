//! timm's `VisionTransformer` (no class token, per-token head) by its parameter names: the
//! tokenizer encoder's layout.

use super::HostTensor;

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
    /// Attention heads (from `config.json`, or D / 64 when not given; see the loader).
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
