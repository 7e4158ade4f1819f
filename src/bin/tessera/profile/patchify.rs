//! Patch embedding and unpatchify at small shapes: the fused image and latent patch
//! embeddings (bf16), the unfused three-kernel baseline (latents, bf16), and the
//! unpatchify folds (latents bf16, image f32).

use super::{measure, setup, value, Case, ProfileError};
use tessera::{
    patchify_image_into, patchify_latents_into, patchify_unfused_into, unpatchify_image_into, unpatchify_latents_into,
    Device, FloatElement, ImageNorm, PatchInput, PatchShape,
};

/// 2 images of 64×64 RGB, p = 16, D = 192 (a ViT-Tiny input: 32 tokens).
const IMAGE: PatchShape = PatchShape { batch: 2, channels: 3, height: 64, width: 64, patch: 16, dim: 192 };
/// 2 latents of 4×16×16, p = 2, D = 128 (128 tokens).
const LATENTS: PatchShape = PatchShape { batch: 2, channels: 4, height: 16, width: 16, patch: 2, dim: 128 };
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

fn shape_str(s: &PatchShape) -> String {
    format!("B={} C={} {}x{} p={} D={}", s.batch, s.channels, s.height, s.width, s.patch, s.dim)
}

fn data<T: FloatElement>(seed: u32, len: usize, scale: f32) -> Vec<T> {
    (0..len).map(|i| T::from_f32(scale * value(seed, i))).collect()
}

fn embed<T: FloatElement + tessera::LinearOutput<T>>(
    device: &Device,
    s: PatchShape,
    image: bool,
    unfused: bool,
) -> Result<Case, ProfileError> {
    let (k, t) = (s.patch_len(), s.tokens());
    let pixels = s.batch * s.channels * s.height * s.width;
    let w = setup("patchify", device.upload(&data::<T>(1, s.dim * k, 0.05)))?;
    let b = setup("patchify", device.upload(&data::<T>(2, s.dim, 1.0)))?;
    let pos = setup("patchify", device.upload(&data::<T>(3, t * s.dim, 1.0)))?;
    let x = setup("patchify", device.upload(&data::<T>(4, pixels, 1.0)))?;
    let img: Vec<u8> = (0..pixels).map(|i| ((value(5, i) + 1.0) * 127.5) as u8).collect();
    let img = setup("patchify", device.upload(&img))?;
    let mut out = setup("patchify", device.zeros::<T>(s.batch * t * s.dim))?;
    let norm = ImageNorm { mean: &MEAN, std: &STD };
    let what = if image { "image" } else { "latents" };
    let variant = if unfused { ".unfused" } else { "" };
    measure(format!("patchify.{what}{variant}.{}", T::DTYPE.suffix()), shape_str(&s), || {
        match (image, unfused) {
            (true, false) => patchify_image_into(device, &img, &norm, &w, &b, Some(pos.as_view()), s, &mut out)?,
            (false, false) => patchify_latents_into(device, &x, &w, &b, Some(pos.as_view()), s, &mut out)?,
            (true, true) => patchify_unfused_into(
                device,
                PatchInput::Image(img.as_view(), norm),
                &w,
                &b,
                Some(pos.as_view()),
                s,
                &mut out,
            )?,
            (false, true) => patchify_unfused_into(
                device,
                PatchInput::Latents(x.as_view()),
                &w,
                &b,
                Some(pos.as_view()),
                s,
                &mut out,
            )?,
        }
        device.synchronize()
    })
}

fn unpatchify<T: FloatElement>(device: &Device, s: PatchShape, image: bool) -> Result<Case, ProfileError> {
    let n = s.patch_len();
    let tokens = setup("unpatchify", device.upload(&data::<T>(6, s.batch * s.tokens() * s.dim, 1.0)))?;
    let w = setup("unpatchify", device.upload(&data::<T>(7, n * s.dim, 0.1)))?;
    let b = setup("unpatchify", device.upload(&data::<T>(8, n, 0.1)))?;
    let pixels = s.batch * s.channels * s.height * s.width;
    let what = if image { "image" } else { "latents" };
    measure(format!("unpatchify.{what}.{}", T::DTYPE.suffix()), shape_str(&s), || {
        if image {
            let mut out = device.zeros::<u8>(pixels)?;
            let norm = ImageNorm { mean: &MEAN, std: &STD };
            unpatchify_image_into(device, &tokens, &w, &b, &norm, s, &mut out)?;
        } else {
            let mut out = device.zeros::<T>(pixels)?;
            unpatchify_latents_into(device, &tokens, &w, &b, s, &mut out)?;
        }
        device.synchronize()
    })
}

pub(super) fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    use half::bf16;
    Ok(vec![
        embed::<bf16>(device, IMAGE, true, false)?,
        embed::<bf16>(device, LATENTS, false, false)?,
        embed::<f32>(device, LATENTS, false, false)?,
        embed::<bf16>(device, LATENTS, false, true)?,
        unpatchify::<bf16>(device, PatchShape { dim: 128, ..LATENTS }, false)?,
        unpatchify::<f32>(device, PatchShape { dim: 192, ..IMAGE }, true)?,
    ])
}
