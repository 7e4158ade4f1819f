//! Attention forward: DiT-XL/2's head dim 72 at 256 tokens (one image at 256², 2 of its 16
//! heads, bf16, no mask), the same in f32 on CUDA cores at 128 tokens and one head (an f32
//! model's attention), and a causal GPT-style case (head dim 64, 256 tokens, f16). The
//! minimum traffic is Q, K and V read once and O and the log-sum-exp written once.

use super::{measure, setup, value, Case, ProfileError};
use tessera::{attention_into, AttentionLayout, AttentionOptions, AttentionShape, Device, FloatElement};

fn case<T: FloatElement>(device: &Device, id: &str, shape: AttentionShape, causal: bool) -> Result<Case, ProfileError> {
    let AttentionShape { batch, heads, head_dim, q_len, k_len } = shape;
    let data = |seed: u32, n: usize| -> Vec<T> { (0..n).map(|i| T::from_f32(value(seed, i))).collect() };
    let q = setup(id, device.upload(&data(1, batch * q_len * heads * head_dim)))?;
    let k = setup(id, device.upload(&data(2, batch * k_len * heads * head_dim)))?;
    let v = setup(id, device.upload(&data(3, batch * k_len * heads * head_dim)))?;
    let mut out = setup(id, device.zeros::<T>(batch * q_len * heads * head_dim))?;
    let mut lse = setup(id, device.zeros::<f32>(batch * heads * q_len))?;
    let layout = AttentionLayout::contiguous(heads, head_dim);
    let options = AttentionOptions { causal, ..Default::default() };
    let what = format!("B={batch} H={heads} T={q_len} Dh={head_dim}{}", if causal { " causal" } else { "" });
    measure(id, what, || {
        attention_into(device, &q, &k, &v, shape, &layout, &options, &mut out, &mut lse)?;
        device.synchronize()
    })
}

pub(super) fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    let dit = AttentionShape { batch: 1, heads: 2, head_dim: 72, q_len: 256, k_len: 256 };
    let dit_f32 = AttentionShape { batch: 1, heads: 1, head_dim: 72, q_len: 128, k_len: 128 };
    let gpt = AttentionShape { batch: 1, heads: 2, head_dim: 64, q_len: 256, k_len: 256 };
    Ok(vec![
        case::<half::bf16>(device, "attention.dit_xl.bf16", dit, false)?,
        case::<f32>(device, "attention.dit_xl.f32", dit_f32, false)?,
        case::<half::f16>(device, "attention.causal.f16", gpt, true)?,
    ])
}
