//! A safetensors file read into f32 host tensors, taken by name.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// One tensor's f32 host copy, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// The shape, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

impl HostTensor {
    /// A tensor of `shape` holding `data`; `Error::LengthMismatch` (argument `data`) when
    /// `data` does not hold `shape.iter().product()` values.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<HostTensor> {
        let expected = element_count(&shape).ok_or_else(|| Error::invalid("shape", "element count overflows usize"))?;
        if data.len() != expected {
            return Err(Error::LengthMismatch { arg: "data", expected, actual: data.len() });
        }
        Ok(HostTensor { shape, data })
    }

    /// The number of values, `shape.iter().product()`.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no values (a zero in its shape).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// The tensors of one checkpoint, by name, each converted to f32, and the file's
/// `__metadata__` (string keys and values; empty when the file has none).
///
/// A model loader takes every tensor it needs once ([`Checkpoint::take`], with the shape it
/// expects) and then calls [`Checkpoint::finish`], which fails on any tensor left over: a
/// checkpoint of another architecture (or variant) is an error, never a silent partial load.
/// The metadata is only read ([`Checkpoint::metadata`]); `finish` does not look at it.
#[derive(Default, Clone)]
pub struct Checkpoint {
    tensors: BTreeMap<String, HostTensor>,
    metadata: BTreeMap<String, String>,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and shapes, not the (millions of) values.
        f.debug_map().entries(self.tensors.iter().map(|(name, t)| (name, &t.shape))).finish()
    }
}

impl Checkpoint {
    /// Parses a whole safetensors file held in memory.
    ///
    /// Every tensor of dtype F32, F16 or BF16 is converted to f32 (little-endian, read byte by
    /// byte: the data need not be aligned). A tensor of any other dtype is
    /// `Error::TensorDtype` naming it; a truncated or corrupt file (header length, header JSON,
    /// offsets, a data length that does not match the shape) is `Error::Checkpoint`. Nothing
    /// is allocated before the header has been validated against the buffer's length. The
    /// file's `__metadata__` is kept ([`Checkpoint::metadata`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
        parse(bytes, None)
    }

    /// Reads and parses the safetensors file at `path`, as [`Checkpoint::from_bytes`]; an
    /// unreadable file is `Error::Checkpoint`, and every `Error::Checkpoint` names the path.
    /// The whole file is read into memory: the peak is the file plus its f32 copies.
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Checkpoint { reason: format!("cannot read {}: {e}", path.display()) })?;
        parse(&bytes, Some(path))
    }

    /// A checkpoint of the given tensors (for tests and for converted weights). Fails with
    /// `Error::Checkpoint` on a name given twice or a tensor whose data does not match its
    /// shape.
    pub fn from_tensors<S: Into<String>>(tensors: impl IntoIterator<Item = (S, HostTensor)>) -> Result<Checkpoint> {
        let mut map = BTreeMap::new();
        for (name, tensor) in tensors {
            let name = name.into();
            if element_count(&tensor.shape) != Some(tensor.data.len()) {
                return Err(Error::Checkpoint {
                    reason: format!("tensor `{name}` has shape {:?} but {} values", tensor.shape, tensor.data.len()),
                });
            }
            if map.contains_key(&name) {
                return Err(Error::Checkpoint { reason: format!("tensor `{name}` given twice") });
            }
            map.insert(name, tensor);
        }
        Ok(Checkpoint { tensors: map, metadata: BTreeMap::new() })
    }

    /// This checkpoint with `metadata` as its `__metadata__` (replacing any it had).
    pub fn with_metadata<K: Into<String>, V: Into<String>>(
        mut self,
        metadata: impl IntoIterator<Item = (K, V)>,
    ) -> Checkpoint {
        self.metadata = metadata.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self
    }

    /// The file's `__metadata__`, sorted by key (empty when it has none).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The metadata, to edit (for converted weights and for tests).
    pub fn metadata_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.metadata
    }

    /// Adds tensor `name` (replacing and returning one of that name). `Error::Checkpoint`
    /// when its data does not match its shape; the checkpoint is then unchanged.
    pub fn insert(&mut self, name: impl Into<String>, tensor: HostTensor) -> Result<Option<HostTensor>> {
        let name = name.into();
        if element_count(&tensor.shape) != Some(tensor.data.len()) {
            return Err(Error::Checkpoint {
                reason: format!("tensor `{name}` has shape {:?} but {} values", tensor.shape, tensor.data.len()),
            });
        }
        Ok(self.tensors.insert(name, tensor))
    }

    /// Moves every tensor named `{prefix}rest` out of this checkpoint into a new one, as
    /// `rest` (the prefix stripped, e.g. `"encoder."`), with no metadata: a sub-model's
    /// tensors for its own loader. A loader's errors then name `rest`; put the prefix back
    /// when reporting them.
    pub fn split_prefix(&mut self, prefix: &str) -> Checkpoint {
        let names: Vec<String> = self.tensors.keys().filter(|n| n.starts_with(prefix)).cloned().collect();
        let mut tensors = BTreeMap::new();
        for name in names {
            if let Some(t) = self.tensors.remove(&name) {
                tensors.insert(name[prefix.len()..].to_string(), t);
            }
        }
        Checkpoint { tensors, metadata: BTreeMap::new() }
    }

    /// The identity of this checkpoint's content: FNV-1a 64 (offset basis
    /// `0xcbf29ce484222325`, prime `0x100000001b3`, one byte at a time) over this byte
    /// stream, every integer a u64 little-endian:
    ///
    /// 1. the number of tensors (those not yet taken); then for each tensor in sorted name
    ///    order (byte order of the UTF-8 names): the name's byte length and its bytes, the
    ///    rank and each dimension outermost first, and each value's f32 bits (`to_bits`,
    ///    little-endian) in row-major order;
    /// 2. the number of metadata entries; then for each entry in sorted key order: the
    ///    key's byte length and bytes, the value's byte length and bytes.
    ///
    /// The lengths make the stream unambiguous (no two different checkpoints give the same
    /// stream). The values hashed are the f32 copies, so an f16 or bf16 file and its exact
    /// f32 conversion hash alike; the file's byte layout (header order, padding, dtype)
    /// does not enter. Nothing depends on a hash map's iteration order.
    pub fn parameter_hash(&self) -> u64 {
        let mut h = Fnv1a::new();
        h.u64(self.tensors.len() as u64);
        for (name, t) in &self.tensors {
            h.str(name);
            h.u64(t.shape.len() as u64);
            for &d in &t.shape {
                h.u64(d as u64);
            }
            for &v in &t.data {
                h.bytes(&v.to_bits().to_le_bytes());
            }
        }
        h.u64(self.metadata.len() as u64);
        for (k, v) in &self.metadata {
            h.str(k);
            h.str(v);
        }
        h.0
    }

    /// The tensors (not yet taken) as a safetensors file of F32 tensors, with the metadata
    /// as its `__metadata__` (none when empty). [`Checkpoint::from_bytes`] reads it back
    /// to the same tensors and metadata (the same [`Checkpoint::parameter_hash`]); the
    /// bytes themselves may differ between runs in the order of the metadata entries (the
    /// `safetensors` crate writes them from a hash map). `Error::Checkpoint` when the
    /// `safetensors` crate refuses them.
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let raw: Vec<(&str, &[usize], Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| (name.as_str(), t.shape.as_slice(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect()))
            .collect();
        let views = raw
            .iter()
            .map(|(name, shape, bytes)| {
                safetensors::tensor::TensorView::new(Dtype::F32, shape.to_vec(), bytes)
                    .map(|v| (*name, v))
                    .map_err(|e| Error::Checkpoint { reason: format!("tensor `{name}`: {e}") })
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata =
            (!self.metadata.is_empty()).then(|| self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        safetensors::serialize(views, metadata)
            .map_err(|e| Error::Checkpoint { reason: format!("cannot write safetensors: {e}") })
    }

    /// The names of the tensors not yet taken, in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.tensors.keys().map(String::as_str)
    }

    /// The number of tensors not yet taken.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether every tensor has been taken.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Whether tensor `name` is present (and not yet taken).
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The shape of tensor `name`, or None when absent (or already taken).
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// Tensor `name` without taking it, or None when absent.
    pub fn get(&self, name: &str) -> Option<&HostTensor> {
        self.tensors.get(name)
    }

    /// Removes tensor `name` and returns it: `Error::MissingTensor` when absent (or taken
    /// before), `Error::TensorShape` (both shapes) when its shape is not `expected`; on an
    /// error the checkpoint is unchanged.
    pub fn take(&mut self, name: &str, expected: &[usize]) -> Result<HostTensor> {
        let tensor = self.tensors.get(name).ok_or_else(|| Error::MissingTensor { name: name.to_string() })?;
        if tensor.shape != expected {
            return Err(Error::TensorShape {
                name: name.to_string(),
                expected: expected.to_vec(),
                actual: tensor.shape.clone(),
            });
        }
        self.tensors.remove(name).ok_or_else(|| Error::MissingTensor { name: name.to_string() })
    }

    /// [`Checkpoint::take`] with the PyTorch shape `expected`, then the same memory viewed as
    /// `new_shape`: a patch convolution `[D, C, p, p]` as the GEMM's `[D, C·p·p]`, a position
    /// embedding `[1, T, D]` as `[T, D]`. `Error::InvalidArgument` (argument `new_shape`) when
    /// the two shapes do not have the same number of elements.
    pub fn take_reshaped(&mut self, name: &str, expected: &[usize], new_shape: &[usize]) -> Result<HostTensor> {
        if element_count(expected) != element_count(new_shape) {
            return Err(Error::invalid(
                "new_shape",
                format!("{new_shape:?} does not have the element count of {expected:?} (tensor `{name}`)"),
            ));
        }
        let mut tensor = self.take(name, expected)?;
        tensor.shape = new_shape.to_vec();
        Ok(tensor)
    }

    /// Ends a load: `Error::UnexpectedTensor` naming the first tensor not taken (in sorted
    /// order) and how many others were left, or Ok when every tensor was taken.
    pub fn finish(self) -> Result<()> {
        match self.tensors.keys().next() {
            None => Ok(()),
            Some(first) => Err(Error::UnexpectedTensor { name: first.clone(), others: self.tensors.len() - 1 }),
        }
    }
}

/// FNV-1a, 64 bits.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }
}

/// `shape.iter().product()`, None on overflow.
fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

fn parse(bytes: &[u8], path: Option<&Path>) -> Result<Checkpoint> {
    let corrupt = |what: String| Error::Checkpoint {
        reason: match path {
            Some(p) => format!("{}: {what}", p.display()),
            None => what,
        },
    };
    let file = SafeTensors::deserialize(bytes).map_err(|e| corrupt(format!("not a valid safetensors file: {e}")))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.iter() {
        let size = match view.dtype() {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            other => return Err(Error::TensorDtype { name: name.to_string(), dtype: format!("{other:?}") }),
        };
        let shape = view.shape().to_vec();
        let raw = view.data();
        // safetensors has validated the offsets; check again before allocating.
        let count = element_count(&shape)
            .filter(|n| n.checked_mul(size) == Some(raw.len()))
            .ok_or_else(|| corrupt(format!("tensor `{name}`: {} bytes do not hold shape {shape:?}", raw.len())))?;
        let mut data = Vec::with_capacity(count);
        match view.dtype() {
            Dtype::F32 => data.extend(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            Dtype::F16 => data.extend(raw.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())),
            _ => data.extend(raw.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        }
        tensors.insert(name.to_string(), HostTensor { shape, data });
    }
    let metadata = SafeTensors::read_metadata(bytes)
        .map_err(|e| corrupt(format!("not a valid safetensors file: {e}")))?
        .1
        .metadata()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Checkpoint { tensors, metadata })
}

impl Checkpoint {
    /// The shape of tensor `name` as `N` dimensions: `Error::MissingTensor` when absent,
    /// `Error::Config` (field `name`) when it has another rank.
    pub(crate) fn dims<const N: usize>(&self, name: &str) -> Result<[usize; N]> {
        let shape = self.shape(name).ok_or_else(|| Error::MissingTensor { name: name.to_string() })?;
        <[usize; N]>::try_from(shape).map_err(|_| Error::Config {
            field: name.to_string(),
            reason: format!("expected a {N}-dimensional tensor, the checkpoint has shape {shape:?}"),
        })
    }

    /// The number of blocks `{prefix}.0.`, `{prefix}.1.`, ...: the indices present must be
    /// 0..n with none missing (`Error::Config`, field `field`), and n ≥ 1. Names under
    /// `prefix` whose next segment is not a number are left for [`Checkpoint::finish`].
    pub(crate) fn block_count(&self, prefix: &str, field: &str) -> Result<usize> {
        let lead = format!("{prefix}.");
        let mut indices: Vec<usize> = self
            .names()
            .filter_map(|n| n.strip_prefix(lead.as_str()))
            .filter_map(|rest| rest.split('.').next())
            .filter(|i| i == &"0" || !i.starts_with('0'))
            .filter_map(|i| i.parse().ok())
            .collect();
        indices.sort_unstable();
        indices.dedup();
        if indices.is_empty() {
            return Err(Error::Config { field: field.to_string(), reason: format!("no `{prefix}.N.*` tensors") });
        }
        if let Some(gap) = indices.iter().enumerate().find(|(i, &n)| *i != n).map(|(i, _)| i) {
            return Err(Error::Config {
                field: field.to_string(),
                reason: format!(
                    "`{prefix}.{gap}.*` is missing but `{prefix}.{}.*` is present",
                    indices[indices.len() - 1]
                ),
            });
        }
        Ok(indices.len())
    }
}
