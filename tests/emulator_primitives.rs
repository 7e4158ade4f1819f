//! Every primitive of the emulator's CUDA-on-the-CPU header (kernels/host/cuda_host.h:
//! atomics and fences, arithmetic intrinsics, min/max, conversions, the __half /
//! __nv_bfloat16 helpers and operators, the make_* vector constructors) applied to tables of
//! inputs with their edge cases, through the self-test kernels kernels/selftest/primitives_*.cu.
//! Each expected value is computed here in plain Rust from the CUDA / PTX definition of the
//! primitive, independently of the C++ (the `half` crate only for f32 <-> f16/bf16, which it
//! rounds correctly; the f64 -> f16/bf16 rounding is written out below because the crate's
//! truncates before rounding). The numeric checks also run on a GPU when one is usable; where
//! the GPU's approximations are documented only to an error bound (__expf, __fdividef, the
//! division of halves), the GPU run is checked against that bound and the emulator exactly.

mod common;

use half::{bf16, f16};
use std::collections::BTreeMap;
use tessera::selftest;
use tessera::{BackendKind, Device};

use common::Rng;

fn gpu(device: &Device) -> bool {
    device.kind() == BackendKind::Cuda
}

/// Same bits, or both NaN (a GPU returns its canonical NaN).
fn same_f32(got: f32, want: f32) -> bool {
    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
}
fn same_f64(got: f64, want: f64) -> bool {
    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
}

/// A subnormal f32 flushed to zero of its sign (PTX `.ftz`).
fn ftz(v: f32) -> f32 {
    if v != 0.0 && v.abs() < f32::MIN_POSITIVE {
        0.0f32.copysign(v)
    } else {
        v
    }
}

/// The spacing of f32 values at |w| (the unit in the last place).
fn ulp_f32(w: f64) -> f64 {
    let a = w.abs();
    if a < f32::MIN_POSITIVE as f64 {
        return 2f64.powi(-149);
    }
    2f64.powi(a.log2().floor() as i32 - 23)
}

/// `got` within `ulps` units in the last place of the exact value `want`.
fn within_ulps(got: f32, want: f64, ulps: f64) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    if got.is_infinite() || want.is_infinite() {
        return got as f64 == want
            || (got.is_infinite() && got.signum() as f64 == want.signum() && want.abs() >= f32::MAX as f64 * 0.9999);
    }
    (got as f64 - want).abs() <= ulps * ulp_f32(want)
}

/// `d` rounded to nearest even in a binary format of precision `p` (significand bits, the
/// implicit one included), smallest normal exponent `emin` and largest exponent `emax`:
/// IEEE 754 round-to-nearest-even with gradual underflow and overflow to infinity.
fn round_to_format(d: f64, p: i32, emin: i32, emax: i32) -> f64 {
    if !d.is_finite() || d == 0.0 {
        return d;
    }
    let a = d.abs();
    let e = ((a.to_bits() >> 52) & 0x7ff) as i32 - 1023; // f64 subnormals are far below emin
    let quantum = 2f64.powi(e.max(emin) - (p - 1));
    let r = a / quantum; // exact: a power-of-two scaling, r < 2^p
    let fl = r.floor();
    let frac = r - fl;
    let k = if frac > 0.5 || (frac == 0.5 && fl % 2.0 == 1.0) { fl + 1.0 } else { fl };
    let v = k * quantum;
    if v >= 2f64.powi(emax + 1) {
        return f64::INFINITY.copysign(d);
    }
    v.copysign(d)
}
fn f16_of(d: f64) -> f16 {
    if d.is_nan() {
        return f16::NAN;
    }
    f16::from_f64(round_to_format(d, 11, -14, 15)) // now exact: the crate's conversion is exact
}
fn bf16_of(d: f64) -> bf16 {
    if d.is_nan() {
        return bf16::NAN;
    }
    bf16::from_f64(round_to_format(d, 8, -126, 127))
}

// ---- atomics ---------------------------------------------------------------------------------

/// The atomics of `selftest_prim_atomic_ops`, by op code.
const ATOMIC_NAMES: [&str; 33] = [
    "atomicAdd(int)",
    "atomicAdd(unsigned)",
    "atomicAdd(unsigned long long)",
    "atomicAdd(float)",
    "atomicAdd(double)",
    "atomicSub(int)",
    "atomicSub(unsigned)",
    "atomicMin(int)",
    "atomicMax(int)",
    "atomicMin(unsigned)",
    "atomicMax(unsigned)",
    "atomicMin(long long)",
    "atomicMax(long long)",
    "atomicMin(unsigned long long)",
    "atomicMax(unsigned long long)",
    "atomicCAS(int)",
    "atomicCAS(unsigned)",
    "atomicCAS(unsigned long long)",
    "atomicExch(int)",
    "atomicExch(unsigned)",
    "atomicExch(unsigned long long)",
    "atomicExch(float)",
    "atomicAnd(int)",
    "atomicOr(int)",
    "atomicXor(int)",
    "atomicAnd(unsigned)",
    "atomicOr(unsigned)",
    "atomicXor(unsigned)",
    "atomicAnd(unsigned long long)",
    "atomicOr(unsigned long long)",
    "atomicXor(unsigned long long)",
    "atomicInc",
    "atomicDec",
];

/// The new value of a cell holding `old` after atomic `op` with operand `v` (compare `w`),
/// as the CUDA programming guide defines each atomic; 32-bit atomics act on the low word.
/// atomicAdd(float) is PTX atom.add.f32, which flushes subnormal inputs and results to zero.
fn atomic_new(op: i32, old: u64, v: u64, w: u64) -> u64 {
    let (o32, v32, w32) = (old as u32, v as u32, w as u32);
    let (oi, vi) = (o32 as i32, v32 as i32);
    let f32_of = |b: u32| f32::from_bits(b);
    let low = |x: u32| (old & !0xffff_ffff) | x as u64;
    match op {
        0 => low(oi.wrapping_add(vi) as u32),
        1 => low(o32.wrapping_add(v32)),
        2 => old.wrapping_add(v),
        3 => low(ftz(ftz(f32_of(o32)) + ftz(f32_of(v32))).to_bits()),
        4 => (f64::from_bits(old) + f64::from_bits(v)).to_bits(),
        5 => low(oi.wrapping_sub(vi) as u32),
        6 => low(o32.wrapping_sub(v32)),
        7 => low(if vi < oi { vi } else { oi } as u32),
        8 => low(if vi > oi { vi } else { oi } as u32),
        9 => low(if v32 < o32 { v32 } else { o32 }),
        10 => low(if v32 > o32 { v32 } else { o32 }),
        11 => (old as i64).min(v as i64) as u64,
        12 => (old as i64).max(v as i64) as u64,
        13 => old.min(v),
        14 => old.max(v),
        15 | 16 => low(if o32 == w32 { v32 } else { o32 }),
        17 => {
            if old == w {
                v
            } else {
                old
            }
        }
        18 | 19 | 21 => low(v32),
        20 => v,
        22 | 25 => low(o32 & v32),
        23 | 26 => low(o32 | v32),
        24 | 27 => low(o32 ^ v32),
        28 => old & v,
        29 => old | v,
        30 => old ^ v,
        31 => low(if o32 >= v32 { 0 } else { o32 + 1 }),
        32 => low(if o32 == 0 || o32 > v32 { v32 } else { o32 - 1 }),
        _ => unreachable!(),
    }
}

/// The old value an atomic returns: the whole cell for 64-bit atomics, its low word otherwise.
fn atomic_old(op: i32, old: u64) -> u64 {
    match op {
        2 | 4 | 11..=14 | 17 | 20 | 28..=30 => old,
        _ => old & 0xffff_ffff,
    }
}

fn f32_bits(v: f32) -> u64 {
    v.to_bits() as u64
}

#[test]
fn every_atomic_overload_on_edge_values() {
    const HIGH: u64 = 0xa5a5_a5a5_0000_0000; // the untouched high word of 32-bit cells
    let e32: [u32; 10] =
        [0, 1, 2, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0xffff_fffe, 0x8000_0001, 0x1234_5678, 0xdead_beef];
    let e64: [u64; 10] = [
        0,
        1,
        0x7fff_ffff_ffff_ffff,
        0x8000_0000_0000_0000,
        u64::MAX,
        0xffff_ffff,
        0x1_0000_0000,
        0x8000_0000,
        0xdead_beef_0bad_f00d,
        0x0123_4567_89ab_cdef,
    ];
    let sub = f32::from_bits(1); // the smallest subnormal
    let float_pairs: [(f32, f32); 14] = [
        (1.0, 2.0),
        (0.1, 0.2),
        (1.5 * f32::MIN_POSITIVE, -f32::MIN_POSITIVE), // subnormal result: flushed
        (sub, sub),                                    // subnormal inputs and result
        (f32::from_bits(0x0040_0000), f32::MIN_POSITIVE), // subnormal cell: flushed first
        (f32::MIN_POSITIVE, f32::from_bits(0x0040_0000)), // subnormal operand
        (-0.0, -0.0),
        (0.0, -0.0),
        (f32::MAX, f32::MAX),
        (f32::INFINITY, f32::NEG_INFINITY),
        (f32::NAN, 1.0),
        (-3.5, 3.5),
        (1e30, -1e-30),
        (f32::from_bits(0x807f_ffff), 1.0),
    ];
    let double_pairs: [(f64, f64); 8] = [
        (1.0, 2.0),
        (0.1, 0.2),
        (f64::from_bits(1), f64::from_bits(1)), // f64 atomics keep subnormals
        (f64::MIN_POSITIVE, -f64::from_bits(1)),
        (f64::MAX, f64::MAX),
        (f64::INFINITY, -1.0),
        (-0.0, 0.0),
        (1e300, -1e-300),
    ];
    let (mut op, mut operand, mut compare, mut cell) = (vec![], vec![], vec![], vec![]);
    for code in 0..selftest::ATOMIC_OPS {
        let is64 = atomic_old(code, u64::MAX) == u64::MAX;
        let mut push = |c: u64, v: u64, w: u64| {
            op.push(code);
            cell.push(if is64 { c } else { HIGH | (c & 0xffff_ffff) });
            operand.push(v);
            compare.push(w);
        };
        match code {
            3 => float_pairs.iter().for_each(|&(c, v)| push(f32_bits(c), f32_bits(v), 0)),
            4 => double_pairs.iter().for_each(|&(c, v)| push(c.to_bits(), v.to_bits(), 0)),
            21 => float_pairs.iter().for_each(|&(c, v)| push(f32_bits(c), f32_bits(v), 0)),
            _ => {
                for k in 0..16 {
                    let (c, v) = if is64 {
                        (e64[k % 10], if k >= 13 { e64[k % 10] } else { e64[(k * 7 + 3) % 10] })
                    } else {
                        let c = e32[k % 10] as u64;
                        (c, if k >= 13 { c } else { e32[(k * 7 + 3) % 10] as u64 })
                    };
                    // CAS: the compare value matches the cell in every other case.
                    let w = if k % 2 == 0 { c } else { c ^ 0x10 };
                    push(c, v, w);
                }
            }
        }
    }
    for device in common::kernel_devices("every_atomic_overload_on_edge_values") {
        let (after, olds) = selftest::prim_atomic_ops(&device, &op, &operand, &compare, &cell).unwrap();
        for i in 0..op.len() {
            let name = ATOMIC_NAMES[op[i] as usize];
            let what = format!(
                "{device:?}: {name} on cell {:#018x} with operand {:#x} (compare {:#x})",
                cell[i], operand[i], compare[i]
            );
            assert_eq!(olds[i], atomic_old(op[i], cell[i]), "{what}: returned old value");
            let want = atomic_new(op[i], cell[i], operand[i], compare[i]);
            let ok = match op[i] {
                3 => {
                    after[i] >> 32 == want >> 32
                        && same_f32(f32::from_bits(after[i] as u32), f32::from_bits(want as u32))
                }
                4 => same_f64(f64::from_bits(after[i]), f64::from_bits(want)),
                _ => after[i] == want,
            };
            assert!(ok, "{what}: cell afterwards {:#018x}, want {want:#018x}", after[i]);
        }
    }
}

fn multiset<T: Ord + Copy>(v: impl IntoIterator<Item = T>) -> BTreeMap<T, usize> {
    let mut m = BTreeMap::new();
    for x in v {
        *m.entry(x).or_insert(0) += 1;
    }
    m
}

/// The old values an exchange chain returns, plus the final value, are the initial value
/// plus every value stored (in some order).
fn check_exchange_chain<T: Ord + Copy + std::fmt::Debug>(what: &str, olds: &[T], fin: T, init: T, stored: &[T]) {
    let got = multiset(olds.iter().copied().chain([fin]));
    let want = multiset(stored.iter().copied().chain([init]));
    assert_eq!(got, want, "{what}: the old values and the final value are not the stored values");
}

/// Exactly one thread saw `empty` (and stored its id, the final value); every other saw the
/// final value.
fn check_cas_claim<T: PartialEq + Copy + std::fmt::Debug>(
    what: &str,
    olds: &[T],
    fin: T,
    empty: T,
    id: impl Fn(usize) -> T,
) {
    let winners: Vec<usize> = (0..olds.len()).filter(|&g| olds[g] == empty).collect();
    assert_eq!(winners.len(), 1, "{what}: threads that claimed the empty cell: {winners:?}");
    assert_eq!(fin, id(winners[0]), "{what}: the cell holds the winner's id");
    for (g, &o) in olds.iter().enumerate() {
        assert!(g == winners[0] || o == fin, "{what}: thread {g} saw {o:?}, not the claimed value {fin:?}");
    }
}

/// The sequence of old values of repeated atomicInc (`inc`) or atomicDec from `init`.
fn inc_dec_sequence(init: u32, limit: u32, n: usize, inc: bool) -> (Vec<u32>, u32) {
    let mut s = init;
    let mut olds = Vec::with_capacity(n);
    for _ in 0..n {
        olds.push(s);
        s = if inc {
            if s >= limit {
                0
            } else {
                s + 1
            }
        } else if s == 0 || s > limit {
            limit
        } else {
            s - 1
        };
    }
    (olds, s)
}

#[test]
fn atomics_under_contention_have_order_independent_results() {
    let (blocks, threads) = (4u32, 128u32);
    let n = (blocks * threads) as usize;
    let mut rng = Rng(0x5eed);
    let mut src: Vec<u32> = (0..2 * n).map(|_| rng.word()).collect();
    src[3] = 0x8000_0000;
    src[4] = 0x7fff_ffff;
    src[5] = 0xffff_ffff;
    src[6] = 0;
    src[n + 7] = 0x8000_0000;
    let ci: Vec<i32> = vec![7, -7, 0x1234, -0x1234, 0x5a5a_5a5a, 0x0100_0000, 0x0f0f_0f0f, 99, -1, 1000];
    let cu: Vec<u32> = vec![
        0xffff_fff0,
        5,
        0x8000_1234,
        0x7fff_0000,
        0xdead_beef,
        0x8000_0000,
        0x1357_9bdf,
        12345,
        0xffff_ffff,
        0xffff_ff00,
        100,
        50,
        0xffff_0000,
        3,
        1,
    ];
    let cl: Vec<u64> = vec![
        0xffff_ffff_ffff_0000,
        0x1234_5678,
        0x8000_0000_0000_1234,
        0x8000_0000_0000_0000,
        0x7fff_ffff_0000_0000,
        0xffff_ffff_ffff_ffff,
        1 << 63,
        0x0123_4567_89ab_cdef,
        42,
        u64::MAX,
        1.25f64.to_bits(),
        0xffff_ff00,
    ];
    let cf: Vec<f32> = vec![-3.75, 0.5];
    let (inc_limit, dec_limit) = (37u32, 41u32);
    for device in common::kernel_devices("atomics_under_contention_have_order_independent_results") {
        let r = selftest::prim_atomic_contention(
            &device,
            &src,
            &ci,
            &cu,
            &cl,
            &cf,
            (inc_limit, dec_limit),
            blocks,
            threads,
        )
        .unwrap();
        let a = |g: usize| src[g];
        let b = |g: usize| src[n + g];
        let big = |g: usize| (a(g) as u64) << 32 | b(g) as u64;
        let all = 0..n;
        let o32 = |g: usize, k: usize| r.olds32[g * 9 + k];
        let o64 = |g: usize, k: usize| r.olds64[g * 3 + k];
        let d = format!("{device:?}");

        // int
        let want_i = [
            all.clone().fold(ci[0], |s, g| s.wrapping_add(a(g) as i32)),
            all.clone().fold(ci[1], |s, g| s.wrapping_sub(b(g) as i32)),
            all.clone().fold(ci[2], |s, g| s.min(a(g) as i32)),
            all.clone().fold(ci[3], |s, g| s.max(a(g) as i32)),
            all.clone().fold(ci[4], |s, g| s & !(1i32 << (a(g) % 20))),
            all.clone().fold(ci[5], |s, g| s | (1i32 << (a(g) % 20))),
            all.clone().fold(ci[6], |s, g| s ^ a(g) as i32),
        ];
        let names = ["atomicAdd", "atomicSub", "atomicMin", "atomicMax", "atomicAnd", "atomicOr", "atomicXor"];
        for k in 0..7 {
            assert_eq!(r.ci[k], want_i[k], "{d}: {}(int) of {n} threads", names[k]);
        }
        let ids: Vec<i32> = (1..=n as i32).collect();
        let olds: Vec<i32> = all.clone().map(|g| o32(g, 0) as i32).collect();
        check_exchange_chain(&format!("{d}: atomicExch(int)"), &olds, r.ci[7], ci[7], &ids);
        let olds: Vec<i32> = all.clone().map(|g| o32(g, 1) as i32).collect();
        check_cas_claim(&format!("{d}: atomicCAS(int)"), &olds, r.ci[8], -1, |g| g as i32);
        let mut tickets: Vec<i32> = all.clone().map(|g| o32(g, 2) as i32).collect();
        tickets.sort();
        assert_eq!(tickets, (ci[9]..ci[9] + n as i32).collect::<Vec<_>>(), "{d}: atomicAdd(int, 1) tickets");
        assert_eq!(r.ci[9], ci[9] + n as i32, "{d}: atomicAdd(int, 1) total");

        // unsigned
        let want_u = [
            all.clone().fold(cu[0], |s, g| s.wrapping_add(a(g))),
            all.clone().fold(cu[1], |s, g| s.wrapping_sub(b(g))),
            all.clone().fold(cu[2], |s, g| s.min(a(g))),
            all.clone().fold(cu[3], |s, g| s.max(a(g))),
            all.clone().fold(cu[4], |s, g| s & !(1u32 << (a(g) % 20))),
            all.clone().fold(cu[5], |s, g| s | (1u32 << (a(g) % 20))),
            all.clone().fold(cu[6], |s, g| s ^ a(g)),
        ];
        for k in 0..7 {
            assert_eq!(r.cu[k], want_u[k], "{d}: {}(unsigned) of {n} threads", names[k]);
        }
        let ids: Vec<u32> = (1..=n as u32).collect();
        let olds: Vec<u32> = all.clone().map(|g| o32(g, 3)).collect();
        check_exchange_chain(&format!("{d}: atomicExch(unsigned)"), &olds, r.cu[7], cu[7], &ids);
        let olds: Vec<u32> = all.clone().map(|g| o32(g, 4)).collect();
        check_cas_claim(&format!("{d}: atomicCAS(unsigned)"), &olds, r.cu[8], u32::MAX, |g| g as u32);
        let mut tickets: Vec<u32> = all.clone().map(|g| o32(g, 5)).collect();
        tickets.sort();
        let want: Vec<u32> = (0..n as u32).map(|t| cu[9].wrapping_add(t)).collect::<Vec<_>>();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(tickets, want_sorted, "{d}: atomicAdd(unsigned, 1) tickets (wrapping past 2^32)");
        assert_eq!(r.cu[9], cu[9].wrapping_add(n as u32), "{d}: atomicAdd(unsigned, 1) total");
        for (k, inc, limit, name) in [(6usize, true, inc_limit, "atomicInc"), (7, false, dec_limit, "atomicDec")] {
            let (seq, fin) = inc_dec_sequence(cu[4 + k], limit, n, inc);
            let olds: Vec<u32> = all.clone().map(|g| o32(g, k)).collect();
            assert_eq!(multiset(olds), multiset(seq), "{d}: {name}(limit {limit}) old values from {}", cu[4 + k]);
            assert_eq!(r.cu[4 + k], fin, "{d}: {name}(limit {limit}) final value");
        }
        assert_eq!(r.cu[12], all.clone().fold(cu[12], |s, g| s.wrapping_add(a(g))), "{d}: atomicCAS loop adding");
        assert_eq!(r.cu[13], cu[13] + n as u32, "{d}: atomicAdd on __shared__");
        assert_eq!(r.cu[14], cu[14] + blocks * (threads - 1), "{d}: atomicMax on __shared__");

        // 64-bit
        let want_l = [
            all.clone().fold(cl[0], |s, g| s.wrapping_add(big(g))),
            all.clone().fold(cl[1] as i64, |s, g| s.min(big(g) as i64)) as u64,
            all.clone().fold(cl[2] as i64, |s, g| s.max(big(g) as i64)) as u64,
            all.clone().fold(cl[3], |s, g| s.min(big(g))),
            all.clone().fold(cl[4], |s, g| s.max(big(g))),
            all.clone().fold(cl[5], |s, g| s & !(1u64 << (a(g) % 40))),
            all.clone().fold(cl[6], |s, g| s | (1u64 << (a(g) % 40))),
            all.clone().fold(cl[7], |s, g| s ^ big(g)),
        ];
        let names64 = [
            "atomicAdd(unsigned long long)",
            "atomicMin(long long)",
            "atomicMax(long long)",
            "atomicMin(unsigned long long)",
            "atomicMax(unsigned long long)",
            "atomicAnd(unsigned long long)",
            "atomicOr(unsigned long long)",
            "atomicXor(unsigned long long)",
        ];
        for k in 0..8 {
            assert_eq!(r.cl[k], want_l[k], "{d}: {} of {n} threads", names64[k]);
        }
        let ids: Vec<u64> = (0..n as u64).map(|g| (g + 1) << 32 | g).collect();
        let olds: Vec<u64> = all.clone().map(|g| o64(g, 0)).collect();
        check_exchange_chain(&format!("{d}: atomicExch(unsigned long long)"), &olds, r.cl[8], cl[8], &ids);
        let olds: Vec<u64> = all.clone().map(|g| o64(g, 1)).collect();
        check_cas_claim(&format!("{d}: atomicCAS(unsigned long long)"), &olds, r.cl[9], u64::MAX, |g| g as u64);
        let dsum = all.clone().fold(f64::from_bits(cl[10]), |s, g| s + (a(g) % 1024) as f64 * 0.5);
        assert_eq!(f64::from_bits(r.cl[10]), dsum, "{d}: atomicAdd(double) (exact sums)");
        let mut tickets: Vec<u64> = all.clone().map(|g| o64(g, 2)).collect();
        tickets.sort();
        assert_eq!(
            tickets,
            (cl[11]..cl[11] + n as u64).collect::<Vec<_>>(),
            "{d}: atomicAdd(ull, 1) tickets across 2^32"
        );

        // float
        let fsum = all.clone().fold(cf[0], |s, g| s + ((a(g) % 17) as i32 - 8) as f32 * 0.25);
        assert_eq!(r.cf[0], fsum, "{d}: atomicAdd(float) (exact sums)");
        let ids: Vec<u32> = (0..n).map(|g| (g as f32).to_bits()).collect();
        let olds: Vec<u32> = all.clone().map(|g| o32(g, 8)).collect();
        check_exchange_chain(&format!("{d}: atomicExch(float)"), &olds, r.cf[1].to_bits(), cf[1].to_bits(), &ids);
    }
}

#[test]
fn threadfence_last_block_reduction() {
    let (blocks, threads) = (6u32, 64u32);
    let mut rng = Rng(77);
    let src: Vec<u32> = (0..1000).map(|_| rng.word() >> 12).collect();
    let stride = (blocks * threads) as usize;
    let mut want = vec![0u32; blocks as usize];
    for (i, &v) in src.iter().enumerate() {
        let blk = (i % stride) / threads as usize;
        want[blk] = want[blk].wrapping_add(v);
    }
    let total = src.iter().fold(0u32, |s, &v| s.wrapping_add(v));
    for device in common::kernel_devices("threadfence_last_block_reduction") {
        let (partial, count, got) = selftest::prim_threadfence(&device, &src, blocks, threads).unwrap();
        assert_eq!(partial, want, "{device:?}: per-block sums (atomicAdd on __shared__)");
        assert_eq!(got, total, "{device:?}: the last block's total");
        assert_eq!(count, 0, "{device:?}: atomicInc(count, gridDim.x - 1) wraps to 0 after gridDim.x blocks");
    }
}

// ---- float, double, integer intrinsics and conversions ----------------------------------------

/// __fdividef(x, y) = x * rcp.approx.ftz(y) (CUDA math API): 2 ulp for 2^-126 <= |y| <= 2^126;
/// for 2^126 < |y| < 2^128 the reciprocal flushes to zero, so the result is 0 (NaN if x is
/// infinite). `exact`: the emulator, whose reciprocal is the correctly rounded one.
fn check_fdividef(what: &str, x: f32, y: f32, got: f32, exact: bool) {
    let sub = |v: f32| v != 0.0 && v.abs() < f32::MIN_POSITIVE;
    let def = x * ftz(1.0 / ftz(y));
    if x.is_nan() || y.is_nan() {
        assert!(got.is_nan(), "{what}: NaN operand gives {got}");
    } else if y.is_finite() && y.abs() > 2f32.powi(126) {
        if x.is_infinite() {
            assert!(got.is_nan(), "{what}: inf / (|y| > 2^126) is NaN (inf * 0), got {got}");
        } else {
            assert!(got == 0.0, "{what}: |y| > 2^126 gives 0, got {got:e}");
            assert_eq!(got.is_sign_negative(), x.is_sign_negative() != y.is_sign_negative(), "{what}: sign of 0");
        }
    } else if y.is_infinite() || y == 0.0 || x.is_infinite() {
        assert!(same_f32(got, def), "{what}: got {got:e}, want {def:e}");
    } else if sub(x) || sub(y) || sub(def) || def == 0.0 {
        // Subnormal inputs or results: flushed on the emulator; a GPU in non-ftz mode may not.
        if exact {
            assert!(same_f32(got, def), "{what}: got {got:e}, want {def:e} (x * rcp.approx.ftz(y))");
        }
    } else {
        let want = x as f64 / y as f64;
        assert!(within_ulps(got, want, 2.0), "{what}: got {got:e}, want {want:e} within 2 ulp");
        if exact {
            assert!(same_f32(got, def), "{what}: got {got:e}, want {def:e} (x * rcp.approx.ftz(y))");
        }
    }
}

/// __expf(x) = ex2.approx.ftz.f32(x * log2 e): 2 + floor(|1.173 x|) ulp (CUDA programming
/// guide), subnormal results flushed to +0 ("most ... around denormal range are flushed").
fn check_expf(what: &str, x: f32, got: f32, exact: bool) {
    let want = (x as f64).exp();
    let tiny = 2f64.powi(-126);
    if x.is_nan() {
        assert!(got.is_nan(), "{what}: got {got}");
    } else if x == f32::NEG_INFINITY {
        assert_eq!(got.to_bits(), 0, "{what}: exp(-inf) = +0");
    } else if want > f32::MAX as f64 * 1.001 {
        assert_eq!(got, f32::INFINITY, "{what}: overflows");
    } else if want < tiny * 0.999 {
        // Below the normal range: flushed to +0 (ex2.approx.ftz).
        if exact {
            assert_eq!(got.to_bits(), 0, "{what}: e^x = {want:e} is subnormal: flushed to +0, got {got:e}");
        } else {
            assert!(got == 0.0 || within_ulps(got, want, 2.0 + (1.173 * x.abs() as f64).floor()), "{what}: {got:e}");
        }
    } else if want < tiny * 1.001 {
        // At the edge of the normal range either may happen.
    } else {
        let ulps = 2.0 + (1.173 * x.abs() as f64).floor();
        assert!(within_ulps(got, want, ulps), "{what}: got {got:e}, want {want:e} within {ulps} ulp");
        if x != 0.0 && x.abs() < f32::MIN_POSITIVE {
            assert_eq!(got, 1.0, "{what}: a subnormal x gives exactly 1");
        }
    }
}

fn saturate(a: f32) -> f32 {
    if a.is_nan() {
        0.0
    } else {
        a.clamp(0.0, 1.0)
    }
}

/// fminf / fmaxf (what CUDA's float min/max are): a NaN operand yields the other one.
fn fmin_ref(a: f64, b: f64, max: bool) -> f64 {
    if a.is_nan() {
        return b;
    }
    if b.is_nan() {
        return a;
    }
    if (b < a) != max {
        b
    } else {
        a
    }
}
fn same_minmax(got: f64, want: f64) -> bool {
    // The sign of a zero chosen among +0 and -0 is not specified.
    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()) || (got == 0.0 && want == 0.0)
}

#[test]
fn float_intrinsics_match_their_ptx_definitions() {
    let sub = f32::from_bits(0x0001_0000);
    let xs: Vec<f32> = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        1.5,
        -2.75,
        3.0,
        0.1,
        -7e-3,
        1e10,
        -3.5e20,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        sub,
        -f32::from_bits(1),
        f32::MAX,
        -f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        2f32.powi(127),
        -2f32.powi(127),
        1.7e38,
        -88.0,
        -87.0,
        -87.5,
        -100.0,
        -104.0,
        88.0,
        89.0,
        0.999,
        30.0,
        1e-5,
    ];
    let ys: Vec<f32> = vec![
        0.0,
        -0.0,
        1.0,
        -1.5,
        3.0,
        f32::MIN_POSITIVE,
        sub,
        f32::INFINITY,
        f32::NAN,
        2f32.powi(127),
        -1.7e38,
        2f32.powi(126),
        7.0e-3,
    ];
    let (mut x, mut y, mut z) = (vec![], vec![], vec![]);
    for (i, &a) in xs.iter().enumerate() {
        for (j, &b) in ys.iter().enumerate() {
            x.push(a);
            y.push(b);
            z.push(xs[(i * 5 + j) % xs.len()]);
        }
    }
    let mut rng = Rng(31);
    for _ in 0..100 {
        let r = |rng: &mut Rng, s: f32| ((rng.next() % 2_000_001) as f32 / 1e6 - 1.0) * s;
        x.push(r(&mut rng, 90.0));
        y.push(r(&mut rng, 1e3));
        z.push(r(&mut rng, 1e6));
    }
    for device in common::kernel_devices("float_intrinsics_match_their_ptx_definitions") {
        let out = selftest::prim_float(&device, &x, &y, &z).unwrap();
        let exact = !gpu(&device);
        for i in 0..x.len() {
            let (a, b, c) = (x[i], y[i], z[i]);
            let o = &out[i * 12..i * 12 + 12];
            let what = |name: &str| format!("{device:?}: {name}({a:e}, {b:e}, {c:e})");
            let exact_ops: [(&str, f32); 8] = [
                ("__fadd_rn", a + b),
                ("__fsub_rn", a - b),
                ("__fmul_rn", a * b),
                ("__fdiv_rn", a / b),
                ("__fmaf_rn", a.mul_add(b, c)),
                ("__frcp_rn", 1.0 / a),
                ("__fsqrt_rn", a.sqrt()),
                ("__saturatef", saturate(a)),
            ];
            for (k, (name, want)) in exact_ops.iter().enumerate() {
                let ok = same_f32(o[k], *want) || (k == 7 && a == 0.0 && o[k] == 0.0);
                assert!(
                    ok,
                    "{}: got {:e} ({:#010x}), want {want:e} ({:#010x})",
                    what(name),
                    o[k],
                    o[k].to_bits(),
                    want.to_bits()
                );
            }
            check_fdividef(&what("__fdividef"), a, b, o[8], exact);
            check_expf(&what("__expf"), a, o[9], exact);
            for (k, max) in [(10usize, false), (11, true)] {
                let want = fmin_ref(a as f64, b as f64, max);
                assert!(same_minmax(o[k] as f64, want), "{}: got {:e}", what(if max { "max" } else { "min" }), o[k]);
            }
        }
    }
}

#[test]
fn double_intrinsics_and_double_to_half_rounding() {
    let p = |e: i32| 2f64.powi(e);
    let ds: Vec<f64> = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        -3.5,
        7.25,
        1e300,
        -1e300,
        f64::from_bits(1),
        f64::MIN_POSITIVE,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        3.402_823_567_797_336_6e38, // f32::MAX + half an ulp: a tie, rounds to inf
        3.402_823_567_797_336e38,
        1e-46,
        p(-150),
        1.0 + p(-24),          // f32 tie: to even (1.0)
        1.0 + p(-24) + p(-52), // just above: up
        1.0 + p(-11) + p(-40), // f16: above the tie by less than f32 keeps (round to odd)
        1.0 + p(-8) + p(-40),  // bf16: likewise
        -(1.0 + p(-11) + p(-40)),
        p(-25) + p(-60),   // f16 subnormal: above half the smallest subnormal
        p(-134) + p(-200), // bf16 subnormal: likewise
        65520.0,           // f16 tie at the top: inf
        65519.99,
        1.0 + p(-11), // an exact f16 tie: to even
    ];
    let bs: Vec<f64> = vec![0.0, 1.0, -2.5, 1e-300, f64::NAN, f64::INFINITY, 3.0, -0.0];
    let (mut x, mut y, mut z) = (vec![], vec![], vec![]);
    for (i, &a) in ds.iter().enumerate() {
        for (j, &b) in bs.iter().enumerate() {
            x.push(a.to_bits());
            y.push(b.to_bits());
            z.push(ds[(i * 3 + j) % ds.len()].to_bits());
        }
    }
    let mut rng = Rng(41);
    for _ in 0..40 {
        x.push(rng.next());
        y.push(rng.next());
        z.push(rng.next());
    }
    for device in common::kernel_devices("double_intrinsics_and_double_to_half_rounding") {
        let out = selftest::prim_double(&device, &x, &y, &z).unwrap();
        for i in 0..x.len() {
            let (a, b, c) = (f64::from_bits(x[i]), f64::from_bits(y[i]), f64::from_bits(z[i]));
            let o = &out[i * 12..i * 12 + 12];
            let what = |name: &str| format!("{device:?}: {name}({a:e}, {b:e}, {c:e})");
            let g = |k: usize| f64::from_bits(o[k]);
            for (k, name, want) in
                [(0usize, "__dadd_rn", a + b), (1, "__dmul_rn", a * b), (2, "__fma_rn", a.mul_add(b, c))]
            {
                assert!(same_f64(g(k), want), "{}: got {:e}, want {want:e}", what(name), g(k));
            }
            assert!(same_minmax(g(3), fmin_ref(a, b, false)), "{}: got {:e}", what("min(double)"), g(3));
            assert!(same_minmax(g(4), fmin_ref(a, b, true)), "{}: got {:e}", what("max(double)"), g(4));
            let f = f32::from_bits(o[5] as u32);
            assert!(o[5] >> 32 == 0 && same_f32(f, a as f32), "{}: got {f:e}", what("__double2float_rn"));
            let (h, hb) = (f16::from_bits(o[6] as u16), bf16::from_bits(o[7] as u16));
            let (wh, wb) = (f16_of(a), bf16_of(a));
            assert!(
                h.to_bits() == wh.to_bits() || (h.is_nan() && wh.is_nan()),
                "{}: got {h:?} ({:#06x}), want {wh:?} ({:#06x})",
                what("__half(double)"),
                h.to_bits(),
                wh.to_bits()
            );
            assert!(
                hb.to_bits() == wb.to_bits() || (hb.is_nan() && wb.is_nan()),
                "{}: got {hb:?} ({:#06x}), want {wb:?} ({:#06x})",
                what("__nv_bfloat16(double)"),
                hb.to_bits(),
                wb.to_bits()
            );
            let af = a as f32 as f64;
            assert!(same_minmax(g(8), fmin_ref(af, b, false)), "{}: got {:e}", what("min(float, double)"), g(8));
            assert!(same_minmax(g(9), fmin_ref(af, b, true)), "{}: got {:e}", what("max(float, double)"), g(9));
            assert_eq!(o[10], x[i], "{}", what("__double_as_longlong(__longlong_as_double)"));
            let want = (x[i] as i64) as f32;
            assert_eq!(g(11).to_bits(), (want as f64).to_bits(), "{}: {}", what("__ll2float_rn"), x[i] as i64);
        }
    }
}

/// __byte_perm(x, y, s) (CUDA math API): the bytes of y:x numbered 0..7 from x's lowest;
/// result byte n is input byte s<4n+2 : 4n>.
fn byte_perm(x: u32, y: u32, s: u32) -> u32 {
    let input = [
        x as u8,
        (x >> 8) as u8,
        (x >> 16) as u8,
        (x >> 24) as u8,
        y as u8,
        (y >> 8) as u8,
        (y >> 16) as u8,
        (y >> 24) as u8,
    ];
    let mut r = 0u32;
    for n in 0..4 {
        let sel = (s >> (4 * n)) & 7;
        r |= (input[sel as usize] as u32) << (8 * n);
    }
    r
}

/// Position of the least significant set bit, 1-based; 0 for 0 (__ffs / __ffsll).
fn ffs(v: u64) -> u32 {
    if v == 0 {
        0
    } else {
        v.trailing_zeros() + 1
    }
}

#[test]
fn integer_intrinsics_and_min_max() {
    let e: [u32; 12] = [
        0,
        1,
        2,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0xffff_fffe,
        0x8000_0001,
        0x0001_0000,
        0xdead_beef,
        0x1234_5678,
        0x5555_5555,
    ];
    let (mut x, mut y, mut z) = (vec![], vec![], vec![]);
    let mut rng = Rng(55);
    for &a in &e {
        for &b in &e {
            x.push(a);
            y.push(b);
        }
    }
    while x.len() < 256 {
        x.push(rng.word());
        y.push(rng.word());
    }
    // Byte selectors: over the cases every position takes each of the 8 byte numbers; the
    // high half of s (ignored) is random. Each selector's bit 3 stays clear: CUDA documents
    // only s<4n+2 : 4n> (the PTX prmt behind it would replicate the byte's sign there).
    for i in 0..x.len() {
        let sel = (0..4).fold(0u32, |s, n| s | (((i as u32 + n * 3 + n * (i as u32 / 8)) & 7) << (4 * n)));
        z.push(sel | (rng.word() & 0xffff_0000));
    }
    for device in common::kernel_devices("integer_intrinsics_and_min_max") {
        let out = selftest::prim_int(&device, &x, &y, &z).unwrap();
        for i in 0..x.len() {
            let (a, b, c) = (x[i], y[i], z[i]);
            let (big_a, big_b) = ((a as u64) << 32 | b as u64, (b as u64) << 32 | c as u64);
            let (ia, ib, la, lb) = (a as i32, b as i32, big_a as i64, big_b as i64);
            let o = &out[i * 39..i * 39 + 39];
            let w64 = |k: usize| o[k] as u64 | (o[k + 1] as u64) << 32;
            let what = |name: &str| format!("{device:?}: {name} of a={a:#x} b={b:#x} c={c:#x}");
            let singles: [(usize, &str, u32); 17] = [
                (0, "__umulhi", ((a as u64 * b as u64) >> 32) as u32),
                (1, "__mulhi", ((ia as i64 * ib as i64) >> 32) as u32),
                (6, "__popc", a.count_ones()),
                (7, "__popcll", big_a.count_ones()),
                (8, "__clz", a.leading_zeros()),
                (9, "__clzll", big_a.leading_zeros()),
                (10, "__ffs", ffs(a as u64)),
                (11, "__ffsll", ffs(big_a)),
                (12, "__brev", a.reverse_bits()),
                (15, "__byte_perm", byte_perm(a, b, c)),
                (16, "min(int)", ia.min(ib) as u32),
                (17, "max(int)", ia.max(ib) as u32),
                (18, "min(unsigned)", a.min(b)),
                (19, "max(unsigned)", a.max(b)),
                // CUDA's min(int, unsigned) converts the int to unsigned.
                (28, "min(int, unsigned)", a.min(b)),
                (29, "max(int, unsigned)", a.max(b)),
                (38, "__ldg", x[i]),
            ];
            for (k, name, want) in singles {
                assert_eq!(o[k], want, "{}", what(name));
            }
            let doubles: [(usize, &str, u64); 11] = [
                (2, "__umul64hi", ((big_a as u128 * big_b as u128) >> 64) as u64),
                (4, "__mul64hi", ((la as i128 * lb as i128) >> 64) as u64),
                (13, "__brevll", big_a.reverse_bits()),
                (20, "min(long long)", la.min(lb) as u64),
                (22, "max(long long)", la.max(lb) as u64),
                (24, "min(unsigned long long)", big_a.min(big_b)),
                (26, "max(unsigned long long)", big_a.max(big_b)),
                (30, "min(long)", la.min(lb) as u64),
                (32, "max(long)", la.max(lb) as u64),
                (34, "min(unsigned long)", big_a.min(big_b)),
                (36, "max(unsigned long)", big_a.max(big_b)),
            ];
            for (k, name, want) in doubles {
                assert_eq!(w64(k), want, "{} (A={big_a:#x} B={big_b:#x})", what(name));
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Round {
    Nearest,
    Zero,
    Down,
    Up,
}

/// PTX cvt.{rni,rzi,rmi,rpi}.sat.{s32,u32,s64}.f32: round to an integer, then saturate to the
/// destination's range; NaN converts to 0.
fn cvt_sat(f: f32, mode: Round, lo: f64, hi: f64) -> f64 {
    if f.is_nan() {
        return 0.0;
    }
    let v = f as f64;
    let r = match mode {
        Round::Nearest => v.round_ties_even(),
        Round::Zero => v.trunc(),
        Round::Down => v.floor(),
        Round::Up => v.ceil(),
    };
    r.clamp(lo, hi)
}

#[test]
fn conversions_saturate_and_round_as_ptx_cvt() {
    let p = |e: i32| 2f64.powi(e);
    let mut fs: Vec<f32> = vec![
        0.0,
        -0.0,
        0.5,
        1.5,
        2.5,
        -0.5,
        -1.5,
        -2.5,
        0.499_999_97,
        0.999_999_94,
        -0.999_999_94,
        1e-40,
        -1e-40,
        123.456,
        -123.456,
        8_388_609.0,
        2_147_483_520.0, // the largest float below 2^31
        2_147_483_648.0, // 2^31: saturates to INT_MAX, fits unsigned
        -2_147_483_648.0,
        -2_147_483_904.0,
        4_294_967_040.0, // the largest float below 2^32
        4_294_967_296.0,
        9.223_372e18,  // 2^63: saturates (the bound itself, as a float)
        -9.223_372e18, // -2^63: exact
        9.223_371e18,
        1e20,
        -1e20,
        f32::MAX,
        -f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
    ];
    let mut is: Vec<i32> = vec![
        0,
        1,
        -1,
        i32::MAX,
        i32::MIN,
        16_777_217,
        16_777_219,
        -16_777_219,
        33_554_435,
        0x7fff_ff80,
        0x7fff_ffc0,
        -0x7fff_ffc0,
        i32::MIN + 1,
        0x4000_0041,
    ];
    let mut ws: Vec<u64> = vec![
        0,
        u64::MAX, // -1, and a NaN
        i64::MAX as u64,
        i64::MIN as u64,
        (1u64 << 53) + 1,
        (1u64 << 24) + 1,
        (1u64 << 24) + 3,
        ((1i64 << 40) + 1).wrapping_neg() as u64,
        0x7fff_ff80_0000_0001,
        1.0f64.to_bits(),
        (1.0 + p(-24)).to_bits(),
        (1.0 + p(-24) + p(-52)).to_bits(),
        3.402_823_567_797_336_6e38f64.to_bits(),
        3.402_823_567_797_336e38f64.to_bits(),
        1e-46f64.to_bits(),
        1e-45f64.to_bits(),
        p(-150).to_bits(),
        (-0.0f64).to_bits(),
        f64::INFINITY.to_bits(),
        f64::NAN.to_bits(),
        1e300f64.to_bits(),
        1u64, // the smallest double subnormal
    ];
    let mut rng = Rng(66);
    let n = 200;
    while fs.len() < n {
        let w = rng.word();
        fs.push(if w & 1 == 0 { f32::from_bits(w) } else { (w >> 8) as f32 / 64.0 - 131_072.0 });
    }
    while is.len() < n {
        is.push(rng.word() as i32);
    }
    while ws.len() < n {
        ws.push(rng.next());
    }
    for device in common::kernel_devices("conversions_saturate_and_round_as_ptx_cvt") {
        let out = selftest::prim_convert(&device, &fs, &is, &ws).unwrap();
        for i in 0..n {
            let (f, v, w) = (fs[i], is[i], ws[i]);
            let o = &out[i * 18..i * 18 + 18];
            let what = |name: &str| format!("{device:?}: {name} of f={f:e} ({:#010x}) v={v} w={w:#x}", f.to_bits());
            let (imin, imax) = (i32::MIN as f64, i32::MAX as f64);
            let ints: [(usize, &str, u32); 6] = [
                (0, "__float2int_rn", cvt_sat(f, Round::Nearest, imin, imax) as i32 as u32),
                (1, "__float2int_rz", cvt_sat(f, Round::Zero, imin, imax) as i32 as u32),
                (2, "__float2int_rd", cvt_sat(f, Round::Down, imin, imax) as i32 as u32),
                (3, "__float2int_ru", cvt_sat(f, Round::Up, imin, imax) as i32 as u32),
                (4, "__float2uint_rn", cvt_sat(f, Round::Nearest, 0.0, u32::MAX as f64) as u32),
                (5, "__float2uint_rz", cvt_sat(f, Round::Zero, 0.0, u32::MAX as f64) as u32),
            ];
            for (k, name, want) in ints {
                assert_eq!(o[k], want, "{}", what(name));
            }
            // i64: saturate at 2^63 (not representable in f64 as i64::MAX; clamp in f64 then map).
            let r = cvt_sat(f, Round::Nearest, -p(63), p(63));
            let want = if r >= p(63) { i64::MAX } else { r as i64 };
            assert_eq!(o[6] as u64 | (o[7] as u64) << 32, want as u64, "{}", what("__float2ll_rn"));
            assert_eq!(o[8], (v as f32).to_bits(), "{}", what("__int2float_rn"));
            assert_eq!(o[9], (v as u32 as f32).to_bits(), "{}", what("__uint2float_rn"));
            assert_eq!(o[10], (w as i64 as f32).to_bits(), "{}", what("__ll2float_rn"));
            assert_eq!(o[11], f.to_bits(), "{}", what("__float_as_int"));
            assert_eq!(o[12], f.to_bits(), "{}", what("__float_as_uint"));
            assert_eq!(o[13], v as u32, "{}", what("__int_as_float"));
            assert_eq!(o[14], v as u32, "{}", what("__uint_as_float"));
            let d = f64::from_bits(w);
            assert!(
                same_f32(f32::from_bits(o[15]), d as f32),
                "{}: got {:e}",
                what("__double2float_rn"),
                f32::from_bits(o[15])
            );
            assert_eq!(o[16] as u64 | (o[17] as u64) << 32, w, "{}", what("__double_as_longlong"));
        }
    }
}

#[test]
fn make_vector_constructors_and_layouts() {
    // (name, fields, field bytes, CUDA sizeof, CUDA alignof)
    let types: [(&str, usize, usize, u32, u32); selftest::VECTOR_TYPES] = [
        ("float2", 2, 4, 8, 8),
        ("float3", 3, 4, 12, 4),
        ("float4", 4, 4, 16, 16),
        ("double2", 2, 8, 16, 16),
        ("int2", 2, 4, 8, 8),
        ("int3", 3, 4, 12, 4),
        ("int4", 4, 4, 16, 16),
        ("uint2", 2, 4, 8, 8),
        ("uint3", 3, 4, 12, 4),
        ("uint4", 4, 4, 16, 16),
        ("short2", 2, 2, 4, 4),
        ("short4", 4, 2, 8, 8),
        ("ushort2", 2, 2, 4, 4),
        ("ushort4", 4, 2, 8, 8),
        ("char2", 2, 1, 2, 2),
        ("char4", 4, 1, 4, 4),
        ("uchar2", 2, 1, 2, 2),
        ("uchar4", 4, 1, 4, 4),
        ("longlong2", 2, 8, 16, 16),
        ("ulonglong2", 2, 8, 16, 16),
    ];
    let mut rng = Rng(88);
    let mut src: Vec<u32> = (0..4 * selftest::VECTOR_TYPES).map(|_| rng.word()).collect();
    // No NaN in float and double fields (a NaN may be made quiet on its way).
    for t in [0usize, 1, 2] {
        for j in 0..4 {
            src[4 * t + j] &= 0xbfff_ffff;
        }
    }
    src[4 * 3 + 1] &= 0xbfff_ffff;
    src[4 * 3 + 3] &= 0xbfff_ffff;
    for device in common::kernel_devices("make_vector_constructors_and_layouts") {
        let out = selftest::prim_make_vectors(&device, &src).unwrap();
        for (t, &(name, fields, bytes, size, align)) in types.iter().enumerate() {
            let slot = &out[32 * t..32 * t + 32];
            let mut want = Vec::new();
            for j in 0..fields {
                let v: u64 = if bytes == 8 {
                    src[4 * t + 2 * j] as u64 | (src[4 * t + 2 * j + 1] as u64) << 32
                } else {
                    src[4 * t + j] as u64
                };
                want.extend_from_slice(&v.to_le_bytes()[..bytes]);
            }
            assert_eq!(&slot[..want.len()], &want[..], "{device:?}: make_{name} fields in order");
            assert!(slot[want.len()..24].iter().all(|&b| b == 0xa5), "{device:?}: make_{name} wrote past its fields");
            assert_eq!(u32::from_le_bytes(slot[24..28].try_into().unwrap()), size, "{device:?}: sizeof({name})");
            assert_eq!(u32::from_le_bytes(slot[28..32].try_into().unwrap()), align, "{device:?}: alignof({name})");
        }
    }
}

// ---- __half and __nv_bfloat16 -------------------------------------------------------------------

/// IEEE NaN: all-ones exponent, nonzero significand.
fn f16_is_nan(bits: u16) -> bool {
    (bits >> 10) & 0x1f == 0x1f && bits & 0x3ff != 0
}
fn bf16_is_nan(bits: u16) -> bool {
    (bits >> 7) & 0xff == 0xff && bits & 0x7f != 0
}

/// The comparison word of `selftest_prim_half` for operands p, q (exact in f64).
fn compare_word(p: f64, q: f64, p_nan: bool, q_nan: bool) -> u32 {
    let bits = [
        p == q,    // ==  (__heq: ordered)
        !(p == q), // !=  (__hneu: unordered)
        p < q,
        p <= q,
        p > q,
        p >= q,
        p == q,         // __heq
        p < q || p > q, // __hne: ordered, false with a NaN
        !(p == q),      // __hneu
        p < q,
        p <= q,
        p > q,
        p >= q,
        p_nan,
        q_nan,
    ];
    bits.iter().enumerate().fold(0, |w, (k, &b)| w | (b as u32) << k)
}

#[test]
fn half_and_bfloat16_operators_round_to_their_type() {
    let e16: [u16; 19] = [
        0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00, 0x3c01, 0x3555, 0x7bff, 0xfbff, 0x7c00, 0xfc00,
        0x7e00, 0x7c01, 0x5640, 0x1400, 0x0200,
    ];
    let eb: [u16; 19] = [
        0x0000, 0x8000, 0x0001, 0x8001, 0x007f, 0x0080, 0x3f80, 0xbf80, 0x3f81, 0x3eab, 0x7f7f, 0xff7f, 0x7f80, 0xff80,
        0x7fc0, 0x7f81, 0x42c8, 0x3a80, 0x0040,
    ];
    let p = |e: i32| 2f32.powi(e);
    let xe: [f32; 12] = [
        65520.0,
        65519.0,
        1e-8,
        p(-25),
        f32::NAN,
        f32::INFINITY,
        -0.0,
        3.0e38,
        1.0 + p(-8),
        1.0 + p(-8) + p(-23),
        1.0 + p(-11),
        -2.5,
    ];
    let (mut ha, mut hb, mut ba, mut bb, mut x) = (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..e16.len() {
        for j in 0..e16.len() {
            ha.push(f16::from_bits(e16[i]));
            hb.push(f16::from_bits(e16[j]));
            ba.push(bf16::from_bits(eb[i]));
            bb.push(bf16::from_bits(eb[j]));
        }
    }
    let mut rng = Rng(99);
    while ha.len() < 420 {
        // Random finite values of moderate range, so that products and quotients round.
        let r = |rng: &mut Rng| (rng.word() & 0x7fff) as u16 % 0x7800 | (rng.word() as u16 & 0x8000);
        ha.push(f16::from_bits(r(&mut rng)));
        hb.push(f16::from_bits(r(&mut rng)));
        // bf16: exponents around 1 (products and quotients stay finite), either sign.
        ba.push(bf16::from_bits((r(&mut rng) >> 2 | 0x3000) ^ (rng.word() as u16 & 0x8000)));
        bb.push(bf16::from_bits((r(&mut rng) >> 2 | 0x3000) ^ (rng.word() as u16 & 0x8000)));
    }
    for i in 0..ha.len() {
        x.push(if i < xe.len() { xe[i] } else { f32::from_bits(rng.word()) });
    }
    for device in common::kernel_devices("half_and_bfloat16_operators_round_to_their_type") {
        let r = selftest::prim_half(&device, &ha, &hb, &ba, &bb, &x).unwrap();
        for i in 0..ha.len() {
            // f16 (k0 = 0) and bf16 (k0 = 10) arithmetic.
            for (k0, pb, qb, round, neg) in [
                (
                    0usize,
                    ha[i].to_bits(),
                    hb[i].to_bits(),
                    &(|d: f64| f16_of(d).to_f32()) as &dyn Fn(f64) -> f32,
                    f16::from_bits(ha[i].to_bits() ^ 0x8000).to_f32(),
                ),
                (
                    10,
                    ba[i].to_bits(),
                    bb[i].to_bits(),
                    &|d: f64| bf16_of(d).to_f32(),
                    bf16::from_bits(ba[i].to_bits() ^ 0x8000).to_f32(),
                ),
            ] {
                let (pv, qv) = if k0 == 0 {
                    (f16::from_bits(pb).to_f64(), f16::from_bits(qb).to_f64())
                } else {
                    (bf16::from_bits(pb).to_f64(), bf16::from_bits(qb).to_f64())
                };
                let ty = if k0 == 0 { "__half" } else { "__nv_bfloat16" };
                let want = [round(pv + qv), round(pv - qv), round(pv * qv), round(pv / qv), neg];
                let names = ["+", "-", "*", "/", "unary -"];
                let fns = ["__hadd", "__hsub", "__hmul", "__hdiv", "__hneg"];
                for k in 0..5 {
                    for (slot, name) in [(k, names[k]), (k + 5, fns[k])] {
                        let got = r.arith[i * 20 + k0 + slot];
                        let mut ok = same_f32(got, want[k]);
                        if !ok && k == 3 && gpu(&device) {
                            // CUDA's __hdiv goes through an approximate reciprocal: 1 ulp.
                            ok = if k0 == 0 {
                                (f16::from_f32(got).to_bits() as i32 - f16::from_f32(want[k]).to_bits() as i32).abs()
                                    <= 1
                            } else {
                                (bf16::from_f32(got).to_bits() as i32 - bf16::from_f32(want[k]).to_bits() as i32).abs()
                                    <= 1
                            };
                        }
                        assert!(
                            ok,
                            "{device:?}: {ty} {name} of {pb:#06x}, {qb:#06x} ({pv:e}, {qv:e}): got {got:e}, want {:e}",
                            want[k]
                        );
                    }
                }
                let (pn, qn) =
                    if k0 == 0 { (f16_is_nan(pb), f16_is_nan(qb)) } else { (bf16_is_nan(pb), bf16_is_nan(qb)) };
                let want = compare_word(pv, qv, pn, qn);
                let got = r.cmp[i * 2 + k0 / 10];
                assert_eq!(got, want, "{device:?}: {ty} comparisons / __hisnan of {pb:#06x}, {qb:#06x} (bits: ==, !=, <, <=, >, >=, __heq, __hne, __hneu, __hlt, __hle, __hgt, __hge, __hisnan p, q)");
            }
            // Bit-exact moves, packing, and conversions from float.
            let (a, b, c, d, xf) = (ha[i], hb[i], ba[i], bb[i], x[i]);
            let same16 = |g: f16, w: f16| g.to_bits() == w.to_bits() || (xf.is_nan() && g.is_nan() && w.is_nan());
            let sameb = |g: bf16, w: bf16| g.to_bits() == w.to_bits() || (xf.is_nan() && g.is_nan() && w.is_nan());
            let want16 =
                [a, b, a, a, a, a, f16::from_f32(xf), f16::from_f32(xf), f16::from_f32(-xf), f16::from_f32(xf), a, a];
            let names16 = [
                "__low2half(__halves2half2)",
                "__high2half(__halves2half2)",
                "__half2half2.x",
                "__half2half2.y",
                "__ushort_as_half(__half_as_ushort)",
                "__short_as_half(__half_as_short)",
                "__float2half",
                "__float22half2_rn.x",
                "__float22half2_rn.y",
                "__half(float)",
                "__low2half(__half2half2)",
                "__half_raw round trip",
            ];
            for k in 0..12 {
                let g = r.bits16[i * 12 + k];
                let exact_move = k < 6 || k >= 10;
                let ok = if exact_move { g.to_bits() == want16[k].to_bits() } else { same16(g, want16[k]) };
                assert!(
                    ok,
                    "{device:?}: {} of a={:#06x} b={:#06x} x={xf:e}: got {:#06x}, want {:#06x}",
                    names16[k],
                    a.to_bits(),
                    b.to_bits(),
                    g.to_bits(),
                    want16[k].to_bits()
                );
            }
            let wantb = [
                c,
                d,
                c,
                c,
                c,
                c,
                bf16::from_f32(xf),
                bf16::from_f32(xf),
                bf16::from_f32(-xf),
                bf16::from_f32(xf),
                c,
                c,
            ];
            for k in 0..12 {
                let g = r.bitsb[i * 12 + k];
                let exact_move = k < 6 || k >= 10;
                let ok = if exact_move { g.to_bits() == wantb[k].to_bits() } else { sameb(g, wantb[k]) };
                assert!(ok, "{device:?}: bf16 helper {k} (see the kernel) of c={:#06x} d={:#06x} x={xf:e}: got {:#06x}, want {:#06x}", c.to_bits(), d.to_bits(), g.to_bits(), wantb[k].to_bits());
            }
            let wantf = [
                a.to_f32(),
                a.to_f32(),
                b.to_f32(),
                a.to_f32(),
                b.to_f32(),
                a.to_f32(),
                c.to_f32(),
                c.to_f32(),
                d.to_f32(),
                c.to_f32(),
                d.to_f32(),
                c.to_f32(),
            ];
            for k in 0..12 {
                let g = r.floats[i * 12 + k];
                assert!(same_f32(g, wantf[k]), "{device:?}: to-float helper {k} (see the kernel) of a={:#06x} b={:#06x} c={:#06x} d={:#06x}: got {g:e}, want {:e}", a.to_bits(), b.to_bits(), c.to_bits(), d.to_bits(), wantf[k]);
            }
        }
    }
}
