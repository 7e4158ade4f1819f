//! The emulator's checks (memcheck, racecheck, initcheck, undefined behaviour, launch limits):
//! every planted bug of kernels/selftest/checks_probes.cu is caught by its check, in a
//! one-block launch (two blocks for the global race), on every run; every fixed twin passes
//! with the right result. The per-access checks need the checks build
//! (`TESSERA_SANITIZE=checks`, the default of the test suite); the runtime-side ones (ldmatrix
//! state space, shared-memory limits) hold in every build.

use half::f16;
use tessera::selftest_checks::{self, Probe, PROBES};
use tessera::{Device, Error};

/// What each fixed twin must compute, from its definition in checks_probes.cu.
fn expected(probe: Probe) -> Vec<f32> {
    let input = selftest_checks::probe_input();
    match probe {
        Probe::Reduce => vec![input.iter().sum()],
        Probe::WarpReduce => vec![input[..32].iter().sum()],
        Probe::Counter | Probe::UninitCounter => vec![256.0],
        Probe::Exchange => (0..64).map(|t| input[t ^ 32]).collect(),
        Probe::ViewOverread => input[..100].to_vec(),
        Probe::Ldmatrix => (0..32)
            .map(|l| {
                // ldmatrix .x1, not transposed: lane l holds row l/4, columns 2(l%4) and 2(l%4)+1.
                let (g, t) = (l / 4, l % 4);
                let bits = |c: usize| f16::from_f32((g * 8 + c) as f32).to_bits() as u32;
                (bits(2 * t) | (bits(2 * t + 1) << 16)) as f32
            })
            .collect(),
        Probe::GlobalRace => vec![2.0],
        Probe::StoreInput => input[..32].to_vec(),
        Probe::FloatToIntOverflow => vec![12.0, 0.0],
        Probe::OversizedShift => vec![0.0, 32.0],
        Probe::BigStatic => vec![1.0],
    }
}

/// The check that must catch the probe's bug: the category its message starts with.
fn catcher(probe: Probe) -> &'static str {
    match probe {
        Probe::Reduce | Probe::WarpReduce | Probe::Counter | Probe::Exchange | Probe::GlobalRace => "racecheck",
        Probe::UninitCounter => "initcheck",
        Probe::ViewOverread | Probe::Ldmatrix | Probe::StoreInput => "memcheck",
        Probe::FloatToIntOverflow | Probe::OversizedShift => "undefined behaviour",
        Probe::BigStatic => "bad launch configuration",
    }
}

/// Caught by the runtime itself, in every build.
fn runtime_side(probe: Probe) -> bool {
    matches!(probe, Probe::Ldmatrix | Probe::BigStatic)
}

fn message(result: tessera::Result<Vec<f32>>) -> String {
    match result {
        Err(Error::Emulator(m)) => m,
        other => panic!("expected an emulator error, got {other:?}"),
    }
}

#[test]
fn fixed_twins_pass() {
    let device = Device::emulator();
    for probe in PROBES {
        assert_eq!(selftest_checks::run(&device, probe, false).unwrap(), expected(probe), "{probe:?}");
    }
}

#[test]
fn planted_bugs_are_caught_by_their_check() {
    let device = Device::emulator();
    for probe in PROBES {
        if !tessera::emulator::checks_enabled() && !runtime_side(probe) {
            continue;
        }
        // Twice: the report does not depend on the order the emulator runs the threads in.
        for _ in 0..2 {
            let m = message(selftest_checks::run(&device, probe, true));
            assert!(m.starts_with(&format!("{} in kernel selftest_chk_", catcher(probe))), "{probe:?}: {m}");
            assert!(m.contains("block (0,0,0)") || m.contains("block (1,0,0)"), "{probe:?}: {m}");
        }
    }
}

#[test]
fn reports_name_the_buffer_the_variable_and_the_source_line() {
    if !tessera::emulator::checks_enabled() {
        return;
    }
    let device = Device::emulator();
    let m = message(selftest_checks::run(&device, Probe::ViewOverread, true));
    assert!(m.contains("0 bytes past the end of `src` (a view of 400 bytes)"), "{m}");
    assert!(m.contains("checks_probes.cu:"), "{m}");
    assert!(m.contains("thread (99,0,0)"), "{m}");
    let m = message(selftest_checks::run(&device, Probe::UninitCounter, true));
    assert!(m.contains("`count` + 0 bytes"), "{m}");
    let m = message(selftest_checks::run(&device, Probe::Counter, true));
    assert!(m.contains("`count`") && m.contains("no __syncthreads"), "{m}");
    let m = message(selftest_checks::run(&device, Probe::WarpReduce, true));
    assert!(m.contains("__syncwarp"), "{m}");
    let m = message(selftest_checks::run(&device, Probe::StoreInput, true));
    assert!(m.contains("into the input `src`"), "{m}");
    let m = message(selftest_checks::run(&device, Probe::GlobalRace, true));
    assert!(m.contains("block (0,0,0) and block (1,0,0)") || m.contains("block (1,0,0) and block (0,0,0)"), "{m}");
}

#[test]
fn device_memory_allocated_uninitialised_is_watched() {
    let device = Device::emulator();
    assert_eq!(selftest_checks::uninit_device_read(&device, true).unwrap(), selftest_checks::probe_input()[..100]);
    if tessera::emulator::checks_enabled() {
        let m = message(selftest_checks::uninit_device_read(&device, false));
        assert!(m.starts_with("initcheck in kernel selftest_chk_view_overread"), "{m}");
        assert!(m.contains("of `src` at offset 0: byte 0 was never written"), "{m}");
    } else {
        // Without the checks it reads the emulator's "uninitialised" pattern: NaN.
        let got = selftest_checks::uninit_device_read(&device, false).unwrap();
        assert!(got.iter().all(|v| v.to_bits() == 0xffff_ffff), "{got:?}");
    }
}

#[test]
fn shared_memory_starts_every_block_poisoned() {
    if tessera::emulator::checks_enabled() {
        return; // initcheck reports the read instead (planted_bugs_are_caught_by_their_check)
    }
    // The uninitialised counter starts at 0xFFFFFFFF in every block: 256 increments give 255.
    let device = Device::emulator();
    for _ in 0..3 {
        assert_eq!(selftest_checks::run(&device, Probe::UninitCounter, true).unwrap(), vec![255.0]);
    }
}

#[test]
fn shared_memory_limits_follow_the_architecture() {
    let device = Device::emulator();
    let static_bytes = selftest_checks::SMEM_LIMIT_STATIC_BYTES;
    for (sm, limit) in [(90u32, 227u32 * 1024), (80, 163 * 1024)] {
        tessera::emulator::with_arch(sm, || {
            let fits = limit - static_bytes;
            assert_eq!(selftest_checks::smem_limit(&device, fits).unwrap(), 3.0, "sm_{sm}");
            let err = match selftest_checks::smem_limit(&device, fits + 4) {
                Err(Error::Emulator(m)) => m,
                Err(e) if sm == 90 => format!("{e}"),
                other => panic!("sm_{sm}: static + dynamic over the limit ran: {other:?}"),
            };
            assert!(err.contains("limit"), "sm_{sm}: {err}");
        });
    }
}

#[test]
#[ignore = "prints the report of every planted bug (cargo test --test checks -- --ignored --nocapture)"]
fn print_reports() {
    let device = Device::emulator();
    for probe in PROBES {
        println!("{probe:?}: {:?}", selftest_checks::run(&device, probe, true));
    }
}
