//! Devices and buffers: round trips, ownership, impossible sizes, the Cuda fallback.

use tessera::{BackendKind, Device, Error};

#[test]
fn buffers_round_trip_on_host_backends() {
    for device in [Device::emulator(), Device::cpu()] {
        let data: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5).collect();
        let mut buf = device.upload(&data).unwrap();
        assert_eq!(buf.len(), 1000);
        assert_eq!(buf.download().unwrap(), data);
        buf.copy_from_host(&vec![1.0; 1000]).unwrap();
        assert_eq!(buf.download().unwrap(), vec![1.0; 1000]);
        let r = buf.copy_from_host(&[1.0; 3]);
        assert!(matches!(r, Err(Error::LengthMismatch { arg: "data", expected: 1000, actual: 3 })));
        assert!(device.zeros::<u32>(0).unwrap().is_empty());
    }
}

#[test]
fn impossible_sizes_are_errors_not_panics() {
    for device in [Device::emulator(), Device::cpu()] {
        let r = device.zeros::<f32>(usize::MAX / 2);
        assert!(matches!(r, Err(Error::InvalidArgument { arg: "len", .. })), "{r:?}");
    }
}

#[test]
fn best_device_says_what_it_picked() {
    let best = Device::best();
    match Device::cuda(0) {
        Ok(_) => assert_eq!(best.kind(), BackendKind::Cuda),
        Err(e) => {
            assert_eq!(best.kind(), BackendKind::Cpu);
            assert!(best.selection_note().contains(&e.to_string()), "{}", best.selection_note());
        }
    }
}
