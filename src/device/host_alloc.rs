//! Host memory of the Emulator and Cpu backends: exactly `len` elements (so the
//! sanitizer build sees a one-element overrun), 256-byte aligned like a GPU allocation
//! (kernels take 16-byte vector paths and cp.async, which need aligned rows).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

/// Alignment of every host buffer, in bytes.
pub(crate) const HOST_ALIGN: usize = 256;

pub(crate) struct HostVec<T: bytemuck::Pod> {
    ptr: NonNull<T>,
    len: usize,
    /// Registered with the emulator's initcheck (made by `uninit_tracked`).
    tracked: bool,
}

extern "C" {
    fn tessera_emu_track_uninit(p: *const std::ffi::c_void, bytes: usize);
    fn tessera_emu_mark_written(p: *const std::ffi::c_void, bytes: usize);
    fn tessera_emu_forget(p: *const std::ffi::c_void);
}

// SAFETY: HostVec owns its allocation like a Vec<T> of Pod elements.
unsafe impl<T: bytemuck::Pod + Send> Send for HostVec<T> {}
unsafe impl<T: bytemuck::Pod + Sync> Sync for HostVec<T> {}

impl<T: bytemuck::Pod> HostVec<T> {
    /// The allocation's layout, or None when `len` elements do not fit an allocation.
    fn layout(len: usize) -> Option<Layout> {
        let size = std::mem::size_of::<T>().checked_mul(len)?;
        Layout::from_size_align(size, HOST_ALIGN.max(std::mem::align_of::<T>())).ok()
    }

    /// `len` zeroed elements (all-zero bits are a valid `T`: Pod), or None when that many
    /// elements cannot be allocated in one piece.
    pub(crate) fn zeroed(len: usize) -> Option<Self> {
        let layout = Self::layout(len)?;
        if layout.size() == 0 {
            let dangling = NonNull::new(layout.align() as *mut T)?;
            return Some(HostVec { ptr: dangling, len, tracked: false });
        }
        // SAFETY: non-zero size.
        let raw = unsafe { alloc_zeroed(layout) } as *mut T;
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Some(HostVec { ptr, len, tracked: false })
    }

    /// `len` elements of the emulator's "uninitialised" pattern (0xFF bytes: NaN as a float,
    /// -1 as an integer), registered with the emulator's initcheck: a kernel that reads a byte
    /// of it before anything wrote it is reported.
    pub(crate) fn uninit_tracked(len: usize) -> Option<Self> {
        let mut v = Self::zeroed(len)?;
        bytemuck::cast_slice_mut::<T, u8>(&mut v).fill(0xff);
        if !v.is_empty() && std::mem::size_of::<T>() != 0 {
            // SAFETY: registers this live allocation; Drop unregisters it before freeing.
            unsafe { tessera_emu_track_uninit(v.ptr.as_ptr() as *const _, std::mem::size_of_val::<[T]>(&v)) };
            v.tracked = true;
        }
        Some(v)
    }

    /// Makes a tracked buffer "uninitialised" again (0xFF bytes, nothing written), for its
    /// reuse as scratch; an untracked one is left as it is.
    pub(crate) fn reset_uninit(&mut self) {
        if self.tracked {
            bytemuck::cast_slice_mut::<T, u8>(self).fill(0xff);
            // SAFETY: this live allocation is registered; forgetting and registering it
            // again clears its written bytes.
            unsafe {
                tessera_emu_forget(self.ptr.as_ptr() as *const _);
                tessera_emu_track_uninit(self.ptr.as_ptr() as *const _, std::mem::size_of_val::<[T]>(self));
            }
        }
    }

    /// Tells the emulator's initcheck that the host wrote `range` (element indices).
    pub(crate) fn mark_written(&self, range: std::ops::Range<usize>) {
        if self.tracked && range.start < range.end && range.end <= self.len {
            let size = std::mem::size_of::<T>();
            // SAFETY: the range lies inside this live allocation.
            unsafe {
                tessera_emu_mark_written(
                    self.ptr.as_ptr().add(range.start) as *const _,
                    (range.end - range.start) * size,
                )
            };
        }
    }

    pub(crate) fn from_slice(data: &[T]) -> Self {
        // A slice that exists fits an allocation of the same size.
        let mut v = Self::zeroed(data.len()).unwrap_or_else(|| unreachable!("a slice's size fits a layout"));
        v.copy_from_slice(data);
        v
    }
}

impl<T: bytemuck::Pod> Drop for HostVec<T> {
    fn drop(&mut self) {
        if self.tracked {
            // SAFETY: registered in uninit_tracked; the memory is still allocated.
            unsafe { tessera_emu_forget(self.ptr.as_ptr() as *const _) };
        }
        let Some(layout) = Self::layout(self.len) else { return };
        if layout.size() != 0 {
            // SAFETY: allocated in `zeroed` with this layout.
            unsafe { dealloc(self.ptr.as_ptr() as *mut u8, layout) }
        }
    }
}

impl<T: bytemuck::Pod> std::ops::Deref for HostVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: ptr is valid for len elements (or dangling and aligned for len·size = 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: bytemuck::Pod> std::ops::DerefMut for HostVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as above, and &mut self guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_exact() {
        for len in [0usize, 1, 3, 17, 1000] {
            let v = HostVec::<u16>::from_slice(&(0..len as u16).collect::<Vec<_>>());
            assert!(HostVec::<u32>::zeroed(usize::MAX / 2).is_none());
            assert_eq!(v.len(), len);
            assert_eq!(v.as_ptr() as usize % HOST_ALIGN, 0);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u16));
        }
    }
}
