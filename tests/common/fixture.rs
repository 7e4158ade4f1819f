//! Reader for the PyTorch reference fixtures under `tests/fixtures/transformer/` and
//! `tests/fixtures/attention/` (written by the `gen_*.py` scripts beside them; see those
//! folders' README.md).
//!
//! The format is line based:
//! - a line starting with `#` is a comment (the header: package versions, what each
//!   section is, the exact PyTorch calls); blank lines are ignored;
//! - every other line is one section: `key: v v v ...` — the key, a colon, then the
//!   values separated by single spaces (an empty section has nothing after the colon);
//! - f32 values are written as their IEEE-754 bit patterns, 8 hex digits
//!   (`3f800000` = 1.0), so nothing is lost in printing; f64 values likewise as 16 hex
//!   digits (`3ff0000000000000` = 1.0); integers are decimal;
//! - a tensor `k` has its shape in the section `k.shape` (decimal); tensors are
//!   row-major (C order) in the shape PyTorch had (NCHW stays NCHW, nn.Linear weights
//!   are `[out, in]`);
//! - a key appears once per file.
//!
//! This file does not depend on the tessera crate; it is test code and panics with the
//! file and key on anything missing or malformed.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct Fixture {
    name: String,
    sections: BTreeMap<String, Vec<String>>,
}

impl Fixture {
    /// Loads `tests/fixtures/transformer/<name>` (`.txt` is added when `name` has no
    /// extension).
    pub fn load(name: &str) -> Fixture {
        Fixture::load_in("transformer", name)
    }

    /// Loads `tests/fixtures/<dir>/<name>` (`.txt` is added when `name` has no extension).
    pub fn load_in(dir: &str, name: &str) -> Fixture {
        let mut path = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        path.push("tests/fixtures");
        path.push(dir);
        if name.contains('.') {
            path.push(name);
        } else {
            path.push(format!("{name}.txt"));
        }
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: cannot read: {e}", path.display()));
        Fixture::parse(name, &text)
    }

    /// Parses fixture text (what `load` does after reading the file); `name` is only
    /// used in panic messages.
    pub fn parse(name: &str, text: &str) -> Fixture {
        let mut sections = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, values) =
                line.split_once(':').unwrap_or_else(|| panic!("fixture {name}: line {}: no `key:` in {line:?}", n + 1));
            let key = key.trim().to_string();
            let values: Vec<String> = values.split_whitespace().map(str::to_string).collect();
            if sections.insert(key.clone(), values).is_some() {
                panic!("fixture {name}: line {}: key {key:?} appears twice", n + 1);
            }
        }
        Fixture { name: name.to_string(), sections }
    }

    pub fn has(&self, key: &str) -> bool {
        self.sections.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }

    fn raw(&self, key: &str) -> &[String] {
        self.sections.get(key).unwrap_or_else(|| {
            let keys: Vec<&str> = self.keys().collect();
            panic!("fixture {}: no section {key:?} (it has {keys:?})", self.name)
        })
    }

    /// Checks `n` values against `key.shape` when that section exists.
    fn check_len(&self, key: &str, n: usize) {
        let shape_key = format!("{key}.shape");
        if self.has(&shape_key) {
            let want: usize = self.usizes(&shape_key).iter().product();
            assert_eq!(
                n,
                want,
                "fixture {}: {key} has {n} values, its shape {:?} says {want}",
                self.name,
                self.usizes(&shape_key)
            );
        }
    }

    fn ints<T: std::str::FromStr>(&self, key: &str, what: &str) -> Vec<T> {
        self.raw(key)
            .iter()
            .map(|v| v.parse::<T>().unwrap_or_else(|_| panic!("fixture {}: {key}: {v:?} is not a {what}", self.name)))
            .collect()
    }

    /// f32 values from their hex bit patterns.
    pub fn f32s(&self, key: &str) -> Vec<f32> {
        let out: Vec<f32> = self
            .raw(key)
            .iter()
            .map(|v| {
                let bits = u32::from_str_radix(v, 16)
                    .unwrap_or_else(|_| panic!("fixture {}: {key}: {v:?} is not an f32 bit pattern", self.name));
                assert_eq!(v.len(), 8, "fixture {}: {key}: {v:?} is not 8 hex digits", self.name);
                f32::from_bits(bits)
            })
            .collect();
        self.check_len(key, out.len());
        out
    }

    /// f64 values from their hex bit patterns (16 hex digits).
    pub fn f64s(&self, key: &str) -> Vec<f64> {
        let out: Vec<f64> = self
            .raw(key)
            .iter()
            .map(|v| {
                let bits = u64::from_str_radix(v, 16)
                    .unwrap_or_else(|_| panic!("fixture {}: {key}: {v:?} is not an f64 bit pattern", self.name));
                assert_eq!(v.len(), 16, "fixture {}: {key}: {v:?} is not 16 hex digits", self.name);
                f64::from_bits(bits)
            })
            .collect();
        self.check_len(key, out.len());
        out
    }

    pub fn u8s(&self, key: &str) -> Vec<u8> {
        let out = self.ints::<u8>(key, "u8");
        self.check_len(key, out.len());
        out
    }

    pub fn u32s(&self, key: &str) -> Vec<u32> {
        let out = self.ints::<u32>(key, "u32");
        self.check_len(key, out.len());
        out
    }

    /// Decimal integers as usize: shapes and sizes.
    pub fn usizes(&self, key: &str) -> Vec<usize> {
        self.ints::<usize>(key, "usize")
    }

    /// One decimal integer.
    pub fn usize(&self, key: &str) -> usize {
        let v = self.usizes(key);
        assert_eq!(v.len(), 1, "fixture {}: {key}: expected one value, got {v:?}", self.name);
        v[0]
    }

    /// The shape of tensor `key` (the section `key.shape`).
    pub fn shape(&self, key: &str) -> Vec<usize> {
        self.usizes(&format!("{key}.shape"))
    }
}
