//! k-means steps: the centroid update (the sorted kernel behind a stable radix sort of the
//! rows by entry, and the one-warp-per-entry v1) and the k-means++ seeding (a fit with no
//! Lloyd iteration).

use super::{measure, setup, value, Case, ProfileError};
use tessera::{fit_codebook, update_centroids, CentroidKernel, Device, KmeansOptions};

const N: usize = 8192;
const D: usize = 16;
/// 512 entries: two radix passes (9 bits of key).
const K: usize = 512;

fn update(device: &Device, kernel: CentroidKernel) -> Result<Case, ProfileError> {
    let data: Vec<f32> = (0..N * D).map(|i| value(6, i)).collect();
    let indices: Vec<u32> = (0..N as u32).map(|r| r.wrapping_mul(2_654_435_761) % K as u32).collect();
    let reseed: Vec<u32> = (0..K as u32).map(|e| e * 7 % N as u32).collect();
    let data = setup("kmeans", device.upload(&data))?;
    let indices = setup("kmeans", device.upload(&indices))?;
    let (id, k) = match kernel {
        CentroidKernel::Sorted => ("kmeans.update.f32", K),
        // O(n·k): a smaller codebook keeps the emulated run short.
        CentroidKernel::Simple => ("kmeans.update.v1.f32", 64),
    };
    let indices_k = if k == K {
        indices
    } else {
        let small: Vec<u32> = (0..N as u32).map(|r| r.wrapping_mul(2_654_435_761) % k as u32).collect();
        setup("kmeans", device.upload(&small))?
    };
    measure(id, format!("n={N} d={D} k={k}"), || {
        update_centroids(device, &data, D, &indices_k, k, &reseed[..k], kernel)?;
        device.synchronize()
    })
}

fn seeding(device: &Device) -> Result<Case, ProfileError> {
    // k = 9: eight rounds of one draw each (two launches per round).
    let (n, k) = (N, 9);
    let data: Vec<f32> = (0..n * D).map(|i| value(7, i)).collect();
    let data = setup("kmeans", device.upload(&data))?;
    let options = KmeansOptions { iterations: 0, seed: 3, ..KmeansOptions::new(D, k) };
    measure("kmeans.seed.f32", format!("n={n} d={D} k={k}"), || {
        fit_codebook(device, &data, &options, &mut |_| {})?;
        device.synchronize()
    })
}

pub(super) fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    Ok(vec![update(device, CentroidKernel::Sorted)?, update(device, CentroidKernel::Simple)?, seeding(device)?])
}
