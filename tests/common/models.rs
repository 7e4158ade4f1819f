//! Random model weights far from zero (so that a wrong gate chunk, a lost residual or a
//! swapped shift/scale is visible), shared by tests/blocks*.rs and benches/blocks.rs.
#![allow(dead_code)]

use tessera::weights::{DitBlockWeights, DitConfig, DitWeights, HostTensor, VitBlockWeights};

/// Uniform random weights (splitmix64; standalone so that benches can include this file).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn word(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as u32
    }

    /// `shape` values ~ U(±amplitude).
    pub fn tensor(&mut self, shape: &[usize], amplitude: f32) -> HostTensor {
        let n = shape.iter().product();
        let data = (0..n).map(|_| amplitude * ((self.word() >> 8) as f32 / 8_388_608.0 - 1.0)).collect();
        HostTensor { shape: shape.to_vec(), data }
    }
    /// A linear layer `[out, in]` with weights ~ U(±1/√in)·1.5 and biases ~ U(±0.1).
    pub fn linear(&mut self, out: usize, inp: usize) -> (HostTensor, HostTensor) {
        (self.tensor(&[out, inp], 1.5 / (inp as f32).sqrt()), self.tensor(&[out], 0.1))
    }
}

/// A ViT block with LayerNorm weights ~ 1 ± 0.3.
pub fn vit_block(rng: &mut Rng, d: usize, mlp: usize) -> VitBlockWeights {
    let (qkv_w, qkv_b) = rng.linear(3 * d, d);
    let (proj_w, proj_b) = rng.linear(d, d);
    let (fc1_w, fc1_b) = rng.linear(mlp, d);
    let (fc2_w, fc2_b) = rng.linear(d, mlp);
    let ones = |rng: &mut Rng| {
        let mut t = rng.tensor(&[d], 0.3);
        t.data.iter_mut().for_each(|x| *x += 1.0);
        t
    };
    VitBlockWeights {
        norm1_w: ones(rng),
        norm1_b: rng.tensor(&[d], 0.2),
        qkv_w,
        qkv_b,
        proj_w,
        proj_b,
        norm2_w: ones(rng),
        norm2_b: rng.tensor(&[d], 0.2),
        fc1_w,
        fc1_b,
        fc2_w,
        fc2_b,
    }
}

/// A DiT of `config` (label table ~ U(±1)).
pub fn dit(rng: &mut Rng, config: DitConfig) -> DitWeights {
    let (d, c, p) = (config.dim, config.in_channels, config.patch);
    let blocks = (0..config.layers)
        .map(|_| {
            let (t_w1, t_b1) = rng.linear(d, config.freq_dim);
            let (t_w2, t_b2) = rng.linear(d, d);
            let (ada_w, ada_b) = rng.linear(6 * d, d);
            let (qkv_w, qkv_b) = rng.linear(3 * d, d);
            let (proj_w, proj_b) = rng.linear(d, d);
            let (fc1_w, fc1_b) = rng.linear(config.mlp_hidden, d);
            let (fc2_w, fc2_b) = rng.linear(d, config.mlp_hidden);
            DitBlockWeights {
                t_w1,
                t_b1,
                t_w2,
                t_b2,
                label_table: rng.tensor(&[config.num_classes + 1, d], 1.0),
                ada_w,
                ada_b,
                qkv_w,
                qkv_b,
                proj_w,
                proj_b,
                fc1_w,
                fc1_b,
                fc2_w,
                fc2_b,
            }
        })
        .collect();
    let (patch_w, patch_b) = rng.linear(d, c * p * p);
    let (out1_w, out1_b) = rng.linear(2 * d, d);
    let (out2_w, out2_b) = rng.linear(p * p * config.out_channels, d);
    DitWeights { config, patch_w, patch_b, blocks, out1_w, out1_b, out2_w, out2_b }
}
