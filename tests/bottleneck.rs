//! The bottleneck trait (src/blocks/bottleneck.rs): for every discrete bottleneck, `decode`
//! of the ids `forward` chose gives back exactly the values `forward` gave (what a token
//! file round trip relies on), on the emulator and the Cpu backend; bad ids are errors.

mod common;

use half::bf16;
use tessera::blocks::{Bottleneck, VqBottleneck};
use tessera::{BinaryQuantizer, Codebook, Device, FloatElement, Fsq, Metric, ResidualVq, SearchOptions};

fn latents<T: FloatElement>(seed: u64, n: usize) -> Vec<T> {
    let mut rng = common::Rng(seed);
    (0..n).map(|_| T::from_f32((rng.word() >> 8) as f32 / 4_194_304.0 - 2.0)).collect()
}

fn devices() -> Vec<Device> {
    let mut d = common::kernel_devices("bottleneck");
    d.push(Device::cpu());
    d
}

/// forward → decode(ids) == values, bit for bit.
fn round_trip<T: FloatElement>(name: &str, device: &Device, b: &dyn Bottleneck<T>, n: usize) {
    let z = device.upload(&latents::<T>(n as u64, n * b.in_dim())).unwrap();
    let out = b.forward(device, z.as_view()).unwrap();
    let ids = out.indices.expect("a discrete bottleneck gives ids");
    assert_eq!(ids.len(), n * b.indices_per_token(), "{name}: ids per token");
    let vocab = b.vocabulary().unwrap();
    assert!(ids.download().unwrap().iter().all(|&i| (i as u64) < vocab), "{name}: an id beyond the vocabulary");
    let back = b.decode(device, ids.as_view()).unwrap();
    let (want, got) = (out.values.download().unwrap(), back.download().unwrap());
    assert_eq!(want.len(), n * b.out_dim(), "{name}: values shape");
    let same = want.iter().zip(&got).all(|(a, b)| a.to_f32().to_bits() == b.to_f32().to_bits());
    assert!(same && want.len() == got.len(), "{name} on {}: decode(ids) differs from forward's values", device.name());
}

#[test]
fn fsq_lfq_bsq_decode_their_ids() {
    for device in devices() {
        let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
        round_trip::<bf16>("fsq", &device, &fsq, 97);
        round_trip::<f32>("lfq", &device, &BinaryQuantizer::lfq(18, 8).unwrap(), 33);
        round_trip::<bf16>("bsq", &device, &BinaryQuantizer::bsq(16, 16).unwrap(), 40);
    }
}

#[test]
fn vq_and_residual_vq_decode_their_ids() {
    for device in devices() {
        for metric in [Metric::SquaredL2, Metric::Cosine] {
            let entries = device.upload(&latents::<f32>(5, 300 * 8)).unwrap();
            let vq = VqBottleneck {
                codebook: Codebook::new(&device, entries, 8, metric).unwrap(),
                options: SearchOptions::default(),
            };
            round_trip::<f32>(&format!("vq {metric:?}"), &device, &vq, 65);
        }
        let stages = (0..3)
            .map(|s| {
                Codebook::new(&device, device.upload(&latents::<f32>(20 + s, 64 * 8)).unwrap(), 8, Metric::SquaredL2)
                    .unwrap()
            })
            .collect();
        round_trip::<f32>("residual vq", &device, &ResidualVq::new(stages).unwrap(), 50);
    }
}

#[test]
fn ids_beyond_the_vocabulary_are_errors() {
    let device = Device::cpu();
    let lfq = BinaryQuantizer::lfq(10, 4).unwrap(); // groups of 4, 4, 2 bits
    let ids = device.upload(&[3u32, 15, 4]).unwrap();
    let r = Bottleneck::<f32>::decode(&lfq, &device, ids.as_view());
    assert!(matches!(r, Err(tessera::Error::InvalidArgument { arg: "indices", .. })), "{r:?}");
    let entries = device.upload(&latents::<f32>(5, 16 * 4)).unwrap();
    let vq = VqBottleneck {
        codebook: Codebook::new(&device, entries, 4, Metric::SquaredL2).unwrap(),
        options: SearchOptions::default(),
    };
    let r = vq.decode(&device, device.upload(&[16u32]).unwrap().as_view());
    assert!(matches!(r, Err(tessera::Error::InvalidValue { arg: "labels", .. })), "{r:?}");
}

/// The KL bottleneck: [n, 2C] → [n, C], the mean exactly in Mean mode, a seeded sample
/// otherwise (the same bits for the same seed), no ids and no decode.
#[test]
fn kl_bottleneck_samples_or_takes_the_mean() {
    use tessera::blocks::KlBottleneck;
    use tessera::KlMode;
    for device in devices() {
        let (n, c) = (33, 4);
        let params = latents::<f32>(9, n * 2 * c);
        let z = device.upload(&params).unwrap();
        let mean = KlBottleneck { channels: c, mode: KlMode::Mean };
        let out = Bottleneck::<f32>::forward(&mean, &device, z.as_view()).unwrap();
        assert!(out.indices.is_none());
        let want: Vec<f32> = (0..n * c).map(|i| params[(i / c) * 2 * c + i % c]).collect();
        assert_eq!(out.values.download().unwrap(), want, "Mean mode on {}", device.name());
        let sample = KlBottleneck { channels: c, mode: KlMode::Sample { seed: 7 } };
        let a = Bottleneck::<f32>::forward(&sample, &device, z.as_view()).unwrap().values.download().unwrap();
        let b = Bottleneck::<f32>::forward(&sample, &device, z.as_view()).unwrap().values.download().unwrap();
        assert_eq!(a, b, "same seed, same sample on {}", device.name());
        assert!(a.iter().zip(&want).filter(|(x, y)| x != y).count() > n * c / 2, "the sample is not the mean");
        let ids = device.upload(&[0u32]).unwrap();
        assert!(matches!(
            Bottleneck::<f32>::decode(&sample, &device, ids.as_view()),
            Err(tessera::Error::Unsupported { .. })
        ));
    }
}
