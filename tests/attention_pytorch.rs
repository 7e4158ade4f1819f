//! The attention kernel against PyTorch: tests/fixtures/attention/sdpa_lowp.txt, made by
//! gen_sdpa_fixture.py with the real torch package. Each case holds f16- or bf16-valued
//! inputs (so they reach the kernel unrounded), PyTorch's SDPA of them in float64 (the
//! exact answer, rounded to f32: far below the dtype's error) and in the dtype itself
//! (PyTorch's own low-precision result), and the f64 log-sum-exp.
//!
//! The kernel runs on every backend and is held to the error rule against PyTorch's f64
//! result (twice the error of the plain reference in the input precision, plus an ulp),
//! and to twice PyTorch's own f16/bf16 error (plus an ulp).

mod common;

use common::fixture::Fixture;
use half::{bf16, f16};
use tessera::reference::attention::{self as reference, Mask, Output, Problem, Seqlens, Strides};
use tessera::{attention_into, AttentionLayout, AttentionOptions, AttentionShape, FloatElement};

struct Case {
    name: &'static str,
    shape: AttentionShape,
    causal: bool,
    key_lengths: Option<Vec<u32>>,
    fused: bool,
    /// q, k, v (for a fused case the one qkv buffer three times).
    inputs: [Vec<f32>; 3],
}

impl Case {
    fn load(f: &Fixture, name: &'static str) -> Case {
        let d = f.usizes(&format!("{name}.dims"));
        let shape = AttentionShape { batch: d[0], heads: d[1], q_len: d[2], k_len: d[3], head_dim: d[4] };
        let causal = f.usize(&format!("{name}.causal")) == 1;
        let kl = format!("{name}.key_lengths");
        let key_lengths = f.has(&kl).then(|| f.u32s(&kl));
        let scale = f.f32s(&format!("{name}.scale"))[0];
        assert_eq!(scale, reference::default_scale(shape.head_dim), "{name}: the fixture's scale is the default");
        let qkv = format!("{name}.qkv");
        let (fused, inputs) = if f.has(&qkv) {
            let all = f.f32s(&qkv);
            (true, [all.clone(), all.clone(), all])
        } else {
            (false, ["q", "k", "v"].map(|t| f.f32s(&format!("{name}.{t}"))))
        };
        Case { name, shape, causal, key_lengths, fused, inputs }
    }

    fn problem(&self) -> Problem<'_> {
        let AttentionShape { batch, heads, head_dim, q_len, k_len } = self.shape;
        let mut p = Problem::new(Seqlens::Padded { batch, tq: q_len, tk: k_len }, heads, head_dim);
        if self.fused {
            let s = Strides::fused_qkv(q_len, heads, head_dim);
            (p.q, p.k, p.v) = (s, s, s);
        }
        p.mask = Mask { causal: self.causal, key_lengths: self.key_lengths.as_deref() };
        p
    }

    /// The inputs as T, asserting the fixture's values are T's (no rounding here).
    fn inputs<T: FloatElement>(&self) -> [Vec<T>; 3] {
        self.inputs.clone().map(|v| {
            v.iter()
                .map(|&x| {
                    let t = T::from_f32(x);
                    assert_eq!(
                        t.to_f32().to_bits(),
                        x.to_bits(),
                        "{}: input {x} is not a {:?} value",
                        self.name,
                        T::DTYPE
                    );
                    t
                })
                .collect()
        })
    }

    /// The q, k, v element offsets into `inputs` (for a fused case, the offsets of the three
    /// parts of one token row).
    fn offsets(&self) -> [usize; 3] {
        let part = self.shape.heads * self.shape.head_dim;
        if self.fused {
            [0, part, 2 * part]
        } else {
            [0, 0, 0]
        }
    }

    fn check<T: FloatElement>(&self, f: &Fixture) {
        let AttentionShape { batch, heads, q_len, .. } = self.shape;
        let [q, k, v] = self.inputs::<T>();
        let [oq, ok, ov] = self.offsets();
        let problem = self.problem();
        let exact = Output::<f64, f64> {
            out: f.f32s(&format!("{}.out_f64", self.name)).iter().map(|&x| x as f64).collect(),
            lse: f.f64s(&format!("{}.lse", self.name)),
        };
        let plain = reference::attention_plain(&problem, &q[oq..], &k[ok..], &v[ov..]).unwrap();
        let torch: Vec<T> = f.f32s(&format!("{}.out_lowp", self.name)).iter().map(|&x| T::from_f32(x)).collect();
        assert!(
            torch.iter().all(|x| !x.to_f32().is_nan()),
            "{}: PyTorch's low-precision output holds a NaN",
            self.name
        );
        let torch_err = reference::max_abs_error(&exact.out, torch.iter().map(|x| x.to_f32() as f64));
        let floor = reference::ulp::<T>(exact.out.iter().fold(0.0f64, |m, x| m.max(x.abs())));
        let layout = if self.fused {
            AttentionLayout::fused_qkv(heads, self.shape.head_dim)
        } else {
            AttentionLayout::contiguous(heads, self.shape.head_dim)
        };
        let options = AttentionOptions { causal: self.causal, scale: None, key_lengths: self.key_lengths.as_deref() };
        for device in common::kernel_devices("attention") {
            let (dq, dk, dv) = (device.upload(&q).unwrap(), device.upload(&k).unwrap(), device.upload(&v).unwrap());
            let mut out = device.zeros::<T>(batch * q_len * heads * self.shape.head_dim).unwrap();
            let mut lse = device.zeros::<f32>(batch * heads * q_len).unwrap();
            attention_into(
                &device,
                dq.view(oq..).unwrap(),
                dk.view(ok..).unwrap(),
                dv.view(ov..).unwrap(),
                self.shape,
                &layout,
                &options,
                &mut out,
                &mut lse,
            )
            .unwrap();
            let (got, got_lse) = (out.download().unwrap(), lse.download().unwrap());
            let rule = reference::error_rule(&exact, &plain, &got, &got_lse);
            assert!(rule.holds(), "{} on {}: against PyTorch's f64 SDPA: {rule}", self.name, device.name());
            let kernel_err = rule.out.kernel_err;
            assert!(
                kernel_err <= 2.0 * torch_err + floor,
                "{} on {}: kernel error {kernel_err:e} > 2 × PyTorch's {:?} error {torch_err:e} + ulp {floor:e}",
                self.name,
                device.name(),
                T::DTYPE
            );
            eprintln!(
                "{} on {}: max |O − SDPA f64| {kernel_err:.3e} (plain reference {:.3e}, PyTorch {:?} {torch_err:.3e}); lse {:.3e}",
                self.name,
                device.name(),
                rule.out.plain_err,
                T::DTYPE,
                rule.lse.kernel_err
            );
        }
    }
}

fn fixture() -> Fixture {
    Fixture::load_in("attention", "sdpa_lowp")
}

/// DiT-XL/2's head dim 72 in bf16, q/k/v as views of one fused QKV buffer.
#[test]
fn head_dim_72_bf16_fused_qkv_matches_pytorch() {
    let f = fixture();
    Case::load(&f, "d72_bf16_fused").check::<bf16>(&f);
}

/// Head dim 32 in f16, bottom-right causal with Tq < Tk and key padding.
#[test]
fn head_dim_32_f16_causal_with_padding_matches_pytorch() {
    let f = fixture();
    Case::load(&f, "d32_f16_causal_padding").check::<f16>(&f);
}

/// Head dim 128 in bf16 with fewer queries than keys.
#[test]
fn head_dim_128_bf16_short_queries_matches_pytorch() {
    let f = fixture();
    Case::load(&f, "d128_bf16_short_q").check::<bf16>(&f);
}
