//! Residual VQ (kernels/residual_vq.cu + the codebook search) on the emulator — and a GPU
//! when present — against a stage-by-stage f64 nearest search.

mod common;

use half::bf16;
use tessera::reference::codebook as search;
use tessera::{Codebook, Device, DeviceBuffer, Error, FloatElement, KmeansOptions, Metric, ResidualVq, SearchOptions};

fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(747796405).wrapping_add(2891336453) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            ((s >> 8) as f32 / 8_388_608.0 - 1.0) * scale
        })
        .collect()
}

fn cast<T: FloatElement>(v: &[f32]) -> Vec<T> {
    v.iter().map(|&x| T::from_f32(x)).collect()
}

fn codebooks<T: FloatElement>(device: &Device, e: &[Vec<T>], d: usize) -> ResidualVq<T> {
    ResidualVq::new(
        e.iter().map(|e| Codebook::new(device, device.upload(e).unwrap(), d, Metric::SquaredL2).unwrap()).collect(),
    )
    .unwrap()
}

/// Stage by stage: the nearest entry of the residual in f64 (a differing index must be a tie
/// within tolerance, and the reference then follows the kernel's choice), the residual
/// rounded to T as the finalize kernel does, the quantized sum in f32 in stage order.
fn check<T: FloatElement>(n: usize, d: usize, k: usize, stages: usize, seed: u32) {
    let z: Vec<T> = cast(&values(n * d, seed, 1.0));
    let e: Vec<Vec<T>> =
        (0..stages).map(|s| cast(&values(k * d, seed + 100 + s as u32, 1.0 / (1 << s) as f32))).collect();
    let (atol, rtol) = common::tolerance(T::DTYPE, d);
    for device in common::kernel_devices("residual_vq").into_iter().chain([Device::cpu()]) {
        let ctx = format!("{:?} n={n} d={d} k={k} S={stages} on {}", T::DTYPE, device.name());
        let rvq = codebooks(&device, &e, d);
        let out = rvq.quantize(&device, &device.upload(&z).unwrap()).unwrap();
        let idx = out.indices.download().unwrap();
        let quantized = out.quantized.download().unwrap();
        assert_eq!(idx.len(), n * stages, "{ctx}");
        assert_eq!(out.commitment().unwrap().len(), stages, "{ctx}");
        let mut residual = z.clone();
        let mut sum = vec![0.0f32; n * d];
        for s in 0..stages {
            let want = search::search(&residual, &e[s], d, Metric::SquaredL2);
            let mut commitment = 0.0;
            for row in 0..n {
                let got = idx[row * stages + s];
                let dg = search::distance(&residual, &e[s], d, row, got as usize, Metric::SquaredL2);
                if got != want.indices[row] {
                    let de = want.distances[row];
                    assert!(
                        (dg - de).abs() <= atol + rtol * de,
                        "{ctx}: stage {s} row {row}: {got} ({dg}) vs {} ({de}), not a tie",
                        want.indices[row]
                    );
                }
                commitment += dg / n as f64;
                for j in 0..d {
                    let (r, ev) = (residual[row * d + j].to_f32(), e[s][got as usize * d + j].to_f32());
                    residual[row * d + j] = T::from_f32(r - ev);
                    sum[row * d + j] = if s == 0 { ev } else { sum[row * d + j] + ev };
                }
            }
            let c = out.commitment().unwrap()[s];
            assert!(
                (c - commitment).abs() <= atol + rtol * commitment,
                "{ctx}: stage {s} commitment {c} vs {commitment}"
            );
        }
        assert_eq!(quantized, cast::<T>(&sum), "{ctx}: quantized is not the sum of the chosen entries");
    }
}

#[test]
fn matches_a_stage_by_stage_reference_f32() {
    check::<f32>(150, 8, 20, 3, 1);
    check::<f32>(70, 3, 9, 4, 2);
    check::<f32>(0, 5, 4, 2, 3);
}

#[test]
fn matches_a_stage_by_stage_reference_bf16() {
    check::<bf16>(130, 16, 33, 3, 4);
    check::<bf16>(1, 40, 5, 2, 5);
}

#[test]
fn one_stage_is_plain_vq() {
    let (n, d, k) = (120, 6, 25);
    let z = values(n * d, 8, 1.0);
    let e = values(k * d, 9, 1.0);
    for device in [Device::emulator(), Device::cpu()] {
        let cb = Codebook::new(&device, device.upload(&e).unwrap(), d, Metric::SquaredL2).unwrap();
        let plain = cb.quantize(&device, &device.upload(&z).unwrap(), &SearchOptions::default()).unwrap();
        let rvq = ResidualVq::new(vec![cb]).unwrap();
        let out = rvq.quantize(&device, &device.upload(&z).unwrap()).unwrap();
        assert_eq!(out.indices.download().unwrap(), plain.indices.download().unwrap(), "{}", device.name());
        assert_eq!(out.quantized.download().unwrap(), plain.quantized.download().unwrap(), "{}", device.name());
        assert_eq!(out.commitment().unwrap(), vec![plain.commitment().unwrap()], "{}", device.name());
    }
}

#[test]
fn fitted_stages_reduce_the_error() {
    let (n, d, k, stages) = (500, 8, 16, 4);
    let z = values(n * d, 12, 1.0);
    let device = Device::emulator();
    let data = device.upload(&z).unwrap();
    let mut seen = vec![0; stages];
    let options = KmeansOptions { iterations: 4, seed: 7, ..KmeansOptions::new(d, k) };
    let rvq = ResidualVq::fit(&device, &data, stages, &options, &mut |s, p| {
        assert_eq!(p.iteration, seen[s] + 1);
        seen[s] += 1;
    })
    .unwrap();
    assert_eq!(seen, vec![4; stages]);
    assert_eq!(rvq.stages().len(), stages);
    let mut last = f64::INFINITY;
    for s in 1..=stages {
        let prefix: Vec<Codebook<f32>> = rvq
            .stages()
            .iter()
            .take(s)
            .map(|cb| {
                Codebook::new(&device, device.upload(&cb.entries().download().unwrap()).unwrap(), d, Metric::SquaredL2)
                    .unwrap()
            })
            .collect();
        let out = ResidualVq::new(prefix).unwrap().quantize(&device, &data).unwrap();
        let q = out.quantized.download().unwrap();
        let mse = z.iter().zip(&q).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / n as f64;
        // The last stage's commitment is the mean squared residual, i.e. the error.
        assert!(
            (mse - out.commitment().unwrap()[s - 1]).abs() <= 1e-4 * mse,
            "{s} stages: error {mse} vs commitment {:?}",
            out.commitment().unwrap()
        );
        assert!(mse < last * 0.95, "{s} stages: error {mse} did not drop below {last}");
        last = mse;
    }
    // The fit is deterministic.
    let again = ResidualVq::fit(&device, &data, stages, &options, &mut |_, _| {}).unwrap();
    for (a, b) in rvq.stages().iter().zip(again.stages()) {
        assert_eq!(a.entries().download().unwrap(), b.entries().download().unwrap());
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let device = Device::emulator();
    let other = Device::emulator();
    let cb = |dev: &Device, d: usize, metric: Metric| {
        Codebook::new(dev, dev.upload(&values(4 * d, 1, 1.0)).unwrap(), d, metric).unwrap()
    };
    let err = |r: tessera::Result<ResidualVq<f32>>| r.map(|_| ()).unwrap_err();
    assert!(matches!(err(ResidualVq::new(vec![])), Error::InvalidArgument { arg: "stages", .. }));
    assert!(matches!(
        err(ResidualVq::new(vec![cb(&device, 3, Metric::SquaredL2), cb(&device, 4, Metric::SquaredL2)])),
        Error::InvalidArgument { arg: "stages", .. }
    ));
    assert!(matches!(
        err(ResidualVq::new(vec![cb(&device, 3, Metric::Cosine)])),
        Error::InvalidArgument { arg: "stages", .. }
    ));
    assert!(matches!(
        err(ResidualVq::new(vec![cb(&device, 3, Metric::SquaredL2), cb(&other, 3, Metric::SquaredL2)])),
        Error::InvalidArgument { arg: "stages", .. }
    ));

    let rvq = ResidualVq::new(vec![cb(&device, 3, Metric::SquaredL2), cb(&device, 3, Metric::SquaredL2)]).unwrap();
    assert!(matches!(
        rvq.quantize(&device, &device.upload(&[0.0f32; 7]).unwrap()),
        Err(Error::InvalidArgument { arg: "z", .. })
    ));
    assert!(matches!(
        rvq.quantize(&device, &other.upload(&[0.0f32; 6]).unwrap()),
        Err(Error::WrongDevice { arg: "z", .. })
    ));
    let mut z = values(30, 2, 1.0);
    z[5 * 3 + 1] = f32::NAN;
    for dev in [device.clone(), Device::cpu()] {
        let rvq = ResidualVq::new(vec![cb(&dev, 3, Metric::SquaredL2), cb(&dev, 3, Metric::SquaredL2)]).unwrap();
        // Reported at the first synchronizing call (here the download), naming the search.
        match rvq.quantize(&dev, &dev.upload(&z).unwrap()).and_then(|o| o.indices.download()) {
            Err(Error::InvalidValue { op: "Codebook::quantize", arg: "z", row: 5, .. }) => {}
            other => panic!("{}: {:?}", dev.name(), other.map(|o| o.len())),
        }
    }

    let data: DeviceBuffer<f32> = device.upload(&values(30, 3, 1.0)).unwrap();
    let fit = |stages: usize, o: KmeansOptions| {
        ResidualVq::fit(&device, &data, stages, &o, &mut |_, _| {}).map(|r| r.stages().len())
    };
    assert!(matches!(fit(0, KmeansOptions::new(3, 4)), Err(Error::InvalidArgument { arg: "stages", .. })));
    assert!(matches!(
        fit(2, KmeansOptions { metric: Metric::Cosine, ..KmeansOptions::new(3, 4) }),
        Err(Error::InvalidArgument { arg: "options.metric", .. })
    ));
    assert!(matches!(fit(2, KmeansOptions::new(3, 11)), Err(Error::InvalidArgument { arg: "options.k", .. })));
    assert_eq!(fit(2, KmeansOptions::new(3, 10)).unwrap(), 2);
}

/// Determinism: on every kernel device, `ResidualVq::quantize` (per stage: the search with
/// its atomicMin's over split codebooks (the f32 case: 600 codes, which the automatic plan
/// splits), the finalize with per-block commitment sums, the accumulate kernel) runs three
/// times on the same 300 latents (5 search row groups, 38 finalize blocks per stage) and
/// gives the same bits: indices exactly, quantized rows and every stage's commitment by
/// `to_bits`; f32 and bf16. `ResidualVq::fit` (k-means per stage on the residuals) also
/// runs three times and gives the same entries and progress. No comparison with the Cpu
/// backend: the other tests compare the two only within tolerance.
#[test]
fn reruns_are_bit_identical() {
    fn bits<T: FloatElement>(v: &[T]) -> Vec<u32> {
        v.iter().map(|x| x.to_f32().to_bits()).collect()
    }
    fn quantizes<T: FloatElement>(device: &Device, n: usize, d: usize, k: usize, stages: usize, seed: u32) -> usize {
        let z: Vec<T> = cast(&values(n * d, seed, 1.0));
        let e: Vec<Vec<T>> =
            (0..stages).map(|s| cast(&values(k * d, seed + 100 + s as u32, 1.0 / (1 << s) as f32))).collect();
        let run = || {
            let rvq = codebooks(device, &e, d);
            let out = rvq.quantize(device, &device.upload(&z).unwrap()).unwrap();
            let commitment: Vec<u64> = out.commitment().unwrap().iter().map(|c| c.to_bits()).collect();
            (out.indices.download().unwrap(), bits(&out.quantized.download().unwrap()), commitment)
        };
        let ctx = format!("quantize {:?} n={n} d={d} k={k} S={stages} on {}", T::DTYPE, device.name());
        let first = run();
        for r in 2..=3 {
            let again = run();
            assert_eq!(first.0, again.0, "{ctx}: indices differ in run {r}");
            assert_eq!(first.1, again.1, "{ctx}: quantized differs in run {r}");
            assert_eq!(first.2, again.2, "{ctx}: commitment differs in run {r}");
        }
        // The splits of stage 0's search, for the caller to check.
        codebooks(device, &e, d).stages()[0].plan(n, &SearchOptions::default()).unwrap().splits
    }
    for device in common::kernel_devices("residual_vq") {
        // k = 600 codes: the automatic plan splits them across blocks.
        assert!(quantizes::<f32>(&device, 300, 8, 600, 3, 6) > 1, "the f32 case no longer splits its codebooks");
        quantizes::<bf16>(&device, 300, 16, 40, 3, 7);

        let (n, d, k, stages) = (300, 8, 8, 2);
        let data = device.upload(&values(n * d, 12, 1.0)).unwrap();
        let options = KmeansOptions { iterations: 2, seed: 7, ..KmeansOptions::new(d, k) };
        let fit = || {
            let mut reports = Vec::new();
            let rvq = ResidualVq::fit(&device, &data, stages, &options, &mut |s, p| {
                reports.push((s, p.iteration, p.objective.to_bits(), p.reseeded))
            })
            .unwrap();
            let entries: Vec<Vec<u32>> =
                rvq.stages().iter().map(|cb| bits(&cb.entries().download().unwrap())).collect();
            (entries, reports)
        };
        let ctx = format!("fit on {}", device.name());
        let first = fit();
        for r in 2..=3 {
            let again = fit();
            assert_eq!(first.0, again.0, "{ctx}: entries differ in run {r}");
            assert_eq!(first.1, again.1, "{ctx}: progress differs in run {r}");
        }
    }
}
