//! The FSQ code of a latent as a count of thresholds (host side of kernels/fsq.cu).
//!
//! The reference map `z → code` ([`reference::fsq::quantize_value`]) is monotone
//! non-decreasing in `z`: an f32 addition, a correctly rounded tanh, a product with a
//! positive constant, a subtraction and round-half-even are each monotone. So for every
//! code `c` above the code of −∞ there is a smallest non-NaN f32 `t_c` with
//! `code(t_c) ≥ c`, and for every non-NaN `z`
//!
//! ```text
//! code(z) = code(−∞) + #{ c : t_c ≤ z }
//! ```
//!
//! [`DimThresholds::new`] finds the `t_c` once per dimension by bisection over the
//! totally ordered f32 values (−∞ … −0, +0 … +∞), evaluating the reference formula
//! itself; the kernel then needs only compares. ±0 compare equal, so the count cannot
//! tell them apart: that is correct because `code(−0) = code(+0)` (`−0 + shift` and
//! `+0 + shift` are the same f32), which the tests check.

use crate::reference;
use crate::reference::fsq::DimConstants;

/// One dimension's thresholds: `code(z) = lowest + #{ i : thresholds[i] ≤ z }`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DimThresholds {
    /// The code of −∞, the smallest code of this dimension.
    pub lowest: i32,
    /// `thresholds[i]` = the smallest f32 whose code is ≥ `lowest + 1 + i`, for every
    /// code up to the code of +∞: non-decreasing, each in (−∞, +∞], never NaN.
    pub thresholds: Vec<f32>,
}

/// The position of a non-NaN f32 in the total order −∞ < … < −0 < +0 < … < +∞, as
/// an unsigned integer (negative values: the bits inverted; others: the sign bit set).
fn order_key(x: f32) -> u32 {
    debug_assert!(!x.is_nan());
    let bits = x.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

/// The inverse of [`order_key`].
fn from_order_key(key: u32) -> f32 {
    f32::from_bits(if key >> 31 == 1 { key & !(1 << 31) } else { !key })
}

impl DimThresholds {
    pub(crate) fn new(c: &DimConstants) -> Self {
        let code = |z: f32| reference::fsq::quantize_value(z, c).expect("not NaN");
        let lowest = code(f32::NEG_INFINITY);
        let highest = code(f32::INFINITY);
        let mut thresholds = Vec::with_capacity(highest.saturating_sub(lowest).max(0) as usize);
        // Invariant: code(from_order_key(lo)) < target ≤ code(from_order_key(hi)).
        // The previous threshold's predecessor is a valid `lo` for the next target.
        let mut lo = order_key(f32::NEG_INFINITY);
        for target in lowest + 1..=highest {
            let mut hi = order_key(f32::INFINITY);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if code(from_order_key(mid)) >= target {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            thresholds.push(from_order_key(hi));
            lo = hi - 1;
        }
        DimThresholds { lowest, thresholds }
    }

    /// The code the kernel computes: `lowest` plus the number of thresholds ≤ `z`.
    #[cfg(test)]
    pub(crate) fn code(&self, z: f32) -> Option<i32> {
        (!z.is_nan()).then(|| self.lowest + self.thresholds.iter().filter(|&&t| t <= z).count() as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::fsq::{dim_constants, quantize_value};

    /// Levels 2..=17 and a few large ones, up to the kernel's limit of one level of 513.
    fn levels() -> impl Iterator<Item = u32> {
        (2..=17).chain([31, 64, 127, 255, 256, 500, 512, 513])
    }

    /// A small deterministic generator (xorshift64*), for random f32 bit patterns.
    fn random_bits(seed: u64) -> impl Iterator<Item = u32> {
        let mut s = seed | 1;
        std::iter::repeat_with(move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
        })
    }

    fn check(level: u32, t: &DimThresholds, z: f32) {
        let c = dim_constants(level);
        assert_eq!(t.code(z), quantize_value(z, &c), "level {level}, z = {z:e} ({:#010x})", z.to_bits());
    }

    #[test]
    fn order_key_is_the_total_order_of_f32() {
        let seq = [f32::NEG_INFINITY, f32::MIN, -1.0, -f32::MIN_POSITIVE, -1e-45, -0.0, 0.0, 1e-45, 1.0, f32::MAX];
        for w in seq.windows(2) {
            assert!(order_key(w[0]) < order_key(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(order_key(-0.0) + 1, order_key(0.0));
        assert_eq!(order_key(f32::INFINITY) - order_key(f32::MAX), 1);
        for bits in random_bits(7).take(10_000).chain([0, 1 << 31, 0x7f80_0000, 0xff80_0000]) {
            let x = f32::from_bits(bits);
            if !x.is_nan() {
                assert_eq!(from_order_key(order_key(x)).to_bits(), bits);
            }
        }
    }

    #[test]
    fn thresholds_cover_exactly_the_nominal_codes() {
        // Within the kernel's limit every level's codes are exactly
        // −(L div 2) ..= L − 1 − (L div 2): L − 1 thresholds, all finite.
        for level in 2..=513 {
            let t = DimThresholds::new(&dim_constants(level));
            let hw = (level / 2) as i32;
            assert_eq!(t.lowest, -hw, "level {level}");
            assert_eq!(t.thresholds.len() as u32, level - 1, "level {level}");
            assert!(t.thresholds.iter().all(|x| x.is_finite()), "level {level}");
            assert!(t.thresholds.windows(2).all(|w| w[0] <= w[1]), "level {level}");
        }
    }

    #[test]
    fn count_reproduces_quantize_value_around_every_threshold() {
        for level in levels() {
            let t = DimThresholds::new(&dim_constants(level));
            for &x in &t.thresholds {
                let k = order_key(x);
                for d in 0..=3u32 {
                    check(level, &t, from_order_key(k - d));
                    if k + d <= order_key(f32::INFINITY) {
                        check(level, &t, from_order_key(k + d));
                    }
                }
            }
        }
    }

    #[test]
    fn count_reproduces_quantize_value_on_special_values() {
        let specials = [
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::from_bits(1),
            -f32::from_bits(1),
            f32::from_bits(0x007f_ffff),
            -f32::from_bits(0x007f_ffff),
            1e-30,
            -1e-30,
            1e30,
            -1e30,
            0.5,
            -0.5,
        ];
        for level in levels() {
            let c = dim_constants(level);
            let t = DimThresholds::new(&c);
            assert_eq!(quantize_value(-0.0, &c), quantize_value(0.0, &c), "level {level}: ±0 differ");
            for &z in &specials {
                check(level, &t, z);
            }
            // Subnormals, evenly over their bit patterns, both signs.
            for bits in (1..0x0080_0000u32).step_by(4099) {
                check(level, &t, f32::from_bits(bits));
                check(level, &t, -f32::from_bits(bits));
            }
            assert_eq!(t.code(f32::NAN), None);
        }
    }

    #[test]
    fn count_reproduces_quantize_value_on_random_bit_patterns() {
        for level in levels() {
            let t = DimThresholds::new(&dim_constants(level));
            for bits in random_bits(level as u64).take(20_000) {
                check(level, &t, f32::from_bits(bits));
            }
            // And random values where the codes change, |z| < 8.
            for bits in random_bits(1000 + level as u64).take(20_000) {
                check(level, &t, (bits as f32 / u32::MAX as f32 - 0.5) * 16.0);
            }
        }
    }
}
