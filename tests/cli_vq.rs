//! `tessera vq`: a k-means codebook of image patches, on two generated PNGs.

use std::process::Command;

fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

/// The number after `key` in `line` (e.g. "PSNR 31.20 dB").
fn number_after(line: &str, key: &str) -> f64 {
    line.split(key)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
}

#[test]
fn vq_demo_fits_tokenizes_and_reports() {
    let dir = std::env::temp_dir().join(format!("tessera-cli-vq-{}", std::process::id()));
    let out = dir.join("out");
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("waves.png"), dir.join("ramp.png"));
    // 37×22 and 16×16: the first has partial patches at both edges.
    image::RgbImage::from_fn(37, 22, |x, y| {
        let v = 0.5 + 0.4 * ((x as f32) / 5.0).sin() * ((y as f32) / 4.0).cos();
        image::Rgb([(255.0 * v) as u8, (200.0 * (1.0 - v)) as u8, (x * 6) as u8])
    })
    .save(&a)
    .unwrap();
    image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 16) as u8, (y * 16) as u8, 128])).save(&b).unwrap();

    let run = tessera()
        .args(["vq", "--codebook-size", "16", "--patch", "4", "--iterations", "5", "--seed", "3"])
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    // Patches: 10×6 + 4×4 = 76, each log2(16) = 4 bits.
    let line_a = stdout.lines().find(|l| l.contains("waves.png:")).unwrap_or_else(|| panic!("{stdout}"));
    let line_b = stdout.lines().find(|l| l.contains("ramp.png:")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line_a.contains("60 tokens") && line_b.contains("16 tokens"), "{stdout}");
    assert!(line_a.contains(&format!("{:.3} bits per pixel", 60.0 * 4.0 / (37.0 * 22.0))), "{stdout}");
    assert!(line_b.contains("0.250 bits per pixel"), "{stdout}");
    for line in [line_a, line_b] {
        let psnr = number_after(line, "PSNR");
        assert!(psnr.is_finite() && psnr > 15.0 && psnr < 60.0, "PSNR {psnr}: {line}");
        let usage = line
            .split("codebook usage ")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .and_then(|s| s.parse::<usize>().ok());
        assert!(matches!(usage, Some(1..=16)) && line.contains("/16 ("), "{line}");
        assert!(number_after(line, "perplexity") >= 1.0, "{line}");
    }
    for (name, size) in [("waves.png", (37, 22)), ("ramp.png", (16, 16))] {
        let back = image::open(out.join(name)).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), size, "{name}");
    }
    // The same seed writes the same reconstruction.
    let first = std::fs::read(out.join("waves.png")).unwrap();
    let again = tessera()
        .args(["vq", "--codebook-size", "16", "--iterations", "5", "--seed", "3", "--dtype", "f32"])
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(std::fs::read(out.join("waves.png")).unwrap(), first);

    // bf16 works too.
    let bf = tessera()
        .args(["vq", "--codebook-size", "8", "--patch", "2", "--dtype", "bf16"])
        .arg(&b)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(bf.status.success(), "{}", String::from_utf8_lossy(&bf.stderr));
    assert!(String::from_utf8_lossy(&bf.stdout).contains("64 tokens"));

    // Bad input: typed errors on stderr, non-zero exit, no panic.
    let fails = |args: &[&str], inputs: &[&std::path::Path], needle: &str| {
        let r = tessera().arg("vq").args(args).args(inputs).arg("--out").arg(&out).output().unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success() && stderr.contains(needle) && !stderr.contains("panicked"), "{args:?}: {stderr}");
    };
    fails(&["--codebook-size", "17"], &[&b], "invalid argument `codebook-size`");
    fails(&["--codebook-size", "4", "--patch", "0"], &[&b], "invalid argument `patch`");
    let missing = dir.join("missing.png");
    fails(&["--codebook-size", "4"], &[&missing], "missing.png");
    let not_png = dir.join("notes.png");
    std::fs::write(&not_png, b"not an image").unwrap();
    fails(&["--codebook-size", "4"], &[&not_png], "notes.png");
    fails(&["--codebook-size", "4"], &[&b, &b], "invalid argument `inputs`");
    std::fs::remove_dir_all(&dir).ok();
}
