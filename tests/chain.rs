//! A chain of ops issues no host↔device synchronization: invalid values found by a
//! kernel come back as the typed error at the next synchronizing call (here, the final
//! download), naming the op, the argument and the first row.

mod common;

use tessera::{BinaryQuantizer, Codebook, Device, Error, Fsq, Metric, SearchOptions};

/// FSQ quantize → FSQ dequantize → BSQ quantize of the dequantized values, then one download.
fn chain(device: &Device, latents: &[f32]) -> (u64, tessera::Result<Vec<u32>>) {
    let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
    let bsq = BinaryQuantizer::bsq(4, 4).unwrap();
    let z = device.upload(latents).unwrap();
    let before = device.host_synchronizations();
    let tokens = fsq.quantize(device, &z).unwrap();
    let decoded = fsq.dequantize::<f32>(device, &tokens.indices).unwrap();
    let bits = bsq.quantize(device, &decoded.values).unwrap();
    let during = device.host_synchronizations() - before;
    (during, bits.indices.download())
}

fn latents(n: usize) -> Vec<f32> {
    (0..n * 4).map(|i| ((i * 7919) % 1201) as f32 / 300.0 - 2.0).collect()
}

#[test]
fn three_ops_without_a_synchronization() {
    for device in common::kernel_devices("chain") {
        let (syncs, result) = chain(&device, &latents(1000));
        assert_eq!(syncs, 0, "{}: the chain synchronized {syncs} time(s)", device.name());
        let indices = result.unwrap();
        assert_eq!(indices.len(), 1000);
        // The download itself is the one synchronization.
        assert!(device.host_synchronizations() >= 1);
    }
}

#[test]
fn a_planted_nan_comes_back_at_the_download() {
    for device in common::kernel_devices("chain") {
        let mut z = latents(1000);
        z[4 * 613 + 2] = f32::NAN;
        z[4 * 871] = f32::NAN;
        let (syncs, result) = chain(&device, &z);
        assert_eq!(syncs, 0, "{}: the chain synchronized {syncs} time(s)", device.name());
        match result {
            Err(Error::InvalidValue { op: "Fsq::quantize", arg: "latents", row: 613, .. }) => {}
            other => panic!("{}: expected Fsq::quantize latents row 613, got {other:?}", device.name()),
        }
        // Reported once: the next synchronizing call is clean again.
        device.synchronize().unwrap();
    }
}

#[test]
fn the_cpu_backend_reports_at_the_call() {
    let device = Device::cpu();
    let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
    let mut z = latents(10);
    z[4 * 3] = f32::NAN;
    let r = fsq.quantize(&device, &device.upload(&z).unwrap());
    assert!(matches!(r, Err(Error::InvalidValue { op: "Fsq::quantize", row: 3, .. })), "{r:?}");
}

#[test]
fn a_codebook_search_waits_for_nothing_until_asked() {
    for device in common::kernel_devices("chain") {
        let (k, d) = (40usize, 4usize);
        let entries: Vec<f32> = latents(k).iter().map(|v| v * 0.5).collect();
        let codebook = Codebook::new(&device, device.upload(&entries).unwrap(), d, Metric::SquaredL2).unwrap();
        let mut z = latents(500);
        z[4 * 77 + 1] = f32::INFINITY;
        let z = device.upload(&z).unwrap();
        let before = device.host_synchronizations();
        let out = codebook.quantize(&device, &z, &SearchOptions::default()).unwrap();
        let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
        let tokens = fsq.quantize(&device, &out.quantized).unwrap();
        assert_eq!(device.host_synchronizations() - before, 0, "{}", device.name());
        // Asking for the commitment reads back: one synchronization, which reports the
        // search's invalid latent.
        match out.commitment() {
            Err(Error::InvalidValue { op: "Codebook::quantize", arg: "z", row: 77, .. }) => {}
            other => panic!("{}: expected Codebook::quantize z row 77, got {other:?}", device.name()),
        }
        assert_eq!(device.host_synchronizations() - before, 1);
        assert_eq!(tokens.indices.download().unwrap().len(), 500);
    }
}
