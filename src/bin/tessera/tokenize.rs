//! `tessera tokenize` and `tessera detokenize`: images → a token file → images.
//!
//! Images are read one device batch at a time (the tokenizer's pixel budget), so memory
//! holds one batch of pixels and the tokens of all images; a progress bar counts images.
//! The token file's layout is documented in `tessera::tokens` (docs/token-file.md).

use crate::compare;
use crate::demo::fsq_image::RgbImage;
use crate::error::{CliError as Error, Result};
use crate::image_io::{self, Conversions};
use crate::tokenizer::{self, Encoded};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tessera::tokens::{ImageTokens, TokenFile};
use tessera::Device;

/// Options of `tessera tokenize`.
#[derive(clap::Args, Debug)]
pub(crate) struct TokenizeArgs {
    /// The token file to write.
    #[arg(long)]
    out: PathBuf,
    /// A tokenizer file (safetensors: a patch VQ from `tessera fit`, or a ViT tokenizer in
    /// the layout of `tessera::weights::TokenizerWeights`); default: the embedded patch VQ.
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// Also decode the tokens again and write DIR/<stem>.png (the reconstruction) and
    /// DIR/<stem>.compare.png (original | reconstruction | error ×8), and print the PSNR.
    #[arg(long, value_name = "DIR")]
    compare: Option<PathBuf>,
    /// Images (PNG or JPEG, any size; grayscale and RGBA are converted to RGB).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// Options of `tessera detokenize`.
#[derive(clap::Args, Debug)]
pub(crate) struct DetokenizeArgs {
    /// The token file.
    tokens: PathBuf,
    /// Output directory: one DIR/<name>.png per image (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The tokenizer file the tokens were made with (default: the embedded patch VQ); a
    /// different one is an error.
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
}

fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} images [{{elapsed}}] {{msg}}"
        ))
        .expect("progress template"),
    );
    bar
}

/// Groups consecutive items into batches of at most `budget` pixels (at least one item each).
fn batches(pixels: &[usize], budget: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut sum) = (0, 0usize);
    for (i, &p) in pixels.iter().enumerate() {
        if i > start && sum + p > budget {
            out.push(start..i);
            (start, sum) = (i, 0);
        }
        sum += p;
    }
    if start < pixels.len() {
        out.push(start..pixels.len());
    }
    out
}

fn record(name: &str, image: &RgbImage, encoded: Encoded) -> ImageTokens {
    ImageTokens {
        name: name.to_string(),
        width: image.width as u32,
        height: image.height as u32,
        grid_rows: encoded.grid_rows,
        grid_cols: encoded.grid_cols,
        ids: encoded.ids,
        values: encoded.values,
    }
}

/// Bits of one image's tokens in the payload (its share of the packed ids or values).
fn image_bits(file: &TokenFile, record: &ImageTokens) -> f64 {
    let tokens = |i: &ImageTokens| i.grid_rows as f64 * i.grid_cols as f64;
    let all: f64 = file.images.iter().map(tokens).sum();
    file.payload_bits() as f64 * tokens(record) / all.max(1.0)
}

/// Bits of the token payload per image pixel.
fn bits_per_pixel(file: &TokenFile) -> f64 {
    let pixels: u64 = file.images.iter().map(|i| i.width as u64 * i.height as u64).sum();
    file.payload_bits() as f64 / pixels.max(1) as f64
}

pub(crate) fn tokenize(args: &TokenizeArgs) -> Result<()> {
    let names = image_io::distinct_stems(&args.inputs, "inputs")?;
    let device = Device::best();
    eprintln!("device: {}", device.selection_note());
    let tokenizer = tokenizer::load(&device, args.tokenizer.as_deref())?;
    eprintln!("tokenizer: {}", tokenizer.describe());
    // Image sizes from the headers, to cut batches without decoding everything first.
    let mut sizes = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        let (w, h) = image::image_dimensions(input)
            .map_err(|e| Error::Image { path: input.display().to_string(), message: e.to_string() })?;
        sizes.push(w as usize * h as usize);
    }
    let started = Instant::now();
    let bar = progress(args.inputs.len(), "tokenize");
    let mut conversions = Conversions::default();
    let mut records = Vec::with_capacity(args.inputs.len());
    let mut compared = Vec::new();
    let mut device_seconds = 0.0;
    if let Some(dir) = &args.compare {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.display().to_string(), source: e })?;
    }
    for batch in batches(&sizes, tokenizer.batch_pixels()) {
        let mut images = Vec::with_capacity(batch.len());
        for input in &args.inputs[batch.clone()] {
            let (image, conversion) = image_io::load(input)?;
            conversions.add(conversion);
            images.push(image);
        }
        let t = Instant::now();
        let encoded = tokenizer.encode(&device, &images.iter().collect::<Vec<_>>())?;
        device_seconds += t.elapsed().as_secs_f64();
        let first = records.len();
        for ((name, image), e) in names[batch.clone()].iter().zip(&images).zip(encoded) {
            records.push(record(name, image, e));
        }
        if let Some(dir) = &args.compare {
            let batch_records: Vec<&ImageTokens> = records[first..].iter().collect();
            let reconstructions = tokenizer.decode(&device, &batch_records)?;
            for ((record, image), recon) in batch_records.iter().zip(&images).zip(&reconstructions) {
                image_io::save_png(&output_path(dir, &record.name)?, recon)?;
                let (path, psnr) = compare::write(dir, &record.name, image, recon)?;
                compared.push((record.name.clone(), psnr, path));
            }
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    if let Some(line) = conversions.summary() {
        eprintln!("{line}");
    }
    let file = TokenFile { tokenizer: tokenizer.identity().clone(), payload: tokenizer.payload(), images: records };
    let bytes = file.to_bytes()?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.display().to_string(), source: e })?;
    }
    std::fs::write(&args.out, &bytes).map_err(|e| Error::Io { path: args.out.display().to_string(), source: e })?;
    let seconds = started.elapsed().as_secs_f64();
    for (record, (name, psnr, path)) in file.images.iter().zip(&compared) {
        let bpp = image_bits(&file, record) / (record.width as f64 * record.height as f64);
        println!(
            "{name}: {}x{} pixels, {}x{} tokens, PSNR {psnr:.2} dB, {bpp:.3} bits per pixel -> {}",
            record.width,
            record.height,
            record.grid_rows,
            record.grid_cols,
            path.display()
        );
    }
    report(&file, bytes.len(), seconds, device_seconds, &device, "tokenized");
    println!("tokens -> {}", args.out.display());
    Ok(())
}

fn report(file: &TokenFile, file_bytes: usize, seconds: f64, device_seconds: f64, device: &Device, verb: &str) {
    let pixels: u64 = file.images.iter().map(|i| i.width as u64 * i.height as u64).sum();
    let tokens: u64 = file.images.iter().map(|i| i.grid_rows as u64 * i.grid_cols as u64).sum();
    println!(
        "{verb} {} images ({:.2} Mpixels, {tokens} tokens) on {} in {seconds:.2} s: {:.1} images/s ({:.2} s in the tokenizer); \
         {:.3} bits per pixel ({} bits per id; file {file_bytes} bytes = {:.3} bits per pixel with headers)",
        file.images.len(),
        pixels as f64 / 1e6,
        device.name(),
        file.images.len() as f64 / seconds.max(1e-9),
        device_seconds,
        bits_per_pixel(file),
        file.bits_per_id(),
        file_bytes as f64 * 8.0 / pixels.max(1) as f64,
    );
}

pub(crate) fn detokenize(args: &DetokenizeArgs) -> Result<()> {
    let file = TokenFile::read(&args.tokens)?;
    let device = Device::best();
    eprintln!("device: {}", device.selection_note());
    let tokenizer = tokenizer::load(&device, args.tokenizer.as_deref())?;
    file.check_tokenizer(tokenizer.identity())?;
    eprintln!("tokenizer: {}", tokenizer.describe());
    std::fs::create_dir_all(&args.out).map_err(|e| Error::Io { path: args.out.display().to_string(), source: e })?;
    let started = Instant::now();
    let bar = progress(file.images.len(), "detokenize");
    let sizes: Vec<usize> = file.images.iter().map(|i| i.width as usize * i.height as usize).collect();
    let mut device_seconds = 0.0;
    for batch in batches(&sizes, tokenizer.batch_pixels()) {
        let records: Vec<&ImageTokens> = file.images[batch.clone()].iter().collect();
        let t = Instant::now();
        let images = tokenizer.decode(&device, &records)?;
        device_seconds += t.elapsed().as_secs_f64();
        for (record, image) in records.iter().zip(&images) {
            image_io::save_png(&output_path(&args.out, &record.name)?, image)?;
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    let bytes = std::fs::metadata(&args.tokens).map(|m| m.len() as usize).unwrap_or(0);
    report(&file, bytes, started.elapsed().as_secs_f64(), device_seconds, &device, "detokenized");
    println!("images -> {}", args.out.join("<name>.png").display());
    Ok(())
}

/// DIR/<name>.png, refusing names that would leave DIR (the name comes from the file).
fn output_path(dir: &Path, name: &str) -> Result<PathBuf> {
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(Error::invalid("tokens", format!("image name {name:?} is not a plain file name")));
    }
    Ok(dir.join(format!("{name}.png")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_budget_and_take_an_oversized_item_alone() {
        assert_eq!(batches(&[3, 3, 3, 10, 1], 6), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(batches(&[], 6), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(batches(&[1, 1, 1], 100), vec![0..3]);
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        let dir = Path::new("out");
        assert_eq!(output_path(dir, "cat").unwrap(), dir.join("cat.png"));
        for bad in ["", "..", "a/b", "..\\x"] {
            assert!(output_path(dir, bad).is_err(), "{bad:?}");
        }
    }
}
