//! `tessera tokenize` / `detokenize` / `fit` as a user runs them: the shipped sample image
//! through the embedded tokenizer, odd sizes and colour types, a tokenizer of one's own,
//! and the errors of a wrong tokenizer or a damaged token file.

#[allow(dead_code)]
mod common;
#[path = "common/tokenizer.rs"]
mod tokenizer;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tessera(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera")).args(args).output().expect("run tessera")
}

fn run_ok(args: &[&std::ffi::OsStr]) -> String {
    let out = tessera(args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "tessera {args:?}\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The error message of a run that must fail (exit code 1, not a panic's 101).
fn run_err(args: &[&std::ffi::OsStr]) -> String {
    let out = tessera(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "tessera {args:?} should fail cleanly\n{stderr}");
    stderr
}

fn number_after(line: &str, key: &str) -> f64 {
    line.split(key)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn os<P: AsRef<std::ffi::OsStr> + ?Sized>(p: &P) -> &std::ffi::OsStr {
    p.as_ref()
}

fn rgb(path: &Path) -> image::RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
}

#[test]
fn the_readme_command_round_trips_the_sample_under_one_bit_per_pixel() {
    let dir = scratch("readme");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/chelsea.png");
    let tokens = dir.join("tokens.tsr");
    let stdout = run_ok(&[os("tokenize"), os(&sample), os("--out"), os(&tokens), os("--compare"), os(&dir)]);
    let line = stdout.lines().find(|l| l.starts_with("chelsea:")).unwrap_or_else(|| panic!("{stdout}"));
    // 451×300 in 4×4 patches: 113×75 tokens of 12 bits.
    assert!(line.contains("451x300 pixels, 75x113 tokens"), "{line}");
    let bpp = number_after(line, "dB,");
    assert!((bpp - 75.0 * 113.0 * 12.0 / (451.0 * 300.0)).abs() < 1e-3 && bpp < 1.0, "{line}");
    let psnr = number_after(line, "PSNR");
    assert!(psnr > 22.0 && psnr < 60.0, "PSNR {psnr}: {line}");
    let summary = stdout.lines().find(|l| l.starts_with("tokenized 1 images")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(summary.contains("images/s") && summary.contains("bits per pixel"), "{summary}");

    // The file holds the packed ids and little else.
    let bytes = std::fs::metadata(&tokens).unwrap().len();
    let payload = (75 * 113 * 12_u64).div_ceil(8);
    assert!(bytes >= payload && bytes < payload + 256, "{bytes} bytes for {payload} of ids");

    let recon = rgb(&dir.join("chelsea.png"));
    let compare = rgb(&dir.join("chelsea.compare.png"));
    assert_eq!(recon.dimensions(), (451, 300));
    assert_eq!(compare.dimensions(), (3 * 451 + 8, 300));
    // The comparison's first panel is the original, its second the reconstruction.
    let original = rgb(&sample);
    assert_eq!(compare.get_pixel(10, 20), original.get_pixel(10, 20));
    assert_eq!(compare.get_pixel(451 + 4 + 10, 20), recon.get_pixel(10, 20));

    // detokenize gives the same reconstruction, bit for bit.
    let decoded = dir.join("decoded");
    let stdout = run_ok(&[os("detokenize"), os(&tokens), os("--out"), os(&decoded)]);
    assert!(stdout.contains("detokenized 1 images"), "{stdout}");
    assert_eq!(rgb(&decoded.join("chelsea.png")), recon);
}

#[test]
fn odd_sizes_and_colour_types_are_padded_converted_and_cropped_back() {
    let dir = scratch("odd");
    let gray = dir.join("gray.png");
    let rgba = dir.join("rgba.png");
    let jpeg = dir.join("photo.jpg");
    image::GrayImage::from_fn(13, 7, |x, y| image::Luma([(x * 17 + y * 5) as u8])).save(&gray).unwrap();
    image::RgbaImage::from_fn(5, 9, |x, y| image::Rgba([(x * 40) as u8, (y * 25) as u8, 90, 128])).save(&rgba).unwrap();
    image::RgbImage::from_fn(33, 17, |x, y| image::Rgb([(x * 7) as u8, (y * 13) as u8, 200])).save(&jpeg).unwrap();
    let tokens = dir.join("t.tsr");
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([os("tokenize"), os(&gray), os(&rgba), os(&jpeg), os("--out"), os(&tokens)])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Said once, for all images.
    assert_eq!(stderr.matches("converted to 8-bit RGB").count(), 1, "{stderr}");
    assert!(stderr.contains("1 grayscale") && stderr.contains("1 RGBA"), "{stderr}");
    let decoded = dir.join("decoded");
    run_ok(&[os("detokenize"), os(&tokens), os("--out"), os(&decoded)]);
    for (name, size) in [("gray", (13, 7)), ("rgba", (5, 9)), ("photo", (33, 17))] {
        assert_eq!(rgb(&decoded.join(format!("{name}.png"))).dimensions(), size, "{name}");
    }
}

#[test]
fn a_fitted_tokenizer_is_used_and_a_wrong_one_or_a_damaged_file_is_an_error() {
    let dir = scratch("fit");
    let image = dir.join("waves.png");
    image::RgbImage::from_fn(37, 22, |x, y| {
        let v = 0.5 + 0.4 * ((x as f32) / 5.0).sin() * ((y as f32) / 4.0).cos();
        image::Rgb([(255.0 * v) as u8, (200.0 * (1.0 - v)) as u8, (x * 6) as u8])
    })
    .save(&image)
    .unwrap();
    let own = dir.join("own.safetensors");
    let stdout = run_ok(&[
        os("fit"),
        os("--codebook-size"),
        os("16"),
        os("--patch"),
        os("2"),
        os("--iterations"),
        os("3"),
        os(&image),
        os("--out"),
        os(&own),
    ]);
    assert!(stdout.contains("fitted 16 entries of 2×2"), "{stdout}");
    let tokens = dir.join("own.tsr");
    let stdout = run_ok(&[
        os("tokenize"),
        os(&image),
        os("--tokenizer"),
        os(&own),
        os("--out"),
        os(&tokens),
        os("--compare"),
        os(&dir),
    ]);
    // 19×11 patches of 2×2, 4 bits each.
    let line = stdout.lines().find(|l| l.starts_with("waves:")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("11x19 tokens"), "{line}");
    assert!((number_after(line, "dB,") - 11.0 * 19.0 * 4.0 / (37.0 * 22.0)).abs() < 1e-3, "{line}");

    // The default tokenizer did not make these tokens.
    let err = run_err(&[os("detokenize"), os(&tokens), os("--out"), os(&dir.join("x"))]);
    assert!(err.contains("tokenizer") && err.contains("hash"), "{err}");
    // The right one did.
    run_ok(&[os("detokenize"), os(&tokens), os("--tokenizer"), os(&own), os("--out"), os(&dir.join("y"))]);
    assert_eq!(rgb(&dir.join("y/waves.png")), rgb(&dir.join("waves.png")));

    // A flipped byte and a cut file are named as such.
    let mut bytes = std::fs::read(&tokens).unwrap();
    let damaged = dir.join("damaged.tsr");
    let at = bytes.len() - 10;
    bytes[at] ^= 0x20;
    std::fs::write(&damaged, &bytes).unwrap();
    let err = run_err(&[os("detokenize"), os(&damaged), os("--tokenizer"), os(&own), os("--out"), os(&dir)]);
    assert!(err.to_lowercase().contains("checksum"), "{err}");
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    let err = run_err(&[os("detokenize"), os(&damaged), os("--tokenizer"), os(&own), os("--out"), os(&dir)]);
    assert!(err.to_lowercase().contains("truncated"), "{err}");
    std::fs::write(&damaged, b"not tokens at all, just text").unwrap();
    let err = run_err(&[os("detokenize"), os(&damaged), os("--out"), os(&dir)]);
    assert!(err.contains("not a tessera token file"), "{err}");
}

#[test]
fn a_vit_tokenizer_file_tiles_any_image_size_and_round_trips() {
    let dir = scratch("vit");
    let image = dir.join("wide.png");
    // 37×22 pixels with 24×16 tiles (a 4×6 grid of 4×4 patches): 2×2 tiles, 8×12 tokens.
    image::RgbImage::from_fn(37, 22, |x, y| image::Rgb([(x * 6) as u8, (y * 11) as u8, ((x + y) * 3) as u8]))
        .save(&image)
        .unwrap();
    for (kind, payload) in [("fsq", "ids"), ("residual-vq", "ids"), ("kl", "continuous")] {
        let weights = tokenizer::tokenizer(3, kind, tokenizer::TINY);
        let file = dir.join(format!("{kind}.safetensors"));
        std::fs::write(&file, weights.to_safetensors_bytes().unwrap()).unwrap();
        let tokens = dir.join(format!("{kind}.tsr"));
        let compare = dir.join(format!("compare-{kind}"));
        let stdout = run_ok(&[
            os("tokenize"),
            os(&image),
            os("--tokenizer"),
            os(&file),
            os("--out"),
            os(&tokens),
            os("--compare"),
            os(&compare),
        ]);
        let line = stdout.lines().find(|l| l.starts_with("wide:")).unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains("37x22 pixels, 8x12 tokens"), "{kind} ({payload}): {line}");
        let decoded = dir.join(format!("decoded-{kind}"));
        run_ok(&[os("detokenize"), os(&tokens), os("--tokenizer"), os(&file), os("--out"), os(&decoded)]);
        let back = rgb(&decoded.join("wide.png"));
        assert_eq!(back.dimensions(), (37, 22), "{kind}");
        // Continuous values go through f16 in the file; ids are exact, so the decode is too.
        if payload == "ids" {
            assert_eq!(back, rgb(&compare.join("wide.png")), "{kind}");
        }
        // Another tokenizer (the default) refuses the file.
        let err = run_err(&[os("detokenize"), os(&tokens), os("--out"), os(&dir.join("z"))]);
        assert!(err.contains("tokenizer"), "{err}");
    }
}
