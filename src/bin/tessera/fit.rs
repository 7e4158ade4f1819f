//! `tessera fit`: a patch VQ tokenizer (the k-means codebook of `tessera vq`) fitted to the
//! user's images, written as a tokenizer file that `tokenize --tokenizer` reads.

use crate::demo::vq_image::{self, VqImageOptions};
use crate::error::{CliError as Error, Result};
use crate::image_io::{self, Conversions};
use crate::tokenizer::patch_vq::{CODEBOOK, KIND};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tessera::Device;

/// Options of `tessera fit`.
#[derive(clap::Args, Debug)]
pub(crate) struct FitArgs {
    #[command(flatten)]
    options: VqImageOptions,
    /// The tokenizer file to write (safetensors; f16 codebook).
    #[arg(long)]
    out: PathBuf,
    /// Training images (PNG or JPEG; grayscale and RGBA are converted to RGB).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// Fits and writes the tokenizer; prints the objective and the file's size.
pub(crate) fn run(args: &FitArgs) -> Result<()> {
    let mut conversions = Conversions::default();
    let mut images = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        let (image, conversion) = image_io::load(input)?;
        conversions.add(conversion);
        images.push(image);
    }
    if let Some(line) = conversions.summary() {
        eprintln!("{line}");
    }
    let device = Device::best();
    eprintln!("device: {}", device.selection_note());
    let options = args.options;
    let bar = indicatif::ProgressBar::new(options.iterations as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("k-means {bar:30} {pos}/{len} [{elapsed}] {msg}")
            .expect("progress template"),
    );
    let mut objective = None;
    let started = std::time::Instant::now();
    let fitted = vq_image::fit::<f32>(&device, &images, &options, &mut |p| {
        bar.set_position(p.iteration as u64);
        bar.set_message(format!("objective {:.6}, reseeded {}", p.objective, p.reseeded));
        objective = Some(p.objective);
    });
    bar.finish_and_clear();
    let entries = fitted?.entries().download()?;
    let patches: usize = images.iter().map(|im| vq_image::patch_grid(im, options.patch)).map(|(w, h)| w * h).sum();
    let names: Vec<String> = args
        .inputs
        .iter()
        .map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default())
        .collect();
    let bytes = write(&args.out, &entries, options.patch, options.iterations, options.seed, &names)?;
    println!(
        "fitted {} entries of {p}×{p} RGB patches to {patches} patches of {} images in {:.1} s ({} iterations{}) -> {} ({bytes} bytes)",
        options.codebook_size,
        images.len(),
        started.elapsed().as_secs_f64(),
        options.iterations,
        objective.map(|o| format!(", mean squared distance {o:.6}")).unwrap_or_default(),
        args.out.display(),
        p = options.patch
    );
    Ok(())
}

/// Writes the tokenizer file (layout in `tokenizer::patch_vq`); returns its size in bytes.
fn write(path: &Path, entries: &[f32], patch: usize, iterations: usize, seed: u64, images: &[String]) -> Result<usize> {
    let dim = 3 * patch * patch;
    let data: Vec<u8> = entries.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![entries.len() / dim, dim], &data)
        .map_err(|e| Error::invalid("out", format!("codebook tensor: {e}")))?;
    let metadata = HashMap::from([
        ("tessera.tokenizer".to_string(), KIND.to_string()),
        ("patch".to_string(), patch.to_string()),
        ("fit".to_string(), format!("tessera fit: k-means, {iterations} iterations, seed {seed}")),
        ("images".to_string(), images.join(", ")),
    ]);
    let bytes = safetensors::serialize([(CODEBOOK, view)], Some(metadata))
        .map_err(|e| Error::invalid("out", format!("serializing the codebook: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.display().to_string(), source: e })?;
    }
    std::fs::write(path, &bytes).map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
    Ok(bytes.len())
}
