//! k-means (kernels/kmeans.cu, `fit_codebook`) on the emulator — and a GPU when present —
//! against the f64 reference (src/reference/kmeans.rs) and the Cpu backend.

mod common;

use half::{bf16, f16};
use proptest::prelude::*;
use tessera::reference::kmeans as reference;
use tessera::{
    fit_codebook, update_centroids, CentroidKernel, Codebook, Device, Error, FloatElement, KmeansOptions,
    KmeansProgress, Metric, SearchOptions,
};

/// A small seeded generator for test data (xorshift32 + Box–Muller).
struct Gen(u32);

impl Gen {
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 >> 8) as f32 / 16_777_216.0
    }
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-7), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

/// `clusters` gaussian blobs of `per` rows each in `d` dimensions (std `spread`), with means
/// at least 3 apart; rows interleaved (row r belongs to blob r % clusters).
struct Blobs {
    means: Vec<Vec<f32>>,
    rows: Vec<f32>,
    clusters: usize,
}

fn blobs(clusters: usize, per: usize, d: usize, spread: f32, seed: u32) -> Blobs {
    let mut g = Gen(seed.wrapping_mul(2654435761) | 1);
    let mut means: Vec<Vec<f32>> = Vec::new();
    while means.len() < clusters {
        let m: Vec<f32> = (0..d).map(|_| (g.uniform() * 2.0 - 1.0) * 4.0).collect();
        if means.iter().all(|o| o.iter().zip(&m).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() > 9.0) {
            means.push(m);
        }
    }
    let mut rows = Vec::with_capacity(clusters * per * d);
    for r in 0..clusters * per {
        for &m in &means[r % clusters] {
            rows.push(m + spread * g.normal());
        }
    }
    Blobs { means, rows, clusters }
}

fn uniform_rows(n: usize, d: usize, seed: u32) -> Vec<f32> {
    let mut g = Gen(seed.wrapping_mul(747796405) | 1);
    (0..n * d).map(|_| g.uniform() * 2.0 - 1.0).collect()
}

fn cast<T: FloatElement>(v: &[f32]) -> Vec<T> {
    v.iter().map(|&x| T::from_f32(x)).collect()
}

/// Fits and returns the entries and the progress reports.
fn fit<T: FloatElement>(device: &Device, data: &[T], options: &KmeansOptions) -> (Vec<T>, Vec<KmeansProgress>) {
    let mut reports = Vec::new();
    let cb = fit_codebook(device, &device.upload(data).unwrap(), options, &mut |p| reports.push(p.clone())).unwrap();
    assert_eq!(cb.len(), options.k);
    assert_eq!(cb.metric(), options.metric);
    (cb.entries().download().unwrap(), reports)
}

fn recovers_blobs<T: FloatElement>(d: usize) {
    let per = 40;
    let b = blobs(8, per, d, 0.15, d as u32);
    let data: Vec<T> = cast(&b.rows);
    let options = KmeansOptions { iterations: 6, seed: 3, ..KmeansOptions::new(d, b.clusters) };
    let cpu = fit(&Device::cpu(), &data, &options).0;
    for device in common::kernel_devices("kmeans") {
        let ctx = format!("{:?} d = {d} on {}", T::DTYPE, device.name());
        let (entries, reports) = fit(&device, &data, &options);
        // Same assignments on well-separated data, and the update sums exactly like the
        // reference: the Cpu backend's codebook is the same, bit for bit.
        assert_eq!(entries, cpu, "{ctx}: differs from the Cpu backend");
        assert_eq!(reports.len(), 6, "{ctx}");
        let codebook = Codebook::new(&device, device.upload(&entries).unwrap(), d, Metric::SquaredL2).unwrap();
        let idx = codebook
            .quantize(&device, &device.upload(&data).unwrap(), &SearchOptions::default())
            .unwrap()
            .indices
            .download()
            .unwrap();
        // Every blob maps to one entry, and no two blobs to the same one.
        let mut owner = vec![usize::MAX; b.clusters];
        for c in 0..b.clusters {
            let e = idx[c] as usize;
            assert!((0..per).all(|i| idx[i * b.clusters + c] as usize == e), "{ctx}: blob {c} split across entries");
            assert_eq!(owner[e], usize::MAX, "{ctx}: blobs {} and {c} share entry {e}", owner[e]);
            owner[e] = c;
            // The entry is the blob's sample mean (dtype rounding) and near its true mean.
            let sample: Vec<f64> = (0..d)
                .map(|j| (0..per).map(|i| data[(i * b.clusters + c) * d + j].to_f32() as f64).sum::<f64>() / per as f64)
                .collect();
            let got: Vec<f64> = entries[e * d..(e + 1) * d].iter().map(|x| x.to_f32() as f64).collect();
            common::assert_close(&format!("{ctx}: entry {e} vs blob {c}'s sample mean"), &got, &sample, T::DTYPE, 1);
            for (j, (&g, &m)) in got.iter().zip(&b.means[c]).enumerate() {
                assert!((g - m as f64).abs() < 0.15, "{ctx}: entry {e}[{j}] = {g} vs true mean {m}");
            }
        }
        // Converged: the last objective is the blobs' within-cluster variance (d·0.15²).
        let last = reports.last().unwrap().objective;
        assert!(last < 2.0 * d as f64 * 0.0225, "{ctx}: objective {last}");
    }
}

#[test]
fn recovers_gaussian_blobs_f32_d4() {
    recovers_blobs::<f32>(4);
}

#[test]
fn recovers_gaussian_blobs_f32_d16() {
    recovers_blobs::<f32>(16);
}

#[test]
fn recovers_gaussian_blobs_bf16_d4() {
    recovers_blobs::<bf16>(4);
}

#[test]
fn recovers_gaussian_blobs_bf16_d16() {
    recovers_blobs::<bf16>(16);
}

#[test]
fn recovers_gaussian_blobs_f16_d32_tensor_cores() {
    // d = 32 in f16: the assignment runs the tensor-core search.
    recovers_blobs::<f16>(32);
}

fn objective_never_increases<T: FloatElement>(metric: Metric) {
    let (n, d, k, iterations) = (400, 6, 24, 8);
    let data: Vec<T> = cast(&uniform_rows(n, d, 17));
    let options = KmeansOptions { iterations, seed: 9, metric, ..KmeansOptions::new(d, k) };
    for device in common::kernel_devices("kmeans").into_iter().chain([Device::cpu()]) {
        let ctx = format!("{:?} {metric:?} on {}", T::DTYPE, device.name());
        let reports = fit(&device, &data, &options).1;
        assert_eq!(
            reports.iter().map(|r| (r.iteration, r.iterations)).collect::<Vec<_>>(),
            (1..=iterations).map(|i| (i, iterations)).collect::<Vec<_>>(),
            "{ctx}"
        );
        for w in reports.windows(2) {
            let (a, b) = (w[0].objective, w[1].objective);
            assert!(b <= a * (1.0 + 1e-6), "{ctx}: objective rose from {a} to {b} at iteration {}", w[1].iteration);
        }
        assert!(reports[iterations - 1].objective < reports[0].objective, "{ctx}: no progress: {reports:?}");
    }
}

#[test]
fn objective_never_increases_f32() {
    objective_never_increases::<f32>(Metric::SquaredL2);
}

#[test]
fn objective_never_increases_bf16() {
    objective_never_increases::<bf16>(Metric::SquaredL2);
}

#[test]
fn objective_never_increases_cosine_f16() {
    objective_never_increases::<f16>(Metric::Cosine);
}

#[test]
fn same_seed_same_codebook_other_seeds_differ() {
    let (n, d, k) = (300, 5, 20);
    let data: Vec<f32> = uniform_rows(n, d, 23);
    let device = Device::emulator();
    let options = KmeansOptions { iterations: 3, seed: 5, ..KmeansOptions::new(d, k) };
    let first = fit(&device, &data, &options);
    let again = fit(&device, &data, &options);
    assert_eq!(first.0, again.0, "same seed, different codebook");
    assert_eq!(first.1, again.1, "same seed, different progress");
    let other = fit(&device, &data, &KmeansOptions { seed: 6, ..options }).0;
    assert_ne!(first.0, other, "seeds 5 and 6 gave the same codebook");
}

#[test]
fn unused_entries_are_reseeded() {
    // 40 rows but only 3 distinct values: k = 10 leaves entries without members (duplicates
    // of an earlier entry lose every tie), which the update re-seeds from data rows.
    let d = 2;
    let data: Vec<f32> = (0..40).flat_map(|r| [(r % 3) as f32, 1.0]).collect();
    let options = KmeansOptions { iterations: 3, seed: 1, ..KmeansOptions::new(d, 10) };
    for device in [Device::emulator(), Device::cpu()] {
        let (entries, reports) = fit(&device, &data, &options);
        assert!(reports.iter().all(|r| r.reseeded == 7), "{}: {reports:?}", device.name());
        assert!(reports.iter().all(|r| r.objective == 0.0), "{}: {reports:?}", device.name());
        // Every entry is one of the data values.
        for e in entries.chunks(d) {
            assert!(e[1] == 1.0 && [0.0, 1.0, 2.0].contains(&e[0]), "{}: entry {e:?}", device.name());
        }
    }
}

#[test]
fn seeding_rounds_do_not_grow_with_k() {
    // Two launches per round on the device: 64 for k = 65,536 (it was 2(k − 1) = 131,070).
    let plan = reference::PlusPlusPlan::new(65_536);
    assert_eq!((plan.batch, plan.rounds), (2048, 32));
    assert!((1..=100_000).step_by(997).all(|k| reference::PlusPlusPlan::new(k).rounds <= 32));
    // k ≤ 33: one centre per round, classic k-means++.
    assert_eq!(reference::PlusPlusPlan::new(33).batch, 1);
}

#[test]
fn batched_seeding_matches_the_cpu_backend() {
    // k − 1 = 99 draws: 25 rounds of 4; the emulator's rows equal the reference's.
    let (n, d, k) = (900, 5, 100);
    let data: Vec<f32> = uniform_rows(n, d, 8);
    let options = KmeansOptions { iterations: 0, seed: 12, ..KmeansOptions::new(d, k) };
    let rows = reference::plusplus_rows(&mut reference::Rng::new(12), &data, d, k);
    let mut distinct = rows.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), k, "no row holds a quarter of a round's mass here: all distinct");
    let want: Vec<f32> = rows.iter().flat_map(|&r| data[r as usize * d..(r as usize + 1) * d].to_vec()).collect();
    for device in [Device::emulator(), Device::cpu()] {
        assert_eq!(fit(&device, &data, &options).0, want, "{}", device.name());
    }
}

#[test]
fn zero_iterations_return_the_kmeans_plus_plus_rows() {
    let (n, d, k) = (64, 3, 8);
    let data: Vec<f32> = uniform_rows(n, d, 2);
    let options = KmeansOptions { iterations: 0, seed: 4, ..KmeansOptions::new(d, k) };
    let rows = reference::plusplus_rows(&mut reference::Rng::new(4), &data, d, k);
    let want: Vec<f32> = rows.iter().flat_map(|&r| data[r as usize * d..(r as usize + 1) * d].to_vec()).collect();
    for device in [Device::emulator(), Device::cpu()] {
        let (entries, reports) = fit(&device, &data, &options);
        assert!(reports.is_empty());
        assert_eq!(entries, want, "{}", device.name());
    }
}

/// Centroid kernels against the reference: counts exact, means bit-exact (same f64 row-order
/// sums) and within the dtype tolerance of the unrounded f64 means.
fn check_centroids<T: FloatElement>(
    n: usize,
    k: usize,
    d: usize,
    values: &[f32],
    indices: &[u32],
    kernels: &[CentroidKernel],
) {
    let data: Vec<T> = cast(values);
    let reseed: Vec<u32> = (0..k).map(|e| ((e * 31 + 7) % n) as u32).collect();
    let (want, counts) = reference::means(&data, d, indices, k, &reseed);
    // The unrounded means: f64 member sums in row order (with ±1e30 values, another order
    // can cancel differently by far more than a tolerance), divided by the count.
    let mut exact = vec![0.0f64; k * d];
    for (r, &e) in indices.iter().enumerate() {
        for j in 0..d {
            exact[e as usize * d + j] += data[r * d + j].to_f32() as f64;
        }
    }
    for e in 0..k {
        for j in 0..d {
            exact[e * d + j] = match counts[e] {
                0 => data[reseed[e] as usize * d + j].to_f32() as f64,
                c => exact[e * d + j] / c as f64,
            };
        }
    }
    for device in common::kernel_devices("kmeans").into_iter().chain([Device::cpu()]) {
        let ix = device.upload(indices).unwrap();
        for &kernel in kernels {
            let ctx = format!("{:?} {kernel:?} n={n} k={k} d={d} on {}", T::DTYPE, device.name());
            let got = update_centroids(&device, &device.upload(&data).unwrap(), d, &ix, k, &reseed, kernel).unwrap();
            assert_eq!(got.counts, counts, "{ctx}: counts");
            let c = got.centroids.download().unwrap();
            let cf: Vec<f64> = c.iter().map(|x| x.to_f32() as f64).collect();
            common::assert_close(&ctx, &cf, &exact, T::DTYPE, 1);
            assert_eq!(c, want, "{ctx}: not bit-identical to the reference");
        }
    }
}

fn centroid_case(max_n: usize, max_k: usize) -> impl Strategy<Value = (usize, usize, usize, Vec<f32>, Vec<u32>)> {
    (1..=max_n, 1..=max_k, prop::sample::select(&[1usize, 3, 8, 33, 40][..])).prop_flat_map(|(n, k, d)| {
        let value = prop_oneof![6 => -10.0f32..10.0, 1 => Just(0.0f32), 1 => Just(-0.0f32), 1 => -1e30f32..1e30];
        // Indices skewed towards a few entries, so some entries are large and others empty.
        let index = prop_oneof![3 => 0..k as u32, 1 => 0..(k as u32).div_ceil(4)];
        (Just(n), Just(k), Just(d), prop::collection::vec(value, n * d), prop::collection::vec(index, n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    #[test]
    fn centroids_f32((n, k, d, values, indices) in centroid_case(2500, 300)) {
        check_centroids::<f32>(n, k, d, &values, &indices, &[CentroidKernel::Sorted, CentroidKernel::Simple]);
    }

    #[test]
    fn centroids_bf16((n, k, d, values, indices) in centroid_case(600, 40)) {
        check_centroids::<bf16>(n, k, d, &values, &indices, &[CentroidKernel::Sorted, CentroidKernel::Simple]);
    }
}

#[test]
fn centroids_three_radix_passes_and_one_entry() {
    // k = 70000 needs 17 bits: three 8-bit passes. k = 1: no bits, one pass.
    let (n, d) = (5000, 2);
    let values = uniform_rows(n, d, 41);
    let indices: Vec<u32> = (0..n as u32).map(|r| (r.wrapping_mul(2654435761) >> 7) % 70000).collect();
    check_centroids::<f16>(n, 70000, d, &values, &indices, &[CentroidKernel::Sorted]);
    check_centroids::<f32>(n, 1, d, &values, &vec![0; n], &[CentroidKernel::Sorted, CentroidKernel::Simple]);
}

#[test]
fn bad_arguments_are_typed_errors() {
    let device = Device::emulator();
    let other = Device::emulator();
    let data = device.upload(&uniform_rows(10, 3, 1)).unwrap();
    let fit = |dev: &Device, data: &tessera::DeviceBuffer<f32>, o: KmeansOptions| {
        fit_codebook(dev, data, &o, &mut |_| {}).map(|c| c.len())
    };
    let o = KmeansOptions::new(3, 4);
    assert!(matches!(
        fit(&device, &data, KmeansOptions { dim: 0, ..o }),
        Err(Error::InvalidArgument { arg: "options.dim", .. })
    ));
    assert!(matches!(
        fit(&device, &data, KmeansOptions { dim: 4, ..o }),
        Err(Error::InvalidArgument { arg: "data", .. })
    ));
    assert!(matches!(
        fit(&device, &data, KmeansOptions { k: 0, ..o }),
        Err(Error::InvalidArgument { arg: "options.k", .. })
    ));
    assert!(matches!(
        fit(&device, &data, KmeansOptions { k: 11, ..o }),
        Err(Error::InvalidArgument { arg: "options.k", .. })
    ));
    assert!(matches!(
        fit(&device, &device.upload::<f32>(&[]).unwrap(), o),
        Err(Error::InvalidArgument { arg: "options.k", .. })
    ));
    assert!(matches!(fit(&other, &data, o), Err(Error::WrongDevice { arg: "data", .. })));
    assert_eq!(fit(&device, &data, KmeansOptions { k: 10, ..o }).unwrap(), 10);
    let mut bad = uniform_rows(10, 3, 1);
    bad[7 * 3 + 2] = f32::NAN;
    bad[9 * 3] = f32::INFINITY;
    for dev in [device.clone(), Device::cpu()] {
        for metric in [Metric::SquaredL2, Metric::Cosine] {
            match fit(&dev, &dev.upload(&bad).unwrap(), KmeansOptions { metric, ..o }) {
                Err(Error::InvalidValue { arg: "data", row: 7, .. }) => {}
                other => panic!("{} {metric:?}: {other:?}", dev.name()),
            }
        }
    }

    let ix = device.upload(&[0u32, 1, 2, 1, 0, 3, 3, 2, 1, 0]).unwrap();
    let update = |ix: &tessera::DeviceBuffer<u32>, k: usize, reseed: &[u32]| {
        update_centroids(&device, &data, 3, ix, k, reseed, CentroidKernel::Sorted).map(|u| u.counts)
    };
    assert_eq!(update(&ix, 4, &[0; 4]).unwrap(), vec![3, 3, 2, 2]);
    match update(&ix, 3, &[0; 3]) {
        Err(Error::InvalidValue { arg: "indices", row: 5, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(update(&ix, 4, &[0; 3]), Err(Error::LengthMismatch { arg: "reseed_rows", .. })));
    assert!(matches!(update(&ix, 4, &[0, 0, 10, 0]), Err(Error::InvalidArgument { arg: "reseed_rows", .. })));
    assert!(matches!(update(&ix, 0, &[]), Err(Error::InvalidArgument { arg: "k", .. })));
    // Past the kernels' u32 loop limit (2^31): rejected by shape, before anything is read.
    assert!(matches!(update(&ix, (1 << 31) + 1, &[]), Err(Error::InvalidArgument { arg: "k", .. })));
    assert!(matches!(update(&ix, u32::MAX as usize, &[]), Err(Error::InvalidArgument { arg: "k", .. })));
    assert!(matches!(
        update(&device.upload(&[0u32; 9]).unwrap(), 4, &[0; 4]),
        Err(Error::LengthMismatch { arg: "indices", .. })
    ));
    assert!(matches!(
        update(&other.upload(&[0u32; 10]).unwrap(), 4, &[0; 4]),
        Err(Error::WrongDevice { arg: "indices", .. })
    ));
    let r = update_centroids(&device, &data, 0, &ix, 4, &[0; 4], CentroidKernel::Simple);
    assert!(matches!(r, Err(Error::InvalidArgument { arg: "dim", .. })));
    let r = update_centroids(&device, &data, (1 << 31) + 1, &ix, 4, &[0; 4], CentroidKernel::Sorted);
    assert!(matches!(r, Err(Error::InvalidArgument { arg: "dim", .. })));
    assert!(matches!(
        fit(&device, &data, KmeansOptions { dim: (1 << 31) + 1, ..o }),
        Err(Error::InvalidArgument { arg: "options.dim", .. })
    ));
}

/// Determinism: on every kernel device, `fit_codebook` (batched k-means++ seeding, then
/// Lloyd iterations: the search with its atomicMin's, the integer-atomic histogram, the
/// radix sort and the centroid kernel) and `update_centroids` with both kernels run three
/// times on the same inputs, large enough for several blocks per launch (512 and 600 rows:
/// 2 and 3 seeding blocks, 8 and 10 search blocks; 2,500 rows for the update), and give the
/// same bits: entries and centroids by `to_bits`, counts exactly, every progress report
/// (objective by `to_bits`). Against the Cpu backend only what the other tests require:
/// the fitted codebook of well-separated blobs (`recovers_blobs`) and the centroid update
/// (`check_centroids`), bit for bit.
#[test]
fn reruns_are_bit_identical() {
    fn bits<T: FloatElement>(v: &[T]) -> Vec<u32> {
        v.iter().map(|x| x.to_f32().to_bits()).collect()
    }
    fn report_bits(reports: &[KmeansProgress]) -> Vec<(usize, usize, u64, usize)> {
        reports.iter().map(|r| (r.iteration, r.iterations, r.objective.to_bits(), r.reseeded)).collect()
    }
    fn fits<T: FloatElement>(data32: &[f32], options: &KmeansOptions, compare_with_cpu: bool) {
        let data: Vec<T> = cast(data32);
        let cpu = compare_with_cpu.then(|| fit(&Device::cpu(), &data, options).0);
        for device in common::kernel_devices("kmeans") {
            let ctx = format!("fit {:?} {:?} on {}", T::DTYPE, options.metric, device.name());
            let (entries, reports) = fit(&device, &data, options);
            assert_eq!(reports.len(), options.iterations, "{ctx}");
            for run in 2..=3 {
                let (e, r) = fit(&device, &data, options);
                assert_eq!(bits(&entries), bits(&e), "{ctx}: entries differ in run {run}");
                assert_eq!(report_bits(&reports), report_bits(&r), "{ctx}: progress differs in run {run}");
            }
            if let Some(cpu) = &cpu {
                assert_eq!(bits(&entries), bits(cpu), "{ctx}: differs from the Cpu backend");
            }
        }
    }
    fn updates<T: FloatElement>(values: &[f32], d: usize, indices: &[u32], k: usize) {
        let n = indices.len();
        let data: Vec<T> = cast(values);
        let reseed: Vec<u32> = (0..k).map(|e| ((e * 31 + 7) % n) as u32).collect();
        let update = |device: &Device, kernel| {
            let ix = device.upload(indices).unwrap();
            let u = update_centroids(device, &device.upload(&data).unwrap(), d, &ix, k, &reseed, kernel).unwrap();
            (u.counts, bits(&u.centroids.download().unwrap()))
        };
        for device in common::kernel_devices("kmeans") {
            for kernel in [CentroidKernel::Sorted, CentroidKernel::Simple] {
                let ctx = format!("update {:?} {kernel:?} on {}", T::DTYPE, device.name());
                let first = update(&device, kernel);
                for run in 2..=3 {
                    let again = update(&device, kernel);
                    assert_eq!(first.0, again.0, "{ctx}: counts differ in run {run}");
                    assert_eq!(first.1, again.1, "{ctx}: centroids differ in run {run}");
                }
                assert_eq!(first, update(&Device::cpu(), kernel), "{ctx}: differs from the Cpu backend");
            }
        }
    }
    let b = blobs(8, 64, 4, 0.15, 4);
    let options = KmeansOptions { iterations: 3, seed: 3, ..KmeansOptions::new(4, b.clusters) };
    fits::<f32>(&b.rows, &options, true);
    let uniform = uniform_rows(600, 6, 17);
    let cosine = KmeansOptions { iterations: 2, seed: 9, metric: Metric::Cosine, ..KmeansOptions::new(6, 8) };
    fits::<f16>(&uniform, &cosine, false);

    // Values up to ±1e30: a member sum in another order than row order gives other bits.
    let (n, k, d) = (2500, 40, 8);
    let mut g = Gen(77);
    let values: Vec<f32> =
        (0..n * d).map(|i| (g.uniform() * 2.0 - 1.0) * if i % 11 == 0 { 1e30 } else { 10.0 }).collect();
    let indices: Vec<u32> =
        (0..n as u32).map(|r| (r.wrapping_mul(2654435761) >> 9) % if r % 3 == 0 { 12 } else { k as u32 }).collect();
    updates::<f32>(&values, d, &indices, k);
    updates::<bf16>(&values, d, &indices, k);
}
