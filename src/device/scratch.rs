//! Per-device pools of small scratch buffers that ops create and drop within one call (the
//! split-K GEMM's f32 partial sums, attention's u32 offsets), so that a chain of ops run
//! again at the same shapes allocates nothing. Buffers are reused by exact length, only by
//! work queued later on the same stream (the device's own order keeps the reuse safe); on
//! the emulator a reused f32 buffer is reset to "uninitialised" for initcheck.

use super::buffer::Storage;
use super::{Device, DeviceBuffer};
use crate::error::Result;

/// Buffers kept per element type; beyond it a returned buffer is freed.
const KEEP: usize = 32;

#[derive(Default)]
pub(crate) struct ScratchPool {
    f32s: Vec<(usize, Storage<f32>)>,
    u32s: Vec<(usize, Storage<u32>)>,
}

fn take<T: super::Element>(pool: &mut Vec<(usize, Storage<T>)>, len: usize) -> Option<Storage<T>> {
    let i = pool.iter().position(|(l, _)| *l == len)?;
    Some(pool.swap_remove(i).1)
}

fn keep<T: super::Element>(pool: &mut Vec<(usize, Storage<T>)>, len: usize, storage: Storage<T>) {
    if pool.len() < KEEP {
        pool.push((len, storage));
    }
}

impl Device {
    fn scratch_pool(&self) -> std::sync::MutexGuard<'_, ScratchPool> {
        self.inner.scratch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An f32 buffer of `len` elements that the caller's kernel writes in full before it
    /// reads it (as [`DeviceBuffer::uninit`]), from the pool when one of that length is free.
    pub(crate) fn scratch_f32(&self, len: usize) -> Result<DeviceBuffer<f32>> {
        match take(&mut self.scratch_pool().f32s, len) {
            Some(mut storage) => {
                if let Storage::Host(v) = &mut storage {
                    v.reset_uninit();
                }
                Ok(DeviceBuffer::from_storage(self, len, storage))
            }
            None => DeviceBuffer::uninit(self, len),
        }
    }

    /// A u32 buffer holding `data` (a stream-ordered copy into a pooled buffer when one of
    /// that length is free).
    pub(crate) fn scratch_u32(&self, data: &[u32]) -> Result<DeviceBuffer<u32>> {
        match take(&mut self.scratch_pool().u32s, data.len()) {
            Some(storage) => {
                let mut buf = DeviceBuffer::from_storage(self, data.len(), storage);
                buf.copy_from_host(data)?;
                Ok(buf)
            }
            None => DeviceBuffer::upload(self, data),
        }
    }

    /// A u32 buffer of `len` elements that the kernel will not read (a placeholder argument):
    /// a pooled one as it is, else a new zeroed one.
    pub(crate) fn scratch_u32_unread(&self, len: usize) -> Result<DeviceBuffer<u32>> {
        match take(&mut self.scratch_pool().u32s, len) {
            Some(storage) => Ok(DeviceBuffer::from_storage(self, len, storage)),
            None => DeviceBuffer::zeros(self, len),
        }
    }

    /// Hands a scratch buffer back for reuse by later work on this device.
    pub(crate) fn recycle_f32(&self, buf: DeviceBuffer<f32>) {
        let len = buf.len();
        keep(&mut self.scratch_pool().f32s, len, buf.into_storage());
    }

    /// See [`Device::recycle_f32`].
    pub(crate) fn recycle_u32(&self, buf: DeviceBuffer<u32>) {
        let len = buf.len();
        keep(&mut self.scratch_pool().u32s, len, buf.into_storage());
    }
}
