//! The machine-readable profile report (kernels/profile-report.txt): one line per (case,
//! kernel), whitespace-separated columns named by the header line, `-` where a figure does
//! not apply; and the comparison that `tessera profile --check` makes.

use super::{ProfileError, Row};
use std::collections::BTreeMap;
use tessera::profile::Resource;

/// The columns, in order.
const COLUMNS: [&str; 19] = [
    "case",
    "kernel",
    "launches",
    "grid",
    "block",
    "ld_eff",
    "st_eff",
    "moved",
    "distinct",
    "minimum",
    "sh_ld_wpr",
    "sh_st_wpr",
    "sh_conflict",
    "mma",
    "ldmatrix",
    "cp_async",
    "barriers",
    "h100_ns",
    "bound",
];

/// Efficiency may drop by at most this much (absolute) before `--check` fails.
const EFFICIENCY_TOLERANCE: f64 = 1e-3;
/// Wavefronts per request and the conflict factor may grow by at most this much (absolute).
const WAVEFRONT_TOLERANCE: f64 = 1e-3;
/// Bytes moved may grow by at most this fraction.
const BYTES_TOLERANCE: f64 = 1e-3;

fn resource_token(r: Resource) -> &'static str {
    match r {
        Resource::Hbm => "hbm",
        Resource::SharedMemory => "shared",
        Resource::TensorCores => "tensor",
        Resource::CudaCores => "fp32",
    }
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

fn dims(d: (u32, u32, u32)) -> String {
    format!("{}x{}x{}", d.0, d.1, d.2)
}

/// The report text of `rows`.
pub(super) fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "# tessera profile: memory traffic of every kernel at its representative shape, measured on the emulator\n\
         # (regenerate: cargo run --features selftest -- profile --write kernels/profile-report.txt; CI runs --check)\n\
         # ld_eff/st_eff: global bytes requested / bytes of the 32-byte sectors touched; moved: sectors x 32 bytes;\n\
         # distinct: distinct bytes touched; minimum: inputs + outputs once; sh_*_wpr: shared wavefronts per request;\n\
         # sh_conflict: wavefronts / wavefronts without bank conflicts (one per active phase); h100_ns: lower-bound time on an H100 SXM, bound: what sets it\n",
    );
    out.push_str(&COLUMNS.join(" "));
    out.push('\n');
    for r in rows {
        let p = &r.total;
        let fields = [
            r.case.clone(),
            p.kernel.to_string(),
            p.launches.to_string(),
            dims(p.grid),
            dims(p.block),
            fixed(p.global_load_efficiency(), 4),
            fixed(p.global_store_efficiency(), 4),
            p.bytes_moved().to_string(),
            p.distinct_bytes().to_string(),
            p.minimum_bytes().to_string(),
            fixed(p.shared_load_wavefronts_per_request(), 3),
            fixed(p.shared_store_wavefronts_per_request(), 3),
            fixed(p.shared_conflict_factor(), 3),
            p.counters.mma.to_string(),
            p.counters.ldmatrix.to_string(),
            p.counters.cp_async.to_string(),
            p.counters.barriers.to_string(),
            format!("{:.0}", r.h100_seconds * 1e9),
            resource_token(r.h100_resource).to_string(),
        ];
        out.push_str(&fields.join(" "));
        out.push('\n');
    }
    out
}

/// One report line: its fields by column name.
pub(super) type Entry = BTreeMap<&'static str, String>;

/// Reads a report: (case, kernel) → entry.
pub(super) fn parse(text: &str, path: &str) -> Result<BTreeMap<(String, String), Entry>, ProfileError> {
    let bad = |line: usize, reason: String| ProfileError::Report { path: path.to_string(), line, reason };
    let mut header: Option<Vec<String>> = None;
    let mut entries = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(names) = &header else {
            if let Some(missing) = COLUMNS.iter().find(|c| !words.contains(c)) {
                return Err(bad(line_no, format!("the header line lacks column `{missing}`")));
            }
            header = Some(words.iter().map(|w| w.to_string()).collect());
            continue;
        };
        if words.len() != names.len() {
            return Err(bad(line_no, format!("{} fields, the header names {}", words.len(), names.len())));
        }
        let mut entry = Entry::new();
        for (name, word) in names.iter().zip(&words) {
            if let Some(column) = COLUMNS.iter().find(|c| *c == name) {
                entry.insert(*column, word.to_string());
            }
        }
        let key = (entry["case"].clone(), entry["kernel"].clone());
        if entries.insert(key.clone(), entry).is_some() {
            return Err(bad(line_no, format!("{} / {} appears twice", key.0, key.1)));
        }
    }
    if header.is_none() {
        return Err(bad(0, "no header line".to_string()));
    }
    Ok(entries)
}

/// What `--check` found.
#[derive(Debug, Default)]
pub(super) struct Comparison {
    /// Regressions: the check fails.
    pub(super) failures: Vec<String>,
    /// Other differences (improvements, new launch shapes): the report should be regenerated.
    pub(super) notes: Vec<String>,
}

fn number(e: &Entry, column: &str) -> Option<f64> {
    e.get(column).and_then(|v| v.parse::<f64>().ok())
}

/// Compares the regenerated report `new` with the checked-in `old`.
pub(super) fn compare(old: &BTreeMap<(String, String), Entry>, new: &BTreeMap<(String, String), Entry>) -> Comparison {
    let mut c = Comparison::default();
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        c.failures.push(format!("{} / {}: in the report but no longer launched", key.0, key.1));
    }
    for (key, n) in new {
        let name = format!("{} / {}", key.0, key.1);
        let Some(o) = old.get(key) else {
            c.failures.push(format!("{name}: launched but not in the report (a new kernel: regenerate the report)"));
            continue;
        };
        for column in ["ld_eff", "st_eff"] {
            match (number(o, column), number(n, column)) {
                (Some(was), Some(now)) if now < was - EFFICIENCY_TOLERANCE => {
                    c.failures.push(format!("{name}: {column} (coalescing efficiency) dropped from {was} to {now}"))
                }
                (Some(was), Some(now)) if now > was + EFFICIENCY_TOLERANCE => {
                    c.notes.push(format!("{name}: {column} improved from {was} to {now}"))
                }
                _ => {}
            }
        }
        for column in ["sh_ld_wpr", "sh_st_wpr", "sh_conflict"] {
            match (number(o, column), number(n, column)) {
                (Some(was), Some(now)) if now > was + WAVEFRONT_TOLERANCE => {
                    let what = if column == "sh_conflict" {
                        "shared-memory bank-conflict factor"
                    } else {
                        "shared-memory wavefronts per request"
                    };
                    c.failures.push(format!("{name}: {column} ({what}) grew from {was} to {now}: more bank conflicts"))
                }
                (None, Some(now)) if column == "sh_conflict" && now > 1.0 + WAVEFRONT_TOLERANCE => c
                    .failures
                    .push(format!("{name}: new shared-memory accesses with bank conflicts (conflict factor {now})")),
                (Some(was), Some(now)) if now < was - WAVEFRONT_TOLERANCE => {
                    c.notes.push(format!("{name}: {column} fell from {was} to {now}"))
                }
                _ => {}
            }
        }
        if let (Some(was), Some(now)) = (number(o, "moved"), number(n, "moved")) {
            if now > was * (1.0 + BYTES_TOLERANCE) {
                c.failures.push(format!("{name}: bytes moved grew from {was} to {now}"));
            } else if now < was * (1.0 - BYTES_TOLERANCE) {
                c.notes.push(format!("{name}: bytes moved fell from {was} to {now}"));
            }
        }
        for column in ["grid", "block", "launches", "mma", "ldmatrix", "cp_async", "barriers", "distinct", "minimum"] {
            if o.get(column) != n.get(column) {
                c.notes.push(format!(
                    "{name}: {column} changed from {} to {}",
                    o.get(column).map_or("?", |s| s.as_str()),
                    n.get(column).map_or("?", |s| s.as_str())
                ));
            }
        }
    }
    if !c.notes.is_empty() {
        c.notes.push("the report differs from this build's figures: regenerate it with --write".to_string());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "case kernel launches grid block ld_eff st_eff moved distinct minimum sh_ld_wpr sh_st_wpr \
                          sh_conflict mma ldmatrix cp_async barriers h100_ns bound\n";

    fn report(lines: &[&str]) -> BTreeMap<(String, String), Entry> {
        parse(&format!("# comment\n{HEADER}{}\n", lines.join("\n")), "test").unwrap()
    }

    const BASE: &str = "a k 1 1x1x1 32x1x1 1.0000 0.5000 4096 4096 4096 1.000 - 1.000 0 0 0 1 10 hbm";

    #[test]
    fn the_same_report_passes() {
        let c = compare(&report(&[BASE]), &report(&[BASE]));
        assert!(c.failures.is_empty() && c.notes.is_empty(), "{c:?}");
    }

    #[test]
    fn regressions_fail_naming_kernel_and_figure() {
        let old = report(&[BASE]);
        let worse = [
            ("a k 1 1x1x1 32x1x1 0.9000 0.5000 4096 4096 4096 1.000 - 1.000 0 0 0 1 10 hbm", "ld_eff"),
            ("a k 1 1x1x1 32x1x1 1.0000 0.5000 4096 4096 4096 2.000 - 2.000 0 0 0 1 10 hbm", "sh_ld_wpr"),
            ("a k 1 1x1x1 32x1x1 1.0000 0.5000 8192 4096 4096 1.000 - 1.000 0 0 0 1 10 hbm", "bytes moved"),
            ("a k 1 1x1x1 32x1x1 1.0000 0.5000 4096 4096 4096 1.000 32.000 16.500 0 0 0 1 10 hbm", "bank conflicts"),
        ];
        for (line, figure) in worse {
            let c = compare(&old, &report(&[line]));
            assert!(!c.failures.is_empty(), "{line}: {c:?}");
            assert!(c.failures.iter().all(|f| f.starts_with("a / k")), "{c:?}");
            assert!(c.failures.iter().any(|f| f.contains(figure)), "{figure}: {c:?}");
        }
        // A tiny change within the tolerance passes.
        let within = "a k 1 1x1x1 32x1x1 0.9995 0.5000 4100 4096 4096 1.000 - 1.000 0 0 0 1 10 hbm";
        assert!(compare(&old, &report(&[within])).failures.is_empty());
    }

    #[test]
    fn new_shared_accesses_fail_only_with_conflicts() {
        let old = report(&["a k 1 1x1x1 32x1x1 1.0000 0.5000 4096 4096 4096 - - - 0 0 0 1 10 hbm"]);
        let free = "a k 1 1x1x1 32x1x1 1.0000 0.5000 4096 4096 4096 1.000 4.000 1.000 0 0 0 1 10 hbm";
        assert!(compare(&old, &report(&[free])).failures.is_empty());
        let conflicted = "a k 1 1x1x1 32x1x1 1.0000 0.5000 4096 4096 4096 1.000 4.000 2.500 0 0 0 1 10 hbm";
        let c = compare(&old, &report(&[conflicted]));
        assert_eq!(c.failures.len(), 1, "{c:?}");
        assert!(c.failures[0].contains("bank conflicts"), "{c:?}");
    }

    #[test]
    fn missing_and_new_kernels_fail() {
        let other = "b k 1 1x1x1 32x1x1 1.0000 0.5000 4096 4096 4096 1.000 - 1.000 0 0 0 1 10 hbm";
        let c = compare(&report(&[BASE]), &report(&[other]));
        assert_eq!(c.failures.len(), 2, "{c:?}");
        assert!(c.failures.iter().any(|f| f.starts_with("a / k") && f.contains("no longer")));
        assert!(c.failures.iter().any(|f| f.starts_with("b / k") && f.contains("new kernel")));
    }

    #[test]
    fn improvements_only_note() {
        let better = "a k 1 1x1x1 32x1x1 1.0000 1.0000 2048 4096 4096 1.000 - 1.000 0 0 0 1 10 hbm";
        let c = compare(&report(&[BASE]), &report(&[better]));
        assert!(c.failures.is_empty(), "{c:?}");
        assert!(!c.notes.is_empty());
    }

    #[test]
    fn malformed_reports_are_errors() {
        assert!(parse("a b c\n", "x").is_err());
        assert!(parse(&format!("{HEADER}a k 1\n"), "x").is_err());
        assert!(parse(&format!("{HEADER}{BASE}\n{BASE}\n"), "x").is_err());
    }
}
