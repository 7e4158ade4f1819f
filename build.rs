//! Compiles every kernel source twice (see docs/design.md):
//!
//! 1. always, as host C++ together with the emulator runtime (`kernels/host/`), into
//!    the static library `tessera_host` that the Emulator backend calls;
//! 2. when `nvcc` is found (`TESSERA_NVCC`, `PATH`, `CUDA_HOME`, `CUDA_PATH`), into one
//!    fatbin per kernel file holding SASS for sm_80 and sm_90 plus compute_90 PTX, which
//!    `src/device/cuda.rs` embeds. Without nvcc the crate still builds; the Cuda backend
//!    then reports that the kernels were not compiled, and cfg `tessera_device_code` is off.
//!
//! `TESSERA_SANITIZE` instruments the host kernels: `checks` (the default of the test suite,
//! feature `selftest`) makes every load and store of kernel code call the emulator's
//! memcheck, racecheck, initcheck and profiler (kernels/host/checks*.cpp); `address` builds
//! with AddressSanitizer (recoverable, so an invalid access becomes a launch error naming the
//! kernel) and links libasan; `none` (the default otherwise) instruments nothing.
//!
//! `TESSERA_HOST_FP_CONTRACT=off|fast` (default `off`) sets the host kernels'
//! `-ffp-contract`. `fast` lets the C++ compiler fuse `a*b+c` into an FMA the way nvcc
//! does by default: a test run with it checks that every bit-compared kernel result is
//! written with explicit `__fmaf_rn` / `__fmul_rn` / `__fadd_rn` (DESIGN.md, Numerics).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/contracts.rs"]
mod contracts;
#[path = "build/static_shared.rs"]
mod static_shared;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let kernels = manifest.join("kernels");

    println!("cargo::rustc-check-cfg=cfg(tessera_device_code)");
    println!("cargo::rustc-check-cfg=cfg(tessera_asan)");
    println!("cargo::rustc-check-cfg=cfg(tessera_emu_checks)");
    println!("cargo:rerun-if-changed=kernels");
    // The kernel declarations that the contract check compares with the C definitions.
    println!("cargo:rerun-if-changed=src/kernels");
    println!("cargo:rerun-if-changed=src/selftest.rs");
    println!("cargo:rerun-if-changed=src/selftest_checks.rs");
    println!("cargo:rerun-if-changed=build");
    for var in [
        "TESSERA_NVCC",
        "CUDA_HOME",
        "CUDA_PATH",
        "PATH",
        "TESSERA_SANITIZE",
        "TESSERA_CUDA_ARCHS",
        "TESSERA_HOST_FP_CONTRACT",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let kernel_files = cu_files(&kernels);
    // The emulator's self-test kernels go into the library only for the test suite
    // (feature `selftest`), never into a user's build.
    let selftest_files =
        if env::var_os("CARGO_FEATURE_SELFTEST").is_some() { cu_files(&kernels.join("selftest")) } else { Vec::new() };
    let runtime_files = files_with_ext(&kernels.join("host"), "cpp");

    write_kernel_constants(&kernel_files, &out_dir);
    let units = contract_units(&manifest, &kernel_files, &selftest_files, &out_dir);
    build_host_library(&kernels, &units, &runtime_files);
    build_device_code(&kernels, &kernel_files, &selftest_files, &out_dir);
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

fn cu_files(dir: &Path) -> Vec<PathBuf> {
    files_with_ext(dir, "cu")
}

/// How the host kernels are instrumented (`TESSERA_SANITIZE`).
#[derive(Clone, Copy, PartialEq)]
enum Sanitize {
    /// No instrumentation: the fastest emulator.
    None,
    /// AddressSanitizer over the kernels and the emulator (redzones, use-after-free).
    Address,
    /// The emulator's own checks: every load and store of kernel code calls the runtime
    /// (memcheck with exact bounds, racecheck, initcheck, the memory profile).
    Checks,
}

fn sanitize() -> Sanitize {
    match env::var("TESSERA_SANITIZE").as_deref() {
        Ok("address") => Sanitize::Address,
        Ok("checks") => Sanitize::Checks,
        Ok("none") => Sanitize::None,
        // The test suite (feature `selftest`) runs with the checks; a user's build without.
        Ok("") | Err(_) => {
            if env::var_os("CARGO_FEATURE_SELFTEST").is_some() {
                Sanitize::Checks
            } else {
                Sanitize::None
            }
        }
        Ok(v) => panic!("TESSERA_SANITIZE={v}: must be `checks`, `address` or `none`"),
    }
}

/// The host kernels' `-ffp-contract` value, from `TESSERA_HOST_FP_CONTRACT`.
fn host_fp_contract() -> &'static str {
    match env::var("TESSERA_HOST_FP_CONTRACT") {
        Err(_) => "off",
        Ok(v) if v.is_empty() || v == "off" => "off",
        Ok(v) if v == "fast" => "fast",
        Ok(v) => panic!("TESSERA_HOST_FP_CONTRACT={v}: must be `off` (the default) or `fast`"),
    }
}

/// Writes `$OUT_DIR/kernel_constants.rs`: for each kernel file, a module of its integer
/// `#define`s (tile sizes, threads per block, limits), so that the wrappers take them from
/// the `.cu` file instead of repeating them (`src/kernels/constants.rs` includes it).
fn write_kernel_constants(kernel_files: &[PathBuf], out_dir: &Path) {
    let mut out = String::from("// Generated by build.rs from the integer #defines of kernels/*.cu.\n");
    for cu in kernel_files {
        let stem = cu.file_stem().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(cu).unwrap();
        writeln!(out, "/// The integer `#define`s of `kernels/{stem}.cu`.\npub(crate) mod {stem} {{").unwrap();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("#define") {
                continue;
            }
            let (Some(name), Some(value)) = (words.next(), words.next()) else { continue };
            let rest: Vec<&str> = words.collect();
            if rest.first().is_some_and(|w| !w.starts_with("//")) || name.contains('(') {
                continue; // a macro or an expression, not a plain integer constant
            }
            if let Ok(v) = value.parse::<u32>() {
                writeln!(out, "    #[allow(dead_code)]\n    pub(crate) const {name}: u32 = {v};").unwrap();
            }
        }
        out.push_str("}\n");
    }
    fs::write(out_dir.join("kernel_constants.rs"), out).unwrap();
}

/// The host compilation units of the kernel files: each includes its `.cu` and checks the
/// kernels' C types against their Rust declarations (build/contracts.rs).
fn contract_units(manifest: &Path, kernel_files: &[PathBuf], selftest: &[PathBuf], out_dir: &Path) -> Vec<PathBuf> {
    let dir = out_dir.join("contracts");
    fs::create_dir_all(&dir).unwrap();
    let mut units = Vec::new();
    // Rewrite only on change, so that cc does not recompile an unchanged unit.
    let write_if_changed = |path: &Path, text: &str| {
        if fs::read_to_string(path).ok().as_deref() != Some(text) {
            fs::write(path, text).unwrap();
        }
    };
    // The kernel file as the host compiles it: static __shared__ variables in the block's arena.
    let host_copy = |cu: &Path, name: &str| {
        let path = dir.join(format!("{name}.cu"));
        write_if_changed(&path, &static_shared::rewrite(cu, &fs::read_to_string(cu).unwrap()));
        path
    };
    let mut write_unit = |name: String, text: String| {
        let path = dir.join(name);
        write_if_changed(&path, &text);
        units.push(path);
    };
    for cu in kernel_files {
        let stem = cu.file_stem().unwrap().to_string_lossy().to_string();
        let wrapper = manifest.join("src/kernels").join(format!("{stem}.rs"));
        let decls = if wrapper.is_file() { contracts::parse_rust(&wrapper) } else { Vec::new() };
        let (unit, missing) = contracts::contract_unit(cu, &host_copy(cu, &stem), &decls, manifest);
        if let Some(d) = missing.first() {
            panic!(
                "kernel contract: src/kernels/{stem}.rs declares {} but kernels/{stem}.cu does not define it",
                d.name
            );
        }
        write_unit(format!("{stem}.cpp"), unit);
    }
    if !selftest.is_empty() {
        let mut decls = contracts::parse_rust(&manifest.join("src/selftest.rs"));
        decls.extend(contracts::parse_rust(&manifest.join("src/selftest_checks.rs")));
        for cu in selftest {
            let stem = cu.file_stem().unwrap().to_string_lossy().to_string();
            let (unit, rest) =
                contracts::contract_unit(cu, &host_copy(cu, &format!("selftest_{stem}")), &decls, manifest);
            decls = rest;
            write_unit(format!("selftest_{stem}.cpp"), unit);
        }
        if let Some(d) = decls.first() {
            panic!("kernel contract: src/selftest*.rs declares {} but no kernels/selftest/*.cu defines it", d.name);
        }
    }
    units
}

fn build_host_library(kernels: &Path, units: &[PathBuf], runtime: &[PathBuf]) {
    let mode = sanitize();
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++20")
        .opt_level(2)
        .include(kernels)
        .include(kernels.join("host"))
        // Kernels must round exactly like the CPU reference: by default no contraction into
        // FMA; `fast` checks that the kernels do not depend on that (see the top).
        .flag(format!("-ffp-contract={}", host_fp_contract()))
        .flag("-fno-strict-aliasing")
        .flag("-Wno-unknown-pragmas")
        .flag("-Wno-unused-parameter")
        // With the checks on, the vector types have an instrumented copy (cuda_host.h), and GCC
        // warns about every bit cast into one through memcpy.
        .flag("-Wno-class-memaccess")
        .flag("-pthread");
    if host_fp_contract() == "fast" && env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "x86_64") {
        // The x86-64 baseline has no FMA instruction, so without this `fast` would
        // contract nothing (needs a CPU with FMA3, as every x86-64 since 2013 has).
        build.flag("-mfma");
    }
    if mode == Sanitize::Address {
        build
            .flag("-fsanitize=address")
            .flag("-fsanitize-recover=address")
            .flag("-fno-omit-frame-pointer")
            .define("TESSERA_SANITIZE_ADDRESS", "1");
        println!("cargo:rustc-cfg=tessera_asan");
        println!("cargo:rustc-link-arg=-fsanitize=address");
        println!("cargo:rustc-link-lib=dylib=asan");
    }
    // Kernel sources are CUDA: compile them as C++ (the `-x c++` must precede each file,
    // so they go through a second object list, cloned before the runtime's files join the first).
    let mut cu = build.clone();
    cu.flag("-x").flag("c++");
    for file in runtime {
        build.file(file);
    }
    if mode == Sanitize::Checks {
        // Kernel code only (the runtime defines the hooks and stays uninstrumented): every
        // load and store calls __tsan_{read,write}N (no TSan runtime is linked; ThreadSanitizer's
        // instrumentation, not AddressSanitizer's, because the latter drops the store check of a
        // read-modify-write whose load it already checked); float->int conversions out of range
        // and shifts by >= the width call the __ubsan_handle_* hooks (kernels/host/checks_ubsan.cpp).
        cu.flag("-fsanitize=thread")
            .flag("-fsanitize=float-cast-overflow,shift-exponent")
            .flag("-fsanitize-recover=float-cast-overflow,shift-exponent")
            .flag("-fno-omit-frame-pointer");
    }
    if mode == Sanitize::Checks {
        build.define("TESSERA_EMU_CHECKS", "1");
        cu.define("TESSERA_EMU_CHECKS", "1");
        println!("cargo:rustc-cfg=tessera_emu_checks");
    }
    for file in units {
        cu.file(file);
    }
    let mut objects = Vec::new();
    if !runtime.is_empty() {
        objects.extend(build.compile_intermediates());
    }
    if !units.is_empty() {
        objects.extend(cu.compile_intermediates());
    }
    let mut lib = cc::Build::new();
    lib.cpp(true).cpp_link_stdlib("stdc++");
    for obj in objects {
        lib.object(obj);
    }
    lib.compile("tessera_host");
}

fn find_nvcc() -> Option<PathBuf> {
    if let Ok(p) = env::var("TESSERA_NVCC") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    if let Some(path) = env::var_os("PATH") {
        for dir in env::split_paths(&path) {
            let candidate = dir.join("nvcc");
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Ok(root) = env::var(var) {
            let candidate = PathBuf::from(root).join("bin").join("nvcc");
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Writes `$OUT_DIR/device_code.rs`: a table of (file stem, fatbin bytes), empty without nvcc.
fn build_device_code(kernels: &Path, kernel_files: &[PathBuf], selftest: &[PathBuf], out_dir: &Path) {
    let mut table = String::from("/// Fatbins compiled by build.rs: (kernel file stem, image).\n");
    table.push_str("pub(crate) static DEVICE_CODE: &[(&str, &[u8])] = &[\n");
    match find_nvcc() {
        None => {
            println!(
                "cargo:warning=nvcc not found (TESSERA_NVCC, PATH, CUDA_HOME, CUDA_PATH): building \
                 without GPU kernels; the Cuda backend will report this. The Emulator and Cpu backends work."
            );
        }
        Some(nvcc) => {
            let archs = env::var("TESSERA_CUDA_ARCHS").unwrap_or_else(|_| "80,90".to_string());
            let files: Vec<&PathBuf> = kernel_files.iter().chain(selftest).collect();
            // One nvcc per kernel file, as many at a time as the machine has cores.
            let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
            let mut outputs = Vec::new();
            for batch in files.chunks(jobs) {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|file| {
                        let (file, nvcc, archs) = ((*file).clone(), nvcc.clone(), archs.clone());
                        let (kernels, out_dir) = (kernels.to_path_buf(), out_dir.to_path_buf());
                        std::thread::spawn(move || compile_fatbin(&nvcc, &kernels, &file, &archs, &out_dir))
                    })
                    .collect();
                for h in handles {
                    outputs.push(h.join().expect("nvcc thread"));
                }
            }
            for (stem, out) in outputs {
                writeln!(table, "    ({stem:?}, include_bytes!({:?})),", out.display().to_string()).unwrap();
            }
            println!("cargo:rustc-cfg=tessera_device_code");
        }
    }
    table.push_str("];\n");
    fs::write(out_dir.join("device_code.rs"), table).unwrap();
}

/// Compiles one kernel file into `$OUT_DIR/<stem>.fatbin`: SASS for each arch, PTX of the newest.
fn compile_fatbin(nvcc: &Path, kernels: &Path, file: &Path, archs: &str, out_dir: &Path) -> (String, PathBuf) {
    let stem = file.file_stem().unwrap().to_string_lossy().to_string();
    let out = out_dir.join(format!("{stem}.fatbin"));
    let mut cmd = Command::new(nvcc);
    cmd.arg("-fatbin").arg("-O3").arg("-std=c++17").arg("-I").arg(kernels);
    let mut last = String::new();
    for arch in archs.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        cmd.arg(format!("-gencode=arch=compute_{arch},code=sm_{arch}"));
        last = arch.to_string();
    }
    // PTX of the newest arch too, so newer GPUs can JIT it.
    cmd.arg(format!("-gencode=arch=compute_{last},code=compute_{last}"));
    cmd.arg("-o").arg(&out).arg(file);
    let status = cmd.status().unwrap_or_else(|e| panic!("running {}: {e}", nvcc.display()));
    if !status.success() {
        panic!("nvcc failed on {}", file.display());
    }
    (stem, out)
}
