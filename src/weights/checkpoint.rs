//! A safetensors file read into f32 host tensors, taken by name.

/// One tensor's f32 host copy, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// The shape, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

/// The tensors of one checkpoint, by name (filled in by the loader).
#[derive(Debug, Default)]
pub struct Checkpoint {
    _todo: (),
}
