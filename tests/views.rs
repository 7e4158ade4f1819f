//! Views: ops read and write part of a buffer in place — exactly the viewed range, at any
//! offset (16-byte aligned or not) — and bad ranges are typed errors.

mod common;

use half::f16;
use tessera::{reference, BinaryQuantizer, Codebook, Device, Error, Fsq, FsqKernel, Metric, SearchOptions, SearchPath};

fn latents(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1201) as f32 / 300.0 - 2.0).collect()
}

fn devices() -> Vec<Device> {
    let mut d = common::kernel_devices("views");
    d.push(Device::cpu());
    d
}

#[test]
fn fsq_reads_and_writes_only_the_viewed_rows() {
    let levels = [8u32, 5, 5, 5];
    let fsq = Fsq::new(&levels).unwrap();
    let (d, n) = (4usize, 300usize);
    // Offsets 1 and 3 elements: the views start off any 16-byte boundary.
    for (skip, pad) in [(0usize, 0usize), (1, 2), (3, 5)] {
        let all = latents((n + skip + pad) * d);
        let rows = &all[skip * d..(skip + n) * d];
        let (mut rc, mut rv, mut ri) = (vec![0; n * d], vec![0f32; n * d], vec![0u32; n]);
        reference::fsq::quantize(&levels, rows, &mut rc, &mut rv, &mut ri).unwrap();
        for device in devices() {
            for kernel in [FsqKernel::Simple, FsqKernel::Tiled] {
                let z = device.upload(&all).unwrap();
                // Outputs in the middle of larger buffers filled with a sentinel.
                let mut codes = device.upload(&vec![-77i32; (n + 3) * d]).unwrap();
                let mut values = device.upload(&vec![9.5f32; (n + 1) * d + 1]).unwrap();
                let mut indices = device.upload(&vec![u32::MAX; n + 7]).unwrap();
                fsq.using(kernel)
                    .quantize_into(
                        &device,
                        z.view(skip * d..(skip + n) * d).unwrap(),
                        codes.view_mut(d..(n + 1) * d).unwrap(),
                        values.view_mut(1..n * d + 1).unwrap(),
                        indices.view_mut(5..n + 5).unwrap(),
                    )
                    .unwrap();
                let ctx = format!("{kernel:?} on {}, view at row {skip}", device.name());
                let (codes, values, indices) =
                    (codes.download().unwrap(), values.download().unwrap(), indices.download().unwrap());
                assert_eq!(&codes[d..(n + 1) * d], &rc[..], "{ctx}: codes");
                assert_eq!(&values[1..n * d + 1], &rv[..], "{ctx}: values");
                assert_eq!(&indices[5..n + 5], &ri[..], "{ctx}: indices");
                assert!(codes[..d].iter().chain(&codes[(n + 1) * d..]).all(|&c| c == -77), "{ctx}: codes outside");
                assert!(values[0] == 9.5 && values[n * d + 1..].iter().all(|&v| v == 9.5), "{ctx}: values outside");
                assert!(indices[..5].iter().chain(&indices[n + 5..]).all(|&i| i == u32::MAX), "{ctx}: indices outside");
            }
        }
    }
}

#[test]
fn a_view_downloads_its_range_and_chains() {
    let fsq = Fsq::new(&[7, 5, 5]).unwrap();
    let bsq = BinaryQuantizer::bsq(3, 3).unwrap();
    for device in devices() {
        let z = device.upload(&latents(3 * 101)).unwrap();
        let tokens = fsq.quantize(&device, z.view(3..3 * 101).unwrap()).unwrap();
        assert_eq!(
            tokens.indices.view(10..20).unwrap().download().unwrap(),
            tokens.indices.download().unwrap()[10..20]
        );
        // A later op reads part of an earlier op's output in place.
        let part = tokens.values.view(30..3 * 100).unwrap();
        let bits = bsq.quantize(&device, part).unwrap();
        assert_eq!(bits.indices.len(), 90, "{}", device.name());
    }
}

#[test]
fn misaligned_z_takes_the_cuda_core_path_or_is_a_typed_error() {
    let (n, k, d) = (70usize, 64usize, 32usize);
    let z: Vec<f16> = latents((n + 1) * d).iter().map(|&v| f16::from_f32(v)).collect();
    let e: Vec<f16> = latents(k * d).iter().rev().map(|&v| f16::from_f32(v * 0.7)).collect();
    for device in common::kernel_devices("views") {
        let codebook = Codebook::new(&device, device.upload(&e).unwrap(), d, Metric::SquaredL2).unwrap();
        let zb = device.upload(&z).unwrap();
        let aligned = zb.view(0..n * d).unwrap();
        let shifted = zb.view(1..n * d + 1).unwrap(); // 2 bytes past a 16-byte boundary
        let auto = SearchOptions { histogram: false, ..SearchOptions::default() };
        let tc = SearchOptions { path: SearchPath::TensorCore, ..auto.clone() };
        let simt = SearchOptions { path: SearchPath::Simt, ..auto.clone() };
        let want = codebook.quantize(&device, shifted, &simt).unwrap().indices.download().unwrap();
        assert_eq!(codebook.quantize(&device, shifted, &auto).unwrap().indices.download().unwrap(), want);
        match codebook.quantize(&device, shifted, &tc) {
            Err(Error::InvalidArgument { arg: "z", .. }) => {}
            other => panic!("{}: expected InvalidArgument(z), got {:?}", device.name(), other.map(|o| o.indices.len())),
        }
        codebook.quantize(&device, aligned, &tc).unwrap();
    }
}

#[test]
fn bad_ranges_are_typed_errors() {
    let device = Device::emulator();
    let mut b = device.upload(&[1u32, 2, 3, 4]).unwrap();
    for r in [b.view(2..5).map(|_| ()), b.view(5..).map(|_| ()), b.view_mut(1..=4).map(|_| ())] {
        assert!(matches!(r, Err(Error::InvalidArgument { arg: "range", .. })), "{r:?}");
    }
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = b.view(3..1).map(|_| ());
    assert!(matches!(reversed, Err(Error::InvalidArgument { arg: "range", .. })));
    let v = b.view(1..4).unwrap();
    assert_eq!(v.view(1..3).unwrap().download().unwrap(), vec![3, 4]);
    assert!(v.view(2..4).is_err());
    assert!(b.view(4..4).unwrap().is_empty());
    // An output view of the wrong length names the argument.
    let fsq = Fsq::new(&[5, 5]).unwrap();
    let z = device.upload(&[0.1f32; 8]).unwrap();
    let (mut c, mut v, mut i) =
        (device.zeros::<i32>(8).unwrap(), device.zeros::<f32>(8).unwrap(), device.zeros(4).unwrap());
    let r = fsq.quantize_into(&device, &z, c.view_mut(0..6).unwrap(), &mut v, &mut i);
    assert!(matches!(r, Err(Error::LengthMismatch { arg: "codes", expected: 8, actual: 6 })), "{r:?}");
}
