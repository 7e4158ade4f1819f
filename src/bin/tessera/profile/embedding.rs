//! Conditioning embeddings: the timestep embedding of B = 1024 timesteps into dim 256
//! (f32, bf16) and the label embedding of B = 1024 labels from a 1001 × 1152 table
//! (bf16 warp-per-row, and the per-element v1 gather in bf16).

use super::{measure, setup, value, Case, ProfileError};
use tessera::{
    label_embedding, label_embedding_into_using, timestep_embedding, Device, FloatElement, LabelEmbeddingKernel,
};

const B: usize = 1024;
const TIMESTEP_DIM: usize = 256;
const CLASSES: usize = 1000;
const LABEL_DIM: usize = 1152;

fn timestep<T: FloatElement>(device: &Device) -> Result<Case, ProfileError> {
    let t: Vec<f32> = (0..B).map(|i| 500.0 * (value(3, i) + 1.0)).collect();
    let t = setup("embedding", device.upload(&t))?;
    measure(format!("embedding.timestep.{}", T::DTYPE.suffix()), format!("B={B} dim={TIMESTEP_DIM}"), || {
        timestep_embedding::<T>(device, &t, TIMESTEP_DIM, tessera::DEFAULT_MAX_PERIOD)?;
        device.synchronize()
    })
}

fn label<T: FloatElement>(device: &Device, kernel: LabelEmbeddingKernel) -> Result<Case, ProfileError> {
    let table: Vec<T> = (0..(CLASSES + 1) * LABEL_DIM).map(|i| T::from_f32(value(4, i))).collect();
    let table = setup("embedding", device.upload(&table))?;
    let labels: Vec<u32> = (0..B as u32).map(|i| i.wrapping_mul(2_654_435_761) % (CLASSES as u32 + 1)).collect();
    let labels = setup("embedding", device.upload(&labels))?;
    let variant = match kernel {
        LabelEmbeddingKernel::Simple => ".v1",
        LabelEmbeddingKernel::Warp => "",
    };
    let shape = format!("B={B} classes={CLASSES}+1 D={LABEL_DIM}");
    measure(format!("embedding.label{variant}.{}", T::DTYPE.suffix()), shape, || {
        match kernel {
            LabelEmbeddingKernel::Warp => {
                label_embedding(device, &labels, &table, CLASSES, LABEL_DIM)?;
            }
            LabelEmbeddingKernel::Simple => {
                let mut out = device.zeros::<T>(B * LABEL_DIM)?;
                label_embedding_into_using(device, kernel, &labels, &table, CLASSES, LABEL_DIM, &mut out)?;
            }
        }
        device.synchronize()
    })
}

pub(super) fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    Ok(vec![
        timestep::<f32>(device)?,
        timestep::<half::bf16>(device)?,
        label::<half::bf16>(device, LabelEmbeddingKernel::Warp)?,
        label::<f32>(device, LabelEmbeddingKernel::Warp)?,
        label::<half::bf16>(device, LabelEmbeddingKernel::Simple)?,
    ])
}
