//! Nearest-codebook search: each path once, indices equal to the reference's up to ties.

use super::{pseudo_random, Check};
use tessera::{reference, Codebook, Device, FloatElement, Metric, SearchOptions, SearchPath};

pub(super) fn codebook_check<T: FloatElement>(
    device: &Device,
    path: SearchPath,
    d: usize,
    metric: Metric,
    splits: usize,
) -> Check {
    let kernel = match path {
        SearchPath::Simt | SearchPath::Auto => "codebook_search_simt",
        SearchPath::TensorCore => "codebook_search_mma",
        SearchPath::Unfused => "codebook_distances+argmin",
    };
    let name = format!("{kernel}_{}", T::DTYPE.suffix());
    let outcome = (|| -> tessera::Result<String> {
        let (n, k) = (200, 300);
        let z: Vec<T> = (0..n * d).map(|i| T::from_f32(pseudo_random(i))).collect();
        let e: Vec<T> = (0..k * d).map(|i| T::from_f32(pseudo_random(i + 7_777_777))).collect();
        let codebook = Codebook::new(device, device.upload(&e)?, d, metric)?;
        let options = SearchOptions { path, splits: Some(splits), ..SearchOptions::default() };
        let got = codebook.quantize(device, &device.upload(&z)?, &options)?.indices.download()?;
        let want = reference::codebook::search(&z, &e, d, metric);
        // An index may differ only where the reference sees a tie (f32 accumulation).
        for (row, (&g, &w)) in got.iter().zip(&want.indices).enumerate() {
            let dg = reference::codebook::distance(&z, &e, d, row, g as usize, metric);
            if g != w && (dg - want.distances[row]).abs() > 1e-4 * (1.0 + want.distances[row]) {
                return Err(tessera::Error::Emulator(format!("row {row}: index {g}, reference {w}")));
            }
        }
        Ok(format!("{n} latents × {k} entries, d = {d}, {metric:?}, {splits} split(s): indices match"))
    })();
    Check { name, outcome: outcome.map_err(|e| e.to_string()) }
}
