//! `tessera doctor`: what this build and host offer, and one run of every kernel on the
//! emulator against its CPU reference.

use crate::device::{Device, FloatElement};
use crate::kernels::codebook::{Codebook, Metric, SearchOptions, SearchPath};
use crate::kernels::fsq::{Fsq, FsqKernel};
use crate::reference;

/// One kernel check: a name and either a short success detail or the failure.
#[derive(Debug)]
pub struct Check {
    pub name: String,
    pub outcome: Result<String, String>,
}

/// Runs every kernel once on the emulator and compares it with the reference.
pub fn emulator_checks() -> Vec<Check> {
    let device = Device::emulator();
    let mut checks = Vec::new();
    for kernel in [FsqKernel::Simple, FsqKernel::Tiled] {
        checks.push(fsq_quantize_check::<f32>(&device, kernel));
        checks.push(fsq_quantize_check::<half::f16>(&device, kernel));
        checks.push(fsq_quantize_check::<half::bf16>(&device, kernel));
    }
    checks.push(fsq_dequantize_check::<f32>(&device));
    checks.push(fsq_dequantize_check::<half::f16>(&device));
    checks.push(fsq_dequantize_check::<half::bf16>(&device));
    checks.push(codebook_check::<f32>(&device, SearchPath::Simt, 8, Metric::SquaredL2, 1));
    checks.push(codebook_check::<half::bf16>(&device, SearchPath::Simt, 8, Metric::Cosine, 3));
    checks.push(codebook_check::<half::f16>(&device, SearchPath::TensorCore, 64, Metric::SquaredL2, 1));
    checks.push(codebook_check::<half::bf16>(&device, SearchPath::TensorCore, 32, Metric::Cosine, 2));
    checks.push(codebook_check::<f32>(&device, SearchPath::Unfused, 16, Metric::SquaredL2, 1));
    checks.extend(crate::kernels::binary_quant::doctor_checks(&device));
    checks.extend(crate::kernels::kmeans::doctor_checks(&device));
    checks
}

fn fsq_quantize_check<T: FloatElement>(device: &Device, kernel: FsqKernel) -> Check {
    let name = match kernel {
        FsqKernel::Simple => format!("fsq_quantize_v1_{}", T::DTYPE.suffix()),
        FsqKernel::Tiled => format!("fsq_quantize_{}", T::DTYPE.suffix()),
    };
    let outcome = (|| -> crate::Result<String> {
        let levels = [8, 5, 5, 5];
        let fsq = Fsq::new(&levels)?;
        let n = 1000;
        let z: Vec<T> = (0..n * 4).map(|i| T::from_f32(((i * 7919) % 1201) as f32 / 150.0 - 4.0)).collect();
        let latents = device.upload(&z)?;
        let mut codes = device.zeros(n * 4)?;
        let mut values = device.zeros::<T>(n * 4)?;
        let mut indices = device.zeros(n)?;
        fsq.quantize_with(kernel, device, &latents, &mut codes, &mut values, &mut indices)?;
        let (mut rc, mut rv, mut ri) = (vec![0; n * 4], vec![T::default(); n * 4], vec![0; n]);
        reference::fsq::quantize(&levels, &z, &mut rc, &mut rv, &mut ri).ok();
        let exact = codes.download()? == rc && indices.download()? == ri && values.download()? == rv;
        if exact {
            Ok(format!("{n} latents, levels {levels:?}: codes, values and indices exact"))
        } else {
            Err(crate::Error::Emulator("output differs from the CPU reference".into()))
        }
    })();
    Check { name, outcome: outcome.map_err(|e| e.to_string()) }
}

fn fsq_dequantize_check<T: FloatElement>(device: &Device) -> Check {
    let name = format!("fsq_dequantize_{}", T::DTYPE.suffix());
    let outcome = (|| -> crate::Result<String> {
        let levels = [7, 5, 3, 2];
        let fsq = Fsq::new(&levels)?;
        let all: Vec<u32> = (0..fsq.codebook_size()).collect();
        let out = fsq.dequantize::<T>(device, &device.upload(&all)?)?;
        let (mut rc, mut rv) = (vec![0; all.len() * 4], vec![T::default(); all.len() * 4]);
        reference::fsq::dequantize(&levels, &all, &mut rc, &mut rv).ok();
        if out.codes.download()? == rc && out.values.download()? == rv {
            Ok(format!("all {} indices of levels {levels:?}: exact", all.len()))
        } else {
            Err(crate::Error::Emulator("output differs from the CPU reference".into()))
        }
    })();
    Check { name, outcome: outcome.map_err(|e| e.to_string()) }
}

/// A deterministic value in [-1, 1).
fn pseudo_random(i: usize) -> f32 {
    ((i as u32).wrapping_mul(2654435761) >> 8) as f32 / 8_388_608.0 - 1.0
}

fn codebook_check<T: FloatElement>(
    device: &Device,
    path: SearchPath,
    d: usize,
    metric: Metric,
    splits: usize,
) -> Check {
    let kernel = match path {
        SearchPath::Simt | SearchPath::Auto => "codebook_search_simt",
        SearchPath::TensorCore => "codebook_search_mma",
        SearchPath::Unfused => "codebook_distances+argmin",
    };
    let name = format!("{kernel}_{}", T::DTYPE.suffix());
    let outcome = (|| -> crate::Result<String> {
        let (n, k) = (200, 300);
        let z: Vec<T> = (0..n * d).map(|i| T::from_f32(pseudo_random(i))).collect();
        let e: Vec<T> = (0..k * d).map(|i| T::from_f32(pseudo_random(i + 7_777_777))).collect();
        let codebook = Codebook::new(device, device.upload(&e)?, d, metric)?;
        let options = SearchOptions { path, splits: Some(splits), ..SearchOptions::default() };
        let got = codebook.quantize(device, &device.upload(&z)?, &options)?.indices.download()?;
        let want = reference::codebook::search(&z, &e, d, metric);
        // An index may differ only where the reference sees a tie (f32 accumulation).
        for (row, (&g, &w)) in got.iter().zip(&want.indices).enumerate() {
            let dg = reference::codebook::distance(&z, &e, d, row, g as usize, metric);
            if g != w && (dg - want.distances[row]).abs() > 1e-4 * (1.0 + want.distances[row]) {
                return Err(crate::Error::Emulator(format!("row {row}: index {g}, reference {w}")));
            }
        }
        Ok(format!("{n} latents × {k} entries, d = {d}, {metric:?}, {splits} split(s): indices match"))
    })();
    Check { name, outcome: outcome.map_err(|e| e.to_string()) }
}
