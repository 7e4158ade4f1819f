//! k-means (Lloyd) on the CPU in f64, written for obviousness; the Cpu backend of
//! `fit_codebook` and the oracle of the centroid kernels (kernels/kmeans.cu).
//!
//! The seeded choices live here and are shared with the device path, so that every backend
//! draws the same rows for the same seed:
//! - [`Rng`]: splitmix64; `below(n)` maps a 64-bit draw to `[0, n)` by multiply-high.
//! - [`plusplus_rows`]: batched k-means++ seeding. The first row is `below(n)`; then
//!   `k − 1` raw draws are taken at once and spent `batch` per round in at most 32 rounds
//!   ([`PlusPlusPlan`]); each round's draws pick rows at stratified quantiles of the
//!   squared distances to the nearest row picked so far ([`plusplus_pick`]). Rows already
//!   picked have weight 0; with `k ≤ 33` this is classic k-means++ (Arthur &
//!   Vassilvitskii 2007). Unlike the rest of this file its distances are f32, summed in
//!   the kernel's order ([`seeding_distance`]), so that every backend picks the same rows.
//! - [`initial_rows`]: `k` distinct rows drawn uniformly (a partial Fisher–Yates shuffle),
//!   for callers that want plain random seeding.
//! - [`reseed_rows`]: after an assignment, each entry that no row chose (in increasing entry
//!   order) draws one data row `below(n)`.
//!
//! A mean is the f64 sum of the member rows in increasing row order, divided by the count,
//! rounded to f32 and then to `T` — the centroid kernels compute exactly this.

use super::codebook::{self as search, Metric};
use crate::element::FloatElement;
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

/// Rounds of the batched k-means++ seeding when `k − 1 ≥ PLUSPLUS_ROUNDS` (fewer entries:
/// one centre per round, classic k-means++).
pub const PLUSPLUS_ROUNDS: usize = 32;
/// Most row blocks of the seeding's D² sums (`kmeans_plusplus_distances`' grid).
pub const PLUSPLUS_MAX_BLOCKS: usize = 1024;

/// How the seeding of `k` entries is split into rounds: after the first (uniform) row,
/// the `k − 1` remaining draws go `batch` per round, `batch = max(1, ⌈(k − 1) / 32⌉)`, so
/// `rounds = ⌈(k − 1) / batch⌉ ≤ 32`. The device runs two launches per round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlusPlusPlan {
    /// Draws (new centres) per round; the last round may have fewer.
    pub batch: usize,
    /// Rounds: `⌈(k − 1) / batch⌉` (0 for `k = 1`).
    pub rounds: usize,
    /// Draws in all: `k − 1`.
    pub draws: usize,
}

impl PlusPlusPlan {
    /// The plan for `k ≥ 1` entries.
    pub fn new(k: usize) -> Self {
        let draws = k.saturating_sub(1);
        let batch = draws.div_ceil(PLUSPLUS_ROUNDS).max(1);
        PlusPlusPlan { batch, rounds: draws.div_ceil(batch), draws }
    }

    /// The draws (0-based, draw `g` becomes entry `g + 1`) of round `r < rounds`.
    pub fn round(&self, r: usize) -> std::ops::Range<usize> {
        r * self.batch..((r + 1) * self.batch).min(self.draws)
    }
}

/// The row blocks of the seeding's D² sums for `n ≥ 1` rows: `G = min(⌈n / 256⌉, 1024)`
/// blocks of `⌈n / G⌉` rows (the last may have fewer). Returns `(G, rows per block)`.
pub fn plusplus_blocks(n: usize) -> (usize, usize) {
    let blocks = n.div_ceil(256).clamp(1, PLUSPLUS_MAX_BLOCKS);
    (blocks, n.div_ceil(blocks))
}

/// Squared distance of two rows summed in the order the seeding kernel sums it, so that
/// every backend gets the same f32: lane `l` of a warp accumulates dimensions `l, l + 32,
/// …` with fused multiply-adds of `x − c` (f32), then the 32 partials are combined by the
/// xor butterfly (offsets 16, 8, 4, 2, 1) of `warp_reduce_sum`.
pub fn seeding_distance<T: FloatElement>(x: &[T], c: &[T]) -> f32 {
    let mut lanes = [0.0f32; 32];
    for (j, (a, b)) in x.iter().zip(c).enumerate() {
        let diff = a.to_f32() - b.to_f32();
        lanes[j % 32] = diff.mul_add(diff, lanes[j % 32]);
    }
    for o in [16, 8, 4, 2, 1] {
        let prev = lanes;
        for (l, v) in lanes.iter_mut().enumerate() {
            *v = prev[l] + prev[l ^ o];
        }
    }
    lanes[0]
}

/// One draw of a seeding round: the row of `d2` (weights, f32) at quantile `q ∈ [0, 1)` of
/// the D² mass. `sums` are the f64 sums of the blocks of `rows_per_block` rows (each in row
/// order) and `total` their sum in block order. The target is `q · total`; the walk over
/// the block sums, in order and in f64, stops at the first block of positive sum whose
/// running sum exceeds the target, then the walk over that block's rows at the first row
/// whose running sum exceeds what is left. If rounding runs past the last block, or past
/// the chosen block's rows, the last row of positive weight is taken; if no weight is
/// positive, row `⌊q · n⌋`. Rows of weight 0 (those already chosen) are never drawn.
pub fn plusplus_pick(d2: &[f32], sums: &[f64], rows_per_block: usize, total: f64, q: f64) -> usize {
    let n = d2.len();
    if total.is_nan() || total <= 0.0 {
        return ((q * n as f64) as usize).min(n - 1);
    }
    let target = q * total;
    let (mut cum, mut b, mut last_b) = (0.0f64, 0, 0);
    while b < sums.len() {
        if sums[b] > 0.0 {
            last_b = b;
            if cum + sums[b] > target {
                break;
            }
        }
        cum += sums[b];
        b += 1;
    }
    let past_end = b == sums.len();
    if past_end {
        b = last_b;
    }
    let rest = target - cum;
    let begin = b * rows_per_block;
    let end = (begin + rows_per_block).min(n);
    let (mut run, mut last) = (0.0f64, begin);
    for (row, &w) in d2.iter().enumerate().take(end).skip(begin) {
        if w > 0.0 {
            last = row;
            run += w as f64;
            if !past_end && run > rest {
                return row;
            }
        }
    }
    last
}

/// Batched k-means++ seeding (in the spirit of k-means‖, Bahmani et al. 2012, with
/// stratified draws): `k ≤ n` rows of the `[n, d]` `points`. The first row is `below(n)`;
/// then `k − 1` raw draws are taken at once and spent in the rounds of [`PlusPlusPlan`].
/// Each round first lowers every row's weight `D²` (f32, [`seeding_distance`]) to its
/// distance to the centres the previous round chose (a running minimum: each centre is
/// compared once), sums the weights per block of [`plusplus_blocks`] in f64, and then
/// turns its `b` draws into stratified quantiles: draw `i` of the round (uniform `u_i`)
/// picks at `q_i = (i + u_i) / b` ([`plusplus_pick`]), all from the same weights. Rows
/// already chosen have weight 0 and are never drawn again; within a round the picks are in
/// increasing row order, and two draws of a round pick the same row only if its weight
/// exceeds `1/b` of the round's mass (then the entry is a copy, which an assignment leaves
/// without members and the update re-seeds). With `k − 1 ≤ 32`, `b = 1`: classic
/// k-means++. Given the same points, the device computes exactly this, bit for bit.
pub fn plusplus_rows<T: FloatElement>(rng: &mut Rng, points: &[T], d: usize, k: usize) -> Vec<u32> {
    let n = points.len() / d;
    assert!(1 <= k && k <= n, "k = {k}, n = {n}");
    let mut chosen = vec![rng.below(n) as u32];
    let draws: Vec<u64> = (1..k).map(|_| rng.next_u64()).collect();
    let plan = PlusPlusPlan::new(k);
    let (_, rows_per_block) = plusplus_blocks(n);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n.div_ceil(4096)).max(1);
    let rows_per = n.div_ceil(threads);
    let mut d2 = vec![f32::INFINITY; n];
    let mut fresh = 0..1;
    for round in 0..plan.rounds {
        let centres: Vec<&[T]> = chosen[fresh].iter().map(|&c| &points[c as usize * d..(c as usize + 1) * d]).collect();
        let centres = &centres;
        std::thread::scope(|s| {
            for (w, rows) in d2.chunks_mut(rows_per).zip(points.chunks(rows_per * d)) {
                s.spawn(move || {
                    for (w, row) in w.iter_mut().zip(rows.chunks(d)) {
                        for c in centres {
                            *w = w.min(seeding_distance(row, c));
                        }
                    }
                });
            }
        });
        let sums: Vec<f64> = d2.chunks(rows_per_block).map(|b| b.iter().fold(0.0, |a, &w| a + w as f64)).collect();
        let total = sums.iter().fold(0.0, |a, &s| a + s);
        let these = plan.round(round);
        let b = these.len();
        let start = chosen.len();
        for (i, g) in these.enumerate() {
            let q = (i as f64 + unit_interval(draws[g])) / b as f64;
            chosen.push(plusplus_pick(&d2, &sums, rows_per_block, total, q) as u32);
        }
        fresh = start..chosen.len();
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
    fn plusplus_pick_follows_the_running_sums() {
        // Two blocks of 3 rows: weights 0 1 0 | 3 0 0, block sums 1 and 3.
        let w = [0.0f32, 1.0, 0.0, 3.0, 0.0, 0.0];
        let sums = [1.0, 3.0];
        let pick = |q| plusplus_pick(&w, &sums, 3, 4.0, q);
        assert_eq!(pick(0.0), 1);
        assert_eq!(pick(0.2499), 1);
        assert_eq!(pick(0.25), 3);
        assert_eq!(pick(0.999), 3);
        assert_eq!(plusplus_pick(&[0.0; 4], &[0.0], 4, 0.0, 0.6), 2);
        // Rows already chosen (weight 0) are never drawn.
        let pts = [0.0f32, 0.0, 1.0, 0.0, 0.0, 5.0, 9.0, 9.0];
        for seed in 0..50 {
            let mut rows = plusplus_rows(&mut Rng::new(seed), &pts, 2, 4);
            rows.sort_unstable();
            assert_eq!(rows, vec![0, 1, 2, 3], "seed {seed}");
        }
    }

    #[test]
    fn plusplus_plan_takes_at_most_32_rounds() {
        assert_eq!(PlusPlusPlan::new(1), PlusPlusPlan { batch: 1, rounds: 0, draws: 0 });
        assert_eq!(PlusPlusPlan::new(33), PlusPlusPlan { batch: 1, rounds: 32, draws: 32 });
        assert_eq!(PlusPlusPlan::new(34), PlusPlusPlan { batch: 2, rounds: 17, draws: 33 });
        assert_eq!(PlusPlusPlan::new(65_536), PlusPlusPlan { batch: 2048, rounds: 32, draws: 65_535 });
        for k in (1..5000).chain([1 << 20, (1 << 31) + 1]) {
            let plan = PlusPlusPlan::new(k);
            assert!(plan.rounds <= PLUSPLUS_ROUNDS, "k = {k}: {plan:?}");
            let covered: usize = (0..plan.rounds).map(|r| plan.round(r).len()).sum();
            assert_eq!(covered, k - 1, "k = {k}");
            assert!((0..plan.rounds).all(|r| !plan.round(r).is_empty()), "k = {k}");
        }
    }

    #[test]
    fn seeding_distance_is_the_squared_distance() {
        let x: Vec<f32> = (0..70).map(|j| j as f32 * 0.25).collect();
        let c: Vec<f32> = (0..70).map(|j| 1.0 - j as f32 * 0.5).collect();
        let exact: f64 = x.iter().zip(&c).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
        assert!((seeding_distance(&x, &c) as f64 - exact).abs() <= 1e-6 * exact);
        assert_eq!(seeding_distance(&x, &x), 0.0);
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
