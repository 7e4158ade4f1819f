//! The `tessera` binary: doctor on a machine without a GPU, and the FSQ image demo.

use std::process::Command;

fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

#[test]
fn doctor_exits_zero_and_reports_every_kernel() {
    let out = tessera().arg("doctor").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "doctor failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for needle in ["emulator", "cuda", "Device::best()", "ok    fsq_quantize_f32", "ok    fsq_dequantize_bf16"] {
        assert!(stdout.contains(needle), "doctor output lacks {needle:?}:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn fsq_demo_writes_a_reconstruction_and_reports_psnr() {
    let dir = std::env::temp_dir().join(format!("tessera-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("in.png"), dir.join("out.png"));
    let img = image::RgbImage::from_fn(45, 30, |x, y| image::Rgb([(x * 5) as u8, (y * 8) as u8, ((x + y) * 3) as u8]));
    img.save(&input).unwrap();

    let out = tessera().args(["fsq", "--levels", "8,5,5,5"]).arg(&input).arg(&output).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let psnr: f64 =
        stdout.split("PSNR ").nth(1).and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok()).unwrap();
    assert!(psnr > 20.0, "PSNR {psnr}: {stdout}");
    // 23×15 blocks of 2×2 (odd width padded) per channel, log2(1000) bits each.
    let bpp = 3.0 * 23.0 * 15.0 * 1000f64.log2() / (45.0 * 30.0);
    assert!(stdout.contains(&format!("{bpp:.3} bits per pixel")), "{stdout}");
    let back = image::open(&output).unwrap().to_rgb8();
    assert_eq!(back.dimensions(), (45, 30));

    // Bad levels: a typed error on stderr, non-zero exit, no panic.
    let bad = tessera().args(["fsq", "--levels", "8,1,5,5"]).arg(&input).arg(&output).output().unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("invalid argument `levels`"), "{stderr}");
    let wrong_dim = tessera().args(["fsq", "--levels", "8,5,5"]).arg(&input).arg(&output).output().unwrap();
    assert!(!wrong_dim.status.success());
    std::fs::remove_dir_all(&dir).ok();
}
