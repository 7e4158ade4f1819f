//! The `tessera` command line: `tessera doctor`, `tessera fsq`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tessera::demo::fsq_image;
use tessera::{Device, Fsq};

#[derive(Parser)]
#[command(name = "tessera", version, about = "CUDA kernels for image tokenizers and diffusion transformers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the backends, whether a GPU and driver were found, whether the kernels were
    /// compiled for the GPU, and run every kernel once on the emulator against the reference.
    Doctor,
    /// Quantize an image with FSQ and write the reconstruction: each 2×2 block of each
    /// colour channel becomes a 4-dimensional latent (Haar coefficients; see
    /// `tessera::demo::fsq_image`). Prints PSNR and bits per pixel.
    Fsq {
        /// FSQ levels, one per latent dimension (4 for this demo), e.g. 8,5,5,5.
        #[arg(long, value_delimiter = ',', required = true)]
        levels: Vec<u32>,
        /// Input image (PNG).
        input: PathBuf,
        /// Output image (PNG).
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Doctor => doctor(),
        Command::Fsq { levels, input, output } => fsq(&levels, &input, &output),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn doctor() -> tessera::Result<ExitCode> {
    println!("tessera {}", env!("CARGO_PKG_VERSION"));
    println!("backends:");
    println!("  cpu       available: plain-Rust reference implementations");
    println!(
        "  emulator  available: kernel sources compiled for the host (AddressSanitizer: {})",
        if tessera::emulator::sanitizer_enabled() { "on" } else { "off" }
    );
    let probe = tessera::cuda::probe();
    println!("  cuda      driver (libcuda): {}", if probe.driver_found { "found" } else { "not found" });
    match &probe.devices {
        Ok(n) => println!("            GPUs: {n}"),
        Err(e) => println!("            GPUs: none ({e})"),
    }
    if probe.kernels_compiled {
        println!("            kernels compiled for the GPU: yes ({})", tessera::cuda::compiled_kernel_files().join(", "));
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
    for check in tessera::doctor::emulator_checks() {
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
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn fsq(levels: &[u32], input: &std::path::Path, output: &std::path::Path) -> tessera::Result<ExitCode> {
    let fsq = Fsq::new(levels)?;
    let device = Device::best();
    eprintln!("device: {}", device.selection_note());
    let image = fsq_image::load_png(input)?;
    let report = fsq_image::roundtrip(&device, &fsq, &image)?;
    fsq_image::save_png(output, &report.reconstruction)?;
    println!(
        "{}: {}x{} pixels, {} latents of levels {:?} ({} distinct of {} tokens)",
        input.display(),
        image.width,
        image.height,
        report.latents,
        levels,
        report.distinct_tokens,
        fsq.codebook_size()
    );
    println!("PSNR {:.2} dB, {:.3} bits per pixel -> {}", report.psnr_db, report.bits_per_pixel, output.display());
    Ok(ExitCode::SUCCESS)
}
