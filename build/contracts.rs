//! One contract per kernel: the Rust declarations (`declare_kernels!` in src/kernels/<family>.rs
//! and src/selftest.rs) are parsed here and checked against the C definitions in
//! kernels/<family>.cu (kernels/selftest/*.cu), so that the two cannot drift apart:
//!
//! - parameter names, in order, are compared with the C definition's (case-insensitively):
//!   swapping two parameters of the same type fails the build here, with both lists;
//! - the C function type is checked by the C++ compiler: each kernel file is compiled for
//!   the host through a generated unit that includes it and `static_assert`s that every
//!   declared symbol has exactly the function type the Rust declaration implies
//!   (`input T` → `const T*`, `output T` → `T*`, `scalar S` → `S`), so a swapped pair of
//!   different types, or a scalar of another width, fails the build too.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// One argument of a declared kernel.
#[derive(Debug, Clone)]
pub struct Arg {
    pub name: String,
    pub kind: String,
    pub ty: String,
}

/// One `fn` of a `declare_kernels!` block.
#[derive(Debug, Clone)]
pub struct Decl {
    pub name: String,
    /// The dtype suffixes of a generic kernel (`<T: f32 | f16>`), empty for a plain one.
    pub dtypes: Vec<String>,
    /// The generic parameter's name (`T`), empty for a plain kernel.
    pub generic: String,
    pub args: Vec<Arg>,
    pub source: PathBuf,
}

impl Decl {
    /// The linked symbols: `name_<dtype>` per dtype, or `name`.
    pub fn symbols(&self) -> Vec<(String, Option<String>)> {
        if self.dtypes.is_empty() {
            vec![(self.name.clone(), None)]
        } else {
            self.dtypes.iter().map(|d| (format!("{}_{d}", self.name), Some(d.clone()))).collect()
        }
    }
}

/// Every declaration of every `declare_kernels!` block in `file`.
pub fn parse_rust(file: &Path) -> Vec<Decl> {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut decls = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("declare_kernels! {") {
        let body_start = at + "declare_kernels! {".len();
        let body = &rest[body_start..];
        let end =
            matching_close(body, '{', '}').unwrap_or_else(|| panic!("{}: unclosed declare_kernels!", file.display()));
        let block: String =
            body[..end].lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join(" ");
        for item in block.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            decls.push(parse_fn(item, file));
        }
        rest = &body[end..];
    }
    decls
}

fn parse_fn(item: &str, file: &Path) -> Decl {
    let bad = |why: &str| -> ! { panic!("{}: cannot read kernel declaration `{item}`: {why}", file.display()) };
    let item = item.strip_prefix("fn ").unwrap_or_else(|| bad("expected `fn`")).trim();
    let open = item.find('(').unwrap_or_else(|| bad("no `(`"));
    let head = item[..open].trim();
    let (name, generic, dtypes) = match head.find('<') {
        Some(lt) => {
            let inner = head[lt + 1..].trim_end_matches('>');
            let (g, list) = inner.split_once(':').unwrap_or_else(|| bad("generic without dtypes"));
            let dtypes = list.split('|').map(|d| d.trim().to_string()).collect();
            (head[..lt].trim().to_string(), g.trim().to_string(), dtypes)
        }
        None => (head.to_string(), String::new(), Vec::new()),
    };
    let close = item.rfind(')').unwrap_or_else(|| bad("no `)`"));
    let args = item[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            let (n, rest) = a.split_once(':').unwrap_or_else(|| bad("argument without `:`"));
            let mut words = rest.split_whitespace();
            let kind = words.next().unwrap_or_else(|| bad("argument without kind")).to_string();
            let ty = words.collect::<Vec<_>>().join(" ");
            if !["input", "output", "scalar"].contains(&kind.as_str()) || ty.is_empty() {
                bad("argument kind must be input, output or scalar, followed by a type");
            }
            Arg { name: n.trim().trim_start_matches("r#").to_string(), kind, ty }
        })
        .collect();
    Decl { name, dtypes, generic, args, source: file.to_path_buf() }
}

/// Index of the bracket closing the one just before `s` (depth 1 at the start).
fn matching_close(s: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 1usize;
    for (i, c) in s.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// The C type of a Rust element or scalar type of a declaration.
fn c_type(ty: &str, dtype: Option<&str>, decl: &Decl) -> String {
    let ty = if ty == decl.generic { dtype.expect("generic type in a plain kernel") } else { ty };
    match ty {
        "f32" => "float".into(),
        "f16" => "tessera::f16".into(),
        "bf16" => "tessera::bf16".into(),
        "u32" => "unsigned".into(),
        "i32" => "int".into(),
        "u64" => "unsigned long long".into(),
        "i64" => "long long".into(),
        "u8" => "unsigned char".into(),
        "u16" => "unsigned short".into(),
        // A #[repr(C)] parameter struct: the C struct of the same name.
        other => other.into(),
    }
}

/// The C function type a declaration implies for one of its symbols.
fn c_function_type(decl: &Decl, dtype: Option<&str>) -> String {
    let params: Vec<String> = decl
        .args
        .iter()
        .map(|a| {
            let t = c_type(&a.ty, dtype, decl);
            match a.kind.as_str() {
                "input" => format!("const {t}*"),
                "output" => format!("{t}*"),
                _ => t,
            }
        })
        .collect();
    format!("void (*)({})", params.join(", "))
}

/// The parameter names of the C definition of `decl` in `source`, if it is defined there.
/// A generic kernel is found as `name_##SUFFIX(`, a plain one as `void name(`.
pub fn c_param_names(decl: &Decl, source: &str) -> Option<Vec<String>> {
    let source = source.replace("\\\n", " ");
    let pattern = if decl.dtypes.is_empty() { format!("{}(", decl.name) } else { format!("{}_##", decl.name) };
    {
        let mut from = 0;
        while let Some(found) = source[from..].find(&pattern) {
            let at = from + found;
            from = at + pattern.len();
            // The name must start here (not be the tail of a longer identifier) and, for a
            // plain kernel, follow its return type or `__launch_bounds__(...)`: a definition,
            // not a call.
            let before = &source[..at];
            if before.chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let before = before.trim_end();
            if decl.dtypes.is_empty() && !(before.ends_with("void") || before.ends_with(')')) {
                continue;
            }
            let after = &source[at + pattern.len()..];
            let params_start = if decl.dtypes.is_empty() {
                0
            } else {
                // `name_##SUFFIX(`: skip the suffix identifier.
                let ident = after.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
                if !after[ident..].trim_start().starts_with('(') {
                    continue;
                }
                ident + after[ident..].find('(')? + 1
            };
            let params = &after[params_start..];
            let end = matching_close(params, '(', ')')?;
            let names = split_top_level(&params[..end])
                .iter()
                .map(|p| {
                    p.trim()
                        .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .find(|w| !w.is_empty())
                        .unwrap_or("")
                        .to_string()
                })
                .filter(|n| !n.is_empty() && n != "void")
                .collect();
            return Some(names);
        }
    }
    None
}

fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        parts.last_mut().unwrap().push(c);
    }
    parts.retain(|p| !p.trim().is_empty());
    parts
}

/// Checks the names of every declaration defined in `cu` and returns the C++ unit that
/// compiles `cu` with the type checks. `decls` are the candidates; those not defined in
/// `cu` are returned in the second value (a family file must define all of its own).
/// `include` is the file the unit includes: `cu` itself or its host rewrite (build/static_shared.rs).
pub fn contract_unit(cu: &Path, include: &Path, decls: &[Decl], manifest: &Path) -> (String, Vec<Decl>) {
    let source = fs::read_to_string(cu).unwrap_or_else(|e| panic!("{}: {e}", cu.display()));
    let rel = |p: &Path| p.strip_prefix(manifest).unwrap_or(p).display().to_string();
    let mut unit = format!(
        "// Generated by build.rs (build/contracts.rs): {} with the function types its Rust\n\
         // declarations imply. Do not edit.\n#include \"{}\"\n#include <type_traits>\n\n",
        rel(cu),
        include.display()
    );
    let mut elsewhere = Vec::new();
    for decl in decls {
        let Some(c_names) = c_param_names(decl, &source) else {
            elsewhere.push(decl.clone());
            continue;
        };
        let rust_names: Vec<String> = decl.args.iter().map(|a| a.name.clone()).collect();
        let same = c_names.len() == rust_names.len()
            && c_names.iter().zip(&rust_names).all(|(c, r)| c.eq_ignore_ascii_case(r));
        if !same {
            panic!(
                "kernel contract: {} declares {}({}) but {} defines it with parameters ({}); \
                 the parameter order and names must agree",
                rel(&decl.source),
                decl.name,
                rust_names.join(", "),
                rel(cu),
                c_names.join(", ")
            );
        }
        for (symbol, dtype) in decl.symbols() {
            let ty = c_function_type(decl, dtype.as_deref());
            writeln!(
                unit,
                "static_assert(std::is_same_v<decltype(&{symbol}), {ty}>,\n    \"kernel contract: the C type of \
                 {symbol} in {} differs from its declaration in {} (expected {ty})\");",
                rel(cu),
                rel(&decl.source)
            )
            .unwrap();
        }
    }
    (unit, elsewhere)
}
