//! Integer building blocks (`kernels/radix_sort.cu`): a stable radix sort of row numbers by
//! a u32 key and an exclusive prefix sum. Crate-internal plumbing: k-means sorts the rows
//! by entry with it and turns its histogram into segment offsets.

use crate::device::{BackendKind, Device, DeviceBuffer};
use crate::error::{Error, Result};
use crate::kernels::constants;
use crate::kernels::launch::LaunchConfig;

/// Threads per block of every kernel of radix_sort.cu (`RS_THREADS`).
const THREADS: u32 = constants::radix_sort::RS_THREADS;
/// Bits of the key sorted per pass (`RS_RADIX_BITS`).
const RADIX_BITS: u32 = constants::radix_sort::RS_RADIX_BITS;
/// Digits per pass (`RS_RADIX`).
const RADIX: usize = 1 << RADIX_BITS;
/// Rows per block of the sort kernels (`RS_CHUNK`).
const CHUNK: usize = (constants::radix_sort::RS_THREADS * constants::radix_sort::RS_TILES) as usize;
/// Most keys a sort takes: the kernels' row arithmetic stays in u32 with room for a block.
pub(crate) const MAX_KEYS: usize = 1 << 31;

declare_kernels! {
    /// C: `scan_exclusive(const unsigned* src, unsigned* dst, unsigned len)` — one block.
    fn scan_exclusive(src: input u32, dst: output u32, len: scalar u32);
    /// C: `radix_sort_counts(const unsigned* keys, unsigned* counts, unsigned n, unsigned shift)`
    fn radix_sort_counts(keys: input u32, counts: output u32, n: scalar u32, shift: scalar u32);
    /// C: `radix_sort_scatter(const unsigned* keys_in, const unsigned* rows_in,
    ///     const unsigned* offsets, unsigned* keys_out, unsigned* rows_out, unsigned n,
    ///     unsigned shift, unsigned first_pass)`
    fn radix_sort_scatter(keys_in: input u32, rows_in: input u32, offsets: input u32, keys_out: output u32,
        rows_out: output u32, n: scalar u32, shift: scalar u32, first_pass: scalar u32);
}

/// The row numbers `0..n` of `keys` (`[n]`, every key `< key_bound`) sorted by key, stable
/// (equal keys in increasing row order): one `radix_sort_counts` / scan /
/// `radix_sort_scatter` round per 8 bits of `key_bound − 1` (at least one). A key `≥
/// key_bound` is not checked here: the caller guarantees the bound (its bits beyond the
/// sorted ones are ignored).
pub(crate) fn sort_rows_by_key(
    device: &Device,
    keys: &DeviceBuffer<u32>,
    key_bound: usize,
) -> Result<DeviceBuffer<u32>> {
    device.check_same("keys", keys.device())?;
    let n = keys.len();
    if n > MAX_KEYS {
        return Err(Error::invalid("keys", format!("{n} keys; at most {MAX_KEYS}")));
    }
    if device.kind() == BackendKind::Cpu {
        let k = keys.download()?;
        let mut rows: Vec<u32> = (0..n as u32).collect();
        rows.sort_by_key(|&r| k[r as usize]); // stable
        return device.upload(&rows);
    }
    let bits = if key_bound <= 1 { 0 } else { usize::BITS - (key_bound - 1).leading_zeros() };
    let passes = bits.div_ceil(RADIX_BITS).max(1);
    let blocks = n.div_ceil(CHUNK);
    let cfg = LaunchConfig::for_items(n, CHUNK, THREADS, 0)?;
    let mut counts = device.zeros::<u32>(RADIX * blocks)?;
    let (mut keys_a, mut rows_a) = (device.zeros::<u32>(n)?, device.zeros::<u32>(n)?);
    let (mut keys_b, mut rows_b) = (device.zeros::<u32>(n)?, device.zeros::<u32>(n)?);
    for pass in 0..passes {
        let shift = pass * RADIX_BITS;
        {
            let keys_in = if pass == 0 { keys } else { &keys_a };
            radix_sort_counts(device, &cfg, keys_in, &mut counts, n as u32, shift)?;
            let offsets = exclusive_scan(device, &counts)?;
            radix_sort_scatter(
                device,
                &cfg,
                keys_in,
                &rows_a,
                &offsets,
                &mut keys_b,
                &mut rows_b,
                n as u32,
                shift,
                u32::from(pass == 0),
            )?;
        }
        std::mem::swap(&mut keys_a, &mut keys_b);
        std::mem::swap(&mut rows_a, &mut rows_b);
    }
    Ok(rows_a)
}

/// `[len + 1]`: the exclusive prefix sums of `src` (`[len]`) and, last, the total (u32,
/// wrapping; callers sum counts whose total fits). One block: meant for histograms.
pub(crate) fn exclusive_scan(device: &Device, src: &DeviceBuffer<u32>) -> Result<DeviceBuffer<u32>> {
    device.check_same("src", src.device())?;
    if src.len() > MAX_KEYS {
        return Err(Error::invalid("src", format!("{} words; at most {MAX_KEYS}", src.len())));
    }
    if device.kind() == BackendKind::Cpu {
        let mut acc = 0u32;
        let mut out = Vec::with_capacity(src.len() + 1);
        for v in src.download()? {
            out.push(acc);
            acc = acc.wrapping_add(v);
        }
        out.push(acc);
        return device.upload(&out);
    }
    let mut dst = device.zeros::<u32>(src.len() + 1)?;
    scan_exclusive(device, &LaunchConfig::linear(1, THREADS, 0), src, &mut dst, src.len() as u32)?;
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift32 keys below `bound`, skewed towards a few values for some cases.
    fn keys(n: usize, bound: u32, seed: u32) -> Vec<u32> {
        let mut s = seed | 1;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                if i % 3 == 0 {
                    s % bound.div_ceil(8)
                } else {
                    s % bound
                }
            })
            .collect()
    }

    #[test]
    fn sort_is_stable_and_matches_a_plain_sort() {
        // Key bounds for one, two and three 8-bit passes; sizes around the 2048-row block.
        let cases = [(1usize, 1u32), (5, 1), (2047, 3), (2049, 256), (3000, 257), (5000, 70_000), (4097, 1 << 24)];
        for device in [Device::emulator(), Device::cpu()] {
            for (c, &(n, bound)) in cases.iter().enumerate() {
                let k = keys(n, bound, 7 + c as u32);
                let mut want: Vec<u32> = (0..n as u32).collect();
                want.sort_by_key(|&r| k[r as usize]);
                let got = sort_rows_by_key(&device, &device.upload(&k).unwrap(), bound as usize).unwrap();
                assert_eq!(got.download().unwrap(), want, "n = {n}, bound = {bound} on {}", device.name());
            }
            let empty = sort_rows_by_key(&device, &device.upload::<u32>(&[]).unwrap(), 4).unwrap();
            assert_eq!(empty.len(), 0);
        }
    }

    #[test]
    fn exclusive_scan_ends_with_the_total() {
        for device in [Device::emulator(), Device::cpu()] {
            for len in [0usize, 1, 255, 256, 257, 1000] {
                let src: Vec<u32> = (0..len as u32).map(|i| (i * 37) % 11).collect();
                let mut want = vec![0u32];
                for &v in &src {
                    want.push(want.last().unwrap() + v);
                }
                let got = exclusive_scan(&device, &device.upload(&src).unwrap()).unwrap().download().unwrap();
                assert_eq!(got, want, "len = {len} on {}", device.name());
            }
        }
    }
}
