//! Random ViT tokenizers (encoder → bottleneck → decoder) of every bottleneck kind, small
//! enough for the emulator, for tests/vit_tokenizer.rs. Include it with
//! `#[path = "common/tokenizer.rs"] mod tokenizer;` beside `mod common;`.
#![allow(dead_code)]

use tessera::blocks::{VitDecoderConfig, VitDecoderWeights};
use tessera::weights::{BottleneckWeights, HostTensor, TokenizerWeights, VitConfig, VitWeights};
use tessera::KlMode;

use crate::common::models::{vit_block, Rng};

/// The shapes of a test tokenizer.
#[derive(Clone, Copy, Debug)]
pub struct TinyShape {
    /// Patch side.
    pub patch: usize,
    /// Token rows, columns.
    pub grid: (usize, usize),
    /// Encoder width, heads, blocks, MLP width.
    pub encoder: (usize, usize, usize, usize),
    /// Decoder width, heads, blocks, MLP width.
    pub decoder: (usize, usize, usize, usize),
}

/// 16×24 images in 4×4 patches (a 4×6 grid: not square, so a swapped row/column shows);
/// encoder D 64 in 2 heads of 32, 1 block; decoder D 32 in 1 head, 2 blocks.
pub const TINY: TinyShape = TinyShape { patch: 4, grid: (4, 6), encoder: (64, 2, 1, 128), decoder: (32, 1, 2, 64) };

/// The bottleneck of `kind` (a `bottleneck` metadata value), random where it has tensors:
/// FSQ `8,5,5,5`; VQ and cosine VQ 64 entries of 8; LFQ d 10 in ids of 4 bits (4 + 4 + 2);
/// BSQ d 12 in ids of 6; residual VQ 3 stages of 32, 16, 8 entries of 6; KL 4 channels,
/// sampled with seed 5.
pub fn bottleneck(rng: &mut Rng, kind: &str) -> BottleneckWeights {
    match kind {
        "fsq" => BottleneckWeights::Fsq { levels: vec![8, 5, 5, 5] },
        "vq" => BottleneckWeights::Vq { codebook: rng.tensor(&[64, 8], 1.0) },
        "vq-cosine" => BottleneckWeights::VqCosine { codebook: rng.tensor(&[64, 8], 1.0) },
        "lfq" => BottleneckWeights::Lfq { dim: 10, group_bits: 4 },
        "bsq" => BottleneckWeights::Bsq { dim: 12, group_bits: 6 },
        "residual-vq" => BottleneckWeights::ResidualVq {
            stages: vec![rng.tensor(&[32, 6], 1.0), rng.tensor(&[16, 6], 0.5), rng.tensor(&[8, 6], 0.25)],
        },
        "kl" => BottleneckWeights::Kl { channels: 4, mode: KlMode::Sample { seed: 5 } },
        other => panic!("no test bottleneck `{other}`"),
    }
}

/// LayerNorm weights ~ 1 ± 0.3.
fn ones(rng: &mut Rng, d: usize) -> HostTensor {
    let mut t = rng.tensor(&[d], 0.3);
    t.data.iter_mut().for_each(|x| *x += 1.0);
    t
}

/// Every value rounded to bf16 (so that the same file in bf16 would hold the same values).
fn bf16_values(t: &mut HostTensor) {
    t.data.iter_mut().for_each(|x| *x = half::bf16::from_f32(*x).to_f32());
}

/// A random tokenizer of `shape` with a `kind` bottleneck; image mean and std differ per
/// channel (so that a channel mix-up shows). Values are bf16-representable. `hash` is 0.
pub fn tokenizer(seed: u64, kind: &str, shape: TinyShape) -> TokenizerWeights {
    let mut rng = Rng::new(seed);
    let p = shape.patch;
    let tokens = shape.grid.0 * shape.grid.1;
    let bottleneck = bottleneck(&mut rng, kind);
    let (de, he, le, me) = shape.encoder;
    let (patch_w, patch_b) = rng.linear(de, 3 * p * p);
    let (head_w, head_b) = rng.linear(bottleneck.in_dim(), de);
    let encoder = VitWeights {
        config: VitConfig {
            in_channels: 3,
            patch: p,
            tokens,
            dim: de,
            heads: he,
            layers: le,
            mlp_hidden: me,
            out_dim: Some(bottleneck.in_dim()),
        },
        patch_w,
        patch_b,
        pos_embed: rng.tensor(&[tokens, de], 0.5),
        blocks: (0..le).map(|_| vit_block(&mut rng, de, me)).collect(),
        norm_w: ones(&mut rng, de),
        norm_b: rng.tensor(&[de], 0.2),
        head: Some((head_w, head_b)),
    };
    let (dd, hd, ld, md) = shape.decoder;
    let config = VitDecoderConfig {
        latent_dim: bottleneck.out_dim(),
        dim: dd,
        heads: hd,
        channels: 3,
        patch: p,
        grid: shape.grid,
    };
    let (in_w, in_b) = rng.linear(dd, bottleneck.out_dim());
    let (out_w, mut out_b) = rng.linear(p * p * 3, dd);
    // Centre the pixels near mid-grey so that few clamp at 0 or 255.
    out_b.data.iter_mut().for_each(|b| *b *= 0.1);
    let mut out_w = out_w;
    out_w.data.iter_mut().for_each(|w| *w *= 0.5);
    let decoder = VitDecoderWeights {
        config,
        in_w,
        in_b,
        pos_embed: rng.tensor(&[tokens, dd], 0.5),
        blocks: (0..ld).map(|_| vit_block(&mut rng, dd, md)).collect(),
        norm_w: ones(&mut rng, dd),
        norm_b: rng.tensor(&[dd], 0.1),
        out_w,
        out_b,
    };
    let mut w = TokenizerWeights {
        encoder,
        bottleneck,
        decoder,
        image_mean: vec![0.5, 0.45, 0.4],
        image_std: vec![0.25, 0.3, 0.2],
        hash: 0,
    };
    for_each_tensor(&mut w, bf16_values);
    w
}

/// Applies `f` to every tensor of `w`.
pub fn for_each_tensor(w: &mut TokenizerWeights, mut f: impl FnMut(&mut HostTensor)) {
    let e = &mut w.encoder;
    for t in [&mut e.patch_w, &mut e.patch_b, &mut e.pos_embed, &mut e.norm_w, &mut e.norm_b] {
        f(t);
    }
    if let Some((hw, hb)) = &mut e.head {
        f(hw);
        f(hb);
    }
    let d = &mut w.decoder;
    for t in [&mut d.in_w, &mut d.in_b, &mut d.pos_embed, &mut d.norm_w, &mut d.norm_b, &mut d.out_w, &mut d.out_b] {
        f(t);
    }
    for b in e.blocks.iter_mut().chain(d.blocks.iter_mut()) {
        for t in [
            &mut b.norm1_w,
            &mut b.norm1_b,
            &mut b.qkv_w,
            &mut b.qkv_b,
            &mut b.proj_w,
            &mut b.proj_b,
            &mut b.norm2_w,
            &mut b.norm2_b,
            &mut b.fc1_w,
            &mut b.fc1_b,
            &mut b.fc2_w,
            &mut b.fc2_b,
        ] {
            f(t);
        }
    }
    match &mut w.bottleneck {
        BottleneckWeights::Vq { codebook } | BottleneckWeights::VqCosine { codebook } => f(codebook),
        BottleneckWeights::ResidualVq { stages } => stages.iter_mut().for_each(f),
        _ => {}
    }
}
