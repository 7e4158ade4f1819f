//! Conformance with PyTorch: the fixtures of tests/fixtures/transformer (made with the real
//! torch and diffusers packages by the script there) reproduced by the GEMM epilogues, adaLN
//! and LayerNorm, the timestep embedding and its MLP, and the label embedding — on the
//! emulator and the Cpu backend, in f32, within the tolerance rule. (The patch embedding
//! and unpatchify fixtures are checked in tests/patchify.rs.)

mod common;

use common::fixture::Fixture;
use tessera::{
    adaln_modulate_into, label_embedding_into, layer_norm_into, linear_into, timestep_embedding_into,
    timestep_embedding_shifted_into, timestep_mlp_into, AdalnShape, Affine, DType, Device, GemmEpilogue, GemmOptions,
    GemmPath, GemmShape, Modulation, NormOptions, SplitK, TimestepMlp, DEFAULT_MAX_PERIOD,
};

fn devices() -> Vec<Device> {
    vec![Device::emulator(), Device::cpu()]
}

fn close(what: &str, got: &[f32], want: &[f32], reduction_len: usize) {
    let got: Vec<f64> = got.iter().map(|&v| v as f64).collect();
    let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
    common::assert_close(what, &got, &want, DType::F32, reduction_len);
}

/// `F.gelu(x, approximate="tanh")` and `F.silu` through the GEMM's epilogues (x as an
/// [n, 1] matrix times a weight of 1, bias 0), direct and split-K, finite edge values included.
#[test]
fn activations_match_pytorch() {
    let f = Fixture::load("activations");
    let x = f.f32s("x");
    let n = x.len();
    for device in devices() {
        let xs = device.upload(&x).unwrap();
        let w = device.upload(&[1.0f32]).unwrap();
        let bias = device.upload(&[0.0f32]).unwrap();
        for split in [SplitK::Direct, SplitK::Splits(1)] {
            let options = GemmOptions { path: GemmPath::Simt, split_k: split };
            let shape = GemmShape { m: n, n: 1, k: 1 };
            for (key, epi) in [
                ("gelu_tanh", GemmEpilogue::BiasGelu(bias.as_view())),
                ("silu", GemmEpilogue::BiasSilu(bias.as_view())),
            ] {
                let mut out = device.zeros::<f32>(n).unwrap();
                linear_into(&device, &xs, &w, shape, &epi, &mut out, &options).unwrap();
                close(&format!("{key} {split:?} on {}", device.name()), &out.download().unwrap(), &f.f32s(key), 1);
            }
        }
    }
}

/// `F.layer_norm(x, (D,), eps=1e-6) * (1 + scale) + shift` and the affine LayerNorm.
#[test]
fn layer_norm_and_modulation_match_pytorch() {
    let f = Fixture::load("layernorm_modulate");
    let shape = f.shape("x");
    let (b, t, d) = (shape[0], shape[1], shape[2]);
    for device in devices() {
        let x = device.upload(&f.f32s("x")).unwrap();
        let shift = device.upload(&f.f32s("shift")).unwrap();
        let scale = device.upload(&f.f32s("scale")).unwrap();
        let options = NormOptions::default();
        let mut out = device.zeros::<f32>(b * t * d).unwrap();
        let modulation = Modulation::new(&shift, &scale, d);
        adaln_modulate_into(&device, &x, AdalnShape { batch: b, tokens: t, dim: d }, &modulation, &options, &mut out)
            .unwrap();
        let mut results = vec![("y_mod", out.download().unwrap())];
        let weight = device.upload(&f.f32s("weight")).unwrap();
        let bias = device.upload(&f.f32s("bias")).unwrap();
        layer_norm_into(&device, &x, d, Some(Affine::new(&weight, &bias)), &options, &mut out).unwrap();
        results.push(("y_affine", out.download().unwrap()));
        layer_norm_into(&device, &x, d, None, &options, &mut out).unwrap();
        results.push(("y_norm", out.download().unwrap()));
        for (key, got) in results {
            // The rule, widened by PyTorch's own error where it has one: on the row of mean
            // 1000, PyTorch's f32 LayerNorm is ~3e-5 from the exact value (the f64 reference).
            let want = f.f32s(key);
            let exact = exact_layer_norm(&f, key, b, t, d);
            let (atol, rtol) = common::tolerance(DType::F32, d);
            for (i, ((&g, &w), &e)) in got.iter().zip(&want).zip(&exact).enumerate() {
                let bound = atol + rtol * (w as f64).abs() + 2.0 * (w as f64 - e).abs();
                assert!(
                    ((g - w) as f64).abs() <= bound,
                    "{key}[{i}] on {}: got {g}, want {w}, exact {e}",
                    device.name()
                );
            }
        }
    }
}

/// The f64 LayerNorm (+ modulation or affine) of the fixture's x, for PyTorch's own error.
fn exact_layer_norm(f: &Fixture, key: &str, b: usize, t: usize, d: usize) -> Vec<f64> {
    let x = f.f32s("x");
    let (shift, scale, weight, bias) = (f.f32s("shift"), f.f32s("scale"), f.f32s("weight"), f.f32s("bias"));
    let mut out = Vec::with_capacity(b * t * d);
    for r in 0..b * t {
        let row: Vec<f64> = x[r * d..(r + 1) * d].iter().map(|&v| v as f64).collect();
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
        let rstd = 1.0 / (var + 1e-6).sqrt();
        for (c, v) in row.iter().enumerate() {
            let y = (v - mean) * rstd;
            out.push(match key {
                "y_mod" => y * (1.0 + scale[(r / t) * d + c] as f64) + shift[(r / t) * d + c] as f64,
                "y_affine" => y * weight[c] as f64 + bias[c] as f64,
                _ => y,
            });
        }
    }
    out
}

/// The timestep-embedding rule against PyTorch: the shared f32 tolerance, plus
/// |t|·ulp(freq_i) — PyTorch's f32 exp may differ from a correctly rounded one by an ulp of
/// freq_i (frequency divisor `dim / 2 − shift`), which the argument t·freq_i carries.
fn timestep_close(what: &str, t: &[f32], dim: usize, shift: usize, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let half = dim / 2;
    let (atol, rtol) = common::tolerance(DType::F32, 1);
    for (e, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (row, col) = (e / dim, e % dim);
        let freq = if col < 2 * half {
            (-(DEFAULT_MAX_PERIOD.ln()) * (col % half) as f64 / (half - shift) as f64).exp()
        } else {
            0.0
        };
        let bound = atol + rtol * (w as f64).abs() + (t[row] as f64).abs() * freq * 2f64.powi(-23);
        assert!(((g - w) as f64).abs() <= bound, "{what} [{row}, {col}]: got {g}, want {w} (bound {bound})");
    }
}

/// diffusers' `get_timestep_embedding(flip_sin_to_cos=True, downscale_freq_shift=0)` at even
/// and odd dims, then `TimestepEmbedding` (linear_1 → SiLU → linear_2).
#[test]
fn timestep_embedding_and_mlp_match_diffusers() {
    let f = Fixture::load("timestep_embedding");
    let m = Fixture::load("timestep_mlp");
    let t = f.f32s("t");
    for device in devices() {
        let ts = device.upload(&t).unwrap();
        for dim in [256, 33, 32] {
            let mut out = device.zeros::<f32>(t.len() * dim).unwrap();
            timestep_embedding_into(&device, &ts, dim, DEFAULT_MAX_PERIOD, &mut out).unwrap();
            let got = out.download().unwrap();
            timestep_close(
                &format!("emb_{dim} on {}", device.name()),
                &t,
                dim,
                0,
                &got,
                &f.f32s(&format!("emb_{dim}")),
            );
        }
        let emb = device.upload(&f.f32s("emb_256")).unwrap();
        let hidden = m.shape("linear_1.weight")[0];
        let w1 = device.upload(&m.f32s("linear_1.weight")).unwrap();
        let b1 = device.upload(&m.f32s("linear_1.bias")).unwrap();
        let w2 = device.upload(&m.f32s("linear_2.weight")).unwrap();
        let b2 = device.upload(&m.f32s("linear_2.bias")).unwrap();
        let mlp = TimestepMlp { w1: w1.as_view(), b1: b1.as_view(), w2: w2.as_view(), b2: b2.as_view(), hidden };
        let mut scratch = device.zeros::<f32>(t.len() * hidden).unwrap();
        let mut out = device.zeros::<f32>(t.len() * hidden).unwrap();
        timestep_mlp_into(&device, &emb, 256, &mlp, &mut scratch, &mut out).unwrap();
        close(&format!("hidden on {}", device.name()), &scratch.download().unwrap(), &m.f32s("hidden"), 256);
        close(&format!("mlp on {}", device.name()), &out.download().unwrap(), &m.f32s("out"), 256 + hidden);
    }
}

/// diffusers' DiT embedding: `get_timestep_embedding(t, D, flip_sin_to_cos=True,
/// downscale_freq_shift=1)` (= `CombinedTimestepLabelEmbeddings.time_proj`, checked by the
/// script) at D = 256 and 33, through `timestep_embedding_shifted_into` with shift 1.
#[test]
fn timestep_embedding_shift1_matches_diffusers_dit() {
    let f = Fixture::load("timestep_embedding");
    let t = f.f32s("t");
    for device in devices() {
        let ts = device.upload(&t).unwrap();
        for dim in [256, 33] {
            let mut out = device.zeros::<f32>(t.len() * dim).unwrap();
            timestep_embedding_shifted_into(&device, &ts, dim, DEFAULT_MAX_PERIOD, 1, &mut out).unwrap();
            let got = out.download().unwrap();
            let key = format!("emb_{dim}_shift1");
            timestep_close(&format!("{key} on {}", device.name()), &t, dim, 1, &got, &f.f32s(&key));
        }
    }
}

/// diffusers' `LabelEmbedding` (with its null class) in eval mode.
#[test]
fn label_embedding_matches_diffusers() {
    let f = Fixture::load("label_embedding");
    let table = f.f32s("table");
    let dim = f.shape("table")[1];
    let classes = f.shape("table")[0] - 1;
    for device in devices() {
        let tab = device.upload(&table).unwrap();
        for (labels, want) in [("labels", "out"), ("labels_dropped", "out_forced")] {
            let l = f.u32s(labels);
            let ls = device.upload(&l).unwrap();
            let mut out = device.zeros::<f32>(l.len() * dim).unwrap();
            label_embedding_into(&device, &ls, &tab, classes, dim, &mut out).unwrap();
            device.synchronize().unwrap();
            assert_eq!(out.download().unwrap(), f.f32s(want), "{labels} on {}", device.name());
        }
    }
}
