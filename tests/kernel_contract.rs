//! The kernel contract check of build.rs (build/contracts.rs), exercised on the real
//! kernels/fsq.cu and src/kernels/fsq.rs: the check passes as they are, and breaking the C
//! signature — two pointer parameters swapped, or a scalar of another width — fails it,
//! by the name comparison or by the C++ compiler's static_assert.

#[allow(dead_code)]
#[path = "../build/contracts.rs"]
mod contracts;
#[path = "../build/static_shared.rs"]
mod static_shared;

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// kernels/fsq.cu with `edit` applied, written into a scratch directory of this test.
fn edited_fsq(test: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-contract-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = std::fs::read_to_string(manifest().join("kernels/fsq.cu")).unwrap();
    let edited = edit(&source);
    let path = dir.join("fsq.cu");
    std::fs::write(&path, edited).unwrap();
    path
}

/// Compiles the contract unit of `cu` (syntax and static_asserts only) with the system C++
/// compiler, as build.rs's host build does. Returns whether it compiled, and the errors.
fn compiles(cu: &Path) -> (bool, String) {
    let decls = contracts::parse_rust(&manifest().join("src/kernels/fsq.rs"));
    // As build.rs does: the unit includes the host rewrite of the file (static __shared__).
    let host_copy = cu.with_extension("host.cu");
    std::fs::write(&host_copy, static_shared::rewrite(cu, &std::fs::read_to_string(cu).unwrap())).unwrap();
    let (unit, missing) = contracts::contract_unit(cu, &host_copy, &decls, &manifest());
    assert!(missing.is_empty(), "fsq.rs declares kernels fsq.cu does not define");
    let unit_path = cu.with_extension("contract.cpp");
    std::fs::write(&unit_path, unit).unwrap();
    let kernels = manifest().join("kernels");
    let out = Command::new(std::env::var("CXX").unwrap_or_else(|_| "c++".into()))
        .args(["-std=c++20", "-fsyntax-only", "-x", "c++"])
        .arg("-I")
        .arg(&kernels)
        .arg("-I")
        .arg(kernels.join("host"))
        .arg(&unit_path)
        .output()
        .expect("running the C++ compiler");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const SIGNATURE: &str = "fsq_quantize_##SUFFIX(const T* z, int* codes, T* values,";

#[test]
fn the_real_kernels_satisfy_their_contract() {
    let cu = edited_fsq("as-is", str::to_string);
    let (ok, errors) = compiles(&cu);
    assert!(ok, "{errors}");
}

#[test]
fn swapped_pointer_parameters_fail_the_name_check() {
    let cu = edited_fsq("swap", |s| {
        assert!(s.contains(SIGNATURE));
        s.replace(SIGNATURE, "fsq_quantize_##SUFFIX(const T* z, T* values, int* codes,")
    });
    let decls = contracts::parse_rust(&manifest().join("src/kernels/fsq.rs"));
    let result = std::panic::catch_unwind(|| contracts::contract_unit(&cu, &cu, &decls, &manifest()));
    let message = match result {
        Err(panic) => panic.downcast_ref::<String>().cloned().unwrap_or_default(),
        Ok(_) => panic!("the swapped signature passed the contract check"),
    };
    assert!(message.contains("fsq_quantize(z, codes, values"), "{message}");
    assert!(message.contains("(z, values, codes"), "{message}");
}

#[test]
fn swapped_pointer_types_fail_to_compile() {
    // Names kept in order, types swapped: only the function type can tell.
    let cu = edited_fsq("types", |s| s.replace(SIGNATURE, "fsq_quantize_##SUFFIX(const T* z, T* codes, int* values,"));
    let (ok, errors) = compiles(&cu);
    assert!(!ok, "a kernel whose pointer types were swapped compiled");
    assert!(errors.contains("kernel contract: the C type of fsq_quantize_f32"), "{errors}");
}

#[test]
fn a_scalar_of_another_width_fails_to_compile() {
    let cu = edited_fsq("width", |s| {
        let from = "unsigned* status,";
        let i = s.find(SIGNATURE).unwrap();
        let j = i + s[i..].find(from).unwrap() + from.len();
        // The next parameter is `unsigned n`: make it 64 bits wide.
        let rest = &s[j..];
        let k = rest.find("unsigned n").unwrap();
        format!("{}{}unsigned long long n{}", &s[..j], &rest[..k], &rest[k + "unsigned n".len()..])
    });
    let (ok, errors) = compiles(&cu);
    assert!(!ok, "a kernel whose `n` became 64-bit compiled");
    assert!(errors.contains("kernel contract"), "{errors}");
}
