//! The ViT tokenizer file (src/weights/tokenizer.rs) and the device tokenizer
//! (src/blocks/tokenizer.rs): for every bottleneck kind, random tiny weights written with
//! the writer, read back, loaded in f32 on the emulator (and a GPU when present) and on the
//! Cpu backend; the backends' latents, ids, values and decoded pixels agree; `decode_ids`
//! gives back `encode`'s values; malformed files are typed errors naming the key or tensor.
//! Also `Checkpoint::parameter_hash` and the metadata round trip.

mod common;
#[path = "common/tokenizer.rs"]
mod tokenizer;

use std::collections::BTreeMap;

use tessera::blocks::VitTokenizer;
use tessera::weights::{BottleneckWeights, Checkpoint, HostTensor, TokenizerWeights};
use tessera::{BackendKind, Device, Error};
use tokenizer::{tokenizer, TINY};

const BATCH: usize = 2;

/// A tokenizer of `kind` through the writer and the reader.
fn written_and_read(kind: &str, seed: u64) -> TokenizerWeights {
    let w = tokenizer(seed, kind, TINY);
    let bytes = w.to_safetensors_bytes().unwrap();
    let ckpt = Checkpoint::from_bytes(&bytes).unwrap();
    let file_hash = ckpt.parameter_hash();
    let r = TokenizerWeights::from_checkpoint(ckpt).unwrap();
    // The same weights back: the hash of the file, the configuration and every tensor.
    assert_eq!(r.hash, file_hash, "{kind}: hash");
    assert_eq!(r.hash, w.to_checkpoint().unwrap().parameter_hash(), "{kind}: the file's content differs");
    assert_eq!(r.bottleneck, w.bottleneck, "{kind}: bottleneck");
    assert_eq!(r.encoder.config, w.encoder.config, "{kind}: encoder config");
    assert_eq!(r.decoder.config, w.decoder.config, "{kind}: decoder config");
    assert_eq!((&r.image_mean, &r.image_std), (&w.image_mean, &w.image_std), "{kind}: image norm");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    tokenizer::for_each_tensor(&mut w.clone(), |t| a.push(t.clone()));
    tokenizer::for_each_tensor(&mut r.clone(), |t| b.push(t.clone()));
    assert!(a == b, "{kind}: a tensor differs after the round trip");
    r
}

/// What one backend gives for one batch.
struct Run {
    device: String,
    latents: Vec<f32>,
    ids: Option<Vec<u32>>,
    values: Vec<f32>,
    pixels: Vec<u8>,
}

/// Encodes `images`, checks `decode_ids(ids) == values`, and decodes `decode_values` (the
/// same values on every backend, so that the decoders are compared alone).
fn run(device: &Device, w: &TokenizerWeights, images: &[u8], decode_values: Option<&[f32]>) -> Run {
    let tok = VitTokenizer::<f32>::load(device, w).unwrap();
    let mut ws = tok.workspace(device, BATCH).unwrap();
    let img = device.upload(images).unwrap();
    let syncs = device.host_synchronizations();
    let coded = tok.encode(device, img.as_view(), &mut ws).unwrap();
    if device.kind() != BackendKind::Cpu {
        // (The Cpu backend computes on the host; its ops count the reads they make.)
        assert_eq!(
            device.host_synchronizations(),
            syncs,
            "{} on {}: encode waited for the device",
            tok.kind(),
            device.name()
        );
    }
    let latents = ws.latents().download().unwrap();
    let values = coded.values.download().unwrap();
    let n = BATCH * tok.tokens_per_image();
    assert_eq!(values.len(), n * tok.latent_channels());
    let ids = match &coded.indices {
        Some(ids) => {
            assert_eq!(ids.len(), n * tok.indices_per_token());
            let back = tok.decode_ids(device, ids.as_view()).unwrap().download().unwrap();
            let same = back.len() == values.len() && back.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{} on {}: decode_ids(ids) is not encode's values", tok.kind(), device.name());
            let ids = ids.download().unwrap();
            let vocab = tok.vocabulary().unwrap();
            assert!(ids.iter().all(|&i| (i as u64) < vocab), "{}: an id beyond the vocabulary", tok.kind());
            Some(ids)
        }
        None => {
            assert_eq!((tok.indices_per_token(), tok.vocabulary()), (0, None));
            let none = device.upload(&[0u32]).unwrap();
            let r = tok.decode_ids(device, none.as_view());
            assert!(matches!(r, Err(Error::Unsupported { .. })), "{}: decode_ids {r:?}", tok.kind());
            None
        }
    };
    let to_decode = device.upload(decode_values.unwrap_or(&values)).unwrap();
    let mut out = device.zeros::<u8>(images.len()).unwrap();
    let syncs = device.host_synchronizations();
    tok.decode(device, to_decode.as_view(), &mut ws, &mut out).unwrap();
    if device.kind() != BackendKind::Cpu {
        assert_eq!(
            device.host_synchronizations(),
            syncs,
            "{} on {}: decode waited for the device",
            tok.kind(),
            device.name()
        );
    }
    Run { device: device.name(), latents, ids, values, pixels: out.download().unwrap() }
}

fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs() as f64))
}

/// `max |got − want| ≤ 16·ε_f32·max |want|`: the encoder is ~20 f32 ops deep (LayerNorm,
/// GEMMs of k ≤ 128, softmax), each rounding once and summing in its own order (measured:
/// about 2.5 ε·max); a wrong index or a lost term is off by a fraction of max |want|.
fn assert_close_f32(what: &str, got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let err = got.iter().zip(want).fold(0.0f64, |m, (g, w)| m.max((*g as f64 - *w as f64).abs()));
    let scale = max_abs(want);
    let bound = 16.0 * f32::EPSILON as f64 * scale;
    assert!(err <= bound, "{what}: max |err| {err:e} > {bound:e} (max |want| {scale})");
    err / (f32::EPSILON as f64 * scale)
}

/// Whether entries `a` and `b` are equally near `z` within f32 rounding of the distance
/// (squared L2, or of the l2-normalized vectors for cosine), computed in f64.
fn codebook_tie(z: &[f64], a: &[f32], b: &[f32], cosine: bool) -> bool {
    let unit = |v: Vec<f64>| -> Vec<f64> {
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if cosine && n > 0.0 {
            v.iter().map(|x| x / n).collect()
        } else {
            v
        }
    };
    let z = unit(z.to_vec());
    let dist = |e: &[f32]| {
        let e = unit(e.iter().map(|&x| x as f64).collect());
        z.iter().zip(&e).map(|(x, y)| (x - y) * (x - y)).sum::<f64>()
    };
    let scale: f64 = z.iter().map(|x| x * x).sum::<f64>() + 1.0;
    (dist(a) - dist(b)).abs() <= 16.0 * f32::EPSILON as f64 * scale
}

/// `ids` (a backend's) against `want` (the Cpu reference's on the same latents): equal,
/// or — for the codebook kinds — the two entries tie for that latent (residual VQ: at the
/// first stage that differs, on the residual the earlier stages leave; later stages are
/// then free). Returns the number of ties.
fn assert_ids_match(w: &TokenizerWeights, latents: &[f32], ids: &[u32], want: &[u32], what: &str) -> usize {
    let d = w.bottleneck.in_dim();
    let g = ids.len() / (latents.len() / d);
    let mut ties = 0;
    for (t, (got_row, want_row)) in ids.chunks(g).zip(want.chunks(g)).enumerate() {
        if got_row == want_row {
            continue;
        }
        let z: Vec<f64> = latents[t * d..(t + 1) * d].iter().map(|&x| x as f64).collect();
        let row = |cb: &HostTensor, i: u32| cb.data[i as usize * d..(i as usize + 1) * d].to_vec();
        let tie = match &w.bottleneck {
            BottleneckWeights::Vq { codebook } => {
                codebook_tie(&z, &row(codebook, got_row[0]), &row(codebook, want_row[0]), false)
            }
            BottleneckWeights::VqCosine { codebook } => {
                codebook_tie(&z, &row(codebook, got_row[0]), &row(codebook, want_row[0]), true)
            }
            BottleneckWeights::ResidualVq { stages } => {
                let k = (0..g).find(|&k| got_row[k] != want_row[k]).unwrap();
                let mut r = z.clone();
                for (s, cb) in stages.iter().enumerate().take(k) {
                    r.iter_mut().zip(row(cb, got_row[s])).for_each(|(x, e)| *x -= e as f64);
                }
                codebook_tie(&r, &row(&stages[k], got_row[k]), &row(&stages[k], want_row[k]), false)
            }
            _ => false,
        };
        assert!(tie, "{what}: token {t}: ids {got_row:?}, the reference chose {want_row:?} (no tie)");
        ties += 1;
    }
    ties
}

/// The whole check for one bottleneck kind.
fn tokenizer_agrees(kind: &str, seed: u64) {
    let start = std::time::Instant::now();
    let w = written_and_read(kind, seed);
    let cpu = Device::cpu();
    let (h, wd) = (TINY.grid.0 * TINY.patch, TINY.grid.1 * TINY.patch);
    let mut rng = common::Rng(seed ^ 0x5eed);
    let images: Vec<u8> = (0..BATCH * h * wd * 3).map(|_| rng.word() as u8).collect();
    let want = run(&cpu, &w, &images, None);
    let spread = want.pixels.iter().filter(|&&p| p != 0 && p != 255).count();
    assert!(spread * 10 > want.pixels.len() * 8, "{kind}: the decoded image is mostly clamped");
    let reference = VitTokenizer::<f32>::load(&cpu, &w).unwrap();
    for device in common::kernel_devices("vit_tokenizer") {
        let got = run(&device, &w, &images, Some(&want.values));
        let what = format!("{kind} on {}", got.device);
        let err = assert_close_f32(&format!("{what}: latents"), &got.latents, &want.latents);
        // The bottleneck against the reference on the very latents it read.
        let z = cpu.upload(&got.latents).unwrap();
        let on_same = reference.bottleneck().forward(&cpu, z.as_view()).unwrap();
        let same_values = on_same.values.download().unwrap();
        let (ties, crossings) = match (&got.ids, &on_same.indices, &want.ids) {
            (Some(ids), Some(same_ids), Some(cpu_ids)) => {
                let same_ids = same_ids.download().unwrap();
                let ties = assert_ids_match(&w, &got.latents, ids, &same_ids, &what);
                if ties == 0 && kind == "vq-cosine" {
                    // The chosen entries l2-normalized on each backend: equal up to the
                    // rounding of the norm.
                    assert_close_f32(&format!("{what}: values"), &got.values, &same_values);
                } else if ties == 0 {
                    assert!(
                        got.values.iter().zip(&same_values).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{what}: values differ from the reference's for the same latents"
                    );
                }
                // Ids that differ from the Cpu run's own: only where the latents (within
                // tolerance of each other) fall on either side of a decision boundary,
                // which the reference confirms by deciding the device's latents the
                // device's way (above).
                let g = ids.len() / (BATCH * TINY.grid.0 * TINY.grid.1);
                let crossings = ids.chunks(g).zip(cpu_ids.chunks(g)).filter(|(a, b)| a != b).count();
                (ties, crossings)
            }
            (None, None, None) => {
                // KL: the sample from the same latents is the reference's, bit for bit, and
                // near the Cpu run's.
                assert!(got.values.iter().zip(&same_values).all(|(a, b)| a.to_bits() == b.to_bits()), "{what}: sample");
                assert_close_f32(&format!("{what}: values"), &got.values, &want.values);
                (0, 0)
            }
            other => panic!("{what}: ids present on one side only: {:?}", (other.0.is_some(), other.2.is_some())),
        };
        let worst = got.pixels.iter().zip(&want.pixels).map(|(&a, &b)| (a as i32 - b as i32).abs()).max().unwrap();
        let off = got.pixels.iter().zip(&want.pixels).filter(|(a, b)| a != b).count();
        eprintln!(
            "{what}: latents within {err:.1} ε·max, {ties} codebook ties, {crossings} tokens decided across a \
             boundary, pixels: {off} of {} differ, max {worst} level ({:.1?})",
            want.pixels.len(),
            start.elapsed()
        );
        assert!(worst <= 1, "{what}: a decoded pixel is {worst} levels off the Cpu's");
    }
}

#[test]
fn fsq_tokenizer() {
    tokenizer_agrees("fsq", 1);
}

#[test]
fn vq_tokenizer() {
    tokenizer_agrees("vq", 2);
}

#[test]
fn vq_cosine_tokenizer() {
    tokenizer_agrees("vq-cosine", 3);
}

#[test]
fn lfq_tokenizer() {
    tokenizer_agrees("lfq", 4);
}

#[test]
fn bsq_tokenizer() {
    tokenizer_agrees("bsq", 5);
}

#[test]
fn residual_vq_tokenizer() {
    tokenizer_agrees("residual-vq", 6);
}

#[test]
fn kl_tokenizer() {
    tokenizer_agrees("kl", 7);
}

/// The tokenizer is its parts composed as the file says: the encoder with the file's image
/// normalization, the bottleneck the `bottleneck` key names (metric, LFQ or BSQ, KL mode)
/// built here independently, the decoder with the same normalization — bit for bit on the
/// Cpu backend. (The backend comparison above cannot see a wiring mistake that both
/// backends share.)
#[test]
fn tokenizer_is_its_parts_composed() {
    use tessera::blocks::{Bottleneck, KlBottleneck, VitDecoder, VitEncoder, VqBottleneck};
    use tessera::{BinaryQuantizer, Codebook, Fsq, ImageNorm, Metric, ResidualVq, SearchOptions};
    let cpu = Device::cpu();
    for (seed, kind) in tessera::weights::BOTTLENECK_KINDS.iter().enumerate() {
        let w = written_and_read(kind, 40 + seed as u64);
        let (h, wd) = (16, 24);
        let mut rng = common::Rng(seed as u64);
        let images: Vec<u8> = (0..BATCH * h * wd * 3).map(|_| rng.word() as u8).collect();
        let img = cpu.upload(&images).unwrap();
        let norm = ImageNorm { mean: &w.image_mean, std: &w.image_std };
        // By hand.
        let encoder = VitEncoder::<f32>::load(&cpu, &w.encoder).unwrap();
        let mut ews = encoder.workspace(&cpu, BATCH).unwrap();
        let mut tokens = cpu.zeros::<f32>(BATCH * 24 * TINY.encoder.0).unwrap();
        let mut latents = cpu.zeros::<f32>(BATCH * 24 * w.bottleneck.in_dim()).unwrap();
        encoder.forward(&cpu, img.as_view(), &norm, (h, wd), &mut ews, &mut tokens, &mut latents).unwrap();
        let cb =
            |t: &HostTensor, metric| Codebook::new(&cpu, cpu.upload(&t.data).unwrap(), t.shape[1], metric).unwrap();
        let options = SearchOptions { distances: false, histogram: false, ..Default::default() };
        let bottleneck: Box<dyn Bottleneck<f32>> = match &w.bottleneck {
            BottleneckWeights::Fsq { levels } => Box::new(Fsq::new(levels).unwrap()),
            BottleneckWeights::Vq { codebook } => {
                Box::new(VqBottleneck { codebook: cb(codebook, Metric::SquaredL2), options })
            }
            BottleneckWeights::VqCosine { codebook } => {
                Box::new(VqBottleneck { codebook: cb(codebook, Metric::Cosine), options })
            }
            BottleneckWeights::Lfq { dim, group_bits } => Box::new(BinaryQuantizer::lfq(*dim, *group_bits).unwrap()),
            BottleneckWeights::Bsq { dim, group_bits } => Box::new(BinaryQuantizer::bsq(*dim, *group_bits).unwrap()),
            BottleneckWeights::ResidualVq { stages } => {
                Box::new(ResidualVq::new(stages.iter().map(|s| cb(s, Metric::SquaredL2)).collect()).unwrap())
            }
            BottleneckWeights::Kl { channels, mode } => Box::new(KlBottleneck { channels: *channels, mode: *mode }),
        };
        let q = bottleneck.forward(&cpu, latents.as_view()).unwrap();
        let decoder = VitDecoder::<f32>::load(&cpu, &w.decoder).unwrap();
        let mut dws = decoder.workspace(&cpu, BATCH).unwrap();
        let mut dtokens = cpu.zeros::<f32>(BATCH * 24 * TINY.decoder.0).unwrap();
        let mut want = cpu.zeros::<u8>(images.len()).unwrap();
        decoder.forward(&cpu, q.values.as_view(), &norm, &mut dws, &mut dtokens, &mut want).unwrap();
        // The tokenizer.
        let tok = VitTokenizer::<f32>::load(&cpu, &w).unwrap();
        let mut ws = tok.workspace(&cpu, BATCH).unwrap();
        let got = tok.encode(&cpu, img.as_view(), &mut ws).unwrap();
        let mut out = cpu.zeros::<u8>(images.len()).unwrap();
        tok.decode(&cpu, got.values.as_view(), &mut ws, &mut out).unwrap();
        assert_eq!(ws.latents().download().unwrap(), latents.download().unwrap(), "{kind}: latents");
        assert_eq!(got.values.download().unwrap(), q.values.download().unwrap(), "{kind}: values");
        let ids = |b: &Option<tessera::DeviceBuffer<u32>>| b.as_ref().map(|i| i.download().unwrap());
        assert_eq!(ids(&got.indices), ids(&q.indices), "{kind}: ids");
        assert_eq!(out.download().unwrap(), want.download().unwrap(), "{kind}: pixels");
    }
}

/// The accessors: size, grid, ids per token, vocabulary, kind.
#[test]
fn tokenizer_describes_itself() {
    let cpu = Device::cpu();
    let cases: [(&str, &str, usize, Option<u64>, usize); 7] = [
        ("fsq", "vit-fsq", 1, Some(1000), 4),
        ("vq", "vit-vq", 1, Some(64), 8),
        ("vq-cosine", "vit-vq-cosine", 1, Some(64), 8),
        ("lfq", "vit-lfq", 3, Some(16), 10),
        ("bsq", "vit-bsq", 2, Some(64), 12),
        ("residual-vq", "vit-residual-vq", 3, Some(32), 6),
        ("kl", "vit-kl", 0, None, 4),
    ];
    for (kind, name, g, vocab, channels) in cases {
        let w = written_and_read(kind, 11);
        let tok = VitTokenizer::<f32>::load(&cpu, &w).unwrap();
        assert_eq!(tok.kind(), name);
        assert_eq!((tok.image_size(), tok.patch(), tok.grid(), tok.tokens_per_image()), ((16, 24), 4, (4, 6), 24));
        assert_eq!((tok.indices_per_token(), tok.vocabulary(), tok.latent_channels()), (g, vocab, channels), "{kind}");
        assert_eq!(tok.hash(), w.hash);
        // Wrong lengths are typed errors.
        let mut ws = tok.workspace(&cpu, BATCH).unwrap();
        let short = cpu.upload(&vec![0u8; 10]).unwrap();
        let r = tok.encode(&cpu, short.as_view(), &mut ws);
        assert!(matches!(r, Err(Error::LengthMismatch { arg: "images", .. })), "{r:?}");
        let values = cpu.upload(&vec![0f32; 3]).unwrap();
        let mut out = cpu.zeros::<u8>(BATCH * 16 * 24 * 3).unwrap();
        let r = tok.decode(&cpu, values.as_view(), &mut ws, &mut out);
        assert!(matches!(r, Err(Error::LengthMismatch { arg: "values", .. })), "{r:?}");
    }
}

/// Weights built in memory that do not fit together are refused at load.
#[test]
fn load_checks_weights_built_in_memory() {
    let mut w = tokenizer(12, "fsq", TINY);
    w.bottleneck = BottleneckWeights::Fsq { levels: vec![8, 5, 5] };
    let r = VitTokenizer::<f32>::load(&Device::cpu(), &w);
    assert!(matches!(r, Err(Error::InvalidArgument { arg: "weights", .. })), "{:?}", r.err());
}

// ---- malformed files ----

/// The checkpoint of a good `kind` tokenizer, edited by `edit`, read.
fn read_edited(kind: &str, edit: impl FnOnce(&mut Checkpoint)) -> Result<TokenizerWeights, Error> {
    let w = tokenizer(21, kind, TINY);
    let mut ckpt = Checkpoint::from_bytes(&w.to_safetensors_bytes().unwrap()).unwrap();
    edit(&mut ckpt);
    TokenizerWeights::from_checkpoint(ckpt)
}

fn remove(ckpt: &mut Checkpoint, name: &str) {
    let shape = ckpt.shape(name).unwrap_or_else(|| panic!("no `{name}`")).to_vec();
    ckpt.take(name, &shape).unwrap();
}

fn assert_config(r: Result<TokenizerWeights, Error>, key: &str) {
    match r {
        Err(Error::Config { field, reason }) if field == key => eprintln!("{key}: {reason}"),
        other => panic!("expected Error::Config naming `{key}`, got {:?}", other.err()),
    }
}

#[test]
fn missing_or_bad_metadata_is_a_config_error_naming_the_key() {
    for key in ["tessera.tokenizer", "bottleneck", "encoder.heads", "decoder.heads"] {
        assert_config(read_edited("fsq", |c| drop(c.metadata_mut().remove(key))), key);
    }
    assert_config(read_edited("fsq", |c| drop(c.metadata_mut().remove("fsq.levels"))), "fsq.levels");
    assert_config(
        read_edited("fsq", |c| drop(c.metadata_mut().insert("bottleneck".into(), "pq".into()))),
        "bottleneck",
    );
    assert_config(
        read_edited("fsq", |c| drop(c.metadata_mut().insert("tessera.tokenizer".into(), "vae".into()))),
        "tessera.tokenizer",
    );
    assert_config(
        read_edited("fsq", |c| drop(c.metadata_mut().insert("fsq.levels".into(), "8,1,5,5".into()))),
        "fsq.levels",
    );
    assert_config(read_edited("fsq", |c| drop(c.metadata_mut().insert("group_bits".into(), "4".into()))), "group_bits");
    assert_config(
        read_edited("lfq", |c| drop(c.metadata_mut().insert("group_bits".into(), "40".into()))),
        "group_bits",
    );
    assert_config(
        read_edited("fsq", |c| drop(c.metadata_mut().insert("image.std".into(), "0.5,0.5".into()))),
        "image.std",
    );
    assert_config(
        read_edited("fsq", |c| drop(c.metadata_mut().insert("encoder.heads".into(), "3".into()))),
        "encoder.heads",
    );
    assert_config(
        read_edited("fsq", |c| drop(c.metadata_mut().insert("decoder.heads".into(), "0".into()))),
        "decoder.heads",
    );
    assert_config(read_edited("fsq", |c| drop(c.metadata_mut().insert("grid".into(), "6,4,1".into()))), "grid");
    assert_config(read_edited("kl", |c| drop(c.metadata_mut().insert("kl.mode".into(), "mode".into()))), "kl.mode");
    // Defaults: no image norm (0.5 each), no grid (square only: 24 tokens are not).
    let r = read_edited("fsq", |c| {
        c.metadata_mut().remove("image.mean");
        c.metadata_mut().remove("image.std");
    })
    .unwrap();
    assert_eq!((r.image_mean, r.image_std), (vec![0.5; 3], vec![0.5; 3]));
    assert_config(read_edited("fsq", |c| drop(c.metadata_mut().remove("grid"))), "grid");
    // Unknown keys are kept (and hashed) but not an error.
    let plain = read_edited("fsq", |_| {}).unwrap();
    let noted = read_edited("fsq", |c| drop(c.metadata_mut().insert("format".into(), "pt".into()))).unwrap();
    assert_ne!(plain.hash, noted.hash);
}

#[test]
fn missing_tensors_name_them() {
    for (kind, name) in [
        ("fsq", "decoder.blocks.1.mlp.fc2.bias"),
        ("fsq", "encoder.blocks.0.attn.qkv.bias"),
        ("fsq", "encoder.head.weight"),
        ("fsq", "decoder.head.weight"),
        ("vq", "quantizer.codebook"),
        ("residual-vq", "quantizer.stages.0.codebook"),
    ] {
        let r = read_edited(kind, |c| remove(c, name));
        match r {
            Err(Error::MissingTensor { name: n }) if n == name => {}
            // Without stage 0 the stages have a gap.
            Err(Error::Config { field, .. })
                if name == "quantizer.stages.0.codebook" && field == "quantizer.stages" => {}
            other => panic!("{kind} without `{name}`: {:?}", other.err()),
        }
    }
}

#[test]
fn extra_tensors_name_them() {
    let t = || HostTensor::new(vec![2], vec![0.0, 1.0]).unwrap();
    for (kind, name) in [
        ("fsq", "decoder.extra.weight"),
        ("fsq", "encoder.blocks.0.ls1.gamma"),
        ("fsq", "quantizer.codebook"),
        ("vq", "quantizer.stages.0.codebook"),
        ("kl", "decoder.blocks.1.attn.q_norm.weight"),
        ("fsq", "zzz"),
    ] {
        let r = read_edited(kind, |c| drop(c.insert(name, t()).unwrap()));
        match r {
            Err(Error::UnexpectedTensor { name: n, others: 0 }) if n == name => {}
            other => panic!("{kind} with `{name}`: {:?}", other.err()),
        }
    }
    // A class token: the encoder's loader refuses it by name.
    assert_config(read_edited("fsq", |c| drop(c.insert("encoder.cls_token", t()).unwrap())), "encoder.cls_token");
}

#[test]
fn mismatched_widths_name_the_tensor() {
    let d = TINY.encoder.0;
    let shape_error = |r: Result<TokenizerWeights, Error>, name: &str, expected: Vec<usize>, actual: Vec<usize>| match r
    {
        Err(Error::TensorShape { name: n, expected: e, actual: a }) if n == name && e == expected && a == actual => {}
        other => panic!("expected a TensorShape error for `{name}`, got {:?}", other.err()),
    };
    // The encoder head gives 5 values, FSQ 8,5,5,5 reads 4.
    let head5 = |c: &mut Checkpoint| {
        c.insert("encoder.head.weight", HostTensor::new(vec![5, d], vec![0.1; 5 * d]).unwrap()).unwrap();
        c.insert("encoder.head.bias", HostTensor::new(vec![5], vec![0.0; 5]).unwrap()).unwrap();
    };
    shape_error(read_edited("fsq", head5), "encoder.head.weight", vec![4, d], vec![5, d]);
    // A VQ codebook of width 7 against a head of 8.
    let cb7 =
        |c: &mut Checkpoint| drop(c.insert("quantizer.codebook", HostTensor::new(vec![3, 7], vec![0.0; 21]).unwrap()));
    shape_error(read_edited("vq", cb7), "encoder.head.weight", vec![7, d], vec![8, d]);
    // A residual stage of another width.
    let stage = |c: &mut Checkpoint| {
        drop(c.insert("quantizer.stages.2.codebook", HostTensor::new(vec![8, 5], vec![0.0; 40]).unwrap()))
    };
    shape_error(read_edited("residual-vq", stage), "quantizer.stages.2.codebook", vec![8, 6], vec![8, 5]);
    // The decoder reads 3 values per token, the bottleneck gives 4.
    let dd = TINY.decoder.0;
    let embed = |c: &mut Checkpoint| {
        drop(c.insert("decoder.embed.weight", HostTensor::new(vec![dd, 3], vec![0.0; 3 * dd]).unwrap()))
    };
    shape_error(read_edited("fsq", embed), "decoder.embed.weight", vec![dd, 4], vec![dd, 3]);
    // The decoder's head for another patch.
    let head = |c: &mut Checkpoint| {
        c.insert("decoder.head.weight", HostTensor::new(vec![27, dd], vec![0.0; 27 * dd]).unwrap()).unwrap();
    };
    shape_error(read_edited("fsq", head), "decoder.head.weight", vec![48, dd], vec![27, dd]);
    // A grayscale encoder.
    let p = TINY.patch;
    let gray = |c: &mut Checkpoint| {
        let t = HostTensor::new(vec![d, 1, p, p], vec![0.0; d * p * p]).unwrap();
        drop(c.insert("encoder.patch_embed.proj.weight", t))
    };
    shape_error(read_edited("fsq", gray), "encoder.patch_embed.proj.weight", vec![d, 3, p, p], vec![d, 1, p, p]);
    // An odd head for KL (mean and logvar halves).
    let odd = |c: &mut Checkpoint| {
        c.insert("encoder.head.weight", HostTensor::new(vec![7, d], vec![0.1; 7 * d]).unwrap()).unwrap();
        c.insert("encoder.head.bias", HostTensor::new(vec![7], vec![0.0; 7]).unwrap()).unwrap();
    };
    assert_config(read_edited("kl", odd), "encoder.head.weight");
}

// ---- Checkpoint::parameter_hash and metadata ----

fn tensor(shape: &[usize], data: &[f32]) -> HostTensor {
    HostTensor::new(shape.to_vec(), data.to_vec()).unwrap()
}

/// The documented byte stream, FNV-1a 64, written out independently.
fn documented_hash(tensors: &BTreeMap<&str, HostTensor>, metadata: &BTreeMap<&str, &str>) -> u64 {
    let mut stream = Vec::new();
    let string = |s: &mut Vec<u8>, v: &str| {
        s.extend((v.len() as u64).to_le_bytes());
        s.extend(v.as_bytes());
    };
    stream.extend((tensors.len() as u64).to_le_bytes());
    for (name, t) in tensors {
        string(&mut stream, name);
        stream.extend((t.shape.len() as u64).to_le_bytes());
        t.shape.iter().for_each(|&d| stream.extend((d as u64).to_le_bytes()));
        t.data.iter().for_each(|v| stream.extend(v.to_bits().to_le_bytes()));
    }
    stream.extend((metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        string(&mut stream, k);
        string(&mut stream, v);
    }
    stream.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

#[test]
fn parameter_hash_is_the_documented_fnv1a_of_the_content() {
    let a = tensor(&[2, 3], &[1.0, -2.0, 0.5, 0.0, -0.0, 3.25]);
    let b = tensor(&[1], &[7.0]);
    let meta = [("bottleneck", "fsq"), ("alpha", "1")];
    let one = Checkpoint::from_tensors([("a", a.clone()), ("b", b.clone())]).unwrap().with_metadata(meta);
    let two = Checkpoint::from_tensors([("b", b.clone()), ("a", a.clone())])
        .unwrap()
        .with_metadata([("alpha", "1"), ("bottleneck", "fsq")]);
    let h = one.parameter_hash();
    assert_eq!(h, two.parameter_hash(), "insertion order changed the hash");
    let want = documented_hash(&[("a", a.clone()), ("b", b.clone())].into(), &meta.into());
    assert_eq!(h, want, "the hash is not the documented stream's");
    // Through a file (the metadata written from a hash map, in any order) and back.
    let back = Checkpoint::from_bytes(&one.to_safetensors_bytes().unwrap()).unwrap();
    assert_eq!(back.metadata(), one.metadata());
    assert_eq!(back.parameter_hash(), h);
    // One value one ulp off, -0.0 for 0.0, a renamed tensor, a metadata value: all differ.
    let mut c = one.clone();
    let mut a2 = a.clone();
    a2.data[2] = f32::from_bits(a2.data[2].to_bits() + 1);
    c.insert("a", a2).unwrap();
    assert_ne!(c.parameter_hash(), h);
    let mut c = one.clone();
    let mut a3 = a.clone();
    a3.data[3] = -0.0;
    c.insert("a", a3).unwrap();
    assert_ne!(c.parameter_hash(), h);
    let renamed = Checkpoint::from_tensors([("a", a.clone()), ("c", b.clone())]).unwrap().with_metadata(meta);
    assert_ne!(renamed.parameter_hash(), h);
    let mut c = one.clone();
    c.metadata_mut().insert("alpha".into(), "2".into());
    assert_ne!(c.parameter_hash(), h);
    // The same values with another shape differ; the length prefixes keep "ab"+"" apart
    // from "a"+"b".
    let reshaped =
        Checkpoint::from_tensors([("a", tensor(&[3, 2], &a.data)), ("b", b.clone())]).unwrap().with_metadata(meta);
    assert_ne!(reshaped.parameter_hash(), h);
    let m1 = Checkpoint::default().with_metadata([("ab", "")]);
    let m2 = Checkpoint::default().with_metadata([("a", "b")]);
    assert_ne!(m1.parameter_hash(), m2.parameter_hash());
}

/// A bf16 file and its f32 conversion hold the same values, so the same hash.
#[test]
fn parameter_hash_reads_values_not_dtypes() {
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;
    let values = [1.5f32, -0.25, 3.0, 0.0];
    let bf: Vec<u8> = values.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect();
    let f: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let meta = Some([("k".to_string(), "v".to_string())].into());
    let file_bf =
        safetensors::serialize([("w", TensorView::new(Dtype::BF16, vec![2, 2], &bf).unwrap())], meta.clone()).unwrap();
    let file_f = safetensors::serialize([("w", TensorView::new(Dtype::F32, vec![2, 2], &f).unwrap())], meta).unwrap();
    let (a, b) = (Checkpoint::from_bytes(&file_bf).unwrap(), Checkpoint::from_bytes(&file_f).unwrap());
    assert_eq!(a.metadata().get("k").map(String::as_str), Some("v"));
    assert_eq!(a.parameter_hash(), b.parameter_hash());
}

/// The tokenizer's hash is the file's, whatever the writer's metadata order.
#[test]
fn tokenizer_hash_is_stable_across_writes() {
    let w = tokenizer(31, "residual-vq", TINY);
    let hashes: Vec<u64> = (0..3)
        .map(|_| {
            TokenizerWeights::from_checkpoint(Checkpoint::from_bytes(&w.to_safetensors_bytes().unwrap()).unwrap())
                .unwrap()
                .hash
        })
        .collect();
    assert!(hashes.windows(2).all(|p| p[0] == p[1]), "{hashes:?}");
    let other = tokenizer(32, "residual-vq", TINY);
    assert_ne!(other.to_checkpoint().unwrap().parameter_hash(), hashes[0]);
}
