//! The `tessera` command line: `tokenize` / `detokenize` (the main job), `fit`,
//! the `fsq` and `vq` demos, `doctor` and `profile`.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
mod compare;
mod demo;
mod doctor;
mod error;
mod fit;
mod image_io;
mod profile;
mod tokenize;
mod tokenizer;

use demo::{fsq_image, vq_image};
use error::CliError;
use tessera::{Device, Fsq};

#[derive(Parser)]
#[command(name = "tessera", version, about = "CUDA kernels for image tokenizers and diffusion transformers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Images (PNG, JPEG; any size) → a token file: through the embedded patch VQ tokenizer
    /// or `--tokenizer FILE`, in device batches. Prints the device, images per second and
    /// bits per pixel; `--compare DIR` also writes each reconstruction and a comparison
    /// picture and prints its PSNR.
    Tokenize(tokenize::TokenizeArgs),
    /// A token file → images, with the tokenizer that made it (checked by its identity).
    Detokenize(tokenize::DetokenizeArgs),
    /// Fit a patch VQ tokenizer (k-means codebook of patches) to your images and write it
    /// as a tokenizer file for `tokenize --tokenizer`.
    Fit(fit::FitArgs),
    /// List the backends, whether a GPU and driver were found, whether the kernels were
    /// compiled for the GPU, and run every kernel once on the emulator against the reference.
    Doctor,
    /// Profile every kernel family once at a representative shape on the emulator (needs
    /// TESSERA_SANITIZE=checks): coalescing, bytes moved, bank conflicts, lower-bound times.
    Profile(profile::ProfileArgs),
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
        /// Also write DIR/<output stem>.compare.png: original | reconstruction | error ×8.
        #[arg(long, value_name = "DIR")]
        compare: Option<PathBuf>,
    },
    /// Fit one k-means codebook to the patch×patch RGB patches of the given images (latent =
    /// the patch's 3·patch² pixels in [0, 1]) and tokenize them with it: writes
    /// OUT/<stem>.png reconstructions and prints per image PSNR, bits per pixel
    /// (tokens·log2(K)/pixels) and codebook usage. Runs on the GPU when usable, else on the
    /// CPU reference, where the seeding and each iteration cost patches × K × 3·patch² f64
    /// multiply-adds (spread over the cores): a 256×256 image with K = 4096 and patch 4 takes
    /// about 2 s in all on two cores, 512×512 about 6 s; the time grows with patches × K, so
    /// for many or large images there use a smaller --codebook-size or fewer --iterations.
    Vq {
        #[command(flatten)]
        options: vq_image::VqImageOptions,
        /// Element type of latents and codebook.
        #[arg(long, value_enum, default_value_t = VqDtype::F32)]
        dtype: VqDtype,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Also write DIR/<stem>.compare.png per image: original | reconstruction | error ×8.
        #[arg(long, value_name = "DIR")]
        compare: Option<PathBuf>,
        /// Input images (PNG).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum VqDtype {
    F32,
    Bf16,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Doctor => Ok(doctor::run()),
        Command::Profile(args) => Ok(profile::run(&args)),
        Command::Tokenize(args) => tokenize::tokenize(&args).map(|()| ExitCode::SUCCESS),
        Command::Detokenize(args) => tokenize::detokenize(&args).map(|()| ExitCode::SUCCESS),
        Command::Fit(args) => fit::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Fsq { levels, input, output, compare } => fsq(&levels, &input, &output, compare.as_deref()),
        Command::Vq { options, dtype, out, compare, inputs } => vq(&options, dtype, &inputs, &out, compare.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fsq(
    levels: &[u32],
    input: &std::path::Path,
    output: &std::path::Path,
    compare: Option<&std::path::Path>,
) -> Result<ExitCode, CliError> {
    let fsq = Fsq::new(levels)?;
    let device = Device::best();
    eprintln!("device: {}", device.selection_note());
    let image = image_io::load(input)?.0;
    let report = fsq_image::roundtrip(&device, &fsq, &image)?;
    image_io::save_png(output, &report.reconstruction)?;
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
    if let Some(dir) = compare {
        let stem = image_io::distinct_stems(&[output.to_path_buf()], "output")?.remove(0);
        let (path, psnr) = compare::write(dir, &stem, &image, &report.reconstruction)?;
        println!("comparison (PSNR {psnr:.2} dB, {:.3} bits per pixel) -> {}", report.bits_per_pixel, path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn vq(
    options: &vq_image::VqImageOptions,
    dtype: VqDtype,
    inputs: &[PathBuf],
    out: &std::path::Path,
    compare: Option<&std::path::Path>,
) -> Result<ExitCode, CliError> {
    // Output names first, so that a clash fails before any work.
    let names = image_io::distinct_stems(inputs, "inputs")?;
    let images = inputs.iter().map(|p| image_io::load(p).map(|l| l.0)).collect::<Result<Vec<_>, CliError>>()?;
    let device = Device::best();
    eprintln!("device: {}", device.selection_note());
    let bar = indicatif::ProgressBar::new(options.iterations as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("k-means {bar:30} {pos}/{len} [{elapsed}] {msg}")
            .expect("progress template"),
    );
    let mut last = None;
    let mut progress = |p: &tessera::KmeansProgress| {
        bar.set_position(p.iteration as u64);
        bar.set_message(format!("objective {:.6}, reseeded {}", p.objective, p.reseeded));
        last = Some(p.clone());
    };
    let reports = match dtype {
        VqDtype::F32 => vq_image::run::<f32>(&device, &images, options, &mut progress),
        VqDtype::Bf16 => vq_image::run::<half::bf16>(&device, &images, options, &mut progress),
    };
    bar.finish_and_clear();
    let reports = reports?;
    std::fs::create_dir_all(out).map_err(|e| CliError::Io { path: out.display().to_string(), source: e })?;
    let patches: usize = reports.iter().map(|r| r.tokens).sum();
    println!(
        "codebook: {} entries of {}x{} RGB patches (d = {}, {dtype:?}), k-means on {patches} patches, {} iterations{}",
        options.codebook_size,
        options.patch,
        options.patch,
        3 * options.patch * options.patch,
        options.iterations,
        last.map(|p| format!(", final objective (mean squared distance) {:.6}", p.objective)).unwrap_or_default()
    );
    for ((input, name), report) in inputs.iter().zip(&names).zip(&reports) {
        let path = out.join(format!("{name}.png"));
        image_io::save_png(&path, &report.reconstruction)?;
        println!(
            "{}: {}x{} pixels, {} tokens, PSNR {:.2} dB, {:.3} bits per pixel, codebook usage {}/{} ({:.1}%), perplexity {:.1} -> {}",
            input.display(),
            report.reconstruction.width,
            report.reconstruction.height,
            report.tokens,
            report.psnr_db,
            report.bits_per_pixel,
            report.distinct_entries,
            options.codebook_size,
            100.0 * report.distinct_entries as f64 / options.codebook_size as f64,
            report.perplexity,
            path.display()
        );
    }
    if let Some(dir) = compare {
        for ((name, image), report) in names.iter().zip(&images).zip(&reports) {
            let (path, psnr) = compare::write(dir, name, image, &report.reconstruction)?;
            println!(
                "{name}: comparison (PSNR {psnr:.2} dB, {:.3} bits per pixel) -> {}",
                report.bits_per_pixel,
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
