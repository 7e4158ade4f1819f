//! The KL bottleneck: the reparameterized sample of n = 4096 tokens (a 64 × 64 latent grid)
//! with C = 16 channels from `[n, 32]` encoder outputs (f32, bf16), and the mean ("mode")
//! in bf16.

use super::{measure, setup, value, Case, ProfileError};
use tessera::{kl_sample, Device, FloatElement, KlMode};

const N: usize = 4096;
const C: usize = 16;

fn case<T: FloatElement>(device: &Device, mode: KlMode) -> Result<Case, ProfileError> {
    // mean in [−1, 1), logvar in [−6, −2).
    let params: Vec<T> = (0..N * 2 * C)
        .map(|i| T::from_f32(if i % (2 * C) < C { value(5, i) } else { 2.0 * value(6, i) - 4.0 }))
        .collect();
    let params = setup("kl", device.upload(&params))?;
    let what = match mode {
        KlMode::Mean => "mean",
        KlMode::Sample { .. } => "sample",
    };
    measure(format!("kl.{what}.{}", T::DTYPE.suffix()), format!("n={N} C={C}"), || {
        kl_sample(device, &params, C, mode)?;
        device.synchronize()
    })
}

pub(super) fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    Ok(vec![
        case::<f32>(device, KlMode::Sample { seed: 1 })?,
        case::<half::bf16>(device, KlMode::Sample { seed: 1 })?,
        case::<half::bf16>(device, KlMode::Mean)?,
    ])
}
