//! The host build's view of `__shared__` variables.
//!
//! On a GPU a `__shared__` variable lives in the block's shared memory. In the emulator it
//! must too: the emulator poisons shared memory at every block start, checks every access
//! against the block's shared window, tracks races and uninitialised reads per byte, and
//! enforces the 48 KiB static limit, none of which it could do if the variable were an
//! ordinary C++ static. So the host compilation of each kernel file goes through a copy in
//! which every in-function declaration
//!
//! ```text
//! __shared__ [__align__(N)] TYPE NAME[DIMS];
//! ```
//!
//! becomes a reference into the block's shared arena:
//!
//! ```text
//! auto& NAME = ::tessera_host::static_shared<TYPE DIMS, N>("NAME", [] {});
//! ```
//!
//! (the lambda gives each declaration site and template instantiation its own identity).
//! Lines keep their numbers (`#line`), so messages point into the original file. A
//! `__shared__` the rewrite does not understand stops the build with the line; one left in a
//! header fails to compile (cuda_host.h defines `__shared__` as an undeclared name).

use std::path::Path;

/// The source of `cu` with its static `__shared__` declarations rewritten, prefixed by a
/// `#line` directive naming the original file.
pub fn rewrite(cu: &Path, source: &str) -> String {
    let mut out = format!("#line 1 \"{}\"\n", cu.display());
    for (i, line) in source.lines().enumerate() {
        out.push_str(&rewrite_line(line).unwrap_or_else(|reason| {
            panic!("{}:{}: cannot emulate this __shared__ declaration ({reason}): {line}", cu.display(), i + 1)
        }));
        out.push('\n');
    }
    out
}

fn rewrite_line(line: &str) -> Result<String, &'static str> {
    let code_end = line.find("//").unwrap_or(line.len());
    let (code, comment) = line.split_at(code_end);
    let Some(at) = code.find("__shared__") else { return Ok(line.to_string()) };
    let before = &code[..at];
    if before.trim_start().starts_with('#') || before.contains("extern") {
        return Ok(line.to_string()); // a macro definition, or dynamic shared memory
    }
    if !before.trim().is_empty() {
        return Err("__shared__ must start the declaration");
    }
    let mut rest = code[at + "__shared__".len()..].trim();
    let mut align = String::from("0");
    if let Some(r) = rest.strip_prefix("__align__(") {
        let close = r.find(')').ok_or("unclosed __align__(")?;
        align = r[..close].trim().to_string();
        rest = r[close + 1..].trim();
    }
    let decl = rest.strip_suffix(';').ok_or("one declaration per line, ending in `;`")?.trim();
    if decl.contains('=') || decl.contains(',') {
        return Err("no initialisers, one variable per declaration");
    }
    let dims_at = decl.find('[').unwrap_or(decl.len());
    let (head, dims) = decl.split_at(dims_at);
    let head = head.trim_end();
    let name_at = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
    let (ty, name) = head.split_at(name_at);
    let ty = ty.trim();
    if name.is_empty() || ty.is_empty() || name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return Err("expected `TYPE NAME` or `TYPE NAME[DIMS]`");
    }
    Ok(format!(
        "{before}auto& {name} = ::tessera_host::static_shared<{ty}{dims}, {align}>(\"{name}\", [] {{}});{comment}"
    ))
}
