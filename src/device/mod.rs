//! Devices and their memory: the three backends (see docs/design.md).
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
pub(crate) mod emulator;
mod host_alloc;
pub(crate) mod kind;
mod launch_config;
mod scratch;
mod status;
mod view;

pub use crate::element::{DType, Element, FloatElement};
pub use buffer::DeviceBuffer;
pub use kind::BackendKind;
pub(crate) use launch_config::LaunchConfig;
pub(crate) use status::PendingCheck;
pub use view::{BufferView, BufferViewMut};

use crate::error::{Error, Result};
use buffer::Storage;
use host_alloc::HostVec;
use status::{StatusWords, NO_ROW};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) enum Backend {
    Cuda(cuda::CudaBackend),
    Emulator,
    Cpu,
}

struct Inner {
    id: u64,
    backend: Backend,
    note: String,
    /// Status words of the invalid-value checks (see `status.rs`).
    status: Mutex<StatusWords>,
    /// Host↔device synchronizations so far (downloads and `synchronize`).
    syncs: AtomicU64,
    /// Buffers allocated on this device so far (see [`Device::allocations`]).
    allocations: AtomicU64,
    /// Scratch buffers of ops, reused across calls (see `scratch.rs`).
    scratch: Mutex<scratch::ScratchPool>,
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
        Device {
            inner: Arc::new(Inner {
                id: next_id(),
                backend,
                note,
                status: Mutex::new(StatusWords::default()),
                syncs: AtomicU64::new(0),
                allocations: AtomicU64::new(0),
                scratch: Mutex::new(scratch::ScratchPool::default()),
            }),
        }
    }

    /// The GPU with the given ordinal. Fails with [`Error::CudaUnavailable`] (never a panic)
    /// when no driver is installed, no GPU is present, or the crate was built without nvcc.
    pub fn cuda(ordinal: usize) -> Result<Self> {
        let backend = cuda::CudaBackend::new(ordinal)?;
        let note = format!("CUDA device {ordinal}: {}", backend.name());
        Ok(Self::new(Backend::Cuda(backend), note))
    }

    /// A GPU device that queues its work on `stream`, a CUDA stream the caller already has
    /// (another library's, such as a candle device's), so that tessera's kernels run in line
    /// with that work. Errors as [`Device::cuda`].
    pub fn cuda_on_stream(stream: std::sync::Arc<cudarc::driver::CudaStream>) -> Result<Self> {
        let backend = cuda::CudaBackend::on_stream(stream)?;
        let note = format!("CUDA device {} on a caller's stream: {}", backend.ordinal(), backend.name());
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

    /// Waits until all work queued on this device has finished (a no-op wait on host
    /// backends), then reports the first invalid value that a kernel found since the last
    /// synchronizing call, as [`crate::Error::InvalidValue`] naming the op, the argument and
    /// the row. Kernel launches on Cuda and Emulator never wait for the device: their
    /// invalid-value errors surface here or at the next download, as CUDA reports
    /// asynchronous errors. (The Cpu backend reports them from the call itself.)
    pub fn synchronize(&self) -> Result<()> {
        self.note_sync();
        if let Backend::Cuda(c) = &self.inner.backend {
            c.synchronize()?;
        }
        self.resolve_checks()
    }

    /// How many times this device has synchronized with the host so far: each download and
    /// each [`Device::synchronize`] counts one (ops that must read a result back, such as the
    /// commitment of a codebook search, count theirs). Lets a caller or a test check that a
    /// chain of ops waits for the device nowhere in between.
    pub fn host_synchronizations(&self) -> u64 {
        self.inner.syncs.load(Ordering::Relaxed)
    }

    pub(crate) fn note_sync(&self) {
        self.inner.syncs.fetch_add(1, Ordering::Relaxed);
    }

    fn status_words(&self) -> std::sync::MutexGuard<'_, StatusWords> {
        self.inner.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A status word reading [`NO_ROW`], for one op's kernel (reused from the pool when
    /// one is free: no allocation and no copy then).
    pub(crate) fn status_word(&self) -> Result<DeviceBuffer<u32>> {
        let reused = self.status_words().free.pop();
        let storage = match reused {
            Some(s) => s,
            None => {
                self.note_allocation();
                match &self.inner.backend {
                    Backend::Cuda(c) => Storage::Cuda(c.status_word()?),
                    Backend::Emulator | Backend::Cpu => Storage::Host(HostVec::from_slice(&[NO_ROW])),
                }
            }
        };
        Ok(DeviceBuffer::from_storage(self, 1, storage))
    }

    /// Hands a status word back with what to report if a kernel flagged it; it is read at
    /// the next synchronizing call.
    pub(crate) fn defer_check(&self, word: DeviceBuffer<u32>, check: PendingCheck) {
        let storage = word.into_storage();
        self.status_words().pending.push((storage, check));
    }

    /// Reads every pending status word (the device has synchronized), resets them and
    /// returns the first flagged check in issue order.
    pub(crate) fn resolve_checks(&self) -> Result<()> {
        let pending = std::mem::take(&mut self.status_words().pending);
        if pending.is_empty() {
            return Ok(());
        }
        let mut first = None;
        let mut failure = None;
        let mut free = Vec::with_capacity(pending.len());
        for (mut storage, check) in pending {
            let read = match (&mut storage, &self.inner.backend) {
                (Storage::Host(v), _) => Ok(std::mem::replace(&mut v[0], NO_ROW)),
                (Storage::Cuda(s), Backend::Cuda(c)) => c.read_and_reset_status_word(s),
                (Storage::Cuda(_), _) => Ok(NO_ROW),
            };
            match read {
                Ok(word) if word != NO_ROW && first.is_none() => first = Some(check.error(word)),
                Ok(_) => {}
                Err(e) => {
                    failure.get_or_insert(e);
                    continue; // a word in an unknown state is not reused
                }
            }
            free.push(storage);
        }
        self.status_words().free.extend(free);
        match (failure, first) {
            (Some(e), _) | (None, Some(e)) => Err(e),
            (None, None) => Ok(()),
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

    /// How many buffers have been allocated on this device so far: the caller's
    /// (`upload`, `zeros`) and the ops' own (outputs of the allocating forms, scratch that
    /// the pools did not yet hold). A chain of `_into` ops repeated at the same shapes —
    /// such as a model forward through its workspace — adds none after its first run.
    pub fn allocations(&self) -> u64 {
        self.inner.allocations.load(Ordering::Relaxed)
    }

    pub(crate) fn note_allocation(&self) {
        self.inner.allocations.fetch_add(1, Ordering::Relaxed);
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
