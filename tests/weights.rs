//! The safetensors loader (src/weights/): synthetic diffusers-DiT and timm-ViT checkpoints
//! (2 blocks, D = 64) written in memory with the safetensors crate in f32, f16 and bf16;
//! exact conversion, the q/k/v concatenation, config.json, and every bad input as a typed
//! error (missing, extra, mis-shaped, int tensors; truncated and corrupt files), never a
//! panic.

use std::collections::HashMap;

use half::{bf16, f16};
use proptest::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::json;
use tessera::weights::{Checkpoint, DitWeights, HostTensor, VitWeights};
use tessera::Error;

/// A named tensor before it is written: f32 values, converted to the file's dtype.
type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// Distinct, non-round values per tensor (seeded by its position), in (-2, 2).
fn values(seed: usize, n: usize) -> Vec<f32> {
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

fn push(t: &mut Tensors, name: impl Into<String>, shape: &[usize]) {
    let n = shape.iter().product();
    let seed = t.len() + 1;
    t.push((name.into(), shape.to_vec(), values(seed, n)));
}

/// The value `x` becomes when stored as `dtype`.
fn stored(x: f32, dtype: Dtype) -> f32 {
    match dtype {
        Dtype::F16 => f16::from_f32(x).to_f32(),
        Dtype::BF16 => bf16::from_f32(x).to_f32(),
        _ => x,
    }
}

fn to_bytes(data: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Dtype::F16 => data.iter().flat_map(|&x| f16::from_f32(x).to_le_bytes()).collect(),
        Dtype::BF16 => data.iter().flat_map(|&x| bf16::from_f32(x).to_le_bytes()).collect(),
        other => panic!("test writes no {other:?}"),
    }
}

/// A safetensors file of raw (name, dtype, shape, bytes) tensors.
fn write_raw(tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            (name.clone(), TensorView::new(*dtype, shape.clone(), bytes).expect("test tensor is consistent"))
        })
        .collect();
    safetensors::serialize(views, None).expect("serialize")
}

fn write(tensors: &Tensors, dtype: Dtype) -> Vec<u8> {
    let raw: Vec<_> = tensors.iter().map(|(n, s, v)| (n.clone(), dtype, s.clone(), to_bytes(v, dtype))).collect();
    write_raw(&raw)
}

fn find<'a>(tensors: &'a Tensors, name: &str) -> &'a [f32] {
    &tensors.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no {name}")).2
}

fn remove(tensors: &mut Tensors, name: &str) {
    let before = tensors.len();
    tensors.retain(|(n, _, _)| n != name);
    assert_eq!(tensors.len(), before - 1, "{name} was not there");
}

const D: usize = 64;
const C: usize = 4;
const P: usize = 2;
const LAYERS: usize = 2;
const MLP: usize = 4 * D;
const CLASSES: usize = 10;
const FREQ: usize = 256;
const OUT_C: usize = 8;

/// diffusers' `DiTTransformer2DModel` state dict, tiny.
fn dit_tensors() -> Tensors {
    let mut t = Tensors::new();
    push(&mut t, "pos_embed.proj.weight", &[D, C, P, P]);
    push(&mut t, "pos_embed.proj.bias", &[D]);
    for i in 0..LAYERS {
        let b = format!("transformer_blocks.{i}");
        let emb = format!("{b}.norm1.emb.timestep_embedder");
        push(&mut t, format!("{emb}.linear_1.weight"), &[D, FREQ]);
        push(&mut t, format!("{emb}.linear_1.bias"), &[D]);
        push(&mut t, format!("{emb}.linear_2.weight"), &[D, D]);
        push(&mut t, format!("{emb}.linear_2.bias"), &[D]);
        push(&mut t, format!("{b}.norm1.emb.class_embedder.embedding_table.weight"), &[CLASSES + 1, D]);
        push(&mut t, format!("{b}.norm1.linear.weight"), &[6 * D, D]);
        push(&mut t, format!("{b}.norm1.linear.bias"), &[6 * D]);
        for m in ["to_q", "to_k", "to_v", "to_out.0"] {
            push(&mut t, format!("{b}.attn1.{m}.weight"), &[D, D]);
            push(&mut t, format!("{b}.attn1.{m}.bias"), &[D]);
        }
        push(&mut t, format!("{b}.ff.net.0.proj.weight"), &[MLP, D]);
        push(&mut t, format!("{b}.ff.net.0.proj.bias"), &[MLP]);
        push(&mut t, format!("{b}.ff.net.2.weight"), &[D, MLP]);
        push(&mut t, format!("{b}.ff.net.2.bias"), &[D]);
    }
    push(&mut t, "proj_out_1.weight", &[2 * D, D]);
    push(&mut t, "proj_out_1.bias", &[2 * D]);
    push(&mut t, "proj_out_2.weight", &[P * P * OUT_C, D]);
    push(&mut t, "proj_out_2.bias", &[P * P * OUT_C]);
    t
}

/// The config.json diffusers writes for `dit_tensors` (2 heads of 32, sample size 8).
fn dit_config() -> serde_json::Value {
    json!({
        "_class_name": "DiTTransformer2DModel",
        "_diffusers_version": "0.30.0",
        "activation_fn": "gelu-approximate",
        "attention_bias": true,
        "attention_head_dim": 32,
        "dropout": 0.0,
        "in_channels": C,
        "norm_elementwise_affine": false,
        "norm_eps": 1e-5,
        "norm_num_groups": 32,
        "norm_type": "ada_norm_zero",
        "num_attention_heads": 2,
        "num_embeds_ada_norm": CLASSES,
        "num_layers": LAYERS,
        "out_channels": OUT_C,
        "patch_size": P,
        "sample_size": 8,
        "upcast_attention": false
    })
}

fn load_dit(tensors: &Tensors, dtype: Dtype) -> tessera::Result<DitWeights> {
    let ckpt = Checkpoint::from_bytes(&write(tensors, dtype))?;
    DitWeights::from_checkpoint(ckpt, Some(&dit_config().to_string()))
}

fn assert_values(what: &str, got: &HostTensor, source: &[f32], dtype: Dtype) {
    assert_eq!(got.data.len(), source.len(), "{what}: length");
    for (i, (&g, &s)) in got.data.iter().zip(source).enumerate() {
        assert_eq!(g.to_bits(), stored(s, dtype).to_bits(), "{what}[{i}] ({dtype:?})");
    }
}

#[test]
fn dit_reads_config_and_values_in_every_dtype() {
    let t = dit_tensors();
    for dtype in [Dtype::F32, Dtype::F16, Dtype::BF16] {
        let w = load_dit(&t, dtype).unwrap();
        let c = &w.config;
        assert_eq!(
            (c.in_channels, c.out_channels, c.patch, c.sample_size, c.dim, c.heads),
            (C, OUT_C, P, 8, D, 2),
            "{dtype:?}"
        );
        assert_eq!((c.layers, c.mlp_hidden, c.num_classes, c.freq_dim), (LAYERS, MLP, CLASSES, FREQ));
        assert_eq!(w.blocks.len(), LAYERS);
        assert_eq!(w.patch_w.shape, [D, C * P * P]);
        assert_values("patch_w", &w.patch_w, find(&t, "pos_embed.proj.weight"), dtype);
        assert_values("patch_b", &w.patch_b, find(&t, "pos_embed.proj.bias"), dtype);
        let b1 = &w.blocks[1];
        let p1 = "transformer_blocks.1";
        assert_values("t_w1", &b1.t_w1, find(&t, &format!("{p1}.norm1.emb.timestep_embedder.linear_1.weight")), dtype);
        assert_eq!(b1.t_w1.shape, [D, FREQ]);
        assert_values("ada_b", &b1.ada_b, find(&t, &format!("{p1}.norm1.linear.bias")), dtype);
        assert_values("fc2_w", &b1.fc2_w, find(&t, &format!("{p1}.ff.net.2.weight")), dtype);
        assert_values(
            "label_table",
            &b1.label_table,
            find(&t, &format!("{p1}.norm1.emb.class_embedder.embedding_table.weight")),
            dtype,
        );
        assert_values("out2_w", &w.out2_w, find(&t, "proj_out_2.weight"), dtype);
        assert_eq!(w.out2_w.shape, [P * P * OUT_C, D]);
    }
}

#[test]
fn dit_concatenates_q_k_v_rows_in_order() {
    let t = dit_tensors();
    let w = load_dit(&t, Dtype::F32).unwrap();
    for (i, b) in w.blocks.iter().enumerate() {
        assert_eq!(b.qkv_w.shape, [3 * D, D]);
        assert_eq!(b.qkv_b.shape, [3 * D]);
        for (j, m) in ["to_q", "to_k", "to_v"].into_iter().enumerate() {
            let src_w = find(&t, &format!("transformer_blocks.{i}.attn1.{m}.weight"));
            let src_b = find(&t, &format!("transformer_blocks.{i}.attn1.{m}.bias"));
            assert_eq!(&b.qkv_w.data[j * D * D..(j + 1) * D * D], src_w, "block {i} {m} weight rows");
            assert_eq!(&b.qkv_b.data[j * D..(j + 1) * D], src_b, "block {i} {m} bias");
        }
    }
}

#[test]
fn special_half_values_convert_exactly() {
    // f16: smallest subnormal, -0, inf, -inf, max, NaN; bf16: the same kinds.
    let f16_bits: [u16; 6] = [0x0001, 0x8000, 0x7c00, 0xfc00, 0x7bff, 0x7e00];
    let bf16_bits: [u16; 6] = [0x0001, 0x8000, 0x7f80, 0xff80, 0x7f7f, 0x7fc0];
    let file = write_raw(&[
        ("a".into(), Dtype::F16, vec![6], f16_bits.iter().flat_map(|b| b.to_le_bytes()).collect()),
        ("b".into(), Dtype::BF16, vec![2, 3], bf16_bits.iter().flat_map(|b| b.to_le_bytes()).collect()),
    ]);
    let ckpt = Checkpoint::from_bytes(&file).unwrap();
    for (name, bits, conv) in [
        ("a", f16_bits, (|b| f16::from_bits(b).to_f32()) as fn(u16) -> f32),
        ("b", bf16_bits, |b| bf16::from_bits(b).to_f32()),
    ] {
        let got = &ckpt.get(name).unwrap().data;
        for (&g, &b) in got.iter().zip(&bits) {
            let want = conv(b);
            assert!(g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()), "{name}: {g} vs {want}");
        }
    }
    assert_eq!(ckpt.shape("b"), Some(&[2usize, 3][..]));
}

#[test]
fn dit_missing_tensor_is_named() {
    let name = "transformer_blocks.1.attn1.to_k.bias";
    let mut t = dit_tensors();
    remove(&mut t, name);
    match load_dit(&t, Dtype::F32) {
        Err(Error::MissingTensor { name: n }) => assert_eq!(n, name),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    let mut t = dit_tensors();
    remove(&mut t, "proj_out_1.weight");
    assert!(matches!(load_dit(&t, Dtype::F16), Err(Error::MissingTensor { name }) if name == "proj_out_1.weight"));
}

#[test]
fn dit_extra_tensors_are_unexpected() {
    let mut t = dit_tensors();
    // A layer-norm weight of a norm_elementwise_affine model, and a third, stray block.
    push(&mut t, "transformer_blocks.0.norm3.weight", &[D]);
    push(&mut t, "zz.extra", &[3]);
    let err = load_dit(&t, Dtype::F32).unwrap_err();
    match &err {
        Error::UnexpectedTensor { name, others } => {
            assert_eq!(name, "transformer_blocks.0.norm3.weight");
            assert_eq!(*others, 1);
        }
        other => panic!("expected UnexpectedTensor, got {other:?}"),
    }
    assert!(err.to_string().contains("transformer_blocks.0.norm3.weight"), "{err}");
}

#[test]
fn dit_wrong_shape_names_both_shapes() {
    let mut t = dit_tensors();
    let i = t.iter().position(|(n, _, _)| n == "transformer_blocks.1.ff.net.2.weight").unwrap();
    t[i].1 = vec![D, MLP - 1];
    t[i].2.truncate(D * (MLP - 1));
    let err = load_dit(&t, Dtype::BF16).unwrap_err();
    match &err {
        Error::TensorShape { name, expected, actual } => {
            assert_eq!(name, "transformer_blocks.1.ff.net.2.weight");
            assert_eq!(expected, &[D, MLP]);
            assert_eq!(actual, &[D, MLP - 1]);
        }
        other => panic!("expected TensorShape, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("[64, 256]") && msg.contains("[64, 255]"), "{msg}");
}

#[test]
fn int_and_f64_tensors_are_dtype_errors() {
    for dtype in [Dtype::I64, Dtype::I32, Dtype::F64, Dtype::U8] {
        let bytes = vec![0u8; 4 * dtype.bitsize() / 8];
        let file = write_raw(&[
            ("ok".into(), Dtype::F32, vec![1], 1f32.to_le_bytes().to_vec()),
            ("steps".into(), dtype, vec![4], bytes),
        ]);
        match Checkpoint::from_bytes(&file) {
            Err(Error::TensorDtype { name, dtype: d }) => {
                assert_eq!(name, "steps");
                assert_eq!(d, format!("{dtype:?}"));
            }
            other => panic!("{dtype:?}: expected TensorDtype, got {other:?}"),
        }
    }
}

fn small_file() -> Vec<u8> {
    let mut t = Tensors::new();
    push(&mut t, "a.weight", &[3, 5]);
    push(&mut t, "b", &[7]);
    write(&t, Dtype::F16)
}

fn assert_checkpoint_error(bytes: &[u8], what: &str) {
    match Checkpoint::from_bytes(bytes) {
        Err(Error::Checkpoint { .. }) => {}
        other => panic!("{what}: expected Error::Checkpoint, got {other:?}"),
    }
}

#[test]
fn truncated_and_corrupt_files_are_checkpoint_errors() {
    let file = small_file();
    let header_len = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    // Every cut: inside the length, inside the header, inside the data, one byte short.
    for cut in [0, 1, 7, 8, 9, 8 + header_len / 2, 8 + header_len, 8 + header_len + 3, file.len() - 1] {
        assert_checkpoint_error(&file[..cut], &format!("cut at {cut}"));
    }
    // One byte too many.
    let mut longer = file.clone();
    longer.push(0);
    assert_checkpoint_error(&longer, "trailing byte");
    // Header length larger than the file, and absurdly large.
    for n in [file.len() as u64, u64::MAX, 1 << 40] {
        let mut bad = file.clone();
        bad[..8].copy_from_slice(&n.to_le_bytes());
        assert_checkpoint_error(&bad, &format!("header length {n}"));
    }
    // Corrupt header JSON: a brace, a quote, invalid UTF-8.
    for (offset, byte) in [(8, b'['), (9, b'x'), (10, 0xff)] {
        let mut bad = file.clone();
        bad[offset] = byte;
        assert_checkpoint_error(&bad, &format!("byte {offset} = {byte:#x}"));
    }
    // Offsets that run past the data, and a shape the data cannot hold.
    let header = std::str::from_utf8(&file[8..8 + header_len]).unwrap();
    for (from, to) in [("[0,30]", "[0,32]"), ("[3,5]", "[3,6]")] {
        assert!(header.contains(from), "{header}");
        let edited = header.replacen(from, to, 1);
        let mut bad = (edited.len() as u64).to_le_bytes().to_vec();
        bad.extend(edited.as_bytes());
        bad.extend(&file[8 + header_len..]);
        assert_checkpoint_error(&bad, &format!("{from} -> {to}"));
    }
}

#[test]
fn open_reads_a_file_and_names_the_path_in_errors() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("tessera_weights_test.safetensors");
    std::fs::write(&path, small_file()).unwrap();
    let ckpt = Checkpoint::open(&path).unwrap();
    assert_eq!(ckpt.names().collect::<Vec<_>>(), ["a.weight", "b"]);
    std::fs::write(&path, &small_file()[..20]).unwrap();
    let err = Checkpoint::open(&path).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }) && err.to_string().contains("tessera_weights_test"), "{err}");
    let missing = dir.join("no_such_file.safetensors");
    let err = Checkpoint::open(&missing).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }) && err.to_string().contains("no_such_file"), "{err}");
}

#[test]
fn checkpoint_take_and_finish() {
    let t = |shape: Vec<usize>| HostTensor::new(shape.clone(), vec![0.5; shape.iter().product()]).unwrap();
    let mut ckpt =
        Checkpoint::from_tensors([("w", t(vec![2, 3, 1, 1])), ("a", t(vec![4])), ("b", t(vec![1]))]).unwrap();
    assert_eq!(ckpt.names().collect::<Vec<_>>(), ["a", "b", "w"]);
    assert!(ckpt.contains("w") && !ckpt.contains("x"));
    assert_eq!(ckpt.shape("w"), Some(&[2usize, 3, 1, 1][..]));
    assert!(matches!(ckpt.take("a", &[5]), Err(Error::TensorShape { .. })));
    assert!(ckpt.contains("a"), "a failed take leaves the tensor");
    assert_eq!(ckpt.take_reshaped("w", &[2, 3, 1, 1], &[2, 3]).unwrap().shape, [2, 3]);
    assert!(matches!(ckpt.take("w", &[2, 3, 1, 1]), Err(Error::MissingTensor { name }) if name == "w"));
    assert!(matches!(ckpt.take_reshaped("a", &[4], &[5]), Err(Error::InvalidArgument { arg: "new_shape", .. })));
    assert!(matches!(ckpt.clone().finish(), Err(Error::UnexpectedTensor { name, others: 1 }) if name == "a"));
    ckpt.take("a", &[4]).unwrap();
    ckpt.take("b", &[1]).unwrap();
    ckpt.finish().unwrap();
    assert!(HostTensor::new(vec![2, 2], vec![0.0; 3]).is_err());
    assert!(matches!(
        Checkpoint::from_tensors([("a", HostTensor { shape: vec![2], data: vec![] })]),
        Err(Error::Checkpoint { .. })
    ));
}

fn config_error(result: tessera::Result<DitWeights>) -> String {
    match result {
        Err(Error::Config { field, .. }) => field,
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

#[test]
fn dit_config_json_disagreeing_with_the_shapes_is_a_config_error() {
    let file = write(&dit_tensors(), Dtype::F32);
    let with = |key: &str, value: serde_json::Value| {
        let mut cfg = dit_config();
        cfg[key] = value;
        DitWeights::from_checkpoint(Checkpoint::from_bytes(&file).unwrap(), Some(&cfg.to_string()))
    };
    for (key, value) in [
        ("num_layers", json!(3)),
        ("patch_size", json!(4)),
        ("in_channels", json!(3)),
        ("out_channels", json!(4)),
        ("out_channels", json!(null)),
        ("num_embeds_ada_norm", json!(1000)),
        ("num_attention_heads", json!(3)),
        ("attention_head_dim", json!(72)), // 2 × 72 ≠ 64: reported as the heads field
        ("sample_size", json!(7)),
        ("norm_type", json!("ada_norm")),
        ("activation_fn", json!("geglu")),
        ("num_layers", json!("two")),
    ] {
        let want = if key == "attention_head_dim" { "num_attention_heads" } else { key };
        assert_eq!(config_error(with(key, value.clone())), want, "{key} = {value}");
    }
    // Not JSON, not an object.
    for text in ["{", "[1, 2]"] {
        let r = DitWeights::from_checkpoint(Checkpoint::from_bytes(&file).unwrap(), Some(text));
        assert_eq!(config_error(r), "config.json");
    }
    // Heads from attention_head_dim alone.
    let mut cfg = dit_config();
    cfg.as_object_mut().unwrap().remove("num_attention_heads");
    cfg["attention_head_dim"] = json!(16);
    let w = DitWeights::from_checkpoint(Checkpoint::from_bytes(&file).unwrap(), Some(&cfg.to_string())).unwrap();
    assert_eq!(w.config.heads, 4);
}

#[test]
fn dit_without_config_json() {
    let t = dit_tensors();
    let file = write(&t, Dtype::F32);
    // No sample size anywhere: an error pointing at the alternatives.
    let r = DitWeights::from_checkpoint(Checkpoint::from_bytes(&file).unwrap(), None);
    assert_eq!(config_error(r), "sample_size");
    // From the caller.
    let w = DitWeights::from_checkpoint_with(Checkpoint::from_bytes(&file).unwrap(), 4, 16).unwrap();
    assert_eq!((w.config.heads, w.config.sample_size), (4, 16));
    for (heads, sample) in [(3, 16), (0, 16), (4, 15), (4, 0)] {
        let r = DitWeights::from_checkpoint_with(Checkpoint::from_bytes(&file).unwrap(), heads, sample);
        assert!(matches!(r, Err(Error::Config { .. })), "heads {heads} sample {sample}");
    }
    // A saved pos_embed buffer [1, T, D] gives the sample size; D = 64 gives one head of 64.
    let mut with_buffer = t.clone();
    push(&mut with_buffer, "pos_embed.pos_embed", &[1, 36, D]);
    let file = write(&with_buffer, Dtype::F16);
    let w = DitWeights::from_checkpoint(Checkpoint::from_bytes(&file).unwrap(), None).unwrap();
    assert_eq!((w.config.heads, w.config.sample_size), (1, 12));
    // ... and must agree with config.json's sample size (8 → 16 tokens, not 36).
    let r = DitWeights::from_checkpoint(Checkpoint::from_bytes(&file).unwrap(), Some(&dit_config().to_string()));
    assert_eq!(config_error(r), "sample_size");
}

#[test]
fn dit_blocks_must_be_contiguous() {
    let t: Tensors = dit_tensors()
        .into_iter()
        .map(|(n, s, v)| (n.replace("transformer_blocks.1.", "transformer_blocks.2."), s, v))
        .collect();
    let r = load_dit(&t, Dtype::F32);
    assert_eq!(config_error(r), "num_layers");
}

/// timm's `VisionTransformer(class_token=False, global_pool='')` state dict, tiny.
fn vit_tensors(head: bool) -> Tensors {
    let mut t = Tensors::new();
    push(&mut t, "patch_embed.proj.weight", &[D, 3, 4, 4]);
    push(&mut t, "patch_embed.proj.bias", &[D]);
    push(&mut t, "pos_embed", &[1, 12, D]);
    for i in 0..LAYERS {
        let b = format!("blocks.{i}");
        for n in ["norm1", "norm2"] {
            push(&mut t, format!("{b}.{n}.weight"), &[D]);
            push(&mut t, format!("{b}.{n}.bias"), &[D]);
        }
        push(&mut t, format!("{b}.attn.qkv.weight"), &[3 * D, D]);
        push(&mut t, format!("{b}.attn.qkv.bias"), &[3 * D]);
        push(&mut t, format!("{b}.attn.proj.weight"), &[D, D]);
        push(&mut t, format!("{b}.attn.proj.bias"), &[D]);
        push(&mut t, format!("{b}.mlp.fc1.weight"), &[MLP, D]);
        push(&mut t, format!("{b}.mlp.fc1.bias"), &[MLP]);
        push(&mut t, format!("{b}.mlp.fc2.weight"), &[D, MLP]);
        push(&mut t, format!("{b}.mlp.fc2.bias"), &[D]);
    }
    push(&mut t, "norm.weight", &[D]);
    push(&mut t, "norm.bias", &[D]);
    if head {
        push(&mut t, "head.weight", &[16, D]);
        push(&mut t, "head.bias", &[16]);
    }
    t
}

fn load_vit(t: &Tensors, dtype: Dtype, heads: Option<usize>) -> tessera::Result<VitWeights> {
    VitWeights::from_checkpoint(Checkpoint::from_bytes(&write(t, dtype))?, heads)
}

#[test]
fn vit_reads_config_and_values() {
    for (dtype, head) in [(Dtype::F32, true), (Dtype::F16, false), (Dtype::BF16, true)] {
        let t = vit_tensors(head);
        let w = load_vit(&t, dtype, None).unwrap();
        let c = &w.config;
        assert_eq!((c.in_channels, c.patch, c.tokens, c.dim, c.heads), (3, 4, 12, D, 1));
        assert_eq!((c.layers, c.mlp_hidden, c.out_dim), (LAYERS, MLP, head.then_some(16)));
        assert_eq!(w.patch_w.shape, [D, 48]);
        assert_eq!(w.pos_embed.shape, [12, D]);
        assert_values("pos_embed", &w.pos_embed, find(&t, "pos_embed"), dtype);
        assert_values("qkv_w", &w.blocks[1].qkv_w, find(&t, "blocks.1.attn.qkv.weight"), dtype);
        assert_values("norm2_b", &w.blocks[0].norm2_b, find(&t, "blocks.0.norm2.bias"), dtype);
        assert_values("norm_w", &w.norm_w, find(&t, "norm.weight"), dtype);
        assert_eq!(w.head.is_some(), head);
        if let Some((hw, _)) = &w.head {
            assert_values("head.weight", hw, find(&t, "head.weight"), dtype);
        }
    }
    assert_eq!(load_vit(&vit_tensors(false), Dtype::F32, Some(4)).unwrap().config.heads, 4);
}

#[test]
fn vit_errors() {
    // A class token: tessera's encoder has none.
    let mut t = vit_tensors(false);
    push(&mut t, "cls_token", &[1, 1, D]);
    assert!(matches!(load_vit(&t, Dtype::F32, None), Err(Error::Config { field, .. }) if field == "cls_token"));
    // Heads that do not divide D.
    assert!(matches!(load_vit(&vit_tensors(false), Dtype::F32, Some(3)), Err(Error::Config { .. })));
    // Layer scale (init_values set): unexpected.
    let mut t = vit_tensors(true);
    push(&mut t, "blocks.0.ls1.gamma", &[D]);
    assert!(
        matches!(load_vit(&t, Dtype::F32, None), Err(Error::UnexpectedTensor { name, others: 0 }) if name == "blocks.0.ls1.gamma")
    );
    // head.weight without head.bias.
    let mut t = vit_tensors(true);
    remove(&mut t, "head.bias");
    assert!(matches!(load_vit(&t, Dtype::F32, None), Err(Error::MissingTensor { name }) if name == "head.bias"));
    // qkv without its bias (qkv_bias=False).
    let mut t = vit_tensors(true);
    remove(&mut t, "blocks.1.attn.qkv.bias");
    assert!(
        matches!(load_vit(&t, Dtype::F32, None), Err(Error::MissingTensor { name }) if name == "blocks.1.attn.qkv.bias")
    );
    // pos_embed of another width.
    let mut t = vit_tensors(false);
    let i = t.iter().position(|(n, _, _)| n == "pos_embed").unwrap();
    t[i] = ("pos_embed".into(), vec![1, 12, D / 2], vec![0.0; 12 * D / 2]);
    assert!(matches!(load_vit(&t, Dtype::F32, None), Err(Error::TensorShape { name, .. }) if name == "pos_embed"));
}

/// A small valid file of the DiT's first tensors in f16 and a ViT-shaped one in bf16.
fn fuzz_base() -> Vec<u8> {
    let mut t = Tensors::new();
    push(&mut t, "pos_embed.proj.weight", &[4, 2, 2, 2]);
    push(&mut t, "pos_embed.proj.bias", &[4]);
    push(&mut t, "transformer_blocks.0.attn1.to_q.weight", &[4, 4]);
    write(&t, Dtype::F16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random byte flips (biased to the length and header) and truncations never panic.
    #[test]
    fn corrupted_files_never_panic(
        flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..6),
        cut in proptest::option::of(0usize..400),
    ) {
        let mut file = fuzz_base();
        for (at, byte) in flips {
            let i = at % file.len();
            file[i] ^= byte;
        }
        if let Some(cut) = cut {
            file.truncate(cut % (file.len() + 1));
        }
        if let Ok(ckpt) = Checkpoint::from_bytes(&file) {
            let _ = DitWeights::from_checkpoint(ckpt.clone(), None);
            let _ = DitWeights::from_checkpoint_with(ckpt.clone(), 1, 2);
            let _ = VitWeights::from_checkpoint(ckpt, None);
        }
    }

    /// Arbitrary bytes, with a plausible header length in front, never panic.
    #[test]
    fn random_bytes_never_panic(len in 0u64..300, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut file = len.to_le_bytes().to_vec();
        file.extend(body);
        let _ = Checkpoint::from_bytes(&file);
    }
}

#[test]
fn metadata_in_the_header_is_ignored() {
    // torch's save_file writes {"__metadata__": {"format": "pt"}}.
    let data = 1.5f32.to_le_bytes();
    let view = TensorView::new(Dtype::F32, vec![1], &data).unwrap();
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let file = safetensors::serialize([("x", view)], Some(meta)).unwrap();
    let ckpt = Checkpoint::from_bytes(&file).unwrap();
    assert_eq!(ckpt.names().collect::<Vec<_>>(), ["x"]);
    assert_eq!(ckpt.get("x").unwrap().data, [1.5]);
}
