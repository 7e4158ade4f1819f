//! diffusers' `DiTTransformer2DModel` (norm_type "ada_norm_zero") by its parameter names.

use super::HostTensor;

/// The architecture, read from the checkpoint's shapes (and `config.json` where given).
#[derive(Clone, Debug, PartialEq)]
pub struct DitConfig {
    /// `in_channels` (latent channels, 4 for SD's VAE).
    pub in_channels: usize,
    /// `out_channels` (2·in_channels with learned sigma).
    pub out_channels: usize,
    /// `patch_size`.
    pub patch: usize,
    /// `sample_size` (latent height = width) the position embedding was built for.
    pub sample_size: usize,
    /// `num_attention_heads · attention_head_dim` (D).
    pub dim: usize,
    /// `num_attention_heads`.
    pub heads: usize,
    /// `num_layers`.
    pub layers: usize,
    /// The MLP's hidden width (4·D in DiT).
    pub mlp_hidden: usize,
    /// `num_embeds_ada_norm` (classes; the label table has one more row, the null class).
    pub num_classes: usize,
    /// The timestep embedding's sinusoid width (256 in DiT).
    pub freq_dim: usize,
}

/// One `transformer_blocks.N`. Linear weights `[out, in]`, biases `[out]`.
#[derive(Clone, Debug)]
pub struct DitBlockWeights {
    /// `norm1.emb.timestep_embedder.linear_1.{weight,bias}`: `[D, freq_dim]`, `[D]`.
    pub t_w1: HostTensor,
    /// See `t_w1`.
    pub t_b1: HostTensor,
    /// `norm1.emb.timestep_embedder.linear_2.{weight,bias}`: `[D, D]`, `[D]`.
    pub t_w2: HostTensor,
    /// See `t_w2`.
    pub t_b2: HostTensor,
    /// `norm1.emb.class_embedder.embedding_table.weight`: `[num_classes + 1, D]`.
    pub label_table: HostTensor,
    /// `norm1.linear.{weight,bias}`: `[6D, D]`, `[6D]` (shift, scale, gate of the
    /// attention, then of the MLP).
    pub ada_w: HostTensor,
    /// See `ada_w`.
    pub ada_b: HostTensor,
    /// `attn1.to_q`, `to_k`, `to_v` concatenated at load: `[3D, D]`, `[3D]`.
    pub qkv_w: HostTensor,
    /// See `qkv_w`.
    pub qkv_b: HostTensor,
    /// `attn1.to_out.0.{weight,bias}`: `[D, D]`, `[D]`.
    pub proj_w: HostTensor,
    /// See `proj_w`.
    pub proj_b: HostTensor,
    /// `ff.net.0.proj.{weight,bias}`: `[mlp_hidden, D]`, `[mlp_hidden]` (GELU, tanh).
    pub fc1_w: HostTensor,
    /// See `fc1_w`.
    pub fc1_b: HostTensor,
    /// `ff.net.2.{weight,bias}`: `[D, mlp_hidden]`, `[D]`.
    pub fc2_w: HostTensor,
    /// See `fc2_w`.
    pub fc2_b: HostTensor,
}

/// A whole `DiTTransformer2DModel`.
#[derive(Clone, Debug)]
pub struct DitWeights {
    /// The architecture.
    pub config: DitConfig,
    /// `pos_embed.proj.weight` `[D, C, p, p]`, reshaped to the GEMM's `[D, C·p·p]` (same
    /// memory).
    pub patch_w: HostTensor,
    /// `pos_embed.proj.bias` `[D]`.
    pub patch_b: HostTensor,
    /// The blocks in order.
    pub blocks: Vec<DitBlockWeights>,
    /// `proj_out_1.{weight,bias}`: `[2D, D]`, `[2D]` (shift, scale of the final adaLN).
    pub out1_w: HostTensor,
    /// See `out1_w`.
    pub out1_b: HostTensor,
    /// `proj_out_2.{weight,bias}`: `[p·p·out_channels, D]`, `[p·p·out_channels]`.
    pub out2_w: HostTensor,
    /// See `out2_w`.
    pub out2_b: HostTensor,
}
