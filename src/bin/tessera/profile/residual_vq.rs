//! Residual VQ: three stages of 256 entries (d = 16, f32) over n = 2048 latents — each
//! stage a search with the residual written by its finalize kernel, then the accumulation.

use super::{measure, setup, value, Case, ProfileError};
use tessera::{Codebook, Device, Metric, ResidualVq};

const N: usize = 2048;
const D: usize = 16;
const K: usize = 256;
const STAGES: usize = 3;

pub(super) fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    let mut stages = Vec::new();
    for s in 0..STAGES {
        let entries: Vec<f32> = (0..K * D).map(|i| value(10 + s as u32, i) / (1 << s) as f32).collect();
        let entries = setup("residual_vq", device.upload(&entries))?;
        stages.push(setup("residual_vq", Codebook::new(device, entries, D, Metric::SquaredL2))?);
    }
    let rvq = setup("residual_vq", ResidualVq::new(stages))?;
    let z: Vec<f32> = (0..N * D).map(|i| value(9, i)).collect();
    let z = setup("residual_vq", device.upload(&z))?;
    Ok(vec![measure("residual_vq.quantize.f32", format!("n={N} d={D} k={K} S={STAGES}"), || {
        let out = rvq.quantize(device, &z)?;
        out.commitment()?;
        Ok(())
    })?])
}
