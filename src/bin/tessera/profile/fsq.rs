//! FSQ: quantize (the tiled kernel in f32 and bf16, the one-thread-per-row v1 in f32) and
//! dequantize (f32, bf16) of n = 16384 latents of d = 4, levels 8,5,5,5.

use super::{measure, setup, value, Case, ProfileError};
use tessera::{Device, FloatElement, Fsq, FsqKernel};

const N: usize = 16384;
const LEVELS: [u32; 4] = [8, 5, 5, 5];

fn shape() -> String {
    format!("n={N} d={}", LEVELS.len())
}

fn quantize<T: FloatElement>(device: &Device, kernel: FsqKernel) -> Result<Case, ProfileError> {
    let fsq = Fsq::new(&LEVELS).expect("valid levels").using(kernel);
    let z: Vec<T> = (0..N * fsq.dim()).map(|i| T::from_f32(2.0 * value(1, i))).collect();
    let z = setup("fsq", device.upload(&z))?;
    let variant = match kernel {
        FsqKernel::Simple => ".v1",
        FsqKernel::Tiled => "",
    };
    measure(format!("fsq.quantize{variant}.{}", T::DTYPE.suffix()), shape(), || {
        fsq.quantize(device, &z)?;
        device.synchronize()
    })
}

fn dequantize<T: FloatElement>(device: &Device) -> Result<Case, ProfileError> {
    let fsq = Fsq::new(&LEVELS).expect("valid levels");
    let size = fsq.codebook_size();
    let indices: Vec<u32> = (0..N as u32).map(|i| i.wrapping_mul(2_654_435_761) % size).collect();
    let indices = setup("fsq", device.upload(&indices))?;
    measure(format!("fsq.dequantize.{}", T::DTYPE.suffix()), shape(), || {
        fsq.dequantize::<T>(device, &indices)?;
        device.synchronize()
    })
}

pub(super) fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    Ok(vec![
        quantize::<f32>(device, FsqKernel::Tiled)?,
        quantize::<half::bf16>(device, FsqKernel::Tiled)?,
        quantize::<f32>(device, FsqKernel::Simple)?,
        dequantize::<f32>(device)?,
        dequantize::<half::bf16>(device)?,
    ])
}
