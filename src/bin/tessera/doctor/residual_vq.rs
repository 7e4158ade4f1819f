//! Residual VQ: three stages on the device against the Cpu backend.

use super::Check;
use tessera::{Codebook, Device, Metric, ResidualVq};

/// `tessera doctor`: a 3-stage residual VQ on the emulator against the Cpu backend.
pub(super) fn doctor_check(device: &Device) -> Check {
    let outcome = (|| -> tessera::Result<String> {
        let (n, k, d, stages) = (300, 16, 6, 3);
        let value = super::pseudo_random;
        let z: Vec<f32> = (0..n * d).map(value).collect();
        let run = |dev: &Device| -> tessera::Result<(Vec<u32>, Vec<f32>)> {
            let cbs = (0..stages)
                .map(|s| {
                    let e: Vec<f32> = (0..k * d).map(|i| value(i + 100_000 * (s + 1)) / (1 << s) as f32).collect();
                    Codebook::new(dev, dev.upload(&e)?, d, Metric::SquaredL2)
                })
                .collect::<tessera::Result<Vec<_>>>()?;
            let out = ResidualVq::new(cbs)?.quantize(dev, &dev.upload(&z)?)?;
            Ok((out.indices.download()?, out.quantized.download()?))
        };
        let (gi, gq) = run(device)?;
        let (wi, wq) = run(&Device::cpu())?;
        let close = gq.iter().zip(&wq).all(|(a, b)| (a - b).abs() <= 1e-5);
        if gi == wi && close {
            Ok(format!("{n} latents, {stages} stages of {k} × {d}: indices exact, quantized sums match"))
        } else {
            Err(tessera::Error::Emulator("output differs from the Cpu backend".into()))
        }
    })();
    Check { name: "residual_vq_accumulate_f32".into(), outcome: outcome.map_err(|e| e.to_string()) }
}
