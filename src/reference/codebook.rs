//! Nearest-codebook search on the CPU, in f64, written for obviousness: for each latent,
//! the full squared distance to every entry, the smallest wins, ties to the lowest index.

use crate::element::FloatElement;

/// Distance used by the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `||z − e||²`.
    SquaredL2,
    /// Both sides l2-normalized first (LlamaGen's tokenizer), then `||ẑ − ê||² = 2 − 2·cos`.
    Cosine,
}

/// `v / ||v||` in f64 (a zero vector stays zero, as `F.normalize` with its epsilon does).
pub fn normalized(v: &[f64]) -> Vec<f64> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scale = 1.0 / norm.max(1e-12);
    v.iter().map(|x| x * scale).collect()
}

fn row<T: FloatElement>(data: &[T], d: usize, i: usize, metric: Metric) -> Vec<f64> {
    let r: Vec<f64> = data[i * d..(i + 1) * d].iter().map(|x| x.to_f32() as f64).collect();
    match metric {
        Metric::SquaredL2 => r,
        Metric::Cosine => normalized(&r),
    }
}

/// Squared distance of latent `n` to entry `k` under `metric`.
pub fn distance<T: FloatElement>(z: &[T], e: &[T], d: usize, n: usize, k: usize, metric: Metric) -> f64 {
    let (a, b) = (row(z, d, n, metric), row(e, d, k, metric));
    a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Result of a search over `n` latents.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    /// `[n]` the nearest entry of each latent (ties to the lowest index).
    pub indices: Vec<u32>,
    /// `[n]` its distance, in f64.
    pub distances: Vec<f64>,
}

/// The nearest entry of `e` (`[k, d]`) for each row of `z` (`[n, d]`).
pub fn search<T: FloatElement>(z: &[T], e: &[T], d: usize, metric: Metric) -> Search {
    let (n, k) = (z.len() / d.max(1), e.len() / d.max(1));
    let entries: Vec<Vec<f64>> = (0..k).map(|j| row(e, d, j, metric)).collect();
    let mut out = Search { indices: Vec::with_capacity(n), distances: Vec::with_capacity(n) };
    for i in 0..n {
        let zi = row(z, d, i, metric);
        let mut best = (f64::INFINITY, 0u32);
        for (j, ej) in entries.iter().enumerate() {
            let dist: f64 = zi.iter().zip(ej).map(|(x, y)| (x - y) * (x - y)).sum();
            if dist < best.0 {
                best = (dist, j as u32);
            }
        }
        out.indices.push(best.1);
        out.distances.push(best.0);
    }
    out
}

/// Usage count of each of `k` entries.
pub fn histogram(indices: &[u32], k: usize) -> Vec<u32> {
    let mut h = vec![0u32; k];
    for &i in indices {
        h[i as usize] += 1;
    }
    h
}

/// `exp(−Σ p log p)` of the usage distribution (0 for no latents).
pub fn perplexity(histogram: &[u32]) -> f64 {
    let total: u64 = histogram.iter().map(|&c| c as u64).sum();
    if total == 0 {
        return 0.0;
    }
    let entropy: f64 = histogram
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.ln()
        })
        .sum();
    entropy.exp()
}
