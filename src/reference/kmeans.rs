//! k-means (Lloyd) on the CPU in f64, written for obviousness; the Cpu backend of
//! `Codebook::fit` and the oracle of the centroid kernels (kernels/kmeans.cu).
//!
//! The seeded choices live here and are shared with the device path, so that every backend
//! draws the same rows for the same seed:
//! - [`Rng`]: splitmix64; `below(n)` maps a 64-bit draw to `[0, n)` by multiply-high.
//! - [`plusplus_rows`]: k-means++ seeding (Arthur & Vassilvitskii 2007). The first row is
//!   `below(n)`; then `k − 1` raw draws are taken at once, and round `j` turns draw `j` into
//!   `u ∈ [0, 1)` and picks a row with probability ∝ its squared distance to the nearest
//!   row picked so far ([`weighted_pick`]). Rows already picked have weight 0, so the `k`
//!   rows are distinct unless the data has fewer than `k` distinct rows.
//! - [`initial_rows`]: `k` distinct rows drawn uniformly (a partial Fisher–Yates shuffle),
//!   for callers that want plain random seeding.
//! - [`reseed_rows`]: after an assignment, each entry that no row chose (in increasing entry
//!   order) draws one data row `below(n)`.
//!
//! A mean is the f64 sum of the member rows in increasing row order, divided by the count,
//! rounded to f32 and then to `T` — the centroid kernels compute exactly this.

use super::codebook::{self as search, Metric};
use crate::device::FloatElement;
use std::collections::HashMap;

/// splitmix64 (Steele, Lea, Flood 2014): a 64-bit state advanced by a constant and mixed.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `[0, n)` (`n ≥ 1`): the high word of `draw · n`.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// The uniform in `[0, 1)` of a raw draw: its top 53 bits · 2⁻⁵³ (the k-means++ pick kernel
/// does the same).
pub fn unit_interval(draw: u64) -> f64 {
    (draw >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The first index whose running sum of `weights` (in order, f64) exceeds `u · Σ weights`;
/// the last positive weight if rounding runs past the end; `⌊u·n⌋` if no weight is positive.
pub fn weighted_pick(weights: &[f64], u: f64) -> usize {
    let n = weights.len();
    let total: f64 = weights.iter().sum();
    if total.is_nan() || total <= 0.0 {
        return ((u * n as f64) as usize).min(n - 1);
    }
    let target = u * total;
    let (mut run, mut last) = (0.0, 0);
    for (i, &w) in weights.iter().enumerate() {
        if w > 0.0 {
            last = i;
            run += w;
            if run > target {
                return i;
            }
        }
    }
    last
}

/// k-means++ seeding: `k ≤ n` rows of the `[n, d]` `points` (see the module documentation).
/// The distance updates are split across threads by rows (each row's weight does not depend
/// on the split).
pub fn plusplus_rows<T: FloatElement>(rng: &mut Rng, points: &[T], d: usize, k: usize) -> Vec<u32> {
    let n = points.len() / d;
    assert!(1 <= k && k <= n, "k = {k}, n = {n}");
    let mut chosen = vec![rng.below(n) as u32];
    let draws: Vec<u64> = (1..k).map(|_| rng.next_u64()).collect();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n.div_ceil(4096)).max(1);
    let rows_per = n.div_ceil(threads);
    let mut d2 = vec![0.0f64; n];
    for (round, &draw) in draws.iter().enumerate() {
        let at = chosen[round] as usize * d;
        let c: Vec<f64> = points[at..at + d].iter().map(|x| x.to_f32() as f64).collect();
        let c = &c;
        std::thread::scope(|s| {
            for (w, rows) in d2.chunks_mut(rows_per).zip(points.chunks(rows_per * d)) {
                s.spawn(move || {
                    for (w, row) in w.iter_mut().zip(rows.chunks(d)) {
                        let dist: f64 = row.iter().zip(c).map(|(x, y)| (x.to_f32() as f64 - y).powi(2)).sum();
                        *w = if round == 0 { dist } else { w.min(dist) };
                    }
                });
            }
        });
        chosen.push(weighted_pick(&d2, unit_interval(draw)) as u32);
    }
    chosen
}

/// `k ≤ n` distinct rows of `0..n`, in the order a Fisher–Yates shuffle draws them.
pub fn initial_rows(rng: &mut Rng, n: usize, k: usize) -> Vec<u32> {
    assert!(k <= n, "k = {k} > n = {n}");
    // Slot i holds `moved[i]` if it was swapped, else i.
    let mut moved: HashMap<usize, usize> = HashMap::new();
    let mut rows = Vec::with_capacity(k);
    for i in 0..k {
        let j = i + rng.below(n - i);
        let at_j = *moved.get(&j).unwrap_or(&j);
        let at_i = *moved.get(&i).unwrap_or(&i);
        moved.insert(j, at_i);
        rows.push(at_j as u32);
    }
    rows
}

/// The row each entry becomes if it has no member: a fresh random row for every entry whose
/// count is 0 (in entry order), 0 (unused) for the others; and how many were drawn.
pub fn reseed_rows(rng: &mut Rng, counts: &[u32], n: usize) -> (Vec<u32>, usize) {
    let mut drawn = 0;
    let rows = counts
        .iter()
        .map(|&c| {
            if c == 0 {
                drawn += 1;
                rng.below(n) as u32
            } else {
                0
            }
        })
        .collect();
    (rows, drawn)
}

/// The points k-means works on: the data, or for cosine its rows l2-normalized in f64 and
/// rounded to `T` (what the Cpu backend's cosine search compares).
pub fn points<T: FloatElement>(data: &[T], d: usize, metric: Metric) -> Vec<T> {
    match metric {
        Metric::SquaredL2 => data.to_vec(),
        Metric::Cosine => data
            .chunks(d)
            .flat_map(|r| {
                let v: Vec<f64> = r.iter().map(|x| x.to_f32() as f64).collect();
                search::normalized(&v).into_iter().map(|x| T::from_f32(x as f32))
            })
            .collect(),
    }
}

/// Entry `e` becomes the mean of the rows `r` with `indices[r] == e`, or row `reseed[e]` of
/// `data` if there is none. Returns the `[k, d]` centroids and the counts.
pub fn means<T: FloatElement>(data: &[T], d: usize, indices: &[u32], k: usize, reseed: &[u32]) -> (Vec<T>, Vec<u32>) {
    let mut sums = vec![0.0f64; k * d];
    let counts = search::histogram(indices, k);
    for (r, &e) in indices.iter().enumerate() {
        for j in 0..d {
            sums[e as usize * d + j] += data[r * d + j].to_f32() as f64;
        }
    }
    let mut out = Vec::with_capacity(k * d);
    for e in 0..k {
        for j in 0..d {
            out.push(if counts[e] == 0 {
                data[reseed[e] as usize * d + j]
            } else {
                T::from_f32((sums[e * d + j] / counts[e] as f64) as f32)
            });
        }
    }
    (out, counts)
}

/// The nearest entry of every row: [`search::search`] split across threads by rows (a row's
/// answer does not depend on the split).
pub fn assign<T: FloatElement>(points: &[T], entries: &[T], d: usize, metric: Metric) -> search::Search {
    let n = points.len() / d;
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n.div_ceil(64)).max(1);
    let rows_per = n.div_ceil(threads).max(1);
    let parts: Vec<search::Search> = std::thread::scope(|s| {
        let handles: Vec<_> =
            points.chunks(rows_per * d).map(|part| s.spawn(move || search::search(part, entries, d, metric))).collect();
        handles.into_iter().map(|h| h.join().expect("search thread")).collect()
    });
    let mut out = search::Search { indices: Vec::with_capacity(n), distances: Vec::with_capacity(n) };
    for p in parts {
        out.indices.extend(p.indices);
        out.distances.extend(p.distances);
    }
    out
}

/// Lloyd's k-means of the `[n, d]` rows of `data` (`1 ≤ k ≤ n`), seeded by
/// [`plusplus_rows`] on the points: `iterations` rounds of
/// assignment (nearest entry under `metric`) and update ([`means`], empty entries reseeded).
/// `progress(iteration, objective, reseeded)` after each round, 1-based, with the mean
/// squared distance of that round's assignment. Returns the `[k, d]` centroids.
pub fn fit<T: FloatElement>(
    data: &[T],
    d: usize,
    k: usize,
    iterations: usize,
    seed: u64,
    metric: Metric,
    progress: &mut dyn FnMut(usize, f64, usize),
) -> Vec<T> {
    let points = points(data, d, metric);
    let n = points.len() / d;
    let mut rng = Rng::new(seed);
    let init = plusplus_rows(&mut rng, &points, d, k);
    let mut centroids: Vec<T> =
        init.iter().flat_map(|&r| points[r as usize * d..(r as usize + 1) * d].to_vec()).collect();
    for iteration in 1..=iterations {
        let found = assign(&points, &centroids, d, metric);
        let objective = found.distances.iter().sum::<f64>() / n as f64;
        let counts = search::histogram(&found.indices, k);
        let (reseed, reseeded) = reseed_rows(&mut rng, &counts, n);
        centroids = means(&points, d, &found.indices, k, &reseed).0;
        progress(iteration, objective, reseeded);
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_rows_are_distinct_and_cover_small_n() {
        let mut rows = initial_rows(&mut Rng::new(3), 10, 10);
        rows.sort_unstable();
        assert_eq!(rows, (0..10).collect::<Vec<u32>>());
        let rows = initial_rows(&mut Rng::new(4), 1000, 100);
        let mut sorted = rows.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 100);
        assert_eq!(rows, initial_rows(&mut Rng::new(4), 1000, 100));
    }

    #[test]
    fn weighted_pick_follows_the_running_sum() {
        let w = [0.0, 1.0, 0.0, 3.0, 0.0];
        assert_eq!(weighted_pick(&w, 0.0), 1);
        assert_eq!(weighted_pick(&w, 0.2499), 1);
        assert_eq!(weighted_pick(&w, 0.25), 3);
        assert_eq!(weighted_pick(&w, 0.999), 3);
        assert_eq!(weighted_pick(&[0.0; 4], 0.6), 2);
        // Rows already chosen (weight 0) are never drawn.
        let pts = [0.0f32, 0.0, 1.0, 0.0, 0.0, 5.0, 9.0, 9.0];
        for seed in 0..50 {
            let mut rows = plusplus_rows(&mut Rng::new(seed), &pts, 2, 4);
            rows.sort_unstable();
            assert_eq!(rows, vec![0, 1, 2, 3], "seed {seed}");
        }
    }

    #[test]
    fn means_sum_in_row_order() {
        // a + 1 − a is not 1 in f64 for a = 1e16 (ulp 2): the order is part of the result.
        let a = 1e16f32;
        let data = [a, 0.0, 1.0, 0.0, -a, 0.0];
        let (m, counts) = means(&data, 2, &[0, 0, 0], 2, &[0, 2]);
        assert_eq!(counts, vec![3, 0]);
        let in_order = ((0.0 + a as f64 + 1.0) - a as f64) / 3.0;
        assert_ne!(in_order as f32, (1.0f64 / 3.0) as f32);
        assert_eq!(m, vec![in_order as f32, 0.0, -a, 0.0]);
    }
}
