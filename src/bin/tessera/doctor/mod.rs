//! `tessera doctor`: what this build and host offer, and one run of every kernel on the
//! emulator against its CPU reference. Every check calls only tessera's public API.

mod binary_quant;
mod codebook;
mod fsq;
mod kmeans;
mod residual_vq;

use half::{bf16, f16};
use std::process::ExitCode;
use tessera::{Device, FsqKernel, Metric, SearchPath};

/// One kernel check: a name and either a short success detail or the failure.
#[derive(Debug)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) outcome: Result<String, String>,
}

/// Runs every kernel once on the emulator and compares it with the reference.
fn emulator_checks() -> Vec<Check> {
    let device = Device::emulator();
    let mut checks = Vec::new();
    for kernel in [FsqKernel::Simple, FsqKernel::Tiled] {
        checks.push(fsq::fsq_quantize_check::<f32>(&device, kernel));
        checks.push(fsq::fsq_quantize_check::<f16>(&device, kernel));
        checks.push(fsq::fsq_quantize_check::<bf16>(&device, kernel));
    }
    checks.push(fsq::fsq_dequantize_check::<f32>(&device));
    checks.push(fsq::fsq_dequantize_check::<f16>(&device));
    checks.push(fsq::fsq_dequantize_check::<bf16>(&device));
    checks.push(codebook::codebook_check::<f32>(&device, SearchPath::Simt, 8, Metric::SquaredL2, 1));
    checks.push(codebook::codebook_check::<bf16>(&device, SearchPath::Simt, 8, Metric::Cosine, 3));
    checks.push(codebook::codebook_check::<f16>(&device, SearchPath::TensorCore, 64, Metric::SquaredL2, 1));
    checks.push(codebook::codebook_check::<bf16>(&device, SearchPath::TensorCore, 32, Metric::Cosine, 2));
    checks.push(codebook::codebook_check::<f32>(&device, SearchPath::Unfused, 16, Metric::SquaredL2, 1));
    checks.extend(binary_quant::doctor_checks(&device));
    checks.extend(kmeans::doctor_checks(&device));
    checks.push(residual_vq::doctor_check(&device));
    checks
}

/// A deterministic value in [-1, 1).
fn pseudo_random(i: usize) -> f32 {
    ((i as u32).wrapping_mul(2654435761) >> 8) as f32 / 8_388_608.0 - 1.0
}

/// Prints the backends and the kernel checks; fails when a check fails.
pub(crate) fn run() -> ExitCode {
    println!("tessera {}", env!("CARGO_PKG_VERSION"));
    println!("backends:");
    println!("  cpu       available: plain-Rust reference implementations");
    let on_off = |on: bool| if on { "on" } else { "off" };
    println!(
        "  emulator  available: kernel sources compiled for the host (checks: {}, AddressSanitizer: {})",
        on_off(tessera::emulator::checks_enabled()),
        on_off(tessera::emulator::sanitizer_enabled())
    );
    let probe = tessera::cuda::probe();
    println!("  cuda      driver (libcuda): {}", if probe.driver_found { "found" } else { "not found" });
    match &probe.devices {
        Ok(n) => println!("            GPUs: {n}"),
        Err(e) => println!("            GPUs: none ({e})"),
    }
    if probe.kernels_compiled {
        println!(
            "            kernels compiled for the GPU: yes ({})",
            tessera::cuda::compiled_kernel_files().join(", ")
        );
    } else {
        println!("            kernels compiled for the GPU: no (built without nvcc)");
    }
    match Device::cuda(0) {
        Ok(d) => println!("            usable: yes, {}", d.selection_note()),
        Err(e) => println!("            usable: no ({e})"),
    }
    println!("Device::best() picks: {}", Device::best().selection_note());
    println!("kernels on the emulator, against the CPU reference:");
    let mut failed = 0;
    for check in emulator_checks() {
        match &check.outcome {
            Ok(detail) => println!("  ok    {:<28} {detail}", check.name),
            Err(e) => {
                failed += 1;
                println!("  FAIL  {:<28} {e}", check.name);
            }
        }
    }
    if failed > 0 {
        println!("{failed} kernel check(s) failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
