//! Little-endian bit packing of fixed-width unsigned values: value `i` occupies bits
//! `[i·b, (i+1)·b)` of the byte stream, bit `j` of the stream being bit `j % 8` of byte
//! `j / 8` (least significant first). The last byte's unused high bits are zero.

/// Bytes holding `count` values of `bits` bits, or None on overflow.
pub(crate) fn packed_len(count: u64, bits: u32) -> Option<u64> {
    count.checked_mul(bits as u64).map(|b| b.div_ceil(8))
}

/// Appends `values`, each `< 2^bits` (`1 ≤ bits ≤ 32`; higher bits are masked off; the
/// caller validates), to `out`.
pub(crate) fn pack(values: impl IntoIterator<Item = u32>, bits: u32, out: &mut Vec<u8>) {
    debug_assert!((1..=32).contains(&bits));
    let mask = if bits == 32 { u64::from(u32::MAX) } else { (1u64 << bits) - 1 };
    let (mut acc, mut filled) = (0u64, 0u32);
    for v in values {
        acc |= (u64::from(v) & mask) << filled;
        filled += bits;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
}

/// Reads `count` values of `bits` bits from `bytes`, which must hold at least
/// [`packed_len`] bytes (the caller checks; a short input ends early).
pub(crate) fn unpack(bytes: &[u8], bits: u32, count: usize) -> Vec<u32> {
    debug_assert!((1..=32).contains(&bits));
    let mask = if bits == 32 { u64::from(u32::MAX) } else { (1u64 << bits) - 1 };
    let mut out = Vec::with_capacity(count);
    let (mut acc, mut filled) = (0u64, 0u32);
    let mut input = bytes.iter();
    while out.len() < count {
        while filled < bits {
            let Some(&b) = input.next() else { return out };
            acc |= u64::from(b) << filled;
            filled += 8;
        }
        out.push((acc & mask) as u32);
        acc >>= bits;
        filled -= bits;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_width() {
        for bits in [1, 2, 7, 8, 12, 13, 16, 31, 32] {
            let max = if bits == 32 { u32::MAX } else { (1u32 << bits) - 1 };
            let values: Vec<u32> =
                (0..100u32).map(|i| i.wrapping_mul(2_654_435_761) & max).chain([0, max, max / 2]).collect();
            let mut bytes = Vec::new();
            pack(values.iter().copied(), bits, &mut bytes);
            assert_eq!(bytes.len() as u64, packed_len(values.len() as u64, bits).unwrap(), "bits {bits}");
            assert_eq!(unpack(&bytes, bits, values.len()), values, "bits {bits}");
        }
    }

    #[test]
    fn layout_is_lsb_first() {
        let mut bytes = Vec::new();
        // 3-bit values 0b101, 0b011, 0b111: stream bits 101 110 111 (LSB first) → bytes.
        pack([0b101, 0b011, 0b111], 3, &mut bytes);
        assert_eq!(bytes, vec![0b1101_1101, 0b0000_0001]);
        let mut bytes = Vec::new();
        pack([0xABC, 0x123], 12, &mut bytes);
        assert_eq!(bytes, vec![0xBC, 0x3A, 0x12]);
    }

    #[test]
    fn a_short_input_ends_early() {
        assert_eq!(unpack(&[0xFF], 4, 5), vec![15, 15]);
        assert_eq!(packed_len(u64::MAX, 2), None);
    }
}
