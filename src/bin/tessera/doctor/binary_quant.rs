//! LFQ and BSQ: both kernels, every dtype, against the reference.

use super::Check;
use tessera::{reference, BinaryQuantKernel, BinaryQuantOp, BinaryQuantizer, Device, FloatElement};

/// `tessera doctor`: each binary_quant kernel and dtype once on `device` against the CPU
/// reference (indices and values exact, errors within 1e-5 relative).
pub(super) fn doctor_checks(device: &Device) -> Vec<Check> {
    let mut checks = Vec::new();
    for op in [BinaryQuantOp::Lfq, BinaryQuantOp::Bsq] {
        for kernel in [BinaryQuantKernel::Simple, BinaryQuantKernel::Tiled] {
            checks.push(doctor_check::<f32>(device, op, kernel));
            checks.push(doctor_check::<half::f16>(device, op, kernel));
            checks.push(doctor_check::<half::bf16>(device, op, kernel));
        }
    }
    checks
}

fn doctor_check<T: FloatElement>(device: &Device, op: BinaryQuantOp, kernel: BinaryQuantKernel) -> Check {
    let op_name = match op {
        BinaryQuantOp::Lfq => "lfq",
        BinaryQuantOp::Bsq => "bsq",
    };
    let v1 = if kernel == BinaryQuantKernel::Simple { "_v1" } else { "" };
    let name = format!("binary_quant_{op_name}{v1}_{}", T::DTYPE.suffix());
    let outcome = (|| -> tessera::Result<String> {
        let (d, group_bits, n) = (100, 9, 300);
        let q = BinaryQuantizer::new(op, d, group_bits)?;
        let z: Vec<T> = (0..n * d).map(|i| T::from_f32(((i * 7919) % 1201) as f32 / 150.0 - 4.0)).collect();
        let latents = device.upload(&z)?;
        let mut indices = device.zeros(n * q.groups())?;
        let mut values = device.zeros::<T>(n * d)?;
        let mut sq_error = device.zeros(n)?;
        q.using(kernel).quantize_into(device, &latents, &mut indices, &mut values, &mut sq_error)?;
        let (mut ri, mut rv, mut re) = (vec![0; n * q.groups()], vec![T::default(); n * d], vec![0f32; n]);
        let run = match op {
            BinaryQuantOp::Lfq => reference::binary_quant::lfq::<T>,
            BinaryQuantOp::Bsq => reference::binary_quant::bsq::<T>,
        };
        run(d, group_bits, &z, &mut ri, &mut rv, &mut re).ok();
        let close = sq_error.download()?.iter().zip(&re).all(|(&g, &w)| (g - w).abs() <= 1e-5 + 1e-5 * w.abs());
        if indices.download()? == ri && values.download()? == rv && close {
            Ok(format!("{n} latents, d = {d}, groups of {group_bits} bits: indices and values exact, errors close"))
        } else {
            Err(tessera::Error::Emulator("output differs from the CPU reference".into()))
        }
    })();
    Check { name, outcome: outcome.map_err(|e| e.to_string()) }
}
