//! Devices and their memory: the three backends of DESIGN.md.
//!
//! - [`BackendKind::Cuda`]: a real GPU through cudarc (driver loaded at run time).
//! - [`BackendKind::Emulator`]: the same kernel sources compiled as host C++, executed
//!   thread by thread by the emulator in `kernels/host/`. Tests run here.
//! - [`BackendKind::Cpu`]: the plain-Rust reference implementations.
//!
//! Kernel wrappers take a [`Device`] and [`DeviceBuffer`]s; the launch path (argument
//! checks, launch configuration, argument order) is shared by Cuda and Emulator.

mod buffer;
pub(crate) mod cuda;
mod dtype;
pub(crate) mod emulator;
mod host_alloc;
mod launch_config;

pub use buffer::DeviceBuffer;
pub use dtype::{DType, Element, FloatElement};
pub(crate) use launch_config::LaunchConfig;

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Which implementation a [`Device`] runs kernels with.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// An NVIDIA GPU through the CUDA driver.
    Cuda,
    /// The kernel sources compiled for the host and run by the emulator (slow, exact).
    Emulator,
    /// The plain-Rust CPU reference implementations.
    Cpu,
}

pub(crate) enum Backend {
    Cuda(cuda::CudaBackend),
    Emulator,
    Cpu,
}

struct Inner {
    id: u64,
    backend: Backend,
    note: String,
}

/// A handle to one backend instance. Cheap to clone; buffers remember their device and
/// a call that mixes devices returns [`Error::WrongDevice`].
#[derive(Clone)]
pub struct Device {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.name())
    }
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Device {
    fn new(backend: Backend, note: String) -> Self {
        Device { inner: Arc::new(Inner { id: next_id(), backend, note }) }
    }

    /// The GPU with the given ordinal. Fails with [`Error::CudaUnavailable`] (never a panic)
    /// when no driver is installed, no GPU is present, or the crate was built without nvcc.
    pub fn cuda(ordinal: usize) -> Result<Self> {
        let backend = cuda::CudaBackend::new(ordinal)?;
        let note = format!("CUDA device {ordinal}: {}", backend.name());
        Ok(Self::new(Backend::Cuda(backend), note))
    }

    /// The kernel emulator: runs the real kernel sources on the CPU, one fiber per GPU thread.
    pub fn emulator() -> Self {
        Self::new(Backend::Emulator, "kernel emulator (host-compiled kernel sources)".into())
    }

    /// The plain-Rust CPU reference implementations.
    pub fn cpu() -> Self {
        Self::new(Backend::Cpu, "CPU reference implementations".into())
    }

    /// `Cuda` device 0 when usable, else `Cpu`. [`Device::selection_note`] says which was
    /// picked and why.
    pub fn best() -> Self {
        match Self::cuda(0) {
            Ok(dev) => dev,
            Err(err) => Self::new(Backend::Cpu, format!("CPU reference implementations (no usable GPU: {err})")),
        }
    }

    /// Which backend this device runs.
    pub fn kind(&self) -> BackendKind {
        match self.inner.backend {
            Backend::Cuda(_) => BackendKind::Cuda,
            Backend::Emulator => BackendKind::Emulator,
            Backend::Cpu => BackendKind::Cpu,
        }
    }

    /// A short name: `cuda:0`, `emulator#3`, `cpu#1` (the number tells instances apart).
    pub fn name(&self) -> String {
        match &self.inner.backend {
            Backend::Cuda(c) => format!("cuda:{}", c.ordinal()),
            Backend::Emulator => format!("emulator#{}", self.inner.id),
            Backend::Cpu => format!("cpu#{}", self.inner.id),
        }
    }

    /// One sentence on what this device is and, for [`Device::best`], why it was chosen.
    pub fn selection_note(&self) -> &str {
        &self.inner.note
    }

    /// Waits until all work queued on this device has finished (a no-op on host backends).
    pub fn synchronize(&self) -> Result<()> {
        match &self.inner.backend {
            Backend::Cuda(c) => c.synchronize(),
            _ => Ok(()),
        }
    }

    /// Peak DRAM bandwidth in bytes/s (GPU only): memory clock × bus width × 2 (DDR).
    pub fn peak_memory_bandwidth(&self) -> Option<f64> {
        match &self.inner.backend {
            Backend::Cuda(c) => c.peak_memory_bandwidth(),
            _ => None,
        }
    }

    /// Dense peak FLOP/s for `dtype` (GPU only; sm_80 and sm_90): f32 on CUDA cores,
    /// f16/bf16 on tensor cores with f32 accumulation.
    pub fn peak_flops(&self, dtype: DType) -> Option<f64> {
        match &self.inner.backend {
            Backend::Cuda(c) => c.peak_flops(dtype),
            _ => None,
        }
    }

    /// Copies `data` to a new buffer on this device.
    pub fn upload<T: Element>(&self, data: &[T]) -> Result<DeviceBuffer<T>> {
        DeviceBuffer::upload(self, data)
    }

    /// A new buffer of `len` zeros on this device.
    pub fn zeros<T: Element>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        DeviceBuffer::zeros(self, len)
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    pub(crate) fn same_as(&self, other: &Device) -> bool {
        self.inner.id == other.inner.id
    }

    /// Fails with [`Error::WrongDevice`] unless `buf` lives on this device.
    pub(crate) fn check_owns<T: Element>(&self, arg: &'static str, buf: &DeviceBuffer<T>) -> Result<()> {
        self.check_same(arg, buf.device())
    }

    /// Fails with [`Error::WrongDevice`] unless `owner` (of argument `arg`) is this device.
    pub(crate) fn check_same(&self, arg: &'static str, owner: &Device) -> Result<()> {
        if self.same_as(owner) {
            Ok(())
        } else {
            Err(Error::WrongDevice { arg, buffer_device: owner.name(), device: self.name() })
        }
    }
}
