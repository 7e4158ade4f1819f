//! Element types a [`DeviceBuffer`](crate::DeviceBuffer) can hold. A leaf module: the
//! references, the error type and the device layer all build on it.

use half::{bf16, f16};

/// Runtime tag of an element type; kernels are compiled per floating dtype
/// (`<family>_<op>_f32`, `_f16`, `_bf16`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16 (`half::f16`).
    F16,
    /// bfloat16 (`half::bf16`).
    BF16,
    /// 32-bit unsigned integer.
    U32,
    /// 32-bit signed integer.
    I32,
    /// 64-bit unsigned integer.
    U64,
    /// 8-bit unsigned integer.
    U8,
}

impl DType {
    /// The suffix of kernel names compiled for this dtype.
    pub fn suffix(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::U32 => "u32",
            DType::I32 => "i32",
            DType::U64 => "u64",
            DType::U8 => "u8",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::U32 | DType::I32 => 4,
            DType::U64 => 8,
            DType::F16 | DType::BF16 => 2,
            DType::U8 => 1,
        }
    }
}

pub(crate) mod sealed {
    /// What the backends need of an element (cudarc's and bytemuck's traits). Private, so
    /// that these traits are not part of tessera's public promise and no type outside the
    /// crate can become an [`Element`](super::Element).
    pub trait Sealed:
        bytemuck::Pod + cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits + Send + Sync + 'static
    {
    }
}

/// A plain-old-data element that can live in device memory: `f32`, `f16`, `bf16`, `u32`,
/// `i32`, `u64`, `u8`. Sealed: the set of element types is tessera's to choose.
pub trait Element: sealed::Sealed + Copy + Default + std::fmt::Debug + PartialEq {
    /// The runtime tag of this type.
    const DTYPE: DType;
}

/// A floating-point element: kernels read it, compute in f32, and write it back rounded
/// to nearest even.
pub trait FloatElement: Element {
    /// The value as f32 (exact for every element type).
    fn to_f32(self) -> f32;
    /// `v` rounded to this type, to nearest even.
    fn from_f32(v: f32) -> Self;
}

macro_rules! element {
    ($t:ty, $d:ident) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
    };
}
element!(f32, F32);
element!(f16, F16);
element!(bf16, BF16);
element!(u32, U32);
element!(i32, I32);
element!(u64, U64);
element!(u8, U8);

impl FloatElement for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(v: f32) -> Self {
        v
    }
}
impl FloatElement for f16 {
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
}
impl FloatElement for bf16 {
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    fn from_f32(v: f32) -> Self {
        bf16::from_f32(v)
    }
}
