//! [`BackendKind`]: which implementation a device runs (a leaf: it imports nothing, so
//! the error type can name it without depending on the device layer).

/// Which implementation a [`Device`](super::Device) runs kernels with.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// An NVIDIA GPU through the CUDA driver.
    Cuda,
    /// The kernel sources compiled for the host and run by the emulator (slow, exact).
    Emulator,
    /// The plain-Rust CPU reference implementations.
    Cpu,
}
