//! [`DeviceBuffer`]: a typed, fixed-length array in one device's memory.

use super::host_alloc::HostVec;
use super::{cuda, Backend, Device, Element};
use crate::error::{Error, Result};

pub(crate) enum Storage<T: Element> {
    /// Emulator and Cpu: host memory of exactly `len` elements, 256-byte aligned.
    Host(HostVec<T>),
    /// A CUDA allocation (at least one element: the driver refuses empty allocations).
    Cuda(cudarc::driver::CudaSlice<T>),
}

/// `len` elements of `T` owned by one [`Device`].
pub struct DeviceBuffer<T: Element> {
    device: Device,
    len: usize,
    storage: Storage<T>,
}

impl<T: Element> std::fmt::Debug for DeviceBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceBuffer<{:?}>[{}] on {}", T::DTYPE, self.len, self.device.name())
    }
}

impl<T: Element> DeviceBuffer<T> {
    pub(crate) fn upload(device: &Device, data: &[T]) -> Result<Self> {
        let storage = match device.backend() {
            Backend::Cuda(c) => Storage::Cuda(c.upload(data)?),
            Backend::Emulator | Backend::Cpu => Storage::Host(HostVec::from_slice(data)),
        };
        device.note_allocation();
        Ok(DeviceBuffer { device: device.clone(), len: data.len(), storage })
    }

    pub(crate) fn zeros(device: &Device, len: usize) -> Result<Self> {
        let storage = match device.backend() {
            Backend::Cuda(c) => Storage::Cuda(c.zeros(len)?),
            Backend::Emulator | Backend::Cpu => Storage::Host(HostVec::zeroed(len).ok_or_else(|| {
                Error::invalid("len", format!("{len} elements of {} bytes do not fit one allocation", T::DTYPE.size()))
            })?),
        };
        device.note_allocation();
        Ok(DeviceBuffer { device: device.clone(), len, storage })
    }

    /// A buffer of `len` elements that the caller's kernel writes in full before anyone
    /// reads it: no memset on a GPU; on the Emulator filled with 0xFF bytes and watched by
    /// initcheck (a read of a byte nothing wrote is an error); zeroed on the Cpu backend.
    pub(crate) fn uninit(device: &Device, len: usize) -> Result<Self> {
        let storage = match device.backend() {
            Backend::Cuda(c) => Storage::Cuda(c.uninit(len)?),
            Backend::Emulator => Storage::Host(HostVec::uninit_tracked(len).ok_or_else(|| {
                Error::invalid("len", format!("{len} elements of {} bytes do not fit one allocation", T::DTYPE.size()))
            })?),
            Backend::Cpu => return Self::zeros(device, len),
        };
        device.note_allocation();
        Ok(DeviceBuffer { device: device.clone(), len, storage })
    }

    pub(crate) fn from_storage(device: &Device, len: usize, storage: Storage<T>) -> Self {
        DeviceBuffer { device: device.clone(), len, storage }
    }

    pub(crate) fn into_storage(self) -> Storage<T> {
        self.storage
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device that owns this buffer.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Copies the contents back to the host. This synchronizes: it waits for the work
    /// queued on the device, then reports the first invalid value a kernel found since the
    /// last synchronizing call (see [`Device::synchronize`]) instead of the data.
    pub fn download(&self) -> Result<Vec<T>> {
        self.download_range(0, self.len)
    }

    /// `len` elements from `offset` (checked by the caller: a view's range).
    pub(crate) fn download_range(&self, offset: usize, len: usize) -> Result<Vec<T>> {
        self.device.note_sync();
        let data = match &self.storage {
            Storage::Host(v) => v[offset..offset + len].to_vec(),
            Storage::Cuda(_) if len == 0 => Vec::new(),
            Storage::Cuda(s) => cuda::download(&self.device, &s.slice(offset..offset + len))?,
        };
        self.device.resolve_checks()?;
        Ok(data)
    }

    /// Overwrites the contents with `data`, which must have exactly `len()` elements.
    pub fn copy_from_host(&mut self, data: &[T]) -> Result<()> {
        if data.len() != self.len {
            return Err(Error::LengthMismatch { arg: "data", expected: self.len, actual: data.len() });
        }
        match &mut self.storage {
            Storage::Host(v) => {
                v.copy_from_slice(data);
                v.mark_written(0..data.len());
                Ok(())
            }
            Storage::Cuda(s) => cuda::copy_into(&self.device, s, data),
        }
    }

    /// Host-memory contents (Emulator and Cpu backends only).
    pub(crate) fn host(&self) -> Option<&[T]> {
        match &self.storage {
            Storage::Host(v) => Some(v),
            Storage::Cuda(_) => None,
        }
    }

    pub(crate) fn host_mut(&mut self) -> Option<&mut [T]> {
        match &mut self.storage {
            Storage::Host(v) => Some(v),
            Storage::Cuda(_) => None,
        }
    }

    pub(crate) fn cuda_slice(&self) -> Option<&cudarc::driver::CudaSlice<T>> {
        match &self.storage {
            Storage::Cuda(s) => Some(s),
            Storage::Host(_) => None,
        }
    }

    pub(crate) fn cuda_slice_mut(&mut self) -> Option<&mut cudarc::driver::CudaSlice<T>> {
        match &mut self.storage {
            Storage::Cuda(s) => Some(s),
            Storage::Host(_) => None,
        }
    }
}
