//! k-means: the centroid kernels bit-exact against the reference, a short fit against the Cpu backend.

use super::{pseudo_random, Check};
use tessera::{fit_codebook, reference, update_centroids, CentroidKernel, Device, FloatElement, KmeansOptions};

/// `tessera doctor`: the centroid kernels (both variants, f32 and bf16) against the
/// reference, bit for bit; a short fit on the emulator against the Cpu backend; residual VQ.
pub(super) fn doctor_checks(device: &Device) -> Vec<Check> {
    let mut checks = vec![
        centroid_check::<f32>(device, CentroidKernel::Sorted),
        centroid_check::<half::bf16>(device, CentroidKernel::Sorted),
        centroid_check::<half::f16>(device, CentroidKernel::Simple),
    ];
    checks.push(fit_check(device));
    checks
}

fn centroid_check<T: FloatElement>(device: &Device, kernel: CentroidKernel) -> Check {
    let name = match kernel {
        CentroidKernel::Simple => format!("kmeans_centroids_v1_{}", T::DTYPE.suffix()),
        CentroidKernel::Sorted => format!("kmeans_centroids_{}", T::DTYPE.suffix()),
    };
    let outcome = (|| -> tessera::Result<String> {
        // k = 300 takes two radix passes; entries ≡ 7 (mod 10) get no member (reseeded).
        let (n, k, d) = (3000, 300, 5);
        let data: Vec<T> = (0..n * d).map(|i| T::from_f32(pseudo_random(i) * 4.0)).collect();
        let indices: Vec<u32> = (0..n)
            .map(|r| (r as u32).wrapping_mul(2654435761) % k as u32)
            .map(|e| if e % 10 == 7 { e - 1 } else { e })
            .collect();
        let reseed: Vec<u32> = (0..k as u32).map(|e| (e * 7) % n as u32).collect();
        let got = update_centroids(device, &device.upload(&data)?, d, &device.upload(&indices)?, k, &reseed, kernel)?;
        let (want, counts) = reference::kmeans::means(&data, d, &indices, k, &reseed);
        if got.counts == counts && got.centroids.download()? == want {
            Ok(format!("{n} rows × d = {d} into {k} entries: counts and means bit-exact"))
        } else {
            Err(tessera::Error::Emulator("output differs from the CPU reference".into()))
        }
    })();
    Check { name, outcome: outcome.map_err(|e| e.to_string()) }
}

fn fit_check(device: &Device) -> Check {
    let outcome = (|| -> tessera::Result<String> {
        // 6 well-separated blobs in d = 3.
        let (k, d, per) = (6, 3, 50);
        let data: Vec<f32> = (0..k * per)
            .flat_map(|r| (0..d).map(move |j| ((r % k) * 10 + j) as f32 + 0.3 * pseudo_random(r * d + j)))
            .collect();
        let options = KmeansOptions { iterations: 4, seed: 11, ..KmeansOptions::new(d, k) };
        let fit = |dev: &Device| -> tessera::Result<Vec<f32>> {
            fit_codebook(dev, &dev.upload(&data)?, &options, &mut |_| {})?.entries().download()
        };
        if fit(device)? == fit(&Device::cpu())? {
            Ok(format!("{} rows, k = {k}, d = {d}, 4 iterations: same codebook as the Cpu backend", k * per))
        } else {
            Err(tessera::Error::Emulator("codebook differs from the Cpu backend's".into()))
        }
    })();
    Check { name: "kmeans_fit_f32".into(), outcome: outcome.map_err(|e| e.to_string()) }
}
