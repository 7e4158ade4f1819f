//! `tessera profile`: every kernel family once at a representative shape on the emulator,
//! inside `tessera::emulator::profile`, with the memory-traffic figures of each kernel
//! (`tessera::profile::LaunchProfile`) as one table; `--write` / `--check` keep a
//! machine-readable report (kernels/profile-report.txt, compared by CI). Every case calls
//! only tessera's public API.

mod adaln;
mod attention;
mod binary_quant;
mod codebook;
mod embedding;
mod fsq;
mod gemm;
mod kl;
mod kmeans;
mod patchify;
mod report;
mod residual_vq;

use std::path::PathBuf;
use std::process::ExitCode;
use tessera::emulator::LaunchRecord;
use tessera::profile::{LaunchProfile, Peaks};
use tessera::Device;

/// Options of `tessera profile`.
#[derive(clap::Args, Debug)]
pub(crate) struct ProfileArgs {
    /// Also write the machine-readable report to FILE (e.g. kernels/profile-report.txt).
    #[arg(long, value_name = "FILE", conflicts_with = "check")]
    write: Option<PathBuf>,
    /// Compare with the report in FILE: fail when a kernel's coalescing efficiency drops,
    /// its shared-memory wavefronts per request or its bytes moved grow, or a kernel is
    /// missing or new.
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

/// What `tessera profile` can fail with (besides regressions, which it reports itself).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProfileError {
    /// The kernels were compiled without the emulator's per-access hooks.
    #[error(
        "the emulator was built without its checks, so launches cannot be profiled: build with \
         TESSERA_SANITIZE=checks (e.g. `TESSERA_SANITIZE=checks cargo run -- profile`; \
         `cargo run --features selftest -- profile` sets it by default)"
    )]
    ChecksDisabled,
    /// A case's kernel call failed.
    #[error("{case}: {source}")]
    Kernel {
        case: String,
        #[source]
        source: tessera::Error,
    },
    /// A case made no launch (its op ran somewhere other than the emulator).
    #[error("{case}: no emulator launch was recorded")]
    NoLaunch { case: String },
    /// Reading or writing the report.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A report line that cannot be read.
    #[error("{path}:{line}: {reason}")]
    Report { path: String, line: usize, reason: String },
}

/// One profiled op: its launches, grouped by kernel in order of first launch.
pub(crate) struct Case {
    /// Identifier in the report, e.g. `fsq.quantize.f32`.
    pub(crate) id: String,
    /// The shape, for people, e.g. `n=16384 d=4`.
    pub(crate) shape: String,
    pub(crate) records: Vec<LaunchRecord>,
}

/// One table row: the launches of one kernel in one case.
pub(crate) struct Row {
    pub(crate) case: String,
    pub(crate) shape: String,
    /// Counters summed over the launches; grid and block of the first.
    pub(crate) total: LaunchProfile,
    /// The sum of the launches' own lower bounds on H100, seconds, and the resource that
    /// bounds the largest share of it.
    pub(crate) h100_seconds: f64,
    pub(crate) h100_resource: tessera::profile::Resource,
}

/// Runs `op` with every emulator launch profiled; its records, or the error it returned.
pub(crate) fn measure(
    id: impl Into<String>,
    shape: impl Into<String>,
    op: impl FnOnce() -> tessera::Result<()>,
) -> Result<Case, ProfileError> {
    let id = id.into();
    let (result, records) = tessera::emulator::profile(op);
    result.map_err(|source| ProfileError::Kernel { case: id.clone(), source })?;
    if records.is_empty() {
        return Err(ProfileError::NoLaunch { case: id });
    }
    Ok(Case { id, shape: shape.into(), records })
}

/// The result of a case's preparation (uploads, codebooks), its error named `what`.
pub(crate) fn setup<T>(what: &str, result: tessera::Result<T>) -> Result<T, ProfileError> {
    result.map_err(|source| ProfileError::Kernel { case: format!("{what} (preparation)"), source })
}

/// A deterministic value in [-1, 1) for element `i` of a stream `seed`.
pub(crate) fn value(seed: u32, i: usize) -> f32 {
    let h = (i as u32).wrapping_add(seed.wrapping_mul(0x9e37_79b9)).wrapping_mul(2_654_435_761);
    (h >> 8) as f32 / 8_388_608.0 - 1.0
}

fn rows_of(case: &Case) -> Vec<Row> {
    // Per kernel: the summed profile, the summed H100 bound, and that bound's share per resource.
    type Shares = Vec<(tessera::profile::Resource, f64)>;
    let mut rows: Vec<(LaunchProfile, f64, Shares)> = Vec::new();
    for record in &case.records {
        let launch = LaunchProfile::new(record);
        let (t, resource) = launch.lower_bound(&Peaks::H100);
        match rows.iter_mut().find(|(p, _, _)| p.kernel == launch.kernel) {
            Some((p, seconds, shares)) => {
                p.accumulate(&launch);
                *seconds += t;
                match shares.iter_mut().find(|(r, _)| *r == resource) {
                    Some((_, s)) => *s += t,
                    None => shares.push((resource, t)),
                }
            }
            None => rows.push((launch, t, vec![(resource, t)])),
        }
    }
    rows.into_iter()
        .map(|(total, h100_seconds, shares)| {
            let h100_resource = shares.iter().fold(shares[0], |best, &s| if s.1 > best.1 { s } else { best }).0;
            Row { case: case.id.clone(), shape: case.shape.clone(), total, h100_seconds, h100_resource }
        })
        .collect()
}

fn cases(device: &Device) -> Result<Vec<Case>, ProfileError> {
    let mut all = Vec::new();
    all.extend(fsq::cases(device)?);
    all.extend(codebook::cases(device)?);
    all.extend(binary_quant::cases(device)?);
    all.extend(kmeans::cases(device)?);
    all.extend(residual_vq::cases(device)?);
    all.extend(embedding::cases(device)?);
    all.extend(kl::cases(device)?);
    all.extend(adaln::cases(device)?);
    all.extend(gemm::cases(device)?);
    all.extend(patchify::cases(device)?);
    all.extend(attention::cases(device)?);
    Ok(all)
}

fn bytes(b: u64) -> String {
    match b {
        b if b >= 10 << 20 => format!("{:.1}M", b as f64 / (1u64 << 20) as f64),
        b if b >= 10 << 10 => format!("{:.1}K", b as f64 / 1024.0),
        b => b.to_string(),
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<28} {:<30} {:<22} {:<16} {:>6} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>6} {:>5} {:>6} {:>5} {:>10}  bound (H100)",
        "case",
        "kernel",
        "shape",
        "grid×block",
        "ld eff",
        "st eff",
        "moved",
        "distinct",
        "minimum",
        "sh wf/req",
        "sh confl",
        "mma",
        "ldm",
        "cp.as",
        "bar",
        "H100 µs"
    );
    for r in rows {
        let p = &r.total;
        let launches = if p.launches > 1 { format!(" ×{}", p.launches) } else { String::new() };
        let grid = format!("{}×{}{launches}", dims(p.grid), dims(p.block));
        let wf = match (p.shared_load_wavefronts_per_request(), p.shared_store_wavefronts_per_request()) {
            (None, None) => "-".to_string(),
            (l, s) => format!("{}/{}", opt(l, 1), opt(s, 1)),
        };
        let conflicts = match (p.shared_load_conflict_factor(), p.shared_store_conflict_factor()) {
            (None, None) => "-".to_string(),
            (l, s) => format!("{}/{}", opt(l, 1), opt(s, 1)),
        };
        println!(
            "{:<28} {:<30} {:<22} {:<16} {:>6} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>6} {:>5} {:>6} {:>5} {:>10.2}  {}",
            r.case,
            p.kernel,
            r.shape,
            grid,
            opt(p.global_load_efficiency(), 3),
            opt(p.global_store_efficiency(), 3),
            bytes(p.bytes_moved()),
            bytes(p.distinct_bytes()),
            bytes(p.minimum_bytes()),
            wf,
            conflicts,
            p.counters.mma,
            p.counters.ldmatrix,
            p.counters.cp_async,
            p.counters.barriers,
            r.h100_seconds * 1e6,
            r.h100_resource
        );
    }
    println!(
        "ld/st eff: global bytes requested / bytes of the 32-byte sectors touched; moved: sectors × 32; \
         distinct: distinct bytes touched; minimum: inputs + outputs once; sh wf/req: shared wavefronts per \
         load/store request (1, 2, 4 conflict-free for 4-, 8-, 16-byte accesses); sh confl: wavefronts / the \
         the same requests without bank conflicts, one per active phase (1 = none); bound: lower-bound time on \
         {} (distinct bytes at {:.2} TB/s, shared at {:.1} TB/s, {:.0}/{:.1} TFLOP/s tensor/FP32) and what sets it.",
        Peaks::H100.name,
        Peaks::H100.hbm_bytes_per_s / 1e12,
        Peaks::H100.shared_bytes_per_s() / 1e12,
        Peaks::H100.tensor_flops / 1e12,
        Peaks::H100.fp32_flops / 1e12
    );
}

fn dims(d: (u32, u32, u32)) -> String {
    match d {
        (x, 1, 1) => x.to_string(),
        (x, y, 1) => format!("{x}x{y}"),
        (x, y, z) => format!("{x}x{y}x{z}"),
    }
}

fn run_inner(args: &ProfileArgs) -> Result<ExitCode, ProfileError> {
    if !tessera::emulator::checks_enabled() {
        return Err(ProfileError::ChecksDisabled);
    }
    let device = Device::emulator();
    let start = std::time::Instant::now();
    let rows: Vec<Row> = cases(&device)?.iter().flat_map(rows_of).collect();
    print_table(&rows);
    println!("(emulated in {:.1} s)", start.elapsed().as_secs_f64());
    let text = report::render(&rows);
    if let Some(path) = &args.write {
        std::fs::write(path, &text).map_err(|source| ProfileError::Io { path: path.display().to_string(), source })?;
        println!("wrote {} ({} kernel rows)", path.display(), rows.len());
    }
    if let Some(path) = &args.check {
        let old = std::fs::read_to_string(path)
            .map_err(|source| ProfileError::Io { path: path.display().to_string(), source })?;
        let old = report::parse(&old, &path.display().to_string())?;
        let new = report::parse(&text, "regenerated")?;
        let outcome = report::compare(&old, &new);
        for note in &outcome.notes {
            println!("note: {note}");
        }
        if !outcome.failures.is_empty() {
            println!("profile check failed against {}:", path.display());
            for f in &outcome.failures {
                println!("  {f}");
            }
            println!(
                "(if the change is intended, regenerate it: cargo run --features selftest -- profile --write {})",
                path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
        println!("{}: no regression ({} kernel rows)", path.display(), new.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `tessera profile`.
pub(crate) fn run(args: &ProfileArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
