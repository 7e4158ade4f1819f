//! diffusers' `DiTTransformer2DModel` (norm_type "ada_norm_zero") by its parameter names.
//!
//! The loader is [`DitWeights::from_checkpoint`] (with diffusers' `config.json`) or
//! [`DitWeights::from_checkpoint_with`] (heads and sample size from the caller). The
//! architecture is read from the tensors' shapes; what shapes cannot tell (the number of
//! heads, the sample size) comes from `config.json` or the caller.
//!
//! `pos_embed.pos_embed`, the fixed 2-D sin-cos table, is a non-persistent buffer in
//! diffusers (`PatchEmbed` registers it with `persistent=False` unless `pos_embed_max_size`
//! is set, which DiT never sets), so a diffusers checkpoint does not hold it. tessera
//! computes the table itself ([`crate::sincos_pos_embed_2d`]). A checkpoint that does hold it
//! (`[1, T, D]`, written by other tools) is accepted: its shape is checked against the
//! sample size (or gives the sample size, `√T · p`, when nothing else does) and its values
//! are ignored.

use super::{Checkpoint, HostTensor};
use crate::error::{Error, Result};

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

/// The head width assumed without `config.json`, when D is a multiple of it (DiT's).
const DIT_HEAD_DIM: usize = 72;
/// The head width assumed without `config.json` when D is not a multiple of 72.
const FALLBACK_HEAD_DIM: usize = 64;
/// The position-embedding buffer some exporters save (see the module documentation).
const POS_EMBED_BUFFER: &str = "pos_embed.pos_embed";

impl DitWeights {
    /// Loads a `DiTTransformer2DModel` (or a `Transformer2DModel` with
    /// `norm_type: "ada_norm_zero"`, the older class of the same weights) from its checkpoint,
    /// taking every tensor: a tensor the model does not have is `Error::UnexpectedTensor`, a
    /// missing one `Error::MissingTensor`, a shape inconsistent with the others
    /// `Error::TensorShape`.
    ///
    /// From the shapes: D (`pos_embed.proj.bias`), C and p (`pos_embed.proj.weight`), the
    /// layers (the `transformer_blocks.N` present, contiguous from 0), the MLP width
    /// (`ff.net.0.proj`), the classes (label-table rows − 1: the last row is the null class
    /// of classifier-free guidance), the timestep sinusoid width (`linear_1`'s inputs) and the
    /// output channels (`proj_out_2` rows / p²).
    ///
    /// `config_json` is diffusers' `config.json` of the model. Every key is optional; each one
    /// present is checked against the shapes (`in_channels`, `out_channels` — null meaning
    /// `in_channels` —, `patch_size`, `num_layers`, `num_embeds_ada_norm`,
    /// `num_attention_heads · attention_head_dim` = D, `norm_type` = "ada_norm_zero",
    /// `activation_fn` = "gelu-approximate"), a disagreement being `Error::Config` naming the
    /// key. The heads are `num_attention_heads`, else D / `attention_head_dim`; the sample
    /// size is `sample_size`.
    ///
    /// What `config_json` (or its absence) leaves open:
    /// - heads: D / 72 when D is a multiple of 72 (DiT's head width), else D / 64 when D is a
    ///   multiple of 64, else `Error::Config`. This gives DiT-S/B/L/XL their 6/12/16/16 heads.
    ///   An ambiguous width (D = 576: 8 × 72 or 9 × 64) takes 72; pass `config.json` or use
    ///   [`DitWeights::from_checkpoint_with`] to be explicit.
    /// - sample size: `√T · p` from a `pos_embed.pos_embed` `[1, T, D]` buffer when the
    ///   checkpoint holds one, else `Error::Config` (field `sample_size`): the sample size is
    ///   not in a diffusers checkpoint's shapes, and guessing diffusers' default (32) would
    ///   silently mis-build DiT-XL-2-512. Use [`DitWeights::from_checkpoint_with`] then.
    ///
    /// `config.json` that is not a JSON object is `Error::Config` (field `config.json`).
    pub fn from_checkpoint(ckpt: Checkpoint, config_json: Option<&str>) -> Result<DitWeights> {
        let shapes = Shapes::read(&ckpt)?;
        let json = config_json.map(ConfigJson::parse).transpose()?;
        let (heads, sample_size) = match json {
            Some(json) => json.resolve(&shapes)?,
            None => (None, None),
        };
        let heads = match heads {
            Some(h) => h,
            None => default_heads(shapes.dim)?,
        };
        let sample_size = match sample_size {
            Some(s) => s,
            None => sample_size_from_buffer(&shapes)?,
        };
        load(ckpt, shapes.config(heads, sample_size)?)
    }

    /// [`DitWeights::from_checkpoint`] with the heads and the sample size (latent height =
    /// width) given, for a checkpoint without its `config.json`. `Error::Config` when `heads`
    /// is 0 or does not divide D, when `sample_size` is 0 or not a multiple of the patch, or
    /// when a `pos_embed.pos_embed` buffer in the checkpoint was built for another size.
    pub fn from_checkpoint_with(ckpt: Checkpoint, heads: usize, sample_size: usize) -> Result<DitWeights> {
        let shapes = Shapes::read(&ckpt)?;
        load(ckpt, shapes.config(heads, sample_size)?)
    }
}

fn config_error(field: &str, reason: impl Into<String>) -> Error {
    Error::Config { field: field.to_string(), reason: reason.into() }
}

/// What the tensors' shapes say about the architecture.
struct Shapes {
    in_channels: usize,
    out_channels: usize,
    patch: usize,
    dim: usize,
    layers: usize,
    mlp_hidden: usize,
    num_classes: usize,
    freq_dim: usize,
    /// T of a `pos_embed.pos_embed` `[1, T, D]` buffer, when present.
    pos_tokens: Option<usize>,
}

impl Shapes {
    fn read(ckpt: &Checkpoint) -> Result<Shapes> {
        let [dim] = ckpt.dims::<1>("pos_embed.proj.bias")?;
        let [_, in_channels, patch, _] = ckpt.dims::<4>("pos_embed.proj.weight")?;
        if patch == 0 {
            return Err(config_error("patch_size", "`pos_embed.proj.weight` has a zero patch size"));
        }
        let layers = ckpt.block_count("transformer_blocks", "num_layers")?;
        let b0 = "transformer_blocks.0";
        let [_, freq_dim] = ckpt.dims::<2>(&format!("{b0}.norm1.emb.timestep_embedder.linear_1.weight"))?;
        let [mlp_hidden, _] = ckpt.dims::<2>(&format!("{b0}.ff.net.0.proj.weight"))?;
        let table = format!("{b0}.norm1.emb.class_embedder.embedding_table.weight");
        let [rows, _] = ckpt.dims::<2>(&table)?;
        let num_classes = rows.checked_sub(1).ok_or_else(|| {
            config_error("num_embeds_ada_norm", format!("`{table}` has no rows (not even the null class)"))
        })?;
        let [out_rows, _] = ckpt.dims::<2>("proj_out_2.weight")?;
        if out_rows % (patch * patch) != 0 {
            return Err(config_error(
                "out_channels",
                format!("`proj_out_2.weight` has {out_rows} rows, not a multiple of patch² = {}", patch * patch),
            ));
        }
        let pos_tokens = match ckpt.contains(POS_EMBED_BUFFER) {
            true => Some(ckpt.dims::<3>(POS_EMBED_BUFFER)?[1]),
            false => None,
        };
        Ok(Shapes {
            in_channels,
            out_channels: out_rows / (patch * patch),
            patch,
            dim,
            layers,
            mlp_hidden,
            num_classes,
            freq_dim,
            pos_tokens,
        })
    }

    /// The configuration, after checking `heads` and `sample_size` against the shapes.
    fn config(&self, heads: usize, sample_size: usize) -> Result<DitConfig> {
        if heads == 0 || self.dim % heads != 0 {
            return Err(config_error("num_attention_heads", format!("{heads} heads do not divide D = {}", self.dim)));
        }
        if sample_size == 0 || sample_size % self.patch != 0 {
            return Err(config_error(
                "sample_size",
                format!("{sample_size} is not a positive multiple of the patch size {}", self.patch),
            ));
        }
        let grid = sample_size / self.patch;
        if let Some(t) = self.pos_tokens {
            if grid.checked_mul(grid) != Some(t) {
                return Err(config_error(
                    "sample_size",
                    format!("{sample_size} gives {grid}² tokens, but `{POS_EMBED_BUFFER}` has {t}"),
                ));
            }
        }
        Ok(DitConfig {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            patch: self.patch,
            sample_size,
            dim: self.dim,
            heads,
            layers: self.layers,
            mlp_hidden: self.mlp_hidden,
            num_classes: self.num_classes,
            freq_dim: self.freq_dim,
        })
    }
}

/// Heads without `config.json`: D / 72, else D / 64 (see `from_checkpoint`).
fn default_heads(dim: usize) -> Result<usize> {
    [DIT_HEAD_DIM, FALLBACK_HEAD_DIM].into_iter().find(|dh| dim % dh == 0 && dim >= *dh).map(|dh| dim / dh).ok_or_else(
        || {
            config_error(
                "num_attention_heads",
                format!(
                    "D = {dim} is a multiple of neither {DIT_HEAD_DIM} nor {FALLBACK_HEAD_DIM}; pass config.json or \
                     use DitWeights::from_checkpoint_with"
                ),
            )
        },
    )
}

/// The sample size `√T · p` from the position-embedding buffer, when present.
fn sample_size_from_buffer(shapes: &Shapes) -> Result<usize> {
    let t = shapes.pos_tokens.ok_or_else(|| {
        config_error(
            "sample_size",
            "not in the checkpoint's shapes; pass config.json or use DitWeights::from_checkpoint_with",
        )
    })?;
    let grid = (0..=t).find(|g| g * g >= t).filter(|g| g * g == t).ok_or_else(|| {
        config_error("sample_size", format!("`{POS_EMBED_BUFFER}` has {t} tokens, not a square grid"))
    })?;
    Ok(grid * shapes.patch)
}

/// diffusers' `config.json`, a JSON object.
struct ConfigJson(serde_json::Map<String, serde_json::Value>);

impl ConfigJson {
    fn parse(text: &str) -> Result<ConfigJson> {
        match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => Ok(ConfigJson(map)),
            Ok(_) => Err(config_error("config.json", "not a JSON object")),
            Err(e) => Err(config_error("config.json", format!("not valid JSON: {e}"))),
        }
    }

    /// `key` as a non-negative integer; None when absent or null.
    fn usize(&self, key: &str) -> Result<Option<usize>> {
        match self.0.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| config_error(key, format!("{v} is not a non-negative integer"))),
        }
    }

    /// `key` present (and not null) must equal `actual`, the checkpoint's value.
    fn check(&self, key: &str, actual: usize, what: &str) -> Result<()> {
        match self.usize(key)? {
            Some(v) if v != actual => {
                Err(config_error(key, format!("config.json says {v}, but the checkpoint's {what} is {actual}")))
            }
            _ => Ok(()),
        }
    }

    /// `key`, when present, must be the string `want`.
    fn check_str(&self, key: &str, want: &str) -> Result<()> {
        match self.0.get(key) {
            None => Ok(()),
            Some(v) if v.as_str() == Some(want) => Ok(()),
            Some(v) => Err(config_error(key, format!("config.json says {v}; tessera's DiT block needs \"{want}\""))),
        }
    }

    /// Checks every key against the shapes; returns (heads, sample_size) where given.
    fn resolve(&self, s: &Shapes) -> Result<(Option<usize>, Option<usize>)> {
        self.check_str("norm_type", "ada_norm_zero")?;
        self.check_str("activation_fn", "gelu-approximate")?;
        self.check("in_channels", s.in_channels, "`pos_embed.proj.weight` input channels")?;
        match self.0.get("out_channels") {
            Some(serde_json::Value::Null) => {
                if s.out_channels != s.in_channels {
                    return Err(config_error(
                        "out_channels",
                        format!(
                            "config.json says null (= in_channels, {}), but `proj_out_2` gives {} channels",
                            s.in_channels, s.out_channels
                        ),
                    ));
                }
            }
            _ => self.check("out_channels", s.out_channels, "`proj_out_2` channels (rows / patch²)")?,
        }
        self.check("patch_size", s.patch, "`pos_embed.proj.weight` kernel size")?;
        self.check("num_layers", s.layers, "number of `transformer_blocks`")?;
        self.check("num_embeds_ada_norm", s.num_classes, "label-table rows − 1")?;
        let heads = self.usize("num_attention_heads")?;
        let head_dim = self.usize("attention_head_dim")?;
        let heads = match (heads, head_dim) {
            (Some(h), Some(dh)) => {
                if h.checked_mul(dh) != Some(s.dim) {
                    return Err(config_error(
                        "num_attention_heads",
                        format!("{h} heads × attention_head_dim {dh} ≠ the checkpoint's D = {}", s.dim),
                    ));
                }
                Some(h)
            }
            (Some(h), None) => Some(h),
            (None, Some(dh)) => match dh != 0 && s.dim % dh == 0 {
                true => Some(s.dim / dh),
                false => {
                    return Err(config_error(
                        "attention_head_dim",
                        format!("{dh} does not divide the checkpoint's D = {}", s.dim),
                    ))
                }
            },
            (None, None) => None,
        };
        Ok((heads, self.usize("sample_size")?))
    }
}

/// Takes every tensor of the model from `ckpt` and checks nothing is left.
fn load(mut ckpt: Checkpoint, config: DitConfig) -> Result<DitWeights> {
    let (d, c, p) = (config.dim, config.in_channels, config.patch);
    let patch_w = ckpt.take_reshaped("pos_embed.proj.weight", &[d, c, p, p], &[d, c * p * p])?;
    let patch_b = ckpt.take("pos_embed.proj.bias", &[d])?;
    if ckpt.contains(POS_EMBED_BUFFER) {
        // Shape checked by `Shapes::config`; the values are recomputed by tessera.
        let t = (config.sample_size / p) * (config.sample_size / p);
        ckpt.take(POS_EMBED_BUFFER, &[1, t, d])?;
    }
    let blocks = (0..config.layers).map(|i| load_block(&mut ckpt, &config, i)).collect::<Result<Vec<_>>>()?;
    let out = p * p * config.out_channels;
    let weights = DitWeights {
        patch_w,
        patch_b,
        blocks,
        out1_w: ckpt.take("proj_out_1.weight", &[2 * d, d])?,
        out1_b: ckpt.take("proj_out_1.bias", &[2 * d])?,
        out2_w: ckpt.take("proj_out_2.weight", &[out, d])?,
        out2_b: ckpt.take("proj_out_2.bias", &[out])?,
        config,
    };
    ckpt.finish()?;
    Ok(weights)
}

fn load_block(ckpt: &mut Checkpoint, config: &DitConfig, i: usize) -> Result<DitBlockWeights> {
    let (d, h) = (config.dim, config.mlp_hidden);
    let b = format!("transformer_blocks.{i}");
    let mut take = |name: &str, shape: &[usize]| ckpt.take(&format!("{b}.{name}"), shape);
    let emb = "norm1.emb.timestep_embedder";
    let t_w1 = take(&format!("{emb}.linear_1.weight"), &[d, config.freq_dim])?;
    let t_b1 = take(&format!("{emb}.linear_1.bias"), &[d])?;
    let t_w2 = take(&format!("{emb}.linear_2.weight"), &[d, d])?;
    let t_b2 = take(&format!("{emb}.linear_2.bias"), &[d])?;
    let label_table = take("norm1.emb.class_embedder.embedding_table.weight", &[config.num_classes + 1, d])?;
    let ada_w = take("norm1.linear.weight", &[6 * d, d])?;
    let ada_b = take("norm1.linear.bias", &[6 * d])?;
    let (mut qkv_w, mut qkv_b) = (Vec::with_capacity(3 * d * d), Vec::with_capacity(3 * d));
    for m in ["to_q", "to_k", "to_v"] {
        qkv_w.extend(take(&format!("attn1.{m}.weight"), &[d, d])?.data);
        qkv_b.extend(take(&format!("attn1.{m}.bias"), &[d])?.data);
    }
    Ok(DitBlockWeights {
        t_w1,
        t_b1,
        t_w2,
        t_b2,
        label_table,
        ada_w,
        ada_b,
        qkv_w: HostTensor { shape: vec![3 * d, d], data: qkv_w },
        qkv_b: HostTensor { shape: vec![3 * d], data: qkv_b },
        proj_w: take("attn1.to_out.0.weight", &[d, d])?,
        proj_b: take("attn1.to_out.0.bias", &[d])?,
        fc1_w: take("ff.net.0.proj.weight", &[h, d])?,
        fc1_b: take("ff.net.0.proj.bias", &[h])?,
        fc2_w: take("ff.net.2.weight", &[d, h])?,
        fc2_b: take("ff.net.2.bias", &[d])?,
    })
}
