//! FSQ: both quantize variants and dequantize, every dtype, exact against the reference.

use super::Check;
use tessera::{reference, Device, FloatElement, Fsq, FsqKernel};

pub(super) fn fsq_quantize_check<T: FloatElement>(device: &Device, kernel: FsqKernel) -> Check {
    let name = match kernel {
        FsqKernel::Simple => format!("fsq_quantize_v1_{}", T::DTYPE.suffix()),
        FsqKernel::Tiled => format!("fsq_quantize_{}", T::DTYPE.suffix()),
    };
    let outcome = (|| -> tessera::Result<String> {
        let levels = [8, 5, 5, 5];
        let fsq = Fsq::new(&levels)?;
        let n = 1000;
        let z: Vec<T> = (0..n * 4).map(|i| T::from_f32(((i * 7919) % 1201) as f32 / 150.0 - 4.0)).collect();
        let latents = device.upload(&z)?;
        let mut codes = device.zeros(n * 4)?;
        let mut values = device.zeros::<T>(n * 4)?;
        let mut indices = device.zeros(n)?;
        fsq.using(kernel).quantize_into(device, &latents, &mut codes, &mut values, &mut indices)?;
        let (mut rc, mut rv, mut ri) = (vec![0; n * 4], vec![T::default(); n * 4], vec![0; n]);
        reference::fsq::quantize(&levels, &z, &mut rc, &mut rv, &mut ri).ok();
        let exact = codes.download()? == rc && indices.download()? == ri && values.download()? == rv;
        if exact {
            Ok(format!("{n} latents, levels {levels:?}: codes, values and indices exact"))
        } else {
            Err(tessera::Error::Emulator("output differs from the CPU reference".into()))
        }
    })();
    Check { name, outcome: outcome.map_err(|e| e.to_string()) }
}

pub(super) fn fsq_dequantize_check<T: FloatElement>(device: &Device) -> Check {
    let name = format!("fsq_dequantize_{}", T::DTYPE.suffix());
    let outcome = (|| -> tessera::Result<String> {
        let levels = [7, 5, 3, 2];
        let fsq = Fsq::new(&levels)?;
        let all: Vec<u32> = (0..fsq.codebook_size()).collect();
        let out = fsq.dequantize::<T>(device, &device.upload(&all)?)?;
        let (mut rc, mut rv) = (vec![0; all.len() * 4], vec![T::default(); all.len() * 4]);
        reference::fsq::dequantize(&levels, &all, &mut rc, &mut rv).ok();
        if out.codes.download()? == rc && out.values.download()? == rv {
            Ok(format!("all {} indices of levels {levels:?}: exact", all.len()))
        } else {
            Err(tessera::Error::Emulator("output differs from the CPU reference".into()))
        }
    })();
    Check { name, outcome: outcome.map_err(|e| e.to_string()) }
}
