//! The stable radix sort and scan of kernels/radix_sort.cu, through the centroid update
//! that sorts rows by entry before averaging them (`CentroidKernel::Sorted`). Each entry's
//! members are summed in the order the sort leaves them, and the values are chosen so that
//! any other order than ascending row order gives another sum: the means equal the
//! reference's bit for bit only when the sort is stable. Keys of 1, 9 and 17 bits take one,
//! two and three 8-bit passes; row counts are not multiples of the sort's 2048-row chunks.

mod common;

use tessera::reference::kmeans as reference;
use tessera::{update_centroids, CentroidKernel};

/// Rows whose members cancel only in row order: entry e gets, in row order, 1e30, 1, −1e30
/// (sum 0 in order; 1 if the last two swap) and then small distinct values.
fn order_sensitive(n: usize, k: usize) -> (Vec<f32>, Vec<u32>) {
    let indices: Vec<u32> = (0..n as u32).map(|r| (r.wrapping_mul(2654435761) >> 5) % k as u32).collect();
    let mut seen = vec![0usize; k];
    let values = indices
        .iter()
        .enumerate()
        .map(|(r, &e)| {
            let i = seen[e as usize];
            seen[e as usize] += 1;
            match i {
                0 => 1e30,
                1 => 1.0 + r as f32 * 1e-3,
                2 => -1e30,
                _ => (r % 97) as f32 * 0.25,
            }
        })
        .collect();
    (values, indices)
}

#[test]
fn the_sort_is_stable_over_one_two_and_three_passes() {
    for device in common::kernel_devices("radix_sort") {
        for (n, k) in [(3001usize, 1usize), (5003, 300), (4099, 70_000), (2048, 257)] {
            let (values, indices) = order_sensitive(n, k);
            let reseed: Vec<u32> = (0..k).map(|e| (e % n) as u32).collect();
            let (want, counts) = reference::means(&values, 1, &indices, k, &reseed);
            let got = update_centroids(
                &device,
                &device.upload(&values).unwrap(),
                1,
                &device.upload(&indices).unwrap(),
                k,
                &reseed,
                CentroidKernel::Sorted,
            )
            .unwrap();
            let ctx = format!("{} n = {n}, k = {k}", device.name());
            assert_eq!(got.counts, counts, "{ctx}: counts (the scan)");
            assert_eq!(got.centroids.download().unwrap(), want, "{ctx}: means (the sort's order)");
        }
    }
}

/// Determinism: on every kernel device, the sorted centroid update (counts, scan, one to
/// three sort passes over 2048-row blocks whose scatter order is fixed by the scanned
/// offsets, not by which block runs first) runs three times on the same order-sensitive
/// input and gives the same counts and the same centroid bits, which are also the Cpu
/// backend's (the reference's, as `the_sort_is_stable_over_one_two_and_three_passes`
/// requires). f32 and bf16 data (the sort itself is of u32 keys).
#[test]
fn reruns_are_bit_identical() {
    fn same<T: tessera::FloatElement>(device: &tessera::Device, n: usize, k: usize) {
        let (values, indices) = order_sensitive(n, k);
        let values: Vec<T> = values.iter().map(|&v| T::from_f32(v)).collect();
        let reseed: Vec<u32> = (0..k).map(|e| (e % n) as u32).collect();
        let run = |device: &tessera::Device| {
            let got = update_centroids(
                device,
                &device.upload(&values).unwrap(),
                1,
                &device.upload(&indices).unwrap(),
                k,
                &reseed,
                CentroidKernel::Sorted,
            )
            .unwrap();
            let bits: Vec<u32> = got.centroids.download().unwrap().iter().map(|x| x.to_f32().to_bits()).collect();
            (got.counts, bits)
        };
        let ctx = format!("{:?} on {} n = {n}, k = {k}", T::DTYPE, device.name());
        let first = run(device);
        for r in 2..=3 {
            let again = run(device);
            assert_eq!(first.0, again.0, "{ctx}: counts differ in run {r}");
            assert_eq!(first.1, again.1, "{ctx}: means differ in run {r}");
        }
        assert_eq!(first, run(&tessera::Device::cpu()), "{ctx}: differs from the Cpu backend");
    }
    for device in common::kernel_devices("radix_sort") {
        for (n, k) in [(9001usize, 1usize), (7003, 300), (6099, 70_000)] {
            same::<f32>(&device, n, k);
        }
        same::<half::bf16>(&device, 7003, 300);
    }
}
