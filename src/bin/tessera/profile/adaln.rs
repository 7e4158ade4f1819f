//! adaLN: the fused modulate kernel (f32 and bf16) at a DiT-ish shape small enough for the
//! emulator, B = 2, T = 64, D = 1152, shift and scale as chunks 0 and 1 of a [B, 6D]
//! modulation buffer (16 teams of 8 rows: shift/scale re-read by 8 teams per sample); the
//! same at DiT-XL/2's real shape in bf16 (B = 32, T = 256: 256 teams of 32 rows, re-read by 8
//! teams per sample, 1/32 of x's traffic); and ViT's affine LayerNorm (bf16, 128 rows of 768).

use super::{measure, setup, value, Case, ProfileError};
use tessera::{adaln_modulate, layer_norm, AdalnShape, Affine, Device, FloatElement, Modulation, NormOptions};

const SHAPE: AdalnShape = AdalnShape { batch: 2, tokens: 64, dim: 1152 };
const DIT_XL: AdalnShape = AdalnShape { batch: 32, tokens: 256, dim: 1152 };

fn modulate<T: FloatElement>(device: &Device, shape: AdalnShape, tag: &str) -> Result<Case, ProfileError> {
    let AdalnShape { batch, tokens, dim } = shape;
    let x: Vec<T> = (0..batch * tokens * dim).map(|i| T::from_f32(2.0 * value(1, i))).collect();
    let emb: Vec<T> = (0..batch * 6 * dim).map(|i| T::from_f32(value(2, i))).collect();
    let x = setup("adaln", device.upload(&x))?;
    let emb = setup("adaln", device.upload(&emb))?;
    let m = setup("adaln", Modulation::chunks(&emb, dim, 6, 0, 1))?;
    measure(
        format!("adaln.modulate.{tag}{}", T::DTYPE.suffix()),
        format!("B={batch} T={tokens} D={dim} stride=6D"),
        || {
            adaln_modulate(device, &x, shape, &m, &NormOptions::default())?;
            device.synchronize()
        },
    )
}

fn vit_layer_norm<T: FloatElement>(device: &Device) -> Result<Case, ProfileError> {
    let (rows, dim) = (128, 768);
    let x: Vec<T> = (0..rows * dim).map(|i| T::from_f32(2.0 * value(3, i))).collect();
    let wb: Vec<T> = (0..2 * dim).map(|i| T::from_f32(1.0 + value(4, i))).collect();
    let x = setup("adaln", device.upload(&x))?;
    let wb = setup("adaln", device.upload(&wb))?;
    let affine = Affine::new(setup("adaln", wb.view(..dim))?, setup("adaln", wb.view(dim..))?);
    measure(format!("adaln.layer_norm.{}", T::DTYPE.suffix()), format!("rows={rows} D={dim} affine"), || {
        layer_norm(device, &x, dim, Some(affine), &NormOptions::default())?;
        device.synchronize()
    })
}

pub(super) fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    Ok(vec![
        modulate::<f32>(device, SHAPE, "")?,
        modulate::<half::bf16>(device, SHAPE, "")?,
        modulate::<half::bf16>(device, DIT_XL, "dit_xl.")?,
        vit_layer_norm::<half::bf16>(device)?,
    ])
}
