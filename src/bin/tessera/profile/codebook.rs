//! Nearest-codebook search: the codebook preparation (norms and l2-normalization, cosine),
//! the CUDA-core search (f32), the tensor-core search (bf16) and the unfused baseline
//! (distance matrix + argmin), each with its finalize kernel (quantized rows, distances,
//! histogram, the commitment's block sums), which the op reads back.

use super::{measure, setup, value, Case, ProfileError};
use tessera::{Codebook, Device, FloatElement, Metric, SearchOptions, SearchPath};

/// Latents and entries of every search case.
const N: usize = 1024;
const K: usize = 1024;

fn data<T: FloatElement>(seed: u32, len: usize) -> Vec<T> {
    (0..len).map(|i| T::from_f32(value(seed, i))).collect()
}

fn prepare(device: &Device) -> Result<Case, ProfileError> {
    let d = 32;
    let entries = setup("codebook", device.upload(&data::<f32>(2, K * d)))?;
    measure("codebook.prepare.cosine.f32", format!("k={K} d={d}"), || {
        Codebook::new(device, entries, d, Metric::Cosine)?;
        device.synchronize()
    })
}

fn search<T: FloatElement>(
    device: &Device,
    id: &str,
    path: SearchPath,
    n: usize,
    k: usize,
    d: usize,
) -> Result<Case, ProfileError> {
    let entries = setup(id, device.upload(&data::<T>(3, k * d)))?;
    let codebook = setup(id, Codebook::new(device, entries, d, Metric::SquaredL2))?;
    let z = setup(id, device.upload(&data::<T>(4, n * d)))?;
    let options = SearchOptions { path, ..SearchOptions::default() };
    let plan = setup(id, codebook.plan(n, &options))?;
    measure(format!("{id}.{}", T::DTYPE.suffix()), format!("n={n} k={k} d={d} s={}", plan.splits), || {
        let out = codebook.quantize(device, &z, &options)?;
        out.commitment()?;
        out.perplexity()?;
        Ok(())
    })
}

pub(super) fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    Ok(vec![
        prepare(device)?,
        search::<f32>(device, "codebook.search.simt", SearchPath::Simt, N, K, 32)?,
        search::<half::bf16>(device, "codebook.search.mma", SearchPath::TensorCore, N, K, 64)?,
        search::<f32>(device, "codebook.search.unfused", SearchPath::Unfused, 512, 512, 32)?,
    ])
}
