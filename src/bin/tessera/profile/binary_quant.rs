//! LFQ and BSQ: the fused tiled kernels (f32, bf16) and the one-thread-per-row v1 (f32),
//! n = 8192 latents of d = 32, 16-bit groups.

use super::{measure, setup, value, Case, ProfileError};
use tessera::{BinaryQuantKernel, BinaryQuantizer, Device, FloatElement};

const N: usize = 8192;
const D: usize = 32;
const GROUP_BITS: u32 = 16;

fn quantize<T: FloatElement>(device: &Device, bsq: bool, kernel: BinaryQuantKernel) -> Result<Case, ProfileError> {
    let q = if bsq { BinaryQuantizer::bsq(D, GROUP_BITS) } else { BinaryQuantizer::lfq(D, GROUP_BITS) };
    let q = q.expect("valid quantizer").using(kernel);
    let op = if bsq { "bsq" } else { "lfq" };
    let variant = match kernel {
        BinaryQuantKernel::Simple => ".v1",
        BinaryQuantKernel::Tiled => "",
    };
    let z: Vec<T> = (0..N * D).map(|i| T::from_f32(value(5, i))).collect();
    let z = setup(op, device.upload(&z))?;
    measure(format!("binary.{op}{variant}.{}", T::DTYPE.suffix()), format!("n={N} d={D} g={GROUP_BITS}"), || {
        q.quantize(device, &z)?;
        device.synchronize()
    })
}

pub(super) fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    Ok(vec![
        quantize::<f32>(device, false, BinaryQuantKernel::Tiled)?,
        quantize::<half::bf16>(device, false, BinaryQuantKernel::Tiled)?,
        quantize::<f32>(device, true, BinaryQuantKernel::Tiled)?,
        quantize::<half::bf16>(device, true, BinaryQuantKernel::Tiled)?,
        quantize::<f32>(device, false, BinaryQuantKernel::Simple)?,
        quantize::<f32>(device, true, BinaryQuantKernel::Simple)?,
    ])
}
