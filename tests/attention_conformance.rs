//! Conformance of the attention references with PyTorch: tests/fixtures/attention/sdpa.txt,
//! made by the script beside it with the real torch package
//! (`torch.nn.functional.scaled_dot_product_attention`, CPU, math backend; the version is
//! in the file's first line), reproduced by `reference::attention`.
//!
//! Each case holds f32 inputs and three PyTorch results: `out`, SDPA in float32; `out_f64`,
//! SDPA on the same inputs widened to float64, rounded to f32; `lse`, `torch.logsumexp` of
//! the scaled, masked float64 logits (kept in f64). Tolerances:
//!
//! - f64 reference vs `out_f64`: one f32 ulp of the stored value, plus `1e-12·max|V|`.
//!   Both sides are f64 computations of the same formula on the same inputs; they differ by
//!   rounding in a different order, about `(Dh + Tk)·2⁻⁵³` relative to the logits and the
//!   values (≈ 1e-14·max|V| here); rounding PyTorch's result to f32 adds half an ulp. The
//!   absolute term covers elements so close to 0 that their f32 ulp is below the f64
//!   disagreement.
//! - f64 reference vs `lse`: `1e-12·(1 + |lse|)`, the same argument (lse is stored in f64);
//!   −∞ must be −∞.
//! - f64 reference vs `out` (PyTorch computing in f32): the first-order forward error bound
//!   of f32 attention, per row, from the data. With `u = 2⁻²⁴`, `γ(n) = n·u` and
//!   `A = scale·max_j Σ_d |q_d·k_jd|`: the logits' absolute error is at most `γ(Dh + 4)·A`
//!   (the Dh-term dot product; PyTorch's scaling of q and k by √scale, one rounding each;
//!   the subtraction of the row maximum, `u·|x − m| ≤ 2u·A`), which perturbs the normalized
//!   probabilities relatively by at most twice that; the sum `l` of Tk terms and the
//!   Tk-term `P·V` add `γ(Tk)` each, `exp`, the division and the roundings of P a few `u`,
//!   all relative to `Σ_j p_j|v_jd| ≤ max_j |v_jd|`. So per element
//!   `tol = (2·γ(Dh + 4)·A + γ(2·Tk + 8))·max_j |v_jd|` (first order). This is a worst case
//!   (rounding errors do not all align): PyTorch's f32 run stays below 4 % of it here (it
//!   differs from the f64 reference by at most about 1.2 f32 ulps of max|V|), and a wrong
//!   mask, scale or alignment is orders of magnitude above it.
//!   PyTorch's f32 output is also held to the error rule itself (as if it were a kernel).
//! - Rows with no visible key: PyTorch returned 0 (math backend, torch 2.15; some backends
//!   and versions give NaN, which is accepted here as PyTorch's side); ours must be exactly 0
//!   with lse −∞.

mod common;

use common::fixture::Fixture;
use tessera::reference::attention::{self as attn, Mask, Output, Problem, Seqlens, Strides};

const CASES: [&str; 6] = ["plain", "causal_square", "causal_short_q", "causal_long_q", "key_padding", "causal_padding"];

fn fixture() -> Fixture {
    Fixture::load_in("attention", "sdpa")
}

/// One fixture case: its inputs (q, k, v as slices of `data`, fused or separate) and dims.
struct Case {
    name: &'static str,
    b: usize,
    h: usize,
    tq: usize,
    tk: usize,
    dh: usize,
    causal: bool,
    key_lengths: Option<Vec<u32>>,
    scale: f32,
    /// q, k, v, each already offset to its first element.
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    strides: [Strides; 3],
}

impl Case {
    fn load(f: &Fixture, name: &'static str) -> Case {
        let d = f.usizes(&format!("{name}.dims"));
        let (b, h, tq, tk, dh) = (d[0], d[1], d[2], d[3], d[4]);
        let causal = f.usize(&format!("{name}.causal")) == 1;
        let kl_key = format!("{name}.key_lengths");
        let key_lengths = f.has(&kl_key).then(|| f.u32s(&kl_key));
        let scale = f.f32s(&format!("{name}.scale"))[0];
        let qkv_key = format!("{name}.qkv");
        let (q, k, v, strides) = if f.has(&qkv_key) {
            assert_eq!(f.shape(&qkv_key), [b, tq, 3, h, dh]);
            let qkv = f.f32s(&qkv_key);
            let (q, k, v) = attn::split_fused_qkv(&qkv, h, dh);
            let s = Strides::fused_qkv(tq, h, dh);
            (q.to_vec(), k.to_vec(), v.to_vec(), [s; 3])
        } else {
            let sq = Strides::contiguous(tq, h, dh);
            let sk = Strides::contiguous(tk, h, dh);
            let q = f.f32s(&format!("{name}.q"));
            assert_eq!(f.shape(&format!("{name}.q")), [b, tq, h, dh]);
            (q, f.f32s(&format!("{name}.k")), f.f32s(&format!("{name}.v")), [sq, sk, sk])
        };
        Case { name, b, h, tq, tk, dh, causal, key_lengths, scale, q, k, v, strides }
    }

    fn problem(&self) -> Problem<'_> {
        let mut p = Problem::new(Seqlens::Padded { batch: self.b, tq: self.tq, tk: self.tk }, self.h, self.dh);
        [p.q, p.k, p.v] = self.strides;
        p.mask = Mask { causal: self.causal, key_lengths: self.key_lengths.as_deref() };
        p.scale = self.scale;
        p
    }

    fn exact(&self) -> Output<f64, f64> {
        attn::attention_f64(&self.problem(), &self.q, &self.k, &self.v).unwrap()
    }

    /// Element offset of (item, token, head) in q, k or v.
    fn at(&self, which: usize, b: usize, t: usize, h: usize) -> usize {
        let s = self.strides[which];
        b * s.batch + t * s.token + h * s.head
    }

    /// The visible keys of (b, i) by the fixture's own boolean mask (all when it has none).
    fn sees(&self, f: &Fixture, b: usize, i: usize, j: usize) -> bool {
        let key = format!("{}.mask", self.name);
        !f.has(&key) || f.u8s(&key)[(b * self.tq + i) * self.tk + j] == 1
    }
}

fn f32_ulp(x: f32) -> f64 {
    let a = x.abs();
    (f32::from_bits(a.to_bits() + 1) as f64) - a as f64
}

#[test]
fn fixture_masks_are_the_reference_mask_rule() {
    let f = fixture();
    for name in CASES {
        let c = Case::load(&f, name);
        let p = c.problem();
        let mut dead_rows = 0;
        for b in 0..c.b {
            for i in 0..c.tq {
                let mut any = false;
                for j in 0..c.tk {
                    let ours = attn::visible(&p.mask, p.key_length(b), c.tq, c.tk, i, j);
                    assert_eq!(ours, c.sees(&f, b, i, j), "{name}: item {b} query {i} key {j}");
                    any |= ours;
                }
                dead_rows += usize::from(!any);
            }
        }
        let want_dead = match name {
            "causal_long_q" => 2,
            "key_padding" => 4,
            _ => 0,
        };
        assert_eq!(dead_rows, want_dead, "{name}: rows that see no key");
        assert_eq!(c.scale, attn::default_scale(c.dh), "{name}: the fixture's scale is 1/sqrt(Dh) in f32");
    }
}

#[test]
fn f64_reference_matches_pytorch_in_f64() {
    let f = fixture();
    for name in CASES {
        let c = Case::load(&f, name);
        let r = c.exact();
        let want = f.f32s(&format!("{name}.out_f64"));
        let vmax = c.v.iter().fold(0.0f64, |m, &x| m.max(x.abs() as f64));
        let mut worst_ulps = 0.0f64;
        for (n, (&got, &w)) in r.out.iter().zip(&want).enumerate() {
            let err = (got - w as f64).abs();
            let tol = f32_ulp(w) + 1e-12 * vmax;
            assert!(err <= tol, "{name}: out[{n}] = {got:e}, PyTorch f64 {w:e}: |diff| {err:e} > {tol:e}");
            worst_ulps = worst_ulps.max(err / f32_ulp(w));
        }
        let lse_want = f.f64s(&format!("{name}.lse"));
        assert_eq!(r.lse.len(), lse_want.len(), "{name}: lse length");
        for (n, (&got, &w)) in r.lse.iter().zip(&lse_want).enumerate() {
            if w.is_infinite() {
                assert_eq!(got, w, "{name}: lse[{n}]");
            } else {
                let err = (got - w).abs();
                assert!(err <= 1e-12 * (1.0 + w.abs()), "{name}: lse[{n}] = {got}, PyTorch {w}: |diff| {err:e}");
            }
        }
        eprintln!("{name}: f64 reference vs PyTorch f64: at most {worst_ulps:.2} f32 ulps");
    }
}

#[test]
fn f64_reference_matches_pytorch_in_f32() {
    let f = fixture();
    let u = 2f64.powi(-24);
    let gamma = |n: usize| n as f64 * u;
    for name in CASES {
        let c = Case::load(&f, name);
        let p = c.problem();
        let r = c.exact();
        let want = f.f32s(&format!("{name}.out"));
        let mut worst = 0.0f64; // err / tol
        let mut worst_err = 0.0f64;
        for b in 0..c.b {
            for h in 0..c.h {
                for i in 0..c.tq {
                    let row = p.out_row(b, i, h);
                    let keys: Vec<usize> = (0..c.tk).filter(|&j| c.sees(&f, b, i, j)).collect();
                    if keys.is_empty() {
                        for d in 0..c.dh {
                            let w = want[row + d];
                            assert!(w == 0.0 || w.is_nan(), "{name}: PyTorch's fully masked row holds {w}");
                            assert_eq!(r.out[row + d].to_bits(), 0.0f64.to_bits(), "{name}: our fully masked row");
                        }
                        assert_eq!(r.lse[p.lse_index(b, i, h)], f64::NEG_INFINITY, "{name}: lse of a masked row");
                        continue;
                    }
                    let qk_abs = keys
                        .iter()
                        .map(|&j| {
                            (0..c.dh)
                                .map(|d| (c.q[c.at(0, b, i, h) + d] as f64 * c.k[c.at(1, b, j, h) + d] as f64).abs())
                                .sum::<f64>()
                        })
                        .fold(0.0f64, f64::max);
                    let rel = 2.0 * gamma(c.dh + 4) * c.scale as f64 * qk_abs + gamma(2 * c.tk + 8);
                    for d in 0..c.dh {
                        let vmax = keys.iter().map(|&j| c.v[c.at(2, b, j, h) + d].abs() as f64).fold(0.0f64, f64::max);
                        let (got, w) = (r.out[row + d], want[row + d] as f64);
                        let tol = rel * vmax;
                        let err = (got - w).abs();
                        assert!(
                            err <= tol,
                            "{name}: out[{}] = {got:e}, PyTorch f32 {w:e}: |diff| {err:e} > {tol:e}",
                            row + d
                        );
                        worst = worst.max(err / tol);
                        worst_err = worst_err.max(err);
                    }
                }
            }
        }
        eprintln!("{name}: f64 reference vs PyTorch f32: max |diff| {worst_err:e}, at most {worst:.3} of the bound");
    }
}

/// PyTorch's own f32 SDPA, taken as if it were a kernel, satisfies the error rule against
/// the references built from the same inputs (its lse stands in as the exact one in f32).
#[test]
fn pytorch_f32_satisfies_the_error_rule() {
    let f = fixture();
    for name in CASES {
        let c = Case::load(&f, name);
        let p = c.problem();
        let exact = c.exact();
        let plain = attn::attention_plain(&p, &c.q, &c.k, &c.v).unwrap();
        let torch_out: Vec<f32> =
            f.f32s(&format!("{name}.out")).iter().map(|&x| if x.is_nan() { 0.0 } else { x }).collect();
        let lse32: Vec<f32> = exact.lse.iter().map(|&x| x as f32).collect();
        let rule = attn::error_rule(&exact, &plain, &torch_out, &lse32);
        assert!(rule.holds(), "{name}: {rule}");
        eprintln!("{name}: PyTorch f32 as a kernel: {rule}");
    }
}
