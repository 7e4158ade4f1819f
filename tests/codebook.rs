//! Nearest-codebook search (kernels/codebook.cu) on the emulator — and a GPU when present —
//! against the f64 reference (src/reference/codebook.rs), on every path: SIMT, tensor
//! core, split codebook, unfused baseline.

mod common;

use half::{bf16, f16};
use proptest::prelude::*;
use tessera::reference::codebook as reference;
use tessera::{Codebook, Device, Error, FloatElement, Metric, SearchOptions, SearchPath};

#[derive(Debug, Clone)]
struct Case {
    n: usize,
    k: usize,
    d: usize,
    z: Vec<f32>,
    e: Vec<f32>,
}

/// Runs one search and checks every output against the reference.
fn check<T: FloatElement>(case: &Case, metric: Metric, path: SearchPath, splits: Option<usize>) {
    let z: Vec<T> = case.z.iter().map(|&v| T::from_f32(v)).collect();
    let e: Vec<T> = case.e.iter().map(|&v| T::from_f32(v)).collect();
    let d = case.d;
    let want = reference::search(&z, &e, d, metric);
    let (atol, rtol) = common::tolerance(T::DTYPE, d);
    for device in common::kernel_devices("codebook") {
        let ctx = format!(
            "{:?} {metric:?} {path:?} splits {splits:?} n={} k={} d={} on {}",
            T::DTYPE,
            case.n,
            case.k,
            d,
            device.name()
        );
        let codebook = Codebook::new(&device, device.upload(&e).unwrap(), d, metric).unwrap();
        let options = SearchOptions { distances: true, histogram: true, path, splits };
        let out = codebook.quantize(&device, &device.upload(&z).unwrap(), &options).unwrap();
        let indices = out.indices.download().unwrap();
        assert_eq!(indices.len(), case.n, "{ctx}");
        let dists = out.distances.as_ref().unwrap().download().unwrap();
        for (row, (&got, &exp)) in indices.iter().zip(&want.indices).enumerate() {
            assert!((got as usize) < case.k, "{ctx}: row {row} index {got} out of range");
            if got != exp {
                // Allowed only for a tie within tolerance, which the reference confirms.
                let dg = reference::distance(&z, &e, d, row, got as usize, metric);
                let de = want.distances[row];
                assert!(
                    (dg - de).abs() <= atol + rtol * de.abs(),
                    "{ctx}: row {row} chose {got} (distance {dg}), reference {exp} (distance {de}) — not a tie"
                );
            }
            let dg = reference::distance(&z, &e, d, row, got as usize, metric);
            assert!(
                (dists[row] as f64 - dg).abs() <= atol + rtol * dg.abs(),
                "{ctx}: row {row} distance {} vs {dg}",
                dists[row]
            );
        }
        // Gathered rows: exactly the searched entries at the chosen indices.
        let searched = codebook.searched_entries().download().unwrap();
        let quantized = out.quantized.download().unwrap();
        for (row, &idx) in indices.iter().enumerate() {
            assert_eq!(
                &quantized[row * d..(row + 1) * d],
                &searched[idx as usize * d..(idx as usize + 1) * d],
                "{ctx}: row {row}"
            );
        }
        // Histogram: exactly the counts of the returned indices; perplexity and commitment from them.
        let hist = out.histogram.as_ref().unwrap().download().unwrap();
        assert_eq!(hist, reference::histogram(&indices, case.k), "{ctx}");
        let perplexity = out.perplexity().unwrap().unwrap();
        assert!((perplexity - reference::perplexity(&hist)).abs() <= 1e-9 * perplexity.max(1.0), "{ctx}");
        let mean = if case.n == 0 { 0.0 } else { dists.iter().map(|&x| x as f64).sum::<f64>() / case.n as f64 };
        let commitment = out.commitment().unwrap();
        assert!((commitment - mean).abs() <= 1e-6 * mean.max(1e-6), "{ctx}: commitment {commitment} vs {mean}");
    }
}

fn case_strategy(ds: &'static [usize], max_n: usize, max_k: usize) -> impl Strategy<Value = Case> {
    (0..=max_n, 1..=max_k, prop::sample::select(ds)).prop_flat_map(|(n, k, d)| {
        let value = prop_oneof![8 => -1.0f32..1.0, 1 => Just(0.0f32), 1 => (-4i32..4).prop_map(|v| v as f32 * 0.25)];
        (prop::collection::vec(value.clone(), n * d), prop::collection::vec(value, k * d))
            .prop_map(move |(z, e)| Case { n, k, d, z, e })
    })
}

const SIMT_DS: &[usize] = &[1, 3, 8, 17, 32, 40, 64];
const MMA_DS: &[usize] = &[32, 48, 64, 128];

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn simt_f32((case, metric) in (case_strategy(SIMT_DS, 150, 200), prop_oneof![Just(Metric::SquaredL2), Just(Metric::Cosine)])) {
        check::<f32>(&case, metric, SearchPath::Simt, Some(1));
    }

    #[test]
    fn simt_bf16_split((case, splits) in (case_strategy(SIMT_DS, 70, 300), 2usize..5)) {
        check::<bf16>(&case, Metric::SquaredL2, SearchPath::Simt, Some(splits));
    }

    #[test]
    fn tensor_core_f16((case, metric) in (case_strategy(MMA_DS, 130, 150), prop_oneof![Just(Metric::SquaredL2), Just(Metric::Cosine)])) {
        check::<f16>(&case, metric, SearchPath::TensorCore, Some(1));
    }

    #[test]
    fn tensor_core_bf16_split((case, splits) in (case_strategy(MMA_DS, 70, 260), 2usize..4)) {
        check::<bf16>(&case, Metric::SquaredL2, SearchPath::TensorCore, Some(splits));
    }

    #[test]
    fn unfused_baseline((case, metric) in (case_strategy(SIMT_DS, 80, 100), prop_oneof![Just(Metric::SquaredL2), Just(Metric::Cosine)])) {
        check::<f16>(&case, metric, SearchPath::Unfused, None);
    }
}

fn random_case(n: usize, k: usize, d: usize, seed: u32) -> Case {
    let mut s = seed.wrapping_mul(747796405).wrapping_add(2891336453);
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s >> 8) as f32 / 8_388_608.0 - 1.0
    };
    Case { n, k, d, z: (0..n * d).map(|_| next()).collect(), e: (0..k * d).map(|_| next()).collect() }
}

/// Small N × large K: the automatic plan splits the codebook across blocks.
#[test]
fn automatic_plan_splits_small_n_huge_k() {
    let case = random_case(9, 3000, 8, 7);
    let device = Device::emulator();
    let e: Vec<f32> = case.e.clone();
    let codebook = Codebook::new(&device, device.upload(&e).unwrap(), 8, Metric::SquaredL2).unwrap();
    let plan = codebook.plan(9, &SearchOptions::default()).unwrap();
    assert_eq!(plan.path, SearchPath::Simt);
    assert!(plan.splits > 1, "{plan:?}");
    check::<f32>(&case, Metric::SquaredL2, SearchPath::Auto, None);

    let bf: Codebook<bf16> =
        Codebook::new(&device, device.upload(&vec![bf16::ONE; 64 * 2048]).unwrap(), 64, Metric::SquaredL2).unwrap();
    let plan = bf.plan(100, &SearchOptions::default()).unwrap();
    assert_eq!(plan.path, SearchPath::TensorCore);
    assert!(plan.splits > 1, "{plan:?}");
    assert_eq!(bf.plan(100_000, &SearchOptions::default()).unwrap().splits, 1);
}

/// Duplicate entries: the lowest index must win, on every path.
#[test]
fn ties_go_to_the_lowest_index() {
    let d = 32;
    let device = Device::emulator();
    let mut e = random_case(0, 200, d, 3).e;
    // Entries 37, 101 and 150 equal entry 90; latents equal to entry 90 must pick 37.
    // 37 and 101 = 37 + 64 fall to the same thread of both kernels (one code per 64-code
    // tile), so a running minimum that let a later equal code win would be caught.
    for j in 0..d {
        for dup in [37, 101, 150] {
            e[dup * d + j] = e[90 * d + j];
        }
    }
    let z: Vec<f32> = (0..70).flat_map(|_| e[90 * d..91 * d].to_vec()).collect();
    for (path, splits) in [
        (SearchPath::Simt, 1),
        (SearchPath::Simt, 3),
        (SearchPath::TensorCore, 1),
        (SearchPath::TensorCore, 3),
        (SearchPath::Unfused, 1),
    ] {
        let zb: Vec<f16> = z.iter().map(|&v| f16::from_f32(v)).collect();
        let eb: Vec<f16> = e.iter().map(|&v| f16::from_f32(v)).collect();
        let codebook = Codebook::new(&device, device.upload(&eb).unwrap(), d, Metric::SquaredL2).unwrap();
        let options = SearchOptions { path, splits: Some(splits), ..SearchOptions::default() };
        let out = codebook.quantize(&device, &device.upload(&zb).unwrap(), &options).unwrap();
        assert!(out.indices.download().unwrap().iter().all(|&i| i == 37), "{path:?} splits {splits}");
    }
}

#[test]
fn k_of_one_and_n_of_zero() {
    let device = Device::emulator();
    for metric in [Metric::SquaredL2, Metric::Cosine] {
        let codebook = Codebook::new(&device, device.upload(&[0.5f32, -0.25, 1.0]).unwrap(), 3, metric).unwrap();
        let out = codebook
            .quantize(&device, &device.upload(&[1.0f32, 2.0, 3.0, -1.0, 0.0, 0.5]).unwrap(), &SearchOptions::default())
            .unwrap();
        assert_eq!(out.indices.download().unwrap(), vec![0, 0]);
        assert_eq!(out.histogram.unwrap().download().unwrap(), vec![2]);
        let none = codebook.quantize(&device, &device.upload::<f32>(&[]).unwrap(), &SearchOptions::default()).unwrap();
        assert!(none.indices.is_empty() && none.quantized.is_empty());
        assert_eq!(none.commitment().unwrap(), 0.0);
    }
}

#[test]
fn residual_is_z_minus_the_chosen_entry() {
    let case = random_case(100, 50, 8, 11);
    for device in [Device::emulator(), Device::cpu()] {
        let codebook = Codebook::new(&device, device.upload(&case.e).unwrap(), 8, Metric::SquaredL2).unwrap();
        let (out, residual) =
            codebook.quantize_residual(&device, &device.upload(&case.z).unwrap(), &SearchOptions::default()).unwrap();
        let q = out.quantized.download().unwrap();
        let r = residual.download().unwrap();
        for i in 0..case.z.len() {
            assert_eq!(r[i], case.z[i] - q[i], "{} element {i}", device.name());
        }
    }
}

#[test]
fn cpu_backend_matches_the_emulator() {
    let case = random_case(120, 90, 17, 5);
    let search = |device: &Device| {
        let codebook = Codebook::new(device, device.upload(&case.e).unwrap(), 17, Metric::Cosine).unwrap();
        codebook
            .quantize(device, &device.upload(&case.z).unwrap(), &SearchOptions::default())
            .unwrap()
            .indices
            .download()
            .unwrap()
    };
    assert_eq!(search(&Device::cpu()), search(&Device::emulator()));
}

#[test]
fn non_finite_values_name_the_first_row() {
    let device = Device::emulator();
    let mut case = random_case(200, 80, 8, 9);
    case.e[33 * 8 + 5] = f32::INFINITY;
    case.e[60 * 8] = f32::NAN;
    for dev in [device.clone(), Device::cpu()] {
        // The kernel's finding arrives with the next synchronizing call.
        let made = Codebook::new(&dev, dev.upload(&case.e).unwrap(), 8, Metric::SquaredL2);
        match made.and_then(|c| dev.synchronize().map(|()| c)) {
            Err(Error::InvalidValue { op: "Codebook::new", arg: "entries", row: 33, .. }) => {}
            other => panic!("{}: {other:?}", dev.name()),
        }
    }
    let case = random_case(200, 80, 8, 9);
    let mut z = case.z.clone();
    z[150 * 8 + 1] = f32::NAN;
    z[171 * 8] = f32::NEG_INFINITY;
    for dev in [device, Device::cpu()] {
        for metric in [Metric::SquaredL2, Metric::Cosine] {
            let codebook = Codebook::new(&dev, dev.upload(&case.e).unwrap(), 8, metric).unwrap();
            let searched = codebook.quantize(&dev, &dev.upload(&z).unwrap(), &SearchOptions::default());
            match searched.and_then(|o| o.indices.download().map(|_| o)) {
                Err(Error::InvalidValue { op: "Codebook::quantize", arg: "z", row: 150, .. }) => {}
                other => panic!("{} {metric:?}: {:?}", dev.name(), other.map(|o| o.indices.len())),
            }
        }
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    let device = Device::emulator();
    let other = Device::emulator();
    let e = device.upload(&[0.0f32; 12]).unwrap();
    assert!(matches!(
        Codebook::new(&device, device.upload(&[0.0f32; 12]).unwrap(), 0, Metric::SquaredL2),
        Err(Error::InvalidArgument { arg: "dim", .. })
    ));
    assert!(matches!(
        Codebook::new(&device, device.upload(&[0.0f32; 12]).unwrap(), 5, Metric::SquaredL2),
        Err(Error::InvalidArgument { arg: "entries", .. })
    ));
    assert!(matches!(
        Codebook::new(&device, device.upload::<f32>(&[]).unwrap(), 4, Metric::SquaredL2),
        Err(Error::InvalidArgument { arg: "entries", .. })
    ));
    assert!(matches!(
        Codebook::new(&device, other.upload(&[0.0f32; 12]).unwrap(), 4, Metric::SquaredL2),
        Err(Error::WrongDevice { arg: "entries", .. })
    ));
    let codebook = Codebook::new(&device, e, 4, Metric::SquaredL2).unwrap();
    let r = codebook.quantize(&device, &device.upload(&[0.0f32; 6]).unwrap(), &SearchOptions::default());
    assert!(matches!(r, Err(Error::InvalidArgument { arg: "z", .. })), "{:?}", r.map(|o| o.indices.len()));
    let r = codebook.quantize(&device, &other.upload(&[0.0f32; 8]).unwrap(), &SearchOptions::default());
    assert!(matches!(r, Err(Error::WrongDevice { arg: "z", .. })));
    let tc = SearchOptions { path: SearchPath::TensorCore, ..SearchOptions::default() };
    let r = codebook.quantize(&device, &device.upload(&[0.0f32; 8]).unwrap(), &tc);
    assert!(matches!(r, Err(Error::InvalidArgument { arg: "options.path", .. })));
    let zero = SearchOptions { splits: Some(0), ..SearchOptions::default() };
    let r = codebook.quantize(&device, &device.upload(&[0.0f32; 8]).unwrap(), &zero);
    assert!(matches!(r, Err(Error::InvalidArgument { arg: "options.splits", .. })));
    let cos = Codebook::new(&device, device.upload(&[1.0f32; 8]).unwrap(), 4, Metric::Cosine).unwrap();
    assert!(matches!(
        cos.quantize_residual(&device, &device.upload(&[0.0f32; 8]).unwrap(), &SearchOptions::default()),
        Err(Error::InvalidArgument { arg: "metric", .. })
    ));
}

/// Every dtype × metric × path (where the path supports the dtype), with and without a
/// split codebook, on one ragged shape.
#[test]
fn every_dtype_metric_and_path() {
    let case = random_case(97, 203, 32, 21);
    for metric in [Metric::SquaredL2, Metric::Cosine] {
        for splits in [Some(1), Some(3)] {
            for path in [SearchPath::Simt, SearchPath::Unfused] {
                check::<f32>(&case, metric, path, splits);
                check::<f16>(&case, metric, path, splits);
                check::<bf16>(&case, metric, path, splits);
            }
            check::<f16>(&case, metric, SearchPath::TensorCore, splits);
            check::<bf16>(&case, metric, SearchPath::TensorCore, splits);
        }
    }
}

/// The residual search's indices, quantized rows, residual and commitment, floats as bits.
type ResidualBits = (Vec<u32>, Vec<u32>, Vec<u32>, u64);

/// Everything one search gives, downloaded; floats as their bits.
#[derive(Debug, PartialEq)]
struct SearchBits {
    searched: Vec<u32>,
    indices: Vec<u32>,
    quantized: Vec<u32>,
    distances: Vec<u32>,
    histogram: Vec<u32>,
    commitment: u64,
    perplexity: u64,
    residual: Option<ResidualBits>,
}

/// Builds the codebook and runs one search (and, for squared L2, one residual search) with
/// every output asked for.
fn search_bits<T: FloatElement>(device: &Device, case: &Case, metric: Metric, options: &SearchOptions) -> SearchBits {
    let bits = |v: &[T]| v.iter().map(|x| x.to_f32().to_bits()).collect::<Vec<_>>();
    let z: Vec<T> = case.z.iter().map(|&v| T::from_f32(v)).collect();
    let e: Vec<T> = case.e.iter().map(|&v| T::from_f32(v)).collect();
    let codebook = Codebook::new(device, device.upload(&e).unwrap(), case.d, metric).unwrap();
    let out = codebook.quantize(device, &device.upload(&z).unwrap(), options).unwrap();
    let residual = (metric == Metric::SquaredL2).then(|| {
        let (r_out, residual) = codebook.quantize_residual(device, &device.upload(&z).unwrap(), options).unwrap();
        (
            r_out.indices.download().unwrap(),
            bits(&r_out.quantized.download().unwrap()),
            bits(&residual.download().unwrap()),
            r_out.commitment().unwrap().to_bits(),
        )
    });
    SearchBits {
        searched: bits(&codebook.searched_entries().download().unwrap()),
        indices: out.indices.download().unwrap(),
        quantized: bits(&out.quantized.download().unwrap()),
        distances: out.distances.as_ref().unwrap().download().unwrap().iter().map(|x| x.to_bits()).collect(),
        histogram: out.histogram.as_ref().unwrap().download().unwrap(),
        commitment: out.commitment().unwrap().to_bits(),
        perplexity: out.perplexity().unwrap().unwrap().to_bits(),
        residual,
    }
}

/// Determinism: on every kernel device, each search path runs three times on the same
/// inputs (130 latents, 200 codes, d = 32: 3 row groups × 3 splits = 9 search blocks whose
/// atomicMin's on the per-row keys arrive in a varying order, and 17 finalize blocks) and
/// every output is the same bits: the searched (for cosine normalized) entries, indices,
/// quantized rows, distances, histogram, commitment, perplexity, and the residual search's
/// outputs. On the emulator, f32 cosine indices of the automatic plan also equal the Cpu
/// backend's, as `cpu_backend_matches_the_emulator` requires.
#[test]
fn reruns_are_bit_identical() {
    let case = random_case(130, 200, 32, 31);
    fn three_runs<T: FloatElement>(
        device: &Device,
        case: &Case,
        metric: Metric,
        path: SearchPath,
        splits: Option<usize>,
    ) {
        let options = SearchOptions { distances: true, histogram: true, path, splits };
        let ctx = format!("{:?} {metric:?} {path:?} splits {splits:?} on {}", T::DTYPE, device.name());
        let first = search_bits::<T>(device, case, metric, &options);
        for run in 2..=3 {
            let again = search_bits::<T>(device, case, metric, &options);
            // Field by field, so that a failure names the output.
            assert_eq!(first.searched, again.searched, "{ctx}: searched entries differ in run {run}");
            assert_eq!(first.indices, again.indices, "{ctx}: indices differ in run {run}");
            assert_eq!(first.quantized, again.quantized, "{ctx}: quantized differs in run {run}");
            assert_eq!(first.distances, again.distances, "{ctx}: distances differ in run {run}");
            assert_eq!(first.histogram, again.histogram, "{ctx}: histogram differs in run {run}");
            assert_eq!(first.commitment, again.commitment, "{ctx}: commitment differs in run {run}");
            assert_eq!(first.perplexity, again.perplexity, "{ctx}: perplexity differs in run {run}");
            assert_eq!(first.residual, again.residual, "{ctx}: residual search differs in run {run}");
        }
    }
    for device in common::kernel_devices("codebook") {
        for metric in [Metric::SquaredL2, Metric::Cosine] {
            for splits in [Some(1), Some(3)] {
                three_runs::<f32>(&device, &case, metric, SearchPath::Simt, splits);
                three_runs::<f16>(&device, &case, metric, SearchPath::TensorCore, splits);
            }
            three_runs::<bf16>(&device, &case, metric, SearchPath::TensorCore, Some(3));
            three_runs::<f16>(&device, &case, metric, SearchPath::Unfused, None);
        }
        if device.kind() == tessera::BackendKind::Emulator {
            let options = SearchOptions { distances: true, histogram: true, ..SearchOptions::default() };
            let cpu = search_bits::<f32>(&Device::cpu(), &case, Metric::Cosine, &options);
            let emu = search_bits::<f32>(&device, &case, Metric::Cosine, &options);
            assert_eq!(emu.indices, cpu.indices, "f32 cosine indices: emulator vs the Cpu backend");
        }
    }
}

/// Ranges one past a multiple of every tile: n = 65 latents (64-row blocks), k = 129 codes
/// (64-code tiles; with 2 splits of 64 codes the last split's range is 1 code), d one past a
/// multiple of the 32-dim k-tile (SIMT: 33; tensor cores need d % 16 == 0: 48). The rows are
/// planted on the first and last code of each tile range, so a dropped last tile, code or
/// k-tile changes an index.
#[test]
fn the_last_code_row_and_dim_of_every_tile_are_searched() {
    fn run<T: FloatElement>(d: usize, path: SearchPath, splits: Option<usize>) {
        let (n, k) = (65, 129);
        let mut case = random_case(n, k, d, 77);
        let planted = [128usize, 64, 63, 0, 127];
        for row in 0..n {
            let code = planted[row % planted.len()];
            for j in 0..d {
                // The latent sits on its code, nudged by less than half the codes' spacing.
                case.z[row * d + j] = case.e[code * d + j] + if j == d - 1 { 0.01 } else { 0.0 };
            }
        }
        check::<T>(&case, Metric::SquaredL2, path, splits);
        // And the planted code is the one found (the reference agrees by construction).
        let z: Vec<T> = case.z.iter().map(|&v| T::from_f32(v)).collect();
        let e: Vec<T> = case.e.iter().map(|&v| T::from_f32(v)).collect();
        let want = reference::search(&z, &e, d, Metric::SquaredL2);
        for row in 0..n {
            assert_eq!(want.indices[row] as usize, planted[row % planted.len()], "planted row {row}");
        }
    }
    for splits in [None, Some(2), Some(3)] {
        run::<f32>(33, SearchPath::Simt, splits);
        run::<bf16>(33, SearchPath::Simt, splits);
        run::<f16>(48, SearchPath::TensorCore, splits);
        run::<bf16>(48, SearchPath::TensorCore, splits);
    }
    run::<f32>(33, SearchPath::Unfused, None);
}
