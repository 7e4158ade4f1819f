//! The tile GEMM: the direct 128×128 kernel on tensor cores (bf16, with the GELU and the
//! gated-residual epilogues; f16 in, f32 out), TF32 and CUDA cores (f32), and the skinny
//! split-K path with its reduction (the adaLN modulation shape, m = batch), beside the
//! unfused baseline (plain GEMM, then elementwise kernels) — at shapes of a DiT-S block
//! (D = 384) cut to 256 tokens so that the emulator runs them in seconds.

use super::{measure, setup, value, Case, ProfileError};
use half::bf16;
use tessera::{
    linear_into, linear_unfused_into, Device, FloatElement, GemmEpilogue, GemmOptions, GemmPath, GemmShape,
    LinearOutput, SplitK,
};

fn data<T: FloatElement>(seed: u32, len: usize) -> Vec<T> {
    (0..len).map(|i| T::from_f32(value(seed, i))).collect()
}

#[derive(Clone, Copy)]
enum Epi {
    None,
    Gelu,
    Gated,
}

fn case<T: FloatElement + LinearOutput<T>, O: LinearOutput<T>>(
    device: &Device,
    id: &str,
    shape: GemmShape,
    epi: Epi,
    options: GemmOptions,
    unfused: bool,
) -> Result<Case, ProfileError> {
    let GemmShape { m, n, k } = shape;
    let x = setup(id, device.upload(&data::<T>(1, m * k)))?;
    let w = setup(id, device.upload(&data::<T>(2, n * k)))?;
    let bias = setup(id, device.upload(&data::<T>(3, n)))?;
    let gate = setup(id, device.upload(&data::<T>(4, 2 * n)))?;
    let mut out = setup(id, device.upload(&data::<O>(5, m * n)))?;
    let mut out_t = setup(id, device.upload(&data::<T>(5, m * n)))?;
    let epilogue = match epi {
        Epi::None => GemmEpilogue::None,
        Epi::Gelu => GemmEpilogue::BiasGelu(bias.as_view()),
        Epi::Gated => GemmEpilogue::GatedResidual {
            bias: bias.as_view(),
            gate: gate.as_view(),
            gate_stride: n,
            tokens_per_sample: m / 2,
        },
    };
    measure(id, format!("m={m} n={n} k={k}"), || {
        if unfused {
            linear_unfused_into(device, &x, &w, shape, &epilogue, &mut out_t, &options)?;
        } else {
            linear_into(device, &x, &w, shape, &epilogue, &mut out, &options)?;
        }
        device.synchronize()
    })
}

pub(super) fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    let mlp = GemmShape { m: 256, n: 1536, k: 384 };
    let proj = GemmShape { m: 256, n: 384, k: 384 };
    let modulation = GemmShape { m: 8, n: 6 * 384, k: 384 };
    let direct = |path| GemmOptions { path, split_k: SplitK::Direct };
    let tc = direct(GemmPath::TensorCore);
    Ok(vec![
        case::<bf16, bf16>(device, "gemm.bias_gelu.bf16", mlp, Epi::Gelu, tc, false)?,
        case::<bf16, bf16>(device, "gemm.bias_gelu.unfused.bf16", mlp, Epi::Gelu, tc, true)?,
        case::<bf16, bf16>(device, "gemm.gated.bf16", proj, Epi::Gated, tc, false)?,
        case::<half::f16, f32>(device, "gemm.none.f16_to_f32", proj, Epi::None, tc, false)?,
        case::<f32, f32>(device, "gemm.none.tf32", proj, Epi::None, direct(GemmPath::Tf32), false)?,
        case::<f32, f32>(device, "gemm.none.f32", proj, Epi::None, direct(GemmPath::Simt), false)?,
        case::<bf16, bf16>(device, "gemm.skinny.bf16", modulation, Epi::None, GemmOptions::default(), false)?,
    ])
}
